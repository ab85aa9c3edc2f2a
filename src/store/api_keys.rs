//! Automation keys. Looked up by the SHA-256 of the presented key; every other method is scoped to
//! the owner.

use sqlx::FromRow;

use super::events::insert_event;
use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::UserId;
use crate::domain::secrets::SecretDigest;

/// A key as stored (never the key itself). Lists are comma-separated: permission names, tenant
/// ids, networks.
#[derive(Debug, Clone, FromRow)]
pub struct StoredApiKey {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub display_prefix: String,
    pub permissions: String,
    pub tenants: Option<String>,
    pub networks: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub last_used_ip: Option<String>,
}

const COLUMNS: &str = "id, owner, name, display_prefix, permissions, tenants, networks, created_at, \
     expires_at, revoked_at, last_used_at, last_used_ip";

impl Store {
    pub async fn insert_api_key(
        &self,
        key: &StoredApiKey,
        secret: &SecretDigest,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, owner, name, secret_hash, display_prefix, permissions, tenants, \
             networks, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&key.id)
        .bind(&key.owner)
        .bind(&key.name)
        .bind(secret.as_hex())
        .bind(&key.display_prefix)
        .bind(&key.permissions)
        .bind(key.tenants.as_deref())
        .bind(key.networks.as_deref())
        .bind(key.created_at)
        .bind(key.expires_at)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn api_key_by_secret(
        &self,
        secret: &SecretDigest,
    ) -> Result<Option<StoredApiKey>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"
        )))
        .bind(secret.as_hex())
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn api_keys_of(&self, owner: UserId) -> Result<Vec<StoredApiKey>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_keys WHERE owner = $1 ORDER BY created_at DESC, id DESC"
        )))
        .bind(owner.to_string())
        .fetch_all(self.pool())
        .await?)
    }

    /// Revokes one of the owner's live keys, with its event; false if there is none.
    pub async fn revoke_api_key(
        &self,
        owner: UserId,
        id: &str,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE owner = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(owner.to_string())
        .bind(id)
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

    /// Last use, written at most once a minute per key (a busy script does not write per request).
    pub async fn touch_api_key(
        &self,
        owner: UserId,
        id: &str,
        now: Millis,
        from_ip: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $3, last_used_ip = $4 \
             WHERE owner = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at < $5)",
        )
        .bind(owner.to_string())
        .bind(id)
        .bind(now)
        .bind(from_ip)
        .bind(now - 60_000)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
