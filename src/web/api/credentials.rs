//! Grants and credentials of a tenant: get a grant, list and search credentials (the console's
//! filters, keyset paging), mint under a grant (the partner gets the one-time retrieval link by
//! mail; no secret is ever in a response), revoke.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::partners::{
    self, CredentialSearch, CredentialView, Delivery, Grant, MintRequest,
};
use crate::web::api::client_keys::{ClientKeyBody, keys_of};
use crate::web::api::client_policies::{PolicyBody, PolicyFields, policy_of};
use crate::web::api::idempotency::CarriesSecret;
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant, Page, Paging, page_limit};

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantBody {
    pub id: String,
    /// The access request whose approval created it.
    pub request_id: String,
    pub organisation: String,
    pub contact_email: String,
    pub scopes: Vec<String>,
    pub max_lifetime_days: i64,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<Grant> for GrantBody {
    fn from(g: Grant) -> Self {
        Self {
            created_at: format_rfc3339(g.created_at),
            revoked_at: g.revoked_at.map(format_rfc3339),
            id: g.id,
            request_id: g.request_id,
            organisation: g.organisation,
            contact_email: g.contact_email,
            scopes: g.scopes,
            max_lifetime_days: g.max_lifetime_days,
        }
    }
}

/// One grant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/grants/{id}",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The grant's id"),
    ),
    responses(
        (status = 200, body = GrantBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn grant(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let grant = partners::grant(&core, tenant.id, &path.1).await?;
    Ok(HttpResponse::Ok().json(GrantBody::from(grant)))
}

/// The tenant's grants, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/grants",
    tag = "credentials",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme"), Paging),
    responses(
        (status = 200, description = "Newest first", body = Page<GrantBody>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn grants(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    let limit = paging.limit()?;
    let page = partners::grants(&core, tenant.id, paging.cursor.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.grants.into_iter().map(GrantBody::from).collect(),
        next_cursor: page.next,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialBody {
    pub id: String,
    /// `api_token` or `client`.
    pub kind: String,
    /// A client for a gateway (minted as `resource_server`): it may also introspect tokens.
    pub may_introspect: bool,
    pub client_id: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    pub grant_id: String,
    pub organisation: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub revoke_reason: Option<String>,
    pub last_used_at: Option<String>,
    /// The address of the last use.
    pub last_used_from: Option<String>,
    /// The start of the retrieved secret, enough to recognise it.
    pub display_prefix: Option<String>,
}

impl From<CredentialView> for CredentialBody {
    fn from(c: CredentialView) -> Self {
        Self {
            created_at: format_rfc3339(c.created_at),
            expires_at: format_rfc3339(c.expires_at),
            last_used_at: c.last_used_at.map(format_rfc3339),
            revoked_at: c.revoked_at.map(format_rfc3339),
            may_introspect: c.may_introspect,
            last_used_from: c.last_used_ip,
            id: c.id,
            kind: c.kind,
            client_id: c.client_id,
            status: c.status,
            grant_id: c.grant_id,
            organisation: c.organisation,
            revoke_reason: c.revoke_reason,
            display_prefix: c.display_prefix,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CredentialQuery {
    /// `active`, `expiring` (within 7 days), `expired` or `revoked`.
    pub status: Option<String>,
    /// `api_token` or `client`.
    pub kind: Option<String>,
    /// Organisation or contact e-mail contains this.
    pub partner: Option<String>,
    pub grant: Option<String>,
    /// Client id or secret prefix starts with this.
    pub prefix: Option<String>,
    /// At most this many items (default 50, at most 500).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's credentials, newest first, with the console's filters.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/credentials",
    tag = "credentials",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme"), CredentialQuery),
    responses(
        (status = 200, description = "Newest first", body = Page<CredentialBody>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    query: web::Query<CredentialQuery>,
) -> Result<HttpResponse, ApiError> {
    let text = |value: &Option<String>| value.as_deref().unwrap_or("").to_owned();
    let (status, kind, partner, grant, prefix) = (
        text(&query.status),
        text(&query.kind),
        text(&query.partner),
        text(&query.grant),
        text(&query.prefix),
    );
    let search = CredentialSearch {
        status: &status,
        kind: &kind,
        partner: &partner,
        grant: &grant,
        prefix: &prefix,
        after: query.cursor.as_deref(),
        limit: Some(page_limit(query.limit)?),
    };
    let found = partners::search_credentials(&core, tenant.id, &search).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: found
            .credentials
            .into_iter()
            .map(CredentialBody::from)
            .collect(),
        next_cursor: found.next,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretBody {
    pub id: String,
    /// The start of the secret once retrieved, enough to recognise it.
    pub display_prefix: Option<String>,
    /// `waiting` (its retrieval link is unused), `live`, `retired` or `expired`.
    pub status: String,
    pub created_at: String,
    pub retrieved_at: Option<String>,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialDetail {
    #[serde(flatten)]
    pub credential: CredentialBody,
    /// A client's secrets (one, or two during a rotation); never their values.
    pub secrets: Vec<SecretBody>,
    /// A client's registered public keys (private_key_jwt), live and removed.
    pub keys: Vec<ClientKeyBody>,
    /// A client's networks, issuance limit and DPoP requirement (absent for API tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyBody>,
}

/// One credential, with its secrets' state.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/credentials/{id}",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The credential's id"),
    ),
    responses(
        (status = 200, body = CredentialDetail),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn get(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let now = core.clock.now_ms();
    let (credential, secrets) = partners::credential(&core, tenant.id, &path.1).await?;
    let secrets = secrets
        .into_iter()
        .map(|s| SecretBody {
            status: partners::SecretState::of(&s, now).as_str().into(),
            created_at: format_rfc3339(s.created_at),
            retrieved_at: s.retrieved_at.map(format_rfc3339),
            expires_at: format_rfc3339(s.expires_at),
            revoked_at: s.revoked_at.map(format_rfc3339),
            id: s.id,
            display_prefix: s.display_prefix,
        })
        .collect();
    let policy = policy_of(&core, tenant.id, &credential.id, &credential.kind).await?;
    Ok(HttpResponse::Ok().json(CredentialDetail {
        policy,
        credential: credential.into(),
        secrets,
        keys: keys_of(&core, tenant.id, &path.1).await?,
    }))
}

/// Retires one secret of a client (the end of a rotation): it stops working at once. The last live
/// secret cannot be retired: revoke the credential instead.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/credentials/{id}/secrets/{secret}",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The credential's id"),
        ("secret" = String, Path, description = "The secret's id"),
    ),
    responses(
        (status = 204, description = "Retired"),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn retire_secret(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, credential, secret) = path.into_inner();
    partners::retire_client_secret(
        &core,
        caller.owner.id,
        tenant.id,
        &credential,
        &secret,
        &context,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// `api_token`, `client`, or `resource_server` (a client for a gateway: it may introspect).
    pub kind: String,
    /// Days until it expires; default 30, capped by the grant.
    pub lifetime_days: Option<i64>,
    /// `email` (default): the partner gets the one-time retrieval link by e-mail; `link`: the
    /// response carries it, for delivery through the caller's own channel (the event records which
    /// key received it).
    pub delivery: Option<String>,
    /// Clients only: the networks (CIDR) it may call from; left out or empty: anywhere.
    pub networks: Option<Vec<String>>,
    /// Clients only: tokens it may obtain per minute (default 60).
    pub tokens_per_minute: Option<i64>,
    /// Clients only: every token request must carry a DPoP proof.
    pub require_dpop: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Minted {
    pub id: String,
    /// How the partner receives the secret: `email` or `link`.
    pub delivery: String,
    /// The one-time retrieval link (valid 24 hours), only with `"delivery": "link"`. It reveals the
    /// secret once to whoever opens it first: hand it to the partner only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval_link: Option<String>,
}

/// Mints a credential under a grant; the partner gets a one-time retrieval link by e-mail.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/grants/{id}/credentials",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The grant's id"),
    ),
    request_body = MintBody,
    responses(
        (status = 201, body = Minted),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn mint(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<MintBody>,
) -> Result<HttpResponse, ApiError> {
    let grant = partners::grant(&core, tenant.id, &path.1).await?;
    let lifetime = body
        .lifetime_days
        .map(|d| d.to_string())
        .unwrap_or_default();
    let mut request = MintRequest::parse(&body.kind, &lifetime, &grant)?;
    request.delivery = match body.delivery.as_deref() {
        None | Some("email") => Delivery::Email,
        Some("link") => Delivery::Link,
        Some(other) => {
            return Err(ApiError::Unprocessable {
                detail: format!("Unknown delivery {other:?}: use email or link."),
                field: Some("delivery".into()),
            });
        }
    };
    let policy = PolicyFields {
        networks: body.networks.clone(),
        tokens_per_minute: body.tokens_per_minute,
        require_dpop: body.require_dpop,
    };
    request.policy = policy.change()?.applied_to(&request.policy);
    let delivery = request.delivery;
    let minted = partners::mint(&core, caller.owner.id, &tenant, &grant, request, &context).await?;
    let mut answer = HttpResponse::Created();
    if minted.retrieval_link.is_some() {
        answer.extensions_mut().insert(CarriesSecret);
    }
    Ok(answer.json(Minted {
        id: minted.id,
        delivery: delivery.as_str().into(),
        retrieval_link: minted
            .retrieval_link
            .map(|link| secrecy::ExposeSecret::expose_secret(&link).to_owned()),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// False when it was already revoked or expired (revoking twice changes nothing).
    pub revoked_now: bool,
}

/// Revokes a credential at once.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/credentials/{id}/revoke",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The credential's id"),
    ),
    request_body = RevokeBody,
    responses(
        (status = 200, body = Revoked),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn revoke(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<RevokeBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.owner.id;
    let revoked_now =
        partners::revoke(&core, actor, tenant.id, &path.1, &body.reason, &context).await?;
    Ok(HttpResponse::Ok().json(Revoked { revoked_now }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRevokeBody {
    pub reason: String,
    /// The tenant's slug, typed again: everything under the grant (or of the partner) stops at once.
    pub confirm_slug: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRevoked {
    /// How many credentials were still active and are now revoked.
    pub credentials_revoked: u64,
}

/// Revokes a grant and every credential under it.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/grants/{id}/revoke",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The grant's id"),
    ),
    request_body = BulkRevokeBody,
    responses(
        (status = 200, body = BulkRevoked),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn revoke_grant(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<BulkRevokeBody>,
) -> Result<HttpResponse, ApiError> {
    let grant = partners::grant(&core, tenant.id, &path.1).await?;
    let target = partners::BulkRevocation::Grant(&grant);
    bulk(&core, &caller, &context, &tenant, target, &body).await
}

/// Revokes everything of the grant's partner in this tenant: all their grants and credentials.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/grants/{id}/revoke-partner",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "Any grant of the partner"),
    ),
    request_body = BulkRevokeBody,
    responses(
        (status = 200, body = BulkRevoked),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn revoke_partner(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<BulkRevokeBody>,
) -> Result<HttpResponse, ApiError> {
    let grant = partners::grant(&core, tenant.id, &path.1).await?;
    let target = partners::BulkRevocation::Partner(&grant.contact_email);
    bulk(&core, &caller, &context, &tenant, target, &body).await
}

async fn bulk(
    core: &Core,
    caller: &crate::domain::api_keys::ApiCaller,
    context: &crate::domain::events::RequestContext,
    tenant: &crate::domain::tenants::Tenant,
    target: partners::BulkRevocation<'_>,
    body: &BulkRevokeBody,
) -> Result<HttpResponse, ApiError> {
    let credentials_revoked = partners::revoke_in_bulk(
        core,
        caller.owner.id,
        tenant,
        target,
        &body.reason,
        &body.confirm_slug,
        context,
    )
    .await?;
    Ok(HttpResponse::Ok().json(BulkRevoked {
        credentials_revoked,
    }))
}

/// Adds a second secret to a client credential (rotation without downtime); the partner retrieves
/// it through a one-time link by e-mail, like the first.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/credentials/{id}/secrets",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The credential's id"),
    ),
    responses(
        (status = 202, body = Minted),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn add_secret(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    partners::add_client_secret(&core, caller.owner.id, &tenant, &path.1, &context).await?;
    Ok(HttpResponse::Accepted().json(Minted {
        id: path.1.clone(),
        delivery: "email".into(),
        retrieval_link: None,
    }))
}
