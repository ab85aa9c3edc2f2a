//! The event log: the console's filters with cursor paging, every tenant's (global permission) or
//! one tenant's.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::event_log::{self, Cursor, RawFilter};
use crate::domain::events::EventRecord;
use crate::domain::ids::TenantId;
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, InTenant, Page, Paging};

#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody {
    pub id: String,
    pub occurred_at: String,
    pub tenant_id: Option<String>,
    /// `user`, `client`, `partner`, `cli`, `system` or `anonymous`.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub subject: Option<String>,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `success` or `failure`.
    pub outcome: String,
    pub ip: Option<String>,
    pub country: Option<String>,
    pub request_id: Option<String>,
    /// What the event records (never a secret).
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<EventRecord> for EventBody {
    fn from(e: EventRecord) -> Self {
        Self {
            occurred_at: format_rfc3339(e.occurred_at),
            details: serde_json::from_str(&e.details).unwrap_or(Value::String(e.details)),
            id: e.id,
            tenant_id: e.tenant_id,
            actor_kind: e.actor_kind,
            actor_id: e.actor_id,
            subject: e.subject,
            event_type: e.event_type,
            outcome: e.outcome,
            ip: e.ip,
            country: e.country,
            request_id: e.request_id,
        }
    }
}

/// The console's event-log filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// From this day or minute (UTC): `2026-11-24` or `2026-11-24T08:30`.
    pub from: Option<String>,
    /// Until this day (inclusive) or minute (UTC).
    pub to: Option<String>,
    /// A tenant's slug (the global log only).
    pub tenant: Option<String>,
    /// `user`, `client`, `partner`, `cli`, `system` or `anonymous`.
    pub actor: Option<String>,
    pub actor_id: Option<String>,
    /// An event type, like `credential_revoked`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// An address or a network (CIDR).
    pub ip: Option<String>,
    pub country: Option<String>,
    /// The subject or actor id, exactly.
    pub text: Option<String>,
    /// Text inside the details.
    pub detail: Option<String>,
}

impl EventQuery {
    fn raw(&self) -> RawFilter {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        RawFilter {
            from: text(&self.from),
            to: text(&self.to),
            tenant: text(&self.tenant),
            actor: text(&self.actor),
            actor_id: text(&self.actor_id),
            event_type: text(&self.event_type),
            outcome: text(&self.outcome),
            ip: text(&self.ip),
            country: text(&self.country),
            text: text(&self.text),
            detail: text(&self.detail),
            session: String::new(),
        }
    }
}

async fn resolved(
    core: &Core,
    query: &EventQuery,
    forced: Option<TenantId>,
) -> Result<event_log::EventFilter, ApiError> {
    event_log::resolve(core, &query.raw(), forced)
        .await
        .map_err(|e| ApiError::Unprocessable {
            detail: format!("{} {}", e.field, e.problem),
            field: Some(e.field.to_owned()),
        })
}

async fn page(
    core: &Core,
    query: &EventQuery,
    paging: &Paging,
    forced: Option<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let limit = paging.limit()?;
    let filter = resolved(core, query, forced).await?;
    let cursor = match paging.cursor.as_deref() {
        Some(raw) => Some(
            Cursor::parse(raw, true).ok_or_else(|| ApiError::Unprocessable {
                detail: "The cursor is not one this list gave out.".into(),
                field: Some("cursor".into()),
            })?,
        ),
        None => None,
    };
    let found = event_log::search(core, &filter, cursor.as_ref(), limit).await?;
    let next_cursor = found
        .more
        .then(|| {
            found
                .rows
                .last()
                .map(|e| Cursor::encode(e.occurred_at, &e.id))
        })
        .flatten();
    Ok(HttpResponse::Ok().json(Page {
        items: found.rows.into_iter().map(EventBody::from).collect(),
        next_cursor,
    }))
}

/// Every tenant's events, newest first, with the log's filters.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(EventQuery, Paging),
    responses(
        (status = 200, body = Page<EventBody>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    query: web::Query<EventQuery>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    page(&core, &query, &paging, None).await
}

/// One tenant's events, newest first, with the log's filters.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{tenant}/events",
    tag = "events",
    params(("tenant" = String, Path, description = "The tenant's slug", example = "acme"), EventQuery, Paging),
    responses(
        (status = 200, body = Page<EventBody>),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn tenant_list(
    core: web::Data<Core>,
    InTenant(tenant): InTenant,
    query: web::Query<EventQuery>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    page(&core, &query, &paging, Some(tenant.id)).await
}

/// Every event matching the filters as NDJSON (one JSON object a line), newest first, streamed.
#[utoipa::path(
    get,
    path = "/api/v1/events/export",
    tag = "events",
    params(EventQuery),
    responses(
        (status = 200, description = "One event per line", content_type = "application/x-ndjson", body = String),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn export(
    core: web::Data<Core>,
    query: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = resolved(&core, &query, None).await?;
    Ok(crate::web::events::streamed(
        core,
        filter,
        crate::web::events::Format::JsonLines,
    ))
}
