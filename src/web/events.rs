//! The event log pages: the whole installation for security staff and superadmins, one tenant for
//! its own staff. Filters come in the query string (bookmarkable), pages by keyset cursor, and the
//! filtered result exports as CSV or JSON Lines, streamed page by page.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use askama::Template;
use futures_util::stream;
use serde::Deserialize;

use crate::clock::{format_rfc3339, format_utc};
use crate::domain::event_log::{self, ActorKind, Cursor, EventFilter, PAGE_SIZE, RawFilter};
use crate::domain::events::{EventRecord, EventType};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::{Core, audit};
use crate::domain::{tenants, users};
use crate::web::authz::TenantPage;
use crate::web::error::WebError;
use crate::web::extractors::CurrentUser;
use crate::web::{Nav, render};

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(flatten)]
    filter: RawFilter,
    #[serde(default)]
    before: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    format: String,
}

pub struct Row {
    at: String,
    tenant: Option<String>,
    actor_kind: String,
    actor_id: Option<String>,
    /// The person behind a user id (the id shows on hover).
    actor_name: Option<String>,
    actor_link: Option<String>,
    event_type: String,
    outcome: String,
    ip: Option<String>,
    country: Option<String>,
    subject: Option<String>,
    subject_name: Option<String>,
    details: String,
    credential: Option<String>,
    /// The console session the event belongs to (its public handle).
    session: Option<String>,
}

#[derive(Template)]
#[template(path = "events/log.html")]
pub struct LogPage {
    nav: Option<Nav>,
    title: String,
    /// Where the form submits and links point (`/admin/events` or `/t/{slug}/events`).
    base: String,
    global: bool,
    filter: RawFilter,
    error: Option<String>,
    rows: Vec<Row>,
    older: Option<String>,
    newer: Option<String>,
    export_query: String,
    types: Vec<&'static str>,
    actors: Vec<&'static str>,
    /// The global page shows the state of the tamper evidence.
    chain: Option<ChainStatus>,
    csrf_token: String,
}

pub struct ChainStatus {
    sealed: i64,
    waiting: i64,
    last_check: Option<String>,
    intact: Option<bool>,
    outcome: String,
    last_purge: Option<String>,
}

async fn chain_status(core: &Core) -> Result<ChainStatus, WebError> {
    let chain = audit::chain_state(core).await?;
    let last = chain.last_verification;
    let outcome = match &last {
        None => "never verified".to_owned(),
        Some(v) if v.ok == 1 => {
            format!("intact ({} events checked, run by {})", v.checked, v.run_by)
        }
        Some(v) => format!(
            "BROKEN at link {} (event {}): {}",
            v.broken_position.unwrap_or_default(),
            v.broken_event.as_deref().unwrap_or("?"),
            v.problem.as_deref().unwrap_or("?")
        ),
    };
    let last_purge = chain.last_purge.map(|run| {
        format!(
            "{} UTC: {} events older than {} removed",
            format_utc_seconds(run.ran_at),
            run.removed,
            format_utc(run.cutoff)
        )
    });
    Ok(ChainStatus {
        last_purge,
        sealed: chain.sealed,
        waiting: chain.waiting,
        last_check: last.as_ref().map(|v| format_utc_seconds(v.finished_at)),
        intact: last.map(|v| v.ok == 1),
        outcome,
    })
}

fn query_string(filter: &RawFilter) -> String {
    serde_urlencoded::to_string(filter).unwrap_or_default()
}

/// `?filters&extra` with empty fields left out, for links that keep the filter.
fn link(base: &str, filter: &RawFilter, extra: &str) -> String {
    let kept: Vec<String> = query_string(filter)
        .split('&')
        .filter(|pair| !pair.ends_with('=') && !pair.is_empty())
        .map(str::to_owned)
        .chain((!extra.is_empty()).then(|| extra.to_owned()))
        .collect();
    format!("{base}?{}", kept.join("&"))
}

fn cursor_of(query: &LogQuery) -> Option<Cursor> {
    Cursor::parse(&query.before, true).or_else(|| Cursor::parse(&query.after, false))
}

async fn tenant_slugs(
    core: &Core,
    rows: &[EventRecord],
) -> Result<HashMap<String, String>, WebError> {
    let mut slugs = HashMap::new();
    for id in rows.iter().filter_map(|r| r.tenant_id.as_deref()) {
        if slugs.contains_key(id) {
            continue;
        }
        if let Some(tenant) = TenantId::parse(id) {
            if let Some(found) = tenants::by_id(core, tenant).await? {
                slugs.insert(id.to_owned(), found.slug.to_string());
            }
        }
    }
    Ok(slugs)
}

/// The names of the people the events name (as actor or subject), in one query.
async fn people_named(
    core: &Core,
    rows: &[EventRecord],
) -> Result<HashMap<String, String>, WebError> {
    let mut ids: Vec<UserId> = rows
        .iter()
        .flat_map(|r| [r.actor_id.as_deref(), r.subject.as_deref()])
        .flatten()
        .filter_map(UserId::parse)
        .collect();
    ids.sort_by_key(ToString::to_string);
    ids.dedup();
    Ok(users::names(core, &ids).await?)
}

