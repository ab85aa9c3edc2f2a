//! A tenant's signing keys: the catalogue, rotation now, and the emergency replacement — requested
//! by key, approved only by a different person (in the console or by that person's key).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::keys::{self, KeyCatalogue, KeyError, RotationCause};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant};

#[derive(Debug, Serialize, ToSchema)]
pub struct SigningKeyBody {
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub algorithm: String,
    /// `next`, `active`, `retiring` or `retired`.
    pub state: String,
    pub created_at: String,
    pub activated_at: Option<String>,
    pub retire_after: Option<String>,
    pub retired_at: Option<String>,
    pub tokens_signed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PendingReplacement {
    pub id: String,
    pub kid: String,
    pub reason: String,
    pub requested_by: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCatalogueBody {
    pub items: Vec<SigningKeyBody>,
    /// An emergency replacement waiting for a second person.
    pub pending_replacement: Option<PendingReplacement>,
}

async fn catalogue(
    core: &Core,
    tenant: crate::domain::ids::TenantId,
) -> Result<KeyCatalogueBody, ApiError> {
    let KeyCatalogue { keys, pending } = keys::catalogue(core, tenant).await?;
    Ok(KeyCatalogueBody {
        items: keys
            .into_iter()
            .map(|(k, used)| SigningKeyBody {
                state: k.state.as_str().to_owned(),
                created_at: format_rfc3339(k.created_at),
                activated_at: k.activated_at.map(format_rfc3339),
                retire_after: k.retire_after.map(format_rfc3339),
                retired_at: k.retired_at.map(format_rfc3339),
                tokens_signed: used.tokens_signed,
                kid: k.kid,
                algorithm: k.algorithm,
            })
            .collect(),
        pending_replacement: pending.map(|p| PendingReplacement {
            expires_at: format_rfc3339(p.expires_at),
            id: p.id,
            kid: p.kid,
            reason: p.reason,
            requested_by: p.requester_email,
        }),
    })
}

/// The tenant's signing keys, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/keys",
    tag = "keys",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    responses(
        (status = 200, body = KeyCatalogueBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(catalogue(&core, tenant.id).await?))
}

/// Rotates now: the next key signs, the active one keeps verifying until its tokens expire.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/keys/rotate",
    tag = "keys",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    responses(
        (status = 200, body = KeyCatalogueBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ),
)]
pub async fn rotate(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
) -> Result<HttpResponse, ApiError> {
    let cause = RotationCause::Manual(caller.owner.id, context);
    if !keys::rotate(&core, tenant.id, cause).await? {
        return Err(ApiError::Conflict(
            "Another rotation of this tenant's keys happened at the same moment.".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(catalogue(&core, tenant.id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyBody {
    /// The key to drop at once.
    pub kid: String,
    pub reason: String,
}

/// Requests dropping a key at once; a different person must approve it.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/keys/emergency",
    tag = "keys",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body = EmergencyBody,
    responses(
        (status = 202, description = "Waiting for a second person", body = KeyCatalogueBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn request_emergency(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    body: web::Json<EmergencyBody>,
) -> Result<HttpResponse, ApiError> {
    let requester = caller.owner.id;
    keys::request_emergency(
        &core,
        requester,
        tenant.id,
        &body.kid,
        &body.reason,
        &context,
    )
    .await?;
    Ok(HttpResponse::Accepted().json(catalogue(&core, tenant.id).await?))
}

/// Approves a pending emergency replacement (never the requester's own).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/keys/emergency/{id}/approve",
    tag = "keys",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The pending replacement's id"),
    ),
    responses(
        (status = 200, body = KeyCatalogueBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ),
)]
pub async fn approve_emergency(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    keys::approve_emergency(&core, caller.owner.id, tenant.id, &path.1, &context).await?;
    Ok(HttpResponse::Ok().json(catalogue(&core, tenant.id).await?))
}

impl From<KeyError> for ApiError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(e) => e.into(),
            KeyError::NotFound => Self::NotFound,
            KeyError::Refused(reason) => Self::Conflict(reason),
            other => Self::Internal(other.into()),
        }
    }
}
