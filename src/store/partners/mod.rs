//! Scopes, access requests, grants and credentials. Every method takes the tenant id and filters on
//! it; decisions and revocations are single guarded UPDATEs, so two people acting at once cannot both
//! succeed.

pub mod client_keys;
mod credentials;
pub mod policies;
mod requests;

pub(crate) use credentials::{GrantRevocation, revoke_grants_tx};
mod secrets;

use crate::clock::Millis;
use crate::domain::ids::UserId;
use crate::domain::partners::{CredentialKind, CredentialStatus};
use crate::domain::secrets::SecretDigest;
use crate::domain::tenants::TenantStatus;

/// A new, unconfirmed request.
pub struct NewRequest<'a> {
    pub id: &'a str,
    pub organisation: &'a str,
    pub contact_name: &'a str,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub scopes: &'a [String],
    pub justification: &'a str,
    pub confirm_token: &'a SecretDigest,
    pub ip: Option<&'a str>,
    pub now: Millis,
}

/// What an approval writes.
pub struct Approval<'a> {
    pub request_id: &'a str,
    pub grant_id: &'a str,
    pub decided_by: UserId,
    pub scopes: &'a [String],
    pub max_lifetime_days: i64,
    pub now: Millis,
}

/// Narrows the credentials list.
#[derive(Debug, Default)]
pub struct CredentialFilter<'a> {
    pub status: Option<StatusFilter>,
    pub kind: Option<&'a str>,
    pub grant: Option<&'a str>,
    /// Organisation or contact e-mail contains this.
    pub partner: Option<&'a str>,
    /// Client id or displayed secret prefix starts with this.
    pub prefix: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Active,
    /// Active and expiring at or before this time.
    ExpiringBefore(Millis),
    Expired,
    Revoked,
}

/// A credential's secrets, for adding another.
pub struct SecretsState {
    pub kind: CredentialKind,
    pub status: CredentialStatus,
    pub expires_at: Millis,
    pub contact_email: String,
    /// Secrets neither revoked nor expired (retrieved or waiting to be).
    pub live: i64,
}

/// Another secret for an existing credential, to be retrieved through its link.
pub struct NewSecret<'a> {
    pub credential: &'a str,
    pub retrieval: &'a SecretDigest,
    pub expires_at: Millis,
    pub retrieval_expires_at: Millis,
    pub now: Millis,
}

/// A credential about to expire, for the week-ahead notice.
#[derive(Debug, sqlx::FromRow)]
pub struct ExpiryNotice {
    pub credential_id: String,
    pub tenant_id: String,
    pub expires_at: i64,
    pub organisation: String,
    pub kind: CredentialKind,
}

/// Which grants a bulk revocation covers.
pub enum GrantSelection<'a> {
    One(&'a str),
    /// Every grant whose partner contact is this e-mail address.
    OfPartner(&'a str),
    /// Every grant of the tenant: the incident kill switch.
    All,
}

/// What a denial writes.
pub struct Denial<'a> {
    pub request_id: &'a str,
    pub decided_by: UserId,
    pub reason: &'a str,
    pub now: Millis,
}

pub enum Decided {
    Yes(Option<String>),
    /// Someone else decided first (or the request is not pending).
    AlreadyDecided,
}

/// A credential and its first secret's retrieval link, as minted.
pub struct NewCredential<'a> {
    pub id: &'a str,
    pub grant_id: &'a str,
    pub kind: &'a str,
    pub client_id: Option<&'a str>,
    pub may_introspect: bool,
    pub created_by: UserId,
    pub expires_at: Millis,
    pub retrieval_token: &'a SecretDigest,
    pub retrieval_expires_at: Millis,
    pub now: Millis,
    pub policy: policies::PolicyValues<'a>,
}

/// The credential whose secret a retrieval link just revealed.
#[derive(Debug, sqlx::FromRow)]
pub struct RetrievedSecret {
    pub credential_id: String,
    pub tenant_id: String,
    pub client_id: Option<String>,
}

/// The credential behind a presented secret, for verification.
#[derive(Debug, sqlx::FromRow)]
pub struct SecretLookup {
    pub secret_id: String,
    pub credential_id: String,
    pub tenant_id: String,
    pub kind: CredentialKind,
    pub client_id: Option<String>,
    pub may_introspect: i64,
    pub secret_hash: String,
    pub credential_status: CredentialStatus,
    pub credential_expires_at: i64,
    pub secret_expires_at: i64,
    pub secret_revoked_at: Option<i64>,
    pub grant_revoked_at: Option<i64>,
    pub tenant_status: TenantStatus,
    pub scopes: String,
    pub last_used_at: Option<i64>,
}

/// One secret of a credential, as support sees it: never the secret, only when and how far it went.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecretRow {
    pub id: String,
    pub display_prefix: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub retrieved_at: Option<i64>,
    pub revoked_at: Option<i64>,
}
