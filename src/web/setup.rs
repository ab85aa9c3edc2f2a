//! The first-run setup page, reached through the single-use link printed at start-up.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::Core;
use crate::domain::email::Email;
use crate::domain::sessions::AuthLevel;
use crate::domain::setup;
use crate::domain::users::{DisplayName, NewStaff};
use crate::web::csrf::CsrfToken;
use crate::web::error::WebError;
use crate::web::extractors::{Client, TypedSession};
use crate::web::{Nav, new_password, render, see_other};

#[derive(Template, Default)]
#[template(path = "setup/setup.html")]
pub struct SetupPage {
    nav: Option<Nav>,
    csrf_token: String,
    token: String,
    email: String,
    display_name: String,
    email_error: Option<String>,
    name_error: Option<String>,
    password_error: Option<String>,
    confirm_error: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

pub async fn setup_get(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    query: web::Query<SetupQuery>,
) -> Result<HttpResponse, WebError> {
    setup::check_setup_token(&core, &query.token).await?;
    let page = SetupPage {
        csrf_token,
        token: query.into_inner().token,
        ..SetupPage::default()
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    password: Option<SecretString>,
    password_confirm: Option<SecretString>,
}

pub async fn setup_post(
    core: web::Data<Core>,
    session: TypedSession,
    CsrfToken(csrf_token): CsrfToken,
    Client(client): Client,
    form: web::Form<SetupForm>,
) -> Result<HttpResponse, WebError> {
    let client = client.for_new_session();
    let form = form.into_inner();
    setup::check_setup_token(&core, &form.token).await?;

    let mut page = SetupPage {
        csrf_token,
        token: form.token.clone(),
        email: form.email.trim().to_owned(),
        display_name: form.display_name.trim().to_owned(),
        ..SetupPage::default()
    };
    let Some(staff) = parse_new_staff(&form, &mut page) else {
        return render(&page, StatusCode::BAD_REQUEST);
    };

    let user_id = setup::complete_setup(&core, &form.token, staff, &client).await?;
    session.sign_in(user_id, AuthLevel::Password, core.clock.now_ms(), &client)?;
    // The new administrator sets up a passkey before the console opens.
    Ok(see_other("/mfa/enrol"))
}

/// Parses every field, recording each problem on the page so all are shown at once.
fn parse_new_staff(form: &SetupForm, page: &mut SetupPage) -> Option<NewStaff> {
    let email = Email::parse(&form.email)
        .map_err(|e| page.email_error = Some(e.to_string()))
        .ok();
    let display_name = DisplayName::parse(&form.display_name)
        .map_err(|e| page.name_error = Some(e.to_string()))
        .ok();
    let password = new_password(
        form.password.as_ref(),
        form.password_confirm.as_ref(),
        &mut page.password_error,
        &mut page.confirm_error,
    );
    match (email, display_name, password) {
        (Some(email), Some(display_name), Some(password)) => Some(NewStaff {
            email,
            display_name,
            password,
        }),
        _ => None,
    }
}
