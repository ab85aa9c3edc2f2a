//! Sign-in and sign-out pages.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::Core;
use crate::domain::auth::{self, LoginError};
use crate::domain::sessions::AuthLevel;
use crate::web::error::WebError;
use crate::web::session::{Client, TypedSession};
use crate::web::{Nav, render, see_other};

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    nav: Option<Nav>,
    csrf_token: String,
    email: String,
    email_error: Option<&'static str>,
    password_error: Option<&'static str>,
    form_error: Option<String>,
    notice: Option<&'static str>,
}

impl LoginPage {
    fn new(csrf_token: String) -> Self {
        Self {
            nav: None,
            csrf_token,
            email: String::new(),
            email_error: None,
            password_error: None,
            form_error: None,
            notice: None,
        }
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
}

pub async fn login_get(
    session: TypedSession,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    if session.user_id()?.is_some() {
        return Ok(see_other("/"));
    }
    let mut page = LoginPage::new(session.csrf_token()?);
    if query.signed_out.is_some() {
        page.notice = Some("You have signed out.");
    }
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    password: Option<SecretString>,
}

pub async fn login_post(
    core: web::Data<Core>,
    session: TypedSession,
    Client(client): Client,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let LoginForm { email, password } = form.into_inner();
    let mut page = LoginPage::new(session.csrf_token()?);
    page.email = email.trim().to_owned();
    let password = password.filter(|p| !p.expose_secret().is_empty());
    page.email_error = page
        .email
        .is_empty()
        .then_some("Enter your e-mail address.");
    page.password_error = password.is_none().then_some("Enter your password.");
    let (Some(password), None) = (password, page.email_error) else {
        return render(&page, StatusCode::BAD_REQUEST);
    };

    match auth::sign_in(&core, &page.email, &password, &client).await {
        Ok(user) => {
            session.sign_in(user.id, AuthLevel::Password, core.clock.now_ms(), &client)?;
            Ok(see_other("/"))
        }
        Err(error @ (LoginError::InvalidCredentials | LoginError::Deactivated)) => {
            let status = match error {
                LoginError::Deactivated => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            page.form_error = Some(error.to_string());
            render(&page, status)
        }
        Err(LoginError::Password(e)) => Err(e.into()),
        Err(LoginError::Store(e)) => Err(e.into()),
    }
}

pub async fn logout_post(
    core: web::Data<Core>,
    session: TypedSession,
    Client(client): Client,
) -> Result<HttpResponse, WebError> {
    if let Some(user) = session.user_id()? {
        auth::record_logout(&core, user, &client).await?;
    }
    session.sign_out();
    Ok(see_other("/login?signed_out=1"))
}
