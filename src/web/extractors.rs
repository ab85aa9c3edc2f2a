//! Typed access to the browser session, and the extractors handlers use: `CurrentUser` (signed in,
//! active account) and `Client` (IP, user agent, request id for events).

use std::future::{Ready, ready};
use std::net::IpAddr;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use secrecy::ExposeSecret;

use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::auth;
use crate::domain::events::RequestContext;
use crate::domain::ids::{RequestId, UserId};
use crate::domain::passkeys::Ceremony;
use crate::domain::rbac::Permission;
use crate::domain::secrets;
use crate::domain::sessions::{AuthLevel, keys};
use crate::domain::users::User;
use crate::web::authz::granted;
use crate::web::client_address::ProxyTrust;
use crate::web::error::WebError;

/// The session with named, typed entries: no handler spells a session key.
#[derive(Clone)]
pub struct TypedSession(Session);

impl TypedSession {
    pub fn new(session: Session) -> Self {
        Self(session)
    }

    pub fn user_id(&self) -> Result<Option<UserId>, WebError> {
        Ok(self
            .0
            .get::<String>(keys::USER_ID)?
            .and_then(|raw| UserId::parse(&raw)))
    }

    pub fn auth_time(&self) -> Result<Option<Millis>, WebError> {
        Ok(self.0.get::<Millis>(keys::AUTH_TIME)?)
    }

    pub fn auth_level(&self) -> Result<Option<AuthLevel>, WebError> {
        Ok(self
            .0
            .get::<String>(keys::AUTH_LEVEL)?
            .and_then(|raw| AuthLevel::parse(&raw)))
    }

    /// The session's public handle ("this session" on the sessions page).
    pub fn public_id(&self) -> Result<Option<String>, WebError> {
        Ok(self.0.get::<String>(keys::PUBLIC_ID)?)
    }

    /// Raises the level after a second factor, under a new key (a privilege change renews it).
    pub fn raise_level(&self, level: AuthLevel, now: Millis) -> Result<(), WebError> {
        self.0.renew();
        self.0.insert(keys::AUTH_LEVEL, level.as_str())?;
        if level == AuthLevel::Passkey {
            self.0.insert(keys::PASSKEY_AT, now)?;
        }
        Ok(())
    }

    pub fn passkey_at(&self) -> Result<Option<Millis>, WebError> {
        Ok(self.0.get::<Millis>(keys::PASSKEY_AT)?)
    }

    /// Records a fresh passkey assertion (step-up).
    pub fn mark_passkey_used(&self, now: Millis) -> Result<(), WebError> {
        Ok(self.0.insert(keys::PASSKEY_AT, now)?)
    }

    pub fn set_ceremony(&self, ceremony: &Ceremony) -> Result<(), WebError> {
        Ok(self.0.insert(keys::CEREMONY, ceremony)?)
    }

    /// Takes the ceremony out: each one can be finished once.
    pub fn take_ceremony(&self) -> Result<Option<Ceremony>, WebError> {
        let ceremony = self.0.get::<Ceremony>(keys::CEREMONY).unwrap_or(None);
        self.0.remove(keys::CEREMONY);
        Ok(ceremony)
    }

    pub fn set_pending_action(&self, action: &PendingAction) -> Result<(), WebError> {
        Ok(self.0.insert(keys::PENDING_ACTION, action)?)
    }

    pub fn pending_action(&self) -> Result<Option<PendingAction>, WebError> {
        Ok(self
            .0
            .get::<PendingAction>(keys::PENDING_ACTION)
            .unwrap_or(None))
    }

    pub fn take_pending_action(&self) -> Result<Option<PendingAction>, WebError> {
        let action = self.pending_action()?;
        self.0.remove(keys::PENDING_ACTION);
        Ok(action)
    }

    /// The tenants this session entered lately, most recent first.
    pub fn recent_tenants(&self) -> Vec<String> {
        self.0
            .get::<Vec<String>>(keys::RECENT_TENANTS)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Puts `slug` first among the recent tenants (the session changes only when the order does).
    pub fn remember_tenant(&self, slug: &str) -> Result<(), WebError> {
        const KEPT: usize = 5;
        let mut recent = self.recent_tenants();
        if recent.first().map(String::as_str) == Some(slug) {
            return Ok(());
        }
        recent.retain(|s| s != slug);
        recent.insert(0, slug.to_owned());
        recent.truncate(KEPT);
        Ok(self.0.insert(keys::RECENT_TENANTS, recent)?)
    }

    /// The session's CSRF token, created on first use.
    pub fn csrf_token(&self) -> Result<String, WebError> {
        if let Some(token) = self.0.get::<String>(keys::CSRF)? {
            return Ok(token);
        }
        let token = secrets::generate().expose_secret().to_owned();
        self.0.insert(keys::CSRF, &token)?;
        Ok(token)
    }

    /// Starts an authenticated session under a brand-new key (no fixation), with a new CSRF token.
    pub fn sign_in(
        &self,
        user: UserId,
        level: AuthLevel,
        now: Millis,
        client: &RequestContext,
    ) -> Result<(), WebError> {
        self.0.renew();
        self.0.clear();
        // The sign-in event already names the session (`RequestContext::for_new_session`).
        let public_id = client
            .session
            .clone()
            .unwrap_or_else(crate::domain::ids::time_ordered_id);
        self.0.insert(keys::PUBLIC_ID, public_id)?;
        self.0.insert(keys::USER_ID, user.to_string())?;
        self.0.insert(keys::AUTH_TIME, now)?;
        self.0.insert(keys::AUTH_LEVEL, level.as_str())?;
        if level == AuthLevel::Passkey {
            self.0.insert(keys::PASSKEY_AT, now)?;
        }
        if let Some(ip) = &client.ip {
            self.0.insert(keys::IP, ip)?;
        }
        if let Some(user_agent) = &client.user_agent {
            self.0.insert(keys::USER_AGENT, user_agent)?;
        }
        self.csrf_token()?;
        Ok(())
    }

    /// Deletes the session row and the cookie.
    pub fn sign_out(&self) {
        self.0.purge();
    }
}

impl FromRequest for TypedSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(req.get_session())))
    }
}

