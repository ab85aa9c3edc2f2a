//! Key material: generating signing keys, sealing their private halves with the key-encryption key
//! (AES-256-GCM, the tenant and kid as associated data), and turning them into what jsonwebtoken
//! signs and verifies with. Nothing here touches storage.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::domain::ids::TenantId;

/// The signature algorithms a tenant's keys may use; nothing else is ever accepted in a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    #[serde(rename = "EdDSA")]
    EdDsa,
    #[serde(rename = "ES256")]
    Es256,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyMaterialError {
    #[error("the key-encryption key must be 32 bytes, base64-encoded")]
    BadKek,
    #[error("cannot read or create the key-encryption key file {path}: {cause}")]
    KekFile { path: String, cause: String },
    #[error(
        "signing key {kid} was sealed with key-encryption key {sealed_with}, but this instance has {have}"
    )]
    WrongKek {
        kid: String,
        sealed_with: String,
        have: String,
    },
    #[error("signing key {0} does not open: its sealed form or associated data was altered")]
    Unsealable(String),
    #[error("signing key material is invalid: {0}")]
    Invalid(String),
}

/// The key-encryption key. Its Debug prints only its public id (a hash prefix), never the key.
#[derive(Clone)]
pub struct Kek {
    key: Zeroizing<[u8; 32]>,
    id: String,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({}, [redacted])", self.id)
    }
}

impl Kek {
    /// From the base64 text of 32 random bytes (the `key_encryption_key` setting).
    pub fn from_base64(text: &str) -> Result<Self, KeyMaterialError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KeyMaterialError::BadKek)?,
        );
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyMaterialError::BadKek)?;
        Ok(Self::from_bytes(key))
    }

    fn from_bytes(key: [u8; 32]) -> Self {
        // Identifies which KEK sealed a key, so a wrong one is named instead of "corrupt data".
        let digest = Sha256::digest(Sha256::digest(key));
        let id = digest
            .first_chunk::<6>()
            .map(hex::encode)
            .unwrap_or_default();
        Self {
            key: Zeroizing::new(key),
            id,
        }
    }

    /// Reads the KEK file in the data directory, creating it (owner-only) on first run.
    /// Returns whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyMaterialError> {
        let failed = |cause: std::io::Error| KeyMaterialError::KekFile {
            path: path.display().to_string(),
            cause: cause.to_string(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let text = Zeroizing::new(STANDARD.encode(key));
                write_owner_only(path, text.as_bytes()).map_err(failed)?;
                Ok((Self::from_bytes(key), true))
            }
            Err(e) => Err(failed(e)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.key))
    }

    /// `base64(nonce ‖ ciphertext)`, bound to the tenant and kid.
    fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, KeyMaterialError> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| KeyMaterialError::Invalid("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    fn open(
        &self,
        sealed: &str,
        aad: &[u8],
        kid: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyMaterialError> {
        let bytes = STANDARD
            .decode(sealed)
            .map_err(|_| KeyMaterialError::Unsealable(kid.to_owned()))?;
        if bytes.len() < 12 {
            return Err(KeyMaterialError::Unsealable(kid.to_owned()));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| KeyMaterialError::Unsealable(kid.to_owned()))?;
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyMaterialError::Unsealable(kid.to_owned()))
    }
}

#[cfg(unix)]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// A new key as it goes into storage: public JWK (with its RFC 7638 thumbprint as kid) and the
/// sealed private scalar.
pub struct GeneratedKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    pub public_jwk: String,
    pub sealed_private: String,
}

fn associated_data(tenant: TenantId, kid: &str) -> Vec<u8> {
    format!("tokenbroker/signing-key/v1|{tenant}|{kid}").into_bytes()
}

