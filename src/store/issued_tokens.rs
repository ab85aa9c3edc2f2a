//! Issued JWT access tokens, as recorded (never the tokens themselves): each row is committed with
//! its `token_issued` event before the token is handed out, so introspection and revocation know
//! every token we signed.

use std::time::{Duration, Instant};

use sqlx::{Any, AnyConnection, Connection, FromRow, Transaction};

use std::collections::HashSet;

use super::events::{insert_event, insert_events};
use super::partners::policies::{Counted, IssuanceWindow, count_issuances};
use super::revocations::insert_revocation;
use super::{Store, StoreError, placeholders};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;
use crate::domain::partners::CredentialStatus;
use crate::domain::tenants::TenantStatus;

/// Spends single-use ids; the ones spent before (here, on another instance, or earlier in
/// `spends`) are not returned. On PostgreSQL a concurrent spender's insert waits for the first to
/// commit; ids go in sorted so two instances' batches never wait for each other in a cycle.
async fn spend_all(
    tx: &mut Transaction<'_, Any>,
    spends: &[&SingleUse],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut unique: Vec<&SingleUse> = spends.to_vec();
    unique.sort_by(|a, b| a.digest.cmp(&b.digest));
    unique.dedup_by(|a, b| a.digest == b.digest);
    if unique.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "INSERT INTO used_assertions (digest, expires_at) VALUES {} \
         ON CONFLICT (digest) DO NOTHING RETURNING digest",
        placeholders(unique.len(), 2)
    );
    let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
    for spend in &unique {
        query = query.bind(spend.digest.as_str()).bind(spend.expires_at);
    }
    let spent = query.fetch_all(&mut **tx).await?;
    Ok(spent.into_iter().map(|(digest,)| digest).collect())
}

async fn insert_tokens(
    tx: &mut Transaction<'_, Any>,
    tokens: &[&TokenToRecord<'_>],
) -> Result<(), sqlx::Error> {
    if tokens.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO access_tokens (jti, tenant_id, credential_id, client_id, kid, scopes, issued_at, expires_at, ip) \
         VALUES {}",
        placeholders(tokens.len(), 9)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for item in tokens {
        let token = item.token;
        query = query
            .bind(token.jti.as_str())
            .bind(token.tenant_id.as_str())
            .bind(token.credential_id.as_str())
            .bind(token.client_id.as_str())
            .bind(token.kid.as_str())
            .bind(token.scopes.as_str())
            .bind(token.issued_at)
            .bind(token.expires_at)
            .bind(item.ip);
    }
    query.execute(&mut **tx).await?;
    Ok(())
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

/// The token recorder's own connection, outside the pool: a batch starts without waiting for
/// the pool and its liveness check, and the connection's I/O is driven by the recorder's own
/// runtime, not behind the requests of a busy HTTP worker. One idle for a while is checked before
/// it is trusted again; one that failed is closed, and the next batch opens a new one.
#[derive(Default)]
pub struct HeldConnection {
    connection: Option<(AnyConnection, Instant)>,
}

/// How long a held connection may sit unused and still be trusted without a check.
const HELD_IDLE: Duration = Duration::from_secs(5);

impl HeldConnection {
    async fn take_or_open(&mut self, store: &Store) -> Result<&mut AnyConnection, StoreError> {
        let connection = match self.connection.take() {
            Some((mut held, used)) if used.elapsed() > HELD_IDLE => match held.ping().await {
                Ok(()) => held,
                Err(_) => store.dedicated_connection().await?,
            },
            Some((held, _)) => held,
            None => store.dedicated_connection().await?,
        };
        let (connection, _) = self.connection.insert((connection, Instant::now()));
        Ok(connection)
    }

    fn release(&mut self) {
        self.connection = None;
    }
}

async fn record_batch(
    connection: &mut AnyConnection,
    batch: &[TokenToRecord<'_>],
) -> Result<Vec<TokenRecording>, StoreError> {
    let mut tx = connection.begin().await?;
    let mut outcomes: Vec<Option<TokenRecording>> = vec![None; batch.len()];
    // Single-use ids first: a replay is neither counted nor recorded. Within the batch, the
    // first request to present an id spends it.
    let all_spends: Vec<&SingleUse> = batch.iter().flat_map(|item| item.spends).collect();
    let mut unspent = spend_all(&mut tx, &all_spends).await?;
    for (item, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        for (index, spend) in item.spends.iter().enumerate() {
            if !unspent.remove(&spend.digest) {
                *outcome = Some(TokenRecording::Replayed(index));
                break;
            }
        }
    }
    // Then each credential's window, in a fixed order (no lock cycles between instances).
    let mut uncounted: Vec<(&TokenToRecord<'_>, &mut Option<TokenRecording>)> = batch
        .iter()
        .zip(outcomes.iter_mut())
        .filter(|(_, outcome)| outcome.is_none())
        .collect();
    let mut credentials: Vec<&str> = uncounted
        .iter()
        .map(|(item, _)| item.token.credential_id.as_str())
        .collect();
    credentials.sort_unstable();
    credentials.dedup();
    for credential in credentials {
        let mine: Vec<&mut (&TokenToRecord<'_>, &mut Option<TokenRecording>)> = uncounted
            .iter_mut()
            .filter(|(item, _)| item.token.credential_id == credential)
            .collect();
        let tokens: Vec<(Millis, i64)> = mine
            .iter()
            .map(|(item, _)| (item.token.issued_at, item.per_minute))
            .collect();
        let counted = count_issuances(&mut tx, credential, &tokens).await?;
        for ((_, outcome), counted) in mine.into_iter().zip(counted) {
            **outcome = Some(match counted {
                Counted::Within(window) => TokenRecording::Recorded(window),
                Counted::Over(window) => TokenRecording::OverLimit(window),
            });
        }
    }
    drop(uncounted);
    let recorded: Vec<&TokenToRecord<'_>> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| matches!(outcome, Some(TokenRecording::Recorded(_))))
        .map(|(item, _)| item)
        .collect();
    insert_tokens(&mut tx, &recorded).await?;
    let events: Vec<&Event> = recorded.iter().map(|item| item.event).collect();
    insert_events(&mut *tx, &events).await?;
    tx.commit().await?;
    outcomes
        .into_iter()
        .map(|outcome| {
            outcome.ok_or_else(|| StoreError::Unexpected("a token left uncounted".into()))
        })
        .collect()
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
        held: &mut HeldConnection,
        batch: &[TokenToRecord<'_>],
    ) -> Result<Vec<TokenRecording>, StoreError> {
        let connection = held.take_or_open(self).await?;
        let recorded = record_batch(connection, batch).await;
        if recorded.is_err() {
            // It may be the connection that failed: the next batch takes a fresh, checked one.
            held.release();
        }
        recorded
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