/// Someone past the password, at any level: only the second-factor and enrolment pages take this.
/// Established by the route's rule (`web::authz`), never by the handler.
#[derive(Clone)]
pub struct SignedIn {
    pub user: User,
    pub level: AuthLevel,
    pub csrf_token: String,
    pub session: TypedSession,
}

impl SignedIn {
    /// The account behind the session cookie, if any. A deactivated or deleted account ends the
    /// session.
    pub async fn resolve(core: &Core, req: &HttpRequest) -> Result<Option<Self>, WebError> {
        let session = TypedSession(req.get_session());
        let (Some(user_id), Some(level)) = (session.user_id()?, session.auth_level()?) else {
            return Ok(None);
        };
        let Some(user) = auth::active_user(core, user_id).await? else {
            session.sign_out();
            return Ok(None);
        };
        Ok(Some(Self {
            user,
            level,
            csrf_token: session.csrf_token()?,
            session,
        }))
    }
}

impl FromRequest for SignedIn {
    type Error = WebError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(granted(req, "signed-in session"))
    }
}

/// A signed-in staff member with full access (password and passkey), as the route's rule
/// established: a request without one never reaches the handler (it is sent to sign in, or to the
/// step it is missing).
#[derive(Clone)]
pub struct CurrentUser {
    pub user: User,
    pub csrf_token: String,
    pub signed_in_at: Option<Millis>,
    pub session: TypedSession,
}

impl CurrentUser {
    /// Whether the person holds `permission` everywhere (for what a page offers; the route's rule
    /// already decided whether they may see it at all).
    pub fn may(&self, permission: Permission) -> bool {
        crate::domain::rbac::may(&self.user, permission, None)
    }
}

impl From<SignedIn> for CurrentUser {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            signed_in_at: signed_in.session.auth_time().ok().flatten(),
            user: signed_in.user,
            csrf_token: signed_in.csrf_token,
            session: signed_in.session,
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = WebError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(granted(req, "signed-in user"))
    }
}

/// A sensitive action saved while the user proves presence again; replayed afterwards so nothing
/// is typed twice. Never holds a password: forms with one ask for the step-up before they are shown.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingAction {
    /// What the user is about to do, in words ("Remove the passkey", …).
    pub label: String,
    pub path: String,
    /// Form fields to post again; `None` means the action is a page to open (GET).
    pub fields: Option<Vec<(String, String)>>,
    /// The console page the person was on (path and query), where "Cancel" takes them back.
    #[serde(default)]
    pub came_from: Option<String>,
}

/// Where the request came from: the client's address (see [`client_ip`]), its country, user agent
/// and request id.
pub struct Client(pub RequestContext);

const MAX_USER_AGENT_CHARS: usize = 512;

/// The proxies this installation trusts (none unless configured).
fn proxy_trust(req: &HttpRequest) -> Option<&ProxyTrust> {
    req.app_data::<actix_web::web::Data<ProxyTrust>>()
        .map(|trust| trust.get_ref())
}

/// The client's address: the TCP peer, or behind a trusted proxy the address it forwards. Every
/// use of an address (throttles, allowlists, events, GeoIP, sessions) goes through here.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(match proxy_trust(req) {
        Some(trust) => trust.client_of(peer, req.headers()),
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: logged and located as IPv4.
        None => peer.to_canonical(),
    })
}

pub fn request_context(req: &HttpRequest) -> RequestContext {
    let ip = client_ip(req);
    RequestContext {
        country: req
            .app_data::<actix_web::web::Data<crate::domain::Core>>()
            .and_then(|core| country_of(req, &core.geo, ip)),
        ip: ip.map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect()),
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map(RequestId::to_string),
        session: None,
        api_key: None,
    }
}

/// The trusted proxy's country header when configured and present, else the GeoIP database. With
/// trusted proxies configured, the header counts only on requests they passed on.
fn country_of(
    req: &HttpRequest,
    geo: &crate::domain::geo::Locator,
    ip: Option<IpAddr>,
) -> Option<String> {
    let header_believed = match (proxy_trust(req), req.peer_addr()) {
        (Some(trust), Some(peer)) if trust.is_configured() => trust.is_trusted(peer.ip()),
        _ => true,
    };
    let from_header = geo
        .header()
        .filter(|_| header_believed)
        .and_then(|name| req.headers().get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(crate::domain::geo::parse_country);
    from_header.or_else(|| ip.and_then(|ip| geo.country_of(ip)))
}

impl FromRequest for Client {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Console requests name their session; the OAuth endpoints have none and never look.
        let session = req
            .get_session()
            .get::<String>(keys::PUBLIC_ID)
            .ok()
            .flatten();
        ready(Ok(Self(RequestContext {
            session,
            ..request_context(req)
        })))
    }
}
