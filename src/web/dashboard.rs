//! The signed-in landing page: who I am, my roles, my recent sign-in activity.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::event_log;
use crate::domain::events::EventRecord;
use crate::domain::ids::TenantId;
use crate::domain::rbac::Permission;
use crate::domain::tenants;
use crate::domain::users::RoleAssignment;
use crate::web::error::WebError;
use crate::web::extractors::CurrentUser;
use crate::web::{Nav, render};

const RECENT_ACTIVITY: i64 = 8;

pub struct RoleView {
    label: &'static str,
    /// "all tenants", or the tenant's name.
    scope: String,
    /// The tenant's home page, for a tenant role.
    link: Option<String>,
}

pub struct ActivityView {
    when: String,
    what: String,
    succeeded: bool,
    ip: String,
}

/// An event of one's own activity in words: the first recovery codes are "created", not
/// "regenerated"; a sign-in says how it was made.
fn activity_in_words(event: &EventRecord) -> String {
    let details: serde_json::Value = serde_json::from_str(&event.details).unwrap_or_default();
    match event.event_type.as_str() {
        "recovery_codes_regenerated" if details.get("first_set") == Some(&true.into()) => {
            "recovery codes created".into()
        }
        "login" if details.get("method") == Some(&"passkey".into()) => {
            "sign-in with a passkey".into()
        }
        "login" => "sign-in".into(),
        other => other.replace('_', " "),
    }
}

impl From<EventRecord> for ActivityView {
    fn from(event: EventRecord) -> Self {
        Self {
            when: format_utc(event.occurred_at),
            what: activity_in_words(&event),
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
    let roles = role_views(&core, &user.roles).await?;
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

/// Each role with the name of its tenant (not the id a role stores).
async fn role_views(core: &Core, roles: &[RoleAssignment]) -> Result<Vec<RoleView>, WebError> {
    let ids: Vec<TenantId> = roles
        .iter()
        .filter_map(|r| r.tenant_id.as_deref().and_then(TenantId::parse))
        .collect();
    let named = tenants::by_ids(core, &ids).await?;
    Ok(roles
        .iter()
        .map(|assignment| {
            let tenant = assignment
                .tenant_id
                .as_deref()
                .map(|id| named.iter().find(|t| t.id.to_string() == id));
            let (scope, link) = match tenant {
                None => ("all tenants".to_owned(), None),
                Some(Some(t)) => (t.name.clone(), Some(format!("/t/{}", t.slug.as_str()))),
                Some(None) => ("a tenant that no longer exists".to_owned(), None),
            };
            RoleView {
                label: assignment.role.label(),
                scope,
                link,
            }
        })
        .collect())
}
