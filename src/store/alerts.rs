//! Alerts: what the detectors raise (deduplicated, with evidence, exactly once across instances by
//! the detector cursor), and the queue security staff work through.

use sqlx::FromRow;

use super::events::{EVENT_COLUMNS_QUALIFIED, EventRow, insert_event};
use super::outbox::insert_mail;
use super::staff::OutgoingMail;
use super::travellers::{WhereaboutsUpdate, save_whereabouts_tx};
use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::alerts::{AlertStatus, Severity};
use crate::domain::events::{Event, EventRecord, EventType};
use crate::domain::ids::{TenantId, UserId};

/// An alert a detector wants raised (or, if its dedup key exists, more evidence for it).
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub id: String,
    pub tenant_id: Option<String>,
    pub detector: &'static str,
    pub severity: &'static str,
    pub reason: String,
    pub subject: Option<String>,
    pub dedup_key: String,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AlertRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub detector: String,
    pub severity: Severity,
    pub status: AlertStatus,
    pub reason: String,
    pub subject: Option<String>,
    pub assignee: Option<String>,
    pub assignee_email: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub evidence_count: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AlertNote {
    pub author_email: String,
    pub body: String,
    pub created_at: i64,
}

const ALERT_COLUMNS: &str = "a.id, a.tenant_id, a.detector, a.severity, a.status, a.reason, a.subject, \
     a.assignee, u.email AS assignee_email, a.created_at, a.updated_at, \
     (SELECT COUNT(*) FROM alert_evidence x WHERE x.alert_id = a.id) AS evidence_count";

