use std::collections::BTreeSet;
use std::path::Path;

use secrecy::SecretString;
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tokenbroker::store::Store;

use crate::helpers::{Backend, TestDatabase};

fn versions(folder: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| name.split('_').next().unwrap().to_owned())
        .collect()
}

#[test]
fn both_backends_carry_the_same_migration_versions() {
    let sqlite = versions("sqlite");
    let postgres = versions("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "every migration needs a twin in the other backend's folder"
    );
}

fn folder(backend: Backend) -> std::path::PathBuf {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(name)
}

/// A fresh database of `backend` with its migrations applied up to `version` and no further: the
/// state a deployment of that release left, for testing the migrations after it.
pub async fn migrated_to(backend: Backend, version: i64) -> (TestDatabase, String) {
    let (database, url, _) = TestDatabase::create(backend).await;
    let migrator = Migrator::new(folder(backend)).await.unwrap();
    assert!(migrator.version_exists(version), "no migration {version}");
    match backend {
        // sqlx opens SQLite with foreign keys on, like the store does.
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&url).await.unwrap();
            migrator.run_to(version, &mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            migrator.run_to(version, &mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
    (database, url)
}

/// id, user_id, role, tenant_id, granted_by, created_at
type Assignment = (String, String, String, Option<String>, Option<String>, i64);

/// 0011 rebuilds SQLite's role_assignments to add the tenant foreign key: existing assignments
/// survive, assignments naming a tenant that no longer exists are dropped, and the key holds after.
#[tokio::test]
async fn sqlite_role_assignments_keep_their_rows_and_lose_orphans_when_the_tenant_key_arrives() {
    let (_database, url) = migrated_to(Backend::Sqlite, 10).await;
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    for statement in [
        "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at) \
         VALUES ('u1', 'ada@example.com', 'ada@example.com', 'Ada', 'active', 1, 1)",
        "INSERT INTO tenants (id, slug, name, brand_colour, status, created_at, updated_at) \
         VALUES ('t1', 'acme', 'Acme', '#123456', 'active', 1, 1)",
        "INSERT INTO role_assignments (id, user_id, role, tenant_id, granted_by, created_at) VALUES \
         ('global', 'u1', 'superadmin', NULL, NULL, 1), \
         ('in-acme', 'u1', 'tenant_admin', 't1', 'u1', 2), \
         ('orphan', 'u1', 'tenant_admin', 'gone', 'u1', 3)",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = Store::connect_lazy(&SecretString::from(url.clone())).unwrap();
    store.migrate().await.unwrap();
    store.close().await;

    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    let rows: Vec<Assignment> = sqlx::query_as(
        "SELECT id, user_id, role, tenant_id, granted_by, created_at FROM role_assignments ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (
                "global".into(),
                "u1".into(),
                "superadmin".into(),
                None,
                None,
                1
            ),
            (
                "in-acme".into(),
                "u1".into(),
                "tenant_admin".into(),
                Some("t1".into()),
                Some("u1".into()),
                2
            ),
        ]
    );
    let violations: Vec<(String,)> =
        sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(violations, []);
    let orphan = sqlx::query(
        "INSERT INTO role_assignments (id, user_id, role, tenant_id, created_at) \
         VALUES ('orphan-2', 'u1', 'tenant_admin', 'gone', 4)",
    )
    .execute(&mut conn)
    .await;
    let refused = orphan.unwrap_err().to_string();
    assert!(
        refused.contains("FOREIGN KEY"),
        "the key refuses an unknown tenant: {refused}"
    );
    let duplicate = sqlx::query(
        "INSERT INTO role_assignments (id, user_id, role, tenant_id, created_at) \
         VALUES ('again', 'u1', 'superadmin', NULL, 5)",
    )
    .execute(&mut conn)
    .await;
    let refused = duplicate.unwrap_err().to_string();
    assert!(
        refused.contains("UNIQUE"),
        "the unique index was recreated: {refused}"
    );
}

/// `migrations/CHECKSUMS`: (checksum, path under `migrations/`) of every landed migration.
fn landed_checksums() -> Vec<(String, String)> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/CHECKSUMS");
    std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (sum, path) = line.split_once("  ").expect("`<sha384>  <path>`");
            (sum.to_owned(), path.to_owned())
        })
        .collect()
}

fn sha384_of(path: &str) -> String {
    use sha2::Digest;
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(path);
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    hex::encode(sha2::Sha384::digest(bytes))
}

#[test]
fn landed_migrations_never_change() {
    let landed = landed_checksums();
    assert!(landed.len() >= 42, "both folders are listed");
    for (sum, path) in &landed {
        assert_eq!(
            &sha384_of(path),
            sum,
            "migrations/{path} changed after it landed: installations that applied it would refuse \
             to start (sqlx checks its checksum). Restore it and put the change in a new migration."
        );
    }
    for backend in ["sqlite", "postgres"] {
        for version in versions(backend) {
            let file = std::fs::read_dir(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("migrations")
                    .join(backend),
            )
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .find(|name| name.starts_with(&format!("{version}_")))
            .unwrap();
            let path = format!("{backend}/{file}");
            assert!(
                landed.iter().any(|(_, listed)| *listed == path),
                "migrations/{path} is not in migrations/CHECKSUMS; once it lands, add:\n{}  {path}",
                sha384_of(&path)
            );
        }
    }
}

