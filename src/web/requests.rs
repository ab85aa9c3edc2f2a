//! Partner access inside a tenant, for staff: the scope catalogue, the request queue and decisions.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::ids::UserId;
use crate::domain::partners::{self, AccessRequest, PartnerError, RequestStatus, Scope};
use crate::domain::rbac::Permission;
use crate::domain::users;
use crate::web::authz::TenantPage;
use crate::web::error::WebError;
use crate::web::extractors::Client;
use crate::web::{Nav, render, see_other};

#[derive(Template)]
#[template(path = "partners/scopes.html")]
pub struct ScopesPage {
    nav: Option<Nav>,
    csrf_token: String,
    slug: String,
    scopes: Vec<Scope>,
    error: Option<String>,
}

async fn scopes_page(core: &Core, page: &TenantPage) -> Result<ScopesPage, WebError> {
    Ok(ScopesPage {
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        csrf_token: page.current.csrf_token.clone(),
        slug: page.tenant.slug.to_string(),
        scopes: partners::scopes(core, page.tenant.id).await?,
        error: None,
    })
}

pub async fn scopes_get(core: web::Data<Core>, page: TenantPage) -> Result<HttpResponse, WebError> {
    render(&scopes_page(&core, &page).await?, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct ScopeForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

pub async fn scope_add_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    form: web::Form<ScopeForm>,
) -> Result<HttpResponse, WebError> {
    let actor = page.current.user.id;
    let tenant = page.tenant.id;
    match partners::add_scope(&core, actor, tenant, &form.name, &form.description, &client).await {
        Ok(_) => Ok(see_other(&format!("/t/{}/scopes", page.tenant.slug))),
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(error) => {
            let mut view = scopes_page(&core, &page).await?;
            view.error = Some(error.to_string());
            render(&view, StatusCode::BAD_REQUEST)
        }
    }
}

pub async fn scope_remove_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    partners::remove_scope(
        &core,
        page.current.user.id,
        page.tenant.id,
        &path.1,
        &client,
    )
    .await?;
    Ok(see_other(&format!("/t/{}/scopes", page.tenant.slug)))
}

pub struct RequestRow {
    id: String,
    organisation: String,
    email: String,
    scopes: String,
    status: &'static str,
    submitted: String,
}

#[derive(Template)]
#[template(path = "partners/requests.html")]
pub struct RequestsPage {
    nav: Option<Nav>,
    slug: String,
    requests: Vec<RequestRow>,
    /// The next (older) page's cursor.
    older: Option<String>,
    /// Whether this is a later page (a link back to the newest).
    paged: bool,
}

/// Requests per page of the queue.
const REQUESTS_PAGE: i64 = 50;

#[derive(Deserialize)]
pub struct QueueQuery {
    /// The cursor of the previous page.
    after: Option<String>,
}

pub async fn requests_get(
    core: web::Data<Core>,
    page: TenantPage,
    query: web::Query<QueueQuery>,
) -> Result<HttpResponse, WebError> {
    let found = partners::requests(
        &core,
        page.tenant.id,
        None,
        query.after.as_deref(),
        REQUESTS_PAGE,
    )
    .await?;
    let requests = found
        .requests
        .into_iter()
        .map(|r| RequestRow {
            scopes: r.scopes.join(", "),
            status: r.status.as_str(),
            submitted: format_utc(r.created_at),
            id: r.id,
            organisation: r.organisation,
            email: r.email,
        })
        .collect();
    let view = RequestsPage {
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        slug: page.tenant.slug.to_string(),
        requests,
        older: found.next,
        paged: query.after.is_some(),
    };
    render(&view, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "partners/request.html")]
pub struct RequestDetailPage {
    nav: Option<Nav>,
    csrf_token: String,
    slug: String,
    tenant_name: String,
    request: AccessRequest,
    submitted: String,
    decided: Option<String>,
    decided_by: Option<String>,
    pending: bool,
    can_decide: bool,
    error: Option<String>,
}

async fn request_page(
    core: &Core,
    page: &TenantPage,
    id: &str,
) -> Result<RequestDetailPage, WebError> {
    let request = partners::request(core, page.tenant.id, id).await?;
    let decided_by = match request.decided_by.as_deref().and_then(UserId::parse) {
        Some(id) => users::find(core, id).await?.map(|u| u.display_name),
        None => None,
    };
    Ok(RequestDetailPage {
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        csrf_token: page.current.csrf_token.clone(),
        slug: page.tenant.slug.to_string(),
        tenant_name: page.tenant.name.clone(),
        submitted: format_utc(request.created_at),
        decided: request.decided_at.map(format_utc),
        decided_by,
        pending: request.status == RequestStatus::Pending,
        can_decide: page.may(Permission::DecideRequests),
        request,
        error: None,
    })
}

pub async fn request_get(
    core: web::Data<Core>,
    page: TenantPage,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    render(&request_page(&core, &page, &path.1).await?, StatusCode::OK)
}

fn pairs(body: &[u8]) -> Result<Vec<(String, String)>, WebError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| WebError::BadRequest("The form could not be read."))
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

async fn decision_refused(
    core: &Core,
    page: &TenantPage,
    id: &str,
    error: PartnerError,
) -> Result<HttpResponse, WebError> {
    if let PartnerError::Store(e) = error {
        return Err(e.into());
    }
    let status = if matches!(error, PartnerError::AlreadyDecided) {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut view = request_page(core, page, id).await?;
    view.error = Some(error.to_string());
    render(&view, status)
}

pub async fn approve_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let id = &path.1;
    let request = partners::request(&core, page.tenant.id, id).await?;
    let form = pairs(&body)?;
    let scopes: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let user = page.current.user.id;
    let approved = match partners::parse_days(field(&form, "max_lifetime_days")) {
        Ok(days) => {
            partners::approve(&core, user, &page.tenant, &request, scopes, days, &client).await
        }
        Err(error) => Err(error),
    };
    match approved {
        Ok(grant) => Ok(see_other(&format!(
            "/t/{}/grants/{grant}?notice=approved",
            page.tenant.slug
        ))),
        Err(error) => decision_refused(&core, &page, id, error).await,
    }
}

#[derive(Deserialize)]
pub struct DenyForm {
    #[serde(default)]
    reason: String,
}

pub async fn deny_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<DenyForm>,
) -> Result<HttpResponse, WebError> {
    let id = &path.1;
    let request = partners::request(&core, page.tenant.id, id).await?;
    match partners::deny(
        &core,
        page.current.user.id,
        &page.tenant,
        &request,
        &form.reason,
        &client,
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!("/t/{}/requests/{id}", page.tenant.slug))),
        Err(error) => decision_refused(&core, &page, id, error).await,
    }
}
