//! Authorization at the HTTP edge. Every route is registered with a [`Rule`] (see `web::routes`),
//! and registering wraps its handler in [`enforce`]: the rule is checked before the handler runs,
//! and the handler can only obtain who is calling (`CurrentUser`, `SignedIn`, [`TenantPage`]) from
//! what the rule established. No handler checks a permission by hand; the authorization-matrix
//! test proves the table right for every route and role.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use std::future::{Ready, ready};

use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::domain::rbac::{Permission, may};
use crate::domain::sessions::AuthLevel;
use crate::domain::tenants::{self, Tenant};
use crate::domain::users::User;
use crate::web::error::WebError;
use crate::web::extractors::{CurrentUser, SignedIn};
use crate::web::step_up::{self, StepUp};

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

impl Access {
    /// The rule plus a passkey check from the last five minutes; a stale request is saved and
    /// replayed after the check. `{tenant}` in the label becomes the tenant's name.
    pub const fn with_step_up(self, label: &'static str) -> Rule {
        Rule {
            access: self,
            step_up: Some(StepUp::replaying(label)),
        }
    }

    /// Like [`Access::with_step_up`], but afterwards the page is opened afresh instead of the
    /// request being replayed: for forms whose fields must never be kept (passwords).
    pub const fn with_step_up_reopening(self, label: &'static str) -> Rule {
        Rule {
            access: self,
            step_up: Some(StepUp::reopening(label)),
        }
    }
}

/// Everything the route table says about who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub access: Access,
    pub step_up: Option<StepUp>,
}

impl From<Access> for Rule {
    fn from(access: Access) -> Self {
        Self {
            access,
            step_up: None,
        }
    }
}

/// Why a request is turned away before its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Nobody is signed in.
    SignIn,
    /// Past the password, the passkey is still to come.
    SecondFactor,
    /// Signed in with a recovery code: a new passkey comes first.
    Enrol,
    /// A tenant the caller may not enter looks exactly like one that does not exist.
    NotFound,
    Forbidden,
}

impl From<Denial> for WebError {
    fn from(denial: Denial) -> Self {
        match denial {
            Denial::SignIn => WebError::LoginRequired,
            Denial::SecondFactor => WebError::RedirectTo("/login/passkey"),
            Denial::Enrol => WebError::RedirectTo("/mfa/enrol"),
            Denial::NotFound => WebError::NotFound,
            Denial::Forbidden => WebError::Forbidden,
        }
    }
}

/// The decision itself, free of HTTP: `caller` is the signed-in account with its level, `tenant`
/// the tenant named by the URL when the rule needs one.
pub fn decide(
    access: Access,
    caller: Option<(&User, AuthLevel)>,
    tenant: Option<TenantId>,
) -> Result<(), Denial> {
    let needs_full_sign_in = match access {
        Access::Public | Access::TenantClient => return Ok(()),
        Access::PartlySignedIn => false,
        Access::SignedIn | Access::Global(_) | Access::InTenant(_) => true,
    };
    let (user, level) = caller.ok_or(Denial::SignIn)?;
    if needs_full_sign_in {
        match level {
            AuthLevel::Passkey => {}
            AuthLevel::Password => return Err(Denial::SecondFactor),
            AuthLevel::Recovery => return Err(Denial::Enrol),
        }
    }
    let granted = match access {
        Access::Global(permission) => may(user, permission, None),
        Access::InTenant(permission) => {
            let tenant = tenant.ok_or(Denial::NotFound)?;
            if !may(user, Permission::EnterTenant, Some(tenant)) {
                return Err(Denial::NotFound);
            }
            may(user, permission, Some(tenant))
        }
        _ => true,
    };
    if granted {
        Ok(())
    } else {
        Err(Denial::Forbidden)
    }
}

/// The middleware every route is wrapped in: resolves the caller (and the URL's tenant) once,
/// applies `rule`, demands a fresh passkey where the rule says so, and hands what it established to
/// the handler through the request's extensions.
pub async fn enforce(
    rule: Rule,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    match admit(rule, &mut req).await {
        Ok(None) => Ok(next.call(req).await?.map_into_left_body()),
        Ok(Some(step_up_redirect)) => Ok(req.into_response(step_up_redirect).map_into_right_body()),
        Err(error) => Ok(req.error_response(error).map_into_right_body()),
    }
}

/// `Ok(None)` lets the request through; `Ok(Some(_))` is the detour to the passkey check.
async fn admit(
    rule: Rule,
    req: &mut ServiceRequest,
) -> Result<Option<actix_web::HttpResponse>, WebError> {
    if matches!(rule.access, Access::Public | Access::TenantClient) && rule.step_up.is_none() {
        return Ok(None);
    }
    let core = req
        .app_data::<web::Data<Core>>()
        .cloned()
        .ok_or_else(|| WebError::unexpected(anyhow::anyhow!("core not configured")))?;
    let signed_in = SignedIn::resolve(&core, req.request()).await?;
    let tenant = match rule.access {
        Access::InTenant(_) => Some(tenant_named_by_url(&core, req.request()).await?),
        _ => None,
    };
    decide(
        rule.access,
        signed_in.as_ref().map(|s| (&s.user, s.level)),
        tenant.as_ref().map(|t| t.id),
    )?;
    if let Some(step_up) = rule.step_up {
        let session = signed_in.as_ref().map(|s| &s.session);
        if let Some(redirect) =
            step_up::demand(&core, session, step_up, tenant.as_ref(), req).await?
        {
            return Ok(Some(redirect));
        }
    }
    if let Some(signed_in) = signed_in {
        if signed_in.level == AuthLevel::Passkey {
            req.extensions_mut()
                .insert(CurrentUser::from(signed_in.clone()));
        }
        req.extensions_mut().insert(signed_in);
    }
    if let Some(tenant) = tenant {
        req.extensions_mut().insert(tenant);
    }
    Ok(None)
}

