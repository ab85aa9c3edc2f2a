//! Per-tenant signing keys: the policy that times their life (next → active → retiring → retired),
//! the in-memory key ring every token signature and verification reads, and (in `rotation`) the
//! changes: first keys, scheduled and manual rotation, retirement, two-person emergency replacement.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::store::StoreError;
pub use crate::store::keys::{KeyUsage, StoredKey};

pub mod material;
mod rotation;

pub use material::{Kek, KeyAlgorithm, KeyMaterialError};
pub use rotation::*;

/// How keys and tokens are timed; from settings.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    pub algorithm: KeyAlgorithm,
    /// Cache-Control max-age of the JWKS.
    pub jwks_max_age: Duration,
    /// A key signs for this long before the scheduled rotation replaces it.
    pub rotation_period: Duration,
    /// Access-token lifetime (never beyond the credential's expiry).
    pub token_lifetime: Duration,
    /// Tolerance for clocks that disagree, on exp / nbf / iat.
    pub clock_skew: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            algorithm: KeyAlgorithm::EdDsa,
            jwks_max_age: Duration::from_secs(300),
            rotation_period: Duration::from_secs(30 * 24 * 3600),
            token_lifetime: Duration::from_secs(15 * 60),
            clock_skew: Duration::from_secs(60),
        }
    }
}

impl KeyPolicy {
    /// A next key is published this long before it may sign: twice the JWKS max-age, so every
    /// cache that honours max-age has fetched it before the first token signed with it appears.
    pub fn prepublication(&self) -> Duration {
        self.jwks_max_age.saturating_mul(2)
    }

    /// A key that stops signing at `at` keeps verifying until every token it signed has expired.
    pub fn retire_after(&self, at: Millis) -> Millis {
        at + duration_ms(self.token_lifetime) + duration_ms(self.clock_skew)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retiring,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retiring => "retiring",
            Self::Retired => "retired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Next, Self::Active, Self::Retiring, Self::Retired]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Material(#[from] KeyMaterialError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no key-encryption key is configured on this instance")]
    NoKek,
    #[error("{0}")]
    Refused(String),
    #[error("That does not exist.")]
    NotFound,
}

/// A key in the JWKS: verifies tokens (and, when active, its twin signs them).
pub struct PublishedKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub state: KeyState,
    pub jwk: Jwk,
    pub verifier: DecodingKey,
    pub retire_after: Option<Millis>,
}

pub struct Signer {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub key: material::SigningKey,
}

impl Signer {
    /// `claims` signed under `header` as a compact JWS (RFC 7515 §7.1).
    pub fn sign_jwt<T: serde::Serialize>(
        &self,
        header: &jsonwebtoken::Header,
        claims: &T,
    ) -> Result<String, serde_json::Error> {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(header)?),
            b64(&serde_json::to_vec(claims)?)
        );
        let signature = b64(&self.key.sign(input.as_bytes()));
        Ok(format!("{input}.{signature}"))
    }
}

/// One tenant's keys as held in memory.
pub struct TenantKeys {
    pub published: Vec<PublishedKey>,
    pub signer: Option<Signer>,
}

impl TenantKeys {
    /// The key that may verify a token carrying `kid` at `now`: published, and (if retiring) not
    /// past its retirement even before the database says so.
    pub fn verifying(&self, kid: &str, now: Millis) -> Option<&PublishedKey> {
        self.published
            .iter()
            .find(|k| k.kid == kid && k.retire_after.is_none_or(|at| at > now))
    }

    /// What the JWKS publishes at `now`.
    pub fn jwks(&self, now: Millis) -> Vec<&Jwk> {
        self.published
            .iter()
            .filter(|k| k.retire_after.is_none_or(|at| at > now))
            .map(|k| &k.jwk)
            .collect()
    }
}

