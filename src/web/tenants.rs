//! Tenant pages: the switcher, the superadmin's tenant list and creation form, each tenant's home
//! (with its colour band and logo), settings, logo, suspension.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::approvals::{self, Action, ApprovalError, Change};
use crate::domain::principal::Principal;
use crate::domain::rbac::Permission;
use crate::domain::tenants::{
    self, BrandColour, NewTenant, Slug, Tenant, TenantError, TenantStatus, validate_logo,
};
use crate::web::approvals::{refusal_status, requested};
use crate::web::authz::TenantPage;
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser};
use crate::web::{Nav, TenantBand, render, see_other, upload};

const SWITCHER_LIMIT: i64 = 50;

const SUGGESTIONS: i64 = 10;
/// Tenants per page of Manage tenants.
const ADMIN_PAGE: i64 = 50;

pub struct TenantRow {
    slug: String,
    name: String,
    suspended: bool,
    /// The same kind of page in this tenant as the one the person switches from.
    href: String,
}

impl TenantRow {
    fn new(tenant: &Tenant, section: Section) -> Self {
        Self {
            slug: tenant.slug.to_string(),
            name: tenant.name.clone(),
            suspended: tenant.status == TenantStatus::Suspended,
            href: section.in_tenant(tenant.slug.as_str()),
        }
    }
}

impl From<&Tenant> for TenantRow {
    fn from(tenant: &Tenant) -> Self {
        Self::new(tenant, Section::Home)
    }
}

/// A kind of page every tenant has: switching tenants keeps the person on it (Credentials of
/// Acme → Credentials of Globex). A page about one item (a grant, a request) has no counterpart
/// elsewhere; its list does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Home,
    Credentials,
    Requests,
    Scopes,
    Keys,
    Events,
    Alerts,
    Settings,
}

impl Section {
    fn parse(raw: &str) -> Self {
        match raw {
            "credentials" | "grants" => Self::Credentials,
            "requests" => Self::Requests,
            "scopes" => Self::Scopes,
            "keys" => Self::Keys,
            "events" => Self::Events,
            "alerts" => Self::Alerts,
            "settings" => Self::Settings,
            _ => Self::Home,
        }
    }

    /// The section of a console path (`/t/{slug}/{section}/…`).
    fn of_path(path: &str) -> Self {
        let mut parts = path.trim_start_matches('/').split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("t"), Some(_), Some(section)) => Self::parse(section),
            _ => Self::Home,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Home => "",
            Self::Credentials => "credentials",
            Self::Requests => "requests",
            Self::Scopes => "scopes",
            Self::Keys => "keys",
            Self::Events => "events",
            Self::Alerts => "alerts",
            Self::Settings => "settings",
        }
    }

    fn in_tenant(self, slug: &str) -> String {
        match self {
            Self::Home => format!("/t/{slug}"),
            section => format!("/t/{slug}/{}", section.as_str()),
        }
    }

    /// `then` when the switcher says where to go; otherwise the page it was used from.
    fn wanted(then: Option<&str>, req: &HttpRequest) -> Self {
        match then {
            Some(then) => Self::parse(then),
            None => req
                .headers()
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| url::Url::parse(r).ok())
                .map_or(Self::Home, |url| Self::of_path(url.path())),
        }
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    /// The kind of page to open in the chosen tenant.
    then: Option<String>,
    /// Sent by the top bar's search: a single match opens at once.
    #[serde(default)]
    go: Option<String>,
    /// The slug of the last tenant of the previous page.
    #[serde(default)]
    after: Option<String>,
}

/// The tenants this session worked in lately that the person may still enter, most recent first.
async fn recent_tenants(core: &Core, current: &CurrentUser) -> Result<Vec<Tenant>, WebError> {
    let slugs = current.session.recent_tenants();
    Ok(tenants::still_enterable(core, &current.user, &slugs).await?)
}

/// The tenants this person may act in, searched on the server (fast with thousands).
pub async fn visible_tenants(
    core: &Core,
    current: &CurrentUser,
    search: &str,
    limit: i64,
) -> Result<Vec<Tenant>, WebError> {
    Ok(tenants::visible_to(core, &current.user, search, limit).await?)
}

#[derive(Template)]
#[template(path = "tenants/switcher.html")]
pub struct SwitcherPage {
    nav: Option<Nav>,
    query: String,
    then: &'static str,
    recent: Vec<TenantRow>,
    tenants: Vec<TenantRow>,
    /// The next page's link, when there are more tenants.
    next: Option<String>,
}

