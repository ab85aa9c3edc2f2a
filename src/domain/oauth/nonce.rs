//! DPoP nonces (RFC 9449 §8) without server-side state: a nonce names a five-minute period and
//! carries a MAC over the tenant and that period, keyed by a secret every instance shares. Any
//! instance can check any instance's nonce; one from the current or the previous period is good,
//! so a proof can be made no earlier than a few minutes before it is used.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::ServedTenant;
use crate::clock::Millis;
use crate::domain::Core;
use crate::store::StoreError;

const PERIOD_MS: Millis = 5 * 60 * 1000;
const SECRET_NAME: &str = "dpop_nonce";
const TAG_BYTES: usize = 16;

/// The nonce a client of `tenant` should use now.
pub async fn current(core: &Core, tenant: &ServedTenant) -> Result<String, StoreError> {
    let key = key(core).await?;
    let period = core.clock.now_ms() / PERIOD_MS;
    let mac = tag(&key, tenant, period)?.finalize().into_bytes();
    let mut bytes = period.to_be_bytes().to_vec();
    bytes.extend(mac.iter().take(TAG_BYTES));
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Is `nonce` one we handed out to clients of `tenant`, in this period or the one before?
pub async fn is_current(
    core: &Core,
    tenant: &ServedTenant,
    nonce: &str,
) -> Result<bool, StoreError> {
    let Some(bytes) = URL_SAFE_NO_PAD
        .decode(nonce)
        .ok()
        .filter(|b| b.len() == 8 + TAG_BYTES)
    else {
        return Ok(false);
    };
    let (period, presented) = bytes.split_at(8);
    let Ok(period) = <[u8; 8]>::try_from(period).map(i64::from_be_bytes) else {
        return Ok(false);
    };
    let now = core.clock.now_ms() / PERIOD_MS;
    if period != now && period != now - 1 {
        return Ok(false);
    }
    let key = key(core).await?;
    Ok(tag(&key, tenant, period)?
        .verify_truncated_left(presented)
        .is_ok())
}

fn tag(key: &[u8; 32], tenant: &ServedTenant, period: i64) -> Result<Hmac<Sha256>, StoreError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    mac.update(format!("dpop-nonce\n{}\n{period}", tenant.id).as_bytes());
    Ok(mac)
}

async fn key(core: &Core) -> Result<[u8; 32], StoreError> {
    core.verified
        .nonce_key
        .get_or_try_init(|| async {
            let candidate = SecretString::from(hex::encode(rand::random::<[u8; 32]>()));
            let stored = core
                .store
                .installation_secret(SECRET_NAME, &candidate, core.clock.now_ms())
                .await?;
            hex::decode(stored.expose_secret())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| StoreError::Corrupt("installation secret dpop_nonce".into()))
        })
        .await
        .copied()
}
