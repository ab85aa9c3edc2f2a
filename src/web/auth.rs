//! Sign-in (password, then passkey; or passwordless with a discoverable passkey) and sign-out.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::Core;
use crate::domain::auth::{self, LoginError};
use crate::domain::passkeys::{self, CEREMONY_LIFETIME};
use crate::domain::sessions::AuthLevel;
use crate::web::browser_state::BrowserCookie;
use crate::web::csrf::CsrfToken;
use crate::web::error::WebError;
use crate::web::extractors::{Client, TypedSession};
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
    /// Options for "Sign in with a passkey" (a discoverable-credential ceremony), as JSON.
    passkey_options: String,
}

impl LoginPage {
    /// A login page with a fresh passwordless ceremony, sealed in a cookie: anyone may open this
    /// page, so opening it must not write a session row.
    async fn new(core: &Core, req: &HttpRequest) -> Result<Self, WebError> {
        let (options, sealed) = passkeys::start_discovery(core).await?;
        BrowserCookie::PasskeyCeremony.set(req, sealed, CEREMONY_LIFETIME);
        Ok(Self {
            nav: None,
            csrf_token: CsrfToken::for_request(req).await?.0,
            email: String::new(),
            email_error: None,
            password_error: None,
            form_error: None,
            notice: None,
            passkey_options: serde_json::to_string(&options).map_err(WebError::unexpected)?,
        })
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    signed_out: Option<String>,
}

pub async fn login_get(
    core: web::Data<Core>,
    req: HttpRequest,
    session: TypedSession,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, WebError> {
    if session.user_id()?.is_some() {
        return Ok(see_other("/"));
    }
    let mut page = LoginPage::new(&core, &req).await?;
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
    req: HttpRequest,
    session: TypedSession,
    Client(client): Client,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, WebError> {
    let client = client.for_new_session();
    let LoginForm { email, password } = form.into_inner();
    let mut page = LoginPage::new(&core, &req).await?;
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
            let next = if passkeys::has_any(&core, user.id).await? {
                "/login/passkey"
            } else {
                "/mfa/enrol"
            };
            Ok(see_other(next))
        }
        Err(LoginError::Throttled(throttled)) => {
            page.form_error = Some(LoginError::Throttled(throttled).to_string());
            let mut response = render(&page, StatusCode::TOO_MANY_REQUESTS)?;
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(throttled.retry_after_secs),
            );
            Ok(response)
        }
        Err(
            error @ (LoginError::InvalidCredentials
            | LoginError::Deactivated
            | LoginError::AwaitingRecovery),
        ) => {
            let status = match error {
                LoginError::Deactivated | LoginError::AwaitingRecovery => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            page.form_error = Some(error.to_string());
            render(&page, status)
        }
        Err(LoginError::Password(e)) => Err(e.into()),
        Err(LoginError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    pub credential: String,
}

/// Passwordless sign-in: the discoverable passkey names its user and proves them at once.
pub async fn passwordless_post(
    core: web::Data<Core>,
    req: HttpRequest,
    session: TypedSession,
    Client(client): Client,
    form: web::Form<PasskeyForm>,
) -> Result<HttpResponse, WebError> {
    let client = client.for_new_session();
    let ceremony = BrowserCookie::PasskeyCeremony.read(&req);
    // Used up whatever happens next (a fresh page brings a fresh one).
    BrowserCookie::PasskeyCeremony.clear(&req);
    match passkeys::finish_discovery(&core, ceremony.as_deref(), &form.credential, &client).await {
        Ok(user) => {
            session.sign_in(user.id, AuthLevel::Passkey, core.clock.now_ms(), &client)?;
            Ok(see_other("/"))
        }
        Err(passkeys::PasskeyError::Store(e)) => Err(e.into()),
        Err(error) => {
            let mut page = LoginPage::new(&core, &req).await?;
            page.form_error = Some(error.to_string());
            render(&page, StatusCode::UNAUTHORIZED)
        }
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
