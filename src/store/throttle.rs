//! Failed sign-in counters, shared by every instance through the database.

use super::{Store, StoreError};
use crate::clock::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThrottleRow {
    pub throttle_key: String,
    pub failures: i64,
    pub locked_until: Option<i64>,
}

impl Store {
    pub async fn throttle_rows(&self, keys: &[&str]) -> Result<Vec<ThrottleRow>, StoreError> {
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let row: Option<ThrottleRow> =
                sqlx::query_as("SELECT throttle_key, failures, locked_until FROM login_throttle WHERE throttle_key = $1")
                    .bind(*key)
                    .fetch_optional(self.pool())
                    .await?;
            rows.extend(row);
        }
        Ok(rows)
    }

    /// Failures counted under `key` in a window that started after `window_start` (0 otherwise).
    pub async fn failures_within(
        &self,
        key: &str,
        window_start: Millis,
    ) -> Result<i64, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT failures FROM login_throttle WHERE throttle_key = $1 AND window_started_at > $2",
        )
        .bind(key)
        .bind(window_start)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map_or(0, |(failures,)| failures))
    }

    /// Counts one request in a fixed window of `window` ms that starts with the first request after
    /// the previous window ended; returns the count so far and when the window started.
    pub async fn count_in_window(
        &self,
        key: &str,
        now: Millis,
        window: Millis,
    ) -> Result<(i64, Millis), StoreError> {
        Ok(sqlx::query_as(
            "INSERT INTO login_throttle (throttle_key, failures, window_started_at, locked_until, updated_at) \
             VALUES ($1, 1, $2, NULL, $2) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_started_at <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_started_at = CASE WHEN login_throttle.window_started_at <= $3 THEN $2 \
                                        ELSE login_throttle.window_started_at END, \
               updated_at = $2 \
             RETURNING failures, window_started_at",
        )
        .bind(key)
        .bind(now)
        .bind(now - window)
        .fetch_one(self.pool())
        .await?)
    }

    /// Counts one failure atomically (a window older than `window_start` starts over) and returns
    /// the failures now in the window.
    pub async fn count_failure(
        &self,
        key: &str,
        now: Millis,
        window_start: Millis,
    ) -> Result<i64, StoreError> {
        let (failures,): (i64,) = sqlx::query_as(
            "INSERT INTO login_throttle (throttle_key, failures, window_started_at, locked_until, updated_at) \
             VALUES ($1, 1, $2, NULL, $2) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.window_started_at <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
               window_started_at = CASE WHEN login_throttle.window_started_at <= $3 THEN $2 \
                                        ELSE login_throttle.window_started_at END, \
               updated_at = $2 \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(window_start)
        .fetch_one(self.pool())
        .await?;
        Ok(failures)
    }

    pub async fn lock_until(&self, key: &str, until: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE login_throttle SET locked_until = $2 WHERE throttle_key = $1")
            .bind(key)
            .bind(until)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Lifts an expired lock; true if this call lifted it (so one instance records the unlock).
    /// The failure count stays until its window ends, so the next failure locks for longer.
    pub async fn lift_expired_lock(&self, key: &str, now: Millis) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE login_throttle SET locked_until = NULL \
             WHERE throttle_key = $1 AND locked_until IS NOT NULL AND locked_until <= $2",
        )
        .bind(key)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn clear_throttle(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
