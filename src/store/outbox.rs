//! The e-mail outbox. Messages are claimed with a short lease, so several instances share the
//! sending without sending anything twice; delivered messages have their bodies scrubbed (an
//! invitation link must not outlive its delivery in the database).

use sqlx::{Any, Executor};

use super::staff::OutgoingMail;
use super::{Backend, Store, StoreError};
use crate::clock::Millis;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueuedMail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub attempts: i64,
    pub created_at: Millis,
}

pub(crate) async fn insert_mail<'e, E>(executor: E, mail: &OutgoingMail) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO outbox (id, recipient, subject, body_text, body_html, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&mail.id)
    .bind(&mail.recipient)
    .bind(&mail.subject)
    .bind(&mail.body_text)
    .bind(&mail.body_html)
    .bind(mail.created_at)
    .execute(executor)
    .await?;
    Ok(())
}

impl Store {
    /// Queues already rendered mails (notices decided elsewhere).
    pub async fn queue_mail(&self, mails: &[OutgoingMail]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for mail in mails {
            insert_mail(&mut *tx, mail).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Messages not yet sent (and not given up).
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND abandoned_at IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }

    /// Claims up to `limit` messages that are due and not leased by another instance.
    pub async fn claim_due_mail(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: i64,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let candidates: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM outbox WHERE sent_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) ORDER BY created_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for (id,) in candidates {
            let won = sqlx::query(
                "UPDATE outbox SET lease_until = $3 WHERE id = $1 AND sent_at IS NULL AND abandoned_at IS NULL \
                 AND (lease_until IS NULL OR lease_until <= $2)",
            )
            .bind(&id)
            .bind(now)
            .bind(lease_until)
            .execute(self.pool())
            .await?;
            if won.rows_affected() == 1 {
                let mail: QueuedMail = sqlx::query_as(
                    "SELECT id, recipient, subject, body_text, body_html, attempts, created_at FROM outbox WHERE id = $1",
                )
                .bind(&id)
                .fetch_one(self.pool())
                .await?;
                claimed.push(mail);
            }
        }
        Ok(claimed)
    }

    pub async fn mark_mail_sent(&self, id: &str, now: Millis) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET sent_at = $2, lease_until = NULL, attempts = attempts + 1, last_error = NULL, \
             body_text = '', body_html = '' WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// After bodies were scrubbed: on SQLite, copies the write-ahead log into the database and
    /// empties it, so no older page image (with a one-time link in it) stays in the `-wal` file.
    /// Best effort: with a reader in the way the log is emptied at a later delivery. PostgreSQL
    /// reclaims the old row versions itself (autovacuum); nothing to do here.
    pub async fn forget_scrubbed_bodies(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    pub async fn mark_mail_failed(
        &self,
        id: &str,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, lease_until = NULL, last_error = $3 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A mail that failed for too long: never retried again, kept with its last error.
    pub async fn mark_mail_abandoned(
        &self,
        id: &str,
        now: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, abandoned_at = $2, lease_until = NULL, last_error = $3 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Messages still waiting to be delivered (the dashboard and tests watch this).
    pub async fn unsent_mail(&self) -> Result<i64, StoreError> {
        self.outbox_backlog().await
    }

    /// Messages given up after failing for too long.
    pub async fn abandoned_mail(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE abandoned_at IS NOT NULL")
                .fetch_one(self.pool())
                .await?;
        Ok(count)
    }
}
