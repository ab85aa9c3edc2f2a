//! Schema migrations, one folder per backend with the same versions, applied at start-up.
//!
//! A landed migration never changes: sqlx stores each applied file's SHA-384 and refuses to start
//! when a file no longer matches it. `migrations/CHECKSUMS` lists every landed file's checksum and a
//! test fails when one changes. One edit slipped through before that list existed; installations
//! migrated before it are recognised here and carried over (see [`KNOWN_EDITS`]).

use sqlx::migrate::Migrator;

use super::{Backend, Store, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A landed migration whose file was edited afterwards without changing what it does: databases
/// that applied the earlier text are recorded with that text's checksum.
struct KnownEdit {
    version: i64,
    /// SHA-384 (hex) of the text as it first landed, on both backends.
    landed_checksum: &'static str,
}

/// 0019 landed with 6ff7f9f; acfbe0f reworded a comment in it. Nothing else changed.
const KNOWN_EDITS: &[KnownEdit] = &[KnownEdit {
    version: 19,
    landed_checksum: "7b7f7e25d13c83a3b681d11c68b28c26303730e8334138d3ccf86611b534753160925cb89333e40ff1b200fe87b332e3",
}];

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}

impl Store {
    /// Applies this backend's migrations; the store is ready once they succeed.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.accept_known_edits().await?;
        // A connection of their own, without the statement timeout: a migration may rewrite a large
        // table.
        let unbounded = self.migration_pool()?;
        let migrated = migrator(self.backend).run(&unbounded).await;
        unbounded.close().await;
        migrated.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Migration(other),
        })?;
        self.mark_migrated();
        Ok(())
    }

    /// Records the current checksum for a migration applied in its earlier, equivalent text, so
    /// sqlx does not refuse to start.
    async fn accept_known_edits(&self) -> Result<(), StoreError> {
        if !self.has_migration_table().await? {
            return Ok(());
        }
        for edit in KNOWN_EDITS {
            let Some(current) = migrator(self.backend)
                .iter()
                .find(|m| m.version == edit.version)
            else {
                continue;
            };
            let landed = hex::decode(edit.landed_checksum)
                .map_err(|e| StoreError::Unexpected(format!("known edit checksum: {e}")))?;
            let updated = sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
            )
            .bind(current.checksum.to_vec())
            .bind(edit.version)
            .bind(landed)
            .execute(self.pool())
            .await?;
            if updated.rows_affected() > 0 {
                tracing::info!(
                    version = edit.version,
                    "migration applied in its earlier wording; recorded under its current checksum"
                );
            }
        }
        Ok(())
    }

    async fn has_migration_table(&self) -> Result<bool, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        };
        let (count,): (i64,) = sqlx::query_as(sql).fetch_one(self.pool()).await?;
        Ok(count > 0)
    }
}
