//! Scopes, access requests, grants and credentials. Every method takes the tenant id and filters on
//! it; decisions and revocations are single guarded UPDATEs, so two people acting at once cannot both
//! succeed.

use super::events::insert_event;
use super::outbox::insert_mail;
use super::staff::OutgoingMail;
use super::{Store, StoreError, escape_like, is_unique_violation};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::partners::{AccessRequest, CredentialView, Grant, RequestStatus, Scope};
use crate::domain::secrets::SecretDigest;

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

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    organisation: String,
    contact_email: String,
    scopes: String,
    max_lifetime_days: i64,
    created_at: i64,
    revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    kind: String,
    client_id: Option<String>,
    status: String,
    created_at: i64,
    expires_at: i64,
    revoke_reason: Option<String>,
    organisation: String,
    grant_id: String,
    created_by: String,
    last_used_at: Option<i64>,
    last_used_ip: Option<String>,
    display_prefix: Option<String>,
}

impl From<CredentialRow> for CredentialView {
    fn from(row: CredentialRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            client_id: row.client_id,
            status: row.status,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoke_reason: row.revoke_reason,
            organisation: row.organisation,
            grant_id: row.grant_id,
            created_by: row.created_by,
            last_used_at: row.last_used_at,
            last_used_ip: row.last_used_ip,
            display_prefix: row.display_prefix,
        }
    }
}

/// A new, unconfirmed request.
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub organisation: &'a str,
    pub contact_name: &'a str,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub scopes: &'a [String],
    pub justification: &'a str,
    pub confirm_token: &'a SecretDigest,
    pub ip: Option<&'a str>,
    pub now: Millis,
}

/// What an approval writes.
pub struct Approval<'a> {
    pub request_id: &'a str,
    pub grant_id: &'a str,
    pub decided_by: UserId,
    pub scopes: &'a [String],
    pub max_lifetime_days: i64,
    pub now: Millis,
}

/// Narrows the credentials list.
#[derive(Debug, Default)]
pub struct CredentialFilter<'a> {
    pub status: Option<StatusFilter>,
    pub kind: Option<&'a str>,
    pub grant: Option<&'a str>,
    /// Organisation or contact e-mail contains this.
    pub partner: Option<&'a str>,
    /// Client id or displayed secret prefix starts with this.
    pub prefix: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Active,
    /// Active and expiring at or before this time.
    ExpiringBefore(Millis),
    Expired,
    Revoked,
}

/// A credential's secrets, for adding another.
pub struct SecretsState {
    pub kind: String,
    pub status: String,
    pub expires_at: Millis,
    pub contact_email: String,
    /// Secrets neither revoked nor expired (retrieved or waiting to be).
    pub live: i64,
}

/// Another secret for an existing credential, to be retrieved through its link.
pub struct NewSecret<'a> {
    pub credential: &'a str,
    pub retrieval: &'a SecretDigest,
    pub expires_at: Millis,
    pub retrieval_expires_at: Millis,
    pub now: Millis,
}

/// A credential about to expire, for the week-ahead notice.
#[derive(Debug, sqlx::FromRow)]
pub struct ExpiryNotice {
    pub credential_id: String,
    pub tenant_id: String,
    pub expires_at: i64,
    pub organisation: String,
    pub kind: String,
}

/// Which grants a bulk revocation covers.
pub enum GrantSelection<'a> {
    One(&'a str),
    /// Every grant whose partner contact is this e-mail address.
    OfPartner(&'a str),
}

/// What a denial writes.
pub struct Denial<'a> {
    pub request_id: &'a str,
    pub decided_by: UserId,
    pub reason: &'a str,
    pub now: Millis,
}

pub enum Decided {
    Yes(Option<String>),
    /// Someone else decided first (or the request is not pending).
    AlreadyDecided,
}

/// A credential and its first secret's retrieval link, as minted.
pub struct NewCredential<'a> {
    pub id: &'a str,
    pub grant_id: &'a str,
    pub kind: &'a str,
    pub client_id: Option<&'a str>,
    pub created_by: UserId,
    pub expires_at: Millis,
    pub retrieval_token: &'a SecretDigest,
    pub retrieval_expires_at: Millis,
    pub now: Millis,
}

