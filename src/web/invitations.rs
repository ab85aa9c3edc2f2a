//! Invitations: the superadmin's page for sending and withdrawing them, and the invitee's page for
//! accepting one (choose a password, then enrol a passkey).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::approvals::{ApprovalError, Change};
use crate::domain::email::Email;
use crate::domain::principal::Principal;
use crate::domain::sessions::AuthLevel;
use crate::domain::staff::{self, Grant, StaffError};
use crate::domain::users::DisplayName;
use crate::web::approvals::{refusal_status, requested};
use crate::web::csrf::CsrfToken;
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser, TypedSession};
use crate::web::staff::{NoticeQuery, TenantField, TenantOption, parse_role, role_choices};
use crate::web::{Nav, new_password, render, see_other};

pub struct InvitationRow {
    id: String,
    email: String,
    name: String,
    role: &'static str,
    expires: String,
}

#[derive(Template, Default)]
#[template(path = "admin/invitations.html")]
pub struct InvitationsPage {
    nav: Option<Nav>,
    csrf_token: String,
    pending: Vec<InvitationRow>,
    /// The role fields as they were sent, when the form comes back to pick a tenant.
    role_chosen: String,
    tenant_typed: String,
    tenant_matches: Vec<TenantOption>,
    role_names: Vec<(&'static str, &'static str)>,
    email: String,
    name: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn invitations_page(core: &Core, current: &CurrentUser) -> Result<InvitationsPage, WebError> {
    let pending = staff::pending_invitations(core)
        .await?
        .into_iter()
        .map(|i| InvitationRow {
            id: i.id,
            email: i.email,
            name: i.display_name,
            role: i.role.label(),
            expires: format_utc(i.expires_at),
        })
        .collect();
    Ok(InvitationsPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        pending,
        role_names: role_choices(),
        ..InvitationsPage::default()
    })
}

pub async fn invitations_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = invitations_page(&core, &current).await?;
    page.notice = match query.notice.as_deref() {
        Some("sent") => Some("Invitation sent. The link works once, for 72 hours."),
        Some("revoked") => Some("Invitation withdrawn."),
        _ => None,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant: String,
    /// Why: needed for superadmin and security, which a second superadmin approves first.
    #[serde(default)]
    reason: String,
}

pub async fn invite_create_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, WebError> {
    let mut page = invitations_page(&core, &current).await?;
    page.email = form.email.trim().to_owned();
    page.name = form.display_name.trim().to_owned();
    page.role_chosen = form.role.clone();
    page.tenant_typed = form.tenant.trim().to_owned();
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(e) => return refuse(page, e.to_string()),
    };
    let display_name = match DisplayName::parse(&form.display_name) {
        Ok(name) => name,
        Err(e) => return refuse(page, e.to_string()),
    };
    let tenant = match TenantField::read(&core, &current, &form.tenant).await? {
        TenantField::Global => None,
        TenantField::Tenant(id) => Some(id),
        TenantField::PickFrom(matches) => {
            let message = TenantField::pick_message(&form.tenant, &matches);
            page.tenant_matches = matches;
            return refuse(page, message);
        }
    };
    let grant = match parse_role(&form.role) {
        Ok(role) => Grant::new(&core, role, tenant).await,
        Err(e) => Err(e),
    };
    let grant = match grant {
        Ok(grant) => grant,
        Err(StaffError::Store(e)) => return Err(e.into()),
        Err(e) => return refuse(page, e.to_string()),
    };
    let invitation = staff::Invitation {
        email,
        display_name,
        grant,
    };
    match staff::invite(
        &core,
        Principal::Person(&current.user),
        invitation,
        &form.reason,
        &client,
    )
    .await
    {
        Ok(Change::Done) => Ok(see_other("/admin/invitations?notice=sent")),
        Ok(Change::AwaitingApproval(approval)) => Ok(requested(&approval)),
        Err(StaffError::Store(e) | StaffError::Approval(ApprovalError::Store(e))) => Err(e.into()),
        Err(StaffError::Approval(refusal)) => {
            let status = refusal_status(&refusal);
            page.error = Some(refusal.to_string());
            render(&page, status)
        }
        Err(e) => refuse(page, e.to_string()),
    }
}

/// The invitation form again, with what was typed and why it was refused.
fn refuse(mut page: InvitationsPage, message: String) -> Result<HttpResponse, WebError> {
    page.error = Some(message);
    render(&page, StatusCode::BAD_REQUEST)
}

pub async fn invite_revoke_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    match staff::revoke_invitation(&core, current.user.id, &path, &client).await {
        Ok(()) => Ok(see_other("/admin/invitations?notice=revoked")),
        Err(StaffError::Store(e)) => Err(e.into()),
        Err(_) => Err(WebError::NotFound),
    }
}

#[derive(Template, Default)]
#[template(path = "invite/accept.html")]
pub struct AcceptPage {
    nav: Option<Nav>,
    csrf_token: String,
    token: String,
    email: String,
    display_name: String,
    /// What the invitation makes the person, tenant included.
    role: String,
    name_error: Option<String>,
    password_error: Option<String>,
    confirm_error: Option<String>,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn invite_get(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, WebError> {
    let invitation = staff::open_invitation(&core, &query.token).await?;
    let role = staff::role_in_words(&core, invitation.role, invitation.tenant).await?;
    let page = AcceptPage {
        csrf_token,
        token: query.token.clone(),
        email: invitation.email,
        display_name: invitation.display_name,
        role,
        ..AcceptPage::default()
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    display_name: String,
    password: Option<SecretString>,
    password_confirm: Option<SecretString>,
}

pub async fn invite_post(
    core: web::Data<Core>,
    session: TypedSession,
    CsrfToken(csrf_token): CsrfToken,
    Client(client): Client,
    form: web::Form<AcceptForm>,
) -> Result<HttpResponse, WebError> {
    let client = client.for_new_session();
    let invitation = staff::open_invitation(&core, &form.token).await?;
    let role = staff::role_in_words(&core, invitation.role, invitation.tenant).await?;
    let mut page = AcceptPage {
        csrf_token,
        token: form.token.clone(),
        email: invitation.email,
        display_name: form.display_name.trim().to_owned(),
        role,
        ..AcceptPage::default()
    };
    let name = DisplayName::parse(&form.display_name)
        .map_err(|e| page.name_error = Some(e.to_string()))
        .ok();
    let password = new_password(
        form.password.as_ref(),
        form.password_confirm.as_ref(),
        &mut page.password_error,
        &mut page.confirm_error,
    );
    let (Some(name), Some(password)) = (name, password) else {
        return render(&page, StatusCode::BAD_REQUEST);
    };
    let user = staff::accept(&core, &form.token, name, password, &client).await?;
    session.sign_in(user, AuthLevel::Password, core.clock.now_ms(), &client)?;
    Ok(see_other("/mfa/enrol"))
}
