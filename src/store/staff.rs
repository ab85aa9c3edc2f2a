//! Invitations, role assignments and account status.

use sqlx::{Any, Transaction};

use super::events::insert_event;
use super::{Store, StoreError, is_unique_violation};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::password::PasswordHash;
use crate::domain::rbac::Role;
use crate::domain::secrets::SecretDigest;
use crate::domain::users::UserStatus;

/// An invitation as stored (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct InvitationRecord {
    pub id: String,
    pub email: String,
    pub email_normalized: String,
    pub display_name: String,
    pub role: Role,
    pub tenant: Option<TenantId>,
    pub invited_by: UserId,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A message for the outbox.
#[derive(Clone)]
pub struct OutgoingMail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub created_at: Millis,
}

pub enum Accepted {
    Yes,
    LinkSpent,
    EmailTaken,
}

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: String,
    email: String,
    email_normalized: String,
    display_name: String,
    role: String,
    tenant_id: Option<String>,
    invited_by: String,
    created_at: i64,
    expires_at: i64,
    accepted_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl InvitationRow {
    fn into_record(self) -> Result<(InvitationRecord, Option<i64>, Option<i64>), StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("invitation {}: {what}", self.id));
        let record = InvitationRecord {
            role: Role::parse(&self.role).ok_or_else(|| corrupt("role"))?,
            tenant: match &self.tenant_id {
                Some(raw) => Some(TenantId::parse(raw).ok_or_else(|| corrupt("tenant"))?),
                None => None,
            },
            invited_by: UserId::parse(&self.invited_by).ok_or_else(|| corrupt("inviter"))?,
            id: self.id,
            email: self.email,
            email_normalized: self.email_normalized,
            display_name: self.display_name,
            created_at: self.created_at,
            expires_at: self.expires_at,
        };
        Ok((record, self.accepted_at, self.revoked_at))
    }
}

const INVITATION_COLUMNS: &str = "id, email, email_normalized, display_name, role, tenant_id, invited_by, \
                                  created_at, expires_at, accepted_at, revoked_at";

impl Store {
    /// The invitation, its mail and its event commit together: no invitation without its e-mail.
    pub async fn insert_invitation(
        &self,
        invitation: &InvitationRecord,
        token: &SecretDigest,
        mail: &OutgoingMail,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        insert_invitation_tx(&mut tx, invitation, token, mail).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn invitation_by_token(
        &self,
        token: &SecretDigest,
    ) -> Result<Option<(InvitationRecord, Option<i64>, Option<i64>)>, StoreError> {
        let sql = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1");
        let row: Option<InvitationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token.as_hex())
            .fetch_optional(self.pool())
            .await?;
        row.map(InvitationRow::into_record).transpose()
    }

    /// Invitations not yet accepted, revoked or expired, newest first.
    pub async fn pending_invitations(
        &self,
        now: Millis,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        let sql = format!(
            "SELECT {INVITATION_COLUMNS} FROM invitations \
             WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1 ORDER BY created_at DESC"
        );
        let rows: Vec<InvitationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|row| row.into_record().map(|(record, _, _)| record))
            .collect()
    }

    /// Consumes the link and creates the account with its role, or changes nothing.
    pub async fn accept_invitation(
        &self,
        token: &SecretDigest,
        user: UserId,
        display_name: &str,
        password_hash: &PasswordHash,
        now: Millis,
        event: &Event,
    ) -> Result<Accepted, StoreError> {
        let mut tx = self.pool().begin().await?;
        let claimed = sqlx::query(
            "UPDATE invitations SET accepted_at = $2 WHERE token_hash = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(token.as_hex())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(Accepted::LinkSpent);
        }
        let sql = format!("SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = $1");
        let row: InvitationRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token.as_hex())
            .fetch_one(&mut *tx)
            .await?;
        let (invitation, _, _) = row.into_record()?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, email_normalized, display_name, password_hash, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(user.to_string())
        .bind(&invitation.email)
        .bind(&invitation.email_normalized)
        .bind(display_name)
        .bind(password_hash.as_str())
        .bind(UserStatus::Active.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Ok(Accepted::EmailTaken),
            other => {
                other?;
            }
        }
        insert_role_tx(
            &mut tx,
            user,
            invitation.role,
            invitation.tenant,
            Some(invitation.invited_by),
            now,
        )
        .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(Accepted::Yes)
    }

    pub async fn revoke_invitation(
        &self,
        id: &str,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE invitations SET revoked_at = $2 WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Grants a role; `Ok(false)` if the user already holds it there.
    pub async fn insert_role(
        &self,
        user: UserId,
        role: Role,
        tenant: Option<TenantId>,
        granted_by: UserId,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        match insert_role_tx(&mut tx, user, role, tenant, Some(granted_by), now).await {
            Err(StoreError::Database(e)) if is_unique_violation(&e) => return Ok(false),
            other => other?,
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_role(
        &self,
        user: UserId,
        assignment: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        if !delete_role_tx(&mut tx, user, assignment).await? {
            return Ok(false);
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Changes an account's status; deactivating deletes every session of it in the same transaction.
    pub async fn set_user_status(
        &self,
        user: UserId,
        status: UserStatus,
        now: Millis,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        set_user_status_tx(&mut tx, user, status, now).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// False when the assignment is no longer there (removed by someone else first).
pub(crate) async fn delete_role_tx(
    tx: &mut Transaction<'_, Any>,
    user: UserId,
    assignment: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM role_assignments WHERE id = $1 AND user_id = $2")
        .bind(assignment)
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn set_user_status_tx(
    tx: &mut Transaction<'_, Any>,
    user: UserId,
    status: UserStatus,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(user.to_string())
        .bind(status.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    if status == UserStatus::Deactivated {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub(crate) async fn insert_role_tx(
    tx: &mut Transaction<'_, Any>,
    user: UserId,
    role: Role,
    tenant: Option<TenantId>,
    granted_by: Option<UserId>,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO role_assignments (id, user_id, role, tenant_id, granted_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(time_ordered_id())
    .bind(user.to_string())
    .bind(role.as_str())
    .bind(tenant.map(|t| t.to_string()))
    .bind(granted_by.map(|g| g.to_string()))
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::from)?;
    Ok(())
}

/// The invitation and its mail (with the only copy of the link).
pub(crate) async fn insert_invitation_tx(
    tx: &mut Transaction<'_, Any>,
    invitation: &InvitationRecord,
    token: &SecretDigest,
    mail: &OutgoingMail,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO invitations (id, email, email_normalized, display_name, role, tenant_id, token_hash, \
         invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&invitation.id)
    .bind(&invitation.email)
    .bind(&invitation.email_normalized)
    .bind(&invitation.display_name)
    .bind(invitation.role.as_str())
    .bind(invitation.tenant.map(|t| t.to_string()))
    .bind(token.as_hex())
    .bind(invitation.invited_by.to_string())
    .bind(invitation.created_at)
    .bind(invitation.expires_at)
    .execute(&mut **tx)
    .await?;
    super::outbox::insert_mail(&mut **tx, mail).await?;
    Ok(())
}
