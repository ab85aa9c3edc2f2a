//! Staff: list, get, invite, grant and remove roles, deactivate and reactivate, list and end a
//! person's sessions — the console's staff administration, by key.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::format_rfc3339;
use crate::domain::Core;
use crate::domain::approvals::{self, Action, Change};
use crate::domain::email::Email;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::principal::Principal;
use crate::domain::rbac::Role;
use crate::domain::sessions;
use crate::domain::staff::{self, Grant, Invitation, StaffError};
use crate::domain::tenants;
use crate::domain::users::{self, DisplayName, User, UserStatus};
use crate::web::api::approvals::{self as approvals_api, ApprovalBody, accepted};
use crate::web::api::problem::Problem;
use crate::web::api::{ApiError, Caller, Page, Paging};

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleBody {
    /// The assignment's id (to remove it).
    pub id: String,
    /// `superadmin`, `security`, `support` or `tenant_admin`.
    pub role: String,
    /// The tenant's id for tenant roles.
    pub tenant_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffBody {
    pub id: String,
    pub email: String,
    pub display_name: String,
    /// `active` or `deactivated`.
    pub status: String,
    pub created_at: String,
    pub roles: Vec<RoleBody>,
}

impl From<User> for StaffBody {
    fn from(u: User) -> Self {
        Self {
            id: u.id.to_string(),
            status: u.status.as_str().to_owned(),
            created_at: format_rfc3339(u.created_at),
            roles: u
                .roles
                .into_iter()
                .map(|r| RoleBody {
                    id: r.id,
                    role: r.role.as_str().to_owned(),
                    tenant_id: r.tenant_id,
                })
                .collect(),
            email: u.email,
            display_name: u.display_name,
        }
    }
}

/// The staff list's search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaffSearch {
    /// Part of the name or e-mail address.
    pub q: Option<String>,
}

impl From<StaffError> for ApiError {
    fn from(error: StaffError) -> Self {
        match error {
            StaffError::Store(e) => e.into(),
            StaffError::NotFound => Self::NotFound,
            StaffError::AlreadyStaff | StaffError::DuplicateRole => {
                Self::Conflict(error.to_string())
            }
            StaffError::Approval(refusal) => refusal.into(),
            other => Self::unprocessable(other.to_string()),
        }
    }
}

async fn person(core: &Core, raw: &str) -> Result<User, ApiError> {
    let id = UserId::parse(raw).ok_or(ApiError::NotFound)?;
    users::find(core, id).await?.ok_or(ApiError::NotFound)
}

/// Staff members by name, with their roles; search with `q`.
#[utoipa::path(
    get,
    path = "/api/v1/staff",
    tag = "staff",
    params(StaffSearch, Paging),
    responses(
        (status = 200, body = Page<StaffBody>),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn list(
    core: web::Data<Core>,
    search: web::Query<StaffSearch>,
    paging: web::Query<Paging>,
) -> Result<HttpResponse, ApiError> {
    let limit = paging.limit()?;
    // The cursor is the last person's id; a cursor this list never gave out is the caller's error.
    let after = match paging.cursor.as_deref() {
        Some(raw) => Some(UserId::parse(raw).ok_or_else(|| ApiError::Unprocessable {
            detail: "The cursor is not one this list gave out.".into(),
            field: Some("cursor".into()),
        })?),
        None => None,
    };
    let q = search.q.as_deref().unwrap_or("");
    let mut people = users::page(&core, q, after, limit + 1).await?;
    let more = people.len() as i64 > limit;
    people.truncate(limit as usize);
    Ok(HttpResponse::Ok().json(Page {
        next_cursor: more
            .then(|| people.last().map(|p| p.id.to_string()))
            .flatten(),
        items: people.into_iter().map(StaffBody::from).collect(),
    }))
}

/// One staff member.
#[utoipa::path(
    get,
    path = "/api/v1/staff/{id}",
    tag = "staff",
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, body = StaffBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn get(core: web::Data<Core>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(StaffBody::from(person(&core, &path).await?)))
}

/// A role and, for tenant roles, the tenant's slug.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `superadmin`, `security`, `support` or `tenant_admin`.
    pub role: String,
    /// The tenant's slug, for `support` and `tenant_admin`.
    pub tenant: Option<String>,
}

