//! Client authentication at the token, introspection, revocation and feed endpoints: HTTP Basic
//! (`client_secret_basic`) or form fields (`client_secret_post`), verified on the same fast path as
//! API tokens, or a signed assertion (`private_key_jwt`). The proof is checked first: a valid one
//! is admitted whatever anyone else did from the same address or with the same client id.
//! Failures are counted per client id and address and per address (RFC 6749 §2.3.1); past a
//! threshold further failures are answered "throttled" (from memory once this instance has seen
//! the lock) without being counted. A client limited to some networks is refused from any other,
//! with the same answer as a wrong secret.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::assertion::{AssertionRefusal, verify_assertion};
use super::cache::KnownSecret;
use super::secrets::record_use;
use super::{ErrorCode, OAuthError, Presented, SecretCheck, ServedTenant, check_secret};
use crate::clock::duration_ms;
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::partners::CredentialKind;
use crate::domain::partners::policies::{self, ClientPolicy};
use crate::domain::throttle::{lock_duration, retry_after};
use crate::refusals::Refusal;
use crate::store::token_batches::SingleUse;

const WINDOW: Duration = Duration::from_secs(15 * 60);
const PAIR_THRESHOLD: i64 = 10;
const IP_THRESHOLD: i64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [Self::Basic, Self::Post, Self::PrivateKeyJwt];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "client_secret_basic",
            Self::Post => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// How the client proves who it is.
pub enum ClientProof {
    Secret(SecretString),
    /// A signed JWT (`client_assertion`).
    Assertion(SecretString),
}

/// Client credentials as presented.
pub struct PresentedClient {
    pub client_id: String,
    pub proof: ClientProof,
    pub method: AuthMethod,
}

/// What the endpoint needs the client for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPurpose {
    /// The token endpoint: any client of the tenant. A client assertion's id is spent with the
    /// token it obtains (in the same transaction).
    TokenRequest,
    /// The revocation endpoint: any client of the tenant.
    OwnTokens,
    /// Introspection and the revocation feed: resource servers only.
    ResourceServer,
}

#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client_id: String,
    pub method: AuthMethod,
    pub known: Arc<KnownSecret>,
    /// What the credential may do: networks (already checked), issuance limit, DPoP.
    pub policy: Arc<ClientPolicy>,
    /// The client assertion's id, not yet spent (token requests spend it with the token).
    pub unspent: Option<SingleUse>,
}

fn throttle_keys(client_id: &str, ip: Option<&str>) -> Vec<(String, i64)> {
    let ip = ip.unwrap_or("unknown");
    // Client ids are bounded before they become keys: whatever was typed, the key stays small.
    let client: String = client_id.chars().take(64).collect();
    vec![
        (format!("client:{client}@{ip}"), PAIR_THRESHOLD),
        (format!("client-ip:{ip}"), IP_THRESHOLD),
    ]
}

pub async fn authenticate_client(
    core: &Core,
    tenant: &ServedTenant,
    presented: Option<PresentedClient>,
    purpose: ClientPurpose,
    context: &RequestContext,
) -> Result<AuthenticatedClient, OAuthError> {
    let Some(presented) = presented else {
        return Err(OAuthError::rejected(
            ErrorCode::InvalidClient,
            "Client authentication is required.",
        ));
    };
    let keys = throttle_keys(&presented.client_id, context.ip.as_deref());
    let method = (presented.client_id.as_str(), presented.method);
    let failure = match &presented.proof {
        ClientProof::Secret(secret) => {
            let secret = Presented::new(secret.expose_secret());
            match check_secret(core, &secret, context.ip.as_deref()).await? {
                SecretCheck::Active(known)
                    if known.kind == CredentialKind::Client
                        && known.client_id.as_deref() == Some(presented.client_id.as_str())
                        && known.tenant_id == tenant.id =>
                {
                    return admit(core, tenant, presented, known, purpose, context).await;
                }
                SecretCheck::Active(_) => "mismatch",
                SecretCheck::Inactive { reason, .. } => reason.code(),
            }
        }
        ClientProof::Assertion(assertion) => {
            match verify_assertion(core, tenant, method.0, assertion.expose_secret()).await? {
                Ok((known, single_use)) => {
                    let unspent = if purpose == ClientPurpose::TokenRequest {
                        Some(single_use)
                    } else if core
                        .store
                        .use_assertion(&single_use.digest, single_use.expires_at)
                        .await?
                    {
                        None
                    } else {
                        refuse_if_locked(core, &keys).await?;
                        let reason = AssertionRefusal::Replayed.code();
                        record_failure(core, tenant, method, &keys, reason, context).await?;
                        return Err(authentication_failed());
                    };
                    let mut client =
                        admit(core, tenant, presented, known, purpose, context).await?;
                    client.unspent = unspent;
                    return Ok(client);
                }
                Err(refusal) => refusal.code(),
            }
        }
    };
    refuse_if_locked(core, &keys).await?;
    record_failure(core, tenant, method, &keys, failure, context).await?;
    Err(authentication_failed())
}

fn authentication_failed() -> OAuthError {
    OAuthError::rejected(ErrorCode::InvalidClient, "Client authentication failed.")
}

