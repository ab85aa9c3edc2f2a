//! Cookies that carry signed state for browsers without a session: the form token of pages anyone
//! may open (sign-in, first-run setup, invitations, recovery, partner pages) and a passwordless
//! sign-in in progress. The values are signed by `domain::signed_state`; this module only moves
//! them in and out of cookies. Handlers and extractors queue cookies on the request, and the CSRF
//! middleware, which wraps every console page, puts them on the response.

use std::time::Duration;

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::ServiceResponse;
use actix_web::{HttpMessage, HttpRequest, web};

use crate::domain::Core;

/// Which cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserCookie {
    /// The double-submit CSRF token of forms shown without a session.
    FormToken,
    /// The sealed passwordless sign-in ceremony of the sign-in page.
    PasskeyCeremony,
}

impl BrowserCookie {
    /// Over HTTPS the `__Host-` prefix makes the browser refuse the cookie from a sibling subdomain
    /// or over plain HTTP, so nobody but this origin can plant a token (as for the session cookie).
    fn name(self, https: bool) -> &'static str {
        match (self, https) {
            (Self::FormToken, true) => "__Host-tb_form",
            (Self::FormToken, false) => "tb_form",
            (Self::PasskeyCeremony, true) => "__Host-tb_passkey",
            (Self::PasskeyCeremony, false) => "tb_passkey",
        }
    }

    /// The value the browser sent, if any.
    pub fn read(self, req: &HttpRequest) -> Option<String> {
        req.cookie(self.name(is_https(req)))
            .map(|cookie| cookie.value().to_owned())
    }

    /// Hands `value` to the browser with the response, for `lifetime`.
    pub fn set(self, req: &HttpRequest, value: String, lifetime: Duration) {
        let max_age = CookieDuration::try_from(lifetime).unwrap_or(CookieDuration::HOUR);
        let cookie = self.cookie(req, value).max_age(max_age).finish();
        queue(req, cookie);
    }

    /// Tells the browser to forget the cookie (its state was used up).
    pub fn clear(self, req: &HttpRequest) {
        let mut cookie = self.cookie(req, String::new()).finish();
        cookie.make_removal();
        queue(req, cookie);
    }

    fn cookie(self, req: &HttpRequest, value: String) -> actix_web::cookie::CookieBuilder<'static> {
        let https = is_https(req);
        Cookie::build(self.name(https), value)
            .path("/")
            .secure(https)
            .http_only(true)
            .same_site(SameSite::Lax)
    }
}

/// Cookies to set on the response of the request they were queued on.
#[derive(Default)]
struct Queued(Vec<Cookie<'static>>);

fn queue(req: &HttpRequest, cookie: Cookie<'static>) {
    let mut extensions = req.extensions_mut();
    match extensions.get_mut::<Queued>() {
        Some(queued) => {
            // The last word wins for a name (a page may renew the token it has just read).
            queued.0.retain(|c| c.name() != cookie.name());
            queued.0.push(cookie);
        }
        None => {
            extensions.insert(Queued(vec![cookie]));
        }
    }
}

/// Puts the cookies queued while the request was handled on its response.
pub fn apply<B>(mut response: ServiceResponse<B>) -> ServiceResponse<B> {
    let queued = response.request().extensions_mut().remove::<Queued>();
    for cookie in queued.map(|q| q.0).unwrap_or_default() {
        if let Err(error) = response.response_mut().add_cookie(&cookie) {
            tracing::warn!(cookie = cookie.name(), %error, "could not set a cookie");
        }
    }
    response
}

fn is_https(req: &HttpRequest) -> bool {
    req.app_data::<web::Data<Core>>()
        .is_some_and(|core| core.public_url.scheme() == "https")
}
