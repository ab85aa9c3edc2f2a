//! Authorization at the HTTP edge. Every route is registered with a [`Rule`] (see `web::routes`),
//! and registering wraps its handler in [`enforce`]: the rule is checked before the handler runs,
//! and the handler can only obtain who is calling (`CurrentUser`, `SignedIn`, [`TenantPage`]) from
//! what the rule established. No handler checks a permission by hand; the authorization-matrix
//! test proves the table right for every route and role.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use std::future::{Ready, ready};

use crate::domain::Core;
use crate::domain::api_keys::{self, RateBudget};
use crate::domain::ids::TenantId;
use crate::domain::rbac::{Permission, may};
use crate::domain::sessions::AuthLevel;
use crate::domain::tenants::{self, Tenant};
use crate::domain::users::User;
use crate::web::api::{ApiError, ApiLimits, idempotency};
use crate::web::error::WebError;
use crate::web::extractors::request_context;
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
    /// Any valid automation key (the API; no cookie is read there).
    AnyKey,
    /// An automation key whose permissions and owner hold this globally.
    Key(Permission),
    /// An automation key allowed this in the tenant named by the URL's `{tenant}`; a tenant the
    /// key may not enter is "not found".
    KeyInTenant(Permission),
}

impl Access {
    /// Whether the caller is an automation key rather than a console session.
    pub fn is_key(self) -> bool {
        matches!(self, Self::AnyKey | Self::Key(_) | Self::KeyInTenant(_))
    }
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
        // Keys are admitted by `admit_key`; a key rule never admits a session.
        Access::AnyKey | Access::Key(_) | Access::KeyInTenant(_) => {
            return Err(Denial::SignIn);
        }
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
    let admitted = if rule.access.is_key() {
        admit_key(rule.access, &mut req)
            .await
            .map(|()| None)
            .map_err(actix_web::Error::from)
    } else {
        admit(rule, &mut req).await.map_err(actix_web::Error::from)
    };
    let idempotent = rule.access.is_key() && req.method() == actix_web::http::Method::POST;
    let response = match admitted {
        Ok(None) => match idempotent.then(|| idempotency::key_of(&req)).flatten() {
            None => next.call(req).await?.map_into_boxed_body(),
            Some(Ok(key)) => idempotency::run_once(key, req, next).await?,
            Some(Err(error)) => req.error_response(error).map_into_boxed_body(),
        },
        Ok(Some(step_up_redirect)) => req.into_response(step_up_redirect).map_into_boxed_body(),
        Err(error) => req.error_response(error).map_into_boxed_body(),
    };
    Ok(with_rate_headers(response))
}

/// An API key's budget on every answer it gets (RateLimit-* as in the IETF draft), 429s included.
fn with_rate_headers<B>(mut response: ServiceResponse<B>) -> ServiceResponse<B> {
    let budget = response.request().extensions().get::<RateBudget>().copied();
    if let Some(budget) = budget {
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", budget.limit.to_string()),
            ("ratelimit-remaining", budget.remaining.to_string()),
            ("ratelimit-reset", budget.reset_secs.to_string()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
    response
}

/// The API's door: the key from `Authorization: Bearer` or `x-api-key` (cookies are never read),
/// then the rule's permission as the key allows it and the owner holds it now.
async fn admit_key(access: Access, req: &mut ServiceRequest) -> Result<(), ApiError> {
    let core = req
        .app_data::<web::Data<Core>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("core not configured")))?;
    let presented = presented_key(req.request());
    let context = request_context(req.request());
    let caller = api_keys::authenticate(&core, presented.as_deref(), &context).await?;
    let per_minute = req
        .app_data::<web::Data<ApiLimits>>()
        .map_or(600, |limits| limits.per_minute);
    let (budget, within) = api_keys::spend(&core, &caller, per_minute).await?;
    req.extensions_mut().insert(budget);
    if !within {
        return Err(ApiError::RateLimited {
            retry_after: budget.reset_secs.max(1),
        });
    }
    let tenant = match access {
        Access::KeyInTenant(_) => {
            let slug = req.match_info().get("tenant").ok_or(ApiError::NotFound)?;
            let tenant = tenants::by_slug(&core, slug)
                .await?
                .filter(|t| caller.may(Permission::EnterTenant, Some(t.id)))
                .ok_or(ApiError::NotFound)?;
            Some(tenant)
        }
        _ => None,
    };
    let granted = match access {
        Access::Key(permission) => caller.may(permission, None).then_some(permission),
        Access::KeyInTenant(permission) => caller
            .may(permission, tenant.as_ref().map(|t| t.id))
            .then_some(permission),
        _ => Some(Permission::EnterTenant),
    };
    if granted.is_none() {
        let missing = match access {
            Access::Key(p) | Access::KeyInTenant(p) => p.as_str(),
            _ => "do this",
        };
        return Err(ApiError::Forbidden(missing));
    }
    req.extensions_mut().insert(caller);
    if let Some(tenant) = tenant {
        req.extensions_mut().insert(tenant);
    }
    Ok(())
}

fn presented_key(req: &HttpRequest) -> Option<String> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    header(actix_web::http::header::AUTHORIZATION.as_str())
        .and_then(|value| {
            let (scheme, key) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .or_else(|| header("x-api-key"))
        .map(str::to_owned)
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
    if let Some(signed_in) = signed_in.as_ref().filter(|s| s.level == AuthLevel::Passkey) {
        // Known before the rule is decided, so an error page (an unknown tenant, a missing
        // permission) still shows the person their menu.
        req.extensions_mut()
            .insert(CurrentUser::from(signed_in.clone()));
    }
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
    if let (Some(signed_in), Some(tenant)) = (&signed_in, &tenant) {
        if signed_in.level == AuthLevel::Passkey {
            signed_in.session.remember_tenant(tenant.slug.as_str())?;
        }
    }
    if let Some(signed_in) = signed_in {
        req.extensions_mut().insert(signed_in);
    }
    if let Some(tenant) = tenant {
        req.extensions_mut().insert(tenant);
    }
    Ok(None)
}

/// A path no route serves: "not found", with the signed-in person's menu on the page (a mistyped
/// address is no reason to lose one's way). The API's paths never read a session.
pub async fn unknown_page(req: HttpRequest) -> Result<actix_web::HttpResponse, WebError> {
    if !req.path().starts_with("/api/") {
        if let Some(core) = req.app_data::<web::Data<Core>>() {
            if let Some(signed_in) = SignedIn::resolve(core, &req).await? {
                if signed_in.level == AuthLevel::Passkey {
                    req.extensions_mut().insert(CurrentUser::from(signed_in));
                }
            }
        }
    }
    Err(WebError::NotFound)
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
