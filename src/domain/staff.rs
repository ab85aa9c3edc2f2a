//! Staff administration: invitations (single-use links, 72 h), role grants and revocations, and
//! deactivation. Every change is an event with actor, target, and before/after.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::approvals::{self, Action, ApprovalError, Change};
use crate::domain::email::Email;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::password::{Password, PasswordError};
use crate::domain::principal::Principal;
use crate::domain::rbac::Role;
use crate::domain::secrets::{self, SecretDigest};
use crate::domain::users::{DisplayName, UserStatus};
use crate::store::StoreError;
use crate::store::staff::{InvitationRecord, OutgoingMail};

pub const INVITATION_LIFETIME: Duration = Duration::from_secs(72 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("Someone with this e-mail address already has an account.")]
    AlreadyStaff,
    #[error("Pick a role.")]
    UnknownRole,
    #[error("Pick the tenant this role applies to.")]
    TenantRequired,
    #[error("Superadmin and security roles apply to every tenant; do not pick one.")]
    TenantNotAllowed,
    #[error("That tenant does not exist.")]
    UnknownTenant,
    #[error("They already hold that role.")]
    DuplicateRole,
    #[error("You cannot deactivate your own account.")]
    SelfDeactivation,
    #[error("That person or role does not exist.")]
    NotFound,
    /// A change that waits for a second person could not be asked for.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A role and where it applies, checked for consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub role: Role,
    pub tenant: Option<TenantId>,
}

impl Grant {
    pub async fn new(
        core: &Core,
        role: Role,
        tenant: Option<TenantId>,
    ) -> Result<Self, StaffError> {
        match (role.is_global(), tenant) {
            (true, Some(_)) => Err(StaffError::TenantNotAllowed),
            (false, None) => Err(StaffError::TenantRequired),
            (false, Some(id)) if core.store.tenant_by_id(id).await?.is_none() => {
                Err(StaffError::UnknownTenant)
            }
            _ => Ok(Self { role, tenant }),
        }
    }
}

pub struct Invitation {
    pub email: Email,
    pub display_name: DisplayName,
    pub grant: Grant,
}

/// What a role makes someone, in words: "Support for Acme Bank", "Security (all tenants)".
pub async fn role_in_words(
    core: &Core,
    role: Role,
    tenant: Option<TenantId>,
) -> Result<String, StoreError> {
    Ok(match tenant {
        None => format!("{} (all tenants)", role.label()),
        Some(id) => match core.store.tenant_by_id(id).await? {
            Some(tenant) => format!("{} for {}", role.label(), tenant.name),
            None => role.label().to_owned(),
        },
    })
}

/// Invitations neither accepted, withdrawn nor expired, newest first.
pub async fn pending_invitations(core: &Core) -> Result<Vec<InvitationRecord>, StoreError> {
    core.store.pending_invitations(core.clock.now_ms()).await
}

/// Records the invitation and queues the e-mail with its link, atomically. The link is the only
/// copy of the token; the database keeps its SHA-256. An invitation to the superadmin or security
/// role is only asked for: it is sent once a second superadmin approves (`reason` says why).
pub async fn invite(
    core: &Core,
    actor: Principal<'_>,
    invitation: Invitation,
    reason: &str,
    context: &RequestContext,
) -> Result<Change, StaffError> {
    ensure_new(core, &invitation.email).await?;
    if invitation.grant.role.is_global() {
        let action = Action::InviteStaff {
            email: invitation.email.as_str().to_owned(),
            display_name: invitation.display_name.as_str().to_owned(),
            role: invitation.grant.role,
        };
        return Ok(Change::AwaitingApproval(
            approvals::request(core, actor, action, reason, context).await?,
        ));
    }
    let prepared = prepare_invitation(
        core,
        actor.user().id,
        Actor::User(actor.user().id),
        &invitation,
        context,
    )
    .await?;
    core.store
        .insert_invitation(
            &prepared.record,
            &prepared.token,
            &prepared.mail,
            &prepared.event,
        )
        .await?;
    Ok(Change::Done)
}

/// Nobody holds an account with this address yet.
pub(crate) async fn ensure_new(core: &Core, email: &Email) -> Result<(), StaffError> {
    if core
        .store
        .find_credentials_by_email(email.normalized())
        .await?
        .is_some()
    {
        return Err(StaffError::AlreadyStaff);
    }
    Ok(())
}

