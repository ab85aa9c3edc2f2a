//! Tenants: list and search (every tenant the key may act in), get, create, change (name, colour,
//! logo), suspend, reactivate.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::approvals::{self, Action, Change};
use crate::domain::principal::Principal;
use crate::domain::tenants::{self, BrandColour, NewTenant, Slug, Tenant, TenantStatus};
use crate::web::api::approvals::{ApprovalBody, accepted};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant, Page, Paging};
use crate::web::error::WebError;
use crate::web::upload;

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantBody {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// `#rrggbb`
    pub colour: String,
    /// `active` or `suspended`.
    pub status: String,
    pub has_logo: bool,
    pub created_at: String,
}

impl From<&Tenant> for TenantBody {
    fn from(t: &Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            slug: t.slug.to_string(),
            name: t.name.clone(),
            colour: t.colour.hex(),
            status: t.status.as_str().to_owned(),
            has_logo: t.has_logo,
            created_at: format_rfc3339(t.created_at),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantSearch {
    /// Part of the name or slug.
    pub q: Option<String>,
}

/// Tenants the key may act in, by name; search with `q`.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    params(TenantSearch, Paging),
    responses(
        (status = 200, description = "Tenants by name", body = Page<TenantBody>),
        (status = 401, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    Caller { caller, .. }: Caller,
    search: web::Query<TenantSearch>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    let limit = paging.limit()?;
    // The cursor is the last tenant's slug; its name is looked up, so cursors stay short.
    let after =
        match paging.cursor.as_deref() {
            Some(slug) => Some(tenants::by_slug(&core, slug).await?.ok_or_else(|| {
                ApiError::Unprocessable {
                    detail: "The cursor is not one this list gave out.".into(),
                    field: Some("cursor".into()),
                }
            })?),
            None => None,
        };
    let q = search.q.as_deref().unwrap_or("");
    let after = after.map(|t| (t.name, t.slug.to_string()));
    // The owner's visibility and the key's tenant limit both narrow the query itself.
    let mut found = tenants::page_visible_to(
        &core,
        &caller.owner,
        caller.tenants.as_deref(),
        q,
        after.as_ref().map(|(n, s)| (n.as_str(), s.as_str())),
        limit + 1,
    )
    .await?;
    let more = found.len() as i64 > limit;
    found.truncate(limit as usize);
    Ok(HttpResponse::Ok().json(Page {
        next_cursor: more
            .then(|| found.last().map(|t| t.slug.to_string()))
            .flatten(),
        items: found.iter().map(TenantBody::from).collect(),
    }))
}

/// One tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    responses(
        (status = 200, body = TenantBody),
        (status = 401, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn get(InTenant(tenant): InTenant) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(TenantBody::from(&tenant)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantBody {
    pub name: String,
    /// 3–40 lower-case letters, digits and single hyphens, starting with a letter.
    pub slug: String,
    /// `#rrggbb`; default `#2851c8`.
    pub colour: Option<String>,
}

fn field_error(field: &str, error: impl ToString) -> ApiError {
    ApiError::Unprocessable {
        detail: error.to_string(),
        field: Some(field.to_owned()),
    }
}

/// Creates a tenant.
#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = NewTenantBody,
    responses(
        (status = 201, description = "Created", body = TenantBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "The slug is taken", body = Problem),
        (status = 422, body = Problem),
    ),
)]
pub async fn create(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    body: web::Json<NewTenantBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let new = NewTenant {
        name: tenants::parse_name(&body.name).map_err(|e| field_error("name", e))?,
        slug: Slug::parse(&body.slug).map_err(|e| field_error("slug", e))?,
        colour: BrandColour::parse(body.colour.as_deref().unwrap_or("#2851c8"))
            .map_err(|e| field_error("colour", e))?,
        logo: None,
    };
    let slug = new.slug.clone();
    tenants::create(&core, caller.owner.id, new, &context).await?;
    let tenant = tenants::by_slug(&core, slug.as_str())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/api/v1/tenants/{}", tenant.slug)))
        .json(TenantBody::from(&tenant)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantChange {
    pub name: Option<String>,
    /// `#rrggbb`
    pub colour: Option<String>,
}

/// Changes the tenant's name and/or brand colour (the slug never changes).
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body = TenantChange,
    responses(
        (status = 200, body = TenantBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn update(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    body: web::Json<TenantChange>,
) -> Result<HttpResponse, ApiError> {
    let name = match body.name.as_deref() {
        Some(raw) => tenants::parse_name(raw).map_err(|e| field_error("name", e))?,
        None => tenant.name.clone(),
    };
    let colour = match body.colour.as_deref() {
        Some(raw) => BrandColour::parse(raw).map_err(|e| field_error("colour", e))?,
        None => tenant.colour.clone(),
    };
    tenants::update(&core, caller.owner.id, &tenant, name, colour, &context).await?;
    changed(&core, &tenant).await
}

/// The logo, as an upload form's `logo` file or as the image itself.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the request body in the OpenAPI document only.
pub struct LogoUpload {
    /// A PNG, JPEG or WebP image, at most 512 KB.
    #[schema(format = Binary, value_type = String)]
    logo: Vec<u8>,
}

/// Replaces the tenant's logo: `multipart/form-data` with a `logo` file, or the image itself as
/// the body (`image/png`, `image/jpeg` or `image/webp`, at most 512 KB). Judged by content, not by
/// the declared type.
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/logo",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body(
        content(
            (LogoUpload = "multipart/form-data"),
            (Vec<u8> = "image/png"),
            (Vec<u8> = "image/jpeg"),
            (Vec<u8> = "image/webp"),
        ),
    ),
    responses(
        (status = 200, body = TenantBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 413, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn put_logo(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let image = if upload::is_multipart(Some(&content_type)) {
        let body = read_upload(&mut payload).await?;
        upload::parse(&content_type, body)
            .await
            .map_err(|_| ApiError::Malformed("The form could not be read.".into()))?
            .remove("logo")
            .ok_or_else(|| field_error("logo", "Send the image as the form's `logo` file."))?
            .data
    } else if content_type.starts_with("image/") {
        read_upload(&mut payload).await?
    } else {
        return Err(ApiError::UnsupportedMediaType(
            "Send the logo as multipart/form-data or as image/png, image/jpeg or image/webp.",
        ));
    };
    let logo = tenants::validate_logo(image.to_vec()).map_err(|e| field_error("logo", e))?;
    tenants::replace_logo(&core, caller.owner.id, &tenant, logo, &context).await?;
    changed(&core, &tenant).await
}

async fn read_upload(payload: &mut web::Payload) -> Result<web::Bytes, ApiError> {
    upload::read_body(payload).await.map_err(|e| match e {
        WebError::TooLarge => ApiError::TooLarge,
        _ => ApiError::Malformed("The upload was interrupted.".into()),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendBody {
    /// The tenant's slug, typed again: suspension stops every token of the tenant at once.
    pub confirm_slug: String,
    /// Why: a second superadmin reads it before approving.
    pub reason: String,
}

/// Asks to suspend a tenant (every credential and token of it stops working at once): `202`
/// with the approval request, which a second superadmin approves with a passkey in the console.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/suspend",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body = SuspendBody,
    responses(
        (status = 202, description = "Waiting for a second superadmin", body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn suspend(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    body: web::Json<SuspendBody>,
) -> Result<HttpResponse, ApiError> {
    let confirmation = Some(body.confirm_slug.as_str());
    let change = tenants::set_status(
        &core,
        Principal::Key(&caller),
        &tenant,
        TenantStatus::Suspended,
        confirmation,
        &body.reason,
        &context,
    )
    .await?;
    match change {
        Change::AwaitingApproval(approval) => accepted(&core, approval).await,
        Change::Done => changed(&core, &tenant).await,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeEverythingBody {
    /// The tenant's slug, typed again.
    pub confirm_slug: String,
    /// Why: the approver reads it, and every revoked credential records it.
    pub reason: String,
}

/// The incident kill switch: asks to revoke every grant and credential of the tenant at once.
/// `202` with the approval request, which a second person (superadmin or security) approves
/// with a passkey in the console.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/revoke-everything",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body = RevokeEverythingBody,
    responses(
        (status = 202, description = "Waiting for a second person", body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn revoke_everything(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    body: web::Json<RevokeEverythingBody>,
) -> Result<HttpResponse, ApiError> {
    if body.confirm_slug.trim() != tenant.slug.as_str() {
        return Err(ApiError::Unprocessable {
            detail: "Type the tenant's slug exactly to confirm.".into(),
            field: Some("confirm_slug".into()),
        });
    }
    let action = Action::RevokeTenant { tenant: tenant.id };
    let approval = approvals::request(
        &core,
        Principal::Key(&caller),
        action,
        &body.reason,
        &context,
    )
    .await?;
    accepted(&core, approval).await
}

/// Reactivates a suspended tenant.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/reactivate",
    tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    responses(
        (status = 200, body = TenantBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn reactivate(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
) -> Result<HttpResponse, ApiError> {
    let actor = Principal::Key(&caller);
    tenants::set_status(
        &core,
        actor,
        &tenant,
        TenantStatus::Active,
        None,
        "",
        &context,
    )
    .await?;
    changed(&core, &tenant).await
}

async fn changed(core: &Core, tenant: &Tenant) -> Result<HttpResponse, ApiError> {
    let fresh = tenants::by_id(core, tenant.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(TenantBody::from(&fresh)))
}
