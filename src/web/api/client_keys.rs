//! A client credential's public keys (private_key_jwt): register one, remove one. A public key is
//! not a secret; registering needs the same permission as minting.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::partners::client_keys::{self, ClientKeyRow};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant};

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientKeyBody {
    pub id: String,
    /// The RFC 7638 SHA-256 thumbprint, base64url: what the client may send as `kid`.
    pub thumbprint: String,
    /// `EdDSA`, `ES256`, `RS256` or `PS256`.
    pub algorithm: String,
    /// The public JWK as registered.
    #[schema(value_type = Object)]
    pub jwk: serde_json::Value,
    pub created_at: String,
    pub removed_at: Option<String>,
}

impl From<ClientKeyRow> for ClientKeyBody {
    fn from(row: ClientKeyRow) -> Self {
        Self {
            jwk: serde_json::from_str(&row.public_jwk).unwrap_or_default(),
            created_at: format_rfc3339(row.created_at),
            removed_at: row.removed_at.map(format_rfc3339),
            id: row.id,
            thumbprint: row.thumbprint,
            algorithm: row.algorithm,
        }
    }
}

/// The keys of a credential, as its detail lists them.
pub async fn keys_of(
    core: &Core,
    tenant: crate::domain::ids::TenantId,
    credential: &str,
) -> Result<Vec<ClientKeyBody>, ApiError> {
    Ok(client_keys::client_keys(core, tenant, credential)
        .await?
        .into_iter()
        .map(ClientKeyBody::from)
        .collect())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    /// The public key as a JWK: Ed25519 (`OKP`), P-256 (`EC`) or RSA of at least 2048 bits.
    #[schema(value_type = Object)]
    pub jwk: serde_json::Value,
}

/// Registers a public key the client may sign its assertions with (two live keys at most).
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{tenant}/credentials/{id}/keys",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The credential's id"),
    ),
    request_body = NewKeyBody,
    responses(
        (status = 201, body = ClientKeyBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn add(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<NewKeyBody>,
) -> Result<HttpResponse, ApiError> {
    let raw = body.jwk.to_string();
    let key =
        client_keys::add_client_key(&core, caller.owner.id, tenant.id, &path.1, &raw, &context)
            .await?;
    Ok(HttpResponse::Created().json(ClientKeyBody::from(key)))
}

/// Removes a key: assertions signed by it fail at once.
#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{tenant}/credentials/{id}/keys/{key}",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The credential's id"),
        ("key" = String, Path, description = "The key's id"),
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
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, credential, key) = path.into_inner();
    client_keys::remove_client_key(
        &core,
        caller.owner.id,
        tenant.id,
        &credential,
        &key,
        &context,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
