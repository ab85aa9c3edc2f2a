//! The public keys a client credential may authenticate with instead of a secret (private_key_jwt,
//! RFC 7523). A key is an RFC 7517 JWK — Ed25519, P-256 or RSA of at least 2048 bits — with no
//! private member, named by its RFC 7638 thumbprint; a credential holds at most two (rotation).
//! Adding one is as sensitive as minting (the route asks for a fresh passkey); a public key is
//! not a secret, so it is shown and logged freely.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::{CredentialKind, CredentialStatus, PartnerError};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
pub use crate::store::partners::client_keys::ClientKeyRow;
use crate::store::partners::client_keys::{KeyRegistration, NewClientKey};

/// Far beyond any public JWK (a 4096-bit RSA key is under 1 KB).
const MAX_JWK_BYTES: usize = 8 * 1024;
const MIN_RSA_BITS: usize = 2048;

/// A parsed, checked public key.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub jwk: Jwk,
    pub algorithm: Algorithm,
    pub thumbprint: String,
}

impl ClientKey {
    /// Parses a JWK as a client may register it: public members only, a supported curve or size,
    /// and an `alg` (if given) that fits the key.
    pub fn parse(raw: &str) -> Result<Self, PartnerError> {
        let invalid = PartnerError::Invalid;
        if raw.len() > MAX_JWK_BYTES {
            return Err(invalid("That key is far larger than any public key."));
        }
        let value: Value = serde_json::from_str(raw.trim())
            .map_err(|_| invalid("Paste the public key as a JSON Web Key (JWK) object."))?;
        let object = value.as_object().ok_or(invalid(
            "Paste the public key as a JSON Web Key (JWK) object.",
        ))?;
        const PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
        if PRIVATE.iter().any(|member| object.contains_key(*member)) {
            return Err(invalid(
                "That JWK holds a private or symmetric key: paste the public key only, and treat the private one as exposed.",
            ));
        }
        let text = |name: &str| object.get(name).and_then(Value::as_str);
        let bytes = |name: &str| {
            text(name)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or(invalid("The key's members are not valid base64url."))
        };
        let algorithm = match (text("kty"), text("crv")) {
            (Some("OKP"), Some("Ed25519")) => {
                let x: [u8; 32] = bytes("x")?
                    .try_into()
                    .map_err(|_| invalid("An Ed25519 key is 32 bytes."))?;
                ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| invalid("That is not a valid Ed25519 public key."))?;
                Algorithm::EdDSA
            }
            (Some("EC"), Some("P-256")) => {
                let mut point = vec![4u8];
                point.extend(bytes("x")?);
                point.extend(bytes("y")?);
                p256::PublicKey::from_sec1_bytes(&point)
                    .map_err(|_| invalid("That is not a valid P-256 public key."))?;
                Algorithm::ES256
            }
            (Some("RSA"), _) => {
                let modulus = bytes("n")?;
                let significant = modulus.iter().skip_while(|b| **b == 0).count() * 8;
                if significant < MIN_RSA_BITS {
                    return Err(invalid("RSA keys must have at least 2048 bits."));
                }
                bytes("e")?;
                if text("alg") == Some("PS256") {
                    Algorithm::PS256
                } else {
                    Algorithm::RS256
                }
            }
            _ => {
                return Err(invalid(
                    "Supported keys are Ed25519 (OKP), P-256 (EC) and RSA of 2048 bits or more.",
                ));
            }
        };
        let declared = text("alg");
        if declared.is_some_and(|alg| alg != algorithm_name(algorithm) && alg != "Ed25519") {
            return Err(invalid("The key's alg does not fit its type."));
        }
        if object
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            return Err(invalid("The key must be for signatures (use: sig)."));
        }
        let jwk: Jwk = serde_json::from_value(value.clone())
            .map_err(|_| invalid("That JWK could not be read."))?;
        DecodingKey::from_jwk(&jwk).map_err(|_| invalid("That JWK could not be read."))?;
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| invalid("That JWK could not be read."))?;
        Ok(Self {
            jwk,
            algorithm,
            thumbprint,
        })
    }

    /// A key as stored.
    pub fn from_row(row: &ClientKeyRow) -> Result<Self, PartnerError> {
        Self::parse(&row.public_jwk)
    }
}

