//! What has been revoked, held in memory for the verification hot path. The revocation log in the
//! database is the truth; this cache follows it by cursor — at once after a local revocation, on
//! another instance's NOTIFY (PostgreSQL), and on a periodic reconciliation that bounds staleness
//! even when a notification is lost.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use crate::clock::Millis;
use crate::domain::ids::TenantId;
use crate::store::revocations::RevocationEntry;
use crate::store::{Store, StoreError};

/// Entries read per round trip while catching up.
const BATCH: i64 = 5_000;

#[derive(Default)]
struct Revoked {
    cursor: i64,
    loaded: bool,
    /// jti → when it may be forgotten.
    tokens: HashMap<String, Option<Millis>>,
    credentials: HashMap<String, Option<Millis>>,
    /// Retired client secrets (by secret id) of credentials that stay active.
    secrets: HashMap<String, Option<Millis>>,
    keys: HashSet<String>,
    suspended_tenants: HashSet<TenantId>,
}

impl Revoked {
    fn apply(&mut self, entry: RevocationEntry) {
        self.cursor = self.cursor.max(entry.seq);
        match entry.kind.as_str() {
            "token" => {
                self.tokens.insert(entry.subject, entry.forget_after);
            }
            "credential" => {
                self.credentials.insert(entry.subject, entry.forget_after);
            }
            "secret" => {
                self.secrets.insert(entry.subject, entry.forget_after);
            }
            "key" => {
                self.keys.insert(entry.subject);
            }
            "tenant_suspended" => {
                self.suspended_tenants
                    .extend(TenantId::parse(&entry.subject));
            }
            "tenant_reactivated" => {
                if let Some(tenant) = TenantId::parse(&entry.subject) {
                    self.suspended_tenants.remove(&tenant);
                }
            }
            other => tracing::warn!(kind = other, "unknown revocation kind ignored"),
        }
    }
}

#[derive(Default)]
pub struct RevocationCache {
    revoked: RwLock<Revoked>,
    /// One catch-up at a time; a second caller waits and then finds nothing new.
    catching_up: tokio::sync::Mutex<()>,
}

impl RevocationCache {
    /// Has the cache read the log at least once? Until then callers must ask the database.
    pub fn is_loaded(&self) -> bool {
        self.revoked.read().is_ok_and(|r| r.loaded)
    }

    pub fn token_revoked(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .is_ok_and(|r| r.tokens.contains_key(jti))
    }

    pub fn credential_revoked(&self, credential: &str) -> bool {
        self.revoked
            .read()
            .is_ok_and(|r| r.credentials.contains_key(credential))
    }

    pub fn secret_retired(&self, secret: &str) -> bool {
        self.revoked
            .read()
            .is_ok_and(|r| r.secrets.contains_key(secret))
    }

    pub fn key_dropped(&self, kid: &str) -> bool {
        self.revoked.read().is_ok_and(|r| r.keys.contains(kid))
    }

    pub fn tenant_suspended(&self, tenant: TenantId) -> bool {
        self.revoked
            .read()
            .is_ok_and(|r| r.suspended_tenants.contains(&tenant))
    }

    pub fn cursor(&self) -> i64 {
        self.revoked.read().map_or(0, |r| r.cursor)
    }

    /// Reads every entry after the cursor. Returns how many were applied.
    pub async fn catch_up(&self, store: &Store) -> Result<usize, StoreError> {
        let _one_at_a_time = self.catching_up.lock().await;
        let mut applied = 0;
        loop {
            let entries = store.revocations_after(self.cursor(), BATCH).await?;
            let count = entries.len();
            if let Ok(mut revoked) = self.revoked.write() {
                for entry in entries {
                    revoked.apply(entry);
                }
                revoked.loaded = true;
            }
            applied += count;
            if count < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                return Ok(applied);
            }
        }
    }

    /// Drops entries whose tokens or credentials have expired anyway.
    pub fn forget_expired(&self, now: Millis) {
        if let Ok(mut revoked) = self.revoked.write() {
            revoked
                .tokens
                .retain(|_, forget| forget.is_none_or(|at| at > now));
            revoked
                .credentials
                .retain(|_, forget| forget.is_none_or(|at| at > now));
            revoked
                .secrets
                .retain(|_, forget| forget.is_none_or(|at| at > now));
        }
    }
}
