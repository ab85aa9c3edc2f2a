//! "Security": my passkeys, recovery codes and password.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::clock::format_utc;
use crate::domain::Core;
use crate::domain::auth::{self, PasswordChangeError};
use crate::domain::passkeys::{self, PasskeyError, PasskeyName};
use crate::domain::recovery;
use crate::domain::sessions;
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser};
use crate::web::mfa::CodesPage;
use crate::web::{Nav, new_password, render, see_other};

pub struct PasskeyView {
    id: String,
    name: String,
    created: String,
    last_used: String,
    synced: bool,
}

#[derive(Template)]
#[template(path = "account/security.html")]
pub struct SecurityPage {
    nav: Option<Nav>,
    csrf_token: String,
    passkeys: Vec<PasskeyView>,
    codes_left: i64,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn notice_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "renamed" => "Passkey renamed.",
        "removed" => "Passkey removed. Every other session of yours has been ended.",
        "password-changed" => "Password changed. Every other session of yours has been ended.",
        _ => return None,
    })
}

async fn security_page(core: &Core, current: &CurrentUser) -> Result<SecurityPage, WebError> {
    let passkeys = passkeys::list(core, current.user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyView {
            id: p.id,
            name: p.name,
            created: format_utc(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".into(), format_utc),
            synced: p.backup_state,
        })
        .collect();
    Ok(SecurityPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        passkeys,
        codes_left: recovery::codes_left(core, current.user.id).await?,
        notice: None,
        error: None,
    })
}

pub async fn security_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = security_page(&core, &current).await?;
    page.notice = query.notice.as_deref().and_then(notice_text);
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

pub async fn passkey_rename_post(
    core: web::Data<Core>,
    current: CurrentUser,
    path: web::Path<String>,
    form: web::Form<RenameForm>,
) -> Result<HttpResponse, WebError> {
    let outcome = match PasskeyName::parse(&form.name) {
        Ok(name) => passkeys::rename(&core, current.user.id, &path, name).await,
        Err(e) => {
            return security_error(&core, &current, e.to_string(), StatusCode::BAD_REQUEST).await;
        }
    };
    match outcome {
        Ok(()) => Ok(see_other("/account/security?notice=renamed")),
        Err(PasskeyError::NotFound) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

pub async fn passkey_remove_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let passkey_id = path.into_inner();
    match passkeys::remove(&core, current.user.id, &passkey_id, &client).await {
        Ok(()) => {
            // The device that held the passkey may still be signed in: losing a passkey ends
            // every other session.
            let keep = current.session.public_id()?.unwrap_or_default();
            sessions::end_other_sessions(&core, current.user.id, &keep, &client).await?;
            Ok(see_other("/account/security?notice=removed"))
        }
        Err(PasskeyError::NotFound) => Err(WebError::NotFound),
        Err(error @ PasskeyError::LastPasskey) => {
            security_error(&core, &current, error.to_string(), StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn recovery_codes_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
) -> Result<HttpResponse, WebError> {
    let codes = recovery::issue(&core, current.user.id, &client, true).await?;
    let mut page = CodesPage::new(codes, "New recovery codes");
    page.nav = Some(Nav::for_user(&current.user, current.csrf_token.clone()));
    render(&page, StatusCode::OK)
}

async fn security_error(
    core: &Core,
    current: &CurrentUser,
    message: String,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let mut page = security_page(core, current).await?;
    page.error = Some(message);
    render(&page, status)
}

#[derive(Template, Default)]
#[template(path = "account/password.html")]
pub struct PasswordPage {
    nav: Option<Nav>,
    csrf_token: String,
    current_error: Option<String>,
    password_error: Option<String>,
    confirm_error: Option<String>,
}

pub async fn password_get(current: CurrentUser) -> Result<HttpResponse, WebError> {
    let page = PasswordPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        ..PasswordPage::default()
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: Option<SecretString>,
    new_password: Option<SecretString>,
    new_password_confirm: Option<SecretString>,
}

pub async fn password_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, WebError> {
    // Past the window the typed passwords are dropped, never saved: the form is shown again.
    let form = form.into_inner();
    let mut page = PasswordPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        ..PasswordPage::default()
    };
    let new = new_password(
        form.new_password.as_ref(),
        form.new_password_confirm.as_ref(),
        &mut page.password_error,
        &mut page.confirm_error,
    );
    let Some(new) = new else {
        return render(&page, StatusCode::BAD_REQUEST);
    };
    let keep = current.session.public_id()?.unwrap_or_default();
    let current_password = form
        .current_password
        .unwrap_or_else(|| SecretString::from(""));
    match auth::change_password(
        &core,
        current.user.id,
        &current_password,
        new,
        &keep,
        &client,
    )
    .await
    {
        Ok(_) => Ok(see_other("/account/security?notice=password-changed")),
        Err(PasswordChangeError::WrongCurrentPassword) => {
            page.current_error = Some(PasswordChangeError::WrongCurrentPassword.to_string());
            render(&page, StatusCode::BAD_REQUEST)
        }
        Err(PasswordChangeError::Password(e)) => Err(e.into()),
        Err(PasswordChangeError::Store(e)) => Err(e.into()),
    }
}
