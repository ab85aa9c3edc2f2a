//! One-time recovery codes, stored as SHA-256.

use super::events::insert_event;
use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{UserId, time_ordered_id};
use crate::domain::secrets::SecretDigest;

impl Store {
    /// Replaces all of a user's codes (used or not) with a new set, with its event.
    pub async fn replace_recovery_codes(
        &self,
        user_id: UserId,
        codes: &[SecretDigest],
        now: Millis,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        for code in codes {
            sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4)")
                .bind(time_ordered_id())
                .bind(user_id.to_string())
                .bind(code.as_hex())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Burns a code if it is the user's and unused; the event commits with it. False otherwise.
    pub async fn redeem_recovery_code(
        &self,
        user_id: UserId,
        code: &SecretDigest,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let burned = sqlx::query(
            "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id.to_string())
        .bind(code.as_hex())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if burned.rows_affected() != 1 {
            return Ok(false);
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn unused_recovery_codes(&self, user_id: UserId) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
        )
        .bind(user_id.to_string())
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }
}
