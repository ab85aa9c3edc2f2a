//! The embedded database on disk: its files and folders are the service user's alone.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secrecy::SecretString;

use crate::helpers::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_sqlite_database_and_its_folders_are_readable_by_the_service_user_only() {
    let root = tempfile::tempdir().unwrap();
    // What an earlier version left: a data folder and a database file anyone could read.
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = data.join("tokenbroker.db");
    let url = format!("sqlite://{}?mode=rwc", database.display());
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.data_dir = data.clone();
        s.database_url = SecretString::from(url.clone());
    })
    .await;
    app.create_admin().await;
    app.mailer.deliver_due(&app.core).await.unwrap();

    assert_eq!(mode(&data), 0o700, "the data folder");
    assert_eq!(mode(&data.join("mail")), 0o700, "the mail folder");
    for file in ["tokenbroker.db", "tokenbroker.db-wal", "tokenbroker.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

#[tokio::test]
async fn a_database_file_left_readable_by_an_earlier_version_is_tightened_at_start_up() {
    let root = tempfile::tempdir().unwrap();
    let database = root.path().join("old.db");
    std::fs::write(&database, b"").unwrap();
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("sqlite://{}?mode=rwc", database.display());

    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.database_url = SecretString::from(url.clone());
    })
    .await;
    app.create_admin().await;

    assert_eq!(mode(&database), 0o600);
    assert_eq!(mode(&root.path().join("old.db-wal")), 0o600);
}
