//! Partner access: the scope catalogue, access requests (submitted on a public page, confirmed by
//! e-mail, decided by a tenant admin), grants, and the credentials minted under them — with one-time
//! retrieval, verification, revocation and expiry.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::email::Email;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::secrets::{self, SecretDigest, constant_time_eq};
use crate::domain::tenants::{Tenant, TenantStatus};
use crate::domain::tokens::{self, SecretKind};
use crate::mail::{self, Rendered};
use crate::store::StoreError;
use crate::store::partners::{
    Approval, Decided, Denial, GrantSelection, NewCredential, NewRequest, NewSecret,
};
use crate::store::staff::OutgoingMail;

/// Unconfirmed requests lapse after this.
pub const CONFIRMATION_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Retrieval links work once, within this.
pub const RETRIEVAL_WINDOW: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_CREDENTIAL_DAYS: i64 = 30;
/// Requests per hour from one IP, and for one e-mail address, on the public form.
const REQUESTS_PER_HOUR: i64 = 5;
/// Until environments are configurable, every secret says it is for the live service.
pub const ENVIRONMENT: &str = "live";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub id: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Unconfirmed,
    Pending,
    Approved,
    Denied,
    Withdrawn,
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unconfirmed => "unconfirmed",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Unconfirmed,
            Self::Pending,
            Self::Approved,
            Self::Denied,
            Self::Withdrawn,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub id: String,
    pub organisation: String,
    pub contact_name: String,
    pub email: String,
    pub scopes: Vec<String>,
    pub justification: String,
    pub status: RequestStatus,
    pub created_at: Millis,
    pub confirmed_at: Option<Millis>,
    pub decided_at: Option<Millis>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub grant_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub organisation: String,
    pub contact_email: String,
    pub scopes: Vec<String>,
    pub max_lifetime_days: i64,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct CredentialView {
    pub id: String,
    pub kind: String,
    pub client_id: Option<String>,
    pub status: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoke_reason: Option<String>,
    pub organisation: String,
    pub grant_id: String,
    pub created_by: String,
    pub last_used_at: Option<Millis>,
    pub last_used_ip: Option<String>,
    pub display_prefix: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("Too many requests from here. Try again in an hour.")]
    RateLimited,
    #[error("This link is not valid.")]
    LinkUnknown,
    #[error("This link has already been used.")]
    LinkUsed,
    #[error("This link has expired.")]
    LinkExpired,
    #[error("Someone else decided this request first.")]
    AlreadyDecided,
    #[error("That does not exist.")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn queue(recipient: &str, rendered: Rendered, now: Millis) -> OutgoingMail {
    OutgoingMail {
        id: time_ordered_id(),
        recipient: recipient.to_owned(),
        subject: rendered.subject,
        body_text: rendered.text,
        body_html: rendered.html,
        created_at: now,
    }
}

fn render(
    subject: &str,
    name: &str,
    paragraphs: Vec<String>,
    link: Option<(&str, &SecretString)>,
) -> Result<Rendered, PartnerError> {
    mail::notice(subject, name, &paragraphs, link)
        .map_err(|e| StoreError::Unexpected(e.to_string()).into())
}

fn link(base: &Url, path: &str, token: &SecretString) -> Result<SecretString, PartnerError> {
    let mut url = base
        .join(path)
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("token", token.expose_secret());
    Ok(SecretString::from(url.to_string()))
}

/// `[a-z][a-z0-9:._-]{1,63}`, like `payments:read`.
pub fn parse_scope_name(raw: &str) -> Result<String, PartnerError> {
    let name = raw.trim();
    let valid = (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":._-".contains(c));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(PartnerError::Invalid(
            "A scope name is 2–64 characters: lower-case letters, digits and : . _ -, starting with a letter.",
        ))
    }
}

/// Text a partner typed: trimmed, control characters removed, bounded.
pub fn clean_text(raw: &str, max_chars: usize, what: &'static str) -> Result<String, PartnerError> {
    let text: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    if text.is_empty() {
        return Err(PartnerError::Invalid(what));
    }
    Ok(text.chars().take(max_chars).collect())
}

