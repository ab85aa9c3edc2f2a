//! Idempotency-Key for the automation API's creating POSTs: the same key with the same request
//! within 24 hours gets the first result again (no second tenant, credential or invitation); the
//! same key with another request is refused.

use std::time::Duration;

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::secrets::SecretDigest;
use crate::store::StoreError;

pub const REMEMBERED_FOR: Duration = Duration::from_secs(24 * 3600);
/// Longer keys are refused: a key is an identifier, not a payload.
pub const MAX_KEY_CHARS: usize = 255;

/// What to do with a request carrying an Idempotency-Key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The first time: run it, then [`remember`] its answer.
    First,
    /// Seen before with the same request: answer this again.
    Replay {
        status: u16,
        content_type: String,
        body: String,
    },
    /// The first request with this key is still being answered.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// The request's fingerprint: method, path and body.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut text = format!("{method} {path}\n");
    text.push_str(&String::from_utf8_lossy(body));
    SecretDigest::of(&text).as_hex().to_owned()
}

pub async fn claim(
    core: &Core,
    api_key: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Claim, StoreError> {
    let now = core.clock.now_ms();
    if let Some(seen) = core.store.remembered_request(api_key, key).await? {
        if seen.created_at > now - duration_ms(REMEMBERED_FOR) {
            return Ok(match seen {
                _ if seen.request_hash != fingerprint => Claim::Mismatch,
                ref s if s.status.is_none() => Claim::InProgress,
                s => Claim::Replay {
                    status: u16::try_from(s.status.unwrap_or(200)).unwrap_or(200),
                    content_type: s.content_type.unwrap_or_default(),
                    body: s.body.unwrap_or_default(),
                },
            });
        }
        // Past its 24 hours the key is free again.
        core.store.forget_idempotency_key(api_key, key).await?;
    }
    if core
        .store
        .claim_idempotency_key(api_key, key, fingerprint, now)
        .await?
    {
        Ok(Claim::First)
    } else {
        Ok(Claim::InProgress)
    }
}

/// The first request's answer, for retries. Server errors are not remembered: the retry runs again.
pub async fn remember(
    core: &Core,
    api_key: &str,
    key: &str,
    status: u16,
    content_type: &str,
    body: &str,
) -> Result<(), StoreError> {
    if status >= 500 {
        return core.store.forget_idempotency_key(api_key, key).await;
    }
    core.store
        .remember_response(api_key, key, i64::from(status), content_type, body)
        .await
}

/// Keys past their 24 hours (the sweep).
pub async fn sweep(core: &Core, now: Millis) -> Result<u64, StoreError> {
    core.store
        .sweep_idempotency_keys(now - duration_ms(REMEMBERED_FOR))
        .await
}
