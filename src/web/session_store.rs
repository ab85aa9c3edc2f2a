//! actix-session's storage interface, backed by the application's database. The cookie carries a
//! random key (64 alphanumerics, ~381 bits); the database keeps only its SHA-256, so a leaked
//! database does not leak live sessions.

use std::collections::HashMap;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration as CookieDuration;

use crate::clock::SharedClock;
use crate::domain::secrets::SecretDigest;
use crate::domain::sessions::{SessionMeta, SessionPolicy};
use crate::store::sessions::SessionWrite;
use crate::store::{Store, StoreError};

type SessionState = HashMap<String, String>;

pub struct DbSessionStore {
    store: Store,
    clock: SharedClock,
    policy: SessionPolicy,
}

impl DbSessionStore {
    pub fn new(store: Store, clock: SharedClock, policy: SessionPolicy) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    async fn write(
        &self,
        key: &SessionKey,
        state: &SessionState,
        insert: bool,
    ) -> Result<bool, StoreError> {
        let state_json =
            serde_json::to_string(state).map_err(|e| StoreError::Unexpected(e.to_string()))?;
        let meta = SessionMeta::from_state(state);
        let now = self.clock.now_ms();
        let write = SessionWrite {
            key: &SecretDigest::of(key.as_ref()),
            state_json: &state_json,
            meta: &meta,
            now,
            idle_expires_at: self.policy.idle_expiry(now),
            absolute_expires_at: self.policy.absolute_expiry(now, meta.auth_time),
        };
        if insert {
            self.store.insert_session(write).await?;
            Ok(true)
        } else {
            self.store.update_session(write).await
        }
    }
}

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let state = self
            .store
            .load_session(&SecretDigest::of(key.as_ref()), self.clock.now_ms())
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        state
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        state: SessionState,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        self.write(&key, &state, true)
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: SessionState,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        // If the row was deleted meanwhile (session ended elsewhere), it stays deleted: the next
        // request with this cookie finds nothing and is anonymous.
        self.write(&key, &state, false)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        _ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        let now = self.clock.now_ms();
        self.store
            .touch_session(
                &SecretDigest::of(key.as_ref()),
                now,
                self.policy.idle_expiry(now),
            )
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        self.store
            .delete_session(&SecretDigest::of(key.as_ref()))
            .await?;
        Ok(())
    }
}
