//! The public keys a client credential authenticates with, and the client assertions already
//! accepted (replays collide on their digest, on every instance).

use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::partners::{CredentialKind, CredentialStatus};
use crate::domain::tenants::TenantStatus;
use crate::store::StoreError;
use crate::store::events::insert_event;
use crate::store::revocations::{CREDENTIAL_CHANGED, notify};
use crate::store::{Store, is_unique_violation};

/// A registered key as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientKeyRow {
    pub id: String,
    pub credential_id: String,
    pub thumbprint: String,
    pub algorithm: String,
    pub public_jwk: String,
    pub created_at: i64,
    pub created_by: Option<String>,
    pub removed_at: Option<i64>,
}

/// A key about to be registered.
pub struct NewClientKey<'a> {
    pub id: &'a str,
    pub tenant: TenantId,
    pub credential_id: &'a str,
    pub thumbprint: &'a str,
    pub algorithm: &'a str,
    pub public_jwk: &'a str,
    pub by: UserId,
    pub now: Millis,
}

/// Why a key could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRegistration {
    Added,
    AlreadyRegistered,
    /// The credential already has its two live keys.
    Full,
}

/// Everything client authentication by assertion needs about a client id, in one query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssertingClient {
    pub credential_id: String,
    pub tenant_id: String,
    pub kind: CredentialKind,
    pub may_introspect: i64,
    pub credential_status: CredentialStatus,
    pub credential_expires_at: i64,
    pub grant_revoked_at: Option<i64>,
    pub tenant_status: TenantStatus,
    pub scopes: String,
    pub last_used_at: Option<i64>,
}

const KEY_COLUMNS: &str =
    "id, credential_id, thumbprint, algorithm, public_jwk, created_at, created_by, removed_at";

/// At most this many live keys per credential: the current one and its successor.
pub const MAX_LIVE_KEYS: i64 = 2;

impl Store {
    /// Registers a key, with its event; at most two live keys per credential, counted in the
    /// same transaction.
    pub async fn insert_client_key(
        &self,
        key: &NewClientKey<'_>,
        event: &Event,
    ) -> Result<KeyRegistration, StoreError> {
        let mut tx = self.pool().begin().await?;
        // Taking the credential's row first serialises two registrations for it.
        sqlx::query(
            "UPDATE credentials SET tenant_id = tenant_id WHERE id = $1 AND tenant_id = $2",
        )
        .bind(key.credential_id)
        .bind(key.tenant.to_string())
        .execute(&mut *tx)
        .await?;
        let (live,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM credential_keys WHERE tenant_id = $1 AND credential_id = $2 AND removed_at IS NULL",
        )
        .bind(key.tenant.to_string())
        .bind(key.credential_id)
        .fetch_one(&mut *tx)
        .await?;
        if live >= MAX_LIVE_KEYS {
            return Ok(KeyRegistration::Full);
        }
        let inserted = sqlx::query(
            "INSERT INTO credential_keys (id, tenant_id, credential_id, thumbprint, algorithm, public_jwk, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id)
        .bind(key.tenant.to_string())
        .bind(key.credential_id)
        .bind(key.thumbprint)
        .bind(key.algorithm)
        .bind(key.public_jwk)
        .bind(key.now)
        .bind(key.by.to_string())
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Ok(KeyRegistration::AlreadyRegistered),
            other => other?,
        };
        insert_event(&mut *tx, event).await?;
        notify_key_change(&mut tx, self, key.credential_id).await?;
        tx.commit().await?;
        Ok(KeyRegistration::Added)
    }

    /// Stops a live key authenticating; false if it was not live.
    pub async fn remove_client_key(
        &self,
        tenant: TenantId,
        credential_id: &str,
        key_id: &str,
        by: UserId,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE credential_keys SET removed_at = $4, removed_by = $5 \
             WHERE tenant_id = $1 AND credential_id = $2 AND id = $3 AND removed_at IS NULL",
        )
        .bind(tenant.to_string())
        .bind(credential_id)
        .bind(key_id)
        .bind(now)
        .bind(by.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        insert_event(&mut *tx, event).await?;
        notify_key_change(&mut tx, self, credential_id).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A credential's keys, live and removed, oldest first.
    pub async fn client_keys(
        &self,
        tenant: TenantId,
        credential_id: &str,
    ) -> Result<Vec<ClientKeyRow>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM credential_keys WHERE tenant_id = $1 AND credential_id = $2 \
             ORDER BY created_at, id"
        )))
        .bind(tenant.to_string())
        .bind(credential_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The client a client id names in this tenant, with its live keys.
    pub async fn asserting_client(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> Result<Option<(AssertingClient, Vec<ClientKeyRow>)>, StoreError> {
        let client: Option<AssertingClient> = sqlx::query_as(
            "SELECT c.id AS credential_id, c.tenant_id, c.kind, c.may_introspect, c.status AS credential_status, \
             c.expires_at AS credential_expires_at, g.revoked_at AS grant_revoked_at, t.status AS tenant_status, g.scopes, \
             c.last_used_at \
             FROM credentials c JOIN grants g ON g.id = c.grant_id JOIN tenants t ON t.id = c.tenant_id \
             WHERE c.client_id = $1 AND c.tenant_id = $2",
        )
        .bind(client_id)
        .bind(tenant.to_string())
        .fetch_optional(self.pool())
        .await?;
        let Some(client) = client else {
            return Ok(None);
        };
        let keys = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM credential_keys WHERE tenant_id = $1 AND credential_id = $2 \
             AND removed_at IS NULL ORDER BY created_at, id"
        )))
        .bind(tenant.to_string())
        .bind(&client.credential_id)
        .fetch_all(self.pool())
        .await?;
        Ok(Some((client, keys)))
    }

    /// Accepts an assertion id once; false when it was already used.
    pub async fn use_assertion(
        &self,
        digest: &str,
        expires_at: Millis,
    ) -> Result<bool, StoreError> {
        let inserted =
            sqlx::query("INSERT INTO used_assertions (digest, expires_at) VALUES ($1, $2)")
                .bind(digest)
                .bind(expires_at)
                .execute(self.pool())
                .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => Ok(false),
            other => other.map(|_| true).map_err(StoreError::from),
        }
    }

    /// Forgets assertion ids whose assertions expired (they can no longer be replayed anyway).
    pub async fn sweep_used_assertions(&self, now: Millis) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM used_assertions WHERE expires_at < $1")
                .bind(now)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}

/// Every instance drops its cached copy of the credential's keys when the change commits.
async fn notify_key_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    store: &Store,
    credential: &str,
) -> Result<(), sqlx::Error> {
    notify(
        tx,
        store.backend(),
        &format!("{CREDENTIAL_CHANGED}{credential}"),
    )
    .await
}
