//! Approvals by key: the queue, one request, cancelling one's own. Actions that wait for a second
//! person answer `202 Accepted` with the request (`ApprovalBody`). Approving or rejecting needs a
//! fresh passkey, so it happens in the console only (`console_url`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::approvals::{self, Approval, ApprovalError};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, Page, page_limit};

#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalBody {
    pub id: String,
    /// `replace_signing_key`, `grant_role`, `remove_role`, `deactivate_superadmin`,
    /// `suspend_tenant`, `revoke_tenant` or `recover_account`.
    pub kind: String,
    /// The action in words.
    pub summary: String,
    /// The tenant it is in (id), for tenant actions.
    pub tenant_id: Option<String>,
    /// The person it is about (id), who may never decide it.
    pub subject_id: Option<String>,
    pub reason: String,
    pub requested_by: String,
    pub requested_at: String,
    pub expires_at: String,
    /// `pending`, `executed`, `rejected`, `cancelled` or `expired`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub note: Option<String>,
    /// Where an eligible person approves or rejects it, with a passkey.
    pub console_url: String,
}

pub async fn body(core: &Core, approval: Approval) -> Result<ApprovalBody, ApiError> {
    let console_url = core
        .public_url
        .join(&format!("/approvals/{}", approval.id))
        .map_err(|e| ApiError::Internal(e.into()))?
        .to_string();
    Ok(ApprovalBody {
        kind: approval.action.kind().to_owned(),
        summary: approval.action.describe(core).await?,
        tenant_id: approval.action.tenant().map(|t| t.to_string()),
        subject_id: approval.action.subject().map(|u| u.to_string()),
        requested_by: approval.requested_by.to_string(),
        requested_at: format_rfc3339(approval.requested_at),
        expires_at: format_rfc3339(approval.expires_at),
        status: approval.status_at(core.clock.now_ms()).as_str().to_owned(),
        decided_by: approval.decided_by.map(|u| u.to_string()),
        decided_at: approval.decided_at.map(format_rfc3339),
        id: approval.id,
        reason: approval.reason,
        note: approval.note,
        console_url,
    })
}

/// The answer to an action that now waits for a second person.
pub async fn accepted(core: &Core, approval: Approval) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(body(core, approval).await?))
}

/// The approvals list's filter and position.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalQuery {
    /// `pending` (the default) or `all`.
    pub status: Option<String>,
    /// At most this many items (default 50, at most 500).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Approval requests, newest first: those waiting (default) or all.
#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    tag = "approvals",
    params(ApprovalQuery),
    responses(
        (status = 200, body = Page<ApprovalBody>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    query: web::Query<ApprovalQuery>,
) -> Result<HttpResponse, ApiError> {
    let pending_only = match query.status.as_deref() {
        None | Some("pending") => true,
        Some("all") => false,
        Some(_) => {
            return Err(ApiError::Unprocessable {
                detail: "status is pending or all.".into(),
                field: Some("status".into()),
            });
        }
    };
    let limit = page_limit(query.limit)?;
    let (found, next) =
        approvals::page(&core, pending_only, query.cursor.as_deref(), limit).await?;
    let mut items = Vec::with_capacity(found.len());
    for approval in found {
        items.push(body(&core, approval).await?);
    }
    Ok(HttpResponse::Ok().json(Page {
        items,
        next_cursor: next,
    }))
}

/// One approval request.
#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}",
    tag = "approvals",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn get(core: web::Data<Core>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let approval = approvals::get(&core, &path).await?;
    Ok(HttpResponse::Ok().json(body(&core, approval).await?))
}

/// Withdraws one's own pending request; nothing changes.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/cancel",
    tag = "approvals",
    params(("id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem),
    ),
)]
pub async fn cancel(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let approval = approvals::cancel(&core, &caller.owner, &path, &context).await?;
    Ok(HttpResponse::Ok().json(body(&core, approval).await?))
}

impl From<ApprovalError> for ApiError {
    fn from(error: ApprovalError) -> Self {
        match error {
            ApprovalError::Store(e) => e.into(),
            ApprovalError::Keys(e) => e.into(),
            ApprovalError::NotFound => Self::NotFound,
            ApprovalError::NoReason => Self::Unprocessable {
                detail: error.to_string(),
                field: Some("reason".into()),
            },
            ApprovalError::OwnRequest
            | ApprovalError::AboutYou
            | ApprovalError::NotEligible(_)
            | ApprovalError::NotRequester => Self::Refused(error.to_string()),
            other => Self::Conflict(other.to_string()),
        }
    }
}
