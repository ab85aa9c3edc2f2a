//! Sign-in throttling shared by every instance (state in the database). Failures are counted per
//! account (by normalized e-mail, so unknown and known addresses behave alike) and per client IP
//! within a window; past a threshold the key is locked for a time that doubles with each further
//! failure, capped — never a permanent lock an attacker could impose.
//!
//! A locked account refuses every password until its lock lapses. A locked address only refuses
//! wrong ones: the password is still checked, and the right one goes on to the passkey step, so
//! others' failures from a shared address (an office, a proxy) never lock out a colleague.

use std::time::Duration;

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::refusals::Refusal;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub window: Duration,
    pub account_threshold: i64,
    pub ip_threshold: i64,
    pub first_lock: Duration,
    pub longest_lock: Duration,
}

pub const POLICY: ThrottlePolicy = ThrottlePolicy {
    window: Duration::from_secs(15 * 60),
    account_threshold: 5,
    ip_threshold: 20,
    first_lock: Duration::from_secs(60),
    longest_lock: Duration::from_secs(15 * 60),
};

/// Sign-in is refused until this time; the same answer whether or not the account exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: u64,
}

/// What the locks allow before a password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// The address is locked, the account is not: a right password passes, a wrong one gets this.
    AddressLocked(Throttled),
}

/// Throttle keys this instance has seen locked (and automation keys it found unknown), and until
/// when. Only a shortcut for refusing a flood without a database read per request: the database
/// stays the truth, and a key absent here is simply looked up.
pub struct KnownLocks(moka::sync::Cache<String, Millis>);

impl Default for KnownLocks {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(POLICY.longest_lock)
                .build(),
        )
    }
}

impl KnownLocks {
    /// Until when `key` is known to be locked, if it still is at `now`.
    pub fn until(&self, key: &str, now: Millis) -> Option<Millis> {
        self.0.get(key).filter(|until| *until > now)
    }

    pub fn remember(&self, key: &str, until: Millis) {
        self.0.insert(key.to_owned(), until);
    }
}

/// Seconds to wait, at least one.
pub fn retry_after(until: Millis, now: Millis) -> Throttled {
    Throttled {
        retry_after_secs: u64::try_from((until - now + 999) / 1000)
            .unwrap_or(1)
            .max(1),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Account,
    Ip,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Ip => "ip",
        }
    }
}

struct Key {
    scope: Scope,
    key: String,
}

fn keys(email_normalized: &str, ip: Option<&str>) -> Vec<Key> {
    let mut keys = vec![Key {
        scope: Scope::Account,
        key: format!("account:{email_normalized}"),
    }];
    if let Some(ip) = ip {
        keys.push(Key {
            scope: Scope::Ip,
            key: format!("ip:{ip}"),
        });
    }
    keys
}

/// Before checking a password: is this account or this IP locked right now? A locked account is
/// refused here; a locked address lets the password be checked (see [`Gate`]).
pub async fn check(
    core: &Core,
    email_normalized: &str,
    context: &RequestContext,
) -> Result<Result<Gate, Throttled>, StoreError> {
    let now = core.clock.now_ms();
    let keys = keys(email_normalized, context.ip.as_deref());
    let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    let mut account_until: Option<Millis> = None;
    let mut address_until: Option<Millis> = None;
    for row in core.store.throttle_rows(&names).await? {
        let Some(until) = row.locked_until else {
            continue;
        };
        let scope = keys
            .iter()
            .find(|k| k.key == row.throttle_key)
            .map_or(Scope::Account, |k| k.scope);
        if until > now {
            match scope {
                Scope::Account => account_until = Some(until),
                Scope::Ip => address_until = Some(until),
            }
        } else if core.store.lift_expired_lock(&row.throttle_key, now).await? {
            let event = Event::new(
                now,
                EventType::LoginUnlocked,
                Outcome::Success,
                Actor::Anonymous,
            )
            .context(context)
            .detail("scope", scope.as_str())
            .detail("reason", "lock_expired");
            core.store.append_event(&event).await?;
        }
    }
    let Some(until) = account_until else {
        return Ok(Ok(match address_until {
            Some(until) => Gate::AddressLocked(retry_after(until, now)),
            None => Gate::Open,
        }));
    };
    let event = Event::new(
        now,
        EventType::LoginThrottled,
        Outcome::Failure,
        Actor::Anonymous,
    )
    .context(context);
    core.store.append_event(&event).await?;
    core.refusals.record(Refusal::ThrottledSignIn, now);
    Ok(Err(retry_after(until, now)))
}

/// After a failed password: count it, and lock a key that crossed its threshold.
pub async fn record_failure(
    core: &Core,
    email_normalized: &str,
    subject: Option<UserId>,
    context: &RequestContext,
) -> Result<(), StoreError> {
    let now = core.clock.now_ms();
    let window_start = now - duration_ms(POLICY.window);
    for key in keys(email_normalized, context.ip.as_deref()) {
        let failures = core
            .store
            .count_failure(&key.key, now, window_start)
            .await?;
        let threshold = match key.scope {
            Scope::Account => POLICY.account_threshold,
            Scope::Ip => POLICY.ip_threshold,
        };
        if failures < threshold {
            continue;
        }
        let lock = lock_duration(failures - threshold);
        core.store
            .lock_until(&key.key, now + duration_ms(lock))
            .await?;
        let mut event = Event::new(
            now,
            EventType::LoginLocked,
            Outcome::Failure,
            Actor::Anonymous,
        )
        .context(context)
        .detail("scope", key.scope.as_str())
        .detail("failures", failures)
        .detail("lock_seconds", lock.as_secs());
        if let (Scope::Account, Some(user)) = (key.scope, subject) {
            event = event.subject(user);
        }
        core.store.append_event(&event).await?;
    }
    Ok(())
}

/// A successful sign-in clears the account's counter (the IP's keeps counting other accounts).
pub async fn record_success(core: &Core, email_normalized: &str) -> Result<(), StoreError> {
    core.store
        .clear_throttle(&format!("account:{email_normalized}"))
        .await
}

/// 1 min at the threshold, doubling per further failure, capped at 15 min.
pub(crate) fn lock_duration(failures_past_threshold: i64) -> Duration {
    let doublings = u32::try_from(failures_past_threshold.clamp(0, 10)).unwrap_or(10);
    POLICY
        .first_lock
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(POLICY.longest_lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_double_and_are_capped() {
        assert_eq!(lock_duration(0), Duration::from_secs(60));
        assert_eq!(lock_duration(1), Duration::from_secs(120));
        assert_eq!(lock_duration(3), Duration::from_secs(480));
        assert_eq!(lock_duration(4), Duration::from_secs(900));
        assert_eq!(lock_duration(50), Duration::from_secs(900));
    }
}
