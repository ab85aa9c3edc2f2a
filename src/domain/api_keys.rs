//! Personal automation keys, like fine-grained personal access tokens: a staff member's key for the
//! JSON API. A key acts as its owner, limited to the permissions (and optionally the tenants and
//! networks) chosen when it was made; every request is allowed only what the key names **and** the
//! owner's roles allow now, so removing a role or deactivating the owner narrows or kills every key
//! at once. The key is shown once and stored as its SHA-256.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::networks::Networks;
use crate::domain::rbac::{self, Permission};
use crate::domain::secrets::SecretDigest;
use crate::domain::tenants;
use crate::domain::tokens::{self, SecretKind};
use crate::domain::users::{User, UserStatus};
use crate::store::StoreError;
pub use crate::store::api_keys::StoredApiKey;

pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Failed key authentications from one address within a minute before it is turned away (429).
pub const FAILURES_PER_MINUTE: i64 = 20;
const ENVIRONMENT: &str = "live";

#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("The owner cannot give a key the permission {0}, which they do not hold.")]
    NotHeld(&'static str),
    #[error("The owner's account is deactivated.")]
    OwnerInactive,
    #[error("That key does not exist.")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new key may do, as its creator chose.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub permissions: Vec<Permission>,
    /// Only these tenants; `None`: every tenant the owner may act in.
    pub tenants: Option<Vec<TenantId>>,
    /// Only from these networks; `None`: from anywhere.
    pub networks: Option<Networks>,
    pub lifetime: Duration,
}

impl NewApiKey {
    /// A key of `name` with `permissions`; `all` stands for every permission `owner` holds.
    pub fn parse(name: &str, permissions: &[String], owner: &User) -> Result<Self, ApiKeyError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiKeyError::Invalid(
                "Give the key a name of 1 to 100 characters.".into(),
            ));
        }
        let mut chosen = Vec::new();
        for raw in permissions {
            if raw == "all" {
                chosen.extend(
                    Permission::ALL
                        .into_iter()
                        .filter(|p| rbac::holds_anywhere(owner, *p)),
                );
                continue;
            }
            let permission = Permission::parse(raw.trim())
                .ok_or_else(|| ApiKeyError::Invalid(format!("Unknown permission {raw:?}.")))?;
            chosen.push(permission);
        }
        chosen.sort_by_key(|p| p.as_str());
        chosen.dedup();
        if chosen.is_empty() {
            return Err(ApiKeyError::Invalid(
                "Choose at least one permission.".into(),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            permissions: chosen,
            tenants: None,
            networks: None,
            lifetime: DEFAULT_LIFETIME,
        })
    }

    /// `30d`, `12h`: how long the key lives, at most a year.
    pub fn expiring_in(mut self, raw: &str) -> Result<Self, ApiKeyError> {
        let raw = raw.trim();
        let invalid =
            || ApiKeyError::Invalid("Give the expiry as days (30d) or hours (12h).".into());
        let (number, unit) = raw.split_at(raw.len().saturating_sub(1));
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let seconds = match unit {
            "d" => number.saturating_mul(86_400),
            "h" => number.saturating_mul(3_600),
            _ => return Err(invalid()),
        };
        let lifetime = Duration::from_secs(seconds);
        if lifetime.is_zero() || lifetime > MAX_LIFETIME {
            return Err(ApiKeyError::Invalid(
                "A key lives at least an hour and at most a year.".into(),
            ));
        }
        self.lifetime = lifetime;
        Ok(self)
    }

    /// Limits the key to the tenants with these slugs (none given: no limit).
    pub async fn only_in(mut self, core: &Core, slugs: &[String]) -> Result<Self, ApiKeyError> {
        let mut ids = Vec::new();
        for slug in slugs.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let tenant = tenants::by_slug(core, slug)
                .await?
                .ok_or_else(|| ApiKeyError::Invalid(format!("No tenant has the slug {slug:?}.")))?;
            ids.push(tenant.id);
        }
        self.tenants = (!ids.is_empty()).then_some(ids);
        Ok(self)
    }

    pub fn only_from(mut self, networks: &[String]) -> Result<Self, ApiKeyError> {
        self.networks = Networks::parse(networks).map_err(ApiKeyError::Invalid)?;
        Ok(self)
    }
}

