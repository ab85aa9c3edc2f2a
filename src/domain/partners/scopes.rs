//! A tenant's scope catalogue: what partners may ask for. Adding and removing a scope are admin
//! actions, recorded in the event log like every other.

use super::*;
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId, time_ordered_id};

/// The tenant's scopes, by name.
pub async fn scopes(core: &Core, tenant: TenantId) -> Result<Vec<Scope>, StoreError> {
    core.store.scopes_of(tenant).await
}

/// Adds a scope: a well-formed name not yet in the catalogue, and a description.
pub async fn add_scope(
    core: &Core,
    actor: UserId,
    tenant: TenantId,
    name: &str,
    description: &str,
    context: &RequestContext,
) -> Result<Scope, PartnerError> {
    let scope = Scope {
        id: time_ordered_id(),
        name: parse_scope_name(name)?,
        description: clean_text(description, 200, "Describe the scope.")?,
    };
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::ScopeAdded,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant)
    .context(context)
    .detail("scope", scope.name.as_str());
    if core.store.insert_scope(tenant, &scope, now, &event).await? {
        Ok(scope)
    } else {
        Err(PartnerError::Invalid("That scope already exists."))
    }
}

/// Removes a scope from the catalogue. Grants that hold it keep it: what was approved stays
/// approved until revoked.
pub async fn remove_scope(
    core: &Core,
    actor: UserId,
    tenant: TenantId,
    id: &str,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::ScopeRemoved,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant)
    .context(context);
    match core.store.delete_scope(tenant, id, &event).await? {
        Some(_) => Ok(()),
        None => Err(PartnerError::NotFound),
    }
}
