//! Staff administration: the staff list, one person's roles and status. Invitations live in
//! `web::invitations`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::approvals::{self, Action, ApprovalError, Change};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::principal::Principal;
use crate::domain::rbac::{Permission, Role};
use crate::domain::staff::{self, Grant, StaffError};
use crate::domain::tenants;
use crate::domain::users::{self, User, UserStatus};
use crate::web::approvals::{refusal_status, requested};
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser};
use crate::web::{Nav, render, see_other};

pub struct StaffRow {
    id: String,
    name: String,
    email: String,
    status: &'static str,
    roles: String,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct StaffPage {
    nav: Option<Nav>,
    staff: Vec<StaffRow>,
    can_invite: bool,
    query: String,
    /// The next page's link, when there are more people.
    next: Option<String>,
}

/// People per page of the staff list.
const STAFF_PAGE: i64 = 50;

/// The staff list's search and position, as they travel in the query string.
#[derive(Deserialize, serde::Serialize, Default)]
pub struct StaffQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    q: String,
    /// The id of the last person of the previous page.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    after: String,
}

/// "Support — acme-bank" for a tenant role; the role alone for global ones.
async fn describe_roles(
    core: &Core,
    user: &User,
) -> Result<Vec<(String, String, String)>, WebError> {
    let mut described = Vec::new();
    for assignment in &user.roles {
        let scope = match assignment.tenant_id.as_deref().and_then(TenantId::parse) {
            Some(id) => tenants::by_id(core, id)
                .await?
                .map_or_else(|| "unknown tenant".to_owned(), |t| t.slug.to_string()),
            None => "all tenants".to_owned(),
        };
        described.push((
            assignment.id.clone(),
            assignment.role.label().to_owned(),
            scope,
        ));
    }
    Ok(described)
}

pub async fn list_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<StaffQuery>,
) -> Result<HttpResponse, WebError> {
    let search = query.q.trim();
    let mut people =
        users::page(&core, search, UserId::parse(&query.after), STAFF_PAGE + 1).await?;
    let more = people.len() as i64 > STAFF_PAGE;
    people.truncate(STAFF_PAGE as usize);
    let next = match (more, people.last()) {
        (true, Some(last)) => Some(format!(
            "/admin/users?{}",
            serde_urlencoded::to_string(StaffQuery {
                q: search.to_owned(),
                after: last.id.to_string(),
            })
            .map_err(WebError::unexpected)?
        )),
        _ => None,
    };
    let mut staff = Vec::new();
    for user in people {
        let roles = describe_roles(&core, &user)
            .await?
            .into_iter()
            .map(|(_, role, scope)| format!("{role} ({scope})"))
            .collect::<Vec<_>>()
            .join(", ");
        staff.push(StaffRow {
            id: user.id.to_string(),
            status: user.status.as_str(),
            roles,
            name: user.display_name,
            email: user.email,
        });
    }
    let page = StaffPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        can_invite: current.may(Permission::ManageStaff),
        staff,
        query: search.to_owned(),
        next,
    };
    render(&page, StatusCode::OK)
}

pub struct RoleRow {
    id: String,
    role: String,
    scope: String,
    /// Superadmin and security: removing it waits for a second superadmin.
    needs_approval: bool,
}

/// Roles in the order offered, least privilege first, so the default choice is the safest.
pub(crate) fn role_choices() -> Vec<(&'static str, &'static str)> {
    [
        Role::Support,
        Role::TenantAdmin,
        Role::Security,
        Role::Superadmin,
    ]
    .iter()
    .map(|r| (r.as_str(), r.label()))
    .collect()
}

/// A tenant a role form offers to pick.
pub struct TenantOption {
    pub slug: String,
    pub label: String,
}

/// How many matches a role form offers when what was typed names no tenant exactly.
const TENANT_MATCHES: i64 = 20;

/// The tenant field of a role form (a search field, never a list of every tenant).
pub(crate) enum TenantField {
    /// Left empty: a global role.
    Global,
    Tenant(TenantId),
    /// Part of a name or slug: the form comes back with these to pick from, never a guess.
    PickFrom(Vec<TenantOption>),
}

