//! Scopes and access requests: submission, confirmation, decisions, withdrawal, expiry.

use super::{Approval, Decided, Denial, NewRequest};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;
use crate::domain::partners::{AccessRequest, RequestStatus, Scope};
use crate::domain::secrets::SecretDigest;
use crate::store::events::insert_event;
use crate::store::outbox::insert_mail;
use crate::store::staff::OutgoingMail;
use crate::store::{Store, StoreError, is_unique_violation};

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: String,
    organisation: String,
    contact_name: String,
    email: String,
    scopes: String,
    justification: String,
    status: String,
    created_at: i64,
    confirmed_at: Option<i64>,
    decided_at: Option<i64>,
    decided_by: Option<String>,
    decision_reason: Option<String>,
    grant_id: Option<String>,
}

impl RequestRow {
    fn into_request(self) -> Result<AccessRequest, StoreError> {
        Ok(AccessRequest {
            status: RequestStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("request {} status", self.id)))?,
            scopes: serde_json::from_str(&self.scopes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            id: self.id,
            organisation: self.organisation,
            contact_name: self.contact_name,
            email: self.email,
            justification: self.justification,
            created_at: self.created_at,
            confirmed_at: self.confirmed_at,
            decided_at: self.decided_at,
            decided_by: self.decided_by,
            decision_reason: self.decision_reason,
            grant_id: self.grant_id,
        })
    }
}

const REQUEST_COLUMNS: &str = "id, organisation, contact_name, email, scopes, justification, status, created_at, \
                               confirmed_at, decided_at, decided_by, decision_reason, grant_id";

