//! What each action checks before it is asked for, and what it changes once approved. The effect,
//! its events and its mails are prepared here and applied by the store in the one transaction
//! that claims the request.

use secrecy::ExposeSecret;

use super::{Action, Approval, ApprovalError, ApprovalStatus, approval_event, notice_mails};
use crate::clock::{duration_ms, format_utc};
use crate::domain::Core;
use crate::domain::email::Email;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::keys;
use crate::domain::rbac::Role;
use crate::domain::recovery::{ASSISTED_LINK_LIFETIME, recovery_link, recovery_started};
use crate::domain::secrets::SecretDigest;
use crate::domain::staff::{self, Grant, Invitation, StaffError};
use crate::domain::tenants::TenantStatus;
use crate::domain::users::{DisplayName, User, UserStatus};
use crate::store::StoreError;
use crate::store::approvals::{Effect, Execution};
use crate::store::partners::{GrantRevocation, GrantSelection};
use crate::store::staff::OutgoingMail;

fn not_applicable(why: &str) -> ApprovalError {
    ApprovalError::NotApplicable(why.to_owned())
}

async fn active_person(
    core: &Core,
    user: crate::domain::ids::UserId,
) -> Result<User, ApprovalError> {
    match core.store.find_user(user).await? {
        Some(person) if person.status == UserStatus::Active => Ok(person),
        Some(_) => Err(not_applicable("That account is deactivated.")),
        None => Err(ApprovalError::NotFound),
    }
}

/// Whether the action makes sense now; the same checks run again when it is approved.
pub(super) async fn check_applies(core: &Core, action: &Action) -> Result<(), ApprovalError> {
    match action {
        Action::ReplaceSigningKey { tenant, kid } => {
            if !keys::droppable(core, *tenant, kid).await? {
                return Err(not_applicable(
                    "That key is not in use: it is unknown or already retired.",
                ));
            }
        }
        Action::GrantRole { user, role } => {
            if !role.is_global() {
                return Err(not_applicable(
                    "Only the superadmin and security roles wait for a second person.",
                ));
            }
            let person = active_person(core, *user).await?;
            if person
                .roles
                .iter()
                .any(|r| r.role == *role && r.tenant_id.is_none())
            {
                return Err(not_applicable("They already hold that role."));
            }
        }
        Action::RemoveRole {
            user,
            role,
            assignment,
        } => {
            let person = core
                .store
                .find_user(*user)
                .await?
                .ok_or(ApprovalError::NotFound)?;
            if !person
                .roles
                .iter()
                .any(|r| r.id == *assignment && r.role == *role)
            {
                return Err(not_applicable("They no longer hold that role."));
            }
        }
        Action::DeactivateSuperadmin { user } => {
            let person = active_person(core, *user).await?;
            if !super::is_superadmin(&person) {
                return Err(not_applicable(
                    "They are not a superadmin: deactivate them directly.",
                ));
            }
        }
        Action::SuspendTenant { tenant } => {
            let found = core
                .store
                .tenant_by_id(*tenant)
                .await?
                .ok_or(ApprovalError::NotFound)?;
            if found.status == TenantStatus::Suspended {
                return Err(not_applicable("The tenant is already suspended."));
            }
        }
        Action::RevokeTenant { tenant } => {
            core.store
                .tenant_by_id(*tenant)
                .await?
                .ok_or(ApprovalError::NotFound)?;
        }
        Action::RecoverAccount { user } => {
            active_person(core, *user).await?;
        }
        Action::InviteStaff { email, role, .. } => {
            if !role.is_global() {
                return Err(not_applicable(
                    "Only invitations to the superadmin and security roles wait for a second person.",
                ));
            }
            let email = Email::parse(email).map_err(|e| not_applicable(&e.to_string()))?;
            if let Err(StaffError::AlreadyStaff) = staff::ensure_new(core, &email).await {
                return Err(not_applicable(
                    "Someone with this e-mail address already has an account.",
                ));
            }
        }
    }
    Ok(())
}

