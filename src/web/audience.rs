//! Who a request is for, by its path: people (HTML pages), scripts (the automation API's
//! problem+json) or OAuth clients and gateways (RFC 6749 JSON). Errors raised outside a handler —
//! by a gate, by the router — are answered in the form the caller reads.

use crate::domain::StoreError;
use crate::domain::oauth::OAuthError;
use crate::web::api::problem::ApiError;
use crate::web::error::WebError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Scripts: RFC 9457 problem+json.
    Api,
    /// OAuth clients and gateways: RFC 6749 JSON.
    TokenService,
    /// People: the HTML error page.
    Console,
}

impl Audience {
    pub fn of(path: &str) -> Self {
        if path.starts_with("/api/") {
            return Self::Api;
        }
        if path.starts_with("/.well-known/") {
            return Self::TokenService;
        }
        let in_tenant = path
            .strip_prefix("/t/")
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, rest)| rest);
        match in_tenant {
            Some(rest)
                if rest.starts_with("oauth/")
                    || rest == "revocations"
                    || rest.starts_with(".well-known/") =>
            {
                Self::TokenService
            }
            _ => Self::Console,
        }
    }

    /// "The database cannot be reached": 503 with `Retry-After`, in this audience's form.
    pub fn unavailable_error(self) -> actix_web::Error {
        match self {
            Self::Api => ApiError::Unavailable.into(),
            Self::TokenService => {
                OAuthError::Store(StoreError::Unavailable(sqlx::Error::PoolTimedOut)).into()
            }
            Self::Console => WebError::Unavailable(None).into(),
        }
    }

    /// Whether `error` already answers in this audience's form (else the error pages render it).
    pub fn speaks(self, error: &actix_web::Error) -> bool {
        match self {
            Self::Api => error.as_error::<ApiError>().is_some(),
            Self::TokenService => error.as_error::<OAuthError>().is_some(),
            Self::Console => false,
        }
    }
}

/// The status an error answers with, whatever its type.
pub fn status_of(error: &actix_web::Error) -> actix_web::http::StatusCode {
    error.as_response_error().status_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_audience_is_known_by_its_path() {
        assert_eq!(Audience::of("/api/v1/tenants"), Audience::Api);
        assert_eq!(Audience::of("/t/acme/oauth/token"), Audience::TokenService);
        assert_eq!(Audience::of("/t/acme/revocations"), Audience::TokenService);
        assert_eq!(
            Audience::of("/t/acme/.well-known/jwks.json"),
            Audience::TokenService
        );
        assert_eq!(
            Audience::of("/.well-known/oauth-authorization-server/t/acme"),
            Audience::TokenService
        );
        assert_eq!(Audience::of("/t/acme/credentials"), Audience::Console);
        assert_eq!(Audience::of("/t/oauth/credentials"), Audience::Console);
        assert_eq!(Audience::of("/login"), Audience::Console);
    }

    #[test]
    fn an_outage_is_told_in_each_audiences_form() {
        for audience in [Audience::Api, Audience::TokenService, Audience::Console] {
            let error = audience.unavailable_error();
            assert_eq!(status_of(&error), 503);
            let response = error.error_response();
            assert!(
                response.headers().contains_key("retry-after"),
                "{audience:?}"
            );
        }
        assert!(Audience::Api.speaks(&Audience::Api.unavailable_error()));
        assert!(Audience::TokenService.speaks(&Audience::TokenService.unavailable_error()));
        assert!(!Audience::Api.speaks(&Audience::Console.unavailable_error()));
    }
}
