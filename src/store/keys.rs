//! Signing keys, and dropping one in an emergency (once approved, see `store::approvals`). Each state change is one transaction with
//! its events and notification mails; conditional updates and the one-active / one-next unique
//! indexes make concurrent rotations on several instances collapse into exactly one.

use sqlx::{Any, FromRow, Transaction};

use super::events::insert_event;
use super::outbox::insert_mail;
use super::revocations::{KEYS_CHANGED, insert_revocation, notify};
use super::staff::OutgoingMail;
use super::{Backend, Store, StoreError, is_unique_violation};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;
use crate::domain::keys::KeyState;

/// A signing key as stored (the private half sealed).
#[derive(Debug, Clone, FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub tenant_id: String,
    pub algorithm: String,
    pub state: KeyState,
    pub public_jwk: String,
    pub sealed_private: String,
    pub kek_id: String,
    pub created_at: i64,
    pub usable_from: i64,
    pub activated_at: Option<i64>,
    pub retiring_at: Option<i64>,
    pub retire_after: Option<i64>,
    pub retired_at: Option<i64>,
    pub retired_reason: Option<String>,
}

/// A key about to be inserted.
pub struct NewKey<'a> {
    pub kid: &'a str,
    pub algorithm: &'a str,
    pub state: &'a str,
    pub public_jwk: &'a str,
    pub sealed_private: &'a str,
    pub kek_id: &'a str,
    pub usable_from: Millis,
}

/// What a rotation changes: the active key steps back, the next key signs, a new next is published.
pub struct Rotation<'a> {
    pub retiring: &'a str,
    pub retire_after: Millis,
    pub activating: &'a str,
    pub new_next: NewKey<'a>,
}

/// Usage figures shown in the key catalogue.
#[derive(Debug, Clone, Default, FromRow)]
pub struct KeyUsage {
    pub kid: String,
    pub tokens_signed: i64,
    pub last_expiry: Option<i64>,
}

const KEY_COLUMNS: &str = "kid, tenant_id, algorithm, state, public_jwk, sealed_private, kek_id, \
     created_at, usable_from, activated_at, retiring_at, retire_after, retired_at, retired_reason";

async fn insert_key(
    tx: &mut Transaction<'_, Any>,
    tenant: TenantId,
    key: &NewKey<'_>,
    now: Millis,
) -> Result<(), sqlx::Error> {
    let activated_at = (key.state == "active").then_some(now);
    sqlx::query(
        "INSERT INTO signing_keys (kid, tenant_id, algorithm, state, public_jwk, sealed_private, kek_id, \
         created_at, usable_from, activated_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $8)",
    )
    .bind(key.kid)
    .bind(tenant.to_string())
    .bind(key.algorithm)
    .bind(key.state)
    .bind(key.public_jwk)
    .bind(key.sealed_private)
    .bind(key.kek_id)
    .bind(now)
    .bind(key.usable_from)
    .bind(activated_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends the change's events and mails, tells the other instances, and commits.
async fn finish(
    mut tx: Transaction<'_, Any>,
    changed: (TenantId, Backend),
    events: &[Event],
    mails: &[OutgoingMail],
) -> Result<(), StoreError> {
    let (tenant, backend) = changed;
    notify(&mut tx, backend, &format!("{KEYS_CHANGED}{tenant}")).await?;
    for event in events {
        insert_event(&mut *tx, event).await?;
    }
    for mail in mails {
        insert_mail(&mut *tx, mail).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Unique-index conflicts mean another instance made the same change first.
fn lost_race(result: Result<(), sqlx::Error>) -> Result<bool, StoreError> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl Store {
    /// Every key of a tenant, newest first.
    pub async fn signing_keys(&self, tenant: TenantId) -> Result<Vec<StoredKey>, StoreError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at DESC, kid"
        )))
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?)
    }

    /// Tenants whose keys changed at or after `since` (for every instance's cache reconciliation).
    pub async fn tenants_with_key_changes(&self, since: Millis) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT tenant_id FROM signing_keys WHERE updated_at >= $1")
                .bind(since)
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Tenants that have a key family (the scheduled rotation walks these).
    pub async fn tenants_with_keys(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT k.tenant_id FROM signing_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.state = 'active'",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Inserts keys: a tenant's first pair (active and next), or a next key where one is missing.
    /// False if another instance did it first (the one-active / one-next indexes).
    pub async fn insert_keys(
        &self,
        tenant: TenantId,
        keys: &[NewKey<'_>],
        now: Millis,
        events: &[Event],
        mails: &[OutgoingMail],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        for key in keys {
            if !lost_race(insert_key(&mut tx, tenant, key, now).await)? {
                return Ok(false);
            }
        }
        finish(tx, (tenant, self.backend()), events, mails).await?;
        Ok(true)
    }

    /// Active → retiring, next → active, new next published; all or nothing. False when another
    /// instance rotated first (the conditional updates find nothing to change).
    pub async fn rotate_keys(
        &self,
        tenant: TenantId,
        rotation: &Rotation<'_>,
        now: Millis,
        events: &[Event],
        mails: &[OutgoingMail],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let retired = sqlx::query(
            "UPDATE signing_keys SET state = 'retiring', retiring_at = $3, retire_after = $4, updated_at = $3 \
             WHERE tenant_id = $1 AND kid = $2 AND state = 'active'",
        )
        .bind(tenant.to_string())
        .bind(rotation.retiring)
        .bind(now)
        .bind(rotation.retire_after)
        .execute(&mut *tx)
        .await?;
        if retired.rows_affected() != 1 {
            return Ok(false);
        }
        let activated = sqlx::query(
            "UPDATE signing_keys SET state = 'active', activated_at = $3, updated_at = $3 \
             WHERE tenant_id = $1 AND kid = $2 AND state = 'next'",
        )
        .bind(tenant.to_string())
        .bind(rotation.activating)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if activated.rows_affected() != 1 {
            return Ok(false);
        }
        if !lost_race(insert_key(&mut tx, tenant, &rotation.new_next, now).await)? {
            return Ok(false);
        }
        finish(tx, (tenant, self.backend()), events, mails).await?;
        Ok(true)
    }

    /// Retiring → retired. False if it was not retiring any more.
    pub async fn retire_key(
        &self,
        tenant: TenantId,
        kid: &str,
        now: Millis,
        event: &Event,
        mails: &[OutgoingMail],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE signing_keys SET state = 'retired', retired_at = $3, retired_reason = 'expired', updated_at = $3 \
             WHERE tenant_id = $1 AND kid = $2 AND state = 'retiring'",
        )
        .bind(tenant.to_string())
        .bind(kid)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        finish(
            tx,
            (tenant, self.backend()),
            std::slice::from_ref(event),
            mails,
        )
        .await?;
        Ok(true)
    }

    /// Pushes a retiring key's retirement later (a token it signed lives longer than planned).
    pub async fn extend_retirement(
        &self,
        tenant: TenantId,
        kid: &str,
        retire_after: Millis,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE signing_keys SET retire_after = $2, updated_at = $3 \
             WHERE kid = $1 AND state = 'retiring' AND tenant_id = $4",
        )
        .bind(kid)
        .bind(retire_after)
        .bind(now)
        .bind(tenant.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// How many tokens each key of the tenant signed, and when the last of them expires.
    pub async fn key_usage(&self, tenant: TenantId) -> Result<Vec<KeyUsage>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kid, COUNT(*) AS tokens_signed, MAX(expires_at) AS last_expiry \
             FROM access_tokens WHERE tenant_id = $1 GROUP BY kid",
        )
        .bind(tenant.to_string())
        .fetch_all(self.pool())
        .await?)
    }

    /// The latest expiry among tokens signed by `kid`.
    pub async fn last_token_expiry(
        &self,
        tenant: TenantId,
        kid: &str,
    ) -> Result<Option<Millis>, StoreError> {
        let row: (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(expires_at) FROM access_tokens WHERE tenant_id = $1 AND kid = $2",
        )
        .bind(tenant.to_string())
        .bind(kid)
        .fetch_one(self.pool())
        .await?;
        Ok(row.0)
    }
}