/// Runs an approved request: prepares its effect, then lets the store claim the request and
/// apply it at once. Whoever loses a race learns the request was already decided.
pub(super) async fn run(
    core: &Core,
    approver: &User,
    approval: &Approval,
    context: &RequestContext,
) -> Result<(), ApprovalError> {
    check_applies(core, &approval.action).await?;
    let now = core.clock.now_ms();
    let actor = Actor::User(approver.id);
    let action = &approval.action;
    let described = action.describe(core).await?;
    let mut events = vec![
        approval_event(
            now,
            EventType::ApprovalApproved,
            approver.id,
            &approval.id,
            action,
            context,
        )
        .detail("requested_by", approval.requested_by.to_string()),
        approval_event(
            now,
            EventType::ApprovalExecuted,
            approver.id,
            &approval.id,
            action,
            context,
        )
        .detail("summary", described.as_str()),
    ];
    let mut mails = super::requester_mail(
        core,
        approval,
        "Request approved and carried out",
        &[format!(
            "{} approved your request and it was carried out: {described}.",
            approver.email
        )],
        now,
    )
    .await?;
    // The change's own record, as if done directly, naming the approval behind it.
    let change = |event_type: EventType| {
        Event::new(now, event_type, Outcome::Success, actor.clone())
            .context(context)
            .detail("approval", approval.id.as_str())
            .detail("requested_by", approval.requested_by.to_string())
    };
    let emergency;
    let revocation_event;
    let recovery;
    let invitation;
    let effect = match action {
        Action::ReplaceSigningKey { tenant, kid } => {
            emergency =
                keys::plan_emergency_drop(core, *tenant, kid, actor.clone(), context).await?;
            events.extend(emergency.events.iter().map(|e| {
                e.clone()
                    .detail("approval", approval.id.as_str())
                    .detail("requested_by", approval.requested_by.to_string())
            }));
            mails.extend(emergency.mails.iter().cloned());
            Effect::DropKey(emergency.effect())
        }
        Action::GrantRole { user, role } => {
            events.push(role_change(
                change(EventType::RoleGranted),
                *user,
                *role,
                "absent",
                "granted",
            ));
            Effect::GrantRole {
                user: *user,
                role: *role,
                granted_by: approval.requested_by,
            }
        }
        Action::RemoveRole {
            user,
            role,
            assignment,
        } => {
            events.push(role_change(
                change(EventType::RoleRevoked),
                *user,
                *role,
                "granted",
                "absent",
            ));
            Effect::RemoveRole {
                user: *user,
                assignment,
            }
        }
        Action::DeactivateSuperadmin { user } => {
            events.push(
                change(EventType::UserDeactivated)
                    .subject(*user)
                    .detail("before", UserStatus::Active.as_str())
                    .detail("after", UserStatus::Deactivated.as_str()),
            );
            Effect::Deactivate(*user)
        }
        Action::SuspendTenant { tenant } => {
            events.push(
                change(EventType::TenantSuspended)
                    .tenant(*tenant)
                    .detail("before", TenantStatus::Active.as_str())
                    .detail("after", TenantStatus::Suspended.as_str()),
            );
            Effect::SuspendTenant(*tenant)
        }
        Action::RevokeTenant { tenant } => {
            revocation_event = change(EventType::CredentialRevoked)
                .tenant(*tenant)
                .detail("scope", "tenant")
                .detail("reason", approval.reason.as_str());
            mails.extend(tenant_notices(core, *tenant, &described, now).await?);
            Effect::RevokeTenant(
                GrantRevocation {
                    tenant: *tenant,
                    grants: GrantSelection::All,
                    by: approver.id,
                    reason: &approval.reason,
                },
                &revocation_event,
            )
        }
        Action::RecoverAccount { user } => {
            let person = active_person(core, *user).await?;
            let (token, link) = recovery_link(core)?;
            events.push(
                recovery_started(now, &person, actor.clone(), &approval.reason, context)
                    .detail("approval", approval.id.as_str())
                    .detail("requested_by", approval.requested_by.to_string()),
            );
            mails.extend(notice_mails(
                std::slice::from_ref(&person.email),
                "Recover your Token Broker account",
                &[
                    "An administrator started the recovery of your account, and a second one approved it: every passkey, recovery code and session of it was removed.".into(),
                    format!(
                        "The link below works once, until {}. After your password it lets you enrol a new passkey and get new recovery codes. If you did not ask for this, tell your security team at once.",
                        format_utc(now + duration_ms(ASSISTED_LINK_LIFETIME))
                    ),
                ],
                Some(("Recover your account", &link)),
                now,
            )?);
            recovery = SecretDigest::of(token.expose_secret());
            Effect::RecoverAccount {
                user: *user,
                link: recovery,
                link_expires_at: now + duration_ms(ASSISTED_LINK_LIFETIME),
            }
        }
        Action::InviteStaff {
            email,
            display_name,
            role,
        } => {
            let invited = Invitation {
                email: Email::parse(email).map_err(|e| not_applicable(&e.to_string()))?,
                display_name: DisplayName::parse(display_name)
                    .map_err(|e| not_applicable(&e.to_string()))?,
                grant: Grant {
                    role: *role,
                    tenant: None,
                },
            };
            invitation = staff::prepare_invitation(
                core,
                approval.requested_by,
                actor.clone(),
                &invited,
                context,
            )
            .await
            .map_err(|e| match e {
                StaffError::Store(e) => ApprovalError::Store(e),
                other => not_applicable(&other.to_string()),
            })?;
            events.push(
                invitation
                    .event
                    .clone()
                    .detail("approval", approval.id.as_str())
                    .detail("requested_by", approval.requested_by.to_string()),
            );
            Effect::Invite {
                invitation: &invitation.record,
                token: &invitation.token,
                mail: &invitation.mail,
            }
        }
    };
    let outcome = core
        .store
        .execute_approval(&approval.id, approver.id, now, &effect, &events, &mails)
        .await?;
    match outcome {
        Execution::Executed => {
            after_execution(core, action).await?;
            Ok(())
        }
        Execution::NoLongerApplies => Err(not_applicable(match action {
            Action::ReplaceSigningKey { .. } => {
                "The tenant's signing keys changed meanwhile (a rotation, or a key retired); nothing was done. The request is still pending: approving it again drops the key as the keys are now."
            }
            _ => "This change no longer applies (someone changed it meanwhile); nothing was done.",
        })),
        Execution::NoLongerPending => {
            let current = super::get(core, &approval.id).await?;
            match current.status_at(core.clock.now_ms()) {
                ApprovalStatus::Expired => {
                    Err(ApprovalError::Expired(format_utc(current.expires_at)))
                }
                status => Err(ApprovalError::AlreadyDecided(status.as_str())),
            }
        }
    }
}

