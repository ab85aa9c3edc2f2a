//! `GET /api/v1/me`: who the key acts as, and what it may do.

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::rbac::Permission;
use crate::web::api::{ApiError, Caller};

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The key's id (never the key).
    pub key_id: String,
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    /// What the key may use: its permissions that the owner still holds somewhere.
    pub permissions: Vec<String>,
    /// The tenant ids the key is limited to; absent: every tenant the owner may act in.
    pub tenants: Option<Vec<String>>,
}

/// Who the key acts as, what it may do and where.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "me",
    responses(
        (status = 200, description = "The key's owner and permissions", body = Me),
        (status = 401, description = "No valid key", body = crate::web::api::problem::Problem),
    ),
)]
pub async fn get(Caller { caller, .. }: Caller) -> Result<HttpResponse, ApiError> {
    let permissions = caller
        .permissions
        .iter()
        .filter(|p| crate::domain::rbac::holds_anywhere(&caller.owner, **p))
        .map(|p: &Permission| p.as_str().to_owned())
        .collect();
    Ok(HttpResponse::Ok().json(Me {
        key_id: caller.key_id.clone(),
        user_id: caller.owner.id.to_string(),
        email: caller.owner.email.clone(),
        display_name: caller.owner.display_name.clone(),
        permissions,
        tenants: caller
            .tenants
            .as_ref()
            .map(|t| t.iter().map(ToString::to_string).collect()),
    }))
}
