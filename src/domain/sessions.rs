//! Server-side browser sessions. The cookie holds only a random key; the database holds its SHA-256
//! and everything else. These are the names of the session-state entries the store lifts into
//! indexed columns, and the expiry rules.

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::{Millis, duration_ms};
use crate::domain::ids::UserId;

/// Session-state keys. Values are JSON-encoded (actix-session's convention).
pub mod keys {
    pub const USER_ID: &str = "user_id";
    pub const AUTH_TIME: &str = "auth_time";
    pub const AUTH_LEVEL: &str = "auth_level";
    pub const IP: &str = "ip";
    pub const USER_AGENT: &str = "user_agent";
    pub const CSRF: &str = "csrf";
}

/// How strongly the session's user proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthLevel {
    Password,
}

impl AuthLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
        }
    }
}

/// The parts of a session's state that live in their own columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionMeta {
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
