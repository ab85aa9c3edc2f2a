//! Verifying an opaque secret (API token or client secret): format and checksum → SHA-256 →
//! known-secret cache, or one indexed lookup → constant-time comparison → not expired, credential
//! not revoked, tenant not suspended. Anything else is simply "inactive", telling the caller nothing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use super::cache::KnownSecret;
use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::domain::partners::CredentialStatus;
use crate::domain::secrets::{SecretDigest, constant_time_eq, sha256};
use crate::domain::tenants::TenantStatus;
use crate::domain::tokens::{self, SecretKind};
use crate::store::StoreError;

/// How stale "last used" may get before a verification refreshes it.
const LAST_USE_GRANULARITY_MS: i64 = 60_000;

/// Why a secret did not verify (for events and tests; callers answer only "inactive").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    Malformed,
    Unknown,
    Expired,
    NotYetValid,
    Revoked,
    TenantSuspended,
    WrongTenant,
    UnknownKey,
    BadSignature,
}

impl Inactive {
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::TenantSuspended => "tenant_suspended",
            Self::WrongTenant => "wrong_tenant",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
        }
    }

    /// Was the token once genuinely ours (so presenting it now is worth an alert)?
    pub fn is_stale_credential(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired | Self::TenantSuspended)
    }
}

/// The outcome of checking a secret: what it is, or why not (with the credential when known).
pub enum SecretCheck {
    Active(Arc<KnownSecret>),
    Inactive {
        reason: Inactive,
        known: Option<Arc<KnownSecret>>,
    },
}

/// A presented secret with its SHA-256, computed once per request.
pub struct Presented<'a> {
    pub text: &'a str,
    pub sha256: [u8; 32],
    /// The cache is asked once per request, however many checks look.
    cached: OnceLock<Option<Arc<KnownSecret>>>,
}

impl<'a> Presented<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            sha256: sha256(text),
            cached: OnceLock::new(),
        }
    }

    /// What this instance already knows the secret to be (no verdict: see [`check_secret`]).
    pub fn cached(&self, core: &Core) -> Option<Arc<KnownSecret>> {
        self.cached
            .get_or_init(|| core.verified.secrets.get(&self.sha256))
            .clone()
    }
}

/// Verifies an opaque secret. `from_ip` is recorded (at most once a minute) as the last use.
pub async fn check_secret(
    core: &Core,
    presented: &Presented<'_>,
    from_ip: Option<&str>,
) -> Result<SecretCheck, StoreError> {
    if !tokens::is_well_formed(presented.text, SecretKind::ApiToken)
        && !tokens::is_well_formed(presented.text, SecretKind::ClientSecret)
    {
        return Ok(inactive(Inactive::Malformed, None));
    }
    let known = match presented.cached(core) {
        Some(known) => known,
        None => match load(core, &SecretDigest::from_sha256(&presented.sha256)).await? {
            Loaded::Known(known) => {
                core.verified
                    .secrets
                    .insert(presented.sha256, known.clone());
                known
            }
            Loaded::Gone(reason, known) => return Ok(inactive(reason, Some(known))),
            Loaded::Unknown => return Ok(inactive(Inactive::Unknown, None)),
        },
    };
    let now = core.clock.now_ms();
    if let Some(reason) = current_state(core, &known, now) {
        return Ok(inactive(reason, Some(known)));
    }
    record_use(core, &known, now, from_ip).await?;
    Ok(SecretCheck::Active(known))
}

fn inactive(reason: Inactive, known: Option<Arc<KnownSecret>>) -> SecretCheck {
    SecretCheck::Inactive { reason, known }
}

/// The checks that can change after a secret was first seen.
pub(super) fn current_state(core: &Core, known: &KnownSecret, now: Millis) -> Option<Inactive> {
    if known.expires_at <= now {
        Some(Inactive::Expired)
    } else if core.revocations.credential_revoked(&known.credential_id)
        || core.revocations.secret_retired(&known.secret_id)
    {
        Some(Inactive::Revoked)
    } else if core.revocations.tenant_suspended(known.tenant_id) {
        Some(Inactive::TenantSuspended)
    } else {
        None
    }
}

enum Loaded {
    Known(Arc<KnownSecret>),
    Gone(Inactive, Arc<KnownSecret>),
    Unknown,
}

async fn load(core: &Core, digest: &SecretDigest) -> Result<Loaded, StoreError> {
    let Some(found) = core.store.lookup_secret(digest).await? else {
        return Ok(Loaded::Unknown);
    };
    if !constant_time_eq(&found.secret_hash, digest.as_hex()) {
        return Ok(Loaded::Unknown);
    }
    let kind = found.kind;
    let known = Arc::new(KnownSecret {
        secret_id: found.secret_id,
        tenant_id: TenantId::parse(&found.tenant_id)
            .ok_or_else(|| StoreError::Corrupt(format!("tenant id {}", found.tenant_id)))?,
        credential_id: found.credential_id,
        kind,
        client_id: found.client_id,
        may_introspect: found.may_introspect != 0,
        scopes: serde_json::from_str(&found.scopes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        expires_at: found.credential_expires_at.min(found.secret_expires_at),
        last_recorded: found.last_used_at.unwrap_or(0).into(),
    });
    // The database is the truth on a miss: the cache may not have read the latest revocations yet.
    let reason = if found.credential_status == CredentialStatus::Expired {
        Some(Inactive::Expired)
    } else if found.credential_status != CredentialStatus::Active
        || found.secret_revoked_at.is_some()
        || found.grant_revoked_at.is_some()
    {
        Some(Inactive::Revoked)
    } else if found.tenant_status != TenantStatus::Active {
        Some(Inactive::TenantSuspended)
    } else {
        None
    };
    Ok(match reason {
        Some(reason) => Loaded::Gone(reason, known),
        None => Loaded::Known(known),
    })
}

/// Writes "last used" at most once a minute per credential and instance (the store's own guard
/// keeps several instances from all writing within the same minute).
pub(super) async fn record_use(
    core: &Core,
    known: &KnownSecret,
    now: Millis,
    from_ip: Option<&str>,
) -> Result<(), StoreError> {
    let last = known.last_recorded.load(Ordering::Relaxed);
    if now - last < LAST_USE_GRANULARITY_MS {
        return Ok(());
    }
    if known
        .last_recorded
        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        core.store
            .touch_credential(known.tenant_id, &known.credential_id, now, from_ip)
            .await?;
    }
    Ok(())
}