async fn tenant_named_by_url(core: &Core, req: &HttpRequest) -> Result<Tenant, WebError> {
    let slug = req.match_info().get("tenant").ok_or(WebError::NotFound)?;
    tenants::by_slug(core, slug)
        .await?
        .ok_or(WebError::NotFound)
}

/// What the route's rule established, for the handler to take. A handler asking for something its
/// rule does not provide is a wiring mistake in the route table, answered with 500, never guessed.
pub(crate) fn granted<T: Clone + 'static>(req: &HttpRequest, what: &str) -> Result<T, WebError> {
    req.extensions().get::<T>().cloned().ok_or_else(|| {
        WebError::unexpected(anyhow::anyhow!(
            "{} {}: the route's rule provides no {what}",
            req.method(),
            req.match_pattern().unwrap_or_default()
        ))
    })
}

/// A page inside a tenant: the tenant comes from the URL, is loaded once by the route's rule, and
/// must be one the signed-in person may enter. A tenant they cannot enter is "not found", exactly
/// like one that does not exist, so URLs reveal nothing about other tenants.
pub struct TenantPage {
    pub tenant: Tenant,
    pub current: CurrentUser,
}

impl TenantPage {
    /// Whether the person holds `permission` in this tenant (for what a page offers; the route's
    /// rule already decided whether they may see it at all).
    pub fn may(&self, permission: Permission) -> bool {
        may(&self.current.user, permission, Some(self.tenant.id))
    }
}

impl FromRequest for TenantPage {
    type Error = WebError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready((|| {
            Ok(Self {
                tenant: granted(req, "tenant")?,
                current: granted(req, "signed-in user")?,
            })
        })())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::UserId;
    use crate::domain::rbac::Role;
    use crate::domain::users::{RoleAssignment, UserStatus};

    fn user_with(roles: Vec<RoleAssignment>) -> User {
        User {
            id: UserId::new(),
            email: "sam@example.com".into(),
            display_name: "Sam".into(),
            status: UserStatus::Active,
            created_at: 0,
            roles,
        }
    }

    fn role(role: Role, tenant: Option<TenantId>) -> RoleAssignment {
        RoleAssignment {
            id: "a1".into(),
            role,
            tenant_id: tenant.map(|t| t.to_string()),
        }
    }

    #[test]
    fn public_and_client_routes_admit_anyone() {
        assert_eq!(decide(Access::Public, None, None), Ok(()));
        assert_eq!(decide(Access::TenantClient, None, None), Ok(()));
    }

    #[test]
    fn signed_in_routes_send_strangers_to_sign_in_and_half_signed_in_to_their_next_step() {
        let user = user_with(vec![]);
        assert_eq!(decide(Access::SignedIn, None, None), Err(Denial::SignIn));
        assert_eq!(
            decide(Access::SignedIn, Some((&user, AuthLevel::Password)), None),
            Err(Denial::SecondFactor)
        );
        assert_eq!(
            decide(Access::SignedIn, Some((&user, AuthLevel::Recovery)), None),
            Err(Denial::Enrol)
        );
        assert_eq!(
            decide(
                Access::PartlySignedIn,
                Some((&user, AuthLevel::Password)),
                None
            ),
            Ok(())
        );
    }

    #[test]
    fn global_permission_needs_a_global_role() {
        let tenant = TenantId::new();
        let support = user_with(vec![role(Role::Support, Some(tenant))]);
        let admin = user_with(vec![role(Role::Superadmin, None)]);
        let rule = Access::Global(Permission::ManageStaff);
        assert_eq!(
            decide(rule, Some((&support, AuthLevel::Passkey)), None),
            Err(Denial::Forbidden)
        );
        assert_eq!(
            decide(rule, Some((&admin, AuthLevel::Passkey)), None),
            Ok(())
        );
    }

    #[test]
    fn a_tenant_one_may_not_enter_is_not_found_and_a_missing_permission_forbidden() {
        let own = TenantId::new();
        let other = TenantId::new();
        let support = user_with(vec![role(Role::Support, Some(own))]);
        let caller = Some((&support, AuthLevel::Passkey));
        assert_eq!(
            decide(
                Access::InTenant(Permission::ViewCredentials),
                caller,
                Some(own)
            ),
            Ok(())
        );
        assert_eq!(
            decide(
                Access::InTenant(Permission::ViewCredentials),
                caller,
                Some(other)
            ),
            Err(Denial::NotFound)
        );
        assert_eq!(
            decide(
                Access::InTenant(Permission::ManageTenants),
                caller,
                Some(own)
            ),
            Err(Denial::Forbidden)
        );
    }
}
