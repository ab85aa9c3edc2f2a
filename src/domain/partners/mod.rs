//! Partner access: the scope catalogue, access requests (submitted on a public page, confirmed by
//! e-mail, decided by a tenant admin), grants, and the credentials minted under them — with one-time
//! retrieval, verification, revocation and expiry.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clock::Millis;
use crate::mail::{self, Rendered};
use crate::store::StoreError;
use crate::store::staff::OutgoingMail;

pub mod client_keys;
mod credentials;
mod listing;
pub mod policies;
mod requests;
mod scopes;

pub use credentials::*;
pub use listing::*;
pub use requests::*;
pub use scopes::*;

/// Unconfirmed requests lapse after this.
pub const CONFIRMATION_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Retrieval links work once, within this.
pub const RETRIEVAL_WINDOW: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_CREDENTIAL_DAYS: i64 = 30;
/// Until environments are configurable, every secret says it is for the live service.
pub const ENVIRONMENT: &str = "live";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub id: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Unconfirmed,
    Pending,
    Approved,
    Denied,
    Withdrawn,
    Expired,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unconfirmed => "unconfirmed",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Unconfirmed,
            Self::Pending,
            Self::Approved,
            Self::Denied,
            Self::Withdrawn,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone)]
pub struct AccessRequest {
    pub id: String,
    pub organisation: String,
    pub contact_name: String,
    pub email: String,
    pub scopes: Vec<String>,
    pub justification: String,
    pub status: RequestStatus,
    pub created_at: Millis,
    pub confirmed_at: Option<Millis>,
    pub decided_at: Option<Millis>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    pub grant_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    /// The access request whose approval created it.
    pub request_id: String,
    pub organisation: String,
    pub contact_email: String,
    pub scopes: Vec<String>,
    pub max_lifetime_days: i64,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct CredentialView {
    pub id: String,
    pub kind: String,
    pub client_id: Option<String>,
    pub status: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
    pub revoke_reason: Option<String>,
    /// A client for a gateway: it may also introspect tokens and read revocations.
    pub may_introspect: bool,
    pub organisation: String,
    pub grant_id: String,
    pub created_by: String,
    pub last_used_at: Option<Millis>,
    pub last_used_ip: Option<String>,
    pub display_prefix: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("Too many requests from here. Try again in an hour.")]
    RateLimited,
    #[error("This link is not valid.")]
    LinkUnknown,
    #[error("This link has already been used.")]
    LinkUsed,
    #[error("This link has expired.")]
    LinkExpired,
    #[error("Someone else decided this request first.")]
    AlreadyDecided,
    #[error("That does not exist.")]
    NotFound,
    /// A policy setting (networks, limit) that cannot be used; names the field.
    #[error("{message}")]
    Policy {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn queue(recipient: &str, rendered: Rendered, now: Millis) -> OutgoingMail {
    mail::queued(recipient, rendered, now)
}

fn render(
    subject: &str,
    name: &str,
    paragraphs: Vec<String>,
    link: Option<(&str, &SecretString)>,
) -> Result<Rendered, PartnerError> {
    mail::notice(subject, name, &paragraphs, link)
        .map_err(|e| StoreError::Unexpected(e.to_string()).into())
}

fn link(base: &Url, path: &str, token: &SecretString) -> Result<SecretString, PartnerError> {
    let mut url = base
        .join(path)
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("token", token.expose_secret());
    Ok(SecretString::from(url.to_string()))
}

/// `[a-z][a-z0-9:._-]{1,63}`, like `payments:read`.
pub fn parse_scope_name(raw: &str) -> Result<String, PartnerError> {
    let name = raw.trim();
    let valid = (2..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":._-".contains(c));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(PartnerError::Invalid(
            "A scope name is 2–64 characters: lower-case letters, digits and : . _ -, starting with a letter.",
        ))
    }
}

/// A number of days as typed in a form; anything but a whole number is refused, never read as 0.
pub fn parse_days(raw: &str) -> Result<i64, PartnerError> {
    raw.trim()
        .parse()
        .map_err(|_| PartnerError::Invalid("Enter the lifetime as a whole number of days."))
}

/// Text a partner typed: trimmed, control characters removed, bounded.
pub fn clean_text(raw: &str, max_chars: usize, what: &'static str) -> Result<String, PartnerError> {
    let text: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    if text.is_empty() {
        return Err(PartnerError::Invalid(what));
    }
    Ok(text.chars().take(max_chars).collect())
}
