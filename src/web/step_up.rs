//! Step-up: sensitive actions need a passkey assertion from the last five minutes. A stale request
//! is saved in the session, the user confirms with a passkey, and the action carries on by itself.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::domain::Core;
use crate::domain::passkeys::{self, PasskeyError, Purpose};
use crate::domain::sessions::step_up_is_fresh;
use crate::web::auth::PasskeyForm;
use crate::web::error::WebError;
use crate::web::mfa::passkey_error;
use crate::web::session::{Client, CurrentUser, PendingAction, TypedSession};
use crate::web::{Nav, render, see_other};

/// `None` when the last passkey assertion is fresh enough; otherwise the redirect to make, with
/// the action saved for afterwards.
pub fn require_fresh_passkey(
    core: &Core,
    session: &TypedSession,
    action: PendingAction,
) -> Result<Option<HttpResponse>, WebError> {
    if step_up_is_fresh(session.passkey_at()?, core.clock.now_ms()) {
        return Ok(None);
    }
    session.set_pending_action(&action)?;
    Ok(Some(see_other("/step-up")))
}

/// A POST with no fields beyond the CSRF token (everything is in its path).
pub fn post_action(label: &str, path: &str) -> PendingAction {
    PendingAction {
        label: label.to_owned(),
        path: path.to_owned(),
        fields: Some(Vec::new()),
    }
}

#[derive(Template)]
#[template(path = "step_up/confirm.html")]
pub struct StepUpPage {
    nav: Option<Nav>,
    csrf_token: String,
    label: String,
    form_error: Option<String>,
    options: String,
}

async fn step_up_page(
    core: &Core,
    current: &CurrentUser,
    label: String,
) -> Result<StepUpPage, WebError> {
    let (options, ceremony) = passkeys::start_assertion(core, current.user.id, Purpose::StepUp)
        .await
        .map_err(passkey_error)?;
    current.session.set_ceremony(&ceremony)?;
    Ok(StepUpPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        label,
        form_error: None,
        options: serde_json::to_string(&options).map_err(WebError::unexpected)?,
    })
}

pub async fn step_up_get(
    core: web::Data<Core>,
    current: CurrentUser,
) -> Result<HttpResponse, WebError> {
    let Some(action) = current.session.pending_action()? else {
        return Ok(see_other("/account/security"));
    };
    render(
        &step_up_page(&core, &current, action.label).await?,
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "step_up/continue.html")]
pub struct ContinuePage {
    nav: Option<Nav>,
    csrf_token: String,
    label: String,
    path: String,
    fields: Vec<(String, String)>,
}

pub async fn step_up_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    form: web::Form<PasskeyForm>,
) -> Result<HttpResponse, WebError> {
    let ceremony = current.session.take_ceremony()?;
    let user = current.user.id;
    match passkeys::finish_assertion(
        &core,
        user,
        Purpose::StepUp,
        ceremony,
        &form.credential,
        &client,
    )
    .await
    {
        Ok(()) => {}
        Err(PasskeyError::Store(e)) => return Err(e.into()),
        Err(error) => {
            let label = current
                .session
                .pending_action()?
                .map_or_else(|| "Confirm it's you".to_owned(), |action| action.label);
            let mut page = step_up_page(&core, &current, label).await?;
            page.form_error = Some(error.to_string());
            return render(&page, StatusCode::UNAUTHORIZED);
        }
    }
    current.session.mark_passkey_used(core.clock.now_ms())?;
    let Some(action) = current.session.take_pending_action()? else {
        return Ok(see_other("/account/security"));
    };
    match action.fields {
        None => Ok(see_other(&action.path)),
        Some(fields) => {
            let page = ContinuePage {
                nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
                csrf_token: current.csrf_token.clone(),
                label: action.label,
                path: action.path,
                fields,
            };
            render(&page, StatusCode::OK)
        }
    }
}
