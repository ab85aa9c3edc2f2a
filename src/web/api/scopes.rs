//! A tenant's scope catalogue: list, add, remove (each change an event, as in the console).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::Core;
use crate::domain::partners::{self, Scope};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant};

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeBody {
    pub id: String,
    /// Like `payments:read`.
    pub name: String,
    pub description: String,
}

impl From<Scope> for ScopeBody {
    fn from(s: Scope) -> Self {
        Self {
            id: s.id,
            name: s.name,
            description: s.description,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScopeList {
    pub items: Vec<ScopeBody>,
}

/// The tenant's scope catalogue, by name.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/scopes",
    tag = "scopes",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    responses(
        (status = 200, body = ScopeList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
) -> Result<HttpResponse, ApiError> {
    let items = partners::scopes(&core, tenant.id).await?;
    Ok(HttpResponse::Ok().json(ScopeList {
        items: items.into_iter().map(ScopeBody::from).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewScopeBody {
    pub name: String,
    pub description: String,
}

/// Adds a scope partners may request.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/scopes",
    tag = "scopes",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body = NewScopeBody,
    responses(
        (status = 201, body = ScopeBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn add(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    body: web::Json<NewScopeBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.owner.id;
    let scope = partners::add_scope(
        &core,
        actor,
        tenant.id,
        &body.name,
        &body.description,
        &context,
    )
    .await?;
    Ok(HttpResponse::Created().json(ScopeBody::from(scope)))
}

/// Removes a scope from the catalogue (grants that hold it keep it).
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/scopes/{id}",
    tag = "scopes",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The scope's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn remove(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.owner.id;
    partners::remove_scope(&core, actor, tenant.id, &path.1, &context).await?;
    Ok(HttpResponse::NoContent().finish())
}