/// An invitation ready to store: its record, the digest of its link's token, the mail carrying
/// the link, and its event.
pub(crate) struct PreparedInvitation {
    pub record: InvitationRecord,
    pub token: SecretDigest,
    pub mail: OutgoingMail,
    pub event: Event,
}

pub(crate) async fn prepare_invitation(
    core: &Core,
    invited_by: UserId,
    actor: Actor,
    invitation: &Invitation,
    context: &RequestContext,
) -> Result<PreparedInvitation, StaffError> {
    let token = secrets::generate();
    let mut link = core
        .public_url
        .join("/invite")
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    link.query_pairs_mut()
        .append_pair("token", token.expose_secret());
    let now = core.clock.now_ms();
    let id = time_ordered_id();
    let role = role_in_words(core, invitation.grant.role, invitation.grant.tenant).await?;
    let mail = crate::mail::invitation(invitation, &role, &SecretString::from(link.to_string()))
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    let record = InvitationRecord {
        id: id.clone(),
        email: invitation.email.as_str().to_owned(),
        email_normalized: invitation.email.normalized().to_owned(),
        display_name: invitation.display_name.as_str().to_owned(),
        role: invitation.grant.role,
        tenant: invitation.grant.tenant,
        invited_by,
        created_at: now,
        expires_at: now + duration_ms(INVITATION_LIFETIME),
    };
    let mut event = Event::new(now, EventType::InvitationSent, Outcome::Success, actor)
        .context(context)
        .detail("invitation", id)
        .detail("email", invitation.email.as_str())
        .detail("role", invitation.grant.role.as_str());
    if let Some(tenant) = invitation.grant.tenant {
        event = event.tenant(tenant);
    }
    let mail = OutgoingMail {
        id: time_ordered_id(),
        recipient: invitation.email.as_str().to_owned(),
        subject: mail.subject,
        body_text: mail.text,
        body_html: mail.html,
        created_at: now,
    };
    Ok(PreparedInvitation {
        record,
        token: SecretDigest::of(token.expose_secret()),
        mail,
        event,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum InvitationLinkError {
    #[error("This invitation link is not valid.")]
    Unknown,
    #[error("This invitation has already been accepted. Sign in instead.")]
    Used,
    #[error("This invitation has expired. Ask for a new one.")]
    Expired,
    #[error("This invitation was withdrawn.")]
    Revoked,
    #[error("Someone with this e-mail address already has an account.")]
    AlreadyStaff,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The invitation behind a link, if it can still be accepted.
pub async fn open_invitation(
    core: &Core,
    token: &str,
) -> Result<InvitationRecord, InvitationLinkError> {
    let found = core
        .store
        .invitation_by_token(&SecretDigest::of(token))
        .await?;
    let Some((record, accepted_at, revoked_at)) = found else {
        return Err(InvitationLinkError::Unknown);
    };
    if revoked_at.is_some() {
        return Err(InvitationLinkError::Revoked);
    }
    if accepted_at.is_some() {
        return Err(InvitationLinkError::Used);
    }
    if record.expires_at <= core.clock.now_ms() {
        return Err(InvitationLinkError::Expired);
    }
    Ok(record)
}

/// Creates the account and grants the invited role, consuming the link, atomically.
pub async fn accept(
    core: &Core,
    token: &str,
    display_name: DisplayName,
    password: Password,
    context: &RequestContext,
) -> Result<UserId, InvitationLinkError> {
    let invitation = open_invitation(core, token).await?;
    let hash = core.passwords.hash(&password).await?;
    let user = UserId::new();
    let now = core.clock.now_ms();
    let mut event = Event::new(
        now,
        EventType::InvitationAccepted,
        Outcome::Success,
        Actor::User(user),
    )
    .subject(user)
    .context(context)
    .detail("invitation", invitation.id.clone())
    .detail("role", invitation.role.as_str());
    if let Some(tenant) = invitation.tenant {
        event = event.tenant(tenant);
    }
    match core
        .store
        .accept_invitation(
            &SecretDigest::of(token),
            user,
            display_name.as_str(),
            &hash,
            now,
            &event,
        )
        .await?
    {
        crate::store::staff::Accepted::Yes => Ok(user),
        crate::store::staff::Accepted::LinkSpent => Err(InvitationLinkError::Used),
        crate::store::staff::Accepted::EmailTaken => Err(InvitationLinkError::AlreadyStaff),
    }
}

pub async fn revoke_invitation(
    core: &Core,
    actor: UserId,
    id: &str,
    context: &RequestContext,
) -> Result<(), StaffError> {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::InvitationRevoked,
        Outcome::Success,
        Actor::User(actor),
    )
    .context(context)
    .detail("invitation", id);
    if core
        .store
        .revoke_invitation(id, core.clock.now_ms(), &event)
        .await?
    {
        Ok(())
    } else {
        Err(StaffError::NotFound)
    }
}

/// Grants a role. The superadmin and security roles are only asked for here: a second
/// superadmin approves (`reason` says why); other roles are granted at once.
pub async fn grant_role(
    core: &Core,
    actor: Principal<'_>,
    user: UserId,
    grant: Grant,
    reason: &str,
    context: &RequestContext,
) -> Result<Change, StaffError> {
    if grant.role.is_global() {
        let action = Action::GrantRole {
            user,
            role: grant.role,
        };
        return Ok(Change::AwaitingApproval(
            approvals::request(core, actor, action, reason, context).await?,
        ));
    }
    let mut event = role_event(
        core.clock.now_ms(),
        EventType::RoleGranted,
        actor.user().id,
        user,
        grant,
        context,
    );
    event = event.detail("before", "absent").detail("after", "granted");
    if core
        .store
        .insert_role(
            user,
            grant.role,
            grant.tenant,
            actor.user().id,
            core.clock.now_ms(),
            &event,
        )
        .await?
    {
        Ok(Change::Done)
    } else {
        Err(StaffError::DuplicateRole)
    }
}

/// Removes a role; taking away superadmin or security waits for a second superadmin.
pub async fn revoke_role(
    core: &Core,
    actor: Principal<'_>,
    user: UserId,
    assignment: &str,
    reason: &str,
    context: &RequestContext,
) -> Result<Change, StaffError> {
    let target = core
        .store
        .find_user(user)
        .await?
        .ok_or(StaffError::NotFound)?;
    let held = target
        .roles
        .iter()
        .find(|r| r.id == assignment)
        .ok_or(StaffError::NotFound)?;
    if held.role.is_global() {
        let action = Action::RemoveRole {
            user,
            role: held.role,
            assignment: assignment.to_owned(),
        };
        return Ok(Change::AwaitingApproval(
            approvals::request(core, actor, action, reason, context).await?,
        ));
    }
    let grant = Grant {
        role: held.role,
        tenant: held.tenant_id.as_deref().and_then(TenantId::parse),
    };
    let event = role_event(
        core.clock.now_ms(),
        EventType::RoleRevoked,
        actor.user().id,
        user,
        grant,
        context,
    )
    .detail("before", "granted")
    .detail("after", "absent");
    if core.store.delete_role(user, assignment, &event).await? {
        Ok(Change::Done)
    } else {
        Err(StaffError::NotFound)
    }
}

fn role_event(
    now: Millis,
    event_type: EventType,
    actor: UserId,
    user: UserId,
    grant: Grant,
    context: &RequestContext,
) -> Event {
    let mut event = Event::new(now, event_type, Outcome::Success, Actor::User(actor))
        .subject(user)
        .context(context)
        .detail("role", grant.role.as_str());
    if let Some(tenant) = grant.tenant {
        event = event.tenant(tenant);
    }
    event
}

/// Deactivation ends every session of the user at once; reactivation does not bring them back.
/// Deactivating a superadmin waits for a second superadmin.
pub async fn set_status(
    core: &Core,
    actor: Principal<'_>,
    user: UserId,
    status: UserStatus,
    reason: &str,
    context: &RequestContext,
) -> Result<Change, StaffError> {
    if actor.user().id == user && status == UserStatus::Deactivated {
        return Err(StaffError::SelfDeactivation);
    }
    let target = core
        .store
        .find_user(user)
        .await?
        .ok_or(StaffError::NotFound)?;
    if status == UserStatus::Deactivated
        && target.status == UserStatus::Active
        && approvals::is_superadmin(&target)
    {
        let action = Action::DeactivateSuperadmin { user };
        return Ok(Change::AwaitingApproval(
            approvals::request(core, actor, action, reason, context).await?,
        ));
    }
    let event_type = match status {
        UserStatus::Deactivated => EventType::UserDeactivated,
        UserStatus::Active => EventType::UserReactivated,
    };
    let event = Event::new(
        core.clock.now_ms(),
        event_type,
        Outcome::Success,
        Actor::User(actor.user().id),
    )
    .subject(user)
    .context(context)
    .detail("before", target.status.as_str())
    .detail("after", status.as_str());
    core.store
        .set_user_status(user, status, core.clock.now_ms(), &event)
        .await?;
    Ok(Change::Done)
}
