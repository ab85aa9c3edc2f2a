//! Grants and credentials inside a tenant, for staff: minting (behind step-up), the credentials list
//! with filters and keyset paging, revocation of one, a grant or a partner, extra client secrets.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::approvals::{self, Action, ApprovalError};
use crate::domain::partners::client_keys;
use crate::domain::partners::{
    self, CredentialSearch, CredentialView, Grant, MintRequest, PartnerError,
};
use crate::domain::principal::Principal;
use crate::domain::rbac::Permission;
use crate::web::approvals::requested;
use crate::web::authz::TenantPage;
use crate::web::client_policies::{PolicyView, policy_view};
use crate::web::error::WebError;
use crate::web::extractors::Client;
use crate::web::{Nav, render, see_other};

#[derive(Template)]
#[template(path = "partners/grant.html")]
pub struct GrantPage {
    nav: Option<Nav>,
    csrf_token: String,
    slug: String,
    grant: Grant,
    created: String,
    can_mint: bool,
    can_revoke: bool,
    /// The newest credentials under this grant; `more_credentials` when there are others.
    credentials: Vec<CredentialRow>,
    more_credentials: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// The grant page lists this many of its credentials, and links to the filtered list for the rest.
const GRANT_PAGE_CREDENTIALS: i64 = 10;

async fn grant_page(core: &Core, page: &TenantPage, id: &str) -> Result<GrantPage, WebError> {
    let grant = grant_of(core, page, id).await?;
    let search = CredentialSearch {
        grant: &grant.id,
        limit: Some(GRANT_PAGE_CREDENTIALS),
        ..Default::default()
    };
    let found = partners::search_credentials(core, page.tenant.id, &search).await?;
    Ok(GrantPage {
        more_credentials: found.next.is_some(),
        credentials: found
            .credentials
            .into_iter()
            .map(CredentialRow::from)
            .collect(),
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        csrf_token: page.current.csrf_token.clone(),
        slug: page.tenant.slug.to_string(),
        created: format_utc(grant.created_at),
        can_mint: page.may(Permission::MintCredentials) && grant.revoked_at.is_none(),
        can_revoke: page.may(Permission::RevokeCredentials),
        grant,
        notice: None,
        error: None,
    })
}

pub async fn grant_get(
    core: web::Data<Core>,
    page: TenantPage,
    path: web::Path<(String, String)>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let mut view = grant_page(&core, &page, &path.1).await?;
    view.notice = match query.notice.as_deref() {
        Some("minted") => {
            Some("Credential created. The partner has been sent a one-time link to retrieve it.")
        }
        Some("revoked") => Some("Revoked. The credentials stop working at their very next use."),
        Some("approved") => Some(
            "Request approved. Create the partner's first credential below when they are ready.",
        ),
        _ => None,
    };
    render(&view, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct MintForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    lifetime_days: String,
}

/// The grant named in the URL, if it belongs to this tenant.
async fn grant_of(core: &Core, page: &TenantPage, id: &str) -> Result<Grant, WebError> {
    Ok(partners::grant(core, page.tenant.id, id).await?)
}

pub async fn mint_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<MintForm>,
) -> Result<HttpResponse, WebError> {
    let id = &path.1;
    let grant = grant_of(&core, &page, id).await?;
    let outcome = match MintRequest::parse(&form.kind, &form.lifetime_days, &grant) {
        Ok(request) => {
            let actor = page.current.user.id;
            partners::mint(&core, actor, &page.tenant, &grant, request, &client).await
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(_) => Ok(see_other(&format!(
            "/t/{}/grants/{id}?notice=minted",
            page.tenant.slug
        ))),
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(error) => {
            let mut view = grant_page(&core, &page, id).await?;
            view.error = Some(error.to_string());
            render(&view, StatusCode::BAD_REQUEST)
        }
    }
}

pub struct CredentialRow {
    id: String,
    organisation: String,
    grant_id: String,
    kind: &'static str,
    is_client: bool,
    name: String,
    status: String,
    created: String,
    created_by: String,
    expires: String,
    last_used: String,
    /// "revoked 2026-12-02 10:00 UTC: reason" on a revoked credential.
    revoked: Option<String>,
}

/// What people call each kind: a gateway's client is not a partner's client.
fn kind_label(c: &CredentialView) -> &'static str {
    match (c.kind.as_str(), c.may_introspect) {
        ("client", true) => "gateway credential",
        ("client", false) => "client credential",
        _ => "API token",
    }
}

impl From<CredentialView> for CredentialRow {
    fn from(c: CredentialView) -> Self {
        Self {
            kind: kind_label(&c),
            is_client: c.kind == "client",
            name: c
                .client_id
                .clone()
                .or(c.display_prefix.map(|p| format!("{p}…")))
                .unwrap_or_else(|| "not retrieved yet".into()),
            created: format_utc(c.created_at),
            created_by: c.created_by,
            expires: format_utc(c.expires_at),
            last_used: match (c.last_used_at, c.last_used_ip) {
                (None, _) => "never".into(),
                (Some(at), Some(ip)) if !ip.is_empty() => format!("{} from {ip}", format_utc(at)),
                (Some(at), _) => format_utc(at),
            },
            revoked: (c.status == "revoked").then(|| {
                let at = c.revoked_at.map(format_utc).unwrap_or_default();
                match c.revoke_reason {
                    Some(reason) => format!("{at}: {reason}"),
                    None => at,
                }
            }),
            status: c.status,
            id: c.id,
            organisation: c.organisation,
            grant_id: c.grant_id,
        }
    }
}

/// One secret of a client, as the credential page shows it.
pub struct SecretLine {
    id: String,
    prefix: String,
    state: &'static str,
    created: String,
    retrieved: String,
    expires: String,
    retirable: bool,
}

#[derive(Template)]
#[template(path = "partners/credential.html")]
pub struct CredentialPage {
    nav: Option<Nav>,
    csrf_token: String,
    slug: String,
    credential: CredentialRow,
    secrets: Vec<SecretLine>,
    keys: Vec<KeyLine>,
    /// May register another public key (fewer than two live ones).
    can_add_key: bool,
    /// A client's networks, issuance limit and DPoP requirement.
    policy: Option<PolicyView>,
    can_change_policy: bool,
    can_mint: bool,
    can_revoke: bool,
    notice: Option<&'static str>,
}

/// A registered public key, by its thumbprint (a public key is not a secret).
pub struct KeyLine {
    id: String,
    thumbprint: String,
    algorithm: String,
    added: String,
    removed: Option<String>,
    removable: bool,
}

pub async fn credential_get(
    core: web::Data<Core>,
    page: TenantPage,
    path: web::Path<(String, String)>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let (credential, secrets) = partners::credential(&core, page.tenant.id, &path.1).await?;
    let now = core.clock.now_ms();
    let live = secrets
        .iter()
        .filter(|s| partners::SecretState::of(s, now) != partners::SecretState::Retired)
        .filter(|s| partners::SecretState::of(s, now) != partners::SecretState::Expired)
        .count();
    let active = credential.status == "active";
    let can_revoke = page.may(Permission::RevokeCredentials);
    let keys = client_keys::client_keys(&core, page.tenant.id, &path.1).await?;
    let live_keys = keys.iter().filter(|k| k.removed_at.is_none()).count();
    let secrets = secrets
        .into_iter()
        .map(|s| {
            let state = partners::SecretState::of(&s, now);
            SecretLine {
                prefix: s
                    .display_prefix
                    .map(|p| format!("{p}…"))
                    .unwrap_or_else(|| "not retrieved yet".into()),
                state: state.as_str(),
                created: format_utc(s.created_at),
                retrieved: s.retrieved_at.map(format_utc).unwrap_or_default(),
                expires: format_utc(s.expires_at),
                retirable: can_revoke
                    && active
                    && (live > 1 || live_keys > 0)
                    && matches!(
                        state,
                        partners::SecretState::Live | partners::SecretState::Waiting
                    ),
                id: s.id,
            }
        })
        .collect::<Vec<_>>();
    let keys = keys
        .into_iter()
        .map(|k| KeyLine {
            removable: can_revoke && active && k.removed_at.is_none(),
            removed: k.removed_at.map(format_utc),
            added: format_utc(k.created_at),
            id: k.id,
            thumbprint: k.thumbprint,
            algorithm: k.algorithm,
        })
        .collect();
    let policy = policy_view(&core, &page, &path.1, &credential.kind).await?;
    let view = CredentialPage {
        can_change_policy: page.may(Permission::MintCredentials) && active && policy.is_some(),
        policy,
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        csrf_token: page.current.csrf_token.clone(),
        slug: page.tenant.slug.to_string(),
        keys,
        can_add_key: page.may(Permission::MintCredentials)
            && active
            && credential.kind == "client"
            && live_keys < 2,
        can_mint: page.may(Permission::MintCredentials)
            && active
            && credential.kind == "client"
            && live < partners::MAX_CLIENT_SECRETS as usize,
        can_revoke: can_revoke && active,
        credential: credential.into(),
        secrets,
        notice: match query.notice.as_deref() {
            Some("secret_added") => Some(
                "Another secret was created. The partner has been sent a one-time link to retrieve it.",
            ),
            Some("secret_retired") => Some("The secret was retired: it stops working at once."),
            Some("key_added") => Some(
                "The public key was registered: the client may now authenticate with assertions signed by it.",
            ),
            Some("key_removed") => {
                Some("The key was removed: assertions signed by it fail at once.")
            }
            Some("revoked") => Some("Revoked. The credential stops working at its very next use."),
            Some("policy_changed") => Some(
                "The client's rules were saved: every instance applies them from its next request.",
            ),
            _ => None,
        },
    };
    render(&view, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "partners/credentials.html")]
pub struct CredentialsPage {
    nav: Option<Nav>,
    slug: String,
    credentials: Vec<CredentialRow>,
    /// The query string of the next page, filters included.
    next: Option<String>,
    filters: ListQuery,
    csrf_token: String,
    kill_switch: Option<KillSwitch>,
}

/// The incident kill switch offered under the list to those who may ask for it.
pub struct KillSwitch {
    /// Someone besides this person could approve it.
    second_person: bool,
    /// The request already waiting, if any.
    pending: Option<String>,
}

async fn kill_switch(core: &Core, page: &TenantPage) -> Result<Option<KillSwitch>, WebError> {
    let action = Action::RevokeTenant {
        tenant: page.tenant.id,
    };
    if !approvals::may_request(core, &page.current.user, &action).await? {
        return Ok(None);
    }
    Ok(Some(KillSwitch {
        second_person: approvals::second_person_exists(core, &page.current.user, &action).await?,
        pending: approvals::pending_for(core, &action).await?.map(|a| a.id),
    }))
}

#[derive(Deserialize)]
pub struct RevokeEverythingForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm_slug: String,
}

