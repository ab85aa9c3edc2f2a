//! The pages partners see, with no login: the tenant's branded request form, the e-mail
//! confirmation, and the one-time credential retrieval.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::domain::Core;
use crate::domain::partners::{self, PartnerError, RequestForm, Scope};
use crate::domain::tenants::{self, Tenant, TenantStatus};
use crate::web::csrf::CsrfToken;
use crate::web::error::WebError;
use crate::web::extractors::Client;
use crate::web::tenants::band;
use crate::web::{Nav, render};

/// A public tenant page: the tenant must exist; nothing else is asked.
async fn tenant(core: &Core, slug: &str) -> Result<Tenant, WebError> {
    tenants::by_slug(core, slug)
        .await?
        .ok_or(WebError::NotFound)
}

/// Public pages carry the tenant's band but no account menu (an empty name means "nobody signed in").
fn public_nav(tenant: &Tenant, csrf_token: &str) -> Option<Nav> {
    Some(Nav {
        display_name: String::new(),
        csrf_token: csrf_token.to_owned(),
        full_access: false,
        staff_admin: false,
        event_log: false,
        tenant_admin: false,
        approvals: false,
        band: Some(band(tenant)),
    })
}

#[derive(Template, Default)]
#[template(path = "partners/request_access.html")]
pub struct RequestPage {
    nav: Option<Nav>,
    csrf_token: String,
    slug: String,
    tenant_name: String,
    accepting: bool,
    scopes: Vec<(Scope, bool)>,
    organisation: String,
    contact_name: String,
    email: String,
    justification: String,
    error: Option<String>,
}

async fn request_page(
    core: &Core,
    tenant: &Tenant,
    csrf_token: String,
) -> Result<RequestPage, WebError> {
    Ok(RequestPage {
        nav: public_nav(tenant, &csrf_token),
        csrf_token,
        slug: tenant.slug.to_string(),
        tenant_name: tenant.name.clone(),
        accepting: tenant.status == TenantStatus::Active,
        scopes: partners::scopes(core, tenant.id)
            .await?
            .into_iter()
            .map(|s| (s, false))
            .collect(),
        ..RequestPage::default()
    })
}

pub async fn request_get(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let tenant = tenant(&core, &path).await?;
    render(
        &request_page(&core, &tenant, csrf_token).await?,
        StatusCode::OK,
    )
}

#[derive(Template)]
#[template(path = "partners/message.html")]
pub struct MessagePage {
    nav: Option<Nav>,
    heading: String,
    message: String,
}

/// Form fields; `scope` repeats, so the body is read as pairs.
fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

pub async fn request_post(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    Client(client): Client,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let tenant = tenant(&core, &path).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError::BadRequest("The form could not be read."))?;
    let wanted: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let done = MessagePage {
        nav: public_nav(&tenant, &csrf_token),
        heading: "Check your e-mail".into(),
        message: "We sent you a link. Open it within 7 days to send your request to the tenant."
            .into(),
    };
    let mut page = request_page(&core, &tenant, csrf_token).await?;
    page.organisation = field(&pairs, "organisation").trim().to_owned();
    page.contact_name = field(&pairs, "contact_name").trim().to_owned();
    page.email = field(&pairs, "email").trim().to_owned();
    page.justification = field(&pairs, "justification").trim().to_owned();
    for (scope, chosen) in &mut page.scopes {
        *chosen = wanted.contains(&scope.name);
    }
    let form = RequestForm {
        organisation: field(&pairs, "organisation"),
        contact_name: field(&pairs, "contact_name"),
        email: field(&pairs, "email"),
        scopes: wanted,
        justification: field(&pairs, "justification"),
        website: field(&pairs, "website"),
    };
    let outcome = partners::submit_request(&core, &tenant, form, &client).await;
    match outcome {
        Ok(()) => render(&done, StatusCode::OK),
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(error @ PartnerError::RateLimited) => {
            page.error = Some(error.to_string());
            render(&page, StatusCode::TOO_MANY_REQUESTS)
        }
        Err(error) => {
            page.error = Some(error.to_string());
            render(&page, StatusCode::BAD_REQUEST)
        }
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

pub async fn confirm_get(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    Client(client): Client,
    path: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, WebError> {
    let tenant = tenant(&core, &path).await?;
    match partners::confirm_request(&core, &tenant, &query.token, &client).await {
        Ok(_) => {
            let page = ConfirmedPage {
                nav: public_nav(&tenant, &csrf_token),
                csrf_token,
                slug: tenant.slug.to_string(),
                tenant_name: tenant.name.clone(),
                token: query.token.clone(),
            };
            render(&page, StatusCode::OK)
        }
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(_) => Err(WebError::Gone(
            "This confirmation link is not valid: it was used, it expired after 7 days, or it never existed.".into(),
        )),
    }
}

#[derive(Template)]
#[template(path = "partners/confirmed.html")]
pub struct ConfirmedPage {
    nav: Option<Nav>,
    csrf_token: String,
    slug: String,
    tenant_name: String,
    token: String,
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    #[serde(default)]
    token: String,
}

/// The partner takes their request back (before a decision), with the token from their e-mail.
pub async fn withdraw_post(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    Client(client): Client,
    path: web::Path<String>,
    form: web::Form<WithdrawForm>,
) -> Result<HttpResponse, WebError> {
    let tenant = tenant(&core, &path).await?;
    match partners::withdraw(&core, &tenant, &form.token, &client).await {
        Ok(()) => {
            let page = MessagePage {
                nav: public_nav(&tenant, &csrf_token),
                heading: "Request withdrawn".into(),
                message: format!(
                    "Your request to {} was withdrawn. Nothing more will happen with it.",
                    tenant.name
                ),
            };
            render(&page, StatusCode::OK)
        }
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(_) => Err(WebError::Gone(
            "This request can no longer be withdrawn: it was already decided or withdrawn.".into(),
        )),
    }
}

#[derive(Template)]
#[template(path = "partners/retrieve.html")]
pub struct RetrievePage {
    nav: Option<Nav>,
    csrf_token: String,
    token: String,
    secret: Option<String>,
    client_id: Option<String>,
}

/// Shows a button, not the secret: link scanners and previews that open the link must not use it up.
pub async fn retrieve_get(
    CsrfToken(csrf_token): CsrfToken,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, WebError> {
    let page = RetrievePage {
        nav: None,
        csrf_token,
        token: query.token.clone(),
        secret: None,
        client_id: None,
    };
    render(&page, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct RetrieveForm {
    #[serde(default)]
    token: String,
}

pub async fn retrieve_post(
    core: web::Data<Core>,
    CsrfToken(csrf_token): CsrfToken,
    Client(client): Client,
    form: web::Form<RetrieveForm>,
) -> Result<HttpResponse, WebError> {
    match partners::retrieve(&core, &form.token, &client).await {
        Ok(retrieved) => {
            let page = RetrievePage {
                nav: None,
                csrf_token,
                token: String::new(),
                secret: Some(retrieved.secret.expose_secret().to_owned()),
                client_id: retrieved.client_id,
            };
            render(&page, StatusCode::OK)
        }
        Err(PartnerError::Store(e)) => Err(e.into()),
        Err(PartnerError::LinkUnknown) => Err(WebError::NotFound),
        Err(PartnerError::LinkUsed) => Err(WebError::Gone(
            "This credential was already retrieved. Ask the tenant's support staff for a new one if it was not you.".into(),
        )),
        Err(error) => Err(WebError::Gone(error.to_string())),
    }
}
