//! What a client credential may do once it has authenticated: the networks it may call from, how
//! many tokens it may obtain per minute (on every instance together), and whether each token must
//! be bound to a key with DPoP. Set when it is minted and changed later by support; every change is
//! an event, and every instance reads the new policy at the client's next request.

use std::sync::Arc;

use super::{CredentialKind, CredentialStatus, PartnerError};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::networks::Networks;
use crate::store::StoreError;
use crate::store::partners::policies::{PolicyValues, StoredPolicy};

pub const DEFAULT_TOKENS_PER_MINUTE: u32 = 60;
/// Far beyond what one instance signs; a bound that keeps the number meaningful.
pub const MAX_TOKENS_PER_MINUTE: u32 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPolicy {
    /// Only from these networks; `None`: from anywhere.
    pub networks: Option<Networks>,
    pub tokens_per_minute: u32,
    /// Every token must be requested with a DPoP proof (and is then bound to its key).
    pub require_dpop: bool,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        Self {
            networks: None,
            tokens_per_minute: DEFAULT_TOKENS_PER_MINUTE,
            require_dpop: false,
        }
    }
}

impl ClientPolicy {
    /// May the client call from `ip`?
    pub fn allows(&self, ip: Option<&str>) -> bool {
        self.networks.as_ref().is_none_or(|n| n.allow(ip))
    }

    fn from_stored(stored: &StoredPolicy) -> Self {
        Self {
            // A list that no longer parses must not open the credential to the world.
            networks: stored
                .allowed_networks
                .as_deref()
                .map(|text| Networks::from_stored(text).unwrap_or_else(Networks::nowhere)),
            tokens_per_minute: u32::try_from(stored.tokens_per_minute)
                .unwrap_or(DEFAULT_TOKENS_PER_MINUTE),
            require_dpop: stored.require_dpop != 0,
        }
    }

    /// The networks, one per entry, or empty for anywhere (forms and API bodies).
    pub fn network_entries(&self) -> Vec<String> {
        self.networks
            .as_ref()
            .map(Networks::entries)
            .unwrap_or_default()
    }

    /// As an event records it.
    fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "networks": self.networks.as_ref().map_or_else(|| "anywhere".into(), |n| n.to_stored()),
            "tokens_per_minute": self.tokens_per_minute,
            "require_dpop": self.require_dpop,
        })
    }
}

/// A change staff asked for; what is left out stays as it is.
#[derive(Debug, Clone, Default)]
pub struct PolicyChange {
    /// `Some(None)`: from anywhere again.
    pub networks: Option<Option<Networks>>,
    pub tokens_per_minute: Option<u32>,
    pub require_dpop: Option<bool>,
}

impl PolicyChange {
    /// Networks as typed (CIDRs or addresses, by line or comma); none at all means anywhere.
    pub fn networks(mut self, entries: &[String]) -> Result<Self, PartnerError> {
        let parsed = Networks::parse(entries).map_err(|message| PartnerError::Policy {
            field: "networks",
            message,
        })?;
        self.networks = Some(parsed);
        Ok(self)
    }

    pub fn tokens_per_minute(mut self, limit: i64) -> Result<Self, PartnerError> {
        let limit = u32::try_from(limit)
            .ok()
            .filter(|l| (1..=MAX_TOKENS_PER_MINUTE).contains(l))
            .ok_or_else(|| PartnerError::Policy {
                field: "tokens_per_minute",
                message: format!(
                    "The limit is a whole number of tokens per minute from 1 to {MAX_TOKENS_PER_MINUTE}."
                ),
            })?;
        self.tokens_per_minute = Some(limit);
        Ok(self)
    }

    /// The limit as typed in a form.
    pub fn tokens_per_minute_text(self, raw: &str) -> Result<Self, PartnerError> {
        let limit = raw.trim().parse::<i64>().unwrap_or(0);
        self.tokens_per_minute(limit)
    }

    pub fn require_dpop(mut self, required: bool) -> Self {
        self.require_dpop = Some(required);
        self
    }

    pub fn applied_to(&self, policy: &ClientPolicy) -> ClientPolicy {
        ClientPolicy {
            networks: self
                .networks
                .clone()
                .unwrap_or_else(|| policy.networks.clone()),
            tokens_per_minute: self.tokens_per_minute.unwrap_or(policy.tokens_per_minute),
            require_dpop: self.require_dpop.unwrap_or(policy.require_dpop),
        }
    }
}

/// The policy of a client credential of `tenant` (as the console and the API show it).
pub async fn client_policy(
    core: &Core,
    tenant: TenantId,
    credential: &str,
) -> Result<ClientPolicy, PartnerError> {
    let stored = core
        .store
        .client_policy(tenant, credential)
        .await?
        .ok_or(PartnerError::NotFound)?;
    Ok(ClientPolicy::from_stored(&stored))
}

/// The policy the token service applies: from memory, or read once and remembered.
pub async fn enforced_policy(
    core: &Core,
    tenant: TenantId,
    credential: &str,
) -> Result<Arc<ClientPolicy>, StoreError> {
    if let Some(policy) = core.verified.policy(credential) {
        return Ok(policy);
    }
    let policy = Arc::new(
        core.store
            .client_policy(tenant, credential)
            .await?
            .map(|stored| ClientPolicy::from_stored(&stored))
            .unwrap_or_default(),
    );
    core.verified.remember_policy(credential, policy.clone());
    Ok(policy)
}

/// Changes what a client credential may do. Returns the policy now in force.
pub async fn set_policy(
    core: &Core,
    actor: UserId,
    tenant: TenantId,
    credential: &str,
    change: &PolicyChange,
    context: &RequestContext,
) -> Result<ClientPolicy, PartnerError> {
    let stored = core
        .store
        .client_policy(tenant, credential)
        .await?
        .ok_or(PartnerError::NotFound)?;
    if stored.kind != CredentialKind::Client {
        return Err(PartnerError::Invalid(
            "Only client credentials have networks, limits and DPoP settings.",
        ));
    }
    if stored.status != CredentialStatus::Active {
        return Err(PartnerError::Invalid(
            "This credential is no longer active.",
        ));
    }
    let before = ClientPolicy::from_stored(&stored);
    let after = change.applied_to(&before);
    if after == before {
        return Ok(after);
    }
    let networks = after.networks.as_ref().map(Networks::to_stored);
    let values = PolicyValues {
        allowed_networks: networks.as_deref(),
        tokens_per_minute: i64::from(after.tokens_per_minute),
        require_dpop: after.require_dpop,
    };
    let changed: Vec<&str> = [
        ("networks", before.networks != after.networks),
        (
            "tokens_per_minute",
            before.tokens_per_minute != after.tokens_per_minute,
        ),
        ("require_dpop", before.require_dpop != after.require_dpop),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    let event = Event::new(
        core.clock.now_ms(),
        EventType::CredentialPolicyChanged,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant)
    .context(context)
    .detail("credential", credential)
    .detail("changed", changed)
    .detail("before", before.describe())
    .detail("after", after.describe());
    if !core
        .store
        .set_client_policy(tenant, credential, &values, &event)
        .await?
    {
        return Err(PartnerError::Invalid(
            "This credential is no longer active.",
        ));
    }
    core.verified.forget_credential(credential);
    Ok(after)
}

/// What a minted credential's event says of its policy.
pub fn describe(policy: &ClientPolicy) -> serde_json::Value {
    policy.describe()
}
