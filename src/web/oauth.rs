//! The OAuth endpoints of each tenant and their discovery documents. Outside the session and CSRF
//! scope: callers are machines authenticating on every request. Every answer is JSON, errors in
//! the RFC 6749 §5.2 shape (see `OAuthError`'s `ResponseError` in `web::error`).

use std::sync::Arc;

use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::domain::Core;
use crate::domain::events::RequestContext;
use crate::domain::keys;
use crate::domain::oauth::{
    self, AuthMethod, AuthenticatedClient, ClientProof, ClientPurpose, ErrorCode, OAuthError,
    PresentedClient, ServedTenant,
};
use crate::domain::partners::client_keys;
use crate::web::error::budget_headers;
use crate::web::extractors::request_context;

/// A form body as RFC 6749 wants it read: UTF-8, every parameter at most once.
struct OAuthForm(Vec<(String, String)>);

impl OAuthForm {
    fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type && !body.is_empty() {
            return Err(invalid_request(
                "The body must be application/x-www-form-urlencoded.",
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match part.iter().position(|b| *b == b'=') {
                Some(at) => {
                    let (name, rest) = part.split_at(at);
                    (name, rest.get(1..).unwrap_or_default())
                }
                None => (part, &[][..]),
            };
            let (name, value) = (decode(name)?, decode(value)?);
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(invalid_request("A parameter was sent more than once."));
            }
            pairs.push((name, value));
        }
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn take_secret(&mut self, name: &str) -> Option<SecretString> {
        let at = self.0.iter().position(|(n, _)| n == name)?;
        Some(SecretString::from(self.0.remove(at).1))
    }
}

fn decode(raw: &[u8]) -> Result<String, OAuthError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|text| text.into_owned())
        .map_err(|_| invalid_request("The request is not valid UTF-8."))
}

fn invalid_request(description: &'static str) -> OAuthError {
    OAuthError::rejected(ErrorCode::InvalidRequest, description)
}

fn invalid_client() -> OAuthError {
    OAuthError::rejected(ErrorCode::InvalidClient, "Client authentication failed.")
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1: both parts form-urlencoded), the body, or
/// a client assertion (RFC 7523 `private_key_jwt`); using two methods at once is an error.
fn presented_client(
    headers: &HeaderMap,
    form: Option<&mut OAuthForm>,
) -> Result<Option<PresentedClient>, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(basic_credentials(value.as_bytes())?),
    };
    let (posted_id, posted_secret, assertion) = match form {
        Some(form) => {
            let assertion_type = form.get("client_assertion_type").map(str::to_owned);
            let assertion = form.take_secret("client_assertion");
            (
                form.get("client_id").map(str::to_owned),
                form.take_secret("client_secret"),
                (assertion_type, assertion),
            )
        }
        None => (None, None, (None, None)),
    };
    match (basic, posted_id, posted_secret, assertion) {
        (basic, posted_id, posted_secret, (None, None)) => {
            secret_client(basic, posted_id, posted_secret)
        }
        (Some(_), _, _, _) | (_, _, Some(_), _) => Err(invalid_request(
            "Use one client authentication method, not two.",
        )),
        (None, posted_id, None, (Some(kind), Some(assertion))) if kind == oauth::JWT_BEARER => {
            let client_id = posted_id
                .or_else(|| oauth::claimed_client(assertion.expose_secret()))
                .ok_or_else(invalid_client)?;
            Ok(Some(PresentedClient {
                client_id,
                proof: ClientProof::Assertion(assertion),
                method: AuthMethod::PrivateKeyJwt,
            }))
        }
        (None, _, None, _) => Err(invalid_client()),
    }
}

fn secret_client(
    basic: Option<PresentedClient>,
    posted_id: Option<String>,
    posted_secret: Option<SecretString>,
) -> Result<Option<PresentedClient>, OAuthError> {
    match (basic, posted_id, posted_secret) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(invalid_request(
            "Use one client authentication method, not two.",
        )),
        (Some(basic), None, None) => Ok(Some(basic)),
        (None, Some(client_id), Some(secret)) => Ok(Some(PresentedClient {
            client_id,
            proof: ClientProof::Secret(secret),
            method: AuthMethod::Post,
        })),
        (None, Some(_), None) | (None, None, Some(_)) => Err(invalid_client()),
        (None, None, None) => Ok(None),
    }
}

