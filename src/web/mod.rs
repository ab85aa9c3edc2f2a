//! HTTP only: handlers parse input into domain types, call the domain, and render.

pub mod account;
pub mod account_recovery;
pub mod alerts;
pub mod api;
pub mod api_keys;
pub mod approvals;
pub mod assets;
pub mod audience;
pub mod auth;
pub mod authz;
pub mod browser_state;
pub mod client_address;
pub mod client_policies;
pub mod credentials;
pub mod csrf;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod extractors;
pub mod health;
pub mod invitations;
pub mod keys;
pub mod metrics;
pub mod mfa;
pub mod middleware;
pub mod oauth;
pub mod partner_pages;
pub mod requests;
pub mod routes;
pub mod session_backend;
pub mod session_pages;
pub mod setup;
pub mod staff;
pub mod step_up;
pub mod tenants;
pub mod upload;

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use askama::Template;

use crate::domain::rbac::{Permission, may};
use crate::domain::users::User;
use crate::web::error::WebError;
use crate::web::extractors::CurrentUser;

/// What the shared layout shows for a signed-in person: their name, the menu, the sign-out form,
/// and inside a tenant its colour band.
pub struct Nav {
    pub display_name: String,
    pub csrf_token: String,
    /// Past the second factor: the account menu is shown.
    pub full_access: bool,
    /// May see the staff list.
    pub staff_admin: bool,
    /// May read the whole installation's event log.
    pub event_log: bool,
    /// May manage tenants.
    pub tenant_admin: bool,
    /// May see the approvals queue.
    pub approvals: bool,
    /// Inside a tenant: its colour band.
    pub band: Option<TenantBand>,
}

/// What every page inside a tenant shows so it cannot be mistaken for another tenant.
pub struct TenantBand {
    pub name: String,
    pub slug: String,
    pub colour: String,
    pub text_colour: &'static str,
    pub has_logo: bool,
    pub suspended: bool,
}

impl Nav {
    /// The navigation of a fully signed-in user.
    pub fn for_user(user: &User, csrf_token: String) -> Self {
        Self {
            display_name: user.display_name.clone(),
            csrf_token,
            full_access: true,
            staff_admin: may(user, Permission::ViewStaff, None),
            event_log: may(user, Permission::ViewEvents, None),
            tenant_admin: may(user, Permission::ManageTenants, None),
            approvals: may(user, Permission::DecideApprovals, None),
            band: None,
        }
    }

    /// The navigation of a page inside `tenant`, with its band.
    pub fn in_tenant(current: &CurrentUser, tenant: &crate::domain::tenants::Tenant) -> Self {
        Self {
            band: Some(tenants::band(tenant)),
            ..Self::for_user(&current.user, current.csrf_token.clone())
        }
    }
}

/// Reads a new password typed twice, putting each problem on its own field of the page.
pub fn new_password(
    typed: Option<&secrecy::SecretString>,
    again: Option<&secrecy::SecretString>,
    password_error: &mut Option<String>,
    confirm_error: &mut Option<String>,
) -> Option<crate::domain::password::Password> {
    use crate::domain::password::{NewPasswordError, Password};
    match Password::confirmed(typed, again) {
        Ok(password) => Some(password),
        Err(error @ NewPasswordError::Mismatch) => {
            *confirm_error = Some(error.to_string());
            None
        }
        Err(error) => {
            *password_error = Some(error.to_string());
            None
        }
    }
}

/// The Post/Redirect/Get answer to a successful form.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Renders a page with an explicit status: forms re-rendered with errors are 400/401, not 200.
pub fn render(page: &impl Template, status: StatusCode) -> Result<HttpResponse, WebError> {
    let html = page.render().map_err(WebError::unexpected)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}
