//! The revocation log (issued tokens are in `issued_tokens`). Every revocation appends an entry in the same
//! transaction as the change it records; on PostgreSQL the writers take one advisory lock so
//! sequence numbers commit in order (a reader at cursor N never misses an entry below N), and a
//! NOTIFY wakes every instance's cache when the transaction commits.

use sqlx::{Any, FromRow, Transaction};

use super::{Backend, Store, StoreError};
use crate::clock::Millis;
use crate::domain::ids::TenantId;

/// The channel every instance LISTENs on (PostgreSQL).
pub const CHANGES_CHANNEL: &str = "tokenbroker_changes";
/// Payload announcing new revocation entries.
pub const REVOCATIONS_CHANGED: &str = "revocations";
/// Payload prefix announcing a tenant's keys changed: `keys:<tenant id>`.
pub const KEYS_CHANGED: &str = "keys:";
/// Payload prefix announcing a credential's policy changed: `credential:<credential id>`.
pub const CREDENTIAL_CHANGED: &str = "credential:";
/// Payload prefix announcing a tenant's token-service settings changed: `tenant:<slug>`.
pub const TENANT_CHANGED: &str = "tenant:";

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
}
