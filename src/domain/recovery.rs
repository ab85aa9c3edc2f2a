//! Recovery codes: ten one-time codes shown once, stored as SHA-256. Using one is an alert-worthy
//! event and leaves the session able only to enrol a new passkey.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::clock::duration_ms;
use crate::domain::Core;
use crate::domain::auth::{self, LoginError};
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::domain::secrets::{self, SecretDigest};
use crate::domain::users::{User, UserStatus};
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

/// How long an assisted-recovery link works.
pub const ASSISTED_LINK_LIFETIME: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum AssistedRecoveryError {
    #[error("Give a reason for the recovery.")]
    NoReason,
    #[error("Only an active account can be recovered; reactivate it first.")]
    Inactive,
    #[error(
        "This recovery link is unknown, already used or expired. Ask an administrator for a new one."
    )]
    LinkUnusable,
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Assisted recovery for someone who lost every passkey and recovery code: all of them and every
/// session go at once, and the returned single-use link (an hour) lets the person, after their
/// password, only enrol a new passkey and get new recovery codes. A high alert records it.
pub async fn start_assisted(
    core: &Core,
    person: &User,
    actor: Actor,
    reason: &str,
    context: &RequestContext,
) -> Result<SecretString, AssistedRecoveryError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(AssistedRecoveryError::NoReason);
    }
    if person.status != UserStatus::Active {
        return Err(AssistedRecoveryError::Inactive);
    }
    let (token, link) = recovery_link(core)?;
    let now = core.clock.now_ms();
    let event = recovery_started(now, person, actor, reason, context);
    core.store
        .start_account_recovery(
            person.id,
            &SecretDigest::of(token.expose_secret()),
            now,
            now + duration_ms(ASSISTED_LINK_LIFETIME),
            &event,
        )
        .await?;
    Ok(link)
}

/// A fresh recovery token and the link carrying it.
pub(crate) fn recovery_link(core: &Core) -> Result<(SecretString, SecretString), StoreError> {
    let token = secrets::generate();
    let mut link = core
        .public_url
        .join("/recover")
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    link.query_pairs_mut()
        .append_pair("token", token.expose_secret());
    Ok((token, SecretString::from(link.to_string())))
}

pub(crate) fn recovery_started(
    now: crate::clock::Millis,
    person: &User,
    actor: Actor,
    reason: &str,
    context: &RequestContext,
) -> Event {
    Event::new(
        now,
        EventType::AccountRecoveryStarted,
        Outcome::Success,
        actor,
    )
    .subject(person.id)
    .context(context)
    .detail("reason", reason)
    .detail("alert", true)
}

/// The person a usable recovery link is for.
pub async fn assisted_link_holder(core: &Core, token: &str) -> Result<User, AssistedRecoveryError> {
    let holder = core
        .store
        .account_recovery_user(&SecretDigest::of(token), core.clock.now_ms())
        .await?
        .ok_or(AssistedRecoveryError::LinkUnusable)?;
    core.store
        .find_user(holder)
        .await?
        .ok_or(AssistedRecoveryError::LinkUnusable)
}

/// The link and the person's password (throttled like any sign-in): the link is spent and the
/// person may now only enrol a new passkey.
pub async fn complete_assisted(
    core: &Core,
    token: &str,
    password: &SecretString,
    context: &RequestContext,
) -> Result<User, AssistedRecoveryError> {
    let holder = assisted_link_holder(core, token).await?;
    let user = auth::check_password(
        core,
        &holder.email,
        password,
        context,
        auth::PasswordPurpose::RecoveryLink,
    )
    .await?;
    let event = Event::new(
        core.clock.now_ms(),
        EventType::AccountRecoveryUsed,
        Outcome::Success,
        Actor::User(user.id),
    )
    .subject(user.id)
    .context(context);
    if !core
        .store
        .spend_account_recovery(&SecretDigest::of(token), core.clock.now_ms(), &event)
        .await?
    {
        return Err(AssistedRecoveryError::LinkUnusable);
    }
    Ok(user)
}
