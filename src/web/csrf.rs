//! CSRF protection for every state-changing request, in one middleware so no route can forget it.
//! The token lives in the server-side session; forms carry it as `csrf_token`, scripts as the
//! `X-CSRF-Token` header. Anything else is refused with 403 before a handler runs, so nothing changes.

use actix_session::SessionExt;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::app::FORM_LIMIT_BYTES;
use crate::domain::secrets::constant_time_eq;
use crate::domain::sessions::keys;
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
        return Ok(next.call(req).await?.map_into_left_body());
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

    match (expected, presented) {
        (Some(expected), Some(presented)) if constant_time_eq(&expected, &presented) => {
            Ok(next.call(req).await?.map_into_left_body())
        }
        _ => {
            tracing::warn!(path = %req.path(), "refused a request without a valid CSRF token");
            Ok(req.error_response(WebError::Csrf).map_into_right_body())
        }
    }
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
