//! DPoP proofs (RFC 9449) at the token endpoint: a JWT typed `dpop+jwt`, signed with an asymmetric
//! algorithm by the public key in its own header, naming this request (`htm`, `htu`), fresh (`iat`
//! within a minute) and used once on every instance (`jti`). A token issued with a proof is bound
//! to the proof's key: its `cnf.jkt` is the key's RFC 7638 thumbprint and its type is `DPoP`.
//! A tenant may also require the proof to carry a nonce we handed out (see `nonce`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::{ErrorCode, OAuthError, ServedTenant};
use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::partners::client_keys::{ASSERTION_ALGORITHMS, ClientKey};
use crate::domain::secrets::sha256;
use crate::store::token_batches::SingleUse;

/// The proof header's type.
pub const DPOP_TYPE: &str = "dpop+jwt";
/// The algorithms a proof may be signed with (asymmetric only).
pub const DPOP_ALGORITHMS: [&str; 4] = ASSERTION_ALGORITHMS;
const MAX_PROOF_BYTES: usize = 4 * 1024;
/// How far a proof's `iat` may be from our clock, either way; its `jti` is kept this long after.
const WINDOW_MS: Millis = 60 * 1000;

#[derive(Deserialize)]
struct ProofClaims {
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    jti: Option<String>,
    nonce: Option<String>,
}

fn refused(description: &'static str) -> OAuthError {
    OAuthError::rejected(ErrorCode::InvalidDpopProof, description)
}

/// A proof that verified: the thumbprint of its key (`jkt`), and its id, to be spent with the
/// token it obtains (a replay is refused then, on every instance).
pub struct ProvenKey {
    pub jkt: String,
    pub single_use: SingleUse,
}

/// Checks a proof sent with `method` to `url`.
pub async fn verify_proof(
    core: &Core,
    tenant: &ServedTenant,
    proof: &str,
    method: &str,
    url: &str,
) -> Result<ProvenKey, OAuthError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(refused("The DPoP proof is too large."));
    }
    let header = jsonwebtoken::decode_header(proof)
        .map_err(|_| refused("The DPoP proof is not a signed JWT."))?;
    if header.typ.as_deref() != Some(DPOP_TYPE) {
        return Err(refused("The DPoP proof must be typed dpop+jwt."));
    }
    // The key is read from the raw header: a typed JWK would silently drop private members.
    let raw_header: Value = proof
        .split('.')
        .next()
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| refused("The DPoP proof is not a signed JWT."))?;
    let jwk = raw_header
        .get("jwk")
        .ok_or_else(|| refused("The DPoP proof must carry its public key (jwk)."))?;
    let key = proof_key(core, jwk)?;
    let label = crate::domain::partners::client_keys::algorithm_name(header.alg);
    let same_family = key.algorithm == header.alg
        || (matches!(label, "RS256" | "PS256")
            && matches!(
                key.algorithm,
                jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::PS256
            ));
    if !DPOP_ALGORITHMS.contains(&label) || !same_family {
        return Err(refused("The DPoP proof's algorithm is not accepted."));
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key.decoding, &validation)
        .map_err(|_| refused("The DPoP proof's signature does not verify."))?
        .claims;
    if claims.htm.as_deref() != Some(method) {
        return Err(refused("The DPoP proof names another HTTP method."));
    }
    let named = claims
        .htu
        .as_deref()
        .and_then(|htu| url::Url::parse(htu).ok());
    let target = url::Url::parse(url).ok();
    let without_query = |u: url::Url| {
        let mut u = u;
        u.set_query(None);
        u.set_fragment(None);
        u
    };
    if named.map(without_query) != target.map(without_query) {
        return Err(refused("The DPoP proof names another URL."));
    }
    let now = core.clock.now_ms();
    let iat_ms = claims
        .iat
        .ok_or_else(|| refused("The DPoP proof has no iat."))?
        .saturating_mul(1000);
    if (iat_ms - now).abs() > WINDOW_MS {
        return Err(refused("The DPoP proof is not fresh."));
    }
    // Checked before the jti is spent: the client retries with a new proof carrying the nonce.
    if tenant.dpop_nonce {
        let fresh = match claims.nonce.as_deref() {
            Some(nonce) => super::nonce::is_current(core, tenant, nonce).await?,
            None => false,
        };
        if !fresh {
            return Err(OAuthError::DpopNonceRequired {
                nonce: super::nonce::current(core, tenant).await?,
            });
        }
    }
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty() && jti.chars().count() <= 256)
        .ok_or_else(|| refused("The DPoP proof has no usable jti."))?;
    Ok(ProvenKey {
        jkt: key.thumbprint.clone(),
        single_use: SingleUse {
            digest: hex::encode(sha256(&format!("dpop\n{}\n{jti}", tenant.id))),
            expires_at: now + 2 * WINDOW_MS,
        },
    })
}

/// A proof's public key, parsed and checked once.
pub struct ProofKey {
    algorithm: jsonwebtoken::Algorithm,
    thumbprint: String,
    decoding: DecodingKey,
}

/// The proof's key, from the cache or parsed (public members only, a supported key) and cached.
fn proof_key(core: &Core, jwk: &Value) -> Result<Arc<ProofKey>, OAuthError> {
    let text = jwk.to_string();
    let digest = sha256(&text);
    if let Some(key) = core.verified.proof_keys.get(&digest) {
        return Ok(key);
    }
    let unacceptable = || refused("The DPoP proof's key is not an acceptable public key.");
    let key = ClientKey::parse(&text).map_err(|_| unacceptable())?;
    let key = Arc::new(ProofKey {
        decoding: DecodingKey::from_jwk(&key.jwk).map_err(|_| unacceptable())?,
        algorithm: key.algorithm,
        thumbprint: key.thumbprint,
    });
    core.verified.proof_keys.insert(digest, key.clone());
    Ok(key)
}

/// The answer to a proof whose id was spent before.
pub fn replayed_proof() -> OAuthError {
    refused("This DPoP proof was already used.")
}
