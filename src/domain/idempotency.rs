//! Idempotency-Key for the automation API's creating POSTs: the same key with the same request
//! within 24 hours gets the first result again (no second tenant, credential or invitation); the
//! same key with another request is refused.
//!
//! Only a completed request's answer is kept. While the first request runs, its claim is held on a
//! [`LEASE`]; a request that fails (5xx) or is cancelled lets go of it at once, and one that dies
//! with its instance leaves a claim that lapses with its lease, so the retry runs.

use std::time::Duration;

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::secrets::SecretDigest;
use crate::store::StoreError;

pub const REMEMBERED_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long a claim is held for a request still being answered: far longer than a request may
/// run (the database timeout bounds it to seconds), short enough that a retry after a crash waits
/// at most this long.
pub const LEASE: Duration = Duration::from_secs(60);
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
    let lease_until = now + duration_ms(LEASE);
    if let Some(seen) = core.store.remembered_request(api_key, key).await? {
        if seen.created_at > now - duration_ms(REMEMBERED_FOR) {
            let same_request = seen.request_hash == fingerprint;
            let held = seen.lease_until.is_some_and(|until| until > now);
            return Ok(match (seen.status, same_request) {
                (Some(status), true) => Claim::Replay {
                    status: u16::try_from(status).unwrap_or(200),
                    content_type: seen.content_type.unwrap_or_default(),
                    body: seen.body.unwrap_or_default(),
                },
                (Some(_), false) => Claim::Mismatch,
                (None, true) if held => Claim::InProgress,
                (None, false) if held => Claim::Mismatch,
                // The first request never answered and its lease ran out: this one runs.
                (None, _) => {
                    let taken = core
                        .store
                        .take_over_lapsed_claim(api_key, key, fingerprint, now, lease_until)
                        .await?;
                    if taken {
                        Claim::First
                    } else {
                        Claim::InProgress
                    }
                }
            });
        }
        // Past its 24 hours the key is free again.
        core.store.forget_idempotency_key(api_key, key).await?;
    }
    if core
        .store
        .claim_idempotency_key(api_key, key, fingerprint, now, lease_until)
        .await?
    {
        Ok(Claim::First)
    } else {
        Ok(Claim::InProgress)
    }
}

/// The first request ended without an answer to keep (failed, cancelled): a retry runs again.
pub async fn release(core: &Core, api_key: &str, key: &str) -> Result<(), StoreError> {
    core.store.release_idempotency_claim(api_key, key).await
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
        return release(core, api_key, key).await;
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
