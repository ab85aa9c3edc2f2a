//! Secrets the service generates itself (session keys, setup links, later API tokens): 256-bit random
//! values, stored only as SHA-256 and compared in constant time. argon2 is for human passwords only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh 256-bit random secret, URL-safe base64 (43 characters).
pub fn generate() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a secret, raw: the in-memory caches' key (hex only when the database is asked).
pub fn sha256(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// SHA-256 of a secret, as stored in the database (lower-case hex).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretDigest(String);

impl SecretDigest {
    pub fn of(secret: &str) -> Self {
        Self::from_sha256(&sha256(secret))
    }

    pub fn from_sha256(digest: &[u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    pub fn as_hex(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretDigest([redacted])")
    }
}

/// Constant-time equality for secrets presented by clients (CSRF tokens and the like).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn generated_secrets_are_256_bits_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn digest_debug_never_prints_the_hash() {
        let digest = SecretDigest::of("abc");
        assert_eq!(digest.as_hex().len(), 64);
        assert!(!format!("{digest:?}").contains(digest.as_hex()));
    }
}
