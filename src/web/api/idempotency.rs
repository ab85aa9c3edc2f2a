//! The `Idempotency-Key` header on the API's creating POSTs: the request body is read once to
//! fingerprint it, the first answer is remembered, and a retry with the same key and body gets that
//! answer again (marked `Idempotent-Replayed: true`) instead of a second tenant or credential.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use crate::domain::Core;
use crate::domain::api_keys::ApiCaller;
use crate::domain::idempotency::{self, Claim, MAX_KEY_CHARS};
use crate::domain::ids::RequestId;
use crate::web::api::ApiError;

pub const HEADER: &str = "idempotency-key";

/// Marks an answer that carries a secret (a one-time link): it is never stored for replay. A retry
/// learns that the first request succeeded, not the secret.
#[derive(Debug, Clone, Copy)]
pub struct CarriesSecret;

/// The header's value, when the request carries one.
pub fn key_of(req: &ServiceRequest) -> Option<Result<String, ApiError>> {
    let raw = req.headers().get(HEADER)?;
    Some(
        raw.to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_CHARS)
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiError::Malformed(format!(
                    "Idempotency-Key is 1 to {MAX_KEY_CHARS} visible ASCII characters."
                ))
            }),
    )
}

/// Runs the request unless this key has answered it already; never fails before the handler ran
/// (refusals are problem responses), so the caller's headers still apply.
pub async fn run_once(
    key: String,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (core, api_key) = match claim(&key, &mut req).await {
        Ok((core, api_key, Claim::First)) => (core, api_key),
        Ok((
            _,
            _,
            Claim::Replay {
                status,
                content_type,
                body,
            },
        )) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let body = with_request_id(&req, &content_type, body);
            let mut replay = HttpResponse::build(status);
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                replay.insert_header((header::CONTENT_TYPE, value));
            }
            let replay = replay
                .insert_header(("idempotent-replayed", "true"))
                .body(body);
            return Ok(req.into_response(replay));
        }
        Ok((_, _, Claim::InProgress)) => {
            let busy = ApiError::Conflict(
                "A request with this Idempotency-Key is still being answered; retry shortly."
                    .into(),
            );
            return Ok(req.error_response(busy).map_into_boxed_body());
        }
        Ok((_, _, Claim::Mismatch)) => {
            let reused = ApiError::Unprocessable {
                detail: "This Idempotency-Key was used for a different request.".into(),
                field: Some("Idempotency-Key".into()),
            };
            return Ok(req.error_response(reused).map_into_boxed_body());
        }
        Err(error) => return Ok(req.error_response(error).map_into_boxed_body()),
    };
    let held = HeldClaim(Some((core.clone(), api_key.clone(), key.clone())));
    let response = next.call(req).await?;
    // From here the request has an answer; it is remembered (or released, for a 5xx) below.
    held.settle();
    let (request, response) = response.into_parts();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let secret = response.extensions().get::<CarriesSecret>().is_some();
    let (head, body) = response.into_parts();
    let bytes = to_bytes(body)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading the answer: {}", e.into())))?;
    let remembered = if secret {
        let kept = ApiError::Conflict(
            "The first request with this Idempotency-Key succeeded and returned a one-time link, \
             which is not kept. If it was lost, revoke that credential and mint another."
                .into(),
        )
        .to_response(None);
        let body = to_bytes(kept.into_body()).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let kind = crate::web::api::problem::CONTENT_TYPE;
        idempotency::remember(&core, &api_key, &key, 409, kind, &text).await
    } else {
        let text = String::from_utf8_lossy(&bytes);
        idempotency::remember(&core, &api_key, &key, status.as_u16(), &content_type, &text).await
    };
    if let Err(error) = remembered {
        // The change is done; the caller gets its answer. A retry will find the key in progress.
        tracing::warn!(%error, "could not remember an idempotent answer");
    }
    Ok(ServiceResponse::new(
        request,
        head.set_body(BoxBody::new(bytes)),
    ))
}

/// A claim for a request under way. Dropped before the request has an answer — it failed in a
/// middleware, or was cancelled (the client went away, the database gate gave up on it) — it lets
/// go of the claim, so the retry runs instead of hearing "in progress" until the lease runs out.
struct HeldClaim(Option<(Core, String, String)>);

impl HeldClaim {
    /// The request has its answer: the claim is the answer's to keep or release.
    fn settle(mut self) {
        self.0 = None;
    }
}

impl Drop for HeldClaim {
    fn drop(&mut self) {
        let Some((core, api_key, key)) = self.0.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime to release it on: the lease runs out instead.
        };
        runtime.spawn(async move {
            if let Err(error) = idempotency::release(&core, &api_key, &key).await {
                tracing::warn!(%error, "could not release an unanswered Idempotency-Key; its lease runs out instead");
            }
        });
    }
}

/// A replayed problem names this request (the one a person would quote), not the first.
fn with_request_id(req: &ServiceRequest, content_type: &str, body: String) -> String {
    if content_type != crate::web::api::problem::CONTENT_TYPE {
        return body;
    }
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(RequestId::to_string);
    match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut problem)) => {
            problem.insert("request_id".into(), id.into());
            serde_json::Value::Object(problem).to_string()
        }
        _ => body,
    }
}

/// Reads the body once (it is put back for the handler) and claims the key for this request.
async fn claim(key: &str, req: &mut ServiceRequest) -> Result<(Core, String, Claim), ApiError> {
    let core = req
        .app_data::<web::Data<Core>>()
        .map(|core| core.get_ref().clone())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("core not configured")))?;
    let api_key = req
        .extensions()
        .get::<ApiCaller>()
        .map(|c| c.key_id.clone())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no key before idempotency")))?;
    let body = req
        .extract::<web::Bytes>()
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let print = idempotency::fingerprint(req.method().as_str(), &req.uri().to_string(), &body);
    req.set_payload(Payload::from(body));
    let claim = idempotency::claim(&core, &api_key, key, &print).await?;
    Ok((core, api_key, claim))
}
