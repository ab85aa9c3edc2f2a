//! The OAuth 2.0 token service of each tenant: client authentication (RFC 6749 §2.3.1), the
//! client-credentials grant issuing RFC 9068 JWT access tokens, introspection (RFC 7662),
//! revocation (RFC 7009), and the revocation feed. Handlers in `web::oauth` only translate HTTP.

use crate::domain::ids::TenantId;
use crate::domain::keys::KeyError;
use crate::store::StoreError;

mod assertion;
mod cache;
mod client;
mod dpop;
mod grant;
mod introspection;
mod jwt;
pub mod nonce;
mod recorder;
mod secrets;

pub use assertion::{JWT_BEARER, claimed_client};
pub use cache::VerifiedCache;
pub use client::*;
pub use dpop::{DPOP_ALGORITHMS, ProvenKey, verify_proof};
pub use grant::*;
pub use introspection::*;
pub use jwt::*;
pub use recorder::{NotRecorded, TokenRecorder};
pub use secrets::*;

/// RFC 6749 §5.2 error codes (and the few RFC 7009 adds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    UnsupportedTokenType,
    /// RFC 9449: the DPoP proof is missing, malformed, stale, replayed or for another request.
    InvalidDpopProof,
    /// RFC 9449 §8: retry with the nonce in the `DPoP-Nonce` header.
    UseDpopNonce,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// An RFC error answer: the code, and a description safe to show the caller.
    #[error("{}: {description}", code.as_str())]
    Rejected {
        code: ErrorCode,
        description: &'static str,
    },
    /// The URL names no tenant.
    #[error("no such tenant")]
    UnknownTenant,
    /// The request body is over the size limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// Too many failed client authentications.
    #[error("too many failed client authentications")]
    Throttled { retry_after_secs: u64 },
    /// The DPoP proof lacks the nonce the tenant requires (or has a stale one): `nonce` is the one
    /// to use.
    #[error("a DPoP nonce is required")]
    DpopNonceRequired { nonce: String },
    /// The client has obtained as many tokens as it may this minute.
    #[error("the client's issuance limit is reached")]
    IssuanceLimited(IssuanceBudget),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token's batch could not be recorded: nothing was handed out.
    #[error(transparent)]
    NotRecorded(#[from] NotRecorded),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("token signing failed: {0}")]
    Signing(String),
}

impl OAuthError {
    pub fn rejected(code: ErrorCode, description: &'static str) -> Self {
        Self::Rejected { code, description }
    }
}

/// A client's issuance budget in the current minute (shown as `RateLimit-*` headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuanceBudget {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window starts over.
    pub reset_secs: u64,
}

/// The tenant a token endpoint serves, as resolved from the URL.
#[derive(Debug, Clone)]
pub struct ServedTenant {
    pub id: TenantId,
    pub slug: String,
    /// DPoP proofs must carry a nonce we handed out (RFC 9449 §8).
    pub dpop_nonce: bool,
}

impl ServedTenant {
    /// RFC 8414: the issuer is the URL the metadata path is derived from.
    pub fn issuer(&self, public_url: &url::Url) -> String {
        format!("{}t/{}", public_url, self.slug)
    }

    /// The audience of this tenant's access tokens: the partner APIs it exposes.
    pub fn audience(&self, public_url: &url::Url) -> String {
        format!("{}t/{}/api", public_url, self.slug)
    }
}
