//! Credentials under a grant: minting, extra client secrets, one-time retrieval, verification,
//! revocation (one, a grant, a partner) and the expiry sweep.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::policies::ClientPolicy;
use super::*;
use crate::clock::duration_ms;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::networks::Networks;
use crate::domain::secrets::{self, SecretDigest};
use crate::domain::tenants::Tenant;
use crate::domain::tokens::{self, SecretKind};
use crate::domain::{Core, oauth};
use crate::mail::{self};
use crate::store::StoreError;
use crate::store::partners::policies::PolicyValues;
use crate::store::partners::{GrantSelection, NewCredential, NewSecret, SecretRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    ApiToken,
    Client,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiToken => "api_token",
            Self::Client => "client",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "api_token" => Some(Self::ApiToken),
            "client" => Some(Self::Client),
            _ => None,
        }
    }
}

/// Where a credential is in its life. Only an active one authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialStatus {
    Active,
    Expired,
    Revoked,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Active, Self::Expired, Self::Revoked]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// How the partner gets the one-time retrieval link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// By e-mail to the grant's contact (the console's way).
    Email,
    /// Handed to the caller (an automation key) to deliver through its own channel; the event says
    /// so, and which key received it.
    Link,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Link => "link",
        }
    }
}

/// What staff asked to mint.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub kind: CredentialKind,
    /// A client for a gateway: it may introspect tokens and read the revocation feed.
    pub resource_server: bool,
    pub lifetime_days: i64,
    pub delivery: Delivery,
    /// What a client may do once authenticated (API tokens keep the default).
    pub policy: ClientPolicy,
}

/// A minted credential; the retrieval link only when it was asked for (`Delivery::Link`).
pub struct Minted {
    pub id: String,
    pub retrieval_link: Option<SecretString>,
}

impl MintRequest {
    /// The mint form: `kind` is `api_token`, `client`, or `resource_server` (a client for a
    /// gateway); a blank lifetime is the default, capped by the grant's maximum.
    pub fn parse(kind: &str, lifetime_days: &str, grant: &Grant) -> Result<Self, PartnerError> {
        let (kind, resource_server) = match kind {
            "resource_server" => (CredentialKind::Client, true),
            other => (
                CredentialKind::parse(other).ok_or(PartnerError::Invalid(
                    "Choose an API token or a client credential.",
                ))?,
                false,
            ),
        };
        let lifetime_days = match lifetime_days.trim() {
            "" => DEFAULT_CREDENTIAL_DAYS.min(grant.max_lifetime_days),
            raw => parse_days(raw)?,
        };
        Ok(Self {
            kind,
            resource_server,
            lifetime_days,
            delivery: Delivery::Email,
            policy: ClientPolicy::default(),
        })
    }
}

