//! The page an assisted-recovery link opens: the person's password, then a new passkey.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::Core;
use crate::domain::auth::LoginError;
use crate::domain::recovery::{self, AssistedRecoveryError};
use crate::domain::sessions::AuthLevel;
use crate::web::csrf::CsrfToken;
use crate::web::error::WebError;
use crate::web::extractors::{Client, TypedSession};
use crate::web::{Nav, render, see_other};

#[derive(Template)]
#[template(path = "auth/recover.html")]
pub struct RecoverPage {
    nav: Option<Nav>,
    csrf_token: String,
    token: String,
    email: String,
    form_error: Option<String>,
}

#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    token: String,
}

impl From<AssistedRecoveryError> for WebError {
    fn from(error: AssistedRecoveryError) -> Self {
        match error {
            AssistedRecoveryError::Store(e) => e.into(),
            AssistedRecoveryError::Login(LoginError::Store(e)) => e.into(),
            other => Self::Gone(other.to_string()),
        }
    }
}

pub async fn recover_get(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    query: web::Query<LinkQuery>,
) -> Result<HttpResponse, WebError> {
    let holder = recovery::assisted_link_holder(&core, &query.token).await?;
    let page = RecoverPage {
        nav: None,
        csrf_token,
        token: query.token.clone(),
        email: holder.email,
        form_error: None,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct RecoverForm {
    #[serde(default)]
    token: String,
    password: Option<SecretString>,
}

/// The password right: the link is spent and the session may only enrol a new passkey (which
/// comes with new recovery codes).
pub async fn recover_post(
    core: web::Data<Core>,
    session: TypedSession,
    CsrfToken(csrf_token): CsrfToken,
    Client(client): Client,
    form: web::Form<RecoverForm>,
) -> Result<HttpResponse, WebError> {
    let client = client.for_new_session();
    let password = form
        .password
        .clone()
        .unwrap_or_else(|| SecretString::from(""));
    match recovery::complete_assisted(&core, &form.token, &password, &client).await {
        Ok(user) => {
            session.sign_in(user.id, AuthLevel::Recovery, core.clock.now_ms(), &client)?;
            Ok(see_other("/mfa/enrol"))
        }
        Err(AssistedRecoveryError::Login(
            error @ (LoginError::InvalidCredentials | LoginError::Throttled(_)),
        )) => {
            let holder = recovery::assisted_link_holder(&core, &form.token).await?;
            let status = match error {
                LoginError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            let page = RecoverPage {
                nav: None,
                csrf_token,
                token: form.token.clone(),
                email: holder.email,
                form_error: Some(error.to_string()),
            };
            render(&page, status)
        }
        Err(other) => Err(other.into()),
    }
}
