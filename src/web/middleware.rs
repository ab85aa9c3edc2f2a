//! Cross-cutting HTTP concerns: request ids and the request log line, security headers, the
//! readiness gate that answers 503 until the database schema is in place, and the database gate
//! that bounds every request's wait on the database.

use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpMessage, web};
use tracing::Instrument;

use crate::domain::ids::RequestId;
use crate::domain::{Core, operations};
use crate::web::audience::Audience;
use crate::web::error::WebError;

/// Gives every request an id (echoed as `X-Request-Id`) and logs one line when it completes.
/// Only the path is logged, never the query string: single-use links carry their secret there.
/// Cookies and bodies are never logged.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = RequestId::new();
    req.extensions_mut().insert(request_id.clone());
    let method = req.method().clone();
    let path = req.path().to_owned();
    // The route's pattern, not the path: ids in paths would explode the label set.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %request_id);

    let result = next.call(req).instrument(span.clone()).await;
    // Two decimals are plenty, and keep JSON logs readable.
    let latency_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    let _entered = span.enter();
    if let Some(metrics) = crate::metrics::get() {
        let status = match &result {
            Ok(response) => response.status().as_u16(),
            Err(error) => error.as_response_error().status_code().as_u16(),
        };
        metrics
            .request_seconds
            .with_label_values(&[method.as_str(), route.as_str(), status_class(status)])
            .observe(started.elapsed().as_secs_f64());
    }
    match result {
        Ok(mut response) => {
            tracing::info!(
                method = %method,
                path = %path,
                status = response.status().as_u16(),
                latency_ms,
                "request"
            );
            if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), value);
            }
            Ok(response)
        }
        Err(error) => {
            tracing::error!(method = %method, path = %path, error = %error, latency_ms, "request failed");
            Err(error)
        }
    }
}

/// While the instance drains before stopping, every answer closes its connection: a keep-alive
/// client sends its next request elsewhere instead of keeping this instance busy until it dies.
pub async fn close_connections_while_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let core = req.app_data::<web::Data<Core>>().cloned();
    // An error raised by a middleware (not a handler) arrives without its request and cannot be
    // changed here; those are rare (a refused CSRF token, an abandoned request), and the next
    // answer on that connection closes it.
    let mut response = next.call(req).await?;
    if core.is_some_and(|core| operations::is_draining(&core)) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(response)
}

/// Headers on every response. Scripts and styles only from our own origin: no inline code at all.
/// Console pages show who is signed in and carry CSRF tokens, so they are never cached; static
/// assets set their own Cache-Control, which `DefaultHeaders` leaves in place.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    ),
    ("cache-control", "no-store"),
];

pub fn security_headers(https: bool) -> DefaultHeaders {
    let headers = SECURITY_HEADERS
        .iter()
        .fold(DefaultHeaders::new(), |headers, (name, value)| {
            headers.add((*name, *value))
        });
    if https {
        headers.add((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ))
    } else {
        headers
    }
}

/// Until migrations have run (database down at start-up), everything but health probes and static
/// files answers 503 with a clear page instead of failing on missing tables.
pub async fn readiness_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let exempt = matches!(req.path(), "/healthz" | "/readyz") || req.path().starts_with("/static/");
    let migrated = req
        .app_data::<web::Data<Core>>()
        .is_some_and(|core| operations::is_migrated(core));
    if !exempt && !migrated {
        return Ok(req
            .error_response(WebError::Unavailable(None))
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// A request still running after this may be stuck on a database that is gone: the database is
/// probed, and an outage answers the request at once. Far above a healthy request's latency, far
/// below any database timeout worth setting.
const SLOW_REQUEST: Duration = Duration::from_millis(300);
/// Past the database timeout, how long a request may still run before it is abandoned: the token
/// writer gives up on its batch at the timeout, and its verdict should be the answer.
const ABANDON_AFTER_TIMEOUT: Duration = Duration::from_millis(500);

/// Paths that never touch the database, or report on it themselves.
fn is_exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz") || path.starts_with("/static/")
}

/// Every request's time on the database is bounded: 503 with `Retry-After` instead of a hang.
///
/// - While the database is known to be down (refusing, or stalled: the watcher's probe got no
///   answer), every request is answered 503 at once, without touching the database; the watcher
///   lets requests through again as soon as a probe succeeds.
/// - A request running longer than [`SLOW_REQUEST`] has the database probed; if it is down, the
///   request is abandoned and answered 503 (its database work is cancelled with it; an open
///   transaction rolls back). One still running [`ABANDON_AFTER_TIMEOUT`] past the database
///   timeout is abandoned whatever the probe says.
/// - A session-store failure because the database is unreachable is a 503, not actix-session's
///   bare 500; a request that failed the same way has the database probed.
pub async fn database_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let core = req.app_data::<web::Data<Core>>().cloned();
    let (Some(core), false) = (core, is_exempt(req.path())) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let audience = Audience::of(req.path());
    if operations::is_database_down(&core) {
        return Ok(req
            .error_response(audience.unavailable_error())
            .map_into_right_body());
    }
    // The request is gone once passed on, so an abandoned one is answered by an error in its
    // audience's form (`error_pages` leaves those to render themselves).
    let abandon = |core: &Core| {
        operations::suspect_database(core);
        Err(audience.unavailable_error())
    };
    let deadline =
        tokio::time::Instant::now() + operations::database_timeout(&core) + ABANDON_AFTER_TIMEOUT;
    let request = crate::web::session_backend::noting_unavailable(next.call(req));
    tokio::pin!(request);
    let (result, session_store_unavailable) = tokio::select! {
        biased;
        done = &mut request => done,
        () = tokio::time::sleep(SLOW_REQUEST) => {
            operations::suspect_database(&core);
            tokio::select! {
                biased;
                done = &mut request => done,
                () = operations::database_went_down(&core) => return abandon(&core),
                () = tokio::time::sleep_until(deadline) => return abandon(&core),
            }
        }
    };
    match result {
        Err(_) if session_store_unavailable => abandon(&core),
        Err(error) => Err(error),
        Ok(response) => {
            if failed_on_database(&response) {
                operations::suspect_database(&core);
            }
            Ok(response.map_into_left_body())
        }
    }
}

/// The response reports the database unreachable, in any of the three forms.
fn failed_on_database<B>(response: &ServiceResponse<B>) -> bool {
    let Some(error) = response.response().error() else {
        return false;
    };
    let unreachable =
        |e: &crate::domain::StoreError| matches!(e, crate::domain::StoreError::Unavailable(_));
    error
        .as_error::<WebError>()
        .is_some_and(|e| matches!(e, WebError::Unavailable(Some(_))))
        || error
            .as_error::<crate::domain::oauth::OAuthError>()
            .is_some_and(|e| match e {
                crate::domain::oauth::OAuthError::Store(store) => unreachable(store),
                crate::domain::oauth::OAuthError::NotRecorded(_) => true,
                _ => false,
            })
        || error
            .as_error::<crate::web::api::problem::ApiError>()
            .is_some_and(|e| matches!(e, crate::web::api::problem::ApiError::Unavailable))
}

/// The status class as a label, without an allocation per request.
fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}