/// Mints a credential under a grant; the partner gets a one-time retrieval link (by e-mail, or
/// through the caller when it asked for the link). The secret itself does not exist yet: it is
/// generated when the link is opened.
pub async fn mint(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    grant: &Grant,
    request: MintRequest,
    context: &RequestContext,
) -> Result<Minted, PartnerError> {
    let MintRequest {
        kind,
        resource_server,
        lifetime_days,
        delivery,
        policy,
    } = request;
    if kind != CredentialKind::Client && policy != ClientPolicy::default() {
        return Err(PartnerError::Invalid(
            "Only client credentials have networks, limits and DPoP settings.",
        ));
    }
    if resource_server && kind != CredentialKind::Client {
        return Err(PartnerError::Invalid(
            "Only a client credential can belong to a resource server.",
        ));
    }
    if grant.revoked_at.is_some() {
        return Err(PartnerError::Invalid(
            "This grant was revoked; nothing can be minted under it.",
        ));
    }
    if lifetime_days < 1 || lifetime_days > grant.max_lifetime_days {
        return Err(PartnerError::Invalid(
            "The lifetime must be at least a day and within the grant's maximum.",
        ));
    }
    let now = core.clock.now_ms();
    let id = time_ordered_id();
    let client_id = (kind == CredentialKind::Client).then(|| tokens::client_id(ENVIRONMENT));
    let retrieval = secrets::generate();
    let retrieval_link = link(&core.public_url, "/retrieve", &retrieval)?;
    let what = match (kind, resource_server) {
        (CredentialKind::Client, true) => "gateway credential",
        (CredentialKind::Client, false) => "client credential",
        (CredentialKind::ApiToken, _) => "API token",
    };
    // Partners often hold several credentials: each mail says which one it is.
    let rendered = render(
        &format!("Your {} {what} is ready", tenant.name),
        &grant.organisation,
        vec![
            format!(
                "A new {what} was created for your access to {} (scopes: {}), valid for {lifetime_days} days.",
                tenant.name,
                grant.scopes.join(", ")
            ),
            "Retrieve it once, within 24 hours; the link then stops working.".into(),
        ],
        Some(("Retrieve the credential", &retrieval_link)),
    )?;
    let event = Event::new(
        now,
        EventType::CredentialMinted,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("credential", id.clone())
    .detail("grant", grant.id.as_str())
    .detail("kind", kind.as_str())
    .detail("resource_server", resource_server)
    .detail("partner", grant.contact_email.as_str())
    .detail("delivery", delivery.as_str());
    let event = match kind {
        CredentialKind::Client => event.detail("policy", super::policies::describe(&policy)),
        CredentialKind::ApiToken => event,
    };
    let networks = policy.networks.as_ref().map(Networks::to_stored);
    let credential = NewCredential {
        id: &id,
        grant_id: &grant.id,
        kind: kind.as_str(),
        client_id: client_id.as_deref(),
        may_introspect: resource_server,
        created_by: actor,
        expires_at: now + lifetime_days * 86_400_000,
        retrieval_token: &SecretDigest::of(retrieval.expose_secret()),
        retrieval_expires_at: now + duration_ms(RETRIEVAL_WINDOW),
        now,
        policy: PolicyValues {
            allowed_networks: networks.as_deref(),
            tokens_per_minute: i64::from(policy.tokens_per_minute),
            require_dpop: policy.require_dpop,
        },
    };
    let mail = (delivery == Delivery::Email).then(|| queue(&grant.contact_email, rendered, now));
    core.store
        .insert_credential(tenant.id, credential, mail.as_ref(), &event)
        .await?;
    Ok(Minted {
        id,
        retrieval_link: (delivery == Delivery::Link).then_some(retrieval_link),
    })
}

/// A client may hold this many live secrets, so partners rotate without downtime.
pub const MAX_CLIENT_SECRETS: i64 = 2;

/// Adds a second secret to a client credential (rotation); the partner retrieves it like the first.
/// It expires with the credential at the latest.
pub async fn add_client_secret(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    credential: &str,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    let now = core.clock.now_ms();
    let state = core
        .store
        .credential_secrets_state(tenant.id, credential, now)
        .await?
        .ok_or(PartnerError::NotFound)?;
    if state.kind != CredentialKind::Client || state.status != CredentialStatus::Active {
        return Err(PartnerError::Invalid(
            "Only an active client credential can get another secret.",
        ));
    }
    if state.live >= MAX_CLIENT_SECRETS {
        return Err(PartnerError::Invalid(
            "This client already has two live secrets. Revoke the old one first.",
        ));
    }
    let retrieval = secrets::generate();
    let retrieval_link = link(&core.public_url, "/retrieve", &retrieval)?;
    let rendered = render(
        &format!("A new {} client secret is ready", tenant.name),
        "",
        vec!["A second secret was created for your client, so you can switch over without downtime. Retrieve it once, within 24 hours.".into()],
        Some(("Retrieve the secret", &retrieval_link)),
    )?;
    let event = Event::new(
        now,
        EventType::CredentialMinted,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("credential", credential)
    .detail("secret", "additional");
    let secret = NewSecret {
        credential,
        retrieval: &SecretDigest::of(retrieval.expose_secret()),
        expires_at: state.expires_at,
        retrieval_expires_at: now + duration_ms(RETRIEVAL_WINDOW),
        now,
    };
    core.store
        .insert_secret(
            tenant.id,
            secret,
            &queue(&state.contact_email, rendered, now),
            &event,
        )
        .await?;
    Ok(())
}

/// Retires one secret of a client credential (the end of a rotation): it stops working at once, on
/// every instance. The last live secret cannot be retired: revoke the credential instead.
pub async fn retire_client_secret(
    core: &Core,
    actor: UserId,
    tenant: TenantId,
    credential: &str,
    secret: &str,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    let now = core.clock.now_ms();
    let secrets = core.store.secrets_of(tenant, credential).await?;
    let Some(target) = secrets.iter().find(|s| s.id == secret) else {
        return Err(PartnerError::NotFound);
    };
    let live = |s: &&SecretRow| s.revoked_at.is_none() && s.expires_at > now;
    if !live(&target) {
        return Err(PartnerError::Invalid(
            "This secret is already revoked or expired.",
        ));
    }
    let event = Event::new(
        now,
        EventType::CredentialSecretRetired,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant)
    .context(context)
    .detail("credential", credential)
    .detail("secret", secret);
    if !core
        .store
        .retire_secret(tenant, credential, secret, now, &event)
        .await?
    {
        return Err(PartnerError::Invalid(
            "This is the client's only live secret and it has no public key: revoke the credential instead.",
        ));
    }
    core.revocations.catch_up(&core.store).await?;
    Ok(())
}

/// What a partner sees once, at retrieval.
pub struct Retrieved {
    pub secret: SecretString,
    pub client_id: Option<String>,
}

/// Opens a retrieval link: generates the secret, keeps its hash, and returns it — once.
pub async fn retrieve(
    core: &Core,
    token: &str,
    context: &RequestContext,
) -> Result<Retrieved, PartnerError> {
    let link = SecretDigest::of(token);
    let now = core.clock.now_ms();
    match core.store.retrieval_link_state(&link, now).await? {
        None => return Err(PartnerError::LinkUnknown),
        Some((true, _)) => return Err(PartnerError::LinkUsed),
        Some((false, true)) => return Err(PartnerError::LinkExpired),
        Some((false, false)) => {}
    }
    let kind = core
        .store
        .retrieval_kind(&link)
        .await?
        .ok_or(PartnerError::LinkUnknown)?;
    let secret_kind = if kind == CredentialKind::Client {
        SecretKind::ClientSecret
    } else {
        SecretKind::ApiToken
    };
    let issued = tokens::issue(secret_kind, ENVIRONMENT);
    let digest = SecretDigest::of(issued.secret.expose_secret());
    let event = Event::new(
        now,
        EventType::CredentialRetrieved,
        Outcome::Success,
        Actor::Anonymous,
    )
    .context(context);
    let Some(retrieved) = core
        .store
        .retrieve_secret(&link, &digest, &issued.display_prefix, now, &event)
        .await?
    else {
        // Another request retrieved it in between.
        return Err(PartnerError::LinkUsed);
    };
    let client_id = retrieved.client_id;
    Ok(Retrieved {
        secret: issued.secret,
        client_id,
    })
}

/// A credential that verified, with what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub tenant_id: String,
    pub credential_id: String,
    pub scopes: Vec<String>,
}

/// Verifies an opaque secret (see [`crate::domain::oauth::check_secret`]): anything but an active
/// credential is simply `None`. `from_ip` is recorded (at most once a minute) as the last use.
pub async fn verify(
    core: &Core,
    presented: &str,
    from_ip: Option<&str>,
) -> Result<Option<Verified>, StoreError> {
    Ok(
        match oauth::check_secret(core, &oauth::Presented::new(presented), from_ip).await? {
            oauth::SecretCheck::Active(known) => Some(Verified {
                tenant_id: known.tenant_id.to_string(),
                credential_id: known.credential_id.clone(),
                scopes: known.scopes.clone(),
            }),
            oauth::SecretCheck::Inactive { .. } => None,
        },
    )
}

/// Revokes a credential with a reason; revoking twice (or an expired one) is fine and changes
/// nothing (false). A credential this tenant does not have is `NotFound`.
pub async fn revoke(
    core: &Core,
    actor: UserId,
    tenant: TenantId,
    credential: &str,
    reason: &str,
    context: &RequestContext,
) -> Result<bool, PartnerError> {
    let reason = clean_text(reason, 500, "Give a reason for the revocation.")?;
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::CredentialRevoked,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant)
    .context(context)
    .detail("credential", credential)
    .detail("reason", reason.as_str());
    let revoked = core
        .store
        .revoke_credential(tenant, credential, actor, &reason, now, &event)
        .await?;
    core.revocations.catch_up(&core.store).await?;
    if !revoked
        && core
            .store
            .credential_secrets_state(tenant, credential, now)
            .await?
            .is_none()
    {
        return Err(PartnerError::NotFound);
    }
    Ok(revoked)
}