async fn grant_of(core: &Core, request: &RoleRequest) -> Result<Grant, ApiError> {
    let role = Role::parse(&request.role).ok_or_else(|| ApiError::Unprocessable {
        detail: format!("Unknown role {:?}.", request.role),
        field: Some("role".into()),
    })?;
    let tenant: Option<TenantId> = match request.tenant.as_deref() {
        None => None,
        Some(slug) => Some(
            tenants::by_slug(core, slug)
                .await?
                .ok_or_else(|| ApiError::Unprocessable {
                    detail: format!("No tenant has the slug {slug:?}."),
                    field: Some("tenant".into()),
                })?
                .id,
        ),
    };
    Ok(Grant::new(core, role, tenant).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationBody {
    pub email: String,
    pub display_name: String,
    pub role: String,
    /// The tenant's slug, for tenant roles.
    pub tenant: Option<String>,
    /// Required for `superadmin` and `security`: the approver reads it.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Invited {
    /// `email`: the invitation link went to the person by e-mail, valid 72 hours.
    /// `after_approval`: superadmin and security invitations are sent once a second superadmin
    /// approves `approval`.
    pub delivery: String,
    pub approval: Option<ApprovalBody>,
}

/// Invites a person by e-mail with their first role (201, the mail is on its way); an invitation to
/// superadmin or security is sent once a second superadmin approves it (202, `reason` required).
#[utoipa::path(
    post,
    path = "/api/v1/staff/invitations",
    tag = "staff",
    request_body = InvitationBody,
    responses(
        (status = 201, description = "Invited: the mail is on its way", body = Invited),
        (status = 202, description = "Waiting for a second superadmin", body = Invited),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn invite(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    body: web::Json<InvitationBody>,
) -> Result<HttpResponse, ApiError> {
    let field = |field: &str, e: &dyn std::fmt::Display| ApiError::Unprocessable {
        detail: e.to_string(),
        field: Some(field.into()),
    };
    let invitation = Invitation {
        email: Email::parse(&body.email).map_err(|e| field("email", &e))?,
        display_name: DisplayName::parse(&body.display_name)
            .map_err(|e| field("display_name", &e))?,
        grant: grant_of(
            &core,
            &RoleRequest {
                role: body.role.clone(),
                tenant: body.tenant.clone(),
            },
        )
        .await?,
    };
    let reason = body.reason.as_deref().unwrap_or("");
    // 202 only for what waits for a second person; a plain invitation is done (its mail queued).
    match staff::invite(&core, Principal::Key(&caller), invitation, reason, &context).await? {
        Change::Done => Ok(HttpResponse::Created().json(Invited {
            delivery: "email".into(),
            approval: None,
        })),
        Change::AwaitingApproval(approval) => Ok(HttpResponse::Accepted().json(Invited {
            delivery: "after_approval".into(),
            approval: Some(approvals_api::body(&core, approval).await?),
        })),
    }
}

/// A role to grant and, for superadmin and security, why (a second superadmin approves).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// `superadmin`, `security`, `support` or `tenant_admin`.
    pub role: String,
    /// The tenant's slug, for `support` and `tenant_admin`.
    pub tenant: Option<String>,
    /// Required for `superadmin` and `security`: the approver reads it.
    pub reason: Option<String>,
}

/// Why: for the changes that wait for a second superadmin.
#[derive(Debug, Default, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReasonBody {
    /// Required when the change waits for approval (a superadmin or security role, a
    /// superadmin's account, an account recovery).
    pub reason: Option<String>,
}

/// The person as they are now, or the approval request the change waits on.
async fn changed(core: &Core, change: Change, raw: &str) -> Result<HttpResponse, ApiError> {
    match change {
        Change::Done => Ok(HttpResponse::Ok().json(StaffBody::from(person(core, raw).await?))),
        Change::AwaitingApproval(approval) => accepted(core, approval).await,
    }
}

/// Grants a role. Superadmin and security are only asked for: `202` with the approval request,
/// which a second superadmin approves with a passkey in the console.
#[utoipa::path(
    post,
    path = "/api/v1/staff/{id}/roles",
    tag = "staff",
    params(("id" = String, Path, description = "The person's id")),
    request_body = GrantBody,
    responses(
        (status = 200, body = StaffBody),
        (status = 202, description = "Waiting for a second superadmin", body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn grant_role(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    path: web::Path<String>,
    body: web::Json<GrantBody>,
) -> Result<HttpResponse, ApiError> {
    let subject = person(&core, &path).await?;
    let request = RoleRequest {
        role: body.role.clone(),
        tenant: body.tenant.clone(),
    };
    let grant = grant_of(&core, &request).await?;
    let reason = body.reason.as_deref().unwrap_or("");
    let change = staff::grant_role(
        &core,
        Principal::Key(&caller),
        subject.id,
        grant,
        reason,
        &context,
    )
    .await?;
    changed(&core, change, &path).await
}

/// Removes a role; it stops applying at the person's next request (and to their keys). Removing
/// superadmin or security answers `202` with the approval request (`?reason=` required).
#[utoipa::path(
    delete,
    path = "/api/v1/staff/{id}/roles/{assignment}",
    tag = "staff",
    params(
        ("id" = String, Path, description = "The person's id"),
        ("assignment" = String, Path, description = "The role assignment's id"),
        ReasonBody,
    ),
    responses(
        (status = 200, body = StaffBody),
        (status = 202, description = "Waiting for a second superadmin", body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn revoke_role(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    path: web::Path<(String, String)>,
    query: web::Query<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let subject = person(&core, &path.0).await?;
    let reason = query.reason.as_deref().unwrap_or("");
    let change = staff::revoke_role(
        &core,
        Principal::Key(&caller),
        subject.id,
        &path.1,
        reason,
        &context,
    )
    .await?;
    changed(&core, change, &path.0).await
}

async fn set_status(
    core: &Core,
    caller: &Caller,
    raw: &str,
    status: UserStatus,
    reason: &str,
) -> Result<HttpResponse, ApiError> {
    let subject = person(core, raw).await?;
    let actor = Principal::Key(&caller.caller);
    let change =
        staff::set_status(core, actor, subject.id, status, reason, &caller.context).await?;
    changed(core, change, raw).await
}

/// Deactivates a person: every session and every key of theirs stops at once. A superadmin is
/// only asked for: `202` with the approval request (`reason` required).
#[utoipa::path(
    post,
    path = "/api/v1/staff/{id}/deactivate",
    tag = "staff",
    params(("id" = String, Path, description = "The person's id")),
    request_body(content = Option<ReasonBody>),
    responses(
        (status = 200, body = StaffBody),
        (status = 202, description = "Waiting for a second superadmin", body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn deactivate(
    core: web::Data<Core>,
    caller: Caller,
    path: web::Path<String>,
    body: Option<web::Json<ReasonBody>>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.and_then(|b| b.into_inner().reason).unwrap_or_default();
    set_status(&core, &caller, &path, UserStatus::Deactivated, &reason).await
}

/// Asks for the assisted recovery of a person who lost every passkey and recovery code: once a
/// second person approves, every passkey, recovery code and session of theirs goes and they get
/// a single-use link by e-mail. Answers the approval request.
#[utoipa::path(
    post,
    path = "/api/v1/staff/{id}/recovery",
    tag = "staff",
    params(("id" = String, Path, description = "The person's id")),
    request_body = ReasonBody,
    responses(
        (status = 202, description = "Waiting for a second person", body = ApprovalBody),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
    ),
)]
pub async fn recover(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    path: web::Path<String>,
    body: web::Json<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let subject = person(&core, &path).await?;
    let action = Action::RecoverAccount { user: subject.id };
    let reason = body.reason.as_deref().unwrap_or("");
    let approval =
        approvals::request(&core, Principal::Key(&caller), action, reason, &context).await?;
    accepted(&core, approval).await
}

/// Reactivates a person (no session comes back).
#[utoipa::path(
    post,
    path = "/api/v1/staff/{id}/reactivate",
    tag = "staff",
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, body = StaffBody),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn reactivate(
    core: web::Data<Core>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_status(&core, &caller, &path, UserStatus::Active, "").await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionBody {
    pub id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub signed_in_at: String,
    pub last_seen_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionBody>,
}

/// A person's live console sessions.
#[utoipa::path(
    get,
    path = "/api/v1/staff/{id}/sessions",
    tag = "staff",
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, body = SessionList),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn list_sessions(
    core: web::Data<Core>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = person(&core, &path).await?;
    let items = sessions::sessions_of(&core, subject.id)
        .await?
        .into_iter()
        .map(|s| SessionBody {
            signed_in_at: format_rfc3339(s.signed_in_at),
            last_seen_at: format_rfc3339(s.last_seen_at),
            id: s.public_id,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SessionList { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ended {
    pub sessions_ended: u64,
}

/// Ends every console session of a person.
#[utoipa::path(
    post,
    path = "/api/v1/staff/{id}/sessions/end-all",
    tag = "staff",
    params(("id" = String, Path, description = "The person's id")),
    responses(
        (status = 200, body = Ended),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn end_sessions(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let subject = person(&core, &path).await?;
    let sessions_ended =
        sessions::end_all_sessions(&core, caller.owner.id, subject.id, &context).await?;
    Ok(HttpResponse::Ok().json(Ended { sessions_ended }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationSummary {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub tenant_id: Option<String>,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    pub items: Vec<InvitationSummary>,
}

/// Invitations neither accepted, withdrawn nor expired, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/staff/invitations",
    tag = "staff",
    responses(
        (status = 200, body = InvitationList),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
)]
pub async fn invitations(core: web::Data<Core>) -> Result<HttpResponse, ApiError> {
    let items = staff::pending_invitations(&core)
        .await?
        .into_iter()
        .map(|i| InvitationSummary {
            role: i.role.as_str().to_owned(),
            tenant_id: i.tenant.map(|t| t.to_string()),
            expires_at: format_rfc3339(i.expires_at),
            id: i.id,
            email: i.email,
            display_name: i.display_name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(InvitationList { items }))
}

/// Withdraws an invitation: its link stops working.
#[utoipa::path(
    delete,
    path = "/api/v1/staff/invitations/{id}",
    tag = "staff",
    params(("id" = String, Path, description = "The invitation's id")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
    ),
)]
pub async fn withdraw_invitation(
    core: web::Data<Core>,
    Caller { caller, context }: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    staff::revoke_invitation(&core, caller.owner.id, &path, &context).await?;
    Ok(HttpResponse::NoContent().finish())
}
