//! State the server hands to a browser and later takes back, with no row kept meanwhile: signed
//! with the installation's key (HMAC-SHA-256), expiring, and bound to one purpose so that a value
//! made for one use is never accepted for another. Anonymous visitors' CSRF tokens and passwordless
//! sign-in ceremonies travel this way, so a visitor who only looks at a page creates nothing in the
//! database (a flood of anonymous GETs used to leave one session row per request).
//!
//! A value reads `<expires-at ms>.<payload, base64url>.<HMAC, base64url>`. Only its integrity
//! matters: what it carries (a random nonce, a WebAuthn challenge) is shown to the browser anyway.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::clock::{Millis, duration_ms};
use crate::domain::secrets::{self, constant_time_eq};
use crate::domain::{Core, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// The name of the signing key among the installation's secrets.
const KEY_NAME: &str = "browser_state_signing";

/// How long a sign-in (or other anonymous) form may stay open before it must be reloaded.
pub const FORM_TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);
/// A page reuses the browser's form token while it has at least this long to live, so several
/// tabs opened within the hour share one token and none of them goes stale because of another.
const FORM_TOKEN_REUSE_MARGIN: Duration = Duration::from_secs(60 * 60);

/// What a signed value is for; part of what is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The double-submit CSRF token of forms shown to visitors without a session.
    FormCsrf,
    /// A passwordless sign-in ceremony in progress (the WebAuthn challenge and its policy).
    PasskeyDiscovery,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Self::FormCsrf => "tokenbroker/form-csrf/v1",
            Self::PasskeyDiscovery => "tokenbroker/passkey-discovery/v1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignedStateError {
    #[error("the value is malformed")]
    Malformed,
    #[error("the value's signature does not match")]
    BadSignature,
    #[error("the value has expired")]
    Expired,
}

/// A value that passed its checks: what it carries, and until when it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub payload: Vec<u8>,
    pub expires_at: Millis,
}

/// The installation's key for browser state, ready to sign. Never printed.
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

impl SigningKey {
    pub fn new(secret: &SecretString) -> Result<Self, StoreError> {
        HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
            .map(Self)
            .map_err(|_| StoreError::Corrupt("the browser-state signing key is unusable".into()))
    }

    fn mac(&self, purpose: Purpose, expires_at: Millis, payload: &str) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(purpose.label().as_bytes());
        mac.update(b"\n");
        mac.update(expires_at.to_string().as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        mac
    }

    /// Signs `payload` for `purpose`, valid until `expires_at`.
    pub fn sign(&self, purpose: Purpose, payload: &[u8], expires_at: Millis) -> String {
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let tag = self
            .mac(purpose, expires_at, &payload)
            .finalize()
            .into_bytes();
        format!("{expires_at}.{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks that `value` was signed by this key for `purpose` and has not expired at `now`.
    pub fn open(
        &self,
        purpose: Purpose,
        value: &str,
        now: Millis,
    ) -> Result<Opened, SignedStateError> {
        let mut parts = value.split('.');
        let (Some(expires_at), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SignedStateError::Malformed);
        };
        let expires_at: Millis = expires_at
            .parse()
            .map_err(|_| SignedStateError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| SignedStateError::Malformed)?;
        // `verify_slice` compares in constant time.
        self.mac(purpose, expires_at, payload)
            .verify_slice(&tag)
            .map_err(|_| SignedStateError::BadSignature)?;
        if now > expires_at {
            return Err(SignedStateError::Expired);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SignedStateError::Malformed)?;
        Ok(Opened {
            payload,
            expires_at,
        })
    }

    /// The form token a page shows: the browser's own (`current`, from its cookie) while it is
    /// valid for a while yet, else a fresh one. `Fresh` must be handed to the browser.
    pub fn form_token(&self, current: Option<&str>, now: Millis) -> FormToken {
        let reusable = current.filter(|token| {
            self.open(Purpose::FormCsrf, token, now)
                .is_ok_and(|opened| {
                    opened.expires_at.saturating_sub(now) >= duration_ms(FORM_TOKEN_REUSE_MARGIN)
                })
        });
        match reusable {
            Some(token) => FormToken::Current(token.to_owned()),
            None => {
                let mut nonce = [0u8; 16];
                rand::rng().fill_bytes(&mut nonce);
                let expires_at = now.saturating_add(duration_ms(FORM_TOKEN_LIFETIME));
                FormToken::Fresh(self.sign(Purpose::FormCsrf, &nonce, expires_at))
            }
        }
    }

    /// Double-submit check: the token sent with the form equals the browser's cookie (a site that
    /// can make the browser post cannot read or write that cookie), and it is ours and unexpired.
    pub fn check_form_token(
        &self,
        cookie: Option<&str>,
        presented: &str,
        now: Millis,
    ) -> Result<(), SignedStateError> {
        let cookie = cookie.ok_or(SignedStateError::Malformed)?;
        if !constant_time_eq(cookie, presented) {
            return Err(SignedStateError::BadSignature);
        }
        self.open(Purpose::FormCsrf, presented, now).map(drop)
    }
}

/// The form token for a page, and whether the browser still has to be given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormToken {
    Current(String),
    Fresh(String),
}