fn basic_credentials(header_value: &[u8]) -> Result<PresentedClient, OAuthError> {
    let text = std::str::from_utf8(header_value).map_err(|_| invalid_client())?;
    let (scheme, encoded) = text.split_once(' ').ok_or_else(invalid_client)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid_client())?;
    let decoded = SecretString::from(String::from_utf8(decoded).map_err(|_| invalid_client())?);
    let (id, secret) = decoded
        .expose_secret()
        .split_once(':')
        .ok_or_else(invalid_client)?;
    let (client_id, secret) = (
        decode(id.as_bytes()).map_err(|_| invalid_client())?,
        decode(secret.as_bytes()).map_err(|_| invalid_client())?,
    );
    Ok(PresentedClient {
        client_id,
        proof: ClientProof::Secret(SecretString::from(secret)),
        method: AuthMethod::Basic,
    })
}

/// The body, or the token service's own JSON error: an oversized body is a 413 in RFC 6749's
/// shape, never the console's HTML page.
fn within_limit(body: Result<web::Bytes, actix_web::Error>) -> Result<web::Bytes, OAuthError> {
    body.map_err(|error| match error.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => OAuthError::BodyTooLarge,
        _ => invalid_request("The request body could not be read."),
    })
}

fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    response
}

#[derive(Deserialize)]
pub struct TenantPath {
    tenant: String,
}

/// `POST /t/{tenant}/oauth/token` — the client-credentials grant.
pub async fn token_post(
    core: web::Data<Core>,
    req: HttpRequest,
    path: web::Path<TenantPath>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let body = within_limit(body)?;
    let context = request_context(&req);
    let tenant = oauth::served_tenant(&core, &path.tenant).await?;
    let mut form = OAuthForm::parse(&req, &body)?;
    let presented = presented_client(req.headers(), Some(&mut form))?;
    let client = oauth::authenticate_client(
        &core,
        &tenant,
        presented,
        ClientPurpose::TokenRequest,
        &context,
    )
    .await?;
    let (grant_type, scope) = (form.get("grant_type"), form.get("scope"));
    let proof = dpop_proof(req.headers())?;
    let issued =
        oauth::grant_token(&core, &tenant, &client, grant_type, scope, proof, &context).await?;
    let mut response = no_store(HttpResponse::Ok());
    for (name, value) in budget_headers(&issued.budget) {
        response.insert_header((name, value));
    }
    if let Some(nonce) = &issued.dpop_nonce {
        response.insert_header(("DPoP-Nonce", nonce.as_str()));
    }
    Ok(response.json(json!({
        "access_token": issued.access_token.expose_secret(),
        "token_type": issued.token_type,
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    })))
}

/// The request's `DPoP` header, if it has one (RFC 9449 §4.3: never two).
fn dpop_proof(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut proofs = headers.get_all("dpop");
    let first = proofs.next();
    if proofs.next().is_some() {
        return Err(OAuthError::rejected(
            ErrorCode::InvalidDpopProof,
            "Send one DPoP proof, not several.",
        ));
    }
    first
        .map(|value| {
            value.to_str().map_err(|_| {
                OAuthError::rejected(ErrorCode::InvalidDpopProof, "The DPoP proof is malformed.")
            })
        })
        .transpose()
}

/// A request about one token (introspection, revocation): the tenant, the authenticated caller, the
/// token, and where the request came from.
struct TokenQuestion {
    tenant: Arc<ServedTenant>,
    caller: AuthenticatedClient,
    token: SecretString,
    context: RequestContext,
}

async fn token_question(
    core: &Core,
    req: &HttpRequest,
    slug: &str,
    body: &[u8],
    purpose: ClientPurpose,
) -> Result<TokenQuestion, OAuthError> {
    let context = request_context(req);
    let tenant = oauth::served_tenant(core, slug).await?;
    let mut form = OAuthForm::parse(req, body)?;
    let presented = presented_client(req.headers(), Some(&mut form))?;
    let caller = oauth::authenticate_client(core, &tenant, presented, purpose, &context).await?;
    let token = form
        .take_secret("token")
        .filter(|t| !t.expose_secret().is_empty())
        .ok_or_else(|| invalid_request("token is required."))?;
    Ok(TokenQuestion {
        tenant,
        caller,
        token,
        context,
    })
}