fn role_change(
    event: Event,
    user: crate::domain::ids::UserId,
    role: Role,
    before: &str,
    after: &str,
) -> Event {
    event
        .subject(user)
        .detail("role", role.as_str())
        .detail("before", before)
        .detail("after", after)
}

/// The tenant's admins and security staff hear of a tenant-wide revocation.
async fn tenant_notices(
    core: &Core,
    tenant: crate::domain::ids::TenantId,
    described: &str,
    now: crate::clock::Millis,
) -> Result<Vec<OutgoingMail>, StoreError> {
    let mut recipients: Vec<String> = core
        .store
        .tenant_admins(tenant)
        .await?
        .into_iter()
        .map(|admin| admin.email)
        .collect();
    recipients.extend(core.store.security_staff_emails().await?);
    recipients.sort();
    recipients.dedup();
    notice_mails(
        &recipients,
        "Every credential revoked",
        &[format!(
            "Done, after two people agreed: {described}. Every token derived from them fails introspection now; partners need new credentials."
        )],
        None,
        now,
    )
}

/// Caches this instance keeps learn of the change at once (others follow the store's feed).
async fn after_execution(core: &Core, action: &Action) -> Result<(), StoreError> {
    match action {
        Action::ReplaceSigningKey { tenant, .. } => core.keys.invalidate(*tenant),
        Action::SuspendTenant { .. } | Action::RevokeTenant { .. } => {
            core.revocations.catch_up(&core.store).await?;
        }
        _ => {}
    }
    Ok(())
}
