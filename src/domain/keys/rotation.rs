//! Changing keys. Every change is one store transaction carrying its events and the notices to the
//! tenant's admins and to security staff, and it drops the key ring's copy here (other instances
//! hear through the store's notification or the periodic reconciliation).

use super::*;
use crate::clock::format_utc;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::mail;
use crate::store::keys::{KeyDrop, NewKey, Rotation};
use crate::store::staff::OutgoingMail;

/// Why a rotation happens.
#[derive(Debug, Clone)]
pub enum RotationCause {
    Scheduled,
    Manual(UserId, RequestContext),
}

fn key_event(now: Millis, tenant: TenantId, kind: EventType, actor: Actor, kid: &str) -> Event {
    Event::new(now, kind, Outcome::Success, actor)
        .tenant(tenant)
        .detail("kid", kid)
}

/// Notices for the tenant's admins and every security staff member.
async fn notices(
    core: &Core,
    tenant: TenantId,
    subject: &str,
    paragraphs: Vec<String>,
    now: Millis,
) -> Result<Vec<OutgoingMail>, KeyError> {
    let name = core
        .store
        .tenant_by_id(tenant)
        .await?
        .map_or_else(|| tenant.to_string(), |t| t.name);
    let subject = format!("{name}: {subject}");
    let mut recipients: Vec<String> = core
        .store
        .tenant_admins(tenant)
        .await?
        .into_iter()
        .map(|admin| admin.email)
        .collect();
    recipients.extend(core.store.security_staff_emails().await?);
    recipients.sort();
    recipients.dedup();
    let rendered = mail::notice(&subject, "", &paragraphs, None)
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    Ok(recipients
        .iter()
        .map(|to| mail::queued(to, rendered.clone(), now))
        .collect())
}

struct Fresh {
    generated: material::GeneratedKey,
    kek_id: String,
}

impl Fresh {
    fn new(core: &Core, tenant: TenantId) -> Result<Self, KeyError> {
        let kek = core.keys.kek()?;
        Ok(Self {
            generated: material::generate(kek, tenant, core.keys.policy.algorithm)?,
            kek_id: kek.id().to_owned(),
        })
    }

    fn row(&self, state: KeyState, usable_from: Millis) -> NewKey<'_> {
        NewKey {
            kid: &self.generated.kid,
            algorithm: self.generated.algorithm.as_str(),
            state: state.as_str(),
            public_jwk: &self.generated.public_jwk,
            sealed_private: &self.generated.sealed_private,
            kek_id: &self.kek_id,
            usable_from,
        }
    }
}

fn next_usable_from(core: &Core, now: Millis) -> Millis {
    now + duration_ms(core.keys.policy.prepublication())
}

/// A tenant's first keys: one active at once (nobody can hold a token of this tenant yet, so there
/// is nothing to pre-publish for) and one next. Racing instances: one wins, the others find it done.
pub(super) async fn create_family(core: &Core, tenant: TenantId) -> Result<(), KeyError> {
    let now = core.clock.now_ms();
    let (active, next) = (Fresh::new(core, tenant)?, Fresh::new(core, tenant)?);
    let usable_from = next_usable_from(core, now);
    let events = [
        key_event(
            now,
            tenant,
            EventType::KeyActivated,
            Actor::System,
            &active.generated.kid,
        )
        .detail("algorithm", active.generated.algorithm.as_str()),
        key_event(
            now,
            tenant,
            EventType::KeyPublished,
            Actor::System,
            &next.generated.kid,
        )
        .detail("usable_from", usable_from),
    ];
    let mails = notices(
        core,
        tenant,
        "signing keys created",
        vec![format!(
            "Tokens are now signed with key {} ({}). Key {} is published as the next key and can take over from {}.",
            active.generated.kid,
            active.generated.algorithm.as_str(),
            next.generated.kid,
            format_utc(usable_from)
        )],
        now,
    )
    .await?;
    core.store
        .insert_keys(
            tenant,
            &[
                active.row(KeyState::Active, now),
                next.row(KeyState::Next, usable_from),
            ],
            now,
            &events,
            &mails,
        )
        .await?;
    core.keys.invalidate(tenant);
    Ok(())
}

