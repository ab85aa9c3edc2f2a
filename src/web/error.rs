//! One error type for the console and one place that turns every error status into a page:
//! the `error_pages` middleware renders a friendly HTML page (with the request id people can quote)
//! for any 4xx/5xx response that is not already HTML or JSON, and logs the cause of 5xx errors
//! (password checks turned away as busy are counted for a periodic summary instead, see
//! `crate::refusals`).

use crate::domain::approvals::ApprovalError;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use askama::Template;

use crate::domain::alerts::AlertError;
use crate::domain::ids::RequestId;
use crate::domain::keys::KeyError;
use crate::domain::oauth::{ErrorCode, IssuanceBudget, OAuthError};
use crate::domain::partners::PartnerError;
use crate::domain::passkeys::PasskeyError;
use crate::domain::password::PasswordError;
use crate::domain::setup::SetupError;
use crate::domain::staff::InvitationLinkError;
use crate::domain::{Core, StoreError};
use crate::refusals::Refusal;
use crate::web::Nav;
use crate::web::api::ApiError;
use crate::web::audience::Audience;
use crate::web::extractors::CurrentUser;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("Please sign in to continue.")]
    LoginRequired,
    /// The request needs a step first (second factor, passkey enrolment, step-up).
    #[error("Continue at {0}.")]
    RedirectTo(&'static str),
    #[error("You do not have access to this page.")]
    Forbidden,
    #[error(
        "This form has expired or was sent from another site. Go back, reload the page and try again."
    )]
    Csrf,
    #[error("{0}")]
    BadRequest(&'static str),
    /// Input that breaks a rule, in words naming what to fix.
    #[error("{0}")]
    Invalid(String),
    #[error("What you sent is too large.")]
    TooLarge,
    #[error("The page you asked for does not exist.")]
    NotFound,
    /// A single-use link that was used, expired or superseded.
    #[error("{0}")]
    Gone(String),
    /// The request cannot be done in the present state; the message says why.
    #[error("{0}")]
    Conflict(String),
    #[error("Too many sign-ins are being checked right now. Wait a moment and try again.")]
    Busy,
    #[error("The console cannot reach its database right now. Try again in a moment.")]
    Unavailable(#[source] Option<StoreError>),
    #[error("Something went wrong on our side. If it keeps happening, quote the request id below.")]
    Unexpected(#[source] anyhow::Error),
}

impl WebError {
    pub fn unexpected(error: impl Into<anyhow::Error>) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::Unavailable(Some(error)),
            StoreError::UnstorableText(_) => {
                Self::BadRequest("The text contains characters that cannot be stored.")
            }
            other => Self::Unexpected(other.into()),
        }
    }
}

impl From<AlertError> for WebError {
    fn from(error: AlertError) -> Self {
        match error {
            AlertError::NotFound => Self::NotFound,
            AlertError::Store(e) => e.into(),
            AlertError::Invalid(message) => Self::BadRequest(message),
            AlertError::Refused(message) => Self::Conflict(message),
        }
    }
}

impl From<PasskeyError> for WebError {
    fn from(error: PasskeyError) -> Self {
        match error {
            PasskeyError::Store(e) => e.into(),
            other => Self::unexpected(other),
        }
    }
}

/// Single-use links (invitations, first-run setup): unknown is "not found"; used, expired or
/// superseded is "gone", with the reason.
impl From<InvitationLinkError> for WebError {
    fn from(error: InvitationLinkError) -> Self {
        match error {
            InvitationLinkError::Unknown => Self::NotFound,
            InvitationLinkError::Password(e) => e.into(),
            InvitationLinkError::Store(e) => e.into(),
            other => Self::Gone(other.to_string()),
        }
    }
}

impl From<SetupError> for WebError {
    fn from(error: SetupError) -> Self {
        match error {
            SetupError::LinkUnknown => Self::NotFound,
            SetupError::LinkUsed | SetupError::LinkExpired | SetupError::AlreadyInitialized => {
                Self::Gone(error.to_string())
            }
            SetupError::Password(e) => e.into(),
            SetupError::Store(e) => e.into(),
            // Command-line only; the setup page never creates further staff.
            other @ (SetupError::AlreadyStaff | SetupError::NotGlobal) => Self::unexpected(other),
        }
    }
}

