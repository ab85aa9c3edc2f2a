//! Browser sessions. Rows are keyed by the SHA-256 of the cookie's key; expiry is enforced on every
//! load, and expired rows are swept in the background.

use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::UserId;
use crate::domain::secrets::SecretDigest;
use crate::domain::sessions::{SessionMeta, SessionSelection, SessionSummary};
use crate::store::events::insert_event;

/// What is written when a session is created or its state changes.
pub struct SessionWrite<'a> {
    pub key: &'a SecretDigest,
    pub state_json: &'a str,
    pub meta: &'a SessionMeta,
    pub now: Millis,
    pub idle_expires_at: Millis,
    pub absolute_expires_at: Millis,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    public_id: String,
    ip: Option<String>,
    user_agent: Option<String>,
    auth_level: Option<String>,
    created_at: i64,
    authenticated_at: Option<i64>,
    last_seen_at: i64,
}

impl SessionRow {
    fn into_summary(self) -> SessionSummary {
        SessionSummary {
            public_id: self.public_id,
            ip: self.ip,
            user_agent: self.user_agent,
            auth_level: self.auth_level,
            signed_in_at: self.authenticated_at.unwrap_or(self.created_at),
            last_seen_at: self.last_seen_at,
        }
    }
}

/// Only refresh `last_seen_at` this often: a read-mostly console should not write on every click.
const TOUCH_GRANULARITY_MS: Millis = 15_000;

impl Store {
    /// The session's state, or `None` if it does not exist or has expired (idle or absolute).
    pub async fn load_session(
        &self,
        key: &SecretDigest,
        now: Millis,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT state FROM sessions \
             WHERE key_hash = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2",
        )
        .bind(key.as_hex())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(state,)| state))
    }

    pub async fn insert_session(&self, write: SessionWrite<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (key_hash, user_id, state, auth_level, ip, user_agent, created_at, \
             authenticated_at, last_seen_at, idle_expires_at, absolute_expires_at, public_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7, $9, $10, $11)",
        )
        .bind(write.key.as_hex())
        .bind(write.meta.user_id.map(|id| id.to_string()))
        .bind(write.state_json)
        .bind(write.meta.auth_level.as_deref())
        .bind(write.meta.ip.as_deref())
        .bind(write.meta.user_agent.as_deref())
        .bind(write.now)
        .bind(write.meta.auth_time)
        .bind(write.idle_expires_at)
        .bind(write.absolute_expires_at)
        .bind(write.meta.public_id.as_deref())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Returns false when the row is gone (ended elsewhere): the caller must not resurrect it.
    pub async fn update_session(&self, write: SessionWrite<'_>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET user_id = $2, state = $3, auth_level = $4, ip = $5, user_agent = $6, \
             authenticated_at = $7, last_seen_at = $8, idle_expires_at = $9, absolute_expires_at = $10, \
             public_id = $11 WHERE key_hash = $1",
        )
        .bind(write.key.as_hex())
        .bind(write.meta.user_id.map(|id| id.to_string()))
        .bind(write.state_json)
        .bind(write.meta.auth_level.as_deref())
        .bind(write.meta.ip.as_deref())
        .bind(write.meta.user_agent.as_deref())
        .bind(write.meta.auth_time)
        .bind(write.now)
        .bind(write.idle_expires_at)
        .bind(write.absolute_expires_at)
        .bind(write.meta.public_id.as_deref())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records activity: pushes the idle expiry forward (never past the absolute one).
    pub async fn touch_session(
        &self,
        key: &SecretDigest,
        now: Millis,
        idle_expires_at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $2, \
             idle_expires_at = CASE WHEN $3 < absolute_expires_at THEN $3 ELSE absolute_expires_at END \
             WHERE key_hash = $1 AND last_seen_at <= $4 AND idle_expires_at > $2",
        )
        .bind(key.as_hex())
        .bind(now)
        .bind(idle_expires_at)
        .bind(now - TOUCH_GRANULARITY_MS)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn delete_session(&self, key: &SecretDigest) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE key_hash = $1")
            .bind(key.as_hex())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes expired sessions; idempotent, safe to run on every instance.
    pub async fn sweep_sessions(&self, now: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1",
        )
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Number of live sessions of a user (the sessions page lists them; tests count them).
    pub async fn count_sessions_of(&self, user_id: UserId, now: Millis) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2",
        )
        .bind(user_id.to_string())
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }

    /// Live sessions of a user, most recently active first.
    pub async fn list_sessions_of(
        &self,
        user_id: UserId,
        now: Millis,
    ) -> Result<Vec<SessionSummary>, StoreError> {
        let rows: Vec<SessionRow> = sqlx::query_as(
            "SELECT public_id, ip, user_agent, auth_level, created_at, authenticated_at, last_seen_at \
             FROM sessions WHERE user_id = $1 AND public_id IS NOT NULL \
             AND idle_expires_at > $2 AND absolute_expires_at > $2 ORDER BY last_seen_at DESC",
        )
        .bind(user_id.to_string())
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(SessionRow::into_summary).collect())
    }

    /// Ends sessions of a user and records `event` (with the number ended as its `count`) in the
    /// same transaction; nothing is recorded when no session matched.
    pub async fn end_sessions(
        &self,
        user_id: UserId,
        which: SessionSelection<'_>,
        event: &Event,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let query = match which {
            SessionSelection::One(public_id) => {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND public_id = $2")
                    .bind(user_id.to_string())
                    .bind(public_id)
            }
            SessionSelection::AllBut(public_id) => sqlx::query(
                "DELETE FROM sessions WHERE user_id = $1 AND (public_id IS NULL OR public_id <> $2)",
            )
            .bind(user_id.to_string())
            .bind(public_id),
            SessionSelection::All => {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id.to_string())
            }
        };
        let ended = query.execute(&mut *tx).await?.rows_affected();
        if ended > 0 {
            insert_event(&mut *tx, &event.clone().detail("count", ended)).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    /// Ends every session of a user: deactivation, password reset, an administrator's "end all".
    pub async fn delete_sessions_of(&self, user_id: UserId) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }
}
