//! The session state behind a browser's cookie, read and written by the cookie's random key. Only
//! the key's SHA-256 is stored, so a leaked database does not leak live sessions; the expiry rules
//! are applied on every write and checked on every load.

use std::collections::HashMap;

use super::{SessionMeta, SessionPolicy};
use crate::domain::Core;
use crate::domain::secrets::SecretDigest;
use crate::store::StoreError;
use crate::store::sessions::SessionWrite;

/// actix-session's state: entry name → JSON value.
pub type SessionState = HashMap<String, String>;

/// The state of a live session; `None` when the key is unknown or the session expired.
pub async fn load(core: &Core, key: &str) -> Result<Option<SessionState>, StoreError> {
    let stored = core
        .store
        .load_session(&SecretDigest::of(key), core.clock.now_ms())
        .await?;
    stored
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("session state: {e}")))
}

/// Whether a write creates the session or changes an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create,
    /// If the session was ended meanwhile (elsewhere), it stays ended: false, nothing written.
    Update,
}

pub async fn save(
    core: &Core,
    policy: &SessionPolicy,
    key: &str,
    state: &SessionState,
    write: Write,
) -> Result<bool, StoreError> {
    let state_json =
        serde_json::to_string(state).map_err(|e| StoreError::Unexpected(e.to_string()))?;
    let meta = SessionMeta::from_state(state);
    let now = core.clock.now_ms();
    let row = SessionWrite {
        key: &SecretDigest::of(key),
        state_json: &state_json,
        meta: &meta,
        now,
        idle_expires_at: policy.idle_expiry(now),
        absolute_expires_at: policy.absolute_expiry(now, meta.auth_time),
    };
    match write {
        Write::Create => {
            core.store.insert_session(row).await?;
            Ok(true)
        }
        Write::Update => core.store.update_session(row).await,
    }
}

/// Activity: the idle limit starts again from now.
pub async fn touch(core: &Core, policy: &SessionPolicy, key: &str) -> Result<(), StoreError> {
    let now = core.clock.now_ms();
    core.store
        .touch_session(&SecretDigest::of(key), now, policy.idle_expiry(now))
        .await
}

/// Signing out: the row goes, so the cookie's key no longer opens anything.
pub async fn forget(core: &Core, key: &str) -> Result<(), StoreError> {
    core.store.delete_session(&SecretDigest::of(key)).await
}
