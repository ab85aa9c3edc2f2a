//! One-click responses to an alert: end the account's sessions, lock the account, revoke the
//! credential. Each applies only where the alert's subject is that kind of thing; each is done
//! through the same use case staff would use (with its own event) and noted on the alert.

use super::{AlertError, AlertStatus};
use crate::domain::Core;
use crate::domain::approvals::Change;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::partners::CredentialStatus;
use crate::domain::principal::Principal;
use crate::domain::users::UserStatus;
use crate::domain::{partners, sessions, staff};
use crate::store::alerts::{AlertChange, AlertRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    EndSessions,
    LockAccount,
    RevokeCredential,
}

impl Response {
    pub const ALL: [Response; 3] = [Self::EndSessions, Self::LockAccount, Self::RevokeCredential];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndSessions => "end_sessions",
            Self::LockAccount => "lock_account",
            Self::RevokeCredential => "revoke_credential",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::EndSessions => "End the account's sessions",
            Self::LockAccount => "Lock the account",
            Self::RevokeCredential => "Revoke the credential",
        }
    }
}

/// The responses that make sense for this alert's subject, right now.
pub async fn responses_for(core: &Core, alert: &AlertRow) -> Result<Vec<Response>, AlertError> {
    let Some(subject) = alert.subject.as_deref() else {
        return Ok(Vec::new());
    };
    if let Some(user) = UserId::parse(subject) {
        return Ok(match core.store.find_user(user).await? {
            Some(found) if found.status == UserStatus::Active => {
                vec![Response::EndSessions, Response::LockAccount]
            }
            Some(_) => vec![Response::EndSessions],
            None => Vec::new(),
        });
    }
    let Some(tenant) = alert.tenant_id.as_deref().and_then(TenantId::parse) else {
        return Ok(Vec::new());
    };
    let state = core
        .store
        .credential_secrets_state(tenant, subject, core.clock.now_ms())
        .await?;
    Ok(match state {
        Some(state) if state.status == CredentialStatus::Active => vec![Response::RevokeCredential],
        _ => Vec::new(),
    })
}

/// Carries out `response` on the alert's subject and notes it on the alert (which it acknowledges
/// if it was still open).
pub async fn respond(
    core: &Core,
    actor: UserId,
    alert_id: &str,
    response: Response,
    context: &RequestContext,
) -> Result<(), AlertError> {
    let alert = core
        .store
        .alert(alert_id)
        .await?
        .ok_or(AlertError::NotFound)?;
    if !responses_for(core, &alert).await?.contains(&response) {
        return Err(AlertError::Invalid(
            "That response does not apply to this alert (any more).",
        ));
    }
    let subject = alert.subject.clone().unwrap_or_default();
    let done = match response {
        Response::EndSessions => {
            let user = UserId::parse(&subject).ok_or(AlertError::NotFound)?;
            let ended = sessions::end_all_sessions(core, actor, user, context).await?;
            format!("ended {ended} session(s) of {subject}")
        }
        Response::LockAccount => {
            let user = UserId::parse(&subject).ok_or(AlertError::NotFound)?;
            let responder = core
                .store
                .find_user(actor)
                .await?
                .ok_or(AlertError::NotFound)?;
            let reason = format!("Locked in response to alert {}", alert.id);
            match staff::set_status(
                core,
                Principal::Person(&responder),
                user,
                UserStatus::Deactivated,
                &reason,
                context,
            )
            .await
            {
                Ok(Change::Done) => format!("locked account {subject}"),
                Ok(Change::AwaitingApproval(approval)) => format!(
                    "asked to lock superadmin account {subject}: a second superadmin must approve request {}",
                    approval.id
                ),
                Err(staff::StaffError::Store(e)) => return Err(AlertError::Store(e)),
                Err(staff::StaffError::Approval(e)) => {
                    return Err(AlertError::Refused(e.to_string()));
                }
                Err(_) => return Err(AlertError::Invalid("That account cannot be locked by you.")),
            }
        }
        Response::RevokeCredential => {
            let tenant = alert
                .tenant_id
                .as_deref()
                .and_then(TenantId::parse)
                .ok_or(AlertError::NotFound)?;
            let reason = format!("Alert {alert_id}: {}", alert.reason);
            partners::revoke(core, actor, tenant, &subject, &reason, context)
                .await
                .map_err(|e| match e {
                    partners::PartnerError::Store(e) => AlertError::Store(e),
                    _ => AlertError::Invalid("The credential could not be revoked."),
                })?;
            format!("revoked credential {subject}")
        }
    };
    let note = format!("Response: {done}.");
    let status = (alert.status == AlertStatus::Open).then_some(AlertStatus::Acknowledged.as_str());
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::AlertUpdated,
        Outcome::Success,
        Actor::User(actor),
    )
    .context(context)
    .detail("alert", alert_id)
    .detail("change", response.as_str());
    let change = AlertChange {
        status,
        assignee: None,
        note: Some((actor, &note)),
    };
    core.store
        .work_on_alert(alert_id, &change, now, &event)
        .await?;
    Ok(())
}