/// The private scalar as PKCS#8 DER, the form jsonwebtoken's signers read.
fn pkcs8_der(
    algorithm: KeyAlgorithm,
    scalar: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KeyMaterialError> {
    let invalid = |e: &dyn fmt::Display| KeyMaterialError::Invalid(e.to_string());
    match algorithm {
        KeyAlgorithm::EdDsa => {
            use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
            let secret_key: [u8; 32] = scalar
                .try_into()
                .map_err(|_| KeyMaterialError::Invalid("Ed25519 key is not 32 bytes".into()))?;
            // PKCS#8 v1 (no public key inside): the only Ed25519 form jsonwebtoken's JWK code takes.
            let der = KeypairBytes {
                secret_key,
                public_key: None,
            }
            .to_pkcs8_der()
            .map_err(|e| invalid(&e))?;
            Ok(Zeroizing::new(der.as_bytes().to_vec()))
        }
        KeyAlgorithm::Es256 => {
            use p256::pkcs8::EncodePrivateKey;
            let secret = p256::SecretKey::from_slice(scalar).map_err(|e| invalid(&e))?;
            let der = secret.to_pkcs8_der().map_err(|e| invalid(&e))?;
            Ok(Zeroizing::new(der.as_bytes().to_vec()))
        }
    }
}

fn random_scalar(algorithm: KeyAlgorithm) -> Zeroizing<[u8; 32]> {
    loop {
        let mut scalar = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(scalar.as_mut_slice());
        // A P-256 scalar must be below the group order; redraw the (≈2^-32) rest.
        if algorithm == KeyAlgorithm::EdDsa
            || p256::SecretKey::from_slice(scalar.as_slice()).is_ok()
        {
            return scalar;
        }
    }
}

/// Generates a key for a tenant and seals its private half.
pub fn generate(
    kek: &Kek,
    tenant: TenantId,
    algorithm: KeyAlgorithm,
) -> Result<GeneratedKey, KeyMaterialError> {
    let scalar = random_scalar(algorithm);
    let der = pkcs8_der(algorithm, scalar.as_slice())?;
    let encoding = encoding_key(algorithm, &der);
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm.jwt())
        .map_err(|e| KeyMaterialError::Invalid(e.to_string()))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| KeyMaterialError::Invalid(e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let public_jwk =
        serde_json::to_string(&jwk).map_err(|e| KeyMaterialError::Invalid(e.to_string()))?;
    let sealed_private = kek.seal(scalar.as_slice(), &associated_data(tenant, &kid))?;
    Ok(GeneratedKey {
        kid,
        algorithm,
        public_jwk,
        sealed_private,
    })
}

fn encoding_key(algorithm: KeyAlgorithm, der: &[u8]) -> EncodingKey {
    match algorithm {
        KeyAlgorithm::EdDsa => EncodingKey::from_ed_der(der),
        KeyAlgorithm::Es256 => EncodingKey::from_ec_der(der),
    }
}

/// A tenant's private key, opened once and kept ready to sign. (jsonwebtoken's `encode` would
/// parse the PKCS#8 document and derive the public key again for every token: for EdDSA, a second
/// scalar multiplication as costly as the signature itself.)
pub enum SigningKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algorithm = match self {
            Self::Ed25519(_) => "EdDSA",
            Self::P256(_) => "ES256",
        };
        write!(f, "SigningKey({algorithm}, [redacted])")
    }
}

impl SigningKey {
    fn from_scalar(algorithm: KeyAlgorithm, scalar: &[u8]) -> Result<Self, KeyMaterialError> {
        let invalid = |e: &dyn fmt::Display| KeyMaterialError::Invalid(e.to_string());
        Ok(match algorithm {
            KeyAlgorithm::EdDsa => {
                let secret: &[u8; 32] = scalar
                    .try_into()
                    .map_err(|_| KeyMaterialError::Invalid("Ed25519 key is not 32 bytes".into()))?;
                Self::Ed25519(ed25519_dalek::SigningKey::from_bytes(secret))
            }
            KeyAlgorithm::Es256 => {
                Self::P256(p256::ecdsa::SigningKey::from_slice(scalar).map_err(|e| invalid(&e))?)
            }
        })
    }

    /// The same key as jsonwebtoken takes it (for signing anything other than access tokens).
    pub fn encoding_key(&self) -> Result<EncodingKey, KeyMaterialError> {
        let (algorithm, scalar) = match self {
            Self::Ed25519(key) => (KeyAlgorithm::EdDsa, Zeroizing::new(key.to_bytes().to_vec())),
            Self::P256(key) => (KeyAlgorithm::Es256, Zeroizing::new(key.to_bytes().to_vec())),
        };
        Ok(encoding_key(algorithm, &pkcs8_der(algorithm, &scalar)?))
    }