/// `POST /t/{tenant}/oauth/introspect` — RFC 7662, for resource servers of the tenant.
pub async fn introspect_post(
    core: web::Data<Core>,
    req: HttpRequest,
    path: web::Path<TenantPath>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let body = within_limit(body)?;
    let q = token_question(
        &core,
        &req,
        &path.tenant,
        &body,
        ClientPurpose::ResourceServer,
    )
    .await?;
    let answer = oauth::introspect(
        &core,
        &q.tenant,
        &q.caller,
        q.token.expose_secret(),
        &q.context,
    )
    .await?;
    Ok(no_store(HttpResponse::Ok()).json(answer))
}

/// `POST /t/{tenant}/oauth/revoke` — RFC 7009: 200 whether or not there was anything to revoke.
pub async fn revoke_post(
    core: web::Data<Core>,
    req: HttpRequest,
    path: web::Path<TenantPath>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let body = within_limit(body)?;
    let q = token_question(&core, &req, &path.tenant, &body, ClientPurpose::OwnTokens).await?;
    oauth::revoke_token(
        &core,
        &q.tenant,
        &q.caller,
        q.token.expose_secret(),
        &q.context,
    )
    .await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}

#[derive(Deserialize)]
pub struct FeedQuery {
    since: Option<String>,
}

/// `GET /t/{tenant}/revocations?since=CURSOR` — for gateways that verify JWTs locally.
pub async fn revocations_get(
    core: web::Data<Core>,
    req: HttpRequest,
    path: web::Path<TenantPath>,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, OAuthError> {
    let context = request_context(&req);
    let tenant = oauth::served_tenant(&core, &path.tenant).await?;
    let presented = presented_client(req.headers(), None)?;
    oauth::authenticate_client(
        &core,
        &tenant,
        presented,
        ClientPurpose::ResourceServer,
        &context,
    )
    .await?;
    let feed = oauth::revocation_feed(&core, &tenant, query.since.as_deref()).await?;
    Ok(no_store(HttpResponse::Ok()).json(feed))
}

/// `GET /t/{tenant}/.well-known/jwks.json` — next, active and retiring public keys.
pub async fn jwks_get(
    core: web::Data<Core>,
    path: web::Path<TenantPath>,
) -> Result<HttpResponse, OAuthError> {
    let tenant = oauth::served_tenant(&core, &path.tenant).await?;
    let keys = keys::tenant_keys(&core, tenant.id).await?;
    let max_age = core.keys.policy.jwks_max_age.as_secs();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .json(json!({ "keys": keys.jwks(core.clock.now_ms()) })))
}

/// `GET /.well-known/oauth-authorization-server/t/{tenant}` — RFC 8414 metadata.
pub async fn metadata_get(
    core: web::Data<Core>,
    path: web::Path<TenantPath>,
) -> Result<HttpResponse, OAuthError> {
    let tenant = oauth::served_tenant(&core, &path.tenant).await?;
    let issuer = tenant.issuer(&core.public_url);
    let scopes = oauth::scopes_supported(&core, &tenant).await?;
    let auth_methods = AuthMethod::ALL.map(AuthMethod::as_str);
    let assertion_algorithms = client_keys::ASSERTION_ALGORITHMS;
    let algorithms = [
        keys::KeyAlgorithm::EdDsa.as_str(),
        keys::KeyAlgorithm::Es256.as_str(),
    ];
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/oauth/token"),
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "introspection_endpoint": format!("{issuer}/oauth/introspect"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "revocation_feed_endpoint": format!("{issuer}/revocations"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "scopes_supported": scopes,
            "token_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "introspection_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "revocation_endpoint_auth_signing_alg_values_supported": assertion_algorithms,
            "access_token_signing_alg_values_supported": algorithms,
            "dpop_signing_alg_values_supported": oauth::DPOP_ALGORITHMS,
        })))
}
