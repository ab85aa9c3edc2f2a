//! actix-session's storage interface, backed by the application's database through
//! `domain::sessions::state`. The cookie carries a random key (64 alphanumerics, ~381 bits).

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key,
};
use actix_web::cookie::time::Duration as CookieDuration;

use crate::domain::Core;
use crate::domain::sessions::SessionPolicy;
use crate::domain::sessions::state::{self, SessionState, Write};

pub struct DatabaseSessions {
    core: Core,
    policy: SessionPolicy,
}

impl DatabaseSessions {
    pub fn new(core: Core, policy: SessionPolicy) -> Self {
        Self { core, policy }
    }
}

impl SessionStore for DatabaseSessions {
    async fn load(&self, key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        state::load(&self.core, key.as_ref())
            .await
            .map_err(|e| LoadError::Other(e.into()))
    }

    async fn save(
        &self,
        state: SessionState,
        _ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        state::save(
            &self.core,
            &self.policy,
            key.as_ref(),
            &state,
            Write::Create,
        )
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
        state::save(
            &self.core,
            &self.policy,
            key.as_ref(),
            &state,
            Write::Update,
        )
        .await
        .map_err(|e| UpdateError::Other(e.into()))?;
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        _ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        Ok(state::touch(&self.core, &self.policy, key.as_ref()).await?)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        Ok(state::forget(&self.core, key.as_ref()).await?)
    }
}
