//! RFC 9068 JWT access tokens: issuing them under the tenant's active key, and verifying them in
//! the order DESIGN.md fixes — format → signature by kid among the tenant's published keys (only
//! EdDSA/ES256, never a key named by the token) → exp/nbf with bounded skew → iss/aud/typ → issued
//! by us (recorded) → not revoked → credential and tenant still active.

use std::sync::Arc;

use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use super::cache::KnownToken;
use super::{
    AuthenticatedClient, ErrorCode, Inactive, IssuanceBudget, OAuthError, ProvenKey, ServedTenant,
};
use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, time_ordered_id};
use crate::domain::keys::{self, KeyAlgorithm};
use crate::domain::partners::CredentialStatus;
use crate::domain::tenants::TenantStatus;
use crate::store::StoreError;
use crate::store::issued_tokens::IssuedToken;
use crate::store::partners::policies::{ISSUANCE_WINDOW_MS, IssuanceWindow};
use crate::store::token_batches::TokenRecording;

/// Longer than any token we issue; anything bigger is refused before parsing.
pub const MAX_TOKEN_BYTES: usize = 4096;
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// RFC 9449 §6: the thumbprint of the key a DPoP-bound token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: String,
}

impl AccessClaims {
    /// `DPoP` for a token bound to a key, else `Bearer`.
    pub fn token_type(&self) -> &'static str {
        if self.cnf.is_some() { "DPoP" } else { "Bearer" }
    }
}

/// `aud` may be one string or a list (RFC 7519 §4.1.3); we issue one string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, wanted: &str) -> bool {
        match self {
            Self::One(one) => one == wanted,
            Self::Many(many) => many.iter().any(|a| a == wanted),
        }
    }
}

/// A freshly issued access token (the response of the token endpoint).
pub struct IssuedAccessToken {
    pub access_token: secrecy::SecretString,
    /// `Bearer`, or `DPoP` for a token bound to the client's proof key.
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    /// What is left of the client's tokens for this minute.
    pub budget: IssuanceBudget,
    /// The DPoP nonce to use next (tenants that require one).
    pub dpop_nonce: Option<String>,
}

/// The requested scopes, limited to the grant: none asked means all granted (RFC 6749 §3.3).
pub fn granted_scopes(
    requested: Option<&str>,
    granted: &[String],
) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(granted.to_vec());
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !granted.iter().any(|g| g == scope) {
            return Err(OAuthError::rejected(
                ErrorCode::InvalidScope,
                "A requested scope is not granted to this client.",
            ));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    Ok(scopes)
}