/// Asks to revoke every grant and credential of the tenant (typing its slug); a second person
/// approves on the request's page.
pub async fn revoke_everything_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    form: web::Form<RevokeEverythingForm>,
) -> Result<HttpResponse, WebError> {
    if form.confirm_slug.trim() != page.tenant.slug.as_str() {
        return Err(WebError::BadRequest(
            "Type the tenant's slug exactly to confirm.",
        ));
    }
    let action = Action::RevokeTenant {
        tenant: page.tenant.id,
    };
    match approvals::request(
        &core,
        Principal::Person(&page.current.user),
        action,
        &form.reason,
        &client,
    )
    .await
    {
        Ok(approval) => Ok(requested(&approval)),
        Err(
            error @ (ApprovalError::Store(_) | ApprovalError::Keys(_) | ApprovalError::NotFound),
        ) => Err(error.into()),
        Err(error) => Err(WebError::Conflict(error.to_string())),
    }
}

/// The list's filters, as they travel in the query string (and into the "older" link).
#[derive(Deserialize, serde::Serialize, Default, Clone)]
pub struct ListQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    partner: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    grant: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
}

pub async fn credentials_get(
    core: web::Data<Core>,
    page: TenantPage,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    let search = CredentialSearch {
        status: &query.status,
        kind: &query.kind,
        partner: &query.partner,
        grant: &query.grant,
        prefix: &query.prefix,
        after: query.after.as_deref(),
        limit: None,
    };
    let found = partners::search_credentials(&core, page.tenant.id, &search).await?;
    let next = found.next.map(|after| {
        let next = ListQuery {
            after: Some(after),
            ..query.clone()
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    });
    let view = CredentialsPage {
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        slug: page.tenant.slug.to_string(),
        credentials: found
            .credentials
            .into_iter()
            .map(CredentialRow::from)
            .collect(),
        next,
        filters: query,
        csrf_token: page.current.csrf_token.clone(),
        kill_switch: kill_switch(&core, &page).await?,
    };
    render(&view, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct BulkRevokeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    confirm_slug: String,
}

/// Revokes a whole grant (every credential under it), after a fresh passkey and the typed slug.
pub async fn grant_revoke_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<BulkRevokeForm>,
) -> Result<HttpResponse, WebError> {
    let id = &path.1;
    let grant = grant_of(&core, &page, id).await?;
    bulk_revoke(
        &core,
        &page,
        &client,
        partners::BulkRevocation::Grant(&grant),
        &form,
        id,
    )
    .await
}

/// Revokes everything of the grant's partner (all their grants in this tenant).
pub async fn partner_revoke_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<BulkRevokeForm>,
) -> Result<HttpResponse, WebError> {
    let id = &path.1;
    let grant = grant_of(&core, &page, id).await?;
    let target = partners::BulkRevocation::Partner(&grant.contact_email);
    bulk_revoke(&core, &page, &client, target, &form, id).await
}

