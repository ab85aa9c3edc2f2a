//! Staff sign-in and sign-out. Unknown e-mail and wrong password take the same path, the same time
//! and give the same answer; the event log records one reason code for both.

use secrecy::SecretString;

use crate::domain::Core;
use crate::domain::email::Email;
use crate::domain::events::{Actor, Event, EventType, LoginFailure, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::domain::password::{Password, PasswordError};
use crate::domain::sessions;
use crate::domain::throttle::{self, Throttled};
use crate::domain::users::{User, UserStatus};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("The e-mail address or password is not correct.")]
    InvalidCredentials,
    #[error("Too many failed sign-ins. Wait {} and try again.", wait_text(.0.retry_after_secs))]
    Throttled(Throttled),
    #[error("This account is deactivated. Ask an administrator to reactivate it.")]
    Deactivated,
    #[error(
        "Your passkeys were removed to recover your account: open the recovery link you were given (or ask an administrator for a new one)."
    )]
    AwaitingRecovery,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a password is checked: the login form, or an assisted-recovery link (the one way on for
/// an account whose passkeys a recovery removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPurpose {
    SignIn,
    RecoveryLink,
}

pub async fn sign_in(
    core: &Core,
    email: &str,
    password: &SecretString,
    context: &RequestContext,
) -> Result<User, LoginError> {
    check_password(core, email, password, context, PasswordPurpose::SignIn).await
}

/// The password check behind every sign-in: throttled, timed alike for every answer, recorded.
pub async fn check_password(
    core: &Core,
    email: &str,
    password: &SecretString,
    context: &RequestContext,
    purpose: PasswordPurpose,
) -> Result<User, LoginError> {
    let parsed = Email::parse(email);
    let throttle_key = parsed.as_ref().map_or_else(
        |_| email.trim().to_lowercase(),
        |e| e.normalized().to_owned(),
    );
    let gate = match throttle::check(core, &throttle_key, context).await? {
        Ok(gate) => gate,
        Err(throttled) => return Err(LoginError::Throttled(throttled)),
    };
    // A malformed address cannot have an account, but it still pays for a hash: timing stays flat.
    let found = match parsed {
        Ok(email) => {
            core.store
                .find_credentials_by_email(email.normalized())
                .await?
        }
        Err(_) => None,
    };
    let matches = core
        .passwords
        .verify(
            password,
            found.as_ref().and_then(|c| c.password_hash.as_ref()),
        )
        .await?;

    let failure = match &found {
        Some(credentials) if matches && credentials.user.status == UserStatus::Active => {
            let recovering = purpose == PasswordPurpose::SignIn
                && core
                    .store
                    .awaits_account_recovery(credentials.user.id)
                    .await?;
            recovering.then_some(LoginFailure::AwaitingRecovery)
        }
        Some(_) if matches => Some(LoginFailure::AccountDeactivated),
        _ => Some(LoginFailure::InvalidCredentials),
    };
    let subject = found.as_ref().map(|c| c.user.id);
    record_login(core, subject, failure, context).await?;
    match failure {
        None => throttle::record_success(core, &throttle_key).await?,
        Some(LoginFailure::InvalidCredentials) => {
            throttle::record_failure(core, &throttle_key, subject, context).await?;
            if let throttle::Gate::AddressLocked(throttled) = gate {
                core.refusals.record(
                    crate::refusals::Refusal::ThrottledSignIn,
                    core.clock.now_ms(),
                );
                return Err(LoginError::Throttled(throttled));
            }
        }
        // The password was right: not a guess, so not counted.
        Some(LoginFailure::AccountDeactivated | LoginFailure::AwaitingRecovery) => {}
    }

    match (found, failure) {
        (Some(credentials), None) => Ok(credentials.user),
        (_, Some(LoginFailure::AccountDeactivated)) => Err(LoginError::Deactivated),
        (_, Some(LoginFailure::AwaitingRecovery)) => Err(LoginError::AwaitingRecovery),
        _ => Err(LoginError::InvalidCredentials),
    }
}

async fn record_login(
    core: &Core,
    subject: Option<UserId>,
    failure: Option<LoginFailure>,
    context: &RequestContext,
) -> Result<(), StoreError> {
    let now = core.clock.now_ms();
    let mut event = match (failure, subject) {
        (None, Some(user)) => {
            Event::new(now, EventType::Login, Outcome::Success, Actor::User(user))
        }
        _ => Event::new(now, EventType::Login, Outcome::Failure, Actor::Anonymous),
    }
    .context(&if failure.is_some() {
        context.without_session()
    } else {
        context.clone()
    })
    .detail("method", "password");
    if let Some(subject) = subject {
        event = event.subject(subject);
    }
    if let Some(failure) = failure {
        event = event.detail("reason", failure.code());
    }
    core.store.append_event(&event).await
}

pub async fn record_logout(
    core: &Core,
    user: UserId,
    context: &RequestContext,
) -> Result<(), StoreError> {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::Logout,
        Outcome::Success,
        Actor::User(user),
    )
    .subject(user)
    .context(context);
    core.store.append_event(&event).await
}

/// The signed-in user, if the account still exists and is active.
pub async fn active_user(core: &Core, id: UserId) -> Result<Option<User>, StoreError> {
    Ok(core
        .store
        .find_user(id)
        .await?
        .filter(|user| user.status == UserStatus::Active))
}

fn wait_text(seconds: u64) -> String {
    if seconds < 90 {
        format!("{seconds} seconds")
    } else {
        format!("{} minutes", seconds.div_ceil(60))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("Your current password is not correct.")]
    WrongCurrentPassword,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Changes a password after checking the current one, and ends every other session of the user
/// (the caller has just made a fresh passkey assertion).
pub async fn change_password(
    core: &Core,
    user: UserId,
    current: &SecretString,
    new: Password,
    keep_session: &str,
    context: &RequestContext,
) -> Result<u64, PasswordChangeError> {
    let hash = core.store.password_hash_of(user).await?;
    if !core.passwords.verify(current, hash.as_ref()).await? {
        let event = Event::new(
            core.clock.now_ms(),
            EventType::PasswordChanged,
            Outcome::Failure,
            Actor::User(user),
        )
        .subject(user)
        .context(context)
        .detail("reason", "wrong_current_password");
        core.store.append_event(&event).await?;
        return Err(PasswordChangeError::WrongCurrentPassword);
    }
    let new_hash = core.passwords.hash(&new).await?;
    let event = Event::new(
        core.clock.now_ms(),
        EventType::PasswordChanged,
        Outcome::Success,
        Actor::User(user),
    )
    .subject(user)
    .context(context);
    core.store
        .set_password_hash(user, &new_hash, core.clock.now_ms(), &event)
        .await?;
    Ok(sessions::end_other_sessions(core, user, keep_session, context).await?)
}
