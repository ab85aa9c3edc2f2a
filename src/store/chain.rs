//! The event log's hash chain: what is left to seal, sealing a batch (exactly once across
//! instances: the head moves only from the position the sealer read), walking the chain for
//! verification, and the record of verifications.

use sqlx::FromRow;

use super::events::EVENT_COLUMNS_QUALIFIED;
use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::EventRecord;

#[derive(Debug, Clone, FromRow)]
pub struct ChainHead {
    pub position: i64,
    pub hash: String,
    pub last_at: i64,
    pub last_id: String,
    pub anchor_position: i64,
    pub anchor_hash: String,
}

/// A link as stored, with its event as it is now (None: the event row is gone).
pub struct StoredLink {
    pub position: i64,
    pub hash: String,
    pub event_id: String,
    pub event: Option<EventRecord>,
}

#[derive(FromRow)]
struct LinkRow {
    position: i64,
    hash: String,
    event_id: String,
    #[sqlx(flatten)]
    event: OptionalEvent,
}

/// The joined event columns, all NULL when the event row was deleted.
#[derive(FromRow)]
struct OptionalEvent {
    id: Option<String>,
    occurred_at: Option<i64>,
    tenant_id: Option<String>,
    actor_kind: Option<String>,
    actor_id: Option<String>,
    subject: Option<String>,
    event_type: Option<String>,
    outcome: Option<String>,
    ip: Option<String>,
    country: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    session_id: Option<String>,
    details: Option<String>,
}

impl OptionalEvent {
    fn into_record(self) -> Option<EventRecord> {
        Some(EventRecord {
            id: self.id?,
            occurred_at: self.occurred_at?,
            tenant_id: self.tenant_id,
            actor_kind: self.actor_kind?,
            actor_id: self.actor_id,
            subject: self.subject,
            event_type: self.event_type?,
            outcome: self.outcome?,
            ip: self.ip,
            country: self.country,
            user_agent: self.user_agent,
            request_id: self.request_id,
            session: self.session_id,
            details: self.details?,
        })
    }
}

/// The last verification, for the console.
#[derive(Debug, Clone, FromRow)]
pub struct VerificationRecord {
    pub id: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub ok: i64,
    pub checked: i64,
    pub broken_position: Option<i64>,
    pub broken_event: Option<String>,
    pub problem: Option<String>,
    pub run_by: String,
}

/// One run of the retention purge.
#[derive(Debug, Clone, FromRow)]
pub struct RetentionRun {
    pub ran_at: Millis,
    pub removed: i64,
    /// Events older than this were removed.
    pub cutoff: Millis,
}

/// Links per INSERT statement (three parameters each, well under either backend's limit).
const LINKS_PER_INSERT: usize = 250;

impl Store {
    pub async fn chain_head(&self) -> Result<ChainHead, StoreError> {
        Ok(sqlx::query_as(
            "SELECT position, hash, last_at, last_id, anchor_position, anchor_hash FROM event_chain_head WHERE id = 1",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// Events after the head, in sealing order, that occurred at or before `settled`.
    pub async fn events_to_seal(
        &self,
        head: &ChainHead,
        settled: Millis,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.events_after((head.last_at, &head.last_id), settled, limit)
            .await
    }

    /// Appends links and moves the head, if the head is still where the sealer read it. False when
    /// another instance sealed first (nothing is written).
    pub async fn seal_links(
        &self,
        from: &ChainHead,
        links: &[(i64, String, String)],
        last: &EventRecord,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let Some((position, _, hash)) = links.last() else {
            return Ok(true);
        };
        let mut tx = self.pool().begin().await?;
        let moved = sqlx::query(
            "UPDATE event_chain_head SET position = $2, hash = $3, last_at = $4, last_id = $5, updated_at = $6 \
             WHERE id = 1 AND position = $1",
        )
        .bind(from.position)
        .bind(position)
        .bind(hash)
        .bind(last.occurred_at)
        .bind(&last.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        // Many rows per statement: one round trip per link made PostgreSQL seal slower (3,900/s)
        // than eight writers insert (8,300/s).
        for chunk in links.chunks(LINKS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let p = i * 3;
                    format!("(${}, ${}, ${}, $1)", p + 2, p + 3, p + 4)
                })
                .collect();
            let sql = format!(
                "INSERT INTO event_chain (position, event_id, hash, sealed_at) VALUES {}",
                rows.join(", ")
            );
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
            for (position, event_id, hash) in chunk {
                insert = insert.bind(position).bind(event_id).bind(hash);
            }
            insert.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Links after `position`, in order, each with its event as stored now.
    pub async fn chain_links(&self, after: i64, limit: i64) -> Result<Vec<StoredLink>, StoreError> {
        let rows: Vec<LinkRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.position, c.hash, c.event_id, {EVENT_COLUMNS_QUALIFIED} FROM event_chain c \
             LEFT JOIN auth_events e ON e.id = c.event_id \
             WHERE c.position > $1 ORDER BY c.position LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredLink {
                position: row.position,
                hash: row.hash,
                event_id: row.event_id,
                event: row.event.into_record(),
            })
            .collect())
    }

    /// Events waiting to be sealed (for the console and `audit verify`).
    pub async fn unsealed_events(&self, head: &ChainHead) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM auth_events WHERE occurred_at >= $1 AND (occurred_at > $1 OR id > $2)",
        )
        .bind(head.last_at)
        .bind(&head.last_id)
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }

