//! Four-eyes approvals. A request is one row (with its event and the mails to the people who may
//! approve it); a decision is one guarded UPDATE of a pending row. Approval claims the row and
//! applies the action's effect in the same transaction, so however many instances race, the
//! action happens once — or, if the row was decided or expired first, not at all.

use sqlx::{Any, FromRow, Transaction};

use super::account_recovery::start_account_recovery_tx;
use super::events::insert_event;
use super::keys::{KeyDrop, drop_key_tx};
use super::outbox::insert_mail;
use super::partners::{GrantRevocation, revoke_grants_tx};
use super::staff::{
    InvitationRecord, OutgoingMail, delete_role_tx, insert_invitation_tx, insert_role_tx,
    set_user_status_tx,
};
use super::tenants::set_tenant_status_tx;
use super::{Store, StoreError, is_unique_violation};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::rbac::Role;
use crate::domain::secrets::SecretDigest;
use crate::domain::tenants::TenantStatus;
use crate::domain::users::UserStatus;

/// An approval as stored; the domain reads it into its typed action.
#[derive(Debug, Clone, FromRow)]
pub struct ApprovalRow {
    pub id: String,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub target: String,
    pub details: String,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub decision_note: Option<String>,
}

const COLUMNS: &str = "id, kind, tenant_id, subject_user_id, target, details, reason, requested_by, \
     requested_at, expires_at, status, decided_by, decided_at, decision_note";

/// A request about to be recorded.
pub struct NewApproval<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub tenant: Option<TenantId>,
    pub subject: Option<UserId>,
    pub target: &'a str,
    /// JSON for what the typed columns cannot hold.
    pub details: &'a str,
    /// Names the change itself: the same change cannot wait for approval twice.
    pub dedupe: &'a str,
    pub reason: &'a str,
    pub requested_by: UserId,
    pub requested_at: Millis,
    pub expires_at: Millis,
}

/// What an approved action changes, applied in the approval's transaction.
pub enum Effect<'a> {
    DropKey(KeyDrop<'a>),
    GrantRole {
        user: UserId,
        role: Role,
        granted_by: UserId,
    },
    RemoveRole {
        user: UserId,
        assignment: &'a str,
    },
    Deactivate(UserId),
    SuspendTenant(TenantId),
    /// Every grant and credential of the tenant; the event is recorded with the count.
    RevokeTenant(GrantRevocation<'a>, &'a Event),
    RecoverAccount {
        user: UserId,
        link: SecretDigest,
        link_expires_at: Millis,
    },
    /// An invitation to a global role, sent once approved.
    Invite {
        invitation: &'a InvitationRecord,
        token: &'a SecretDigest,
        mail: &'a OutgoingMail,
    },
}

/// How an approval's execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    Executed,
    /// Someone decided it first, or it expired: nothing changed.
    NoLongerPending,
    /// The change no longer applies (the role is already held or already gone, the keys changed
    /// since the drop was planned): nothing changed, and the request is still pending.
    NoLongerApplies,
}

/// A pending request closing without executing: rejected, cancelled or expired.
pub struct Closing<'a> {
    pub id: &'a str,
    pub status: &'a str,
    pub by: Option<UserId>,
    pub note: Option<&'a str>,
    pub at: Millis,
}

/// Which approvals a list shows, newest first.
pub struct ApprovalFilter<'a> {
    pub pending_only: bool,
    /// The keyset position `(requested_at, id)` of the last row of the previous page.
    pub before: Option<(Millis, &'a str)>,
}