/// Which grants a bulk revocation covers.
pub enum BulkRevocation<'a> {
    Grant(&'a Grant),
    /// Every grant of the partner with this contact address.
    Partner(&'a str),
}

/// Revokes a grant, or everything of a partner, with all credentials under it. The slug must be
/// typed to confirm. Returns how many credentials were still active.
pub async fn revoke_in_bulk(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    target: BulkRevocation<'_>,
    reason: &str,
    confirmation: &str,
    context: &RequestContext,
) -> Result<u64, PartnerError> {
    if confirmation.trim() != tenant.slug.as_str() {
        return Err(PartnerError::Invalid(
            "Type the tenant's slug exactly to confirm.",
        ));
    }
    let reason = clean_text(reason, 500, "Give a reason for the revocation.")?;
    let now = core.clock.now_ms();
    let (selection, scope, target_id) = match target {
        BulkRevocation::Grant(grant) => (GrantSelection::One(&grant.id), "grant", grant.id.clone()),
        BulkRevocation::Partner(email) => (
            GrantSelection::OfPartner(email),
            "partner",
            email.to_owned(),
        ),
    };
    let event = Event::new(
        now,
        EventType::CredentialRevoked,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("scope", scope)
    .detail(scope, target_id)
    .detail("reason", reason.as_str());
    let revoked = core
        .store
        .revoke_grants(tenant.id, selection, actor, &reason, now, &event)
        .await?;
    core.revocations.catch_up(&core.store).await?;
    Ok(revoked)
}

/// Tenant admins hear this long before a credential expires.
pub const EXPIRY_NOTICE_AHEAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// Expired credentials become "expired" (with an event each); tenant admins get a notice a week
/// before a credential expires; unconfirmed requests lapse.
pub async fn sweep(core: &Core) -> Result<(), StoreError> {
    let now = core.clock.now_ms();
    for notice in core
        .store
        .claim_expiry_notices(now + duration_ms(EXPIRY_NOTICE_AHEAD), now)
        .await?
    {
        let Some(tenant) = TenantId::parse(&notice.tenant_id) else {
            continue;
        };
        let kind = if notice.kind == CredentialKind::Client {
            "a client credential"
        } else {
            "an API token"
        };
        let paragraphs = vec![format!(
            "{kind} of {} expires on {}. Mint a replacement under the same grant before then if the partner still needs access.",
            notice.organisation,
            crate::clock::format_utc(notice.expires_at)
        )];
        let mut mails = Vec::new();
        for admin in core.store.tenant_admins(tenant).await? {
            let rendered = mail::notice(
                "A partner credential expires in a week",
                &admin.name,
                &paragraphs,
                None,
            )
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
            mails.push(queue(&admin.email, rendered, now));
        }
        core.store.queue_mail(&mails).await?;
    }
    for (tenant, credential) in core.store.expire_credentials(now).await? {
        let mut event = Event::new(
            now,
            EventType::CredentialExpired,
            Outcome::Success,
            Actor::System,
        )
        .detail("credential", credential);
        if let Some(tenant) = TenantId::parse(&tenant) {
            event = event.tenant(tenant);
        }
        core.store.append_event(&event).await?;
    }
    core.store
        .expire_unconfirmed_requests(now - duration_ms(CONFIRMATION_WINDOW))
        .await?;
    Ok(())
}