    /// The oldest event dated at or before the head that no link seals (None: there is none).
    /// A scan of the sealed range with an index probe per row: verification's price, not the
    /// sealer's.
    pub async fn first_unsealed_behind(
        &self,
        head: &ChainHead,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT e.id FROM auth_events e \
             WHERE e.occurred_at <= $1 AND (e.occurred_at < $1 OR e.id <= $2) \
             AND NOT EXISTS (SELECT 1 FROM event_chain c WHERE c.event_id = e.id) \
             ORDER BY e.occurred_at, e.id LIMIT 1",
        )
        .bind(head.last_at)
        .bind(&head.last_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(id,)| id))
    }

    pub async fn record_verification(&self, record: &VerificationRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_verifications (id, started_at, finished_at, ok, checked, broken_position, broken_event, problem, run_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&record.id)
        .bind(record.started_at)
        .bind(record.finished_at)
        .bind(record.ok)
        .bind(record.checked)
        .bind(record.broken_position)
        .bind(record.broken_event.as_deref())
        .bind(record.problem.as_deref())
        .bind(&record.run_by)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn latest_verification(&self) -> Result<Option<VerificationRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, started_at, finished_at, ok, checked, broken_position, broken_event, problem, run_by \
             FROM audit_verifications ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?)
    }

    /// Purges the oldest sealed events that occurred before `cutoff`, at most `limit`: their rows
    /// and links go, and the chain's anchor moves to the last purged link (its hash stays, so the
    /// rest still verifies). Returns how many were removed (0: nothing old enough, or another
    /// instance purged the same batch first).
    pub async fn purge_sealed_before(
        &self,
        cutoff: Millis,
        limit: i64,
        run_id: &str,
        now: Millis,
    ) -> Result<u64, StoreError> {
        let head = self.chain_head().await?;
        let batch: Vec<(i64, String, String)> = sqlx::query_as(
            "SELECT c.position, c.hash, c.event_id FROM event_chain c JOIN auth_events e ON e.id = c.event_id \
             WHERE c.position > $1 AND c.position <= $1 + $2 AND e.occurred_at < $3 ORDER BY c.position",
        )
        .bind(head.anchor_position)
        .bind(limit)
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        // Only an unbroken run from the anchor: the chain must stay verifiable from its new anchor.
        let run: Vec<&(i64, String, String)> = batch
            .iter()
            .enumerate()
            .take_while(|(i, link)| link.0 == head.anchor_position + 1 + *i as i64)
            .map(|(_, link)| link)
            .collect();
        let Some(&(last_position, ref last_hash, _)) = run.last().copied() else {
            return Ok(0);
        };
        let mut tx = self.pool().begin().await?;
        let moved = sqlx::query(
            "UPDATE event_chain_head SET anchor_position = $2, anchor_hash = $3, updated_at = $4 \
             WHERE id = 1 AND anchor_position = $1",
        )
        .bind(head.anchor_position)
        .bind(last_position)
        .bind(last_hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(0);
        }
        sqlx::query("UPDATE purge_permit SET active = 1 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query(
            "DELETE FROM auth_events WHERE id IN \
             (SELECT event_id FROM event_chain WHERE position > $1 AND position <= $2)",
        )
        .bind(head.anchor_position)
        .bind(last_position)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE purge_permit SET active = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM event_chain WHERE position <= $1")
            .bind(last_position)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO retention_runs (id, ran_at, cutoff, removed, anchor_position) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET removed = retention_runs.removed + $4, anchor_position = $5, ran_at = $2",
        )
        .bind(run_id)
        .bind(now)
        .bind(cutoff)
        .bind(i64::try_from(removed).unwrap_or(i64::MAX))
        .bind(last_position)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// The latest purge.
    pub async fn latest_retention_run(&self) -> Result<Option<RetentionRun>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT ran_at, removed, cutoff FROM retention_runs ORDER BY ran_at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?)
    }
}
