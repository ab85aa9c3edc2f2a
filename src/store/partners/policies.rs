//! What a client credential may do once authenticated (networks, tokens per minute, DPoP), and
//! the per-credential issuance counter the token endpoint moves with each token it records (in the
//! same transaction, so a token that is not recorded is not counted).

use sqlx::{Any, Transaction};

use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;
use crate::domain::partners::{CredentialKind, CredentialStatus};
use crate::store::events::insert_event;
use crate::store::revocations::{CREDENTIAL_CHANGED, notify};
use crate::store::{Store, StoreError};

/// A credential's policy as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPolicy {
    pub kind: CredentialKind,
    pub status: CredentialStatus,
    /// Comma-separated CIDRs; `None`: anywhere.
    pub allowed_networks: Option<String>,
    pub tokens_per_minute: i64,
    pub require_dpop: i64,
}

/// The policy values to write.
pub struct PolicyValues<'a> {
    pub allowed_networks: Option<&'a str>,
    pub tokens_per_minute: i64,
    pub require_dpop: bool,
}

/// Where a credential's issuance stands after counting one more token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuanceWindow {
    pub started_at: Millis,
    /// Tokens issued in the window, this one included.
    pub issued: i64,
}

impl Store {
    pub async fn client_policy(
        &self,
        tenant: TenantId,
        credential: &str,
    ) -> Result<Option<StoredPolicy>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kind, status, allowed_networks, tokens_per_minute, require_dpop \
             FROM credentials WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(credential)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Writes a credential's policy with its event; every instance drops its cached copy when
    /// the change commits (PostgreSQL NOTIFY).
    pub async fn set_client_policy(
        &self,
        tenant: TenantId,
        credential: &str,
        values: &PolicyValues<'_>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE credentials SET allowed_networks = $3, tokens_per_minute = $4, require_dpop = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
        )
        .bind(tenant.to_string())
        .bind(credential)
        .bind(values.allowed_networks)
        .bind(values.tokens_per_minute)
        .bind(i64::from(values.require_dpop))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Ok(false);
        }
        insert_event(&mut *tx, event).await?;
        notify(
            &mut tx,
            self.backend(),
            &format!("{CREDENTIAL_CHANGED}{credential}"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Whether one more token fits its credential's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Counted; the window with it.
    Within(IssuanceWindow),
    /// Not counted: the window is full.
    Over(IssuanceWindow),
}

/// Counts tokens against the credential's current one-minute window (a window older than a
/// minute starts over), in order, each only while the window holds fewer than its `per_minute`;
/// inside the caller's transaction: the first statement locks the row (PostgreSQL) or takes the
/// write lock (SQLite) until it commits, so issuances on every instance count one after another.
/// `tokens` is each token's (issued at, limit); one answer per token.
pub(crate) async fn count_issuances(
    tx: &mut Transaction<'_, Any>,
    credential: &str,
    tokens: &[(Millis, i64)],
) -> Result<Vec<Counted>, sqlx::Error> {
    let Some(&(first_at, _)) = tokens.first() else {
        return Ok(Vec::new());
    };
    // A no-op update on conflict: the row as it stands, locked.
    let (mut started_at, mut issued): (i64, i64) = sqlx::query_as(
        "INSERT INTO issuance_windows (credential_id, window_start, issued) VALUES ($1, $2, 0) \
         ON CONFLICT (credential_id) DO UPDATE SET issued = issuance_windows.issued \
         RETURNING window_start, issued",
    )
    .bind(credential)
    .bind(first_at)
    .fetch_one(&mut **tx)
    .await?;
    let (before_start, before_issued) = (started_at, issued);
    let counted = tokens
        .iter()
        .map(|&(at, per_minute)| {
            if started_at <= at - ISSUANCE_WINDOW_MS {
                (started_at, issued) = (at, 0);
            }
            if issued < per_minute {
                issued += 1;
                Counted::Within(IssuanceWindow { started_at, issued })
            } else {
                Counted::Over(IssuanceWindow { started_at, issued })
            }
        })
        .collect();
    if (started_at, issued) != (before_start, before_issued) {
        sqlx::query(
            "UPDATE issuance_windows SET window_start = $2, issued = $3 WHERE credential_id = $1",
        )
        .bind(credential)
        .bind(started_at)
        .bind(issued)
        .execute(&mut **tx)
        .await?;
    }
    Ok(counted)
}

/// The issuance limit's window.
pub const ISSUANCE_WINDOW_MS: Millis = 60_000;