/// The tenant switcher without script: search, then pick (a single match from the top bar opens
/// at once); recently used tenants first.
pub async fn switcher_get(
    core: web::Data<Core>,
    current: CurrentUser,
    req: HttpRequest,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, WebError> {
    let section = Section::wanted(query.then.as_deref(), &req);
    let search = query.q.trim();
    let after = match query.after.as_deref() {
        Some(slug) => tenants::by_slug(&core, slug).await?,
        None => None,
    };
    let mut tenants = tenants::page_visible_to(
        &core,
        &current.user,
        None,
        search,
        after.as_ref().map(|t| (t.name.as_str(), t.slug.as_str())),
        SWITCHER_LIMIT + 1,
    )
    .await?;
    let more = tenants.len() as i64 > SWITCHER_LIMIT;
    tenants.truncate(SWITCHER_LIMIT as usize);
    if let ([only], Some(_), false) = (tenants.as_slice(), &query.go, search.is_empty()) {
        return Ok(see_other(&section.in_tenant(only.slug.as_str())));
    }
    let next = match (more, tenants.last()) {
        (true, Some(last)) => Some(format!(
            "/tenants?{}",
            serde_urlencoded::to_string([
                ("q", search),
                ("then", section.as_str()),
                ("after", last.slug.as_str()),
            ])
            .map_err(WebError::unexpected)?
        )),
        _ => None,
    };
    let recent = if search.is_empty() && after.is_none() {
        recent_tenants(&core, &current).await?
    } else {
        Vec::new()
    };
    let page = SwitcherPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        query: search.to_owned(),
        then: section.as_str(),
        recent: recent.iter().map(|t| TenantRow::new(t, section)).collect(),
        tenants: tenants.iter().map(|t| TenantRow::new(t, section)).collect(),
        next,
    };
    render(&page, StatusCode::OK)
}

#[derive(serde::Serialize)]
struct Suggestion {
    name: String,
    slug: String,
    href: String,
    recent: bool,
}

/// The top bar's search as you type (JSON): matching tenants, or with nothing typed the recently
/// used ones first.
pub async fn suggest_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, WebError> {
    let section = Section::parse(query.then.as_deref().unwrap_or(""));
    let search = query.q.trim();
    let recent = if search.is_empty() {
        recent_tenants(&core, &current).await?
    } else {
        Vec::new()
    };
    let matching = visible_tenants(&core, &current, search, SUGGESTIONS).await?;
    let suggestion = |tenant: &Tenant, recent: bool| Suggestion {
        name: tenant.name.clone(),
        slug: tenant.slug.to_string(),
        href: section.in_tenant(tenant.slug.as_str()),
        recent,
    };
    let mut suggestions: Vec<Suggestion> = recent.iter().map(|t| suggestion(t, true)).collect();
    for tenant in &matching {
        if !recent.iter().any(|r| r.id == tenant.id) {
            suggestions.push(suggestion(tenant, false));
        }
    }
    suggestions.truncate(SUGGESTIONS as usize);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(suggestions))
}

#[derive(Template, Default)]
#[template(path = "tenants/admin.html")]
pub struct AdminPage {
    nav: Option<Nav>,
    csrf_token: String,
    tenants: Vec<TenantRow>,
    /// The search the list shows.
    query: String,
    /// The next page's link, when there are more tenants.
    next: Option<String>,
    name: String,
    slug: String,
    colour: String,
    name_error: Option<String>,
    slug_error: Option<String>,
    colour_error: Option<String>,
    logo_error: Option<String>,
}

/// The list's search and position, as they travel in the query string.
#[derive(Deserialize, serde::Serialize, Default)]
pub struct AdminQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    q: String,
    /// The slug of the last tenant of the previous page (keyset paging by name, then slug).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    after: String,
}

async fn admin_page(
    core: &Core,
    current: &CurrentUser,
    query: &AdminQuery,
) -> Result<AdminPage, WebError> {
    let search = query.q.trim();
    let after = match query.after.as_str() {
        "" => None,
        slug => tenants::by_slug(core, slug).await?,
    };
    let mut found = tenants::page_visible_to(
        core,
        &current.user,
        None,
        search,
        after.as_ref().map(|t| (t.name.as_str(), t.slug.as_str())),
        ADMIN_PAGE + 1,
    )
    .await?;
    let more = found.len() as i64 > ADMIN_PAGE;
    found.truncate(ADMIN_PAGE as usize);
    let next = match (more, found.last()) {
        (true, Some(last)) => Some(format!(
            "/admin/tenants?{}",
            serde_urlencoded::to_string(AdminQuery {
                q: search.to_owned(),
                after: last.slug.to_string(),
            })
            .map_err(WebError::unexpected)?
        )),
        _ => None,
    };
    Ok(AdminPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        tenants: found.iter().map(TenantRow::from).collect(),
        query: search.to_owned(),
        next,
        colour: "#2851c8".into(),
        ..AdminPage::default()
    })
}

