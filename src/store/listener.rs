//! PostgreSQL LISTEN for changes other instances make (revocations, key changes). A lost
//! connection is re-established and reported as `Resync`, because notifications sent while it was
//! down are gone: the caller must re-read what it caches.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::StoreError;
use super::revocations::{
    CHANGES_CHANNEL, CREDENTIAL_CHANGED, KEYS_CHANGED, REVOCATIONS_CHANGED, TENANT_CHANGED,
};

/// Visible in `pg_stat_activity`, so operators (and tests) can find the listening connection.
pub const LISTENER_APPLICATION_NAME: &str = "tokenbroker-listener";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Revocations,
    Keys(String),
    /// A credential's policy (by credential id).
    Credential(String),
    /// A tenant's token-service settings (by slug).
    Tenant(String),
    /// (Re)connected: anything may have been missed.
    Resync,
    /// The connection dropped (the database may be down); the next call reconnects.
    Lost,
}

pub struct ChangeListener {
    options: PgConnectOptions,
    listener: Option<PgListener>,
}

impl ChangeListener {
    pub fn new(database_url: &SecretString) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(database_url.expose_secret())
            .map_err(StoreError::from)?
            .application_name(LISTENER_APPLICATION_NAME);
        Ok(Self {
            options,
            listener: None,
        })
    }

    /// Waits for the next change. Connects (and reports `Resync`) first if not connected.
    pub async fn next(&mut self) -> Result<Change, StoreError> {
        let Some(listener) = self.listener.as_mut() else {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(self.options.clone());
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANGES_CHANNEL).await?;
            self.listener = Some(listener);
            return Ok(Change::Resync);
        };
        match listener.try_recv().await {
            Ok(Some(notification)) => Ok(parse(notification.payload())),
            Ok(None) => {
                // The connection dropped; reconnect explicitly (on the next call, which reports
                // `Resync`) so the caller can resync after.
                self.listener = None;
                Ok(Change::Lost)
            }
            Err(e) => {
                self.listener = None;
                Err(e.into())
            }
        }
    }
}

fn parse(payload: &str) -> Change {
    if payload == REVOCATIONS_CHANGED {
        Change::Revocations
    } else if let Some(tenant) = payload.strip_prefix(KEYS_CHANGED) {
        Change::Keys(tenant.to_owned())
    } else if let Some(credential) = payload.strip_prefix(CREDENTIAL_CHANGED) {
        Change::Credential(credential.to_owned())
    } else if let Some(slug) = payload.strip_prefix(TENANT_CHANGED) {
        Change::Tenant(slug.to_owned())
    } else {
        Change::Resync
    }
}