/// Issues an access token to an authenticated client; with a DPoP proof, bound to its key. The
/// request's single-use ids (its assertion's, its proof's) are spent with the token.
pub async fn issue_access_token(
    core: &Core,
    tenant: &ServedTenant,
    client: &AuthenticatedClient,
    requested_scope: Option<&str>,
    proven: Option<ProvenKey>,
    context: &RequestContext,
) -> Result<IssuedAccessToken, OAuthError> {
    let jkt = proven.as_ref().map(|p| p.jkt.as_str());
    let scopes = granted_scopes(requested_scope, &client.known.scopes)?;
    let limit = client.policy.tokens_per_minute;
    let credential = client.known.credential_id.as_str();
    // Known to be over its limit until the window ends: refused without a database round trip.
    if let Some(until) = core.verified.limited.get(credential) {
        let now = core.clock.now_ms();
        if until > now {
            return Err(OAuthError::IssuanceLimited(budget(limit, 0, until, now)));
        }
    }
    let keys = keys::tenant_keys(core, tenant.id).await?;
    let signer = keys
        .signer
        .as_ref()
        .ok_or_else(|| OAuthError::Signing("the tenant has no active key".into()))?;
    let now = core.clock.now_ms();
    let lifetime = duration_ms(core.keys.policy.token_lifetime);
    // Never beyond the credential's own expiry.
    let expires_at = (now + lifetime).min(client.known.expires_at);
    let (iat, exp) = (now / 1000, expires_at / 1000);
    if exp <= iat {
        return Err(OAuthError::rejected(
            ErrorCode::InvalidClient,
            "Client authentication failed.",
        ));
    }
    let scope = scopes.join(" ");
    let claims = AccessClaims {
        iss: tenant.issuer(&core.public_url),
        sub: client.client_id.clone(),
        aud: Audience::One(tenant.audience(&core.public_url)),
        exp,
        iat,
        nbf: iat,
        jti: time_ordered_id(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        cnf: jkt.map(|jkt| Confirmation {
            jkt: jkt.to_owned(),
        }),
    };
    let token_type = claims.token_type();
    let mut header = Header::new(signer.algorithm.jwt());
    header.typ = Some(ACCESS_TOKEN_TYPE.into());
    header.kid = Some(signer.kid.clone());
    let token = signer
        .sign_jwt(&header, &claims)
        .map_err(|e| OAuthError::Signing(e.to_string()))?;
    let record = IssuedToken {
        jti: claims.jti.clone(),
        tenant_id: tenant.id.to_string(),
        credential_id: client.known.credential_id.clone(),
        client_id: client.client_id.clone(),
        kid: signer.kid.clone(),
        scopes: scope.clone(),
        issued_at: now,
        expires_at: exp * 1000,
        revoked_at: None,
    };
    let event = Event::new(
        now,
        EventType::TokenIssued,
        Outcome::Success,
        Actor::Client(client.known.credential_id.clone()),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("client_id", client.client_id.as_str())
    .detail("credential", client.known.credential_id.as_str())
    .detail("method", client.method.as_str())
    .detail("jti", claims.jti.as_str())
    .detail("kid", signer.kid.as_str())
    .detail("scope", scope.as_str())
    .detail("token_type", token_type)
    .detail("expires_at", exp * 1000);
    // In this order: the answer to a replay names which id was spent before.
    let assertion = client.unspent.iter().cloned();
    let spends: Vec<_> = assertion.chain(proven.map(|p| p.single_use)).collect();
    let assertion_spent = client.unspent.is_some();
    let recorded = core
        .issuance
        .record(&core.store, record.clone(), event, i64::from(limit), spends)
        .await?;
    let window = match recorded {
        TokenRecording::Recorded(window) => window,
        TokenRecording::OverLimit(window) => {
            return Err(limit_reached(core, tenant, client, window, context).await);
        }
        TokenRecording::Replayed(0) if assertion_spent => {
            return Err(
                super::client::refuse_replayed_assertion(core, tenant, client, context).await,
            );
        }
        TokenRecording::Replayed(_) => return Err(super::dpop::replayed_proof()),
    };
    core.verified
        .tokens
        .insert(record.jti.clone(), Arc::new(known_token(record)?));
    let used = u32::try_from(window.issued).unwrap_or(u32::MAX);
    Ok(IssuedAccessToken {
        access_token: token.into(),
        token_type,
        expires_in: exp - iat,
        scope,
        budget: budget(
            limit,
            limit.saturating_sub(used),
            window.started_at + ISSUANCE_WINDOW_MS,
            now,
        ),
        dpop_nonce: None,
    })
}

fn budget(limit: u32, remaining: u32, window_end: Millis, now: Millis) -> IssuanceBudget {
    IssuanceBudget {
        limit,
        remaining,
        reset_secs: u64::try_from(window_end - now).unwrap_or(0).div_ceil(1000),
    }
}

/// The client has had its tokens for this window: remembered until the window ends (so further
/// requests cost nothing), and recorded once per window on this instance — a client hammering
/// past its limit writes one event a minute, not one per request.
async fn limit_reached(
    core: &Core,
    tenant: &ServedTenant,
    client: &AuthenticatedClient,
    window: IssuanceWindow,
    context: &RequestContext,
) -> OAuthError {
    let now = core.clock.now_ms();
    let limit = client.policy.tokens_per_minute;
    let window_end = window.started_at + ISSUANCE_WINDOW_MS;
    let credential = client.known.credential_id.clone();
    let known = core.verified.limited.get(&credential);
    core.verified.limited.insert(credential.clone(), window_end);
    if known != Some(window_end) {
        let event = Event::new(
            now,
            EventType::TokenLimitReached,
            Outcome::Failure,
            Actor::Client(credential.clone()),
        )
        .tenant(tenant.id)
        .context(context)
        .detail("client_id", client.client_id.as_str())
        .detail("credential", credential)
        .detail("tokens_per_minute", limit)
        .detail("window_started_at", window.started_at);
        if let Err(e) = core.store.append_event(&event).await {
            tracing::warn!(error = %e, "could not record a reached issuance limit");
        }
    }
    OAuthError::IssuanceLimited(budget(limit, 0, window_end, now))
}

fn known_token(record: IssuedToken) -> Result<KnownToken, StoreError> {
    Ok(KnownToken {
        tenant_id: TenantId::parse(&record.tenant_id)
            .ok_or_else(|| StoreError::Corrupt(format!("tenant id {}", record.tenant_id)))?,
        credential_id: record.credential_id,
        client_id: record.client_id,
        kid: record.kid,
        scopes: record.scopes,
        issued_at: record.issued_at,
        expires_at: record.expires_at,
    })
}

/// Does it look like a JWS compact serialization at all? (three base64url parts, bounded size)
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_BYTES
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A JWT that verified, with its claims and what it was issued for.
pub struct VerifiedJwt {
    pub claims: AccessClaims,
    pub issued: Arc<KnownToken>,
}

/// Either the verified token, or why not — with the key id when the token named one we do not
/// know (worth an event: a forged or foreign token).
pub enum JwtCheck {
    Active(Box<VerifiedJwt>),
    Inactive {
        reason: Inactive,
        issued: Option<Arc<KnownToken>>,
    },
}

fn inactive(reason: Inactive) -> JwtCheck {
    JwtCheck::Inactive {
        reason,
        issued: None,
    }
}

pub async fn check_jwt(
    core: &Core,
    tenant: &ServedTenant,
    token: &str,
) -> Result<JwtCheck, OAuthError> {
    if !looks_like_jwt(token) {
        return Ok(inactive(Inactive::Malformed));
    }
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(inactive(Inactive::Malformed));
    };
    // Keys come only from our own key set: a token naming where to fetch its key (or carrying one)
    // is refused outright, as is anything not typed as an access token.
    let names_a_key = header.jku.is_some()
        || header.jwk.is_some()
        || header.x5u.is_some()
        || header.x5c.is_some()
        || header.crit.is_some();
    let typed = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    let allowed = [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256]
        .iter()
        .any(|a| a.jwt() == header.alg);
    if names_a_key || !typed || !allowed {
        return Ok(inactive(Inactive::Malformed));
    }
    let Some(kid) = header.kid.as_deref() else {
        return Ok(inactive(Inactive::Malformed));
    };
    let now = core.clock.now_ms();
    let keys = keys::tenant_keys(core, tenant.id).await?;
    let Some(key) = keys
        .verifying(kid, now)
        .filter(|k| !core.revocations.key_dropped(&k.kid))
    else {
        return Ok(inactive(Inactive::UnknownKey));
    };
    if key.algorithm.jwt() != header.alg {
        return Ok(inactive(Inactive::BadSignature));
    }
    let claims = match jsonwebtoken::decode::<AccessClaims>(
        token,
        &key.verifier,
        &signature_only(key.algorithm),
    ) {
        Ok(data) => data.claims,
        Err(e) => {
            return Ok(inactive(match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Inactive::BadSignature,
                _ => Inactive::Malformed,
            }));
        }
    };
    if let Some(reason) = time_and_audience(core, tenant, &claims, now) {
        return Ok(inactive(reason));
    }
    let issued = match issued_token(core, tenant.id, &claims.jti).await? {
        Issued::Known(issued) => issued,
        Issued::Gone(issued) => {
            return Ok(JwtCheck::Inactive {
                reason: Inactive::Revoked,
                issued: Some(issued),
            });
        }
        Issued::Unknown => return Ok(inactive(Inactive::Unknown)),
    };
    if issued.tenant_id != tenant.id || issued.client_id != claims.client_id {
        return Ok(inactive(Inactive::WrongTenant));
    }
    if let Some(reason) = revocation_state(core, &issued, &claims.jti) {
        return Ok(JwtCheck::Inactive {
            reason,
            issued: Some(issued),
        });
    }
    Ok(JwtCheck::Active(Box::new(VerifiedJwt { claims, issued })))
}

