//! Client authentication with a signed JWT (`private_key_jwt`, RFC 7523 §2.2 as profiled by OpenID
//! Connect Core §9): `iss` = `sub` = the client id, `aud` the tenant's token endpoint or issuer,
//! `exp` at most five minutes ahead, `iat`, and a `jti` accepted once on every instance; signed by
//! one of the credential's registered public keys with an asymmetric algorithm. The added cost
//! over a secret is one signature verification and one insert (the replay guard, in the token's
//! own transaction at the token endpoint): the client and its keys are cached like a known secret.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::cache::{KnownAssertingClient, KnownSecret};
use super::secrets::current_state;
use super::{Inactive, ServedTenant};
use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::domain::partners::client_keys::{ASSERTION_ALGORITHMS, ClientKey, ClientKeyRow};
use crate::domain::partners::{CredentialKind, CredentialStatus};
use crate::domain::secrets::sha256;
use crate::domain::tenants::TenantStatus;
use crate::store::StoreError;
use crate::store::token_batches::SingleUse;

/// The client-assertion type RFC 7523 defines.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Far beyond any honest assertion; larger ones are refused before any parsing.
const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// How far ahead an assertion's `exp` may be.
const MAX_LIFETIME_MS: Millis = 5 * 60 * 1000;
/// Clock difference tolerated between the client and us.
const SKEW_MS: Millis = 30 * 1000;
const MAX_JTI_CHARS: usize = 256;

/// Why an assertion was refused (the event's reason; the client only hears `invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssertionRefusal {
    Malformed,
    TooLarge,
    Algorithm,
    WrongIssuer,
    UnknownClient,
    NoKey,
    BadSignature,
    WrongAudience,
    Expired,
    TooLong,
    MissingClaim,
    Replayed,
    Credential(Inactive),
}

impl AssertionRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "assertion_malformed",
            Self::TooLarge => "assertion_too_large",
            Self::Algorithm => "assertion_algorithm",
            Self::WrongIssuer => "assertion_issuer",
            Self::UnknownClient => "unknown",
            Self::NoKey => "no_key",
            Self::BadSignature => "bad_signature",
            Self::WrongAudience => "assertion_audience",
            Self::Expired => "assertion_expired",
            Self::TooLong => "assertion_lifetime",
            Self::MissingClaim => "assertion_claims",
            Self::Replayed => "assertion_replayed",
            Self::Credential(inactive) => inactive.code(),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    #[serde(default)]
    aud: Value,
    exp: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// The client id an assertion claims to be from (its `iss`), read without trusting it: it only
/// chooses which keys to verify the signature with.
pub fn claimed_client(assertion: &str) -> Option<String> {
    if assertion.len() > MAX_ASSERTION_BYTES {
        return None;
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(assertion)
        .ok()?
        .iss
}

/// Verifies `assertion` as coming from `client_id` of `tenant`: the credential as a known client,
/// and the assertion's id, which the caller spends (at once, or with the token it obtains).
pub async fn verify_assertion(
    core: &Core,
    tenant: &ServedTenant,
    client_id: &str,
    assertion: &str,
) -> Result<Result<(Arc<KnownSecret>, SingleUse), AssertionRefusal>, StoreError> {
    use AssertionRefusal::*;
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Ok(Err(TooLarge));
    }
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return Ok(Err(Malformed));
    };
    if !ASSERTION_ALGORITHMS.contains(&algorithm_label(header.alg)) {
        return Ok(Err(Algorithm));
    }
    let Ok(claims) = jsonwebtoken::dangerous::insecure_decode_claims::<Claims>(assertion) else {
        return Ok(Err(Malformed));
    };
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Ok(Err(WrongIssuer));
    }
    let Some((client, verdict)) = asserting_client(core, tenant.id, client_id).await? else {
        return Ok(Err(UnknownClient));
    };
    let candidates: Vec<&AssertionKey> = client
        .keys
        .iter()
        .filter(|key| match header.kid.as_deref() {
            Some(kid) => key.kid.as_deref() == Some(kid) || key.thumbprint == kid,
            None => true,
        })
        .filter(|key| same_family(key.algorithm, header.alg))
        .collect();
    if candidates.is_empty() {
        return Ok(Err(NoKey));
    }
    let mut validation = Validation::new(header.alg);
    // Times are checked below against the service's clock; the audience may be either of two.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let verified = candidates.iter().any(|key| {
        jsonwebtoken::decode::<IgnoredAny>(assertion, &key.decoding, &validation).is_ok()
    });
    if !verified {
        return Ok(Err(BadSignature));
    }
    let issuer = tenant.issuer(&core.public_url);
    let audiences = [issuer.clone(), format!("{issuer}/oauth/token")];
    let audience_fits = match &claims.aud {
        Value::String(one) => audiences.contains(one),
        Value::Array(many) => many
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| audiences.iter().any(|a| a == aud)),
        _ => false,
    };
    if !audience_fits {
        return Ok(Err(WrongAudience));
    }
    let now = core.clock.now_ms();
    let (Some(exp), Some(iat), Some(jti)) = (claims.exp, claims.iat, claims.jti.as_deref()) else {
        return Ok(Err(MissingClaim));
    };
    let (exp_ms, iat_ms) = (exp.saturating_mul(1000), iat.saturating_mul(1000));
    if exp_ms <= now - SKEW_MS {
        return Ok(Err(Expired));
    }
    if exp_ms > now + MAX_LIFETIME_MS + SKEW_MS || iat_ms > now + SKEW_MS || exp_ms <= iat_ms {
        return Ok(Err(TooLong));
    }
    if jti.is_empty() || jti.chars().count() > MAX_JTI_CHARS {
        return Ok(Err(MissingClaim));
    }
    if let Some(reason) = verdict.or_else(|| current_state(core, &client.known, now)) {
        return Ok(Err(Credential(reason)));
    }
    // Spent after every check, so a refused assertion cannot burn an id; kept until it expires.
    let single_use = SingleUse {
        digest: hex::encode(sha256(&format!("{}\n{client_id}\n{jti}", tenant.id))),
        expires_at: exp_ms + SKEW_MS,
    };
    Ok(Ok((client.known.clone(), single_use)))
}

