//! Cross-cutting HTTP concerns: request ids and the request log line, security headers, the
//! readiness gate that answers 503 until the database schema is in place, and the console's
//! database gate that answers 503 at once while the database is down.

use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{HttpMessage, web};
use tracing::Instrument;

use crate::domain::ids::RequestId;
use crate::domain::{Core, operations};
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

/// A console request still running after this may be stuck on a database that is gone: the database
/// is probed, and an outage answers the request at once. Far above a healthy request's latency, far
/// below the pool's acquire timeout (3 s).
const SLOW_REQUEST: Duration = Duration::from_millis(300);

/// The console's answer to a database outage: 503 "cannot reach its database", fast.
///
/// - While the database is known to be down, every console request gets the 503 page at once,
///   without touching the database (the watcher probes, and lets requests through again as soon as
///   a probe succeeds).
/// - A request running longer than [`SLOW_REQUEST`] has the database probed; if it is down, the
///   request is abandoned and answered 503 (its database work is cancelled with it).
/// - A session-store failure because the database is unreachable is a 503, not actix-session's
///   bare 500; a page that failed the same way has the database probed.
pub async fn database_gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(core) = req.app_data::<web::Data<Core>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if operations::is_database_down(&core) {
        return Ok(req
            .error_response(WebError::Unavailable(None))
            .map_into_right_body());
    }
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
                () = operations::database_went_down(&core) => {
                    return Err(WebError::Unavailable(None).into());
                }
            }
        }
    };
    match result {
        Err(_) if session_store_unavailable => Err(WebError::Unavailable(None).into()),
        Err(error) => Err(error),
        Ok(response) => {
            let failed_on_database = response
                .response()
                .error()
                .and_then(|e| e.as_error::<WebError>())
                .is_some_and(|e| matches!(e, WebError::Unavailable(Some(_))));
            if failed_on_database {
                operations::suspect_database(&core);
            }
            Ok(response.map_into_left_body())
        }
    }
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