    /// The JWS signature of `message`: Ed25519's 64 bytes, or ES256's `r || s` (RFC 7518 §3.4).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer as _;
        match self {
            Self::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
            Self::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }
}

/// Opens a sealed private key into a signer.
pub fn signer(
    kek: &Kek,
    tenant: TenantId,
    kid: &str,
    algorithm: KeyAlgorithm,
    sealed: &str,
    sealed_with: &str,
) -> Result<SigningKey, KeyMaterialError> {
    if sealed_with != kek.id() {
        return Err(KeyMaterialError::WrongKek {
            kid: kid.to_owned(),
            sealed_with: sealed_with.to_owned(),
            have: kek.id().to_owned(),
        });
    }
    let scalar = kek.open(sealed, &associated_data(tenant, kid), kid)?;
    SigningKey::from_scalar(algorithm, &scalar)
}

/// The verifier for a stored public JWK.
pub fn verifier(public_jwk: &str) -> Result<(Jwk, DecodingKey), KeyMaterialError> {
    let jwk: Jwk =
        serde_json::from_str(public_jwk).map_err(|e| KeyMaterialError::Invalid(e.to_string()))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| KeyMaterialError::Invalid(e.to_string()))?;
    Ok((jwk, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> Kek {
        Kek::from_base64(&STANDARD.encode([7u8; 32])).unwrap()
    }

    #[test]
    fn generated_keys_sign_and_verify_for_both_algorithms() {
        let tenant = TenantId::new();
        for algorithm in [KeyAlgorithm::EdDsa, KeyAlgorithm::Es256] {
            let key = generate(&kek(), tenant, algorithm).unwrap();
            let signer = signer(
                &kek(),
                tenant,
                &key.kid,
                algorithm,
                &key.sealed_private,
                kek().id(),
            )
            .unwrap();
            let (jwk, verifier) = verifier(&key.public_jwk).unwrap();
            assert_eq!(jwk.common.key_id.as_deref(), Some(key.kid.as_str()));
            // A compact JWS made by hand, checked by jsonwebtoken.
            let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let header = format!(r#"{{"alg":"{}","typ":"JWT"}}"#, algorithm.as_str());
            let input = format!("{}.{}", b64(header.as_bytes()), b64(br#"{"a":1}"#));
            let token = format!("{input}.{}", b64(&signer.sign(input.as_bytes())));
            let mut validation = jsonwebtoken::Validation::new(algorithm.jwt());
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, &verifier, &validation).unwrap();
        }
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_own_tenant_and_kid_and_kek() {
        let tenant = TenantId::new();
        let key = generate(&kek(), tenant, KeyAlgorithm::EdDsa).unwrap();
        let alg = KeyAlgorithm::EdDsa;
        assert!(
            signer(
                &kek(),
                TenantId::new(),
                &key.kid,
                alg,
                &key.sealed_private,
                kek().id()
            )
            .is_err()
        );
        assert!(
            signer(
                &kek(),
                tenant,
                "other",
                alg,
                &key.sealed_private,
                kek().id()
            )
            .is_err()
        );
        let other = Kek::from_base64(&STANDARD.encode([8u8; 32])).unwrap();
        let err = signer(
            &other,
            tenant,
            &key.kid,
            alg,
            &key.sealed_private,
            kek().id(),
        )
        .unwrap_err();
        assert!(matches!(err, KeyMaterialError::WrongKek { .. }));
        assert!(
            !key.public_jwk.contains("\"d\""),
            "the JWK must hold no private part"
        );
    }

    #[test]
    fn kek_debug_never_prints_the_key() {
        let text = STANDARD.encode([9u8; 32]);
        let kek = Kek::from_base64(&text).unwrap();
        assert!(!format!("{kek:?}").contains(&text));
        assert!(Kek::from_base64("c2hvcnQ=").is_err());
    }
}