pub async fn admin_list_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<AdminQuery>,
) -> Result<HttpResponse, WebError> {
    render(&admin_page(&core, &current, &query).await?, StatusCode::OK)
}

pub async fn create_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let fields = upload::form(&req, &mut payload).await?;
    let text = |name: &str| {
        fields
            .get(name)
            .map(upload::Field::text)
            .unwrap_or_default()
    };
    let mut page = admin_page(&core, &current, &AdminQuery::default()).await?;
    page.name = text("name").trim().to_owned();
    page.slug = text("slug").trim().to_owned();
    page.colour = text("colour").trim().to_owned();

    let name = tenants::parse_name(&page.name)
        .map_err(|e| page.name_error = Some(e.to_string()))
        .ok();
    let slug = Slug::parse(&page.slug)
        .map_err(|e| page.slug_error = Some(e.to_string()))
        .ok();
    let colour = BrandColour::parse(&page.colour)
        .map_err(|e| page.colour_error = Some(e.to_string()))
        .ok();
    let logo = match fields.get("logo").filter(|f| !f.data.is_empty()) {
        None => Ok(None),
        Some(file) => validate_logo(file.data.to_vec()).map(Some),
    }
    .map_err(|e| page.logo_error = Some(e.to_string()))
    .ok();
    let (Some(name), Some(slug), Some(colour), Some(logo)) = (name, slug, colour, logo) else {
        return render(&page, StatusCode::BAD_REQUEST);
    };
    let created = tenants::create(
        &core,
        current.user.id,
        NewTenant {
            name,
            slug: slug.clone(),
            colour,
            logo,
        },
        &client,
    )
    .await;
    match created {
        Ok(_) => Ok(see_other(&format!("/t/{slug}"))),
        Err(TenantError::SlugTaken) => {
            page.slug_error = Some(TenantError::SlugTaken.to_string());
            render(&page, StatusCode::CONFLICT)
        }
        Err(other) => Err(tenant_error(other)),
    }
}

#[derive(Template)]
#[template(path = "tenants/home.html")]
pub struct HomePage {
    nav: Option<Nav>,
    name: String,
    slug: String,
    status: &'static str,
    created: String,
    can_manage: bool,
    can_view_requests: bool,
    can_view_credentials: bool,
    can_manage_scopes: bool,
    can_view_keys: bool,
    can_view_events: bool,
    can_view_alerts: bool,
}

pub async fn home_get(page: TenantPage) -> Result<HttpResponse, WebError> {
    let can_manage = page.may(Permission::ManageTenants);
    let may = |permission| page.may(permission);
    let tenant = &page.tenant;
    let view = HomePage {
        nav: Some(Nav::in_tenant(&page.current, tenant)),
        name: tenant.name.clone(),
        slug: tenant.slug.to_string(),
        status: tenant.status.as_str(),
        created: format_utc(tenant.created_at),
        can_manage,
        can_view_requests: may(Permission::ViewRequests),
        can_view_credentials: may(Permission::ViewCredentials),
        can_manage_scopes: may(Permission::ManageScopes),
        can_view_keys: may(Permission::ViewKeys),
        can_view_events: may(Permission::ViewEvents),
        can_view_alerts: may(Permission::ViewAlerts),
    };
    render(&view, StatusCode::OK)
}

/// Logos are public (the partner request page shows them) and served only with the content type
/// validated at upload; `nosniff` stops browsers from guessing otherwise.
pub async fn logo_get(
    core: web::Data<Core>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let (bytes, content_type) = tenants::logo(&core, &path)
        .await?
        .ok_or(WebError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::CONTENT_DISPOSITION, "inline"))
        .body(bytes))
}

/// The tenant's colours as a stylesheet (the CSP allows no inline styles). Values are validated
/// `#rrggbb` colours, so nothing user-typed reaches the CSS.
pub async fn theme_get(
    core: web::Data<Core>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let tenant = tenants::by_slug(&core, &path)
        .await?
        .ok_or(WebError::NotFound)?;
    let css = format!(
        ".tenant-band, .current-tenant {{ background: {bg}; color: {fg}; }}\n.tenant-band a {{ color: {fg}; }}\n",
        bg = tenant.colour.hex(),
        fg = tenant.colour.text_colour()
    );
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
        .body(css))
}