pub struct RequestForm {
    pub organisation: String,
    pub contact_name: String,
    pub email: Email,
    pub scopes: Vec<String>,
    pub justification: String,
}

/// A partner asks for access. Nothing reaches the tenant until the e-mail address is confirmed.
pub async fn submit_request(
    core: &Core,
    tenant: &Tenant,
    form: RequestForm,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    if tenant.status != TenantStatus::Active {
        return Err(PartnerError::Invalid(
            "This tenant is not accepting requests right now.",
        ));
    }
    let offered = core.store.scopes_of(tenant.id).await?;
    if form.scopes.is_empty() {
        return Err(PartnerError::Invalid("Choose at least one scope."));
    }
    if !form
        .scopes
        .iter()
        .all(|wanted| offered.iter().any(|s| &s.name == wanted))
    {
        return Err(PartnerError::Invalid("Choose scopes from the list."));
    }
    let now = core.clock.now_ms();
    let window_start = now - 3_600_000;
    let ip_key = format!("request:ip:{}", context.ip.as_deref().unwrap_or("unknown"));
    let email_key = format!("request:email:{}", form.email.normalized());
    let by_ip = core.store.count_failure(&ip_key, now, window_start).await?;
    let by_email = core
        .store
        .count_failure(&email_key, now, window_start)
        .await?;
    if by_ip > REQUESTS_PER_HOUR || by_email > REQUESTS_PER_HOUR {
        return Err(PartnerError::RateLimited);
    }

    let token = secrets::generate();
    let confirm = link(
        &core.public_url,
        &format!("/t/{}/request-access/confirm", tenant.slug),
        &token,
    )?;
    let id = time_ordered_id();
    let rendered = render(
        &format!("Confirm your access request to {}", tenant.name),
        &form.contact_name,
        vec![
            format!(
                "You asked for access to {}'s APIs for {}.",
                tenant.name, form.organisation
            ),
            "Confirm your e-mail address within 7 days so the request reaches them:".into(),
        ],
        Some(("Confirm my request", &confirm)),
    )?;
    let event = Event::new(
        now,
        EventType::RequestSubmitted,
        Outcome::Success,
        Actor::Anonymous,
    )
    .tenant(tenant.id)
    .context(context)
    .detail("request", id.clone())
    .detail("organisation", form.organisation.as_str())
    .detail("partner", form.email.as_str());
    let request = NewRequest {
        id: &id,
        organisation: &form.organisation,
        contact_name: &form.contact_name,
        email: form.email.as_str(),
        email_normalized: form.email.normalized(),
        scopes: &form.scopes,
        justification: &form.justification,
        confirm_token: &SecretDigest::of(token.expose_secret()),
        ip: context.ip.as_deref(),
        now,
    };
    core.store
        .insert_request(
            tenant.id,
            request,
            &queue(form.email.as_str(), rendered, now),
            &event,
        )
        .await?;
    Ok(())
}

/// The partner confirms their address; the tenant's admins are told.
pub async fn confirm_request(
    core: &Core,
    tenant: &Tenant,
    token: &str,
    context: &RequestContext,
) -> Result<AccessRequest, PartnerError> {
    let now = core.clock.now_ms();
    let queue_link = SecretString::from(
        core.public_url
            .join(&format!("/t/{}/requests", tenant.slug))
            .map_err(|e| StoreError::Unexpected(e.to_string()))?
            .to_string(),
    );
    let mut mails = Vec::new();
    for admin in core.store.tenant_admin_emails(tenant.id).await? {
        let rendered = render(
            &format!("New access request for {}", tenant.name),
            "",
            vec!["A partner's access request is waiting for a decision.".into()],
            Some(("Open the request queue", &queue_link)),
        )?;
        mails.push(queue(&admin, rendered, now));
    }
    let event = Event::new(
        now,
        EventType::RequestConfirmed,
        Outcome::Success,
        Actor::Anonymous,
    )
    .tenant(tenant.id)
    .context(context);
    let valid_since = now - duration_ms(CONFIRMATION_WINDOW);
    core.store
        .confirm_request(
            tenant.id,
            &SecretDigest::of(token),
            valid_since,
            now,
            &mails,
            &event,
        )
        .await?
        .ok_or(PartnerError::LinkUnknown)
}