/// Every tenant's keys in memory, loaded on first use and dropped when they change (locally, or on
/// another instance's notification, or by the periodic reconciliation).
pub struct KeyRing {
    kek: Option<Kek>,
    pub policy: KeyPolicy,
    tenants: RwLock<HashMap<TenantId, Arc<TenantKeys>>>,
}

impl KeyRing {
    pub fn new(kek: Option<Kek>, policy: KeyPolicy) -> Self {
        Self {
            kek,
            policy,
            tenants: RwLock::new(HashMap::new()),
        }
    }

    pub(crate) fn kek(&self) -> Result<&Kek, KeyError> {
        self.kek.as_ref().ok_or(KeyError::NoKek)
    }

    fn cached(&self, tenant: TenantId) -> Option<Arc<TenantKeys>> {
        self.tenants
            .read()
            .ok()
            .and_then(|map| map.get(&tenant).cloned())
    }

    pub fn invalidate(&self, tenant: TenantId) {
        if let Ok(mut map) = self.tenants.write() {
            map.remove(&tenant);
        }
    }

    pub fn invalidate_all(&self) {
        if let Ok(mut map) = self.tenants.write() {
            map.clear();
        }
    }

    fn remember(&self, tenant: TenantId, keys: Arc<TenantKeys>) {
        if let Ok(mut map) = self.tenants.write() {
            map.insert(tenant, keys);
        }
    }
}

/// The tenant's keys, creating its first pair on first use.
pub async fn tenant_keys(core: &Core, tenant: TenantId) -> Result<Arc<TenantKeys>, KeyError> {
    if let Some(keys) = core.keys.cached(tenant) {
        return Ok(keys);
    }
    let mut stored = core.store.signing_keys(tenant).await?;
    if !stored.iter().any(|k| k.state == KeyState::Active) {
        rotation::create_family(core, tenant).await?;
        stored = core.store.signing_keys(tenant).await?;
    }
    let keys = Arc::new(load(&core.keys, tenant, &stored)?);
    core.keys.remember(tenant, keys.clone());
    Ok(keys)
}

/// Everything the key catalogue shows of a tenant: its keys newest first (with how many tokens each
/// signed).
pub struct KeyCatalogue {
    pub keys: Vec<(StoredKey, KeyUsage)>,
}

pub async fn catalogue(core: &Core, tenant: TenantId) -> Result<KeyCatalogue, KeyError> {
    tenant_keys(core, tenant).await?;
    let usage = core.store.key_usage(tenant).await?;
    let keys = core
        .store
        .signing_keys(tenant)
        .await?
        .into_iter()
        .map(|key| {
            let used = usage.iter().find(|u| u.kid == key.kid).cloned();
            let used = used.unwrap_or_else(|| KeyUsage {
                kid: key.kid.clone(),
                ..KeyUsage::default()
            });
            (key, used)
        })
        .collect();
    Ok(KeyCatalogue { keys })
}

fn load(ring: &KeyRing, tenant: TenantId, stored: &[StoredKey]) -> Result<TenantKeys, KeyError> {
    let mut published = Vec::new();
    let mut signer = None;
    for key in stored {
        let state = key.state;
        let algorithm = KeyAlgorithm::parse(&key.algorithm).ok_or_else(|| {
            StoreError::Corrupt(format!("key {} has an unknown algorithm", key.kid))
        })?;
        if state == KeyState::Retired {
            continue;
        }
        let (jwk, verifier) = material::verifier(&key.public_jwk)?;
        if state == KeyState::Active {
            signer = Some(Signer {
                kid: key.kid.clone(),
                algorithm,
                key: material::signer(
                    ring.kek()?,
                    tenant,
                    &key.kid,
                    algorithm,
                    &key.sealed_private,
                    &key.kek_id,
                )?,
            });
        }
        published.push(PublishedKey {
            kid: key.kid.clone(),
            algorithm,
            state,
            jwk,
            verifier,
            retire_after: key.retire_after,
        });
    }
    Ok(TenantKeys { published, signer })
}
