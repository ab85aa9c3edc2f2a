//! Every SQL statement lives under this module, written once over sqlx's Any driver with a portable
//! schema (ids TEXT, times BIGINT epoch ms, flags INTEGER, JSON as TEXT) and `$N` placeholders.
//! Store methods are whole use cases: when a use case writes more than one row, the transaction is
//! inside the method.

pub mod account_recovery;
pub mod alerts;
pub mod api_keys;
pub mod approvals;
pub mod chain;
mod connection;
pub use connection::DEFAULT_TIMEOUT;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod installation_secrets;
pub mod issued_tokens;
pub mod keys;
pub mod listener;
mod migrations;
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
pub mod travellers;
pub mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::SecretString;
use sqlx::AnyPool;

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
                    // PostgreSQL: connection failures (08*), shutdown (57P*), missing database
                    // (3D000), a statement cancelled at `statement_timeout` (57014), a lock not
                    // granted in time (55P03). SQLite: busy or locked past the busy timeout (5, 6,
                    // and their extended codes).
                    code.starts_with("08")
                        || code.starts_with("57P")
                        || matches!(code.as_ref(), "3D000" | "57014" | "55P03")
                }) || is_sqlite_busy(db.as_ref()) =>
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

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes (low byte 5 or 6).
fn is_sqlite_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    use sqlx::error::DatabaseError;
    error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .and_then(DatabaseError::code)
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
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
    /// For the few connections kept outside the pool (the token recorder's, the listener's),
    /// with the session settings that bound every statement.
    url: Arc<SecretString>,
    /// The longest a request may wait on the database: pool, statement, batch.
    timeout: Duration,
}

impl Store {
    fn mark_migrated(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Migrations have been applied in this process.
    pub fn is_migrated(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
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
}