/// Creates a key for `owner`; the key itself is returned once and never stored.
pub async fn create(
    core: &Core,
    owner: &User,
    new: NewApiKey,
    actor: Actor,
    context: &RequestContext,
) -> Result<(StoredApiKey, SecretString), ApiKeyError> {
    if owner.status != UserStatus::Active {
        return Err(ApiKeyError::OwnerInactive);
    }
    if let Some(missing) = new
        .permissions
        .iter()
        .find(|p| !rbac::holds_anywhere(owner, **p))
    {
        return Err(ApiKeyError::NotHeld(missing.as_str()));
    }
    if let Some(tenants) = &new.tenants {
        if tenants
            .iter()
            .any(|t| !rbac::may(owner, Permission::EnterTenant, Some(*t)))
        {
            return Err(ApiKeyError::Invalid(
                "A key can be limited only to tenants its owner may act in.".into(),
            ));
        }
    }
    let now = core.clock.now_ms();
    let issued = tokens::issue(SecretKind::AutomationKey, ENVIRONMENT);
    let key = StoredApiKey {
        id: time_ordered_id(),
        owner: owner.id.to_string(),
        name: new.name,
        display_prefix: issued.display_prefix,
        permissions: join(new.permissions.iter().map(|p| p.as_str())),
        tenants: new.tenants.map(|t| join(t.iter().map(ToString::to_string))),
        networks: new.networks.map(|n| n.to_stored()),
        created_at: now,
        expires_at: now.saturating_add(duration_ms(new.lifetime)),
        revoked_at: None,
        last_used_at: None,
        last_used_ip: None,
    };
    let event = Event::new(now, EventType::ApiKeyCreated, Outcome::Success, actor)
        .subject(owner.id)
        .context(context)
        .detail("api_key", key.id.as_str())
        .detail("name", key.name.as_str())
        .detail("permissions", key.permissions.as_str())
        .detail("expires_at", key.expires_at);
    let digest = SecretDigest::of(issued.secret.expose_secret());
    core.store.insert_api_key(&key, &digest, &event).await?;
    Ok((key, issued.secret))
}

/// The owner's keys, newest first (revoked and expired ones too, marked as such).
pub async fn keys_of(core: &Core, owner: UserId) -> Result<Vec<StoredApiKey>, StoreError> {
    core.store.api_keys_of(owner).await
}

/// Revokes one of the owner's keys: it stops working at its next use.
pub async fn revoke(
    core: &Core,
    owner: UserId,
    key: &str,
    context: &RequestContext,
) -> Result<(), ApiKeyError> {
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::ApiKeyRevoked,
        Outcome::Success,
        Actor::User(owner),
    )
    .subject(owner)
    .context(context)
    .detail("api_key", key);
    if core.store.revoke_api_key(owner, key, now, &event).await? {
        Ok(())
    } else {
        Err(ApiKeyError::NotFound)
    }
}

/// Who is calling the API: the key, and its owner as they are now.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub key_id: String,
    pub owner: User,
    pub permissions: Vec<Permission>,
    pub tenants: Option<Vec<TenantId>>,
}

impl ApiCaller {
    /// The key names the permission, the tenant is within the key's tenants, and the owner's roles
    /// allow it now. Entering a tenant is visibility, not an action: a key sees the tenants its
    /// owner may enter (within its tenant limit) whatever permissions it names.
    pub fn may(&self, permission: Permission, tenant: Option<TenantId>) -> bool {
        let tenant_allowed = match (&self.tenants, tenant) {
            (None, _) => true,
            (Some(listed), Some(tenant)) => listed.contains(&tenant),
            // A key limited to some tenants acts in those only, never globally.
            (Some(_), None) => false,
        };
        let named = permission == Permission::EnterTenant || self.permissions.contains(&permission);
        tenant_allowed && named && rbac::may(&self.owner, permission, tenant)
    }

    /// What the events of this caller's actions carry: the owner acts, through this key.
    pub fn actor(&self) -> Actor {
        Actor::User(self.owner.id)
    }
}

/// Where a key stands against its per-minute budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateBudget {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window ends and the budget is full again.
    pub reset_secs: u64,
}

impl RateBudget {
    pub fn exhausted(&self) -> bool {
        self.remaining == 0 && self.reset_secs > 0
    }
}

/// Counts one request of the key against `per_minute`, across every instance (the count lives in
/// the database). The request that would exceed the budget gets `remaining` 0.
pub async fn spend(
    core: &Core,
    caller: &ApiCaller,
    per_minute: u32,
) -> Result<(RateBudget, bool), StoreError> {
    const WINDOW_MS: Millis = 60_000;
    let now = core.clock.now_ms();
    let (count, started) = core
        .store
        .count_in_window(&format!("api_rate:{}", caller.key_id), now, WINDOW_MS)
        .await?;
    let used = u32::try_from(count).unwrap_or(u32::MAX);
    let budget = RateBudget {
        limit: per_minute,
        remaining: per_minute.saturating_sub(used),
        reset_secs: u64::try_from((started + WINDOW_MS - now).max(0))
            .unwrap_or(0)
            .div_ceil(1000),
    };
    Ok((budget, used <= per_minute))
}

/// Why a presented key was refused. Every reason gets the same 401 (a guesser learns nothing),
/// except throttling, which is 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("no key was presented")]
    Missing,
    #[error("the key is not one of ours")]
    Unknown,
    #[error("the key has expired")]
    Expired,
    #[error("the key was revoked")]
    Revoked,
    #[error("the key's owner is deactivated")]
    OwnerInactive,
    #[error("the key is not allowed from this network")]
    Network,
    #[error("too many failed key authentications from this address")]
    Throttled,
}

