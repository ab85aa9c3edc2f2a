//! The automation API under `/api/v1`: JSON over the same domain use cases as the console, for
//! callers with a personal automation key (`domain::api_keys`). Access is the route table's rule
//! (`Key`, `KeyInTenant`, `AnyKey`), checked in `web::authz` before a handler runs; errors are
//! RFC 9457 problem documents (`problem`); the OpenAPI document is generated from these handlers
//! (`openapi`).

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::api_keys::ApiCaller;
use crate::domain::events::RequestContext;
use crate::domain::tenants::Tenant;
use crate::web::extractors::request_context;

pub mod alerts;
pub mod approvals;
pub mod client_keys;
pub mod client_policies;
pub mod credentials;
pub mod docs;
pub mod events;
pub mod idempotency;
pub mod keys;
pub mod me;
pub mod openapi;
pub mod problem;
pub mod requests;
pub mod scopes;
pub mod staff;
pub mod tenants;

pub use problem::ApiError;

/// The per-key request budget (`api_rate_limit`).
#[derive(Debug, Clone, Copy)]
pub struct ApiLimits {
    pub per_minute: u32,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// The key's caller, as the route's rule authenticated it, and the request's context for events
/// (which carries the key's id, so the log says through which key the owner acted).
pub struct Caller {
    pub caller: ApiCaller,
    pub context: RequestContext,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<ApiCaller>()
                .cloned()
                .map(|caller| Self {
                    context: RequestContext {
                        api_key: Some(caller.key_id.clone()),
                        ..request_context(req)
                    },
                    caller,
                })
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("the route's rule authenticated no key"))
                }),
        )
    }
}

/// The tenant named by the URL, resolved by the route's rule (and visible to the key).
pub struct InTenant(pub Tenant);

impl FromRequest for InTenant {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Tenant>()
                .cloned()
                .map(Self)
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("the route's rule resolved no tenant"))
                }),
        )
    }
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// At most this many items (default 50, at most 500).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Paging {
    pub fn limit(&self) -> Result<i64, ApiError> {
        page_limit(self.limit)
    }
}

/// A list's `?limit=`: default 50, 1 to 500.
pub fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    {
        match limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            Some(_) => Err(ApiError::Unprocessable {
                detail: format!("limit is 1 to {MAX_LIMIT}."),
                field: Some("limit".into()),
            }),
        }
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}
