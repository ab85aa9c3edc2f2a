//! Authorization at the HTTP edge. Every route declares an [`Access`] rule where it is registered
//! (see `web::routes`); handlers enforce it with the one check below or the [`TenantPage`]
//! extractor, and the authorization-matrix test proves the two agree for every route and role.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use crate::domain::Core;
use crate::domain::rbac::{Permission, may};
use crate::domain::tenants::Tenant;
use crate::web::error::WebError;
use crate::web::session::CurrentUser;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Someone past the password but perhaps not the second factor (enrolment, passkey step).
    PartlySignedIn,
    /// Any fully signed-in staff member.
    SignedIn,
    /// A permission held globally.
    Global(Permission),
    /// A permission held in the tenant named by the URL's `{tenant}`.
    InTenant(Permission),
    /// A machine client of the tenant, authenticating with its own credentials on every request;
    /// a staff session counts for nothing here.
    TenantClient,
}

/// The global check: 403 unless `current` holds `permission` everywhere.
pub fn require(current: &CurrentUser, permission: Permission) -> Result<(), WebError> {
    if may(&current.user, permission, None) {
        Ok(())
    } else {
        Err(WebError::Forbidden)
    }
}

/// A page inside a tenant: the tenant comes from the URL, is loaded once, and must be one the
/// signed-in person may enter. A tenant they cannot enter is "not found", exactly like one that does
/// not exist, so URLs reveal nothing about other tenants.
pub struct TenantPage {
    pub tenant: Tenant,
    pub current: CurrentUser,
}

impl TenantPage {
    /// 403 unless the person holds `permission` in this tenant.
    pub fn require(&self, permission: Permission) -> Result<(), WebError> {
        if may(&self.current.user, permission, Some(self.tenant.id)) {
            Ok(())
        } else {
            Err(WebError::Forbidden)
        }
    }
}

impl FromRequest for TenantPage {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let current = CurrentUser::from_request(req, payload);
        let core = req.app_data::<web::Data<Core>>().cloned();
        let slug = req.match_info().get("tenant").map(str::to_owned);
        Box::pin(async move {
            let current = current.await?;
            let core =
                core.ok_or_else(|| WebError::unexpected(anyhow::anyhow!("core not configured")))?;
            let slug = slug.ok_or(WebError::NotFound)?;
            let tenant = core
                .store
                .tenant_by_slug(&slug)
                .await?
                .ok_or(WebError::NotFound)?;
            if !may(&current.user, Permission::EnterTenant, Some(tenant.id)) {
                return Err(WebError::NotFound);
            }
            Ok(Self { tenant, current })
        })
    }
}
