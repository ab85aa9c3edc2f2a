//! Issued JWT access tokens, as recorded (never the tokens themselves): each row is committed with
//! its `token_issued` event before the token is handed out, so introspection and revocation know
//! every token we signed.

use sqlx::{Any, FromRow, Transaction};

use super::events::insert_event;
use super::partners::policies::{Counted, IssuanceWindow, count_issuance};
use super::revocations::insert_revocation;
use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;
use crate::domain::partners::CredentialStatus;
use crate::domain::tenants::TenantStatus;

/// Spends a single-use id: false if it was spent before (here or on another instance; on
/// PostgreSQL a concurrent spender's insert waits for the first to commit).
async fn spend_tx(tx: &mut Transaction<'_, Any>, spend: &SingleUse) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO used_assertions (digest, expires_at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
    )
    .bind(&spend.digest)
    .bind(spend.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// A signed token waiting to be recorded, with its `token_issued` event and its credential's
/// tokens-per-minute limit.
pub struct TokenToRecord<'a> {
    pub token: &'a IssuedToken,
    pub ip: Option<&'a str>,
    pub event: &'a Event,
    pub per_minute: i64,
    /// Single-use ids the request presented (a client assertion's, a DPoP proof's), spent with
    /// the token: a replay collides here, on every instance.
    pub spends: &'a [SingleUse],
}

/// A single-use id (digest) to spend, remembered until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleUse {
    pub digest: String,
    pub expires_at: Millis,
}

/// What became of a token to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRecording {
    /// Recorded; the credential's window with this token counted.
    Recorded(IssuanceWindow),
    /// Not recorded: the credential has had its tokens for this window.
    OverLimit(IssuanceWindow),
    /// Not recorded: the single-use id at this index was spent before.
    Replayed(usize),
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

impl Store {
    /// Records a batch of issued tokens in one transaction (group commit): each is counted against
    /// its credential's limit, and recorded with its event only within it. One answer per token,
    /// in order; if the transaction fails, none of them was recorded.
    pub async fn record_issued_tokens(
        &self,
        batch: &[TokenToRecord<'_>],
    ) -> Result<Vec<TokenRecording>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut recorded = Vec::with_capacity(batch.len());
        'items: for item in batch {
            for (index, spend) in item.spends.iter().enumerate() {
                if !spend_tx(&mut tx, spend).await? {
                    recorded.push(TokenRecording::Replayed(index));
                    continue 'items;
                }
            }
            let token = item.token;
            let counted = count_issuance(
                &mut tx,
                &token.credential_id,
                token.issued_at,
                item.per_minute,
            )
            .await?;
            let window = match counted {
                Counted::Within(window) => window,
                Counted::Over(window) => {
                    recorded.push(TokenRecording::OverLimit(window));
                    continue;
                }
            };
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
            .bind(item.ip)
            .execute(&mut *tx)
            .await?;
            insert_event(&mut *tx, item.event).await?;
            recorded.push(TokenRecording::Recorded(window));
        }
        tx.commit().await?;
        Ok(recorded)
    }

    pub async fn access_token(
        &self,
        tenant: TenantId,
        jti: &str,
    ) -> Result<Option<IssuedToken>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT jti, tenant_id, credential_id, client_id, kid, scopes, issued_at, expires_at, revoked_at \
             FROM access_tokens WHERE tenant_id = $1 AND jti = $2",
        )
        .bind(tenant.to_string())
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
    pub async fn access_token_status(
        &self,
        tenant: TenantId,
        jti: &str,
    ) -> Result<Option<TokenStatus>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.jti, a.tenant_id, a.credential_id, a.client_id, a.kid, a.scopes, a.issued_at, a.expires_at, \
             a.revoked_at, c.status AS credential_status, g.revoked_at AS grant_revoked_at, t.status AS tenant_status \
             FROM access_tokens a JOIN credentials c ON c.id = a.credential_id JOIN grants g ON g.id = c.grant_id \
             JOIN tenants t ON t.id = a.tenant_id WHERE a.tenant_id = $1 AND a.jti = $2",
        )
        .bind(tenant.to_string())
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
    pub credential_status: CredentialStatus,
    pub grant_revoked_at: Option<i64>,
    pub tenant_status: TenantStatus,
}
