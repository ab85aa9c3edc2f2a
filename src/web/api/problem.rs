//! RFC 9457 problem details: every error of the automation API, whatever raised it (a handler, the
//! route rule, the JSON extractor, the router), leaves as `application/problem+json` with a stable
//! `type` per kind of error, a `title`, a `detail` safe to show, and the request id.

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::StoreError;
use crate::domain::api_keys::{ApiKeyError, AuthenticationError, KeyRefusal};
use crate::domain::partners::PartnerError;
use crate::domain::tenants::TenantError;

pub const CONTENT_TYPE: &str = "application/problem+json";
const TYPE_BASE: &str = "https://tokenbroker.dev/problems/";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("Send a valid automation key as `Authorization: Bearer tba_live_…` or `x-api-key`.")]
    Unauthenticated,
    #[error("This key may not {0}.")]
    Forbidden(&'static str),
    /// The key may do this kind of thing, but not this one (its own approval request, say).
    #[error("{0}")]
    Refused(String),
    #[error("No such resource, or it is not visible to this key.")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("The request body is larger than the API accepts.")]
    TooLarge,
    /// Says which content types the operation takes.
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("{detail}")]
    Unprocessable {
        detail: String,
        field: Option<String>,
    },
    #[error("Too many requests. Retry after {retry_after} seconds.")]
    RateLimited { retry_after: u64 },
    #[error("The service cannot reach its database right now. Retry in a moment.")]
    Unavailable,
    #[error("Something went wrong on our side. Quote the request id if it keeps happening.")]
    Internal(#[source] anyhow::Error),
}

const SEND_JSON: &str = "Send the body as application/json.";

impl ApiError {
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            detail: detail.into(),
            field: None,
        }
    }

    /// The `type` URI's last segment and the `title`: fixed per kind, so scripts can branch on them.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::Malformed(_) => ("malformed-request", "Malformed request"),
            Self::Unauthenticated => ("unauthenticated", "Authentication required"),
            Self::Forbidden(_) => ("permission-missing", "Permission missing"),
            Self::Refused(_) => ("not-allowed", "Not allowed"),
            Self::NotFound => ("not-found", "Not found"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::TooLarge => ("body-too-large", "Body too large"),
            Self::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            Self::Unprocessable { .. } => ("rule-violated", "Request breaks a rule"),
            Self::RateLimited { .. } => ("rate-limited", "Too many requests"),
            Self::Unavailable => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }

    /// The problem document, with the request id when the caller knows it.
    pub fn to_response(&self, request_id: Option<&str>) -> HttpResponse {
        let (slug, title) = self.kind();
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::Unauthenticated => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"tokenbroker-api\""));
            }
            Self::RateLimited { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            Self::Unavailable => {
                response.insert_header((header::RETRY_AFTER, "2"));
            }
            _ => {}
        }
        let field = match self {
            Self::Unprocessable { field, .. } => field.clone(),
            _ => None,
        };
        let body = Problem {
            r#type: format!("{TYPE_BASE}{slug}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail: self.to_string(),
            request_id: request_id.map(str::to_owned),
            field,
        };
        let json = serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)))
            .body(json)
    }

    /// A problem for a status raised outside the API's own code (router, payload limits, gates).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::Malformed("The request could not be read.".into()),
            401 => Self::Unauthenticated,
            403 => Self::Forbidden("do this"),
            404 | 405 => Self::NotFound,
            409 => Self::Conflict("The request conflicts with the current state.".into()),
            413 => Self::TooLarge,
            415 => Self::UnsupportedMediaType(SEND_JSON),
            422 => Self::unprocessable("The request breaks a rule."),
            429 => Self::RateLimited { retry_after: 60 },
            503 => Self::Unavailable,
            _ => Self::Internal(anyhow::anyhow!("status {status}")),
        }
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of error.
    pub r#type: String,
    pub title: String,
    pub status: u16,
    /// What went wrong, safe to show to a person.
    pub detail: String,
    pub request_id: Option<String>,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Refused(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // The request id is added where the request is known (`web::error::error_pages`).
        self.to_response(None)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::UnstorableText(_) => Self::Malformed(
                "The request contains characters that cannot be stored (NUL).".into(),
            ),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<AuthenticationError> for ApiError {
    fn from(error: AuthenticationError) -> Self {
        match error {
            AuthenticationError::Refused(KeyRefusal::Throttled) => {
                Self::RateLimited { retry_after: 60 }
            }
            AuthenticationError::Refused(_) => Self::Unauthenticated,
            AuthenticationError::Store(e) => e.into(),
        }
    }
}

impl From<ApiKeyError> for ApiError {
    fn from(error: ApiKeyError) -> Self {
        match error {
            ApiKeyError::Store(e) => e.into(),
            ApiKeyError::NotFound => Self::NotFound,
            other => Self::unprocessable(other.to_string()),
        }
    }
}

impl From<PartnerError> for ApiError {
    fn from(error: PartnerError) -> Self {
        match error {
            PartnerError::Store(e) => e.into(),
            PartnerError::NotFound => Self::NotFound,
            PartnerError::AlreadyDecided => Self::Conflict(error.to_string()),
            PartnerError::RateLimited => Self::RateLimited { retry_after: 3600 },
            PartnerError::Policy { field, message } => Self::Unprocessable {
                detail: message,
                field: Some(field.to_owned()),
            },
            other => Self::unprocessable(other.to_string()),
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(error: TenantError) -> Self {
        match error {
            TenantError::Store(e) => e.into(),
            TenantError::SlugTaken => Self::Conflict(error.to_string()),
            TenantError::Approval(refusal) => refusal.into(),
            other => Self::unprocessable(other.to_string()),
        }
    }
}

/// JSON bodies: wrong content type 415, too large 413, unreadable 400, and well-formed JSON that
/// does not fit the schema (a wrong type, a missing or unknown field) 422 naming the field.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let problem = match &error {
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(SEND_JSON),
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::TooLarge
        }
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::Unprocessable {
            field: field_named_in(&e.to_string()),
            detail: e.to_string(),
        },
        JsonPayloadError::Deserialize(e) => {
            ApiError::Malformed(format!("The body is not valid JSON: {e}"))
        }
        _ => ApiError::Malformed("The body could not be read.".into()),
    };
    problem.into()
}

/// serde names the field between backticks: "unknown field `colour2`, expected …".
fn field_named_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let length = message.get(start..)?.find('`')?;
    message.get(start..start + length).map(str::to_owned)
}
