//! actix-session's storage interface, backed by the application's database through
//! `domain::sessions::state`. The cookie carries a random key (64 alphanumerics, ~381 bits).
//!
//! actix-session turns every store error into a bare 500 that keeps no typed cause, so a database
//! outage would look like a bug. The backend therefore notes an unreachable database in a
//! request-scoped flag ([`noting_unavailable`]) that the console's database gate reads to answer
//! 503 instead, and asks the database watcher to probe.

use std::cell::Cell;
use std::future::Future;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration as CookieDuration;

use crate::domain::Core;
use crate::domain::sessions::SessionPolicy;
use crate::domain::sessions::state::{self, SessionState, Write};
use crate::domain::{StoreError, operations};

tokio::task_local! {
    /// Whether the session store found the database unreachable during this request.
    static UNAVAILABLE: Cell<bool>;
}

/// Runs `request` (the rest of the middleware chain) and tells whether the session store found the
/// database unreachable meanwhile.
pub async fn noting_unavailable<F: Future>(request: F) -> (F::Output, bool) {
    UNAVAILABLE
        .scope(Cell::new(false), async {
            let output = request.await;
            (output, UNAVAILABLE.with(Cell::get))
        })
        .await
}

pub struct DatabaseSessions {
    core: Core,
    policy: SessionPolicy,
}

impl DatabaseSessions {
    pub fn new(core: Core, policy: SessionPolicy) -> Self {
        Self { core, policy }
    }

    fn noted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::Unavailable(_)) = &result {
            operations::suspect_database(&self.core);
            // Outside `noting_unavailable` (no such request) there is nobody to tell.
            let _ = UNAVAILABLE.try_with(|flag| flag.set(true));
        }
        result
    }
}

impl SessionStore for DatabaseSessions {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        self.noted(state::load(&self.core, key.as_ref()).await)
            .map_err(|e| LoadError::Other(e.into()))
    }

    async fn save(
        &self,
        state: SessionState,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        let saved = state::save(
            &self.core,
            &self.policy,
            key.as_ref(),
            &state,
            Write::Create,
        )
        .await;
        self.noted(saved).map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: SessionState,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let saved = state::save(
            &self.core,
            &self.policy,
            key.as_ref(),
            &state,
            Write::Update,
        )
        .await;
        self.noted(saved)
            .map_err(|e| UpdateError::Other(e.into()))?;
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        _ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        Ok(self.noted(state::touch(&self.core, &self.policy, key.as_ref()).await)?)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        Ok(self.noted(state::forget(&self.core, key.as_ref()).await)?)
    }
}