impl Store {
    pub async fn scopes_of(&self, tenant: TenantId) -> Result<Vec<Scope>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, name, description FROM scopes WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, description)| Scope {
                id,
                name,
                description,
            })
            .collect())
    }

    /// Adds a scope with its event; `Ok(false)` (and no event) if the name exists in this tenant.
    pub async fn insert_scope(
        &self,
        tenant: TenantId,
        scope: &Scope,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query("INSERT INTO scopes (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&scope.id)
            .bind(tenant.to_string())
            .bind(&scope.name)
            .bind(&scope.description)
            .bind(now)
            .execute(&mut *tx)
            .await;
        match done {
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a scope with its event; the removed scope, or `None` (and no event) if this tenant
    /// has no such scope. The event gets the scope's name.
    pub async fn delete_scope(
        &self,
        tenant: TenantId,
        id: &str,
        event: &Event,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let removed: Option<(String,)> =
            sqlx::query_as("DELETE FROM scopes WHERE tenant_id = $1 AND id = $2 RETURNING name")
                .bind(tenant.to_string())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((name,)) = removed else {
            return Ok(None);
        };
        let event = event.clone().detail("scope", name.as_str());
        insert_event(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(Some(name))
    }

    /// Stores an unconfirmed request and queues its confirmation mail, with the event.
    pub async fn insert_request(
        &self,
        tenant: TenantId,
        request: NewRequest<'_>,
        mail: &OutgoingMail,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO access_requests (id, tenant_id, organisation, contact_name, email, email_normalized, scopes, \
             justification, status, confirm_token_hash, ip, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'unconfirmed', $9, $10, $11)",
        )
        .bind(request.id)
        .bind(tenant.to_string())
        .bind(request.organisation)
        .bind(request.contact_name)
        .bind(request.email)
        .bind(request.email_normalized)
        .bind(serde_json::to_string(request.scopes).map_err(|e| StoreError::Unexpected(e.to_string()))?)
        .bind(request.justification)
        .bind(request.confirm_token.as_hex())
        .bind(request.ip)
        .bind(request.now)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut *tx, mail).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Confirms the request behind a link (once, within `valid_since`), queuing mails to the
    /// tenant's admins. Returns the request if this call confirmed it.
    pub async fn confirm_request(
        &self,
        tenant: TenantId,
        token: &SecretDigest,
        valid_since: Millis,
        now: Millis,
        mails: &[OutgoingMail],
        event: &Event,
    ) -> Result<Option<AccessRequest>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let confirmed = sqlx::query(
            "UPDATE access_requests SET status = 'pending', confirmed_at = $4 \
             WHERE tenant_id = $1 AND confirm_token_hash = $2 AND status = 'unconfirmed' AND created_at > $3",
        )
        .bind(tenant.to_string())
        .bind(token.as_hex())
        .bind(valid_since)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if confirmed.rows_affected() != 1 {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE tenant_id = $1 AND confirm_token_hash = $2"
        );
        let row: RequestRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(token.as_hex())
            .fetch_one(&mut *tx)
            .await?;
        for mail in mails {
            insert_mail(&mut *tx, mail).await?;
        }
        insert_event(&mut *tx, &event.clone().by_partner_of(&row.id)).await?;
        tx.commit().await?;
        Ok(Some(row.into_request()?))
    }

    pub async fn request(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<AccessRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE tenant_id = $1 AND id = $2"
        );
        let row: Option<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(RequestRow::into_request).transpose()
    }

    /// Confirmed requests (unconfirmed ones have reached nobody yet), newest first, optionally of one
    /// status, after the keyset cursor `(created_at, id)`.
    pub async fn requests_of(
        &self,
        tenant: TenantId,
        status: Option<RequestStatus>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let (cursor_time, cursor_id) = after.unwrap_or((i64::MAX, ""));
        let status_condition = if status.is_some() {
            "status = $5"
        } else {
            "status <> 'unconfirmed'"
        };
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE tenant_id = $1 AND {status_condition} \
             AND created_at <= $2 AND (created_at < $2 OR id < $3) ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let mut query = sqlx::query_as::<_, RequestRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(cursor_time)
            .bind(cursor_id.to_owned())
            .bind(limit);
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.into_iter().map(RequestRow::into_request).collect()
    }

    /// Approves a pending request and creates its grant, or reports that someone decided first.
    pub async fn approve_request(
        &self,
        tenant: TenantId,
        approval: Approval<'_>,
        mail: &OutgoingMail,
        events: &[Event],
    ) -> Result<Decided, StoreError> {
        let mut tx = self.pool().begin().await?;
        let grant_id = approval.grant_id.to_owned();
        let won = sqlx::query(
            "UPDATE access_requests SET status = 'approved', decided_at = $3, decided_by = $4, grant_id = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .bind(tenant.to_string())
        .bind(approval.request_id)
        .bind(approval.now)
        .bind(approval.decided_by.to_string())
        .bind(&grant_id)
        .execute(&mut *tx)
        .await?;
        if won.rows_affected() != 1 {
            return Ok(Decided::AlreadyDecided);
        }
        sqlx::query(
            "INSERT INTO grants (id, tenant_id, request_id, organisation, contact_email, scopes, max_lifetime_days, \
             created_at, created_by) \
             SELECT $1, tenant_id, id, organisation, email, $3, $4, $5, $6 FROM access_requests \
             WHERE tenant_id = $2 AND id = $7",
        )
        .bind(&grant_id)
        .bind(tenant.to_string())
        .bind(serde_json::to_string(approval.scopes).map_err(|e| StoreError::Unexpected(e.to_string()))?)
        .bind(approval.max_lifetime_days)
        .bind(approval.now)
        .bind(approval.decided_by.to_string())
        .bind(approval.request_id)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut *tx, mail).await?;
        for event in events {
            insert_event(&mut *tx, event).await?;
        }
        tx.commit().await?;
        Ok(Decided::Yes(Some(grant_id)))
    }

    pub async fn deny_request(
        &self,
        tenant: TenantId,
        denial: Denial<'_>,
        mail: &OutgoingMail,
        event: &Event,
    ) -> Result<Decided, StoreError> {
        let mut tx = self.pool().begin().await?;
        let won = sqlx::query(
            "UPDATE access_requests SET status = 'denied', decided_at = $3, decided_by = $4, decision_reason = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
        )
        .bind(tenant.to_string())
        .bind(denial.request_id)
        .bind(denial.now)
        .bind(denial.decided_by.to_string())
        .bind(denial.reason)
        .execute(&mut *tx)
        .await?;
        if won.rows_affected() != 1 {
            return Ok(Decided::AlreadyDecided);
        }
        insert_mail(&mut *tx, mail).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(Decided::Yes(None))
    }

    /// The partner withdraws their request (before a decision); false if it is no longer open.
    pub async fn withdraw_request(
        &self,
        tenant: TenantId,
        token: &SecretDigest,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let withdrawn: Option<(String,)> = sqlx::query_as(
            "UPDATE access_requests SET status = 'withdrawn', decided_at = $3 \
             WHERE tenant_id = $1 AND confirm_token_hash = $2 AND status IN ('unconfirmed', 'pending') \
             RETURNING id",
        )
        .bind(tenant.to_string())
        .bind(token.as_hex())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((request,)) = withdrawn else {
            return Ok(false);
        };
        insert_event(&mut *tx, &event.clone().by_partner_of(&request)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Requests never confirmed become `expired` after `older_than`.
    pub async fn expire_unconfirmed_requests(&self, older_than: Millis) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE access_requests SET status = 'expired' WHERE status = 'unconfirmed' AND created_at <= $1")
            .bind(older_than)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// E-mail addresses of the tenant's active tenant admins (they hear about new requests).
    /// The active tenant admins of a tenant, to write to (by name).
    pub async fn tenant_admins(&self, tenant: TenantId) -> Result<Vec<StaffRecipient>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT u.email, u.display_name FROM users u JOIN role_assignments r ON r.user_id = u.id \
             WHERE r.role = 'tenant_admin' AND r.tenant_id = $1 AND u.status = 'active' ORDER BY u.email",
        )
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(email, name)| StaffRecipient { email, name })
            .collect())
    }
}

/// A staff member a message goes to.
pub struct StaffRecipient {
    pub email: String,
    /// Their display name, for the greeting.
    pub name: String,
}
