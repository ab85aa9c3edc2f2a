//! The approvals queue: requests for dangerous actions waiting for a second person, each with its
//! page where an eligible person approves or rejects it (behind a fresh passkey, the route table's
//! step-up) and the requester may cancel it. The forms that ask for such actions live with their
//! areas (keys, staff, tenants, credentials) and land here.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::approvals::{self, Approval, ApprovalError, ApprovalStatus};
use crate::domain::ids::UserId;
use crate::domain::users;
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser};
use crate::web::{Nav, render, see_other};

/// Pending requests per page of the queue.
const QUEUE_PAGE: i64 = 50;
/// Recent decisions shown under the queue.
const RECENT: i64 = 20;

pub struct ApprovalRow {
    id: String,
    kind: &'static str,
    summary: String,
    reason: String,
    requested_by: String,
    requested_at: String,
    expires_at: String,
    status: &'static str,
    decided_by: Option<String>,
    decided_at: Option<String>,
    note: Option<String>,
    mine: bool,
    /// Why this person may not decide it, when they may not (shown instead of a button).
    why_not: Option<String>,
}

async fn rows(
    core: &Core,
    current: &CurrentUser,
    approvals: Vec<Approval>,
) -> Result<Vec<ApprovalRow>, WebError> {
    let people: Vec<UserId> = approvals
        .iter()
        .flat_map(|a| std::iter::once(a.requested_by).chain(a.decided_by))
        .collect();
    let names = users::names(core, &people).await?;
    let name = |id: UserId| {
        names
            .get(&id.to_string())
            .cloned()
            .unwrap_or_else(|| id.to_string())
    };
    let now = core.clock.now_ms();
    let mut described = Vec::with_capacity(approvals.len());
    for approval in approvals {
        let why_not = match approvals::check_decider(core, &current.user, &approval).await {
            Ok(()) => None,
            Err(ApprovalError::Store(e)) => return Err(e.into()),
            Err(reason) => Some(reason.to_string()),
        };
        described.push(ApprovalRow {
            summary: approval.action.describe(core).await?,
            kind: approval.action.kind(),
            requested_by: name(approval.requested_by),
            requested_at: format_utc(approval.requested_at),
            expires_at: format_utc(approval.expires_at),
            status: approval.status_at(now).as_str(),
            decided_by: approval.decided_by.map(name),
            decided_at: approval.decided_at.map(format_utc),
            mine: approval.requested_by == current.user.id,
            why_not,
            id: approval.id,
            reason: approval.reason,
            note: approval.note,
        });
    }
    Ok(described)
}

#[derive(Template)]
#[template(path = "approvals/queue.html")]
pub struct QueuePage {
    nav: Option<Nav>,
    pending: Vec<ApprovalRow>,
    recent: Vec<ApprovalRow>,
    next: Option<String>,
    paged: bool,
}

#[derive(Deserialize)]
pub struct QueueQuery {
    cursor: Option<String>,
}

pub async fn queue_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, WebError> {
    let cursor = query.cursor.as_deref();
    let (pending, next) = approvals::page(&core, true, cursor, QUEUE_PAGE).await?;
    let (recent, _) = approvals::page(&core, false, None, RECENT).await?;
    let recent = recent
        .into_iter()
        .filter(|a| a.status != ApprovalStatus::Pending)
        .collect();
    let page = QueuePage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        pending: rows(&core, &current, pending).await?,
        recent: rows(&core, &current, recent).await?,
        next,
        paged: cursor.is_some(),
    };
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "approvals/approval.html")]
pub struct ApprovalPage {
    nav: Option<Nav>,
    csrf_token: String,
    approval: ApprovalRow,
    pending: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn approval_page(
    core: &Core,
    current: &CurrentUser,
    id: &str,
) -> Result<ApprovalPage, WebError> {
    let approval = approvals::get(core, id).await?;
    let pending = approval.status_at(core.clock.now_ms()) == ApprovalStatus::Pending;
    let approval = rows(core, current, vec![approval])
        .await?
        .pop()
        .ok_or(WebError::NotFound)?;
    Ok(ApprovalPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        approval,
        pending,
        notice: None,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn approval_get(
    core: web::Data<Core>,
    current: CurrentUser,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = approval_page(&core, &current, &path).await?;
    page.notice = match query.notice.as_deref() {
        Some("requested") => Some(
            "Requested. The people who may approve it were told by e-mail; nothing changes until one of them approves.",
        ),
        Some("approved") => Some("Approved and carried out."),
        Some("rejected") => Some("Rejected. Nothing changed; the requester was told."),
        Some("cancelled") => Some("Cancelled. Nothing changed."),
        _ => None,
    };
    render(&page, StatusCode::OK)
}

/// The status a refused step answers with.
pub fn refusal_status(error: &ApprovalError) -> StatusCode {
    match error {
        ApprovalError::NotFound => StatusCode::NOT_FOUND,
        ApprovalError::NoReason => StatusCode::BAD_REQUEST,
        ApprovalError::OwnRequest
        | ApprovalError::AboutYou
        | ApprovalError::NotEligible(_)
        | ApprovalError::NotRequester => StatusCode::FORBIDDEN,
        _ => StatusCode::CONFLICT,
    }
}

/// Where a successful request for approval leads: its page.
pub fn requested(approval: &Approval) -> HttpResponse {
    see_other(&format!("/approvals/{}?notice=requested", approval.id))
}

async fn after_step(
    core: &Core,
    current: &CurrentUser,
    id: &str,
    outcome: Result<Approval, ApprovalError>,
    notice: &str,
) -> Result<HttpResponse, WebError> {
    match outcome {
        Ok(_) => Ok(see_other(&format!("/approvals/{id}?notice={notice}"))),
        Err(
            error @ (ApprovalError::Store(_) | ApprovalError::Keys(_) | ApprovalError::NotFound),
        ) => Err(error.into()),
        Err(error) => {
            let mut page = approval_page(core, current, id).await?;
            let status = refusal_status(&error);
            page.error = Some(error.to_string());
            render(&page, status)
        }
    }
}

pub async fn approve_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let outcome = approvals::approve(&core, &current.user, &path, &client).await;
    after_step(&core, &current, &path, outcome, "approved").await
}

#[derive(Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    note: String,
}

pub async fn reject_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
    form: web::Form<RejectForm>,
) -> Result<HttpResponse, WebError> {
    let outcome = approvals::reject(&core, &current.user, &path, &form.note, &client).await;
    after_step(&core, &current, &path, outcome, "rejected").await
}

pub async fn cancel_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let outcome = approvals::cancel(&core, &current.user, &path, &client).await;
    after_step(&core, &current, &path, outcome, "cancelled").await
}
