//! A tenant's signing keys: the catalogue, rotation now, and asking for an emergency replacement
//! (approved by a different person with a passkey, in the console: see `api::approvals`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::approvals::{self, Action};
use crate::domain::keys::{self, KeyCatalogue, KeyError, RotationCause};
use crate::domain::principal::Principal;
use crate::domain::tenants;
use crate::web::api::approvals::{ApprovalBody, accepted};
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
    /// The approval request's id (`/api/v1/approvals/{id}`).
    pub id: String,
    pub kid: String,
    pub reason: String,
    /// The requester's id.
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
    let KeyCatalogue { keys } = keys::catalogue(core, tenant).await?;
    let pending = approvals::pending_key_replacement(core, tenant).await?;
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
            kid: match &p.action {
                Action::ReplaceSigningKey { kid, .. } => kid.clone(),
                _ => String::new(),
            },
            id: p.id,
            reason: p.reason,
            requested_by: p.requested_by.to_string(),
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

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DpopNonceBody {
    /// DPoP proofs at the tenant's token endpoint must carry a nonce it handed out (RFC 9449 §8).
    pub required: bool,
}

/// Whether DPoP proofs must carry a server nonce. The token endpoint answers a proof without one
/// with `use_dpop_nonce` and the nonce in `DPoP-Nonce`, and sends a fresh one with every token.
#[utoipa::path(
    put,
    path = "/api/v1/tenants/{tenant}/dpop-nonce",
    tag = "keys",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body = DpopNonceBody,
    responses(
        (status = 200, body = DpopNonceBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn set_dpop_nonce(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    body: web::Json<DpopNonceBody>,
) -> Result<HttpResponse, ApiError> {
    tenants::set_dpop_nonce(&core, caller.owner.id, &tenant, body.required, &context).await?;
    Ok(HttpResponse::Ok().json(DpopNonceBody {
        required: body.required,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyBody {
    /// The key to drop at once.
    pub kid: String,
    pub reason: String,
}

/// Asks for dropping a key at once; a different superadmin approves it with a passkey in the
/// console. Answers the approval request.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/keys/emergency",
    tag = "keys",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme")),
    request_body = EmergencyBody,
    responses(
        (status = 202, description = "Waiting for a second person", body = ApprovalBody),
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
    let action = Action::ReplaceSigningKey {
        tenant: tenant.id,
        kid: body.kid.trim().to_owned(),
    };
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