/// Rotates now if the next key has been published long enough. Returns whether this call rotated
/// (false: another instance did it first).
pub async fn rotate(core: &Core, tenant: TenantId, cause: RotationCause) -> Result<bool, KeyError> {
    let now = core.clock.now_ms();
    let stored = core.store.signing_keys(tenant).await?;
    let active = stored.iter().find(|k| k.state == KeyState::Active);
    let next = stored.iter().find(|k| k.state == KeyState::Next);
    let (Some(active), Some(next)) = (active, next) else {
        return Err(KeyError::Refused(
            "This tenant has no active and next key pair to rotate.".into(),
        ));
    };
    if next.usable_from > now {
        return Err(KeyError::Refused(format!(
            "The next key was published recently; gateways may not have fetched it yet. It can take over from {}.",
            format_utc(next.usable_from)
        )));
    }
    let fresh = Fresh::new(core, tenant)?;
    let usable_from = next_usable_from(core, now);
    let retire_after = core.keys.policy.retire_after(now);
    let (actor, context, why) = match &cause {
        RotationCause::Scheduled => (Actor::System, RequestContext::default(), "scheduled"),
        RotationCause::Manual(user, context) => (Actor::User(*user), context.clone(), "manual"),
    };
    let events = [
        key_event(
            now,
            tenant,
            EventType::KeyRetiring,
            actor.clone(),
            &active.kid,
        )
        .context(&context)
        .detail("cause", why)
        .detail("retire_after", retire_after),
        key_event(
            now,
            tenant,
            EventType::KeyActivated,
            actor.clone(),
            &next.kid,
        )
        .context(&context)
        .detail("cause", why),
        key_event(
            now,
            tenant,
            EventType::KeyPublished,
            actor,
            &fresh.generated.kid,
        )
        .context(&context)
        .detail("usable_from", usable_from),
    ];
    let mails = notices(
        core,
        tenant,
        "signing key rotated",
        vec![
            format!(
                "Key {} now signs tokens ({why} rotation). Key {} stopped signing and keeps verifying until {}, when every token it signed has expired.",
                next.kid,
                active.kid,
                format_utc(retire_after)
            ),
            format!(
                "Key {} is published as the next key and can take over from {}.",
                fresh.generated.kid,
                format_utc(usable_from)
            ),
        ],
        now,
    )
    .await?;
    let rotation = Rotation {
        retiring: &active.kid,
        retire_after,
        activating: &next.kid,
        new_next: fresh.row(KeyState::Next, usable_from),
    };
    let rotated = core
        .store
        .rotate_keys(tenant, &rotation, now, &events, &mails)
        .await?;
    core.keys.invalidate(tenant);
    Ok(rotated)
}

/// The background pass, safe on every instance at once: retires keys whose tokens have all expired,
/// rotates keys older than the rotation period, and publishes a next key where one is missing.
pub async fn run_schedule(core: &Core) -> Result<(), KeyError> {
    for tenant in core.store.tenants_with_keys().await? {
        let Some(tenant) = TenantId::parse(&tenant) else {
            continue;
        };
        if let Err(e) = schedule_tenant(core, tenant).await {
            tracing::warn!(tenant = %tenant, error = %e, "key schedule failed for a tenant; will retry");
        }
    }
    Ok(())
}

async fn schedule_tenant(core: &Core, tenant: TenantId) -> Result<(), KeyError> {
    let now = core.clock.now_ms();
    let stored = core.store.signing_keys(tenant).await?;
    for key in stored.iter().filter(|k| k.state == KeyState::Retiring) {
        retire_if_done(core, tenant, key, now).await?;
    }
    let active = stored.iter().find(|k| k.state == KeyState::Active);
    let next = stored.iter().find(|k| k.state == KeyState::Next);
    match (active, next) {
        (Some(active), Some(next)) => {
            let signed_since = active.activated_at.unwrap_or(active.created_at);
            let due = signed_since + duration_ms(core.keys.policy.rotation_period) <= now;
            if due && next.usable_from <= now {
                rotate(core, tenant, RotationCause::Scheduled).await?;
            }
        }
        (Some(_), None) => publish_next(core, tenant, now).await?,
        _ => {}
    }
    Ok(())
}

async fn retire_if_done(
    core: &Core,
    tenant: TenantId,
    key: &StoredKey,
    now: Millis,
) -> Result<(), KeyError> {
    let Some(planned) = key.retire_after else {
        return Ok(());
    };
    if planned > now {
        return Ok(());
    }
    // An instance that had not yet heard of the rotation may have signed a little longer.
    if let Some(last) = core.store.last_token_expiry(tenant, &key.kid).await? {
        let needed = last + duration_ms(core.keys.policy.clock_skew);
        if needed > now {
            core.store
                .extend_retirement(tenant, &key.kid, needed, now)
                .await?;
            core.keys.invalidate(tenant);
            return Ok(());
        }
    }
    let event = key_event(now, tenant, EventType::KeyRetired, Actor::System, &key.kid);
    let mails = notices(
        core,
        tenant,
        "signing key retired",
        vec![format!(
            "Key {} was removed from the published key set: every token it signed has expired.",
            key.kid
        )],
        now,
    )
    .await?;
    core.store
        .retire_key(tenant, &key.kid, now, &event, &mails)
        .await?;
    core.keys.invalidate(tenant);
    Ok(())
}