impl FormToken {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Current(token) | Self::Fresh(token) => token,
        }
    }
}

/// The installation's signing key, read (or created, by the first instance that needs it) once per
/// process. Fails while the database cannot be reached; the next request tries again.
pub async fn key(core: &Core) -> Result<&SigningKey, StoreError> {
    core.browser_state_key
        .get_or_try_init(|| async {
            let secret = core
                .store
                .installation_secret(KEY_NAME, &secrets::generate(), core.clock.now_ms())
                .await?;
            SigningKey::new(&secret)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::new(&SecretString::from("test key")).unwrap()
    }

    #[test]
    fn a_signed_value_opens_with_its_payload_until_it_expires() {
        let value = key().sign(Purpose::PasskeyDiscovery, b"challenge", 1_000);
        let opened = key()
            .open(Purpose::PasskeyDiscovery, &value, 1_000)
            .unwrap();
        assert_eq!(opened.payload, b"challenge");
        assert_eq!(opened.expires_at, 1_000);
        assert_eq!(
            key().open(Purpose::PasskeyDiscovery, &value, 1_001),
            Err(SignedStateError::Expired)
        );
    }

    #[test]
    fn a_value_is_refused_for_another_purpose_or_under_another_key() {
        let value = key().sign(Purpose::PasskeyDiscovery, b"x", 1_000);
        assert_eq!(
            key().open(Purpose::FormCsrf, &value, 0),
            Err(SignedStateError::BadSignature)
        );
        let other = SigningKey::new(&SecretString::from("another installation")).unwrap();
        assert_eq!(
            other.open(Purpose::PasskeyDiscovery, &value, 0),
            Err(SignedStateError::BadSignature)
        );
    }

    #[test]
    fn a_changed_expiry_or_payload_breaks_the_signature() {
        let value = key().sign(Purpose::FormCsrf, b"nonce", 1_000);
        let later = value.replacen("1000", "9000", 1);
        assert_eq!(
            key().open(Purpose::FormCsrf, &later, 0),
            Err(SignedStateError::BadSignature)
        );
        let parts: Vec<&str> = value.split('.').collect();
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(b"other"),
            parts[2]
        );
        assert_eq!(
            key().open(Purpose::FormCsrf, &swapped, 0),
            Err(SignedStateError::BadSignature)
        );
        for garbage in ["", "guessed", "1.2", "x.y.z", "1.a.b.c"] {
            assert!(
                key().open(Purpose::FormCsrf, garbage, 0).is_err(),
                "{garbage}"
            );
        }
    }

    #[test]
    fn a_page_reuses_the_browsers_form_token_while_it_has_an_hour_left() {
        let FormToken::Fresh(token) = key().form_token(None, 0) else {
            panic!("a browser without a token gets a fresh one");
        };
        let hour = duration_ms(Duration::from_secs(3600));
        assert_eq!(
            key().form_token(Some(&token), hour),
            FormToken::Current(token.clone())
        );
        assert!(matches!(
            key().form_token(Some(&token), hour + 1),
            FormToken::Fresh(fresh) if fresh != token
        ));
        assert!(matches!(
            key().form_token(Some("forged"), 0),
            FormToken::Fresh(_)
        ));
    }

    #[test]
    fn the_form_field_must_equal_the_cookie_and_be_valid() {
        let token = key().form_token(None, 0).as_str().to_owned();
        assert_eq!(key().check_form_token(Some(&token), &token, 10), Ok(()));
        let other = key().form_token(None, 0).as_str().to_owned();
        assert!(key().check_form_token(Some(&other), &token, 10).is_err());
        assert!(key().check_form_token(None, &token, 10).is_err());
        let expired = duration_ms(FORM_TOKEN_LIFETIME) + 1;
        assert_eq!(
            key().check_form_token(Some(&token), &token, expired),
            Err(SignedStateError::Expired)
        );
    }
}
