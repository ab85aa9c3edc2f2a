//! Step-up: sensitive actions need a passkey assertion from the last five minutes. A stale request
//! is saved in the session, the user confirms with a passkey, and the action carries on by itself.

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;

use crate::domain::Core;
use crate::domain::passkeys::{self, PasskeyError, Purpose};
use crate::domain::sessions::step_up_is_fresh;
use crate::domain::tenants::Tenant;
use crate::web::auth::PasskeyForm;
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser, PendingAction, TypedSession};
use crate::web::{Nav, csrf, render, see_other};

/// A route attribute: the action needs a passkey assertion from the last five minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUp {
    /// What the person is about to do, in words; `{tenant}` becomes the tenant's name.
    label: &'static str,
    /// Post the saved form again afterwards (`false`: open the page afresh, keeping no field).
    replay: bool,
}

impl StepUp {
    pub const fn replaying(label: &'static str) -> Self {
        Self {
            label,
            replay: true,
        }
    }

    pub const fn reopening(label: &'static str) -> Self {
        Self {
            label,
            replay: false,
        }
    }

    pub fn label(&self) -> &'static str {
        self.label
    }
}

/// `None` when the last passkey assertion is fresh enough; otherwise the request is saved in the
/// session (its form fields, never the CSRF token) and the answer is the detour to `/step-up`.
pub async fn demand(
    core: &Core,
    session: Option<&TypedSession>,
    step_up: StepUp,
    tenant: Option<&Tenant>,
    req: &mut ServiceRequest,
) -> Result<Option<HttpResponse>, WebError> {
    let session = session.ok_or(WebError::LoginRequired)?;
    if step_up_is_fresh(session.passkey_at()?, core.clock.now_ms()) {
        return Ok(None);
    }
    let label = match tenant {
        Some(tenant) => step_up.label.replace("{tenant}", &tenant.name),
        None => step_up.label.to_owned(),
    };
    let fields = if step_up.replay && req.method() == Method::POST {
        let form = req
            .extract::<web::Form<Vec<(String, String)>>>()
            .await
            .map_err(|_| {
                WebError::BadRequest(
                    "The form was incomplete or malformed. Reload the page and try again.",
                )
            })?;
        Some(
            form.into_inner()
                .into_iter()
                .filter(|(name, _)| name != csrf::FORM_FIELD)
                .collect(),
        )
    } else {
        None
    };
    session.set_pending_action(&PendingAction {
        label,
        path: req.path().to_owned(),
        fields,
        came_from: console_page_referred_from(core, req),
    })?;
    Ok(Some(see_other("/step-up")))
}

/// The console page (path and query) a request was sent from, by its `Referer`: only one of our
/// own pages, never another site (an open redirect) or the step-up page itself.
fn console_page_referred_from(core: &Core, req: &ServiceRequest) -> Option<String> {
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    if url.origin() != core.public_url.origin() || url.path() == "/step-up" {
        return None;
    }
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

#[derive(Template)]
#[template(path = "step_up/confirm.html")]
pub struct StepUpPage {
    nav: Option<Nav>,
    csrf_token: String,
    label: String,
    form_error: Option<String>,
    options: String,
    /// Where "Cancel" goes: the page the person came from, else the dashboard.
    cancel: String,
}

async fn step_up_page(
    core: &Core,
    current: &CurrentUser,
    action: Option<&PendingAction>,
) -> Result<StepUpPage, WebError> {
    let label = action.map_or_else(|| "Confirm it's you".to_owned(), |a| a.label.clone());
    let cancel = action
        .and_then(|a| a.came_from.clone())
        .unwrap_or_else(|| "/".to_owned());
    let (options, ceremony) =
        passkeys::start_assertion(core, current.user.id, Purpose::StepUp).await?;
    current.session.set_ceremony(&ceremony)?;
    Ok(StepUpPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        label,
        form_error: None,
        options: serde_json::to_string(&options).map_err(WebError::unexpected)?,
        cancel,
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
        &step_up_page(&core, &current, Some(&action)).await?,
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
            let action = current.session.pending_action()?;
            let mut page = step_up_page(&core, &current, action.as_ref()).await?;
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
