//! The alerts queue: security staff see every tenant's alerts and work on them; a tenant's admins
//! see that tenant's.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::alerts::{
    self, AlertAction, AlertError, AlertFile, AlertNote, AlertRow, AlertStatus,
};
use crate::domain::events::EventRecord;
use crate::domain::rbac::Permission;
use crate::web::authz::TenantPage;
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser};
use crate::web::{Nav, render, see_other};

/// Alerts per page of the queue.
const QUEUE_PAGE: i64 = 50;

pub struct AlertView {
    id: String,
    severity: &'static str,
    status: &'static str,
    detector: String,
    reason: String,
    subject: Option<String>,
    assignee: Option<String>,
    created: String,
    evidence_count: i64,
}

impl From<AlertRow> for AlertView {
    fn from(row: AlertRow) -> Self {
        Self {
            id: row.id,
            severity: row.severity.as_str(),
            status: row.status.as_str(),
            detector: row.detector,
            reason: row.reason,
            subject: row.subject,
            assignee: row.assignee_email,
            created: format_utc(row.created_at),
            evidence_count: row.evidence_count,
        }
    }
}

#[derive(Template)]
#[template(path = "alerts/queue.html")]
pub struct QueuePage {
    nav: Option<Nav>,
    title: String,
    base: String,
    alerts: Vec<AlertView>,
    show_all: bool,
    can_open: bool,
    /// The next (older) page's cursor.
    older: Option<String>,
    /// Whether this is a later page (a link back to the newest).
    paged: bool,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    /// The cursor of the previous page.
    after: Option<String>,
    #[serde(default)]
    all: String,
}

pub async fn queue_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, WebError> {
    let show_all = query.all == "1";
    let found = alerts::queue(&core, None, !show_all, query.after.as_deref(), QUEUE_PAGE).await?;
    let base = "/admin/alerts".to_owned();
    let view = QueuePage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        title: "Alerts".into(),
        older: found.next,
        paged: query.after.is_some(),
        base,
        alerts: found.alerts.into_iter().map(AlertView::from).collect(),
        show_all,
        can_open: true,
    };
    render(&view, StatusCode::OK)
}

pub async fn tenant_queue_get(
    core: web::Data<Core>,
    page: TenantPage,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, WebError> {
    let show_all = query.all == "1";
    let found = alerts::queue(
        &core,
        Some(page.tenant.id),
        !show_all,
        query.after.as_deref(),
        QUEUE_PAGE,
    )
    .await?;
    let base = format!("/t/{}/alerts", page.tenant.slug);
    let view = QueuePage {
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        title: format!("Alerts of {}", page.tenant.name),
        older: found.next,
        paged: query.after.is_some(),
        base,
        alerts: found.alerts.into_iter().map(AlertView::from).collect(),
        show_all,
        can_open: page.current.may(Permission::ViewAlerts),
    };
    render(&view, StatusCode::OK)
}

pub struct EvidenceRow {
    at: String,
    event_type: String,
    outcome: String,
    ip: Option<String>,
    subject: Option<String>,
    details: String,
}

impl From<EventRecord> for EvidenceRow {
    fn from(e: EventRecord) -> Self {
        Self {
            at: format_utc(e.occurred_at),
            event_type: e.event_type,
            outcome: e.outcome,
            ip: e.ip,
            subject: e.subject,
            details: e.details,
        }
    }
}

#[derive(Template)]
#[template(path = "alerts/alert.html")]
pub struct AlertPage {
    nav: Option<Nav>,
    csrf_token: String,
    alert: AlertView,
    evidence: Vec<EvidenceRow>,
    notes: Vec<(String, String, String)>,
    can_manage: bool,
    statuses: Vec<&'static str>,
    /// One-click responses that apply: (value, label).
    responses: Vec<(&'static str, &'static str)>,
    error: Option<String>,
}

async fn alert_page(core: &Core, current: &CurrentUser, id: &str) -> Result<AlertPage, WebError> {
    let AlertFile {
        alert,
        evidence,
        notes,
    } = alerts::open_file(core, id).await?;
    let can_manage = current.may(Permission::ManageAlerts);
    let responses = if can_manage {
        alerts::responses_for(core, &alert)
            .await?
            .into_iter()
            .map(|r| (r.as_str(), r.label()))
            .collect()
    } else {
        Vec::new()
    };
    let notes = notes
        .into_iter()
        .map(|n: AlertNote| (n.author_email, format_utc(n.created_at), n.body))
        .collect();
    Ok(AlertPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        alert: alert.into(),
        evidence: evidence.into_iter().map(EvidenceRow::from).collect(),
        notes,
        can_manage,
        statuses: AlertStatus::ALL.iter().map(|s| s.as_str()).collect(),
        responses,
        error: None,
    })
}

pub async fn alert_get(
    core: web::Data<Core>,
    current: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    render(&alert_page(&core, &current, &path).await?, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct RespondForm {
    #[serde(default)]
    response: String,
}

/// A one-click response, behind a fresh passkey.
pub async fn respond_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
    form: web::Form<RespondForm>,
) -> Result<HttpResponse, WebError> {
    let response = alerts::Response::parse(&form.response)
        .ok_or(WebError::BadRequest("That is not a response to an alert."))?;
    match alerts::respond(&core, current.user.id, &path, response, &client).await {
        Ok(()) => Ok(see_other(&format!("/admin/alerts/{}", path.as_str()))),
        Err(AlertError::Invalid(message)) => {
            let mut view = alert_page(&core, &current, &path).await?;
            view.error = Some(message.to_owned());
            render(&view, StatusCode::CONFLICT)
        }
        Err(AlertError::Refused(message)) => {
            let mut view = alert_page(&core, &current, &path).await?;
            view.error = Some(message);
            render(&view, StatusCode::CONFLICT)
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct WorkForm {
    #[serde(default)]
    status: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    assign: String,
}

/// One form for the three kinds of work: a status change, "assign to me", or a note.
pub async fn work_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
    form: web::Form<WorkForm>,
) -> Result<HttpResponse, WebError> {
    let action = if form.assign == "me" {
        AlertAction::AssignToMe
    } else if !form.status.is_empty() {
        match AlertStatus::parse(&form.status) {
            Some(status) => AlertAction::SetStatus(status),
            None => {
                return Err(WebError::BadRequest(
                    "That is not a status an alert can have.",
                ));
            }
        }
    } else {
        AlertAction::Note(&form.note)
    };
    match alerts::work_on(&core, current.user.id, &path, action, &client).await {
        Ok(()) => Ok(see_other(&format!("/admin/alerts/{}", path.as_str()))),
        Err(AlertError::NotFound) => Err(WebError::NotFound),
        Err(AlertError::Store(e)) => Err(e.into()),
        Err(AlertError::Refused(message)) => Err(WebError::Conflict(message)),
        Err(AlertError::Invalid(message)) => {
            let mut view = alert_page(&core, &current, &path).await?;
            view.error = Some(message.to_owned());
            render(&view, StatusCode::BAD_REQUEST)
        }
    }
}