impl Store {
    pub async fn detector_cursor(&self) -> Result<(i64, String), StoreError> {
        Ok(
            sqlx::query_as("SELECT last_at, last_id FROM detector_cursor WHERE id = 1")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Events after `(at, id)` in log order that occurred at or before `settled`. The redundant
    /// `>=` bounds the index range: with the OR alone PostgreSQL scans from the start of the log on
    /// every call (sealing slowed to 3,900 events/s after a million).
    pub async fn events_after(
        &self,
        after: (i64, &str),
        settled: Millis,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS_QUALIFIED} FROM auth_events e \
             WHERE e.occurred_at >= $1 AND (e.occurred_at > $1 OR e.id > $2) AND e.occurred_at <= $3 \
             ORDER BY e.occurred_at, e.id LIMIT $4"
        )))
        .bind(after.0)
        .bind(after.1)
        .bind(settled)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(EventRecord::from).collect())
    }

    /// Failed sign-ins in `(since, until]`, for one account (`subject`) or one address (`ip`),
    /// with how many distinct known accounts they aimed at.
    pub async fn login_failures(
        &self,
        subject: Option<&str>,
        ip: Option<&str>,
        since: Millis,
        until: Millis,
    ) -> Result<(i64, i64), StoreError> {
        let (column, value) = match (subject, ip) {
            (Some(subject), _) => ("subject", subject),
            (None, Some(ip)) => ("ip", ip),
            (None, None) => return Ok((0, 0)),
        };
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*), COUNT(DISTINCT subject) FROM auth_events \
             WHERE {column} = $1 AND event_type = 'login' AND outcome = 'failure' \
             AND occurred_at > $2 AND occurred_at <= $3"
        )))
        .bind(value)
        .bind(since)
        .bind(until)
        .fetch_one(self.pool())
        .await?)
    }

    /// Failed client authentications from one address in `(since, until]`.
    pub async fn client_auth_failures(
        &self,
        ip: &str,
        since: Millis,
        until: Millis,
    ) -> Result<i64, StoreError> {
        self.failures_from(EventType::ClientAuthFailed, ip, since, until)
            .await
    }

    /// Refused automation keys from `ip` in (since, until].
    pub async fn api_key_refusals(
        &self,
        ip: &str,
        since: Millis,
        until: Millis,
    ) -> Result<i64, StoreError> {
        self.failures_from(EventType::ApiKeyRefused, ip, since, until)
            .await
    }

    /// In how many different minutes of (since, until] `actor` caused an event of `kind` (several
    /// instances recording the same minute count once).
    pub async fn minutes_with(
        &self,
        kind: EventType,
        actor: &str,
        since: Millis,
        until: Millis,
    ) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(DISTINCT occurred_at / 60000) FROM auth_events WHERE actor_id = $1 \
             AND event_type = $4 AND occurred_at > $2 AND occurred_at <= $3",
        )
        .bind(actor)
        .bind(since)
        .bind(until)
        .bind(kind.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }

    async fn failures_from(
        &self,
        kind: EventType,
        ip: &str,
        since: Millis,
        until: Millis,
    ) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM auth_events WHERE ip = $1 AND event_type = $4 \
             AND occurred_at > $2 AND occurred_at <= $3",
        )
        .bind(ip)
        .bind(since)
        .bind(until)
        .bind(kind.as_str())
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }

    /// Raises (or adds evidence to) alerts and moves the cursor, if it is still where the pass read
    /// it. Mails go out only for alerts this call created. False: another instance did this pass.
    pub async fn record_detections(
        &self,
        from: (i64, &str),
        to: (i64, &str),
        alerts: &[NewAlert],
        whereabouts: &WhereaboutsUpdate<'_>,
        mails_for_new: impl Fn(&NewAlert) -> Vec<OutgoingMail>,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let moved = sqlx::query(
            "UPDATE detector_cursor SET last_at = $3, last_id = $4, updated_at = $5 \
             WHERE id = 1 AND last_at = $1 AND last_id = $2",
        )
        .bind(from.0)
        .bind(from.1)
        .bind(to.0)
        .bind(to.1)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Ok(false);
        }
        save_whereabouts_tx(&mut tx, whereabouts).await?;
        for alert in alerts {
            let created = sqlx::query(
                "INSERT INTO alerts (id, tenant_id, detector, severity, status, reason, subject, dedup_key, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, $8) ON CONFLICT (dedup_key) DO NOTHING",
            )
            .bind(&alert.id)
            .bind(alert.tenant_id.as_deref())
            .bind(alert.detector)
            .bind(alert.severity)
            .bind(&alert.reason)
            .bind(alert.subject.as_deref())
            .bind(&alert.dedup_key)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            let (alert_id,): (String,) =
                sqlx::query_as("SELECT id FROM alerts WHERE dedup_key = $1")
                    .bind(&alert.dedup_key)
                    .fetch_one(&mut *tx)
                    .await?;
            for event in &alert.evidence {
                sqlx::query(
                    "INSERT INTO alert_evidence (alert_id, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(&alert_id)
                .bind(event)
                .execute(&mut *tx)
                .await?;
            }
            if created {
                for mail in mails_for_new(alert) {
                    insert_mail(&mut *tx, &mail).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The queue, newest first: all tenants (`tenant` None) or one; `open_only` hides closed ones.
    /// Alerts newest first, after `(created_at, id)` (keyset paging), at most `limit`.
    pub async fn alerts(
        &self,
        tenant: Option<TenantId>,
        open_only: bool,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let (cursor_time, cursor_id) = after.unwrap_or((i64::MAX, ""));
        let status = if open_only {
            "a.status IN ('open', 'acknowledged')"
        } else {
            "1 = 1"
        };
        let scope = if tenant.is_some() {
            "a.tenant_id = $4"
        } else {
            "1 = 1"
        };
        let query = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a LEFT JOIN users u ON u.id = a.assignee \
             WHERE {scope} AND {status} \
             AND a.created_at <= $2 AND (a.created_at < $2 OR a.id < $3) \
             ORDER BY a.created_at DESC, a.id DESC LIMIT $1"
        )))
        .bind(limit)
        .bind(cursor_time)
        .bind(cursor_id.to_owned());
        let query = match tenant {
            Some(tenant) => query.bind(tenant.to_string()),
            None => query,
        };
        Ok(query.fetch_all(self.pool()).await?)
    }

    pub async fn count_open_alerts(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM alerts WHERE status IN ('open', 'acknowledged')")
                .fetch_one(self.pool())
                .await?;
        Ok(count)
    }

    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a LEFT JOIN users u ON u.id = a.assignee WHERE a.id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn alert_evidence(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS_QUALIFIED} FROM alert_evidence x JOIN auth_events e ON e.id = x.event_id \
             WHERE x.alert_id = $1 ORDER BY e.occurred_at, e.id LIMIT 200"
        )))
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(EventRecord::from).collect())
    }

    pub async fn alert_notes(&self, id: &str) -> Result<Vec<AlertNote>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT u.email AS author_email, n.body, n.created_at FROM alert_notes n \
             JOIN users u ON u.id = n.author WHERE n.alert_id = $1 ORDER BY n.created_at, n.id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Status, assignee and/or a note, with the event recording it. False if no such alert.
    pub async fn work_on_alert(
        &self,
        id: &str,
        change: &AlertChange<'_>,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let found = sqlx::query(
            "UPDATE alerts SET status = COALESCE($2, status), assignee = CASE WHEN $3 = '' THEN assignee ELSE $3 END, \
             updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(change.status)
        .bind(change.assignee.map(|u| u.to_string()).unwrap_or_default())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if found.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some((author, body)) = change.note {
            sqlx::query(
                "INSERT INTO alert_notes (id, alert_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(crate::domain::ids::time_ordered_id())
            .bind(id)
            .bind(author.to_string())
            .bind(body)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// What a person did to an alert.
pub struct AlertChange<'a> {
    pub status: Option<&'a str>,
    pub assignee: Option<UserId>,
    pub note: Option<(UserId, &'a str)>,
}
