//! The rules, with no HTTP in sight. Handlers call these; these call the store.

pub mod alerts;
pub mod api_keys;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod email;
pub mod event_log;
pub mod events;
pub mod geo;
pub mod idempotency;
pub mod ids;
pub mod keys;
pub mod networks;
pub mod oauth;
pub mod operations;
pub mod paging;
pub mod partners;
pub mod passkeys;
pub mod password;
pub mod principal;
pub mod rbac;
pub mod recovery;
pub mod replication;
pub mod revocations;
pub mod secrets;
pub mod sessions;
pub mod setup;
pub mod signed_state;
pub mod staff;
pub mod tenants;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::store::Store;
/// A storage failure, as every use case may report it.
pub use crate::store::StoreError;
use password::PasswordService;

/// What every use case needs: storage, the password hasher, the WebAuthn relying party, the clock,
/// and the token service's in-memory state (keys, revocations, known secrets).
#[derive(Clone)]
pub struct Core {
    pub store: Store,
    pub passwords: PasswordService,
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    pub clock: SharedClock,
    /// The console's public origin: links in e-mails point here.
    pub public_url: url::Url,
    pub keys: Arc<keys::KeyRing>,
    pub revocations: Arc<revocations::RevocationCache>,
    pub verified: Arc<oauth::VerifiedCache>,
    /// Records issued tokens in batches (group commit).
    pub issuance: Arc<oauth::TokenRecorder>,
    /// Country of a request's address (GeoIP or a trusted proxy's header).
    pub geo: Arc<geo::Locator>,
    /// Signs state handed to browsers without a session; read from the database on first use.
    pub browser_state_key: Arc<tokio::sync::OnceCell<signed_state::SigningKey>>,
    /// Refused work, counted for the log's periodic summary (`crate::refusals`).
    pub refusals: Arc<crate::refusals::RefusalLog>,
    /// Throttle locks this instance has seen, so a flood from a locked address is answered from
    /// memory.
    pub locks: Arc<throttle::KnownLocks>,
    /// Serving or draining.
    pub lifecycle: Arc<operations::Lifecycle>,
}

/// The token service's configuration.
#[derive(Debug, Clone, Default)]
pub struct TokenServiceSettings {
    /// Seals signing keys at rest; commands that never touch keys run without one.
    pub kek: Option<keys::Kek>,
    pub policy: keys::KeyPolicy,
}

impl Core {
    pub fn new(
        store: Store,
        passwords: PasswordService,
        clock: SharedClock,
        public_url: &url::Url,
        tokens: TokenServiceSettings,
    ) -> Result<Self, passkeys::PasskeyError> {
        Ok(Self {
            store,
            passwords,
            webauthn: Arc::new(passkeys::relying_party(public_url)?),
            clock,
            public_url: public_url.clone(),
            keys: Arc::new(keys::KeyRing::new(tokens.kek, tokens.policy)),
            revocations: Arc::new(revocations::RevocationCache::default()),
            verified: Arc::new(oauth::VerifiedCache::default()),
            issuance: Arc::new(oauth::TokenRecorder::default()),
            geo: Arc::new(geo::Locator::default()),
            browser_state_key: Arc::new(tokio::sync::OnceCell::new()),
            refusals: Arc::new(crate::refusals::RefusalLog::default()),
            locks: Arc::new(throttle::KnownLocks::default()),
            lifecycle: Arc::default(),
        })
    }

    /// The same core, locating requests with `geo`.
    pub fn with_geo(mut self, geo: geo::Locator) -> Self {
        self.geo = Arc::new(geo);
        self
    }
}
