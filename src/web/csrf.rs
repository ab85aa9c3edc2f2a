//! CSRF protection for every state-changing request, in one middleware so no route can forget it.
//! Forms carry the token as `csrf_token`, scripts as the `X-CSRF-Token` header. Anything else is
//! refused with 403 before a handler runs, so nothing changes.
//!
//! Whoever has a session (everyone signed in) has a per-session token kept in it, and only that one
//! counts. A visitor without a session gets a signed, expiring token in a cookie, mirrored in the
//! form (double submit, `domain::signed_state`): showing them the sign-in page writes no session
//! row.

use actix_session::SessionExt;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;

use crate::app::FORM_LIMIT_BYTES;
use crate::domain::Core;
use crate::domain::secrets::constant_time_eq;
use crate::domain::sessions::keys;
use crate::domain::signed_state::{self, FORM_TOKEN_LIFETIME, FormToken};
use crate::refusals::Refusal;
use crate::web::browser_state::{self, BrowserCookie};
use crate::web::error::WebError;
use crate::web::upload;

pub const FORM_FIELD: &str = "csrf_token";
const HEADER: &str = "x-csrf-token";

#[derive(Deserialize)]
struct TokenField {
    csrf_token: Option<String>,
}

pub async fn verify(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method().is_safe() {
        return Ok(browser_state::apply(next.call(req).await?).map_into_left_body());
    }
    let expected = match req.get_session().get::<String>(keys::CSRF) {
        Ok(token) => token,
        Err(e) => return Ok(req.error_response(WebError::from(e)).map_into_right_body()),
    };

    let presented = match req.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(token) => Some(token.to_owned()),
        None if is_urlencoded_form(&req) => {
            if let Some(length) = declared_length(&req).filter(|&length| length > FORM_LIMIT_BYTES)
            {
                return Ok(refuse_oversized(req, length).await.map_into_right_body());
            }
            // Reading the body honours the app's payload limit (413 past it); it is handed back
            // to the handler untouched.
            let body = match req.extract::<Bytes>().await {
                Ok(body) => body,
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            };
            if !is_utf8_form(&body) {
                let error =
                    WebError::BadRequest("The form contained text that is not valid UTF-8.");
                return Ok(req.error_response(error).map_into_right_body());
            }
            let token = serde_urlencoded::from_bytes::<TokenField>(&body)
                .ok()
                .and_then(|field| field.csrf_token);
            req.set_payload(body.into());
            token
        }
        // Uploads: only read when the session has a token to compare with at all.
        None if expected.is_some() && upload::is_multipart(content_type(&req).as_deref()) => {
            if let Some(length) =
                declared_length(&req).filter(|&length| length > upload::MAX_UPLOAD_BYTES)
            {
                return Ok(refuse_oversized(req, length).await.map_into_right_body());
            }
            let body = match upload::read_body(&mut req.take_payload()).await {
                Ok(body) => body,
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            };
            let fields = upload::parse(&content_type(&req).unwrap_or_default(), body.clone()).await;
            req.set_payload(body.into());
            match fields {
                Ok(fields) => fields.get(FORM_FIELD).map(upload::Field::text),
                Err(e) => return Ok(req.error_response(e).map_into_right_body()),
            }
        }
        None => None,
    };

    let valid = match (expected, presented) {
        (Some(expected), Some(presented)) => constant_time_eq(&expected, &presented),
        (None, Some(presented)) => match form_token_is_valid(req.request(), &presented).await {
            Ok(valid) => valid,
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        },
        (_, None) => false,
    };
    if valid {
        Ok(browser_state::apply(next.call(req).await?).map_into_left_body())
    } else {
        // Counted for the log's periodic summary: a line per refusal would let anyone flood the log.
        if let Ok(core) = core_of(req.request()) {
            core.refusals.record(Refusal::Csrf, core.clock.now_ms());
        }
        Ok(req.error_response(WebError::Csrf).map_into_right_body())
    }
}

/// A visitor without a session: the form's token must be the one in their cookie, ours, unexpired.
async fn form_token_is_valid(req: &HttpRequest, presented: &str) -> Result<bool, WebError> {
    let core = core_of(req)?;
    let key = signed_state::key(core).await?;
    let cookie = BrowserCookie::FormToken.read(req);
    Ok(key
        .check_form_token(cookie.as_deref(), presented, core.clock.now_ms())
        .is_ok())
}

/// The CSRF token a page's forms carry: the session's when there is one (signed-in people), else
/// the browser's signed form token, renewed through its cookie when needed — so showing a form to
/// a visitor writes nothing on the server.
pub struct CsrfToken(pub String);

impl CsrfToken {
    pub async fn for_request(req: &HttpRequest) -> Result<Self, WebError> {
        if let Some(token) = req.get_session().get::<String>(keys::CSRF)? {
            return Ok(Self(token));
        }
        let core = core_of(req)?;
        let key = signed_state::key(core).await?;
        let current = BrowserCookie::FormToken.read(req);
        Ok(Self(
            match key.form_token(current.as_deref(), core.clock.now_ms()) {
                FormToken::Current(token) => token,
                FormToken::Fresh(token) => {
                    BrowserCookie::FormToken.set(req, token.clone(), FORM_TOKEN_LIFETIME);
                    token
                }
            },
        ))
    }
}

impl FromRequest for CsrfToken {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Self::for_request(&req).await })
    }
}

fn core_of(req: &HttpRequest) -> Result<&Core, WebError> {
    req.app_data::<web::Data<Core>>()
        .map(|core| core.get_ref())
        .ok_or_else(|| WebError::unexpected(anyhow::anyhow!("the application has no core")))
}

fn content_type(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn declared_length(req: &ServiceRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Answers 413 for a form over the limit. A large body is read and thrown away first, so the
/// browser, still sending, receives the page instead of a reset connection; anything beyond
/// `DRAIN_LIMIT_BYTES` is not worth reading and the connection is simply closed.
async fn refuse_oversized(mut req: ServiceRequest, length: usize) -> ServiceResponse {
    const DRAIN_LIMIT_BYTES: usize = 64 * 1024 * 1024;
    if length <= DRAIN_LIMIT_BYTES {
        let mut payload = req.take_payload();
        while let Some(Ok(_chunk)) = payload.next().await {}
    }
    req.error_response(WebError::TooLarge)
}

fn is_urlencoded_form(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// `&` and `=` are ASCII, so a form is valid UTF-8 exactly when its percent-decoded whole is.
fn is_utf8_form(body: &[u8]) -> bool {
    percent_encoding::percent_decode(body).decode_utf8().is_ok()
}