impl From<KeyError> for WebError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::Store(e) => e.into(),
            KeyError::NotFound => Self::NotFound,
            other => Self::unexpected(other),
        }
    }
}

/// A refused approval step on a page of its own is a page with the reason and its status.
impl From<ApprovalError> for WebError {
    fn from(error: ApprovalError) -> Self {
        match error {
            ApprovalError::Store(e) => e.into(),
            ApprovalError::Keys(e) => e.into(),
            ApprovalError::NotFound => Self::NotFound,
            other => Self::Conflict(other.to_string()),
        }
    }
}

impl From<PartnerError> for WebError {
    fn from(error: PartnerError) -> Self {
        match error {
            PartnerError::Store(e) => e.into(),
            PartnerError::NotFound => Self::NotFound,
            PartnerError::Invalid(message) => Self::BadRequest(message),
            PartnerError::Policy { message, .. } => Self::Invalid(message),
            other => Self::unexpected(other),
        }
    }
}

impl From<PasswordError> for WebError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Busy => Self::Busy,
            other => Self::Unexpected(other.into()),
        }
    }
}

impl From<actix_session::SessionGetError> for WebError {
    fn from(error: actix_session::SessionGetError) -> Self {
        Self::Unexpected(anyhow::anyhow!("session state unreadable: {error}"))
    }
}

impl From<actix_session::SessionInsertError> for WebError {
    fn from(error: actix_session::SessionInsertError) -> Self {
        Self::Unexpected(anyhow::anyhow!("session state not writable: {error}"))
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::LoginRequired | Self::RedirectTo(_) => StatusCode::SEE_OTHER,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadRequest(_) | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Gone(_) => StatusCode::GONE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Busy | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A bare response; `error_pages` dresses it as HTML with the request id.
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::LoginRequired => response
                .insert_header((header::LOCATION, "/login"))
                .finish(),
            Self::RedirectTo(location) => response
                .insert_header((header::LOCATION, *location))
                .finish(),
            Self::Busy | Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "2")).finish()
            }
            _ => response.finish(),
        }
    }
}

/// OAuth endpoints answer in the RFC 6749 §5.2 JSON shape; causes of server errors go to the log.
impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Rejected { code, .. } => match code {
                ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
                ErrorCode::UnauthorizedClient => StatusCode::FORBIDDEN,
                ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_REQUEST,
            },
            Self::UnknownTenant => StatusCode::NOT_FOUND,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Throttled { .. } | Self::IssuanceLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::DpopNonceRequired { .. } => StatusCode::BAD_REQUEST,
            Self::Store(StoreError::Unavailable(_)) | Self::NotRecorded(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Store(StoreError::UnstorableText(_)) => StatusCode::BAD_REQUEST,
            Self::Store(_) | Self::Keys(_) | Self::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (code, description) = match self {
            Self::Rejected { code, description } => (*code, *description),
            Self::UnknownTenant => (ErrorCode::InvalidRequest, "No tenant has this address."),
            Self::BodyTooLarge => (
                ErrorCode::InvalidRequest,
                "The request body is larger than the token service accepts (64 KiB).",
            ),
            Self::Throttled { .. } => (
                ErrorCode::InvalidClient,
                "Too many failed client authentications from here. Retry later.",
            ),
            Self::DpopNonceRequired { .. } => (
                ErrorCode::UseDpopNonce,
                "The DPoP proof must carry the nonce sent in the DPoP-Nonce header.",
            ),
            Self::IssuanceLimited(_) => (
                ErrorCode::TemporarilyUnavailable,
                "This client has obtained as many tokens as it may this minute. Retry after the time in Retry-After.",
            ),
            Self::Store(StoreError::Unavailable(_)) => (
                ErrorCode::TemporarilyUnavailable,
                "The service cannot reach its database. Retry shortly.",
            ),
            Self::NotRecorded(_) => (
                ErrorCode::TemporarilyUnavailable,
                "The token could not be recorded, so none was issued. Retry shortly.",
            ),
            Self::Store(StoreError::UnstorableText(_)) => (
                ErrorCode::InvalidRequest,
                "The request contains characters that cannot be stored (NUL).",
            ),
            Self::Store(_) | Self::Keys(_) | Self::Signing(_) => {
                tracing::error!(cause = ?self, "token service request failed");
                (ErrorCode::ServerError, "Something went wrong on our side.")
            }
        };
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"));
        match self {
            Self::Rejected {
                code: ErrorCode::InvalidClient,
                ..
            } => {
                response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"tokenbroker\""));
            }
            Self::Throttled { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::DpopNonceRequired { nonce } => {
                response.insert_header(("DPoP-Nonce", nonce.as_str()));
            }
            Self::IssuanceLimited(budget) => {
                response.insert_header((header::RETRY_AFTER, budget.reset_secs.max(1).to_string()));
                for (name, value) in budget_headers(budget) {
                    response.insert_header((name, value));
                }
            }
            Self::Store(StoreError::Unavailable(_)) | Self::NotRecorded(_) => {
                response.insert_header((header::RETRY_AFTER, "2"));
            }
            _ => {}
        }
        response.json(serde_json::json!({
            "error": code.as_str(),
            "error_description": description,
        }))
    }
}