/// The JOSE name of an algorithm a client key signs with.
pub fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        Algorithm::PS256 => "PS256",
        _ => "RS256",
    }
}

/// The algorithms client assertions may be signed with (never `none`, never HMAC).
pub const ASSERTION_ALGORITHMS: [&str; 4] = ["EdDSA", "ES256", "RS256", "PS256"];

/// Every key of a client credential, live and removed.
pub async fn client_keys(
    core: &Core,
    tenant: TenantId,
    credential: &str,
) -> Result<Vec<ClientKeyRow>, PartnerError> {
    Ok(core.store.client_keys(tenant, credential).await?)
}

/// Registers a public key for a client credential (at most two live ones).
pub async fn add_client_key(
    core: &Core,
    actor: UserId,
    tenant: TenantId,
    credential: &str,
    raw_jwk: &str,
    context: &RequestContext,
) -> Result<ClientKeyRow, PartnerError> {
    let found = core
        .store
        .credential(tenant, credential)
        .await?
        .ok_or(PartnerError::NotFound)?;
    if CredentialKind::parse(&found.kind) != Some(CredentialKind::Client) {
        return Err(PartnerError::Invalid(
            "Only client credentials authenticate with keys.",
        ));
    }
    if CredentialStatus::parse(&found.status) != Some(CredentialStatus::Active) {
        return Err(PartnerError::Invalid(
            "This credential is no longer active.",
        ));
    }
    let key = ClientKey::parse(raw_jwk)?;
    let public_jwk = serde_json::to_string(&key.jwk)
        .map_err(|e| crate::store::StoreError::Unexpected(e.to_string()))?;
    let now = core.clock.now_ms();
    let id = time_ordered_id();
    let event = Event::new(
        now,
        EventType::CredentialKeyAdded,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant)
    .context(context)
    .detail("credential", credential)
    .detail("key", id.as_str())
    .detail("thumbprint", key.thumbprint.as_str())
    .detail("algorithm", algorithm_name(key.algorithm));
    let new = NewClientKey {
        id: &id,
        tenant,
        credential_id: credential,
        thumbprint: &key.thumbprint,
        algorithm: algorithm_name(key.algorithm),
        public_jwk: &public_jwk,
        by: actor,
        now,
    };
    match core.store.insert_client_key(&new, &event).await? {
        KeyRegistration::Added => core.verified.forget_credential(credential),
        KeyRegistration::AlreadyRegistered => {
            return Err(PartnerError::Invalid(
                "This key is already registered for the credential.",
            ));
        }
        KeyRegistration::Full => {
            return Err(PartnerError::Invalid(
                "A credential holds two keys at most: remove the old one first.",
            ));
        }
    }
    client_keys(core, tenant, credential)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(PartnerError::NotFound)
}

/// Stops a key authenticating: at once on this instance, on the others when they hear of it
/// (PostgreSQL NOTIFY; a minute at most if that is lost).
pub async fn remove_client_key(
    core: &Core,
    actor: UserId,
    tenant: TenantId,
    credential: &str,
    key: &str,
    context: &RequestContext,
) -> Result<(), PartnerError> {
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::CredentialKeyRemoved,
        Outcome::Success,
        Actor::User(actor),
    )
    .tenant(tenant)
    .context(context)
    .detail("credential", credential)
    .detail("key", key);
    if core
        .store
        .remove_client_key(tenant, credential, key, actor, now, &event)
        .await?
    {
        core.verified.forget_credential(credential);
        Ok(())
    } else {
        Err(PartnerError::NotFound)
    }
}
