//! Issued JWT access tokens, as recorded (never the tokens themselves): each row is committed with
//! its `token_issued` event before the token is handed out, so introspection and revocation know
//! every token we signed ([`super::token_batches`] records them).

use sqlx::FromRow;

use super::events::insert_event;
use super::revocations::insert_revocation;
use super::{Store, StoreError};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;
use crate::domain::partners::CredentialStatus;
use crate::domain::tenants::TenantStatus;

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
