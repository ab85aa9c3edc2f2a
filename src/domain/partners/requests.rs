//! Access requests: submission on the public page, confirmation, withdrawal, decisions.

use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::clock::duration_ms;
use crate::domain::Core;
use crate::domain::email::Email;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::paging::{next_cursor, parse_cursor};
use crate::domain::secrets::{self, SecretDigest};
use crate::domain::tenants::{Tenant, TenantStatus};
use crate::store::StoreError;
use crate::store::partners::{Approval, Decided, Denial, NewRequest};

/// Requests per hour from one IP, and for one e-mail address, on the public form.
const REQUESTS_PER_HOUR: i64 = 5;

/// What a partner typed on the public request page.
#[derive(Debug, Default)]
pub struct RequestForm<'a> {
    pub organisation: &'a str,
    pub contact_name: &'a str,
    pub email: &'a str,
    pub scopes: Vec<String>,
    pub justification: &'a str,
    /// A field people never see (the page hides it): only bots fill it in.
    pub website: &'a str,
}

/// The form, checked: the limits a tenant admin reading the request relies on.
struct ValidRequest {
    organisation: String,
    contact_name: String,
    email: Email,
    scopes: Vec<String>,
    justification: String,
}

impl RequestForm<'_> {
    fn validate(self) -> Result<ValidRequest, PartnerError> {
        Ok(ValidRequest {
            organisation: clean_text(self.organisation, 120, "Enter your organisation.")?,
            contact_name: clean_text(self.contact_name, 100, "Enter your name.")?,
            email: Email::parse(self.email)
                .map_err(|_| PartnerError::Invalid("Enter a valid e-mail address."))?,
            scopes: self.scopes,
            justification: clean_text(
                self.justification,
                2000,
                "Tell the tenant what you need access for.",
            )?,
        })
    }
}

/// A partner asks for access. Nothing reaches the tenant until the e-mail address is confirmed.
/// A bot (the hidden field filled in) gets the same answer as a person, and nothing is stored.
pub async fn submit_request(
    core: &Core,
    tenant: &Tenant,
    form: RequestForm<'_>,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    if !form.website.is_empty() {
        return Ok(());
    }
    let form = form.validate()?;
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
        Actor::Partner(id.clone()),
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
    for admin in core.store.tenant_admins(tenant.id).await? {
        let rendered = render(
            &format!("New access request for {}", tenant.name),
            &admin.name,
            vec!["A partner's access request is waiting for a decision.".into()],
            Some(("Open the request queue", &queue_link)),
        )?;
        mails.push(queue(&admin.email, rendered, now));
    }
    let event = Event::new(
        now,
        EventType::RequestConfirmed,
        Outcome::Success,
        // Only the link's token is known here: the store names the partner's request.
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
        // Only the link's token is known here: the store names the partner's request.
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

/// One page of a tenant's access requests, newest first, and the cursor of the next page.
pub struct RequestPage {
    pub requests: Vec<AccessRequest>,
    pub next: Option<String>,
}

/// The tenant's access requests, newest first, optionally of one status; unconfirmed ones are the
/// partner's business until confirmed, so staff never see them.
pub async fn requests(
    core: &Core,
    tenant: TenantId,
    status: Option<RequestStatus>,
    after: Option<&str>,
    limit: i64,
) -> Result<RequestPage, StoreError> {
    if status == Some(RequestStatus::Unconfirmed) {
        return Ok(RequestPage {
            requests: Vec::new(),
            next: None,
        });
    }
    let limit = limit.clamp(1, 500);
    let mut requests = core
        .store
        .requests_of(tenant, status, after.and_then(parse_cursor), limit + 1)
        .await?;
    let next = next_cursor(&mut requests, limit, |r| (r.created_at, r.id.as_str()));
    Ok(RequestPage { requests, next })
}

/// One of the tenant's confirmed requests.
pub async fn request(
    core: &Core,
    tenant: TenantId,
    id: &str,
) -> Result<AccessRequest, PartnerError> {
    match core.store.request(tenant, id).await? {
        Some(request) if request.status != RequestStatus::Unconfirmed => Ok(request),
        _ => Err(PartnerError::NotFound),
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
