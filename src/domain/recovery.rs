//! Recovery codes: ten one-time codes shown once, stored as SHA-256. Using one is an alert-worthy
//! event and leaves the session able only to enrol a new passkey.

use secrecy::{ExposeSecret, SecretString};

use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::domain::secrets::SecretDigest;
use crate::store::StoreError;

pub const CODES_PER_SET: usize = 10;
/// 15 random bytes = 120 bits, written as 24 base32 characters in six groups of four. DESIGN.md asks
/// 256 bits of generated secrets; recovery codes are typed by people, and 120 bits is already far
/// beyond guessing through a throttled form or a SHA-256 table.
const CODE_BYTES: usize = 15;

/// How many of the user's recovery codes are still unused.
pub async fn codes_left(core: &Core, user: UserId) -> Result<i64, StoreError> {
    core.store.unused_recovery_codes(user).await
}

/// Generates a fresh set, replacing every earlier code, and returns the codes to show once.
pub async fn issue(
    core: &Core,
    user: UserId,
    context: &RequestContext,
    regenerated: bool,
) -> Result<Vec<SecretString>, StoreError> {
    let codes: Vec<SecretString> = (0..CODES_PER_SET).map(|_| generate()).collect();
    let digests: Vec<SecretDigest> = codes
        .iter()
        .map(|code| digest(code.expose_secret()))
        .collect();
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::RecoveryCodesRegenerated,
        Outcome::Success,
        Actor::User(user),
    )
    .subject(user)
    .context(context)
    .detail("count", CODES_PER_SET)
    .detail("first_set", !regenerated);
    core.store
        .replace_recovery_codes(user, &digests, now, &event)
        .await?;
    Ok(codes)
}

/// Burns one code. True if it was the user's and unused.
pub async fn redeem(
    core: &Core,
    user: UserId,
    entered: &str,
    context: &RequestContext,
) -> Result<bool, StoreError> {
    let now = core.clock.now_ms();
    let used = Event::new(
        now,
        EventType::RecoveryCodeUsed,
        Outcome::Success,
        Actor::User(user),
    )
    .subject(user)
    .context(context)
    .detail("alert", true);
    if core
        .store
        .redeem_recovery_code(user, &digest(entered), now, &used)
        .await?
    {
        return Ok(true);
    }
    let failed = Event::new(
        now,
        EventType::RecoveryCodeUsed,
        Outcome::Failure,
        Actor::User(user),
    )
    .subject(user)
    .context(context)
    .detail("reason", "unknown_or_used_code");
    core.store.append_event(&failed).await?;
    Ok(false)
}

fn generate() -> SecretString {
    let mut bytes = [0u8; CODE_BYTES];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let text = data_encoding::BASE32_NOPAD.encode(&bytes).to_lowercase();
    let grouped: Vec<String> = text
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect();
    SecretString::from(grouped.join("-"))
}

/// Codes are compared without regard to case, spaces or dashes, as people type them.
fn digest(code: &str) -> SecretDigest {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SecretDigest::of(&normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_typing_variations_match() {
        let code = generate();
        let code = code.expose_secret();
        assert_eq!(code.len(), 24 + 5);
        assert_eq!(code.split('-').count(), 6);
        let retyped = code.to_uppercase().replace('-', " ");
        assert_eq!(digest(code), digest(&retyped));
    }
}
