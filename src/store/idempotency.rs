//! Remembered results of the API's creating POSTs, per automation key and Idempotency-Key.

use sqlx::FromRow;

use super::{Store, StoreError, is_unique_violation};
use crate::clock::Millis;

#[derive(Debug, Clone, FromRow)]
pub struct RememberedRequest {
    pub request_hash: String,
    /// None while the first request is still being answered.
    pub status: Option<i64>,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub created_at: Millis,
    /// Until when an unanswered claim is held (None: claimed before leases, held no longer).
    pub lease_until: Option<Millis>,
}

impl Store {
    /// Claims the key for a first request, held until `lease_until`; false if a request with this
    /// key exists already.
    pub async fn claim_idempotency_key(
        &self,
        api_key: &str,
        key: &str,
        request_hash: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO api_idempotency \
             (api_key, idempotency_key, request_hash, created_at, lease_until) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(api_key)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .bind(lease_until)
        .execute(self.pool())
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes over a claim whose request never answered and whose lease ran out; false if another
    /// retry took it first (or it was answered meanwhile).
    pub async fn take_over_lapsed_claim(
        &self,
        api_key: &str,
        key: &str,
        request_hash: &str,
        now: Millis,
        lease_until: Millis,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "UPDATE api_idempotency SET request_hash = $3, created_at = $4, lease_until = $5 \
             WHERE api_key = $1 AND idempotency_key = $2 AND status IS NULL \
             AND COALESCE(lease_until, 0) <= $4",
        )
        .bind(api_key)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .bind(lease_until)
        .execute(self.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Lets go of a claim whose request ended without an answer to keep (it failed, or was
    /// cancelled): a retry runs again.
    pub async fn release_idempotency_claim(
        &self,
        api_key: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM api_idempotency \
             WHERE api_key = $1 AND idempotency_key = $2 AND status IS NULL",
        )
        .bind(api_key)
        .bind(key)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn remembered_request(
        &self,
        api_key: &str,
        key: &str,
    ) -> Result<Option<RememberedRequest>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT request_hash, status, content_type, body, created_at, lease_until \
             FROM api_idempotency \
             WHERE api_key = $1 AND idempotency_key = $2",
        )
        .bind(api_key)
        .bind(key)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn remember_response(
        &self,
        api_key: &str,
        key: &str,
        status: i64,
        content_type: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_idempotency SET status = $3, content_type = $4, body = $5 \
             WHERE api_key = $1 AND idempotency_key = $2",
        )
        .bind(api_key)
        .bind(key)
        .bind(status)
        .bind(content_type)
        .bind(body)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets one claim (its request failed on our side: a retry should run again), or every
    /// claim made before `before`.
    pub async fn forget_idempotency_key(&self, api_key: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM api_idempotency WHERE api_key = $1 AND idempotency_key = $2")
            .bind(api_key)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn sweep_idempotency_keys(&self, before: Millis) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM api_idempotency WHERE created_at < $1")
                .bind(before)
                .execute(self.pool())
                .await?
                .rows_affected(),
        )
    }
}
