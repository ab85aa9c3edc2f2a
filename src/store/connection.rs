//! Opening the database, with every wait bounded. A database that refuses connections fails fast;
//! one that accepts and then stops answering (a partition, a lock, a stuck primary) must not hold a
//! request, a batch or the listener forever:
//!
//! - the pool waits at most `timeout` for a connection;
//! - PostgreSQL cancels any statement running longer than `timeout` (`statement_timeout`), ends a
//!   session idle inside a transaction (its locks would block every instance), and probes its
//!   clients with TCP keepalives so a vanished instance's connections (and locks) are dropped;
//! - SQLite waits at most `timeout` for a lock (`busy_timeout`);
//! - what the server cannot bound (a reply lost in the network) the callers bound themselves: the
//!   request gate (`web::middleware::database_gate`), the token writer's batch deadline, the
//!   listener's liveness check, the health probe.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyConnection, Connection, Executor};

use super::{Backend, Store, StoreError};

/// What `connect_lazy` bounds waits by when no setting says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// TCP keepalives the PostgreSQL server uses on our connections: an instance that vanished is
/// noticed within idle + interval × count (about 25 s), and its transactions rolled back.
const KEEPALIVE_IDLE_SECS: u32 = 10;
const KEEPALIVE_INTERVAL_SECS: u32 = 5;
const KEEPALIVE_COUNT: u32 = 3;

impl Store {
    /// Prepares a pool without touching the database, so the server can start (and report
    /// "not ready") while the database is down. Waits are bounded by [`DEFAULT_TIMEOUT`].
    pub fn connect_lazy(url: &SecretString) -> Result<Self, StoreError> {
        Self::connect_lazy_with_timeout(url, DEFAULT_TIMEOUT)
    }

    /// [`Store::connect_lazy`], bounding every wait on the database by `timeout`.
    pub fn connect_lazy_with_timeout(
        url: &SecretString,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        install_default_drivers();
        let url = url.expose_secret();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => {
                make_sqlite_files_private(url)?;
                url.to_owned()
            }
            Backend::Postgres => with_bounded_sessions(url, timeout)?,
        };
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(timeout)
            .idle_timeout(Duration::from_secs(600))
            .after_connect(move |conn, _meta| Box::pin(prepare_connection(conn, backend, timeout)));
        let pool = options.connect_lazy(&url).map_err(StoreError::from)?;
        Ok(Self {
            pool,
            backend,
            ready: Default::default(),
            health: Default::default(),
            url: std::sync::Arc::new(SecretString::from(url)),
            timeout,
        })
    }

    /// The longest a request may wait on the database.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The database answers right now (within the timeout).
    pub async fn ping(&self) -> bool {
        let ping = sqlx::query("SELECT 1").execute(self.pool());
        matches!(tokio::time::timeout(self.timeout, ping).await, Ok(Ok(_)))
    }

    /// A connection of its own, outside the pool, opened on the caller's runtime; prepared like
    /// the pool's.
    pub(crate) async fn dedicated_connection(&self) -> Result<AnyConnection, StoreError> {
        let open = async {
            let mut connection = AnyConnection::connect(self.url.expose_secret()).await?;
            prepare_connection(&mut connection, self.backend, self.timeout).await?;
            Ok::<_, sqlx::Error>(connection)
        };
        match tokio::time::timeout(self.timeout, open).await {
            Ok(opened) => Ok(opened?),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    /// One connection for migrations: bounded in how long it takes to open, but not per statement
    /// (a migration may rewrite a large table).
    pub(super) fn migration_pool(&self) -> Result<sqlx::AnyPool, StoreError> {
        let backend = self.backend;
        let timeout = self.timeout;
        AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    prepare_connection(conn, backend, timeout).await?;
                    if backend == Backend::Postgres {
                        conn.execute("SET statement_timeout = 0").await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(self.url.expose_secret())
            .map_err(StoreError::from)
    }

    /// The URL with the bounded session settings, for connections kept outside the pool.
    pub(crate) fn session_url(&self) -> &SecretString {
        &self.url
    }
}

/// The PostgreSQL URL with session settings (sent at connection start-up, so every connection made
/// from it has them, the listener's and the writer's included). Options already in the URL stay.
fn with_bounded_sessions(url: &str, timeout: Duration) -> Result<String, StoreError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|_| StoreError::Unexpected("the database URL is not a URL".into()))?;
    let timeout_ms = timeout.as_millis();
    // A transaction left idle this long belongs to a request that was abandoned mid-way.
    let idle_in_transaction_ms = (timeout * 4).max(Duration::from_secs(10)).as_millis();
    parsed
        .query_pairs_mut()
        .append_pair("options[statement_timeout]", &timeout_ms.to_string())
        .append_pair(
            "options[idle_in_transaction_session_timeout]",
            &idle_in_transaction_ms.to_string(),
        )
        .append_pair(
            "options[tcp_keepalives_idle]",
            &KEEPALIVE_IDLE_SECS.to_string(),
        )
        .append_pair(
            "options[tcp_keepalives_interval]",
            &KEEPALIVE_INTERVAL_SECS.to_string(),
        )
        .append_pair(
            "options[tcp_keepalives_count]",
            &KEEPALIVE_COUNT.to_string(),
        );
    Ok(parsed.into())
}

pub(super) async fn prepare_connection(
    conn: &mut AnyConnection,
    backend: Backend,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        // WAL lets readers proceed during a write; the busy timeout queues writers instead of
        // failing them, for at most the request's bound. `synchronous = FULL` syncs the log at every
        // commit, so what was acknowledged (a token handed out, a spent assertion id, an event)
        // survives a power loss; group commit keeps that to one sync per batch of tokens. Secure
        // delete zeroes what a delete or an update frees, so a scrubbed mail body (with its one-time
        // link) is not left readable in the file's free space.
        let pragmas = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; \
             PRAGMA secure_delete = ON;",
            timeout.as_millis()
        );
        conn.execute(sqlx::AssertSqlSafe(pragmas)).await?;
    }
    Ok(())
}

/// The database file and its write-ahead log hold every secret's digest and every event: owner
/// only. SQLite creates `-wal` and `-shm` with the database file's mode, so creating that file
/// private is enough; files an earlier version created readable are tightened.
fn make_sqlite_files_private(url: &str) -> Result<(), StoreError> {
    use std::str::FromStr;
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(StoreError::from)?;
    let database = options.get_filename();
    let private = |result: std::io::Result<()>, path: &std::path::Path| {
        result.map_err(|e| StoreError::Unexpected(format!("{}: {e}", path.display())))
    };
    if url.contains("mode=rwc") {
        private(crate::private_files::private_file(database), database)?;
    } else {
        private(
            crate::private_files::tighten_if_present(database, 0o600),
            database,
        )?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        private(
            crate::private_files::tighten_if_present(&path, 0o600),
            &path,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_sessions_carry_the_bounds_and_keep_the_urls_own_options() {
        let url = with_bounded_sessions(
            "postgres://app:secret@db:5432/tb?sslmode=disable&options=-c%20search_path%3Dtb",
            Duration::from_millis(2500),
        )
        .unwrap();
        let options =
            <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&url).unwrap();
        let options = options.get_options().unwrap();
        assert!(options.contains("search_path=tb"), "{options}");
        assert!(options.contains("statement_timeout=2500"), "{options}");
        assert!(
            options.contains("idle_in_transaction_session_timeout=10000"),
            "{options}"
        );
        assert!(options.contains("tcp_keepalives_idle=10"), "{options}");
    }
}
