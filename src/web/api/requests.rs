//! Access requests of a tenant: list (by status), get, approve (scopes narrowed, lifetime capped),
//! deny (with the reason the partner is told).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::partners::{self, AccessRequest, RequestStatus};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant, Page, page_limit};

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestBody {
    pub id: String,
    pub organisation: String,
    pub contact_name: String,
    pub email: String,
    pub scopes: Vec<String>,
    pub justification: String,
    /// `pending`, `approved`, `denied`, `withdrawn` or `expired`.
    pub status: String,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
    /// The grant an approval created.
    pub grant_id: Option<String>,
}

impl From<AccessRequest> for RequestBody {
    fn from(r: AccessRequest) -> Self {
        Self {
            status: r.status.as_str().to_owned(),
            created_at: format_rfc3339(r.created_at),
            decided_at: r.decided_at.map(format_rfc3339),
            id: r.id,
            organisation: r.organisation,
            contact_name: r.contact_name,
            email: r.email,
            scopes: r.scopes,
            justification: r.justification,
            decision_reason: r.decision_reason,
            grant_id: r.grant_id,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestFilter {
    /// Only requests in this status: `pending`, `approved`, `denied`, `withdrawn` or `expired`.
    pub status: Option<String>,
    /// At most this many items (default 50, at most 500).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tenant's access requests, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/requests",
    tag = "requests",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme"), RequestFilter),
    responses(
        (status = 200, body = Page<RequestBody>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    filter: web::Query<RequestFilter>,
) -> Result<HttpResponse, ApiError> {
    let status = match filter.status.as_deref() {
        None => None,
        Some(raw) => Some(
            RequestStatus::parse(raw).ok_or_else(|| ApiError::Unprocessable {
                detail: format!("Unknown status {raw:?}."),
                field: Some("status".into()),
            })?,
        ),
    };
    let limit = page_limit(filter.limit)?;
    let page =
        partners::requests(&core, tenant.id, status, filter.cursor.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: page.requests.into_iter().map(RequestBody::from).collect(),
        next_cursor: page.next,
    }))
}

/// One access request.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/requests/{id}",
    tag = "requests",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The request's id"),
    ),
    responses(
        (status = 200, body = RequestBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn get(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let request = partners::request(&core, tenant.id, &path.1).await?;
    Ok(HttpResponse::Ok().json(RequestBody::from(request)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalBody {
    /// The scopes granted: some or all of those requested.
    pub scopes: Vec<String>,
    /// The longest lifetime a credential under the grant may have (1–365).
    pub max_lifetime_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Approved {
    pub grant_id: String,
}

/// Approves a pending request, creating a grant.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/requests/{id}/approve",
    tag = "requests",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The request's id"),
    ),
    request_body = ApprovalBody,
    responses(
        (status = 200, body = Approved),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Already decided", body = Problem),
        (status = 422, body = Problem),
    ),
)]
pub async fn approve(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<ApprovalBody>,
) -> Result<HttpResponse, ApiError> {
    let request = partners::request(&core, tenant.id, &path.1).await?;
    let body = body.into_inner();
    let grant_id = partners::approve(
        &core,
        caller.owner.id,
        &tenant,
        &request,
        body.scopes,
        body.max_lifetime_days,
        &context,
    )
    .await?;
    Ok(HttpResponse::Ok().json(Approved { grant_id }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DenialBody {
    /// Told to the partner.
    pub reason: String,
}

/// Denies a pending request; the partner is told the reason.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/requests/{id}/deny",
    tag = "requests",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The request's id"),
    ),
    request_body = DenialBody,
    responses(
        (status = 200, body = RequestBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "Already decided", body = Problem),
        (status = 422, body = Problem),
    ),
)]
pub async fn deny(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<DenialBody>,
) -> Result<HttpResponse, ApiError> {
    let request = partners::request(&core, tenant.id, &path.1).await?;
    let actor = caller.owner.id;
    partners::deny(&core, actor, &tenant, &request, &body.reason, &context).await?;
    let decided = partners::request(&core, tenant.id, &path.1).await?;
    Ok(HttpResponse::Ok().json(RequestBody::from(decided)))
}