fn row(
    record: EventRecord,
    slugs: &HashMap<String, String>,
    people: &HashMap<String, String>,
    global: bool,
) -> Row {
    let details: serde_json::Value =
        serde_json::from_str(&record.details).unwrap_or(serde_json::Value::Null);
    let credential = details
        .get("credential")
        .and_then(|c| c.as_str())
        .map(str::to_owned);
    let tenant = record
        .tenant_id
        .as_ref()
        .map(|id| slugs.get(id).cloned().unwrap_or_else(|| id.clone()));
    let actor_link = match (&record.actor_id, record.actor_kind.as_str(), &tenant) {
        (Some(id), "user", _) if global => Some(format!("/admin/users/{id}")),
        (Some(id), "partner", Some(slug)) => Some(format!("/t/{slug}/requests/{id}")),
        _ => None,
    };
    let actor_name = record
        .actor_id
        .as_ref()
        .filter(|_| record.actor_kind == "user")
        .and_then(|id| people.get(id).cloned());
    Row {
        at: format_utc_seconds(record.occurred_at),
        tenant,
        actor_kind: record.actor_kind,
        actor_name,
        actor_id: record.actor_id,
        actor_link,
        event_type: record.event_type,
        outcome: record.outcome,
        ip: record.ip,
        country: record.country,
        subject_name: record
            .subject
            .as_ref()
            .and_then(|id| people.get(id).cloned()),
        subject: record.subject,
        details: record.details,
        credential,
        session: record.session,
    }
}

fn format_utc_seconds(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format_utc(ms))
}

async fn log_page(
    core: &Core,
    nav: Nav,
    base: String,
    title: String,
    forced: Option<TenantId>,
    query: LogQuery,
) -> Result<HttpResponse, WebError> {
    let global = forced.is_none();
    let csrf_token = nav.csrf_token.clone();
    let mut view = LogPage {
        chain: if global {
            Some(chain_status(core).await?)
        } else {
            None
        },
        csrf_token,
        nav: Some(nav),
        title,
        export_query: link("", &query.filter, "")
            .trim_start_matches('?')
            .to_owned(),
        base,
        global,
        error: None,
        rows: Vec::new(),
        older: None,
        newer: None,
        types: EventType::ALL.iter().map(|t| t.as_str()).collect(),
        actors: ActorKind::ALL.iter().map(|k| k.as_str()).collect(),
        filter: query.filter.clone(),
    };
    let filter = match event_log::resolve(core, &query.filter, forced).await {
        Ok(filter) => filter,
        Err(error) => {
            view.error = Some(error.to_string());
            return render(&view, StatusCode::BAD_REQUEST);
        }
    };
    let cursor = cursor_of(&query);
    let page = event_log::search(core, &filter, cursor.as_ref(), PAGE_SIZE).await?;
    let reading_newer = matches!(cursor, Some(Cursor::After(..)));
    let (first, last) = (page.rows.first(), page.rows.last());
    let has_older = if reading_newer { true } else { page.more };
    let has_newer = if reading_newer {
        page.more
    } else {
        cursor.is_some()
    };
    view.older = last.filter(|_| has_older).map(|r| {
        link(
            &view.base,
            &query.filter,
            &format!("before={}", Cursor::encode(r.occurred_at, &r.id)),
        )
    });
    view.newer = first.filter(|_| has_newer).map(|r| {
        link(
            &view.base,
            &query.filter,
            &format!("after={}", Cursor::encode(r.occurred_at, &r.id)),
        )
    });
    let slugs = tenant_slugs(core, &page.rows).await?;
    let people = people_named(core, &page.rows).await?;
    view.rows = page
        .rows
        .into_iter()
        .map(|r| row(r, &slugs, &people, global))
        .collect();
    render(&view, StatusCode::OK)
}

pub async fn global_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, WebError> {
    let nav = Nav::for_user(&current.user, current.csrf_token.clone());
    log_page(
        &core,
        nav,
        "/admin/events".into(),
        "Event log".into(),
        None,
        query.into_inner(),
    )
    .await
}