/// A client's issuance budget as `RateLimit-*` headers (the IETF draft's names, as the API uses).
pub fn budget_headers(budget: &IssuanceBudget) -> [(&'static str, String); 3] {
    [
        ("ratelimit-limit", budget.limit.to_string()),
        ("ratelimit-remaining", budget.remaining.to_string()),
        ("ratelimit-reset", budget.reset_secs.to_string()),
    ]
}

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    nav: Option<Nav>,
    status: u16,
    title: &'a str,
    message: String,
    request_id: String,
}

/// Middleware: dresses every error status as an HTML page with the request id.
///
/// It must not hold the request while inner services run (the router needs the only reference),
/// so an `Err` from an inner middleware (only the session store failing) becomes a [`RenderedError`]
/// that carries its finished page instead.
pub async fn error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req.extensions().get::<RequestId>().cloned();
    let core = req.app_data::<web::Data<Core>>().cloned();
    let audience = Audience::of(req.path());
    match next.call(req).await {
        Ok(response) => Ok(dress(response.map_into_boxed_body())),
        // Raised outside a handler in the caller's own form (the database gate's 503): as it is.
        Err(error) if audience.speaks(&error) => Err(error),
        Err(error) => {
            let status = error.as_response_error().status_code();
            let html = error_page_html(
                status,
                &error,
                request_id.as_ref(),
                core.as_ref().map(|c| c.get_ref()),
            );
            Err(RenderedError { status, html }.into())
        }
    }
}

fn dress(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    if response.request().path().starts_with("/api/") {
        return dress_problem(response);
    }
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || has_own_body(&response) {
        return response;
    }
    let request_id = response.request().extensions().get::<RequestId>().cloned();
    // A signed-in person keeps the menu on an error page (the route's rule found them).
    let nav = response
        .request()
        .extensions()
        .get::<CurrentUser>()
        .map(|current| Nav::for_user(&current.user, current.csrf_token.clone()));
    let core = response.request().app_data::<web::Data<Core>>().cloned();
    let message = match response.response().error() {
        Some(error) => error_message(
            status,
            error,
            request_id.as_ref(),
            core.as_ref().map(|c| c.get_ref()),
        ),
        None => default_message(status).to_owned(),
    };
    let html = render_page(status, message, request_id.as_ref(), nav);
    let (request, old) = response.into_parts();
    let mut fresh = HttpResponse::build(status);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.append_header((name.clone(), value.clone()));
        }
    }
    let fresh = fresh
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .body(html);
    ServiceResponse::new(request, fresh)
}