impl TenantField {
    /// A slug (or id) names its tenant; anything else is searched among the tenants the person
    /// may act in. Whether the role may be given there is the grant's rule, checked when given.
    pub(crate) async fn read(
        core: &Core,
        current: &CurrentUser,
        typed: &str,
    ) -> Result<Self, WebError> {
        let typed = typed.trim();
        if typed.is_empty() {
            return Ok(Self::Global);
        }
        if let Some(id) = TenantId::parse(typed) {
            return Ok(Self::Tenant(id));
        }
        if let Some(tenant) = tenants::by_slug(core, typed).await? {
            return Ok(Self::Tenant(tenant.id));
        }
        let matches = tenants::visible_to(core, &current.user, typed, TENANT_MATCHES).await?;
        Ok(Self::PickFrom(
            matches
                .iter()
                .map(|t| TenantOption {
                    slug: t.slug.to_string(),
                    label: format!("{} ({})", t.name, t.slug),
                })
                .collect(),
        ))
    }

    /// Why the form came back instead of acting.
    pub(crate) fn pick_message(typed: &str, matches: &[TenantOption]) -> String {
        let typed = typed.trim();
        if matches.is_empty() {
            format!("No tenant matches “{typed}”. Type part of its name or its slug.")
        } else {
            format!("No tenant has the slug “{typed}”: pick one of the matching tenants.")
        }
    }
}

