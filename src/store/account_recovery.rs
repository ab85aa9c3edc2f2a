//! Assisted account recovery: every passkey, recovery code and session of a person goes at once,
//! and a single-use link lets them enrol a new passkey after their password.

use sqlx::{Any, Transaction};

use super::events::insert_event;
use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::UserId;
use crate::domain::secrets::SecretDigest;

impl Store {
    /// Removes the person's passkeys, recovery codes and sessions and stores the link's digest,
    /// with the event, in one transaction.
    pub async fn start_account_recovery(
        &self,
        user: UserId,
        link: &SecretDigest,
        now: Millis,
        expires_at: Millis,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        start_account_recovery_tx(&mut tx, user, link, now, expires_at).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Whether the person's passkeys were removed by an assisted recovery and none was enrolled
    /// since: their password alone must not lead to enrolling one (only the link does).
    pub async fn awaits_account_recovery(&self, user: UserId) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM account_recoveries r WHERE r.user_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = r.user_id) LIMIT 1",
        )
        .bind(user.to_string())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// The person a recovery link is for, while it is unused and unexpired.
    pub async fn account_recovery_user(
        &self,
        link: &SecretDigest,
        now: Millis,
    ) -> Result<Option<UserId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT user_id FROM account_recoveries \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(link.as_hex())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.and_then(|(id,)| UserId::parse(&id)))
    }

    /// Spends the link: true for exactly one caller, while it is unused and unexpired.
    pub async fn spend_account_recovery(
        &self,
        link: &SecretDigest,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let spent = sqlx::query(
            "UPDATE account_recoveries SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(link.as_hex())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if spent {
            insert_event(&mut *tx, event).await?;
        }
        tx.commit().await?;
        Ok(spent)
    }
}

/// Removes the person's passkeys, recovery codes and sessions and stores the link's digest.
pub(crate) async fn start_account_recovery_tx(
    tx: &mut Transaction<'_, Any>,
    user: UserId,
    link: &SecretDigest,
    now: Millis,
    expires_at: Millis,
) -> Result<(), StoreError> {
    for table in ["passkeys", "recovery_codes", "sessions"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE user_id = $1"
        )))
        .bind(user.to_string())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO account_recoveries (token_hash, user_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(link.as_hex())
    .bind(user.to_string())
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
