//! The signed-in landing page: who I am, my roles, my recent sign-in activity.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::event_log;
use crate::domain::events::EventRecord;
use crate::domain::rbac::Permission;
use crate::web::error::WebError;
use crate::web::extractors::CurrentUser;
use crate::web::{Nav, render};

const RECENT_ACTIVITY: i64 = 8;

pub struct RoleView {
    label: &'static str,
    scope: String,
}

pub struct ActivityView {
    when: String,
    what: String,
    succeeded: bool,
    ip: String,
}

impl From<EventRecord> for ActivityView {
    fn from(event: EventRecord) -> Self {
        Self {
            when: format_utc(event.occurred_at),
            what: event.event_type.replace('_', " "),
            succeeded: event.outcome == "success",
            ip: event.ip.unwrap_or_else(|| "—".into()),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/index.html")]
pub struct DashboardPage {
    nav: Option<Nav>,
    display_name: String,
    email: String,
    user_id: String,
    signed_in_at: String,
    roles: Vec<RoleView>,
    activity: Vec<ActivityView>,
    /// The tenants this person works in (all of them for global roles), first few.
    tenants: Vec<(String, String)>,
    sees_all_tenants: bool,
}

pub async fn index_get(
    core: web::Data<Core>,
    current: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let tenants = crate::web::tenants::visible_tenants(&core, &current, "", 12)
        .await?
        .into_iter()
        .map(|t| (t.slug.to_string(), t.name))
        .collect();
    let sees_all_tenants = current.may(Permission::SeeAllTenants);
    let user = current.user;
    let activity = event_log::recent_activity(&core, user.id, RECENT_ACTIVITY)
        .await?
        .into_iter()
        .map(ActivityView::from)
        .collect();
    let roles = user
        .roles
        .iter()
        .map(|assignment| RoleView {
            label: assignment.role.label(),
            scope: assignment
                .tenant_id
                .clone()
                .unwrap_or_else(|| "all tenants".into()),
        })
        .collect();
    let page = DashboardPage {
        nav: Some(Nav::for_user(&user, current.csrf_token)),
        display_name: user.display_name,
        email: user.email,
        user_id: user.id.to_string(),
        signed_in_at: current.signed_in_at.map_or_else(|| "—".into(), format_utc),
        roles,
        activity,
        tenants,
        sees_all_tenants,
    };
    render(&page, StatusCode::OK)
}
