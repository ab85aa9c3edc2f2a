//! Finding grants and credentials inside a tenant: the credentials list's filters, as people type
//! them, and its keyset paging.

use super::*;
use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::store::partners::{CredentialFilter, StatusFilter};

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
    let cursor = search.after.and_then(|raw| {
        let (time, id) = raw.split_once('.')?;
        Some((time.parse::<i64>().ok()?, id))
    });
    let mut credentials = core
        .store
        .credentials_of(tenant, &filter, cursor, CREDENTIALS_PAGE + 1)
        .await?;
    let more = credentials.len() as i64 > CREDENTIALS_PAGE;
    credentials.truncate(CREDENTIALS_PAGE as usize);
    let next = more
        .then(|| {
            credentials
                .last()
                .map(|c| format!("{}.{}", c.created_at, c.id))
        })
        .flatten();
    Ok(CredentialPage { credentials, next })
}