/// An authenticated client, if it may use this endpoint from where it calls. A call from outside
/// its networks gets the same answer as a wrong secret, and counts like one.
async fn admit(
    core: &Core,
    tenant: &ServedTenant,
    presented: PresentedClient,
    known: Arc<KnownSecret>,
    purpose: ClientPurpose,
    context: &RequestContext,
) -> Result<AuthenticatedClient, OAuthError> {
    let policy = policies::enforced_policy(core, known.tenant_id, &known.credential_id).await?;
    if !policy.allows(context.ip.as_deref()) {
        let keys = throttle_keys(&presented.client_id, context.ip.as_deref());
        let locked_for = count_failure(core, &keys).await?;
        let mut event = Event::new(
            core.clock.now_ms(),
            EventType::ClientNetworkRefused,
            Outcome::Failure,
            Actor::Client(known.credential_id.clone()),
        )
        .tenant(tenant.id)
        .context(context)
        .detail("client_id", presented.client_id.as_str())
        .detail("method", presented.method.as_str());
        if let Some(seconds) = locked_for {
            event = event.detail("locked_seconds", seconds);
        }
        core.store.append_event(&event).await?;
        return Err(authentication_failed());
    }
    if purpose == ClientPurpose::ResourceServer && !known.may_introspect {
        return Err(OAuthError::rejected(
            ErrorCode::UnauthorizedClient,
            "This client is not a resource server: it may not introspect tokens or read revocations.",
        ));
    }
    if presented.method == AuthMethod::PrivateKeyJwt {
        record_use(core, &known, core.clock.now_ms(), context.ip.as_deref()).await?;
    }
    Ok(AuthenticatedClient {
        client_id: presented.client_id,
        method: presented.method,
        known,
        policy,
        unspent: None,
    })
}

/// Refuses a failed authentication whose client id or address is locked, without counting it.
/// A lock this instance has seen is answered from memory; otherwise the database is asked.
async fn refuse_if_locked(core: &Core, keys: &[(String, i64)]) -> Result<(), OAuthError> {
    let now = core.clock.now_ms();
    let mut until = keys
        .iter()
        .filter_map(|(key, _)| core.locks.until(key, now))
        .max();
    if until.is_none() {
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        for row in core.store.throttle_rows(&names).await? {
            if let Some(locked) = row.locked_until.filter(|until| *until > now) {
                core.locks.remember(&row.throttle_key, locked);
                until = until.max(Some(locked));
            }
        }
    }
    match until {
        Some(until) => {
            core.refusals.record(Refusal::ThrottledClient, now);
            Err(OAuthError::Throttled {
                retry_after_secs: retry_after(until, now).retry_after_secs,
            })
        }
        None => Ok(()),
    }
}

async fn record_failure(
    core: &Core,
    tenant: &ServedTenant,
    (client_id, method): (&str, AuthMethod),
    keys: &[(String, i64)],
    reason: &str,
    context: &RequestContext,
) -> Result<(), OAuthError> {
    let now = core.clock.now_ms();
    let locked_for = count_failure(core, keys).await?;
    let mut event = Event::new(
        now,
        EventType::ClientAuthFailed,
        Outcome::Failure,
        Actor::Anonymous,
    )
    .tenant(tenant.id)
    .context(context)
    .detail("client_id", loggable_client_id(client_id))
    .detail("method", method.as_str())
    .detail("reason", reason);
    if let Some(seconds) = locked_for {
        event = event.detail("locked_seconds", seconds);
    }
    core.store.append_event(&event).await?;
    Ok(())
}

/// A token request whose client assertion turned out to be spent already (found when its token
/// was to be recorded): refused and counted like any failed client authentication.
pub(super) async fn refuse_replayed_assertion(
    core: &Core,
    tenant: &ServedTenant,
    client: &AuthenticatedClient,
    context: &RequestContext,
) -> OAuthError {
    let keys = throttle_keys(&client.client_id, context.ip.as_deref());
    let reason = AssertionRefusal::Replayed.code();
    let recorded = record_failure(
        core,
        tenant,
        (&client.client_id, client.method),
        &keys,
        reason,
        context,
    )
    .await;
    match recorded {
        Ok(()) => authentication_failed(),
        Err(e) => e,
    }
}

/// Counts a failure against each throttle key; the lock's length when one is now locked.
async fn count_failure(core: &Core, keys: &[(String, i64)]) -> Result<Option<u64>, OAuthError> {
    let now = core.clock.now_ms();
    let mut locked_for = None;
    for (key, threshold) in keys {
        let failures = core
            .store
            .count_failure(key, now, now - duration_ms(WINDOW))
            .await?;
        if failures >= *threshold {
            let lock = lock_duration(failures - threshold);
            let until = now + duration_ms(lock);
            core.store.lock_until(key, until).await?;
            core.locks.remember(key, until);
            locked_for = Some(lock.as_secs());
        }
    }
    Ok(locked_for)
}

/// A client id as typed is only logged when it looks like one: someone pasting a secret into the
/// wrong field must not put it in the event log.
fn loggable_client_id(raw: &str) -> String {
    let looks_right = raw.starts_with("tbc_")
        && raw.len() <= 64
        && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if looks_right {
        raw.to_owned()
    } else {
        "(not a client id)".to_owned()
    }
}