/// 0019 as it first landed, before a comment in it was reworded.
const MIGRATION_19_AS_LANDED: &str = "7b7f7e25d13c83a3b681d11c68b28c26303730e8334138d3ccf86611b534753160925cb89333e40ff1b200fe87b332e3";

async fn an_installation_that_applied_0019_in_its_first_wording_still_starts(backend: Backend) {
    let (_database, url) = migrated_to(backend, 19).await;
    let first_wording = hex::decode(MIGRATION_19_AS_LANDED).unwrap();
    let reword = "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = 19";
    let updated = match backend {
        Backend::Sqlite => {
            let mut conn = SqliteConnection::connect(&url).await.unwrap();
            let reworded = sqlx::query(reword).bind(first_wording);
            reworded.execute(&mut conn).await.unwrap().rows_affected()
        }
        Backend::Postgres => {
            let mut conn = PgConnection::connect(&url).await.unwrap();
            let reworded = sqlx::query(reword).bind(first_wording);
            reworded.execute(&mut conn).await.unwrap().rows_affected()
        }
    };
    assert_eq!(updated, 1);

    let store = Store::connect_lazy(&SecretString::from(url.clone())).unwrap();
    store
        .migrate()
        .await
        .expect("starts, and applies what came after 0019");

    assert!(store.is_migrated());
    store.close().await;
}

crate::on_both_backends!(an_installation_that_applied_0019_in_its_first_wording_still_starts);

/// (kind, id, last country, last event, elsewhere country, elsewhere event)
type Seen = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// id, occurred_at, actor_kind, actor_id, subject, event_type, outcome, country
type Logged = (
    &'static str,
    i64,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<&'static str>,
);

fn sign_in(
    id: &'static str,
    at: i64,
    user: &'static str,
    outcome: &'static str,
    country: Option<&'static str>,
) -> Logged {
    let actor = (outcome == "success").then_some(user);
    (id, at, "user", actor, Some(user), "login", outcome, country)
}

fn issued(
    id: &'static str,
    at: i64,
    credential: &'static str,
    country: Option<&'static str>,
) -> Logged {
    (
        id,
        at,
        "client",
        Some(credential),
        None,
        "token_issued",
        "success",
        country,
    )
}

/// 0024 starts the impossible-travel detector's whereabouts from the located uses of the last two
/// hours up to where the detector had read: a trip under way during the upgrade is still seen.
/// Failures, unlocated uses, uses older than two hours and events the detector has not read yet
/// are not whereabouts.
async fn the_upgrade_to_whereabouts_starts_from_the_last_two_hours_the_detector_read(
    backend: Backend,
) {
    let (_database, url) = migrated_to(backend, 23).await;
    let read_up_to: i64 = 10 * 3_600_000;
    let minute = 60_000;
    // id, occurred_at, actor_kind, actor_id, subject, event_type, outcome, country
    let at = |minutes: i64| read_up_to + minutes * minute;
    let events = [
        sign_in("e1", at(-50), "u1", "success", Some("DE")),
        sign_in("e2", at(-30), "u1", "success", Some("JP")),
        sign_in("e3", at(-20), "u1", "success", Some("JP")),
        issued("e4", at(-10), "cred1", Some("FR")),
        sign_in("e5", at(-5), "u1", "failure", Some("BR")),
        issued("e6", at(-4), "cred1", None),
        sign_in("e7", at(-180), "u2", "success", Some("DE")),
        sign_in("e8", at(1), "u1", "success", Some("US")),
    ];
    let insert = "INSERT INTO auth_events (id, occurred_at, actor_kind, actor_id, subject, event_type, outcome, country) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let cursor = "UPDATE detector_cursor SET last_at = $1, last_id = 'zzzz' WHERE id = 1";
    let seen = "SELECT traveller_kind, traveller_id, last_country, last_event, elsewhere_country, \
                elsewhere_event FROM traveller_whereabouts ORDER BY traveller_kind, traveller_id";
    macro_rules! upgrade_and_read {
        ($connection:ty) => {{
            let mut conn = <$connection>::connect(&url).await.unwrap();
            for (id, at, actor_kind, actor_id, subject, event_type, outcome, country) in events {
                sqlx::query(insert)
                    .bind(id)
                    .bind(at)
                    .bind(actor_kind)
                    .bind(actor_id)
                    .bind(subject)
                    .bind(event_type)
                    .bind(outcome)
                    .bind(country)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            sqlx::query(cursor)
                .bind(read_up_to)
                .execute(&mut conn)
                .await
                .unwrap();
            let store = Store::connect_lazy(&SecretString::from(url.clone())).unwrap();
            store.migrate().await.unwrap();
            store.close().await;
            let rows: Vec<Seen> = sqlx::query_as(seen).fetch_all(&mut conn).await.unwrap();
            conn.close().await.unwrap();
            rows
        }};
    }
    let rows = match backend {
        Backend::Sqlite => upgrade_and_read!(SqliteConnection),
        Backend::Postgres => upgrade_and_read!(PgConnection),
    };
    let s = |text: &str| text.to_owned();
    assert_eq!(
        rows,
        [
            (
                s("account"),
                s("u1"),
                s("JP"),
                s("e3"),
                Some(s("DE")),
                Some(s("e1"))
            ),
            (s("credential"), s("cred1"), s("FR"), s("e4"), None, None),
        ]
    );
}

crate::on_both_backends!(
    the_upgrade_to_whereabouts_starts_from_the_last_two_hours_the_detector_read
);