/// A registered key, ready to verify signatures.
pub struct AssertionKey {
    kid: Option<String>,
    thumbprint: String,
    algorithm: Algorithm,
    decoding: DecodingKey,
}

impl AssertionKey {
    fn from_row(row: &ClientKeyRow) -> Option<Self> {
        let key = ClientKey::from_row(row).ok()?;
        Some(Self {
            decoding: DecodingKey::from_jwk(&key.jwk).ok()?,
            kid: key.jwk.common.key_id,
            thumbprint: key.thumbprint,
            algorithm: key.algorithm,
        })
    }
}

/// The client a client id names, with its live keys: from this instance's cache, or read (and
/// then cached while it is usable). A client read from the database comes with the database's
/// verdict when it is not usable; a cached one is judged on each use like a cached secret.
async fn asserting_client(
    core: &Core,
    tenant: TenantId,
    client_id: &str,
) -> Result<Option<(Arc<KnownAssertingClient>, Option<Inactive>)>, StoreError> {
    if let Some(client) = core.verified.asserting_client(tenant, client_id) {
        return Ok(Some((client, None)));
    }
    let Some((client, keys)) = core.store.asserting_client(tenant, client_id).await? else {
        return Ok(None);
    };
    if client.kind != CredentialKind::Client {
        return Ok(None);
    }
    let known = Arc::new(KnownSecret {
        secret_id: String::new(),
        tenant_id: TenantId::parse(&client.tenant_id)
            .ok_or_else(|| StoreError::Corrupt(format!("tenant id {}", client.tenant_id)))?,
        credential_id: client.credential_id.clone(),
        kind: client.kind,
        client_id: Some(client_id.to_owned()),
        may_introspect: client.may_introspect != 0,
        scopes: serde_json::from_str(&client.scopes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        expires_at: client.credential_expires_at,
        last_recorded: client.last_used_at.unwrap_or(0).into(),
    });
    let asserting = Arc::new(KnownAssertingClient {
        known,
        keys: keys.iter().filter_map(AssertionKey::from_row).collect(),
    });
    // The database is the truth on a miss: the cache may not have read the latest revocations yet.
    let verdict = if client.credential_status == CredentialStatus::Expired {
        Some(Inactive::Expired)
    } else if client.credential_status != CredentialStatus::Active
        || client.grant_revoked_at.is_some()
    {
        Some(Inactive::Revoked)
    } else if client.tenant_status != TenantStatus::Active {
        Some(Inactive::TenantSuspended)
    } else {
        core.verified
            .remember_asserting_client(tenant, client_id, asserting.clone());
        None
    };
    Ok(Some((asserting, verdict)))
}

fn algorithm_label(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::PS256 => "PS256",
        _ => "refused",
    }
}

/// An RSA key signs with RS256 or PS256; the others with their one algorithm.
fn same_family(key: Algorithm, signed: Algorithm) -> bool {
    let rsa = |a: Algorithm| matches!(a, Algorithm::RS256 | Algorithm::PS256);
    key == signed || (rsa(key) && rsa(signed))
}