async fn bulk_revoke(
    core: &Core,
    page: &TenantPage,
    client: &crate::domain::events::RequestContext,
    target: partners::BulkRevocation<'_>,
    form: &BulkRevokeForm,
    grant_id: &str,
) -> Result<HttpResponse, WebError> {
    let user = page.current.user.id;
    match partners::revoke_in_bulk(
        core,
        user,
        &page.tenant,
        target,
        &form.reason,
        &form.confirm_slug,
        client,
    )
    .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/t/{}/grants/{grant_id}?notice=revoked",
            page.tenant.slug
        ))),
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(error) => {
            let mut view = grant_page(core, page, grant_id).await?;
            view.error = Some(error.to_string());
            render(&view, StatusCode::BAD_REQUEST)
        }
    }
}

fn credential_url(page: &TenantPage, id: &str, notice: &str) -> String {
    format!("/t/{}/credentials/{id}?notice={notice}", page.tenant.slug)
}

/// A second secret for a client credential (rotation), behind a fresh passkey.
pub async fn add_secret_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = &path.1;
    partners::add_client_secret(&core, page.current.user.id, &page.tenant, id, &client).await?;
    Ok(see_other(&credential_url(&page, id, "secret_added")))
}

/// Retires one secret of a client once the partner has switched to the other.
pub async fn retire_secret_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, WebError> {
    let (_, id, secret) = path.into_inner();
    let user = page.current.user.id;
    partners::retire_client_secret(&core, user, page.tenant.id, &id, &secret, &client).await?;
    Ok(see_other(&credential_url(&page, &id, "secret_retired")))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    reason: String,
}

pub async fn revoke_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, WebError> {
    let user = page.current.user.id;
    let id = &path.1;
    // Revoking an already revoked (or expired) credential is not an error: the outcome is the same.
    partners::revoke(&core, user, page.tenant.id, id, &form.reason, &client).await?;
    Ok(see_other(&credential_url(&page, id, "revoked")))
}

#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    jwk: String,
}

/// Registers a public key for private_key_jwt (behind a fresh passkey, like minting).
pub async fn key_add_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, WebError> {
    let credential = &path.1;
    let actor = page.current.user.id;
    client_keys::add_client_key(&core, actor, page.tenant.id, credential, &form.jwk, &client)
        .await?;
    Ok(see_other(&format!(
        "/t/{}/credentials/{credential}?notice=key_added",
        page.tenant.slug
    )))
}

pub async fn key_remove_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, WebError> {
    let (_, credential, key) = path.into_inner();
    let actor = page.current.user.id;
    client_keys::remove_client_key(&core, actor, page.tenant.id, &credential, &key, &client)
        .await?;
    Ok(see_other(&format!(
        "/t/{}/credentials/{credential}?notice=key_removed",
        page.tenant.slug
    )))
}