#[derive(Template, Default)]
#[template(path = "tenants/settings.html")]
pub struct SettingsPage {
    nav: Option<Nav>,
    csrf_token: String,
    name: String,
    slug: String,
    suspended: bool,
    /// Someone besides this person could approve a suspension.
    second_person: bool,
    /// The suspension waiting for approval, if one was asked for.
    pending_suspension: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn settings_page(core: &Core, page: &TenantPage) -> Result<SettingsPage, WebError> {
    let suspension = Action::SuspendTenant {
        tenant: page.tenant.id,
    };
    Ok(SettingsPage {
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        csrf_token: page.current.csrf_token.clone(),
        name: page.tenant.name.clone(),
        slug: page.tenant.slug.to_string(),
        suspended: page.tenant.status == TenantStatus::Suspended,
        second_person: approvals::second_person_exists(core, &page.current.user, &suspension)
            .await?,
        pending_suspension: approvals::pending_for(core, &suspension)
            .await?
            .map(|a| a.id),
        ..SettingsPage::default()
    })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn settings_get(
    core: web::Data<Core>,
    page: TenantPage,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let mut view = settings_page(&core, &page).await?;
    view.notice = match query.notice.as_deref() {
        Some("logo") => Some("Logo updated."),
        Some("reactivated") => Some("Tenant reactivated."),
        _ => None,
    };
    render(&view, StatusCode::OK)
}

pub async fn logo_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, WebError> {
    let fields = upload::form(&req, &mut payload).await?;
    let outcome = match fields.get("logo").filter(|f| !f.data.is_empty()) {
        None => Err("Choose an image file.".to_owned()),
        Some(file) => validate_logo(file.data.to_vec()).map_err(|e| e.to_string()),
    };
    match outcome {
        Ok(logo) => {
            tenants::replace_logo(&core, page.current.user.id, &page.tenant, logo, &client)
                .await
                .map_err(tenant_error)?;
            Ok(see_other(&format!(
                "/t/{}/settings?notice=logo",
                page.tenant.slug
            )))
        }
        Err(message) => {
            let mut view = settings_page(&core, &page).await?;
            view.error = Some(message);
            render(&view, StatusCode::BAD_REQUEST)
        }
    }
}

#[derive(Deserialize)]
pub struct SuspendForm {
    #[serde(default)]
    confirm_slug: String,
    #[serde(default)]
    reason: String,
}

/// Asks for the tenant's suspension; a second superadmin approves it on the request's page.
pub async fn suspend_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    form: web::Form<SuspendForm>,
) -> Result<HttpResponse, WebError> {
    let outcome = tenants::set_status(
        &core,
        Principal::Person(&page.current.user),
        &page.tenant,
        TenantStatus::Suspended,
        Some(&form.confirm_slug),
        &form.reason,
        &client,
    )
    .await;
    let (error, status) = match outcome {
        Ok(Change::AwaitingApproval(approval)) => return Ok(requested(&approval)),
        Ok(Change::Done) => {
            return Ok(see_other(&format!("/t/{}/settings", page.tenant.slug)));
        }
        Err(error @ TenantError::ConfirmationMismatch) => {
            (error.to_string(), StatusCode::BAD_REQUEST)
        }
        Err(TenantError::Approval(
            refusal @ (ApprovalError::Store(_) | ApprovalError::Keys(_) | ApprovalError::NotFound),
        )) => return Err(refusal.into()),
        Err(TenantError::Approval(refusal)) => (refusal.to_string(), refusal_status(&refusal)),
        Err(other) => return Err(tenant_error(other)),
    };
    let mut view = settings_page(&core, &page).await?;
    view.error = Some(error);
    render(&view, status)
}

pub async fn reactivate_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
) -> Result<HttpResponse, WebError> {
    tenants::set_status(
        &core,
        Principal::Person(&page.current.user),
        &page.tenant,
        TenantStatus::Active,
        None,
        "",
        &client,
    )
    .await
    .map_err(tenant_error)?;
    Ok(see_other(&format!(
        "/t/{}/settings?notice=reactivated",
        page.tenant.slug
    )))
}

fn tenant_error(error: TenantError) -> WebError {
    match error {
        TenantError::Store(e) => e.into(),
        TenantError::Approval(refusal) => refusal.into(),
        other => WebError::unexpected(other),
    }
}

/// The colour band of a tenant page.
pub fn band(tenant: &Tenant) -> TenantBand {
    TenantBand {
        name: tenant.name.clone(),
        slug: tenant.slug.to_string(),
        colour: tenant.colour.hex(),
        text_colour: tenant.colour.text_colour(),
        has_logo: tenant.has_logo,
        suspended: tenant.status == TenantStatus::Suspended,
    }
}
