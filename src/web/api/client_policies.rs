//! What a client credential may do once authenticated: networks, tokens per minute, DPoP.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::domain::partners::policies::{self, ClientPolicy, PolicyChange};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant};

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyBody {
    /// The networks (CIDR) the client may call the token service from; empty: anywhere.
    pub networks: Vec<String>,
    /// Tokens the client may obtain per minute, across every instance.
    pub tokens_per_minute: u32,
    /// Every token request must carry a DPoP proof (RFC 9449); tokens are bound to its key.
    pub require_dpop: bool,
}

impl From<ClientPolicy> for PolicyBody {
    fn from(policy: ClientPolicy) -> Self {
        Self {
            networks: policy.network_entries(),
            tokens_per_minute: policy.tokens_per_minute,
            require_dpop: policy.require_dpop,
        }
    }
}

/// Policy fields as a mint or an update sends them; a field left out keeps its value (at mint:
/// the default — anywhere, 60 tokens per minute, DPoP optional).
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFields {
    /// CIDRs or addresses; an empty list allows every network.
    pub networks: Option<Vec<String>>,
    /// 1 to 1,000,000.
    pub tokens_per_minute: Option<i64>,
    pub require_dpop: Option<bool>,
}

impl PolicyFields {
    pub fn change(&self) -> Result<PolicyChange, ApiError> {
        let mut change = PolicyChange::default();
        if let Some(networks) = &self.networks {
            change = change.networks(networks)?;
        }
        if let Some(limit) = self.tokens_per_minute {
            change = change.tokens_per_minute(limit)?;
        }
        if let Some(required) = self.require_dpop {
            change = change.require_dpop(required);
        }
        Ok(change)
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_none() && self.tokens_per_minute.is_none() && self.require_dpop.is_none()
    }
}

/// A client's policy for its detail; none for API tokens.
pub async fn policy_of(
    core: &Core,
    tenant: TenantId,
    credential: &str,
    kind: &str,
) -> Result<Option<PolicyBody>, ApiError> {
    if kind != "client" {
        return Ok(None);
    }
    Ok(Some(
        policies::client_policy(core, tenant, credential)
            .await?
            .into(),
    ))
}

/// Changes a client's networks, issuance limit or DPoP requirement; every instance applies the
/// change at the client's next request.
#[utoipa::path(
    patch,
    path = "/api/v1/tenants/{tenant}/credentials/{id}/policy",
    tag = "credentials",
    params(
        ("tenant" = String, Path, description = "The tenant's slug", example = "acme"),
        ("id" = String, Path, description = "The credential's id"),
    ),
    request_body = PolicyFields,
    responses(
        (status = 200, body = PolicyBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn update(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    body: web::Json<PolicyFields>,
) -> Result<HttpResponse, ApiError> {
    if body.is_empty() {
        return Err(ApiError::unprocessable(
            "Send at least one of networks, tokens_per_minute, require_dpop.",
        ));
    }
    let change = body.change()?;
    let policy = policies::set_policy(
        &core,
        caller.owner.id,
        tenant.id,
        &path.1,
        &change,
        &context,
    )
    .await?;
    Ok(HttpResponse::Ok().json(PolicyBody::from(policy)))
}