async fn publish_next(core: &Core, tenant: TenantId, now: Millis) -> Result<(), KeyError> {
    let fresh = Fresh::new(core, tenant)?;
    let usable_from = next_usable_from(core, now);
    let event = key_event(
        now,
        tenant,
        EventType::KeyPublished,
        Actor::System,
        &fresh.generated.kid,
    )
    .detail("usable_from", usable_from);
    let mails = notices(
        core,
        tenant,
        "next signing key published",
        vec![format!(
            "Key {} is published as the next key and can take over from {}.",
            fresh.generated.kid,
            format_utc(usable_from)
        )],
        now,
    )
    .await?;
    core.store
        .insert_keys(
            tenant,
            &[fresh.row(KeyState::Next, usable_from)],
            now,
            std::slice::from_ref(&event),
            &mails,
        )
        .await?;
    core.keys.invalidate(tenant);
    Ok(())
}

/// What dropping a compromised key will change, prepared before the approval claims its request
/// (a fresh key is generated here, outside the transaction).
pub struct EmergencyDrop {
    tenant: TenantId,
    kid: String,
    dropped_state: KeyState,
    promote: Option<String>,
    fresh: Option<(Fresh, KeyState, Millis)>,
    pub events: Vec<Event>,
    pub mails: Vec<OutgoingMail>,
}

impl EmergencyDrop {
    pub fn effect(&self) -> KeyDrop<'_> {
        KeyDrop {
            tenant: self.tenant,
            kid: &self.kid,
            dropped_state: self.dropped_state,
            promote: self.promote.as_deref(),
            new_next: self
                .fresh
                .as_ref()
                .map(|(fresh, state, usable_from)| fresh.row(*state, *usable_from)),
        }
    }
}

/// The key a tenant may drop: one that still verifies.
pub async fn droppable(core: &Core, tenant: TenantId, kid: &str) -> Result<bool, KeyError> {
    Ok(core
        .store
        .signing_keys(tenant)
        .await?
        .iter()
        .any(|k| k.kid == kid && k.state != KeyState::Retired))
}

/// Plans dropping `kid` at once: if it was signing, the next key takes over (or a fresh one, when
/// there is none); either way a fresh next key is published.
pub async fn plan_emergency_drop(
    core: &Core,
    tenant: TenantId,
    kid: &str,
    actor: Actor,
    context: &RequestContext,
) -> Result<EmergencyDrop, KeyError> {
    let now = core.clock.now_ms();
    let stored = core.store.signing_keys(tenant).await?;
    let dropped = stored
        .iter()
        .find(|k| k.kid == kid && k.state != KeyState::Retired)
        .ok_or(KeyError::NotFound)?;
    let next = stored.iter().find(|k| k.state == KeyState::Next);
    let was_active = dropped.state == KeyState::Active;
    let promote = if was_active {
        next.map(|k| k.kid.clone())
    } else {
        None
    };
    let needs_next = was_active || dropped.state == KeyState::Next || next.is_none();
    let fresh = if needs_next {
        let state_and_start = if was_active && promote.is_none() {
            (KeyState::Active, now)
        } else {
            (KeyState::Next, next_usable_from(core, now))
        };
        Some((
            Fresh::new(core, tenant)?,
            state_and_start.0,
            state_and_start.1,
        ))
    } else {
        None
    };
    let mut events = vec![
        key_event(now, tenant, EventType::KeyRetired, actor.clone(), kid)
            .context(context)
            .detail("cause", "emergency"),
    ];
    if let Some(promoted) = &promote {
        events.push(
            key_event(now, tenant, EventType::KeyActivated, actor, promoted)
                .context(context)
                .detail("cause", "emergency"),
        );
    }
    let mails = notices(
        core,
        tenant,
        "signing key dropped in an emergency",
        vec![format!(
            "Key {kid} was removed from the published key set at once; every token it signed no longer verifies. Clients must request new tokens."
        )],
        now,
    )
    .await?;
    Ok(EmergencyDrop {
        tenant,
        kid: kid.to_owned(),
        dropped_state: dropped.state,
        promote,
        fresh,
        events,
        mails,
    })
}
