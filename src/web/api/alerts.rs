//! Suspicious-activity alerts: the queue (every tenant's, or one tenant's), one alert with its
//! evidence and notes, and the work on it — status, assignment, notes (each an event).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::alerts::{self, AlertAction, AlertError, AlertFile, AlertRow, AlertStatus};
use crate::domain::ids::TenantId;
use crate::web::api::events::EventBody;
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, InTenant, Page, Paging};

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertBody {
    pub id: String,
    pub tenant_id: Option<String>,
    pub detector: String,
    /// `low`, `medium` or `high`.
    pub severity: String,
    /// `open`, `acknowledged`, `resolved` or `false_positive`.
    pub status: String,
    pub reason: String,
    pub subject: Option<String>,
    pub assignee_email: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub evidence_count: i64,
}

impl From<AlertRow> for AlertBody {
    fn from(a: AlertRow) -> Self {
        Self {
            severity: a.severity.as_str().to_owned(),
            status: a.status.as_str().to_owned(),
            created_at: format_rfc3339(a.created_at),
            updated_at: format_rfc3339(a.updated_at),
            id: a.id,
            tenant_id: a.tenant_id,
            detector: a.detector,
            reason: a.reason,
            subject: a.subject,
            assignee_email: a.assignee_email,
            evidence_count: a.evidence_count,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Include resolved and dismissed alerts.
    pub all: Option<bool>,
}

async fn queue(
    core: &Core,
    tenant: Option<TenantId>,
    query: &QueueQuery,
    paging: &Paging,
) -> Result<HttpResponse, ApiError> {
    let open_only = !query.all.unwrap_or(false);
    let limit = paging.limit()?;
    let found = alerts::queue(core, tenant, open_only, paging.cursor.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(Page {
        items: found.alerts.into_iter().map(AlertBody::from).collect(),
        next_cursor: found.next,
    }))
}

/// Every tenant's alerts that still wait for someone, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    params(QueueQuery, Paging),
    responses(
        (status = 200, body = Page<AlertBody>),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    query: web::Query<QueueQuery>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    queue(&core, None, &query, &paging).await
}

/// One tenant's alerts, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/alerts",
    tag = "alerts",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme"), QueueQuery, Paging),
    responses(
        (status = 200, body = Page<AlertBody>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn tenant_list(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    query: web::Query<QueueQuery>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    queue(&core, Some(tenant.id), &query, &paging).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoteBody {
    pub author_email: String,
    pub body: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDetail {
    pub alert: AlertBody,
    /// The events that raised it.
    pub evidence: Vec<EventBody>,
    pub notes: Vec<NoteBody>,
}

async fn detail(core: &Core, id: &str) -> Result<HttpResponse, ApiError> {
    let AlertFile {
        alert,
        evidence,
        notes,
    } = alerts::open_file(core, id).await?;
    Ok(HttpResponse::Ok().json(AlertDetail {
        alert: alert.into(),
        evidence: evidence.into_iter().map(EventBody::from).collect(),
        notes: notes
            .into_iter()
            .map(|n| NoteBody {
                author_email: n.author_email,
                body: n.body,
                created_at: format_rfc3339(n.created_at),
            })
            .collect(),
    }))
}

/// One alert with its evidence and notes.
#[utoipa::path(
    get,
    path = "/api/v1/alerts/{id}",
    tag = "alerts",
    params(("id" = String, Path, description = "The alert's id")),
    responses(
        (status = 200, body = AlertDetail),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn get(core: web::Data<Core>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    detail(&core, &path).await
}

/// Work on an alert: set its status, take it, or add a note (exactly one of them).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertWork {
    /// `acknowledged`, `resolved`, `false_positive` or `open`.
    pub status: Option<String>,
    /// Assign the alert to the key's owner.
    pub assign_to_me: Option<bool>,
    pub note: Option<String>,
}

/// Sets the status, takes the alert, or adds a note; answers the alert as it now stands.
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}",
    tag = "alerts",
    params(("id" = String, Path, description = "The alert's id")),
    request_body = AlertWork,
    responses(
        (status = 200, body = AlertDetail),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn work(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    path: web::Path<String>,
    body: web::Json<AlertWork>,
) -> Result<HttpResponse, ApiError> {
    let action = match (&body.status, body.assign_to_me, &body.note) {
        (Some(status), None, None) => {
            AlertAction::SetStatus(AlertStatus::parse(status).ok_or_else(|| {
                ApiError::Unprocessable {
                    detail: format!("Unknown status {status:?}."),
                    field: Some("status".into()),
                }
            })?)
        }
        (None, Some(true), None) => AlertAction::AssignToMe,
        (None, None, Some(note)) => AlertAction::Note(note),
        _ => {
            return Err(ApiError::unprocessable(
                "Send exactly one of status, assign_to_me (true) or note.",
            ));
        }
    };
    alerts::work_on(&core, caller.owner.id, &path, action, &context).await?;
    detail(&core, &path).await
}

impl From<AlertError> for ApiError {
    fn from(error: AlertError) -> Self {
        match error {
            AlertError::NotFound => Self::NotFound,
            AlertError::Store(e) => e.into(),
            AlertError::Invalid(message) => Self::unprocessable(message),
            AlertError::Refused(message) => Self::Conflict(message),
        }
    }
}