/// The API's errors, whatever raised them, as problem documents carrying the request id.
fn dress_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let request_id = response
        .request()
        .extensions()
        .get::<RequestId>()
        .map(RequestId::to_string);
    let raised = response.response().error();
    let already_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct == crate::web::api::problem::CONTENT_TYPE);
    if raised.is_none() && already_problem {
        // A problem written ahead (an idempotent replay): keep it as it is.
        return response;
    }
    if status.is_server_error() {
        tracing::error!(request_id = %request_id.clone().unwrap_or_default(),
            status = status.as_u16(), cause = ?raised, "request failed");
    }
    let problem = raised
        .and_then(|e| e.as_error::<ApiError>())
        .map(|e| e.to_response(request_id.as_deref()));
    let problem =
        problem.unwrap_or_else(|| ApiError::for_status(status).to_response(request_id.as_deref()));
    let (request, old) = response.into_parts();
    let mut fresh = problem;
    for (name, value) in old.headers() {
        if !fresh.headers().contains_key(name) {
            fresh.headers_mut().append(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(request, fresh)
}

/// The page for an error: our own message for a `WebError`, a safe default otherwise. Causes of
/// server errors go to the log (with the request id), never to the page.
fn error_page_html(
    status: StatusCode,
    error: &actix_web::Error,
    request_id: Option<&RequestId>,
    core: Option<&Core>,
) -> String {
    render_page(
        status,
        error_message(status, error, request_id, core),
        request_id,
        None,
    )
}

/// What the page says about `error`; a server error is logged with its cause (never shown),
/// except a password check refused as busy: a sign-in flood makes thousands, so they are counted
/// for the periodic summary instead.
fn error_message(
    status: StatusCode,
    error: &actix_web::Error,
    request_id: Option<&RequestId>,
    core: Option<&Core>,
) -> String {
    let busy = matches!(error.as_error::<WebError>(), Some(WebError::Busy));
    if let (true, Some(core)) = (busy, core) {
        core.refusals.record(Refusal::Busy, core.clock.now_ms());
    } else if status.is_server_error() {
        tracing::error!(request_id = %request_id.map(RequestId::to_string).unwrap_or_default(),
            status = status.as_u16(), cause = ?error, "request failed");
    }
    error
        .as_error::<WebError>()
        .map_or_else(|| default_message(status).to_owned(), ToString::to_string)
}

/// `nav`: the signed-in person's menu; without one (a partner, a signed-out visitor) the page
/// offers no way into the console.
fn render_page(
    status: StatusCode,
    message: String,
    request_id: Option<&RequestId>,
    nav: Option<Nav>,
) -> String {
    let page = ErrorPage {
        nav,
        status: status.as_u16(),
        title: status.canonical_reason().unwrap_or("Error"),
        message,
        request_id: request_id.map(RequestId::to_string).unwrap_or_default(),
    };
    page.render().unwrap_or_else(|_| "Error".to_owned())
}

/// An error page rendered ahead of time, for errors that surface outside any handler.
#[derive(Debug)]
pub struct RenderedError {
    status: StatusCode,
    html: String,
}

impl std::fmt::Display for RenderedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error page {}", self.status)
    }
}

impl ResponseError for RenderedError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        // Outer middlewares do not touch `Err` results, so this page carries its own headers.
        for (name, value) in crate::web::middleware::SECURITY_HEADERS {
            response.insert_header((*name, *value));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "2"));
        }
        response
            .content_type("text/html; charset=utf-8")
            .body(self.html.clone())
    }
}

/// Pages that rendered their own HTML (forms with field errors) or JSON (APIs) are left alone.
fn has_own_body(response: &ServiceResponse<BoxBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html") || ct.starts_with("application/json"))
}

fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request could not be understood. Check what you entered and try again.",
        403 => "You do not have access to this page.",
        404 | 405 | 410 => "The page you asked for does not exist.",
        413 => "What you sent is too large.",
        415 => "This kind of request is not supported here.",
        429 => "Too many requests. Wait a moment and try again.",
        503 => "The console is temporarily unavailable. Try again in a moment.",
        s if s >= 500 => {
            "Something went wrong on our side. If it keeps happening, quote the request id below."
        }
        _ => "The request could not be completed.",
    }
}
