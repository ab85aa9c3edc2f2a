//! The append-only authentication event log.

use sqlx::{Any, Executor, FromRow};

use super::{Store, StoreError};
use crate::domain::events::{Event, EventRecord};
use crate::domain::ids::UserId;

#[derive(FromRow)]
struct EventRow {
    id: String,
    occurred_at: i64,
    tenant_id: Option<String>,
    actor_kind: String,
    actor_id: Option<String>,
    subject: Option<String>,
    event_type: String,
    outcome: String,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: String,
}

impl From<EventRow> for EventRecord {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            occurred_at: row.occurred_at,
            tenant_id: row.tenant_id,
            actor_kind: row.actor_kind,
            actor_id: row.actor_id,
            subject: row.subject,
            event_type: row.event_type,
            outcome: row.outcome,
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
            details: row.details,
        }
    }
}

const EVENT_COLUMNS: &str = "id, occurred_at, tenant_id, actor_kind, actor_id, subject, event_type, \
                             outcome, ip, user_agent, request_id, details";

impl Store {
    pub async fn append_event(&self, event: &Event) -> Result<(), StoreError> {
        insert_event(self.pool(), event).await
    }

    /// Newest first: what the dashboard shows as "recent activity on your account".
    pub async fn recent_events_for_subject(
        &self,
        subject: UserId,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM auth_events WHERE subject = $1 \
             ORDER BY occurred_at DESC, id DESC LIMIT $2"
        );
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(subject.to_string())
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(EventRecord::from).collect())
    }

    /// Newest first, across the installation. The filtered, paginated viewer builds on this.
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM auth_events ORDER BY occurred_at DESC, id DESC LIMIT $1"
        );
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(EventRecord::from).collect())
    }
}

/// Appends on any executor; use cases pass their transaction so an action and its event commit
/// together.
pub(crate) async fn insert_event<'e, E>(executor: E, event: &Event) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO auth_events (id, occurred_at, tenant_id, actor_kind, actor_id, subject, event_type, \
         outcome, ip, country, user_agent, request_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $11, $12)",
    )
    .bind(&event.id)
    .bind(event.occurred_at)
    .bind(event.tenant_id.as_deref())
    .bind(event.actor.kind())
    .bind(event.actor.id())
    .bind(event.subject.map(|s| s.to_string()))
    .bind(event.event_type.as_str())
    .bind(event.outcome.as_str())
    .bind(event.context.ip.as_deref())
    .bind(event.context.user_agent.as_deref())
    .bind(event.context.request_id.as_deref())
    .bind(event.details.to_string())
    .execute(executor)
    .await?;
    Ok(())
}