/// The library checks the signature and the algorithm; time and audience are checked here against
/// the service's clock (injectable in tests), not the library's.
fn signature_only(algorithm: KeyAlgorithm) -> Validation {
    let mut validation = Validation::new(algorithm.jwt());
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation
}

fn time_and_audience(
    core: &Core,
    tenant: &ServedTenant,
    claims: &AccessClaims,
    now: Millis,
) -> Option<Inactive> {
    let skew = duration_ms(core.keys.policy.clock_skew);
    if claims.exp * 1000 + skew <= now {
        return Some(Inactive::Expired);
    }
    if claims.nbf * 1000 - skew > now || claims.iat * 1000 - skew > now {
        return Some(Inactive::NotYetValid);
    }
    if claims.iss != tenant.issuer(&core.public_url)
        || !claims.aud.contains(&tenant.audience(&core.public_url))
    {
        return Some(Inactive::WrongTenant);
    }
    None
}

enum Issued {
    Known(Arc<KnownToken>),
    /// The database says it (or its credential, grant or tenant) is revoked or suspended.
    Gone(Arc<KnownToken>),
    Unknown,
}

/// What the token was issued for: from the cache, or (first sight on this instance) the database,
/// which also answers for revocations the cache may not have read yet.
async fn issued_token(core: &Core, tenant: TenantId, jti: &str) -> Result<Issued, StoreError> {
    if let Some(known) = core.verified.tokens.get(jti) {
        return Ok(Issued::Known(known));
    }
    let Some(status) = core.store.access_token_status(tenant, jti).await? else {
        return Ok(Issued::Unknown);
    };
    let gone = status.token.revoked_at.is_some()
        || status.credential_status == CredentialStatus::Revoked
        || status.grant_revoked_at.is_some()
        || status.tenant_status != TenantStatus::Active;
    let known = Arc::new(known_token(status.token)?);
    if gone {
        return Ok(Issued::Gone(known));
    }
    core.verified.tokens.insert(jti.to_owned(), known.clone());
    Ok(Issued::Known(known))
}

fn revocation_state(core: &Core, issued: &KnownToken, jti: &str) -> Option<Inactive> {
    let now = core.clock.now_ms();
    if issued.expires_at <= now - duration_ms(core.keys.policy.clock_skew) {
        Some(Inactive::Expired)
    } else if core.revocations.token_revoked(jti)
        || core.revocations.credential_revoked(&issued.credential_id)
    {
        Some(Inactive::Revoked)
    } else if core.revocations.tenant_suspended(issued.tenant_id) {
        Some(Inactive::TenantSuspended)
    } else {
        None
    }
}
