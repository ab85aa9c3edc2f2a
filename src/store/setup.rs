//! First-run bootstrap: setup links and the creation of the first superadmin.

use super::events::insert_event;
use super::{Store, StoreError, is_unique_violation};
use crate::clock::Millis;
use crate::domain::email::Email;
use crate::domain::events::Event;
use crate::domain::ids::{UserId, time_ordered_id};
use crate::domain::password::PasswordHash;
use crate::domain::rbac::Role;
use crate::domain::secrets::SecretDigest;
use crate::domain::users::{DisplayName, UserStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupTokenStatus {
    Valid,
    Used,
    Expired,
    Unknown,
}

pub struct BootstrapAdmin {
    pub user_id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub password_hash: PasswordHash,
    /// The setup link being consumed; `None` from the command line.
    pub setup_token: Option<SecretDigest>,
    pub now: Millis,
    pub event: Event,
}

/// A superadmin or security staff member created from the server's command line.
pub struct GlobalStaff {
    pub user_id: UserId,
    pub email: Email,
    pub display_name: DisplayName,
    pub password_hash: PasswordHash,
    pub role: Role,
    pub now: Millis,
    pub event: Event,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("the installation already has its first administrator")]
    AlreadyBootstrapped,
    #[error("the setup link was used or expired meanwhile")]
    TokenNotUsable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for BootstrapError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(error.into())
    }
}

impl Store {
    pub async fn insert_setup_token(
        &self,
        digest: &SecretDigest,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(digest.as_hex())
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn setup_token_status(
        &self,
        digest: &SecretDigest,
        now: Millis,
    ) -> Result<SetupTokenStatus, StoreError> {
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT expires_at, used_at FROM setup_tokens WHERE token_hash = $1")
                .bind(digest.as_hex())
                .fetch_optional(self.pool())
                .await?;
        if self.any_user_exists().await? {
            // Once an administrator exists every link is dead, used or not.
            return Ok(if row.is_some() {
                SetupTokenStatus::Used
            } else {
                SetupTokenStatus::Unknown
            });
        }
        Ok(match row {
            None => SetupTokenStatus::Unknown,
            Some((_, Some(_))) => SetupTokenStatus::Used,
            Some((expires_at, None)) if expires_at <= now => SetupTokenStatus::Expired,
            Some(_) => SetupTokenStatus::Valid,
        })
    }

    /// Creates the first superadmin in one transaction: the user, the role, the `installation`
    /// row (whose primary key lets only one bootstrap ever succeed), the consumed link, the event.
    pub async fn bootstrap_first_admin(&self, admin: BootstrapAdmin) -> Result<(), BootstrapError> {
        let mut tx = self.pool().begin().await?;
        let user_id = admin.user_id.to_string();

        if let Some(digest) = &admin.setup_token {
            let consumed = sqlx::query(
                "UPDATE setup_tokens SET used_at = $1 \
                 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
            )
            .bind(admin.now)
            .bind(digest.as_hex())
            .execute(&mut *tx)
            .await?;
            if consumed.rows_affected() != 1 {
                return Err(BootstrapError::TokenNotUsable);
            }
        }

        let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM users LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            return Err(BootstrapError::AlreadyBootstrapped);
        }

        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, display_name, password_hash, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&user_id)
        .bind(admin.email.as_str())
        .bind(admin.email.normalized())
        .bind(admin.display_name.as_str())
        .bind(admin.password_hash.as_str())
        .bind(UserStatus::Active.as_str())
        .bind(admin.now)
        .execute(&mut *tx)
        .await?;

        let installed = sqlx::query(
            "INSERT INTO installation (id, bootstrapped_at, bootstrapped_by) VALUES (1, $1, $2)",
        )
        .bind(admin.now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await;
        match installed {
            Err(e) if is_unique_violation(&e) => return Err(BootstrapError::AlreadyBootstrapped),
            other => {
                other?;
            }
        }

        sqlx::query(
            "INSERT INTO role_assignments (id, user_id, role, tenant_id, granted_by, created_at) \
             VALUES ($1, $2, $3, NULL, NULL, $4)",
        )
        .bind(time_ordered_id())
        .bind(&user_id)
        .bind(Role::Superadmin.as_str())
        .bind(admin.now)
        .execute(&mut *tx)
        .await?;

        insert_event(&mut *tx, &admin.event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A further superadmin or security staff member, from the server's command line; false if
    /// the address already has an account.
    pub async fn insert_global_staff(&self, staff: &GlobalStaff) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let user_id = staff.user_id.to_string();
        let inserted = sqlx::query(
            "INSERT INTO users (id, email, email_normalized, display_name, password_hash, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&user_id)
        .bind(staff.email.as_str())
        .bind(staff.email.normalized())
        .bind(staff.display_name.as_str())
        .bind(staff.password_hash.as_str())
        .bind(UserStatus::Active.as_str())
        .bind(staff.now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Ok(false),
            other => other?,
        };
        sqlx::query(
            "INSERT INTO role_assignments (id, user_id, role, tenant_id, granted_by, created_at) \
             VALUES ($1, $2, $3, NULL, NULL, $4)",
        )
        .bind(time_ordered_id())
        .bind(&user_id)
        .bind(staff.role.as_str())
        .bind(staff.now)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut *tx, &staff.event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes setup links a day after they stopped working: until then, someone opening an old
    /// link is told it expired or was used, rather than that it never existed.
    pub async fn sweep_setup_tokens(&self, now: Millis) -> Result<u64, StoreError> {
        const KEEP_SPENT_MS: Millis = 24 * 60 * 60 * 1000;
        let done = sqlx::query("DELETE FROM setup_tokens WHERE expires_at <= $1")
            .bind(now - KEEP_SPENT_MS)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
