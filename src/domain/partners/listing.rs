//! Finding grants and credentials inside a tenant: the credentials list's filters, as people type
//! them, and its keyset paging.

use super::*;
use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::domain::paging::{next_cursor, parse_cursor};
use crate::store::partners::{CredentialFilter, SecretRow, StatusFilter};

/// Credentials per page of the list.
pub const CREDENTIALS_PAGE: i64 = 50;
/// "Expiring" in the list's status filter means within this.
pub const EXPIRING_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// The grant `id` of `tenant`; another tenant's grant does not exist here.
pub async fn grant(core: &Core, tenant: TenantId, id: &str) -> Result<Grant, PartnerError> {
    core.store
        .grant(tenant, id)
        .await?
        .ok_or(PartnerError::NotFound)
}

/// Grants per page of the list.
pub const GRANTS_PAGE: i64 = 50;

/// One page of a tenant's grants, newest first, and the cursor of the next page if there is one.
pub struct GrantPage {
    pub grants: Vec<Grant>,
    pub next: Option<String>,
}

/// A tenant's grants, newest first, with the same "<created_at>.<id>" cursor as the credentials.
pub async fn grants(
    core: &Core,
    tenant: TenantId,
    after: Option<&str>,
    limit: i64,
) -> Result<GrantPage, StoreError> {
    let limit = limit.clamp(1, 500);
    let mut grants = core
        .store
        .grants_of(tenant, after.and_then(parse_cursor), limit + 1)
        .await?;
    let next = next_cursor(&mut grants, limit, |g| (g.created_at, g.id.as_str()));
    Ok(GrantPage { grants, next })
}

/// A credential of `tenant` with its secrets (never their values); another tenant's does not exist.
pub async fn credential(
    core: &Core,
    tenant: TenantId,
    id: &str,
) -> Result<(CredentialView, Vec<SecretRow>), PartnerError> {
    let credential = core
        .store
        .credential(tenant, id)
        .await?
        .ok_or(PartnerError::NotFound)?;
    let secrets = core.store.secrets_of(tenant, id).await?;
    Ok((credential, secrets))
}

/// Where a client secret is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretState {
    /// Its one-time retrieval link has not been opened yet.
    Waiting,
    Live,
    Retired,
    Expired,
}

impl SecretState {
    pub fn of(secret: &SecretRow, now: Millis) -> Self {
        if secret.revoked_at.is_some() {
            Self::Retired
        } else if secret.expires_at <= now {
            Self::Expired
        } else if secret.retrieved_at.is_none() {
            Self::Waiting
        } else {
            Self::Live
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Live => "live",
            Self::Retired => "retired",
            Self::Expired => "expired",
        }
    }
}

/// The list's filters as they come from a form or a query string. Blank means "any"; a word the
/// list does not know (status or kind) also means "any", like a filter left unset.
#[derive(Debug, Default, Clone, Copy)]
pub struct CredentialSearch<'a> {
    /// `active`, `expiring` (within [`EXPIRING_WINDOW`]), `expired` or `revoked`.
    pub status: &'a str,
    /// `api_token` or `client`.
    pub kind: &'a str,
    /// Organisation or contact e-mail contains this.
    pub partner: &'a str,
    pub grant: &'a str,
    /// Client id or displayed secret prefix starts with this.
    pub prefix: &'a str,
    /// The cursor of the previous page ([`CredentialPage::next`]).
    pub after: Option<&'a str>,
    /// Page size; [`CREDENTIALS_PAGE`] when not given.
    pub limit: Option<i64>,
}

/// One page of the list, newest first, and the cursor of the next page if there is one.
pub struct CredentialPage {
    pub credentials: Vec<CredentialView>,
    pub next: Option<String>,
}

/// Keyset paging on `(created_at, id)`: stays fast deep in a long list, where OFFSET would scan
/// everything before it. The cursor is "<created_at>.<id>" of the last row shown.
pub async fn search_credentials<'a>(
    core: &Core,
    tenant: TenantId,
    search: &CredentialSearch<'a>,
) -> Result<CredentialPage, StoreError> {
    let non_empty = |value: &'a str| Some(value.trim()).filter(|v| !v.is_empty());
    let status = match search.status {
        "active" => Some(StatusFilter::Active),
        "expiring" => Some(StatusFilter::ExpiringBefore(
            core.clock.now_ms() + crate::clock::duration_ms(EXPIRING_WINDOW),
        )),
        "expired" => Some(StatusFilter::Expired),
        "revoked" => Some(StatusFilter::Revoked),
        _ => None,
    };
    let filter = CredentialFilter {
        status,
        kind: CredentialKind::parse(search.kind.trim()).map(CredentialKind::as_str),
        grant: non_empty(search.grant),
        partner: non_empty(search.partner),
        prefix: non_empty(search.prefix),
    };
    let cursor = search.after.and_then(parse_cursor);
    let limit = search.limit.unwrap_or(CREDENTIALS_PAGE).clamp(1, 500);
    let mut credentials = core
        .store
        .credentials_of(tenant, &filter, cursor, limit + 1)
        .await?;
    let next = next_cursor(&mut credentials, limit, |c| (c.created_at, c.id.as_str()));
    Ok(CredentialPage { credentials, next })
}
