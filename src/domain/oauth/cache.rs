//! Positive caches for the verification hot path. They hold only facts that never change once
//! true — which credential a secret belongs to, what a token was issued for, a tenant's id — and
//! never a verdict: revocation, suspension and expiry are checked on every use against the
//! revocation cache and the clock. Entries are keyed by SHA-256, never by a secret.
//!
//! Settings that staff may change — a credential's policy and public keys, a tenant's DPoP nonce
//! requirement — are cached for at most a minute and dropped at once when they change, on this
//! instance directly and on the others by notification (the minute bounds a lost notification).

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use moka::sync::Cache;

use super::ServedTenant;
use super::assertion::AssertionKey;
use super::dpop::ProofKey;
use crate::clock::Millis;
use crate::domain::ids::TenantId;
use crate::domain::partners::CredentialKind;
use crate::domain::partners::policies::ClientPolicy;

/// How long a changeable setting may be served from memory when no notification arrives.
const SETTINGS_TTL: Duration = Duration::from_secs(60);

/// What a presented secret (API token or client secret) is.
#[derive(Debug)]
pub struct KnownSecret {
    pub secret_id: String,
    pub tenant_id: TenantId,
    pub credential_id: String,
    pub kind: CredentialKind,
    pub client_id: Option<String>,
    pub may_introspect: bool,
    pub scopes: Vec<String>,
    /// The earlier of the credential's and the secret's expiry.
    pub expires_at: Millis,
    /// When this instance last recorded a use (the store is written at most once a minute).
    pub(super) last_recorded: AtomicI64,
}

/// What an issued access token was issued for.
#[derive(Debug)]
pub struct KnownToken {
    pub tenant_id: TenantId,
    pub credential_id: String,
    pub client_id: String,
    pub kid: String,
    pub scopes: String,
    pub issued_at: Millis,
    pub expires_at: Millis,
}

/// A client that authenticates with signed assertions (`private_key_jwt`): what it is, with the
/// live public keys its assertions may be signed by.
pub struct KnownAssertingClient {
    pub known: Arc<KnownSecret>,
    pub keys: Vec<AssertionKey>,
}

pub struct VerifiedCache {
    /// Keyed by the raw SHA-256 of the secret.
    pub(super) secrets: Cache<[u8; 32], Arc<KnownSecret>>,
    pub(super) tokens: Cache<String, Arc<KnownToken>>,
    tenants: Cache<String, Arc<ServedTenant>>,
    /// A credential's policy, by credential id.
    policies: Cache<String, Arc<ClientPolicy>>,
    /// Client credentials with keys, by credential id (keys change; the rest is checked per use).
    asserting: Cache<String, Arc<KnownAssertingClient>>,
    /// `tenant/client_id` → credential id: a client id never moves to another credential.
    client_credentials: Cache<String, String>,
    /// Credentials over their issuance limit, by credential id: until when (the window's end), so
    /// further requests in that window are refused without a database round trip.
    pub(super) limited: Cache<String, Millis>,
    /// DPoP proof keys already parsed and checked, by the SHA-256 of their JWK: a client signs
    /// its proofs with one key for a long time. Public keys, so nothing here is secret.
    pub(super) proof_keys: Cache<[u8; 32], Arc<ProofKey>>,
    /// The installation's DPoP nonce key (shared by every instance through the database).
    pub(super) nonce_key: tokio::sync::OnceCell<[u8; 32]>,
}

impl VerifiedCache {
    pub fn new(capacity: u64) -> Self {
        Self {
            secrets: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            tokens: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Duration::from_secs(3600))
                .build(),
            // Slugs never change; the status is checked against the revocation cache.
            tenants: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SETTINGS_TTL)
                .build(),
            policies: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(SETTINGS_TTL)
                .build(),
            asserting: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(SETTINGS_TTL)
                .build(),
            client_credentials: Cache::builder().max_capacity(capacity).build(),
            limited: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(SETTINGS_TTL)
                .build(),
            proof_keys: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            nonce_key: tokio::sync::OnceCell::new(),
        }
    }
}

impl VerifiedCache {
    pub fn tenant(&self, slug: &str) -> Option<Arc<ServedTenant>> {
        self.tenants.get(slug)
    }

    pub fn remember_tenant(&self, slug: &str, tenant: Arc<ServedTenant>) {
        self.tenants.insert(slug.to_owned(), tenant);
    }

    pub fn forget_tenant(&self, slug: &str) {
        self.tenants.invalidate(slug);
    }

    pub fn policy(&self, credential: &str) -> Option<Arc<ClientPolicy>> {
        self.policies.get(credential)
    }

    pub fn remember_policy(&self, credential: &str, policy: Arc<ClientPolicy>) {
        self.policies.insert(credential.to_owned(), policy);
    }

    /// A client with keys, as this instance last read it.
    pub fn asserting_client(
        &self,
        tenant: TenantId,
        client_id: &str,
    ) -> Option<Arc<KnownAssertingClient>> {
        let credential = self
            .client_credentials
            .get(&client_key(tenant, client_id))?;
        self.asserting.get(&credential)
    }

    pub fn remember_asserting_client(
        &self,
        tenant: TenantId,
        client_id: &str,
        client: Arc<KnownAssertingClient>,
    ) {
        let credential = client.known.credential_id.clone();
        self.client_credentials
            .insert(client_key(tenant, client_id), credential.clone());
        self.asserting.insert(credential, client);
    }

    /// The credential's policy or keys changed: read them again, and let a raised limit apply
    /// at once.
    pub fn forget_credential(&self, credential: &str) {
        self.policies.invalidate(credential);
        self.asserting.invalidate(credential);
        self.limited.invalidate(credential);
    }

    /// Anything may have changed (a notification may have been missed).
    pub fn forget_settings(&self) {
        self.policies.invalidate_all();
        self.asserting.invalidate_all();
        self.limited.invalidate_all();
        self.tenants.invalidate_all();
    }
}

fn client_key(tenant: TenantId, client_id: &str) -> String {
    format!("{tenant}/{client_id}")
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new(200_000)
    }
}