pub async fn tenant_get(
    core: web::Data<Core>,
    page: TenantPage,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, WebError> {
    let nav = Nav::in_tenant(&page.current, &page.tenant);
    let base = format!("/t/{}/events", page.tenant.slug);
    let title = format!("Events of {}", page.tenant.name);
    log_page(
        &core,
        nav,
        base,
        title,
        Some(page.tenant.id),
        query.into_inner(),
    )
    .await
}

/// Starts a verification of the whole chain in the background (it may take minutes on a large
/// log); the page shows the result when it is done.
pub async fn verify_post(
    core: web::Data<Core>,
    current: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let core = core.into_inner();
    let run_by = current.user.email.clone();
    tokio::spawn(async move {
        if let Err(e) = audit::verify(&core, &run_by).await {
            tracing::error!(error = %e, "event chain verification failed to run");
        }
    });
    Ok(crate::web::see_other("/admin/events?verifying=1"))
}

pub async fn global_export(
    core: web::Data<Core>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, WebError> {
    export(core, None, query.into_inner()).await
}

pub async fn tenant_export(
    core: web::Data<Core>,
    page: TenantPage,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, WebError> {
    export(core, Some(page.tenant.id), query.into_inner()).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    JsonLines,
}

/// Rows read per round trip while exporting.
const EXPORT_BATCH: i64 = 1_000;

/// Streams every matching event, newest first, one keyset page at a time: memory stays flat
/// however many rows match.
async fn export(
    core: web::Data<Core>,
    forced: Option<TenantId>,
    query: LogQuery,
) -> Result<HttpResponse, WebError> {
    let format = match query.format.as_str() {
        "csv" => Format::Csv,
        "jsonl" => Format::JsonLines,
        _ => return Err(WebError::BadRequest("Choose format=csv or format=jsonl.")),
    };
    let filter = event_log::resolve(&core, &query.filter, forced)
        .await
        .map_err(|_| {
            WebError::BadRequest("The filter is not valid; open the event log to see why.")
        })?;
    Ok(streamed(core, filter, format))
}

/// Every event matching `filter`, newest first, streamed in batches (memory stays flat however
/// long the log); shared by the console's download and the API's export.
pub(crate) fn streamed(core: web::Data<Core>, filter: EventFilter, format: Format) -> HttpResponse {
    let header = match format {
        Format::Csv => csv_line(&[
            "occurred_at",
            "tenant_id",
            "actor_kind",
            "actor_id",
            "subject",
            "event_type",
            "outcome",
            "ip",
            "country",
            "user_agent",
            "request_id",
            "session_id",
            "details",
        ]),
        Format::JsonLines => String::new(),
    };
    struct State {
        core: web::Data<Core>,
        filter: EventFilter,
        cursor: Option<Cursor>,
        header: Option<String>,
        done: bool,
    }
    let start = State {
        core,
        filter,
        cursor: None,
        header: Some(header),
        done: false,
    };
    let body = stream::unfold(start, move |mut state| async move {
        if let Some(header) = state.header.take() {
            return Some((Ok(web::Bytes::from(header)), state));
        }
        if state.done {
            return None;
        }
        let page = match event_log::search(
            &state.core,
            &state.filter,
            state.cursor.as_ref(),
            EXPORT_BATCH,
        )
        .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "event export failed part-way");
                state.done = true;
                return Some((
                    Err(actix_web::error::ErrorServiceUnavailable(
                        "export interrupted",
                    )),
                    state,
                ));
            }
        };
        state.done = !page.more;
        state.cursor = page
            .rows
            .last()
            .map(|r| Cursor::Before(r.occurred_at, r.id.clone()));
        let chunk: String = page.rows.iter().map(|r| encode(format, r)).collect();
        Some((Ok(web::Bytes::from(chunk)), state))
    });
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::JsonLines => ("application/x-ndjson", "jsonl"),
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"events.{extension}\""),
        ))
        .streaming(body)
}

fn encode(format: Format, r: &EventRecord) -> String {
    let at = format_rfc3339(r.occurred_at);
    match format {
        Format::Csv => csv_line(&[
            &at,
            r.tenant_id.as_deref().unwrap_or_default(),
            &r.actor_kind,
            r.actor_id.as_deref().unwrap_or_default(),
            r.subject.as_deref().unwrap_or_default(),
            &r.event_type,
            &r.outcome,
            r.ip.as_deref().unwrap_or_default(),
            r.country.as_deref().unwrap_or_default(),
            r.user_agent.as_deref().unwrap_or_default(),
            r.request_id.as_deref().unwrap_or_default(),
            r.session.as_deref().unwrap_or_default(),
            &r.details,
        ]),
        Format::JsonLines => {
            let details: serde_json::Value =
                serde_json::from_str(&r.details).unwrap_or(serde_json::Value::Null);
            let line = serde_json::json!({
                "id": r.id, "occurred_at": at, "tenant_id": r.tenant_id, "actor_kind": r.actor_kind,
                "actor_id": r.actor_id, "subject": r.subject, "event_type": r.event_type,
                "outcome": r.outcome, "ip": r.ip, "country": r.country, "user_agent": r.user_agent,
                "request_id": r.request_id, "session_id": r.session, "details": details,
            });
            format!("{line}\n")
        }
    }
}

/// One CSV record. Cells that a spreadsheet would run as a formula are prefixed with `'`.
fn csv_line(cells: &[&str]) -> String {
    let guarded: Vec<String> = cells
        .iter()
        .map(|cell| {
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{cell}")
            } else {
                (*cell).to_owned()
            }
        })
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    if writer.write_record(&guarded).is_err() {
        return String::new();
    }
    writer
        .into_inner()
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default()
}
