//! Every SQL statement lives under this module, written once over sqlx's Any driver with a portable
//! schema (ids TEXT, times BIGINT epoch ms, flags INTEGER, JSON as TEXT) and `$N` placeholders.
//! Store methods are whole use cases: when a use case writes more than one row, the transaction is
//! inside the method.

pub mod account_recovery;
pub mod alerts;
pub mod api_keys;
pub mod approvals;
pub mod chain;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod installation_secrets;
pub mod issued_tokens;
pub mod keys;
pub mod listener;
pub mod outbox;
pub mod partners;
pub mod passkeys;
pub mod recovery;
pub mod revocations;
pub mod sessions;
pub mod setup;
pub mod staff;
pub mod tenants;
mod text_enums;
pub mod throttle;
pub mod token_batches;
pub mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now (down, overloaded, pool exhausted).
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("a database statement failed")]
    Database(#[source] sqlx::Error),
    #[error("schema migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// Text the database cannot hold (PostgreSQL refuses NUL characters): the caller's input, so a
    /// 400, and nothing was written (the statement and its transaction failed).
    #[error("the text contains characters that cannot be stored")]
    UnstorableText(#[source] sqlx::Error),
    #[error("{0}")]
    Unexpected(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error),
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|code| {
                    // PostgreSQL: connection failures (08*), shutdown (57P*), missing database (3D000).
                    code.starts_with("08") || code.starts_with("57P") || code == "3D000"
                }) =>
            {
                Self::Unavailable(error)
            }
            // 22021 character_not_in_repertoire, 22P05 untranslatable_character: a NUL byte.
            sqlx::Error::Database(ref db)
                if db
                    .code()
                    .is_some_and(|code| code == "22021" || code == "22P05") =>
            {
                Self::UnstorableText(error)
            }
            other => Self::Database(other),
        }
    }
}

pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// `($1, $2, …), (…)`: `rows` tuples of `columns` numbered placeholders, for multi-row inserts.
pub(crate) fn placeholders(rows: usize, columns: usize) -> String {
    placeholders_from(1, rows, columns)
}

/// [`placeholders`] numbered from `$first`, for a statement with other parameters before them.
pub(crate) fn placeholders_from(first: usize, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(first + row * columns + column).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Escapes `%`, `_` and `\` so user text matches literally in `LIKE … ESCAPE '\'`.
pub(crate) fn escape_like(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The storage seam: one pool, one backend switch for the few statements that must differ.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    ready: Arc<AtomicBool>,
    health: Arc<health::DatabaseHealth>,
    /// For the few connections kept outside the pool (the token recorder's).
    url: Arc<SecretString>,
}

impl Store {
    /// Prepares a pool without touching the database, so the server can start (and report
    /// "not ready") while the database is down.
    pub fn connect_lazy(url: &SecretString) -> Result<Self, StoreError> {
        install_default_drivers();
        let url = url.expose_secret();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(3))
            .idle_timeout(Duration::from_secs(600))
            .after_connect(move |conn, _meta| Box::pin(prepare_connection(conn, backend)));
        let pool = options.connect_lazy(url).map_err(StoreError::from)?;
        Ok(Self {
            pool,
            backend,
            ready: Arc::new(AtomicBool::new(false)),
            health: Arc::default(),
            url: Arc::new(SecretString::from(url.to_owned())),
        })
    }

    /// Applies this backend's migrations; the store is ready once they succeed.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Migration(other),
        })?;
        self.ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Migrations have been applied in this process.
    pub fn is_migrated(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// The database answers right now.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection of its own, outside the pool, opened on the caller's runtime; prepared like
    /// the pool's.
    pub(crate) async fn dedicated_connection(&self) -> Result<AnyConnection, StoreError> {
        let connect = AnyConnection::connect(self.url.expose_secret());
        let mut connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| StoreError::Unexpected("the database did not answer in time".into()))??;
        prepare_connection(&mut connection, self.backend).await?;
        Ok(connection)
    }
}

/// As long as the pool waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

async fn prepare_connection(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        // WAL lets readers proceed during a write; the busy timeout queues writers instead of
        // failing them. Secure delete zeroes what a delete or an update frees, so a scrubbed mail
        // body (with its one-time link) is not left readable in the file's free space.
        conn.execute(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
             PRAGMA secure_delete = ON;",
        )
        .await?;
    }
    Ok(())
}
