//! The second step of signing in, and passkey enrolment: the pages a half-signed-in session may reach.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::Core;
use crate::domain::passkeys::{self, PasskeyError, PasskeyName, Purpose};
use crate::domain::recovery;
use crate::domain::sessions::{self, AuthLevel};
use crate::web::auth::PasskeyForm;
use crate::web::error::WebError;
use crate::web::extractors::{Client, SignedIn};
use crate::web::{Nav, render, see_other};

#[derive(Template)]
#[template(path = "mfa/enrol.html")]
pub struct EnrolPage {
    nav: Option<Nav>,
    csrf_token: String,
    /// First passkey (or after a recovery code): the console stays closed until it is done.
    required: bool,
    name: String,
    name_error: Option<String>,
    form_error: Option<String>,
    options: String,
}

#[derive(Template)]
#[template(path = "mfa/codes.html")]
pub struct CodesPage {
    pub nav: Option<Nav>,
    codes: Vec<String>,
    heading: &'static str,
}

impl CodesPage {
    pub fn new(codes: Vec<SecretString>, heading: &'static str) -> Self {
        Self {
            nav: None,
            codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
            heading,
        }
    }
}

async fn enrol_page(core: &Core, signed_in: &SignedIn) -> Result<EnrolPage, WebError> {
    let (options, ceremony) = passkeys::start_enrolment(core, &signed_in.user).await?;
    signed_in.session.set_ceremony(&ceremony)?;
    Ok(EnrolPage {
        nav: nav_for(signed_in),
        csrf_token: signed_in.csrf_token.clone(),
        required: signed_in.level != AuthLevel::Passkey,
        name: String::new(),
        name_error: None,
        form_error: None,
        options: serde_json::to_string(&options).map_err(WebError::unexpected)?,
    })
}

/// Signed-in people get the account menu; half-signed-in ones only the sign-out button.
fn nav_for(signed_in: &SignedIn) -> Option<Nav> {
    Some(Nav {
        display_name: signed_in.user.display_name.clone(),
        csrf_token: signed_in.csrf_token.clone(),
        full_access: signed_in.level == AuthLevel::Passkey,
        staff_admin: false,
        event_log: false,
        tenant_admin: false,
        approvals: false,
        band: None,
    })
}