impl KeyRefusal {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::OwnerInactive => "owner_inactive",
            Self::Network => "network",
            Self::Throttled => "throttled",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthenticationError {
    #[error("{0}")]
    Refused(KeyRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a presented key. A valid key is admitted whatever others did from its address. A
/// refused one is recorded (never the key) and counted per address; past [`FAILURES_PER_MINUTE`]
/// further refusals from that address are answered "throttled" without being recorded or counted,
/// so a flood of wrong keys costs one lookup each (none for a malformed key). A request with no
/// key at all is not a guess: it is refused without being counted.
pub async fn authenticate(
    core: &Core,
    presented: Option<&str>,
    context: &RequestContext,
) -> Result<ApiCaller, AuthenticationError> {
    let Some(presented) = presented else {
        return Err(AuthenticationError::Refused(KeyRefusal::Missing));
    };
    let now = core.clock.now_ms();
    let (refusal, key_id) = match check(core, presented, context, now).await? {
        Ok(caller) => return Ok(caller),
        Err(refused) => refused,
    };
    let throttle_key = format!("api_key:ip:{}", context.ip.as_deref().unwrap_or("unknown"));
    if over_failure_limit(core, &throttle_key, now).await? {
        return Err(AuthenticationError::Refused(KeyRefusal::Throttled));
    }
    core.store
        .count_failure(&throttle_key, now, now - FAILURE_WINDOW_MS)
        .await?;
    let mut event = Event::new(
        now,
        EventType::ApiKeyRefused,
        Outcome::Failure,
        Actor::Anonymous,
    )
    .context(context)
    .detail("reason", refusal.as_str());
    if let Some(key_id) = key_id {
        event = event.detail("api_key", key_id);
    }
    core.store.append_event(&event).await?;
    Err(AuthenticationError::Refused(refusal))
}

const FAILURE_WINDOW_MS: Millis = 60_000;
/// A well-formed key found to match no key is answered from memory this long, so a flood repeating
/// one wrong key costs no database read per request now that the key is checked before the
/// throttle. Safe: a key's secret is random, so nobody presents it before it exists.
const KNOWN_UNKNOWN_MS: Millis = 5_000;
/// An address found over its limit is answered from memory this long before the count is read
/// again.
const KNOWN_OVER_LIMIT_MS: Millis = 5_000;

async fn over_failure_limit(
    core: &Core,
    throttle_key: &str,
    now: Millis,
) -> Result<bool, StoreError> {
    if core.locks.until(throttle_key, now).is_some() {
        return Ok(true);
    }
    let failures = core
        .store
        .failures_within(throttle_key, now - FAILURE_WINDOW_MS)
        .await?;
    if failures < FAILURES_PER_MINUTE {
        return Ok(false);
    }
    core.locks.remember(throttle_key, now + KNOWN_OVER_LIMIT_MS);
    Ok(true)
}

type Checked = Result<ApiCaller, (KeyRefusal, Option<String>)>;

async fn check(
    core: &Core,
    presented: &str,
    context: &RequestContext,
    now: Millis,
) -> Result<Checked, StoreError> {
    if !tokens::is_well_formed(presented, SecretKind::AutomationKey) {
        return Ok(Err((KeyRefusal::Unknown, None)));
    }
    let digest = SecretDigest::of(presented);
    let known_unknown = format!("api_key:unknown:{}", digest.as_hex());
    if core.locks.until(&known_unknown, now).is_some() {
        return Ok(Err((KeyRefusal::Unknown, None)));
    }
    let Some(key) = core.store.api_key_by_secret(&digest).await? else {
        core.locks.remember(&known_unknown, now + KNOWN_UNKNOWN_MS);
        return Ok(Err((KeyRefusal::Unknown, None)));
    };
    let refused = |refusal| Ok(Err((refusal, Some(key.id.clone()))));
    if key.revoked_at.is_some() {
        return refused(KeyRefusal::Revoked);
    }
    if key.expires_at <= now {
        return refused(KeyRefusal::Expired);
    }
    let owner = match UserId::parse(&key.owner) {
        Some(id) => core.store.find_user(id).await?,
        None => None,
    };
    let Some(owner) = owner.filter(|o| o.status == UserStatus::Active) else {
        return refused(KeyRefusal::OwnerInactive);
    };
    if !from_allowed_network(&key, context) {
        return refused(KeyRefusal::Network);
    }
    core.store
        .touch_api_key(owner.id, &key.id, now, context.ip.as_deref())
        .await?;
    Ok(Ok(ApiCaller {
        permissions: split(&key.permissions)
            .filter_map(Permission::parse)
            .collect(),
        tenants: key
            .tenants
            .as_deref()
            .map(|t| split(t).filter_map(TenantId::parse).collect()),
        key_id: key.id,
        owner,
    }))
}

fn from_allowed_network(key: &StoredApiKey, context: &RequestContext) -> bool {
    // A stored list that no longer parses allows nothing: fail closed.
    key.networks.as_deref().is_none_or(|stored| {
        Networks::from_stored(stored).is_some_and(|n| n.allow(context.ip.as_deref()))
    })
}

fn join(items: impl Iterator<Item = impl AsRef<str>>) -> String {
    items
        .map(|i| i.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}