/// What dropping a compromised key changes: it is retired at once (and a revocation entry tells
/// locally verifying gateways); if it was signing, the next key takes over; a fresh next key is
/// published where one is needed. Planned from the keys as they were read: `dropped_state` is the
/// state the plan saw, and the drop applies only if nothing changed since.
pub struct KeyDrop<'a> {
    pub tenant: TenantId,
    pub kid: &'a str,
    pub dropped_state: KeyState,
    pub promote: Option<&'a str>,
    pub new_next: Option<NewKey<'a>>,
}

/// False when the keys changed after the drop was planned (a rotation on another instance, a key
/// retired by the schedule): each step is a conditional update, and a step that finds its key no
/// longer as planned means the whole drop no longer applies. The caller rolls back.
pub(crate) async fn drop_key_tx(
    tx: &mut Transaction<'_, Any>,
    drop: &KeyDrop<'_>,
    now: Millis,
    backend: Backend,
) -> Result<bool, StoreError> {
    let tenant = drop.tenant;
    let retired = sqlx::query(
        "UPDATE signing_keys SET state = 'retired', retired_at = $3, retired_reason = 'emergency', updated_at = $3 \
         WHERE tenant_id = $1 AND kid = $2 AND state = $4",
    )
    .bind(tenant.to_string())
    .bind(drop.kid)
    .bind(now)
    .bind(drop.dropped_state.as_str())
    .execute(&mut **tx)
    .await?;
    if retired.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(next) = drop.promote {
        let promoted = sqlx::query(
            "UPDATE signing_keys SET state = 'active', activated_at = $3, updated_at = $3 \
             WHERE tenant_id = $1 AND kid = $2 AND state = 'next'",
        )
        .bind(tenant.to_string())
        .bind(next)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        if promoted.rows_affected() != 1 {
            return Ok(false);
        }
    }
    if let Some(key) = &drop.new_next
        && !lost_race(insert_key(tx, tenant, key, now).await)?
    {
        return Ok(false);
    }
    insert_revocation(tx, tenant, "key", drop.kid, None, now, None, backend).await?;
    notify(tx, backend, &format!("{KEYS_CHANGED}{tenant}")).await?;
    Ok(true)
}
