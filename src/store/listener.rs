//! PostgreSQL LISTEN for changes other instances make (revocations, key changes). A lost
//! connection is re-established and reported as `Resync`, because notifications sent while it was
//! down are gone: the caller must re-read what it caches.
//!
//! A listening connection only reads, so a database that stopped answering (a partition, a stuck
//! primary) would leave it waiting forever. After [`QUIET`] without a notification it asks the
//! server for a reply, bounded by the database timeout; no reply counts as a lost connection.

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::revocations::{
    CHANGES_CHANNEL, CREDENTIAL_CHANGED, KEYS_CHANGED, REVOCATIONS_CHANGED, TENANT_CHANGED,
};
use super::{Store, StoreError};

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
    /// The connection dropped or stopped answering (the database may be down); the next call
    /// reconnects.
    Lost,
    /// Nothing happened; the connection answered a check.
    Quiet,
}

/// How long the listener waits for a notification before checking that the server still answers.
const QUIET: Duration = Duration::from_secs(15);

pub struct ChangeListener {
    options: PgConnectOptions,
    listener: Option<PgListener>,
    timeout: Duration,
}

impl Store {
    /// A listener for other instances' changes (PostgreSQL only), on a connection with the same
    /// bounded session settings as the pool's.
    pub fn change_listener(&self) -> Result<ChangeListener, StoreError> {
        let options = PgConnectOptions::from_str(self.session_url().expose_secret())
            .map_err(StoreError::from)?
            .application_name(LISTENER_APPLICATION_NAME);
        Ok(ChangeListener {
            options,
            listener: None,
            timeout: self.timeout(),
        })
    }
}

impl ChangeListener {
    /// Waits for the next change. Connects (and reports `Resync`) first if not connected.
    pub async fn next(&mut self) -> Result<Change, StoreError> {
        let Some(listener) = self.listener.as_mut() else {
            let connect = async {
                let pool = PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(self.timeout)
                    .connect_lazy_with(self.options.clone());
                let mut listener = PgListener::connect_with(&pool).await?;
                listener.listen(CHANGES_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let listener = tokio::time::timeout(self.timeout, connect)
                .await
                .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))??;
            self.listener = Some(listener);
            return Ok(Change::Resync);
        };
        // Waiting for a message is cancel-safe in sqlx: nothing read is lost by the timeout.
        let received = match tokio::time::timeout(QUIET, listener.try_recv()).await {
            Ok(received) => received,
            Err(_) => {
                let check = sqlx::query("SELECT 1").execute(&mut *listener);
                if !matches!(tokio::time::timeout(self.timeout, check).await, Ok(Ok(_))) {
                    self.listener = None;
                    return Ok(Change::Lost);
                }
                // Notifications that came with the reply were kept for the next call.
                return Ok(listener
                    .next_buffered()
                    .map_or(Change::Quiet, |n| parse(n.payload())));
            }
        };
        match received {
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
