//! Server-side browser sessions. The cookie holds only a random key; the database holds its SHA-256
//! and everything else. These are the names of the session-state entries the store lifts into
//! indexed columns, and the expiry rules.

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::store::StoreError;

pub mod state;

/// Session-state keys. Values are JSON-encoded (actix-session's convention).
pub mod keys {
    pub const USER_ID: &str = "user_id";
    pub const AUTH_TIME: &str = "auth_time";
    pub const AUTH_LEVEL: &str = "auth_level";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "user_agent";
    pub const CSRF: &str = "csrf";
    /// Public handle of the session (lifted into `sessions.public_id`).
    pub const PUBLIC_ID: &str = "public_id";
    /// When the user last proved presence with a passkey (step-up freshness).
    pub const PASSKEY_AT: &str = "passkey_at";
    /// The WebAuthn ceremony in progress: kept server-side, never trusted from the client.
    pub const CEREMONY: &str = "ceremony";
    /// A sensitive action waiting for a fresh passkey assertion.
    pub const PENDING_ACTION: &str = "pending_action";
    /// The tenants this session worked in lately (slugs, most recent first), for the switcher.
    pub const RECENT_TENANTS: &str = "recent_tenants";
}

/// How strongly the session's user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthLevel {
    /// First factor only: may reach the second-factor and enrolment pages, nothing else.
    Password,
    /// Password and a recovery code: must enrol a new passkey before anything else.
    Recovery,
    /// Full access.
    Passkey,
}

impl AuthLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Recovery => "recovery",
            Self::Passkey => "passkey",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Password, Self::Recovery, Self::Passkey]
            .into_iter()
            .find(|level| level.as_str() == raw)
    }
}

/// Sensitive actions need a passkey assertion this recent.
pub const STEP_UP_WINDOW: Duration = Duration::from_secs(5 * 60);

pub fn step_up_is_fresh(passkey_at: Option<Millis>, now: Millis) -> bool {
    passkey_at.is_some_and(|at| now.saturating_sub(at) <= duration_ms(STEP_UP_WINDOW))
}

/// The parts of a session's state that live in their own columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionMeta {
    pub public_id: Option<String>,
    pub user_id: Option<UserId>,
    pub auth_time: Option<Millis>,
    pub auth_level: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl SessionMeta {
    pub fn from_state(state: &HashMap<String, String>) -> Self {
        let text = |key: &str| {
            state
                .get(key)
                .and_then(|raw| serde_json::from_str::<String>(raw).ok())
        };
        Self {
            public_id: text(keys::PUBLIC_ID),
            user_id: text(keys::USER_ID).and_then(|raw| UserId::parse(&raw)),
            auth_time: state
                .get(keys::AUTH_TIME)
                .and_then(|raw| serde_json::from_str::<Millis>(raw).ok()),
            auth_level: text(keys::AUTH_LEVEL),
            ip: text(keys::IP),
            user_agent: text(keys::USER_AGENT),
        }
    }
}

/// Idle and absolute limits, both enforced by the server.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

impl SessionPolicy {
    pub fn idle_expiry(&self, now: Millis) -> Millis {
        now.saturating_add(duration_ms(self.idle))
    }

    /// The absolute lifetime runs from sign-in, so renewing the key never extends it.
    pub fn absolute_expiry(&self, now: Millis, auth_time: Option<Millis>) -> Millis {
        auth_time
            .unwrap_or(now)
            .saturating_add(duration_ms(self.absolute))
    }
}

/// A live session as listed on the "my sessions" and admin pages.
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub public_id: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub auth_level: Option<String>,
    pub signed_in_at: Millis,
    pub last_seen_at: Millis,
}

/// Which of a person's sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum SessionSelection<'a> {
    One(&'a str),
    /// "Sign out everywhere else": all but the one with this public id.
    AllBut(&'a str),
    All,
}

impl SessionSelection<'_> {
    fn scope(self) -> &'static str {
        match self {
            Self::One(_) => "one",
            Self::AllBut(_) => "all_others",
            Self::All => "all",
        }
    }
}

/// The person's live sessions, most recently active first.
pub async fn sessions_of(core: &Core, owner: UserId) -> Result<Vec<SessionSummary>, StoreError> {
    core.store
        .list_sessions_of(owner, core.clock.now_ms())
        .await
}

/// Ends one of `owner`'s sessions on behalf of `actor` (the owner or an administrator).
pub async fn end_session(
    core: &Core,
    actor: UserId,
    owner: UserId,
    public_id: &str,
    context: &RequestContext,
) -> Result<bool, StoreError> {
    let which = SessionSelection::One(public_id);
    Ok(end(core, actor, owner, which, context).await? > 0)
}

/// "Sign out everywhere else".
pub async fn end_other_sessions(
    core: &Core,
    owner: UserId,
    keep: &str,
    context: &RequestContext,
) -> Result<u64, StoreError> {
    end(core, owner, owner, SessionSelection::AllBut(keep), context).await
}

/// Every session of `owner`, ended by an administrator.
pub async fn end_all_sessions(
    core: &Core,
    actor: UserId,
    owner: UserId,
    context: &RequestContext,
) -> Result<u64, StoreError> {
    end(core, actor, owner, SessionSelection::All, context).await
}

async fn end(
    core: &Core,
    actor: UserId,
    owner: UserId,
    which: SessionSelection<'_>,
    context: &RequestContext,
) -> Result<u64, StoreError> {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::SessionEnded,
        Outcome::Success,
        Actor::User(actor),
    )
    .subject(owner)
    .context(context)
    .detail("scope", which.scope());
    core.store.end_sessions(owner, which, &event).await
}

/// "Firefox on Linux" from a user-agent string; the raw string when it cannot be read.
pub fn describe_user_agent(user_agent: Option<&str>) -> String {
    let Some(raw) = user_agent.filter(|ua| !ua.is_empty()) else {
        return "Unknown browser".into();
    };
    match woothee::parser::Parser::new().parse(raw) {
        Some(parsed) if parsed.name != "UNKNOWN" => {
            let os = if parsed.os == "UNKNOWN" {
                "an unknown system"
            } else {
                parsed.os
            };
            format!("{} {} on {}", parsed.name, parsed.version, os)
        }
        _ => raw.chars().take(60).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_up_lasts_five_minutes() {
        assert!(step_up_is_fresh(Some(1_000), 1_000 + 5 * 60_000));
        assert!(!step_up_is_fresh(Some(1_000), 1_001 + 5 * 60_000));
        assert!(!step_up_is_fresh(None, 0));
    }

    #[test]
    fn user_agents_are_described_for_people() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert!(describe_user_agent(Some(chrome)).starts_with("Chrome 120"));
        assert_eq!(describe_user_agent(None), "Unknown browser");
    }
}