impl Store {
    /// Records the request with its event and mails; false if the same change is already waiting.
    pub async fn insert_approval(
        &self,
        approval: &NewApproval<'_>,
        event: &Event,
        mails: &[OutgoingMail],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO approvals (id, kind, tenant_id, subject_user_id, target, dedupe, reason, \
             requested_by, requested_at, expires_at, status, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11)",
        )
        .bind(approval.id)
        .bind(approval.kind)
        .bind(approval.tenant.map(|t| t.to_string()))
        .bind(approval.subject.map(|u| u.to_string()))
        .bind(approval.target)
        .bind(approval.dedupe)
        .bind(approval.reason)
        .bind(approval.requested_by.to_string())
        .bind(approval.requested_at)
        .bind(approval.expires_at)
        .bind(approval.details)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Ok(false),
            other => other?,
        };
        finish(tx, std::slice::from_ref(event), mails).await?;
        Ok(true)
    }

    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The request waiting for this change, if any (not yet swept even if past its expiry).
    pub async fn pending_approval(&self, dedupe: &str) -> Result<Option<ApprovalRow>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE dedupe = $1 AND status = 'pending'"
        )))
        .bind(dedupe)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Approvals newest first, after a keyset position.
    pub async fn approvals_page(
        &self,
        filter: &ApprovalFilter<'_>,
        limit: i64,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let status = if filter.pending_only {
            "status = 'pending'"
        } else {
            "1 = 1"
        };
        let (at, id) = filter.before.unwrap_or((i64::MAX, ""));
        let position = if filter.before.is_some() {
            "(requested_at < $1 OR (requested_at = $1 AND id < $2))"
        } else {
            "$1 = $1 AND $2 = $2"
        };
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE {status} AND {position} \
             ORDER BY requested_at DESC, id DESC LIMIT $3"
        )))
        .bind(at)
        .bind(id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Pending requests whose time ran out, oldest first.
    pub async fn lapsed_approvals(
        &self,
        now: Millis,
        limit: i64,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals WHERE status = 'pending' AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Active people holding a global role: the only ones who may approve anything.
    pub async fn global_staff(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT u.id FROM users u JOIN role_assignments r ON r.user_id = u.id \
             WHERE u.status = 'active' AND r.tenant_id IS NULL ORDER BY u.id",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Rejection, cancellation or expiry: a pending request closes without executing. False if it
    /// was no longer pending.
    pub async fn close_approval(
        &self,
        closing: &Closing<'_>,
        event: &Event,
        mails: &[OutgoingMail],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let closed = sqlx::query(
            "UPDATE approvals SET status = $2, decided_by = $3, decided_at = $4, decision_note = $5 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(closing.id)
        .bind(closing.status)
        .bind(closing.by.map(|u| u.to_string()))
        .bind(closing.at)
        .bind(closing.note)
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() != 1 {
            return Ok(false);
        }
        finish(tx, std::slice::from_ref(event), mails).await?;
        Ok(true)
    }

    /// The second person's approval: claims the pending, unexpired request and applies its
    /// effect, events and mails in one transaction.
    pub async fn execute_approval(
        &self,
        id: &str,
        approver: UserId,
        now: Millis,
        effect: &Effect<'_>,
        events: &[Event],
        mails: &[OutgoingMail],
    ) -> Result<Execution, StoreError> {
        let mut tx = self.pool().begin().await?;
        let claimed = sqlx::query(
            "UPDATE approvals SET status = 'executed', decided_by = $2, decided_at = $3 \
             WHERE id = $1 AND status = 'pending' AND expires_at > $3",
        )
        .bind(id)
        .bind(approver.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(Execution::NoLongerPending);
        }
        if !self.apply(&mut tx, effect, now).await? {
            return Ok(Execution::NoLongerApplies);
        }
        finish(tx, events, mails).await?;
        Ok(Execution::Executed)
    }

    /// False when the change no longer applies; the caller then rolls back.
    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        effect: &Effect<'_>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let backend = self.backend();
        match effect {
            Effect::DropKey(drop) => return drop_key_tx(tx, drop, now, backend).await,
            Effect::GrantRole {
                user,
                role,
                granted_by,
            } => match insert_role_tx(tx, *user, *role, None, Some(*granted_by), now).await {
                Err(StoreError::Database(e)) if is_unique_violation(&e) => return Ok(false),
                other => other?,
            },
            Effect::RemoveRole { user, assignment } => {
                return delete_role_tx(tx, *user, assignment).await;
            }
            Effect::Deactivate(user) => {
                set_user_status_tx(tx, *user, UserStatus::Deactivated, now).await?;
            }
            Effect::SuspendTenant(tenant) => {
                set_tenant_status_tx(tx, *tenant, TenantStatus::Suspended, now, backend).await?;
            }
            Effect::RevokeTenant(revocation, event) => {
                revoke_grants_tx(tx, revocation, now, event, backend).await?;
            }
            Effect::RecoverAccount {
                user,
                link,
                link_expires_at,
            } => start_account_recovery_tx(tx, *user, link, now, *link_expires_at).await?,
            Effect::Invite {
                invitation,
                token,
                mail,
            } => match insert_invitation_tx(tx, invitation, token, mail).await {
                Err(StoreError::Database(e)) if is_unique_violation(&e) => return Ok(false),
                other => other?,
            },
        }
        Ok(true)
    }
}

async fn finish(
    mut tx: Transaction<'_, Any>,
    events: &[Event],
    mails: &[OutgoingMail],
) -> Result<(), StoreError> {
    for event in events {
        insert_event(&mut *tx, event).await?;
    }
    for mail in mails {
        insert_mail(&mut *tx, mail).await?;
    }
    tx.commit().await?;
    Ok(())
}