/// The credential behind a presented secret, for verification.
#[derive(Debug, sqlx::FromRow)]
pub struct SecretLookup {
    pub credential_id: String,
    pub tenant_id: String,
    pub secret_hash: String,
    pub credential_status: String,
    pub credential_expires_at: i64,
    pub secret_expires_at: i64,
    pub secret_revoked_at: Option<i64>,
    pub grant_revoked_at: Option<i64>,
    pub tenant_status: String,
    pub scopes: String,
}

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

    /// Adds a scope; `Ok(false)` if the name exists in this tenant.
    pub async fn insert_scope(
        &self,
        tenant: TenantId,
        name: &str,
        description: &str,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT INTO scopes (id, tenant_id, name, description, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(time_ordered_id())
            .bind(tenant.to_string())
            .bind(name)
            .bind(description)
            .bind(now)
            .execute(self.pool())
            .await;
        match done {
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(true),
        }
    }

    pub async fn delete_scope(&self, tenant: TenantId, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM scopes WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
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
        let mut event = event.clone();
        if let serde_json::Value::Object(map) = &mut event.details {
            map.insert("request".into(), row.id.clone().into());
        }
        insert_event(&mut *tx, &event).await?;
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

    /// Confirmed requests (unconfirmed ones have reached nobody yet), newest first.
    pub async fn requests_of(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM access_requests WHERE tenant_id = $1 AND status <> 'unconfirmed' \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows: Vec<RequestRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
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
        let done = sqlx::query(
            "UPDATE access_requests SET status = 'withdrawn', decided_at = $3 \
             WHERE tenant_id = $1 AND confirm_token_hash = $2 AND status IN ('unconfirmed', 'pending')",
        )
        .bind(tenant.to_string())
        .bind(token.as_hex())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_event(&mut *tx, event).await?;
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
    pub async fn tenant_admin_emails(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT u.email FROM users u JOIN role_assignments r ON r.user_id = u.id \
             WHERE r.role = 'tenant_admin' AND r.tenant_id = $1 AND u.status = 'active' ORDER BY u.email",
        )
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(email,)| email).collect())
    }

    pub async fn grant(&self, tenant: TenantId, id: &str) -> Result<Option<Grant>, StoreError> {
        let row: Option<GrantRow> = sqlx::query_as(
            "SELECT id, organisation, contact_email, scopes, max_lifetime_days, created_at, revoked_at \
             FROM grants WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(Grant {
                scopes: serde_json::from_str(&row.scopes)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                id: row.id,
                organisation: row.organisation,
                contact_email: row.contact_email,
                max_lifetime_days: row.max_lifetime_days,
                created_at: row.created_at,
                revoked_at: row.revoked_at,
            })
        })
        .transpose()
    }

    /// Mints a credential with its first secret's retrieval link, the partner's mail and the event.
    pub async fn insert_credential(
        &self,
        tenant: TenantId,
        credential: NewCredential<'_>,
        mail: &OutgoingMail,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO credentials (id, tenant_id, grant_id, kind, client_id, status, created_at, created_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8)",
        )
        .bind(credential.id)
        .bind(tenant.to_string())
        .bind(credential.grant_id)
        .bind(credential.kind)
        .bind(credential.client_id)
        .bind(credential.now)
        .bind(credential.created_by.to_string())
        .bind(credential.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO credential_secrets (id, tenant_id, credential_id, created_at, expires_at, retrieval_token_hash, \
             retrieval_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(time_ordered_id())
        .bind(tenant.to_string())
        .bind(credential.id)
        .bind(credential.now)
        .bind(credential.expires_at)
        .bind(credential.retrieval_token.as_hex())
        .bind(credential.retrieval_expires_at)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut *tx, mail).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Binds a newly generated secret to the retrieval link, once. Returns the credential id (and its
    /// tenant and kind) if this call retrieved it.
    pub async fn retrieve_secret(
        &self,
        link: &SecretDigest,
        secret: &SecretDigest,
        display_prefix: &str,
        now: Millis,
    ) -> Result<Option<(String, String, String, Option<String>)>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let claimed = sqlx::query(
            "UPDATE credential_secrets SET secret_hash = $2, display_prefix = $3, retrieved_at = $4 \
             WHERE retrieval_token_hash = $1 AND retrieved_at IS NULL AND retrieval_expires_at > $4 AND revoked_at IS NULL",
        )
        .bind(link.as_hex())
        .bind(secret.as_hex())
        .bind(display_prefix)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let row: (String, String, String, Option<String>) = sqlx::query_as(
            "SELECT c.id, c.tenant_id, c.kind, c.client_id FROM credential_secrets s \
             JOIN credentials c ON c.id = s.credential_id WHERE s.retrieval_token_hash = $1",
        )
        .bind(link.as_hex())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(row))
    }

    /// The kind of credential a retrieval link belongs to.
    pub async fn retrieval_kind(&self, link: &SecretDigest) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT c.kind FROM credential_secrets s JOIN credentials c ON c.id = s.credential_id \
             WHERE s.retrieval_token_hash = $1",
        )
        .bind(link.as_hex())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(kind,)| kind))
    }

    /// The state of a retrieval link: (retrieved?, expired?) if it exists.
    pub async fn retrieval_link_state(
        &self,
        link: &SecretDigest,
        now: Millis,
    ) -> Result<Option<(bool, bool)>, StoreError> {
        let row: Option<(Option<i64>, i64)> =
            sqlx::query_as("SELECT retrieved_at, retrieval_expires_at FROM credential_secrets WHERE retrieval_token_hash = $1")
                .bind(link.as_hex())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(retrieved, expires)| (retrieved.is_some(), expires <= now)))
    }

    /// Everything verification needs about a presented secret, in one indexed query.
    pub async fn lookup_secret(
        &self,
        secret: &SecretDigest,
    ) -> Result<Option<SecretLookup>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT c.id AS credential_id, c.tenant_id, s.secret_hash, c.status AS credential_status, \
             c.expires_at AS credential_expires_at, s.expires_at AS secret_expires_at, s.revoked_at AS secret_revoked_at, \
             g.revoked_at AS grant_revoked_at, t.status AS tenant_status, g.scopes \
             FROM credential_secrets s JOIN credentials c ON c.id = s.credential_id \
             JOIN grants g ON g.id = c.grant_id JOIN tenants t ON t.id = c.tenant_id \
             WHERE s.secret_hash = $1",
        )
        .bind(secret.as_hex())
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records a use of a credential, at most once a minute: verification is the hot path and must
    /// not write on every call.
    pub async fn touch_credential(
        &self,
        id: &str,
        now: Millis,
        from_ip: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE credentials SET last_used_at = $2, last_used_ip = $3 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $4)",
        )
        .bind(id)
        .bind(now)
        .bind(from_ip)
        .bind(now - 60_000)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Revokes one active credential; false if it was not active (revoking twice changes nothing).
    pub async fn revoke_credential(
        &self,
        tenant: TenantId,
        id: &str,
        by: UserId,
        reason: &str,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE credentials SET status = 'revoked', revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
        )
        .bind(tenant.to_string())
        .bind(id)
        .bind(now)
        .bind(by.to_string())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE credential_secrets SET revoked_at = $3 WHERE tenant_id = $1 AND credential_id = $2 AND revoked_at IS NULL")
            .bind(tenant.to_string())
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes grants (one, or all of a partner's) with every credential and secret under them, in one
    /// transaction. Returns how many credentials were still active. Grants already revoked are left
    /// as they were.
    pub async fn revoke_grants(
        &self,
        tenant: TenantId,
        grants: GrantSelection<'_>,
        by: UserId,
        reason: &str,
        now: Millis,
        event: &Event,
    ) -> Result<u64, StoreError> {
        let (filter, value) = match grants {
            GrantSelection::One(id) => ("id = $2", id),
            GrantSelection::OfPartner(email) => ("LOWER(contact_email) = LOWER($2)", email),
        };
        let mut tx = self.pool().begin().await?;
        let selected = format!("SELECT id FROM grants WHERE tenant_id = $1 AND {filter}");
        let credentials = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE credentials SET status = 'revoked', revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
             WHERE tenant_id = $1 AND status = 'active' AND grant_id IN ({selected})"
        )))
        .bind(tenant.to_string())
        .bind(value)
        .bind(now)
        .bind(by.to_string())
        .bind(reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE credential_secrets SET revoked_at = $3 WHERE tenant_id = $1 AND revoked_at IS NULL \
             AND credential_id IN (SELECT id FROM credentials WHERE tenant_id = $1 AND grant_id IN ({selected}))"
        )))
        .bind(tenant.to_string())
        .bind(value)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE grants SET revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
             WHERE tenant_id = $1 AND revoked_at IS NULL AND {filter}"
        )))
        .bind(tenant.to_string())
        .bind(value)
        .bind(now)
        .bind(by.to_string())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let mut event = event.clone();
        if let serde_json::Value::Object(map) = &mut event.details {
            map.insert("credentials_revoked".into(), credentials.into());
        }
        insert_event(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(credentials)
    }

    /// Credentials of a tenant matching `filter`, newest first, after the keyset cursor
    /// `(created_at, id)`. The WHERE clause is assembled from fixed fragments only; every value is bound.
    pub async fn credentials_of(
        &self,
        tenant: TenantId,
        filter: &CredentialFilter<'_>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<CredentialView>, StoreError> {
        let (cursor_time, cursor_id) = after.unwrap_or((i64::MAX, ""));
        let mut conditions = vec![
            "c.tenant_id = $1".to_owned(),
            "(c.created_at < $2 OR (c.created_at = $2 AND c.id < $3))".to_owned(),
        ];
        let mut texts: Vec<(usize, String)> = Vec::new();
        let mut next = 5;
        let mut text_param = |value: String, conditions: &mut Vec<String>, fragment: &str| {
            conditions.push(fragment.replace("{p}", &format!("${next}")));
            texts.push((next, value));
            next += 1;
        };
        if let Some(kind) = filter.kind {
            text_param(kind.to_owned(), &mut conditions, "c.kind = {p}");
        }
        if let Some(grant) = filter.grant {
            text_param(grant.to_owned(), &mut conditions, "c.grant_id = {p}");
        }
        if let Some(partner) = filter.partner {
            let pattern = format!("%{}%", escape_like(&partner.to_lowercase()));
            text_param(
                pattern,
                &mut conditions,
                "(LOWER(g.organisation) LIKE {p} ESCAPE '\\' OR LOWER(g.contact_email) LIKE {p} ESCAPE '\\')",
            );
        }
        if let Some(prefix) = filter.prefix {
            let pattern = format!("{}%", escape_like(prefix));
            text_param(
                pattern,
                &mut conditions,
                "(c.client_id LIKE {p} ESCAPE '\\' OR EXISTS (SELECT 1 FROM credential_secrets p \
                 WHERE p.credential_id = c.id AND p.display_prefix LIKE {p} ESCAPE '\\'))",
            );
        }
        // $4 is the limit; "expiring soon" compares with the time passed as the last number.
        let status_condition = match filter.status {
            None => None,
            Some(StatusFilter::Active) => Some("c.status = 'active'".to_owned()),
            Some(StatusFilter::Revoked) => Some("c.status = 'revoked'".to_owned()),
            Some(StatusFilter::Expired) => Some("c.status = 'expired'".to_owned()),
            Some(StatusFilter::ExpiringBefore(_)) => {
                Some(format!("c.status = 'active' AND c.expires_at <= ${next}"))
            }
        };
        conditions.extend(status_condition);
        let sql = format!(
            "SELECT c.id, c.kind, c.client_id, c.status, c.created_at, c.expires_at, c.revoke_reason, g.organisation, \
             c.grant_id, u.display_name AS created_by, c.last_used_at, c.last_used_ip, \
             (SELECT MAX(s.display_prefix) FROM credential_secrets s WHERE s.credential_id = c.id) AS display_prefix \
             FROM credentials c JOIN grants g ON g.id = c.grant_id JOIN users u ON u.id = c.created_by \
             WHERE {} ORDER BY c.created_at DESC, c.id DESC LIMIT $4",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query_as::<_, CredentialRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(cursor_time)
            .bind(cursor_id.to_owned())
            .bind(limit);
        for (_, value) in texts {
            query = query.bind(value);
        }
        if let Some(StatusFilter::ExpiringBefore(until)) = filter.status {
            query = query.bind(until);
        }
        let rows = query.fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(CredentialView::from).collect())
    }

    /// A credential's kind, status, expiry and the number of its secrets still usable (or waiting
    /// to be retrieved) at `now`.
    pub async fn credential_secrets_state(
        &self,
        tenant: TenantId,
        id: &str,
        now: Millis,
    ) -> Result<Option<SecretsState>, StoreError> {
        let row: Option<(String, String, i64, String)> = sqlx::query_as(
            "SELECT c.kind, c.status, c.expires_at, g.contact_email FROM credentials c JOIN grants g ON g.id = c.grant_id \
             WHERE c.tenant_id = $1 AND c.id = $2",
        )
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some((kind, status, expires_at, contact)) = row else {
            return Ok(None);
        };
        let (live,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM credential_secrets WHERE tenant_id = $1 AND credential_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(tenant.to_string())
        .bind(id)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(Some(SecretsState {
            kind,
            status,
            expires_at,
            contact_email: contact,
            live,
        }))
    }

    /// Adds a secret (to be retrieved through its link) to an existing credential.
    pub async fn insert_secret(
        &self,
        tenant: TenantId,
        secret: NewSecret<'_>,
        mail: &OutgoingMail,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO credential_secrets (id, tenant_id, credential_id, created_at, expires_at, retrieval_token_hash, \
             retrieval_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(time_ordered_id())
        .bind(tenant.to_string())
        .bind(secret.credential)
        .bind(secret.now)
        .bind(secret.expires_at)
        .bind(secret.retrieval.as_hex())
        .bind(secret.retrieval_expires_at)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut *tx, mail).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Active credentials expiring before `until` whose tenant admins have not been told yet; each
    /// is marked as told in the same call, so one instance sends one notice.
    pub async fn claim_expiry_notices(
        &self,
        until: Millis,
        now: Millis,
    ) -> Result<Vec<ExpiryNotice>, StoreError> {
        let due: Vec<ExpiryNotice> = sqlx::query_as(
            "SELECT c.id AS credential_id, c.tenant_id, c.expires_at, g.organisation, c.kind FROM credentials c \
             JOIN grants g ON g.id = c.grant_id \
             WHERE c.status = 'active' AND c.expires_at <= $1 AND c.expiry_notice_at IS NULL",
        )
        .bind(until)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for notice in due {
            let won = sqlx::query("UPDATE credentials SET expiry_notice_at = $2 WHERE id = $1 AND expiry_notice_at IS NULL")
                .bind(&notice.credential_id)
                .bind(now)
                .execute(self.pool())
                .await?;
            if won.rows_affected() == 1 {
                claimed.push(notice);
            }
        }
        Ok(claimed)
    }

    /// Queues already rendered mails (notices decided elsewhere).
    pub async fn queue_mail(&self, mails: &[OutgoingMail]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for mail in mails {
            insert_mail(&mut *tx, mail).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks credentials past their expiry as expired; returns (tenant, credential) of each, for events.
    pub async fn expire_credentials(
        &self,
        now: Millis,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let due: Vec<(String, String)> = sqlx::query_as(
            "SELECT tenant_id, id FROM credentials WHERE status = 'active' AND expires_at <= $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut expired = Vec::new();
        for (tenant, id) in due {
            let done = sqlx::query(
                "UPDATE credentials SET status = 'expired' WHERE id = $1 AND status = 'active'",
            )
            .bind(&id)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                expired.push((tenant, id));
            }
        }
        Ok(expired)
    }
}
