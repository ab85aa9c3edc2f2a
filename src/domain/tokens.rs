//! The format of secrets handed to partners: a recognisable prefix naming the kind and the
//! environment, a random body of ≥ 128 bits from the OS CSPRNG, and a CRC32 checksum, so secret
//! scanners can find leaked tokens and typos are caught before any database lookup (as GitHub does).
//!
//! `tbk_live_<body><check>` — API token; `tbs_live_<body><check>` — client secret;
//! `tba_live_<body><check>` — a staff member's automation key;
//! `tbc_live_<id>` — public client id.

use rand::RngCore;
use secrecy::SecretString;

/// 24 random bytes: 192 bits.
const BODY_BYTES: usize = 24;
const CHECKSUM_CHARS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    ApiToken,
    ClientSecret,
    /// A staff member's key for the automation API.
    AutomationKey,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::ApiToken => "tbk",
            Self::ClientSecret => "tbs",
            Self::AutomationKey => "tba",
        }
    }
}

/// A freshly generated secret in its full form (shown once) with the start that may be displayed.
pub struct Issued {
    pub secret: SecretString,
    /// `tbk_live_AbCd` — enough to recognise it in a list, far too little to use it.
    pub display_prefix: String,
}

pub fn issue(kind: SecretKind, environment: &str) -> Issued {
    let mut bytes = [0u8; BODY_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let body = bs58::encode(bytes).into_string();
    let head = format!("{}_{environment}_", kind.prefix());
    let display_prefix = format!("{head}{}", &body[..4]);
    let checksum = checksum(&format!("{head}{body}"));
    Issued {
        secret: SecretString::from(format!("{head}{body}{checksum}")),
        display_prefix,
    }
}

/// A public client id.
pub fn client_id(environment: &str) -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!("tbc_{environment}_{}", bs58::encode(bytes).into_string())
}

/// Does `candidate` look like one of ours, with a valid checksum? Cheap, and done before hashing.
pub fn is_well_formed(candidate: &str, kind: SecretKind) -> bool {
    let Some(rest) = candidate
        .strip_prefix(kind.prefix())
        .and_then(|r| r.strip_prefix('_'))
    else {
        return false;
    };
    let Some((environment, body_and_check)) = rest.split_once('_') else {
        return false;
    };
    if environment.is_empty()
        || body_and_check.len() <= CHECKSUM_CHARS
        || !body_and_check.is_ascii()
    {
        return false;
    }
    let (body, check) = body_and_check.split_at(body_and_check.len() - CHECKSUM_CHARS);
    checksum_of(&[kind.prefix(), "_", environment, "_", body]) == check
}

/// CRC32 in base58, fixed width.
fn checksum(text: &str) -> String {
    checksum_of(&[text])
}

/// The checksum of the concatenated parts (verification runs per request: no joined copy).
fn checksum_of(parts: &[&str]) -> String {
    let mut crc = crc32fast::Hasher::new();
    for part in parts {
        crc.update(part.as_bytes());
    }
    let encoded = bs58::encode(crc.finalize().to_be_bytes()).into_string();
    format!("{encoded:1>width$}", width = CHECKSUM_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn issued_tokens_carry_prefix_and_checksum() {
        let issued = issue(SecretKind::ApiToken, "live");
        let token = issued.secret.expose_secret();
        assert!(token.starts_with("tbk_live_"));
        assert!(
            issued.display_prefix.starts_with("tbk_live_")
                && token.starts_with(&issued.display_prefix)
        );
        assert!(token.len() >= 9 + 32 + CHECKSUM_CHARS);
        assert!(is_well_formed(token, SecretKind::ApiToken));
        assert!(!is_well_formed(token, SecretKind::ClientSecret));
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let token = issue(SecretKind::ClientSecret, "live")
            .secret
            .expose_secret()
            .to_owned();
        let mut chars: Vec<char> = token.chars().collect();
        let i = 12;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!is_well_formed(&typo, SecretKind::ClientSecret));
        assert!(!is_well_formed("tbs_live_", SecretKind::ClientSecret));
        assert!(!is_well_formed(
            "eyJhbGciOi.jwt.looking",
            SecretKind::ClientSecret
        ));
    }

    #[test]
    fn two_issues_never_repeat() {
        let a = issue(SecretKind::ApiToken, "live");
        let b = issue(SecretKind::ApiToken, "live");
        assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
        assert!(client_id("live").starts_with("tbc_live_"));
    }
}