pub async fn enrol_get(
    core: web::Data<Core>,
    signed_in: SignedIn,
) -> Result<HttpResponse, WebError> {
    // Someone who still has a passkey finishes signing in with it instead.
    if signed_in.level == AuthLevel::Password && passkeys::has_any(&core, signed_in.user.id).await?
    {
        return Ok(see_other("/login/passkey"));
    }
    render(&enrol_page(&core, &signed_in).await?, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct EnrolForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    credential: String,
}

pub async fn enrol_post(
    core: web::Data<Core>,
    signed_in: SignedIn,
    Client(client): Client,
    form: web::Form<EnrolForm>,
) -> Result<HttpResponse, WebError> {
    if signed_in.level == AuthLevel::Password && passkeys::has_any(&core, signed_in.user.id).await?
    {
        return Ok(see_other("/login/passkey"));
    }
    let ceremony = signed_in.session.take_ceremony()?;
    let name = match PasskeyName::parse(&form.name) {
        Ok(name) => name,
        Err(e) => {
            let mut page = enrol_page(&core, &signed_in).await?;
            page.name = form.name.trim().to_owned();
            page.name_error = Some(e.to_string());
            return render(&page, StatusCode::BAD_REQUEST);
        }
    };
    let first = !passkeys::has_any(&core, signed_in.user.id).await?;
    match passkeys::finish_enrolment(
        &core,
        &signed_in.user,
        ceremony,
        name,
        &form.credential,
        &client,
    )
    .await
    {
        Ok(()) => {}
        Err(PasskeyError::Store(e)) => return Err(e.into()),
        Err(error) => {
            let mut page = enrol_page(&core, &signed_in).await?;
            page.name = form.name.trim().to_owned();
            page.form_error = Some(error.to_string());
            return render(&page, StatusCode::BAD_REQUEST);
        }
    }
    let now = core.clock.now_ms();
    if signed_in.level != AuthLevel::Passkey {
        signed_in.session.raise_level(AuthLevel::Passkey, now)?;
    } else {
        signed_in.session.mark_passkey_used(now)?;
    }
    // The first passkey comes with recovery codes; later ones do not replace them.
    if first || signed_in.level == AuthLevel::Recovery {
        let codes = recovery::issue(&core, signed_in.user.id, &client, !first).await?;
        return render(&CodesPage::new(codes, "Passkey added"), StatusCode::OK);
    }
    Ok(see_other("/account/security"))
}

#[derive(Template)]
#[template(path = "mfa/second_factor.html")]
pub struct SecondFactorPage {
    nav: Option<Nav>,
    csrf_token: String,
    form_error: Option<String>,
    options: String,
}

async fn second_factor_page(
    core: &Core,
    signed_in: &SignedIn,
) -> Result<SecondFactorPage, WebError> {
    let (options, ceremony) =
        passkeys::start_assertion(core, signed_in.user.id, Purpose::SecondFactor).await?;
    signed_in.session.set_ceremony(&ceremony)?;
    Ok(SecondFactorPage {
        nav: nav_for(signed_in),
        csrf_token: signed_in.csrf_token.clone(),
        form_error: None,
        options: serde_json::to_string(&options).map_err(WebError::unexpected)?,
    })
}

pub async fn second_factor_get(
    core: web::Data<Core>,
    signed_in: SignedIn,
) -> Result<HttpResponse, WebError> {
    match signed_in.level {
        AuthLevel::Passkey => return Ok(see_other("/")),
        AuthLevel::Recovery => return Ok(see_other("/mfa/enrol")),
        AuthLevel::Password => {}
    }
    if !passkeys::has_any(&core, signed_in.user.id).await? {
        return Ok(see_other("/mfa/enrol"));
    }
    render(
        &second_factor_page(&core, &signed_in).await?,
        StatusCode::OK,
    )
}

pub async fn second_factor_post(
    core: web::Data<Core>,
    signed_in: SignedIn,
    Client(client): Client,
    form: web::Form<PasskeyForm>,
) -> Result<HttpResponse, WebError> {
    if signed_in.level != AuthLevel::Password {
        return Ok(see_other("/"));
    }
    let ceremony = signed_in.session.take_ceremony()?;
    let user = signed_in.user.id;
    match passkeys::finish_assertion(
        &core,
        user,
        Purpose::SecondFactor,
        ceremony,
        &form.credential,
        &client,
    )
    .await
    {
        Ok(()) => {
            signed_in
                .session
                .raise_level(AuthLevel::Passkey, core.clock.now_ms())?;
            Ok(see_other("/"))
        }
        Err(PasskeyError::Store(e)) => Err(e.into()),
        Err(error) => {
            let mut page = second_factor_page(&core, &signed_in).await?;
            page.form_error = Some(error.to_string());
            render(&page, StatusCode::UNAUTHORIZED)
        }
    }
}

#[derive(Template)]
#[template(path = "mfa/recovery.html")]
pub struct RecoveryPage {
    nav: Option<Nav>,
    csrf_token: String,
    form_error: Option<&'static str>,
}

pub async fn recovery_get(signed_in: SignedIn) -> Result<HttpResponse, WebError> {
    if signed_in.level != AuthLevel::Password {
        return Ok(see_other("/"));
    }
    let page = RecoveryPage {
        nav: nav_for(&signed_in),
        csrf_token: signed_in.csrf_token.clone(),
        form_error: None,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct RecoveryForm {
    #[serde(default)]
    code: SecretString,
}

pub async fn recovery_post(
    core: web::Data<Core>,
    signed_in: SignedIn,
    Client(client): Client,
    form: web::Form<RecoveryForm>,
) -> Result<HttpResponse, WebError> {
    if signed_in.level != AuthLevel::Password {
        return Ok(see_other("/"));
    }
    if recovery::redeem(&core, signed_in.user.id, form.code.expose_secret(), &client).await? {
        signed_in
            .session
            .raise_level(AuthLevel::Recovery, core.clock.now_ms())?;
        // A lost passkey: whoever holds it must not stay signed in anywhere else.
        let keep = signed_in.session.public_id()?.unwrap_or_default();
        sessions::end_other_sessions(&core, signed_in.user.id, &keep, &client).await?;
        return Ok(see_other("/mfa/enrol"));
    }
    let page = RecoveryPage {
        nav: nav_for(&signed_in),
        csrf_token: signed_in.csrf_token.clone(),
        form_error: Some("That recovery code is not valid, or it was already used."),
    };
    render(&page, StatusCode::UNAUTHORIZED)
}