/// The partner withdraws their request with the link from their confirmation e-mail.
pub async fn withdraw(
    core: &Core,
    tenant: &Tenant,
    token: &str,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::RequestWithdrawn,
        Outcome::Success,
        Actor::Anonymous,
    )
    .tenant(tenant.id)
    .context(context);
    if core
        .store
        .withdraw_request(tenant.id, &SecretDigest::of(token), now, &event)
        .await?
    {
        Ok(())
    } else {
        Err(PartnerError::LinkUnknown)
    }
}

/// Approves, optionally narrowing scopes and capping the credential lifetime. Exactly one of two
/// simultaneous deciders wins.
pub async fn approve(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    request: &AccessRequest,
    scopes: Vec<String>,
    max_lifetime_days: i64,
    context: &RequestContext,
) -> Result<String, PartnerError> {
    if scopes.is_empty() || !scopes.iter().all(|s| request.scopes.contains(s)) {
        return Err(PartnerError::Invalid(
            "Approve some of the scopes the partner asked for, and only those.",
        ));
    }
    if !(1..=365).contains(&max_lifetime_days) {
        return Err(PartnerError::Invalid(
            "The maximum credential lifetime is 1 to 365 days.",
        ));
    }
    let now = core.clock.now_ms();
    let rendered = render(
        &format!("Your access request to {} was approved", tenant.name),
        &request.contact_name,
        vec![
            format!(
                "Your request for {} was approved with: {}.",
                request.organisation,
                scopes.join(", ")
            ),
            "You will receive a separate message with a one-time link to retrieve each credential."
                .into(),
        ],
        None,
    )?;
    let grant_id = time_ordered_id();
    let approved = Event::new(
        now,
        EventType::RequestApproved,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("request", request.id.as_str())
    .detail("grant", grant_id.as_str())
    .detail("partner", request.email.as_str());
    let created = Event::new(
        now,
        EventType::GrantCreated,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("grant", grant_id.as_str())
    .detail("partner", request.email.as_str())
    .detail("scopes", scopes.clone())
    .detail("max_lifetime_days", max_lifetime_days);
    let approval = Approval {
        request_id: &request.id,
        grant_id: &grant_id,
        decided_by: actor,
        scopes: &scopes,
        max_lifetime_days,
        now,
    };
    match core
        .store
        .approve_request(
            tenant.id,
            approval,
            &queue(&request.email, rendered, now),
            &[approved, created],
        )
        .await?
    {
        Decided::Yes(Some(grant)) => Ok(grant),
        Decided::Yes(None) | Decided::AlreadyDecided => Err(PartnerError::AlreadyDecided),
    }
}

pub async fn deny(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    request: &AccessRequest,
    reason: &str,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    let reason = clean_text(reason, 500, "Give the partner a reason.")?;
    let now = core.clock.now_ms();
    let rendered = render(
        &format!("Your access request to {} was declined", tenant.name),
        &request.contact_name,
        vec![format!(
            "Your request for {} was declined: {reason}",
            request.organisation
        )],
        None,
    )?;
    let event = Event::new(
        now,
        EventType::RequestDenied,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("request", request.id.as_str())
    .detail("partner", request.email.as_str());
    let denial = Denial {
        request_id: &request.id,
        decided_by: actor,
        reason: &reason,
        now,
    };
    match core
        .store
        .deny_request(
            tenant.id,
            denial,
            &queue(&request.email, rendered, now),
            &event,
        )
        .await?
    {
        Decided::Yes(_) => Ok(()),
        Decided::AlreadyDecided => Err(PartnerError::AlreadyDecided),
    }
}

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

/// Mints a credential under a grant; the partner gets a one-time retrieval link by e-mail. The
/// secret itself does not exist yet: it is generated when the link is opened.
pub async fn mint(
    core: &Core,
    actor: UserId,
    tenant: &Tenant,
    grant: &Grant,
    kind: CredentialKind,
    lifetime_days: i64,
    context: &RequestContext,
) -> Result<String, PartnerError> {
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
    let rendered = render(
        &format!("Your {} credential is ready", tenant.name),
        &grant.organisation,
        vec![
            "A credential was created for your integration. Retrieve it once, within 24 hours; the link then stops working.".into(),
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
    .detail("partner", grant.contact_email.as_str());
    let credential = NewCredential {
        id: &id,
        grant_id: &grant.id,
        kind: kind.as_str(),
        client_id: client_id.as_deref(),
        created_by: actor,
        expires_at: now + lifetime_days * 86_400_000,
        retrieval_token: &SecretDigest::of(retrieval.expose_secret()),
        retrieval_expires_at: now + duration_ms(RETRIEVAL_WINDOW),
        now,
    };
    core.store
        .insert_credential(
            tenant.id,
            credential,
            &queue(&grant.contact_email, rendered, now),
            &event,
        )
        .await?;
    Ok(id)
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
    if state.kind != CredentialKind::Client.as_str() || state.status != "active" {
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
    let secret_kind = if kind == CredentialKind::Client.as_str() {
        SecretKind::ClientSecret
    } else {
        SecretKind::ApiToken
    };
    let issued = tokens::issue(secret_kind, ENVIRONMENT);
    let digest = SecretDigest::of(issued.secret.expose_secret());
    let Some((credential, tenant, _, client_id)) = core
        .store
        .retrieve_secret(&link, &digest, &issued.display_prefix, now)
        .await?
    else {
        // Another request retrieved it in between.
        return Err(PartnerError::LinkUsed);
    };
    let mut event = Event::new(
        now,
        EventType::CredentialRetrieved,
        Outcome::Success,
        Actor::Anonymous,
    )
    .context(context)
    .detail("credential", credential);
    if let Some(tenant) = TenantId::parse(&tenant) {
        event = event.tenant(tenant);
    }
    core.store.append_event(&event).await?;
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

/// Verifies an opaque secret: format and checksum → SHA-256 → one indexed lookup → constant-time
/// comparison → credential active and unexpired, secret not revoked, grant not revoked, tenant
/// active. Anything else is simply "inactive", telling the caller nothing more.
/// `from_ip` is the caller's address, recorded (at most once a minute) as the credential's last use.
pub async fn verify(
    core: &Core,
    presented: &str,
    from_ip: Option<&str>,
) -> Result<Option<Verified>, StoreError> {
    if !tokens::is_well_formed(presented, SecretKind::ApiToken)
        && !tokens::is_well_formed(presented, SecretKind::ClientSecret)
    {
        return Ok(None);
    }
    let digest = SecretDigest::of(presented);
    let Some(found) = core.store.lookup_secret(&digest).await? else {
        return Ok(None);
    };
    let now = core.clock.now_ms();
    let active = constant_time_eq(&found.secret_hash, digest.as_hex())
        && found.credential_status == "active"
        && found.credential_expires_at > now
        && found.secret_expires_at > now
        && found.secret_revoked_at.is_none()
        && found.grant_revoked_at.is_none()
        && found.tenant_status == TenantStatus::Active.as_str();
    if !active {
        return Ok(None);
    }
    core.store
        .touch_credential(&found.credential_id, now, from_ip)
        .await?;
    Ok(Some(Verified {
        tenant_id: found.tenant_id,
        credential_id: found.credential_id,
        scopes: serde_json::from_str(&found.scopes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    }))
}

/// Revokes a credential with a reason; revoking twice is fine and changes nothing.
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
    Ok(core
        .store
        .revoke_credential(tenant, credential, actor, &reason, now, &event)
        .await?)
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
    Ok(core
        .store
        .revoke_grants(tenant.id, selection, actor, &reason, now, &event)
        .await?)
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
        let kind = if notice.kind == CredentialKind::Client.as_str() {
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
        for admin in core.store.tenant_admin_emails(tenant).await? {
            let rendered = mail::notice(
                "A partner credential expires in a week",
                "",
                &paragraphs,
                None,
            )
            .map_err(|e| StoreError::Unexpected(e.to_string()))?;
            mails.push(queue(&admin, rendered, now));
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
