//! Whether the database answers, known without asking it on every request. Asking would cost each
//! request the pool's whole acquire timeout while the database is down (sqlx keeps retrying a
//! refused connection until then), so the console would hang for seconds and then fail. Instead
//! one watcher (`domain::operations::watch_database`) probes with a fresh connection when something
//! looks wrong, marks the database down while probes fail, and up as soon as one succeeds.

use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::Connection;
use tokio::sync::{Notify, watch};

use super::{Store, StoreError};

/// Longer than a healthy connection takes to open, short enough that a request waiting on the
/// verdict still answers within a second.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct DatabaseHealth {
    down: watch::Sender<bool>,
    /// Set when something suggests the database may be gone; the watcher then probes.
    suspected: Notify,
}

impl Default for DatabaseHealth {
    fn default() -> Self {
        Self {
            down: watch::Sender::new(false),
            suspected: Notify::new(),
        }
    }
}

impl DatabaseHealth {
    /// The last probe failed and none has succeeded since.
    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// Asks the watcher to probe (a request failed to reach the database, waited unusually long, or
    /// the notification listener lost its connection). Cheap; repeated calls collapse into one.
    pub fn suspect(&self) {
        self.suspected.notify_one();
    }

    /// Completes when the watcher is asked to probe.
    pub async fn suspected(&self) {
        self.suspected.notified().await;
    }

    /// Completes once the database is marked down (at once if it is).
    pub async fn went_down(&self) {
        let mut down = self.down.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = down.wait_for(|down| *down).await;
    }

    /// Records a probe's verdict; true when it changes what was known.
    pub fn record(&self, down: bool) -> bool {
        self.down.send_if_modified(|current| {
            let changed = *current != down;
            *current = down;
            changed
        })
    }
}

impl Store {
    pub fn health(&self) -> &DatabaseHealth {
        &self.health
    }

    /// Opens one fresh connection outside the pool and runs `SELECT 1`: a single attempt that
    /// fails at once when the server refuses it, where the pool would retry until its timeout.
    pub async fn probe(&self) -> Result<(), StoreError> {
        let options = self.pool.connect_options();
        let attempt = async {
            let mut connection = options.connect().await?;
            sqlx::query("SELECT 1").execute(&mut connection).await?;
            connection.close().await
        };
        match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
            Ok(result) => result.map_err(StoreError::from),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }
}
