//! The revocation log and issued access tokens. Every revocation appends an entry in the same
//! transaction as the change it records; on PostgreSQL the writers take one advisory lock so
//! sequence numbers commit in order (a reader at cursor N never misses an entry below N), and a
//! NOTIFY wakes every instance's cache when the transaction commits.

use sqlx::{Any, FromRow, Transaction};

use super::events::insert_event;
use super::{Backend, Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;

/// The channel every instance LISTENs on (PostgreSQL).
pub const CHANGES_CHANNEL: &str = "tokenbroker_changes";
/// Payload announcing new revocation entries.
pub const REVOCATIONS_CHANGED: &str = "revocations";
/// Payload prefix announcing a tenant's keys changed: `keys:<tenant id>`.
pub const KEYS_CHANGED: &str = "keys:";

/// Any fixed number: the one lock revocation writers queue on.
const REVOCATION_LOCK: i64 = 0x746f_6b65_6e72_766b;

#[derive(Debug, Clone, FromRow)]
pub struct RevocationEntry {
    pub seq: i64,
    pub tenant_id: String,
    pub kind: String,
    pub subject: String,
    pub client_id: Option<String>,
    pub revoked_at: i64,
    pub forget_after: Option<i64>,
}

/// An issued JWT access token, as recorded (never the token itself).
#[derive(Debug, Clone, FromRow)]
pub struct IssuedToken {
    pub jti: String,
    pub tenant_id: String,
    pub credential_id: String,
    pub client_id: String,
    pub kid: String,
    pub scopes: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_revocation(
    tx: &mut Transaction<'_, Any>,
    tenant: TenantId,
    kind: &str,
    subject: &str,
    client_id: Option<&str>,
    now: Millis,
    forget_after: Option<Millis>,
    backend: Backend,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(REVOCATION_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO revocations (tenant_id, kind, subject, client_id, revoked_at, forget_after) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant.to_string())
    .bind(kind)
    .bind(subject)
    .bind(client_id)
    .bind(now)
    .bind(forget_after)
    .execute(&mut **tx)
    .await?;
    notify(tx, backend, REVOCATIONS_CHANGED).await
}

/// Delivered to every listening instance when (and only if) the transaction commits.
pub(crate) async fn notify(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    payload: &str,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(payload)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

const ENTRY_COLUMNS: &str = "seq, tenant_id, kind, subject, client_id, revoked_at, forget_after";

impl Store {
    /// Entries after `cursor`, oldest first, across tenants (for the in-memory caches).
    pub async fn revocations_after(
        &self,
        cursor: i64,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2"
        )))
        .bind(cursor)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// One tenant's entries after `cursor`, oldest first (the feed gateways poll).
    pub async fn tenant_revocations_after(
        &self,
        tenant: TenantId,
        cursor: i64,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM revocations WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        )))
        .bind(tenant.to_string())
        .bind(cursor)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The newest sequence number (the feed's cursor for "from now on").
    pub async fn latest_revocation(&self) -> Result<i64, StoreError> {
        let row: (Option<i64>,) = sqlx::query_as("SELECT MAX(seq) FROM revocations")
            .fetch_one(self.pool())
            .await?;
        Ok(row.0.unwrap_or(0))
    }

    /// Entries whose subject can no longer verify anyway, and expired token records.
    pub async fn prune_revocations(&self, before: Millis) -> Result<u64, StoreError> {
        let entries = sqlx::query(
            "DELETE FROM revocations WHERE forget_after IS NOT NULL AND forget_after < $1",
        )
        .bind(before)
        .execute(self.pool())
        .await?
        .rows_affected();
        let tokens = sqlx::query("DELETE FROM access_tokens WHERE expires_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(entries + tokens)
    }

    pub async fn insert_access_token(
        &self,
        token: &IssuedToken,
        ip: Option<&str>,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO access_tokens (jti, tenant_id, credential_id, client_id, kid, scopes, issued_at, expires_at, ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&token.jti)
        .bind(&token.tenant_id)
        .bind(&token.credential_id)
        .bind(&token.client_id)
        .bind(&token.kid)
        .bind(&token.scopes)
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(ip)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn access_token(&self, jti: &str) -> Result<Option<IssuedToken>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT jti, tenant_id, credential_id, client_id, kid, scopes, issued_at, expires_at, revoked_at \
             FROM access_tokens WHERE jti = $1",
        )
        .bind(jti)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Revokes one access token (RFC 7009). False if it was already revoked.
    pub async fn revoke_access_token(
        &self,
        tenant: TenantId,
        token: &IssuedToken,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND jti = $2 AND revoked_at IS NULL",
        )
        .bind(tenant.to_string())
        .bind(&token.jti)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_revocation(
            &mut tx,
            tenant,
            "token",
            &token.jti,
            Some(&token.client_id),
            now,
            Some(token.expires_at),
            self.backend(),
        )
        .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// An issued token with the state of everything behind it, for verification on a cache miss.
    pub async fn access_token_status(&self, jti: &str) -> Result<Option<TokenStatus>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.jti, a.tenant_id, a.credential_id, a.client_id, a.kid, a.scopes, a.issued_at, a.expires_at, \
             a.revoked_at, c.status AS credential_status, g.revoked_at AS grant_revoked_at, t.status AS tenant_status \
             FROM access_tokens a JOIN credentials c ON c.id = a.credential_id JOIN grants g ON g.id = c.grant_id \
             JOIN tenants t ON t.id = a.tenant_id WHERE a.jti = $1",
        )
        .bind(jti)
        .fetch_optional(self.pool())
        .await?)
    }
}

/// [`IssuedToken`] joined with its credential, grant and tenant.
#[derive(Debug, Clone, FromRow)]
pub struct TokenStatus {
    #[sqlx(flatten)]
    pub token: IssuedToken,
    pub credential_status: String,
    pub grant_revoked_at: Option<i64>,
    pub tenant_status: String,
}