#[derive(Template)]
#[template(path = "admin/user.html")]
pub struct UserPage {
    nav: Option<Nav>,
    csrf_token: String,
    id: String,
    name: String,
    email: String,
    active: bool,
    created: String,
    roles: Vec<RoleRow>,
    can_manage: bool,
    /// Deactivating them waits for a second superadmin.
    about_superadmin: bool,
    /// Someone besides the viewer (and this person) could approve a superadmin-only change.
    second_superadmin: bool,
    /// The viewer may ask for this person's assisted recovery, and someone could approve it.
    can_recover: bool,
    recovery_second_person: bool,
    /// The role form as it was sent, when it comes back to pick a tenant.
    role_chosen: String,
    tenant_typed: String,
    tenant_matches: Vec<TenantOption>,
    role_names: Vec<(&'static str, &'static str)>,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn subject(core: &Core, raw: &str) -> Result<User, WebError> {
    let id = UserId::parse(raw).ok_or(WebError::NotFound)?;
    users::find(core, id).await?.ok_or(WebError::NotFound)
}

async fn user_page(core: &Core, current: &CurrentUser, user: User) -> Result<UserPage, WebError> {
    let roles = describe_roles(core, &user)
        .await?
        .into_iter()
        .zip(&user.roles)
        .map(|((id, role, scope), held)| RoleRow {
            id,
            role,
            scope,
            needs_approval: held.role.is_global(),
        })
        .collect();
    let me = &current.user;
    let about_superadmin = approvals::is_superadmin(&user);
    let role_change = Action::GrantRole {
        user: user.id,
        role: Role::Superadmin,
    };
    let recovery = Action::RecoverAccount { user: user.id };
    let can_recover =
        user.status == UserStatus::Active && approvals::may_request(core, me, &recovery).await?;
    Ok(UserPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        id: user.id.to_string(),
        name: user.display_name,
        email: user.email,
        active: user.status == UserStatus::Active,
        created: format_utc(user.created_at),
        roles,
        can_manage: current.may(Permission::ManageStaff),
        about_superadmin,
        second_superadmin: approvals::second_person_exists(core, me, &role_change).await?,
        can_recover,
        recovery_second_person: can_recover
            && approvals::second_person_exists(core, me, &recovery).await?,
        role_chosen: String::new(),
        tenant_typed: String::new(),
        tenant_matches: Vec::new(),
        role_names: role_choices(),
        notice: None,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    pub notice: Option<String>,
}

pub async fn detail_get(
    core: web::Data<Core>,
    current: CurrentUser,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let user = subject(&core, &path).await?;
    let mut page = user_page(&core, &current, user).await?;
    page.notice = match query.notice.as_deref() {
        Some("granted") => Some("Role granted. It applies from their next click."),
        Some("revoked") => Some("Role removed. It stops applying from their next click."),
        Some("deactivated") => Some("Account deactivated; every session of it has ended."),
        Some("reactivated") => Some("Account reactivated. They sign in again to get a session."),
        _ => None,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant: String,
    /// Why: needed for the roles a second superadmin approves.
    #[serde(default)]
    reason: String,
}

/// The reason typed on a form that may lead to an approval request.
#[derive(Deserialize)]
pub struct ReasonForm {
    #[serde(default)]
    reason: String,
}

pub(crate) fn parse_role(role: &str) -> Result<Role, StaffError> {
    Role::parse(role).ok_or(StaffError::UnknownRole)
}

async fn staff_error_page(
    core: &Core,
    current: &CurrentUser,
    user: User,
    error: StaffError,
) -> Result<HttpResponse, WebError> {
    match error {
        StaffError::Store(e) | StaffError::Approval(ApprovalError::Store(e)) => {
            return Err(e.into());
        }
        StaffError::Approval(ApprovalError::Keys(e)) => return Err(e.into()),
        _ => {}
    }
    let status = match &error {
        StaffError::Approval(refusal) => refusal_status(refusal),
        StaffError::NotFound => StatusCode::NOT_FOUND,
        StaffError::DuplicateRole | StaffError::AlreadyStaff => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut page = user_page(core, current, user).await?;
    page.error = Some(error.to_string());
    render(&page, status)
}

pub async fn role_grant_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
    form: web::Form<GrantForm>,
) -> Result<HttpResponse, WebError> {
    let user = subject(&core, &path).await?;
    let tenant = match TenantField::read(&core, &current, &form.tenant).await? {
        TenantField::Global => None,
        TenantField::Tenant(id) => Some(id),
        TenantField::PickFrom(matches) => {
            let mut page = user_page(&core, &current, user).await?;
            page.error = Some(TenantField::pick_message(&form.tenant, &matches));
            page.role_chosen = form.role.clone();
            page.tenant_typed = form.tenant.trim().to_owned();
            page.tenant_matches = matches;
            return render(&page, StatusCode::BAD_REQUEST);
        }
    };
    let outcome = async {
        let role = parse_role(&form.role)?;
        let grant = Grant::new(&core, role, tenant).await?;
        staff::grant_role(
            &core,
            Principal::Person(&current.user),
            user.id,
            grant,
            &form.reason,
            &client,
        )
        .await
    }
    .await;
    match outcome {
        Ok(change) => Ok(changed(change, user.id, "granted")),
        Err(error) => staff_error_page(&core, &current, user, error).await,
    }
}

pub async fn role_revoke_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, WebError> {
    let (user_raw, assignment) = path.into_inner();
    let user = subject(&core, &user_raw).await?;
    let me = &current.user;
    match staff::revoke_role(
        &core,
        Principal::Person(me),
        user.id,
        &assignment,
        &form.reason,
        &client,
    )
    .await
    {
        Ok(change) => Ok(changed(change, user.id, "revoked")),
        Err(error) => staff_error_page(&core, &current, user, error).await,
    }
}

/// Done now: back to the person's page with a notice; waiting: the approval request's page.
fn changed(change: Change, user: UserId, notice: &str) -> HttpResponse {
    match change {
        Change::Done => see_other(&format!("/admin/users/{user}?notice={notice}")),
        Change::AwaitingApproval(approval) => requested(&approval),
    }
}

async fn change_status(
    core: &Core,
    current: &CurrentUser,
    client: &crate::domain::events::RequestContext,
    raw: &str,
    status: UserStatus,
    reason: &str,
) -> Result<HttpResponse, WebError> {
    let user = subject(core, raw).await?;
    let notice = match status {
        UserStatus::Deactivated => "deactivated",
        UserStatus::Active => "reactivated",
    };
    match staff::set_status(
        core,
        Principal::Person(&current.user),
        user.id,
        status,
        reason,
        client,
    )
    .await
    {
        Ok(change) => Ok(changed(change, user.id, notice)),
        Err(error) => staff_error_page(core, current, user, error).await,
    }
}

pub async fn deactivate_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, WebError> {
    let status = UserStatus::Deactivated;
    change_status(&core, &current, &client, &path, status, &form.reason).await
}

pub async fn reactivate_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    change_status(&core, &current, &client, &path, UserStatus::Active, "").await
}

/// Asks for the assisted recovery of someone who lost every passkey and recovery code.
pub async fn recover_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
    form: web::Form<ReasonForm>,
) -> Result<HttpResponse, WebError> {
    let user = subject(&core, &path).await?;
    let action = Action::RecoverAccount { user: user.id };
    match approvals::request(
        &core,
        Principal::Person(&current.user),
        action,
        &form.reason,
        &client,
    )
    .await
    {
        Ok(approval) => Ok(requested(&approval)),
        Err(error) => staff_error_page(&core, &current, user, StaffError::Approval(error)).await,
    }
}
