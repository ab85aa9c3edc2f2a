//! HTTP only: handlers parse input into domain types, call the domain, and render.

pub mod account;
pub mod assets;
pub mod auth;
pub mod csrf;
pub mod dashboard;
pub mod error;
pub mod health;
pub mod mfa;
pub mod middleware;
pub mod session;
pub mod session_store;
pub mod sessions;
pub mod setup;
pub mod step_up;

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use askama::Template;

use crate::web::error::WebError;

/// What the shared layout shows for a signed-in person: their name and the sign-out form.
pub struct Nav {
    pub display_name: String,
    pub csrf_token: String,
    /// Past the second factor: the account menu is shown.
    pub full_access: bool,
    /// May see the staff list.
    pub staff_admin: bool,
}

impl Nav {
    /// The navigation of a fully signed-in user.
    pub fn for_user(user: &crate::domain::users::User, csrf_token: String) -> Self {
        Self {
            display_name: user.display_name.clone(),
            csrf_token,
            full_access: true,
            staff_admin: crate::domain::rbac::may(
                user,
                crate::domain::rbac::Permission::ViewStaff,
                None,
            ),
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
