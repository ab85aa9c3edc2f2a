//! "My sessions", and the administrators' view of anyone's sessions.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::ids::UserId;
use crate::domain::sessions::{self, SessionSummary, describe_user_agent};
use crate::domain::users::{self, User};
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser};
use crate::web::{Nav, render, see_other};

pub struct SessionView {
    id: String,
    device: String,
    ip: String,
    signed_in: String,
    last_active: String,
    current: bool,
}

fn views(list: Vec<SessionSummary>, current: Option<&str>) -> Vec<SessionView> {
    list.into_iter()
        .map(|s| SessionView {
            current: current == Some(s.public_id.as_str()),
            device: describe_user_agent(s.user_agent.as_deref()),
            ip: s.ip.unwrap_or_else(|| "—".into()),
            signed_in: format_utc(s.signed_in_at),
            last_active: format_utc(s.last_seen_at),
            id: s.public_id,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "account/sessions.html")]
pub struct MySessionsPage {
    nav: Option<Nav>,
    csrf_token: String,
    /// Each row's "end" form posts to `{end_prefix}/{id}/end`.
    end_prefix: String,
    sessions: Vec<SessionView>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct EndedQuery {
    ended: Option<u64>,
}

pub async fn mine_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<EndedQuery>,
) -> Result<HttpResponse, WebError> {
    let this = current.session.public_id()?;
    let list = sessions::sessions_of(&core, current.user.id).await?;
    let page = MySessionsPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        end_prefix: "/account/sessions".into(),
        sessions: views(list, this.as_deref()),
        notice: ended_notice(query.ended),
    };
    render(&page, StatusCode::OK)
}

fn ended_notice(ended: Option<u64>) -> Option<String> {
    ended.map(|n| format!("Ended {n} session{}.", if n == 1 { "" } else { "s" }))
}

pub async fn mine_end_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let user = current.user.id;
    if !sessions::end_session(&core, user, user, &path, &client).await? {
        return Err(WebError::NotFound);
    }
    // Ending the session you are using is signing out.
    if current.session.public_id()?.as_deref() == Some(path.as_str()) {
        current.session.sign_out();
        return Ok(see_other("/login?signed_out=1"));
    }
    Ok(see_other("/account/sessions?ended=1"))
}

pub async fn mine_end_others_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
) -> Result<HttpResponse, WebError> {
    let keep = current.session.public_id()?.unwrap_or_default();
    let ended = sessions::end_other_sessions(&core, current.user.id, &keep, &client).await?;
    Ok(see_other(&format!("/account/sessions?ended={ended}")))
}

#[derive(Template)]
#[template(path = "admin/user_sessions.html")]
pub struct UserSessionsPage {
    nav: Option<Nav>,
    csrf_token: String,
    end_prefix: String,
    subject_id: String,
    subject_name: String,
    sessions: Vec<SessionView>,
    notice: Option<String>,
}

async fn subject(core: &Core, raw: &str) -> Result<User, WebError> {
    let id = UserId::parse(raw).ok_or(WebError::NotFound)?;
    users::find(core, id).await?.ok_or(WebError::NotFound)
}

pub async fn user_sessions_get(
    core: web::Data<Core>,
    current: CurrentUser,
    path: web::Path<String>,
    query: web::Query<EndedQuery>,
) -> Result<HttpResponse, WebError> {
    let subject = subject(&core, &path).await?;
    let list = sessions::sessions_of(&core, subject.id).await?;
    let this = current.session.public_id()?;
    let page = UserSessionsPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        end_prefix: format!("/admin/users/{}/sessions", subject.id),
        subject_id: subject.id.to_string(),
        subject_name: subject.display_name,
        sessions: views(list, this.as_deref()),
        notice: ended_notice(query.ended),
    };
    render(&page, StatusCode::OK)
}

pub async fn user_session_end_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let (user_raw, session_id) = path.into_inner();
    let subject = subject(&core, &user_raw).await?;
    if !sessions::end_session(&core, current.user.id, subject.id, &session_id, &client).await? {
        return Err(WebError::NotFound);
    }
    Ok(see_other(&format!(
        "/admin/users/{}/sessions?ended=1",
        subject.id
    )))
}

pub async fn user_sessions_end_all_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let subject = subject(&core, &path).await?;
    let ended = sessions::end_all_sessions(&core, current.user.id, subject.id, &client).await?;
    Ok(see_other(&format!(
        "/admin/users/{}/sessions?ended={ended}",
        subject.id
    )))
}
