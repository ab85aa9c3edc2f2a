//! The binary itself: `create-admin` and `serve`, run as an operator would.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

pub(crate) fn tokenbroker(database_url: &str, data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenbroker"));
    command
        .env_clear()
        .env("TB_DATABASE_URL", database_url)
        .env("TB_DATA_DIR", data_dir)
        // As in every test, nothing runs on its own timer.
        .env("TB_BACKGROUND_JOBS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if database_url.starts_with("postgres") {
        // Required with PostgreSQL; SQLite generates its own into the data directory.
        command.env("TB_KEY_ENCRYPTION_KEY", TEST_KEK);
    }
    command
}

fn create_admin(database_url: &str, email: &str, password: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokenbroker(database_url, dir.path())
        .args(["create-admin", "--email", email, "--name", "Grace Hopper"])
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn create_admin_reads_the_password_from_standard_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.database_url.clone();

    let output = tokio::task::spawn_blocking(move || {
        create_admin(&url, "grace@example.com", "a long enough passphrase")
    })
    .await
    .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("Created superadmin grace@example.com")
    );
    assert_redirect_to(
        &app.login("grace@example.com", "a long enough passphrase")
            .await,
        "/mfa/enrol",
    );
    // An administrator made at the command line sets up a passkey at first sign-in.
    assert_eq!(
        app.enrol_passkey("Grace's key").await.status(),
        StatusCode::OK
    );
    assert!(
        text_of(&app.dashboard_html().await, ".roles")
            .unwrap()
            .contains("Superadmin")
    );
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "admin_created" && e.actor_kind == "cli")
    );
}

async fn create_admin_adds_a_further_superadmin_once_one_exists_but_never_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let url = app.database_url.clone();
    let again = url.clone();

    let output = tokio::task::spawn_blocking(move || {
        create_admin(&url, "second@example.com", "a long enough passphrase")
    })
    .await
    .unwrap();

    // How a single superadmin gets a second person to approve what needs two.
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let second = app
        .core
        .store
        .find_credentials_by_email("second@example.com")
        .await
        .unwrap()
        .unwrap()
        .user;
    assert_eq!(second.roles[0].role.as_str(), "superadmin");
    assert!(
        app.events()
            .await
            .iter()
            .any(|e| e.event_type == "admin_created"
                && e.actor_kind == "cli"
                && e.details.contains(r#""first":false"#))
    );
    let taken = tokio::task::spawn_blocking(move || {
        create_admin(&again, "second@example.com", "another long passphrase")
    })
    .await
    .unwrap();
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already has an account"));
}

async fn create_admin_applies_the_password_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.database_url.clone();

    let output =
        tokio::task::spawn_blocking(move || create_admin(&url, "short@example.com", "too short"))
            .await
            .unwrap();

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("at least 12"));
}

on_both_backends!(
    create_admin_reads_the_password_from_standard_input,
    create_admin_adds_a_further_superadmin_once_one_exists_but_never_twice,
    create_admin_applies_the_password_policy,
);

#[test]
fn create_admin_takes_no_password_argument() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokenbroker("sqlite://unused.db", dir.path())
        .args([
            "create-admin",
            "--email",
            "a@example.com",
            "--password",
            "hunter2hunter2",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unexpected argument '--password'"));
}

#[test]
fn background_jobs_is_true_or_false_and_a_bad_value_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokenbroker("sqlite://x.db", dir.path())
        .env("TB_BACKGROUND_JOBS", "sometimes")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.to_lowercase().contains("background_jobs"),
        "{stderr}"
    );
}

#[test]
fn invalid_settings_are_named_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokenbroker("sqlite://x.db", dir.path())
        .env("TB_PUBLIC_URL", "http://console.example.com")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("public_url"), "{stderr}");
    assert!(stderr.contains("https"), "{stderr}");
}

/// Reads the server's stderr until the "listening" line and returns its port.
pub(crate) fn wait_for_port(stderr: &mut impl BufRead, log: &mut String) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        log.push_str(&line);
        if let Some(rest) = line.split("port=").nth(1) {
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    }
    panic!("server never said it was listening:\n{log}");
}

#[tokio::test]
async fn serve_prints_a_setup_link_once_and_never_logs_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokenbroker("", dir.path())
        .env("TB_LISTEN", "127.0.0.1:0")
        .env("TB_LOG_LEVEL", "debug")
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut log = String::new();
    let port = wait_for_port(&mut stderr, &mut log);
    assert!(
        dir.path().join("tokenbroker.db").exists(),
        "SQLite database created in the data directory"
    );

    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("setup?token=") {
        assert_ne!(
            stdout.read_line(&mut banner).unwrap(),
            0,
            "no setup link printed"
        );
    }
    let link = banner
        .split_whitespace()
        .find(|word| word.contains("setup?token="))
        .unwrap()
        .replace("http://localhost:8080", &format!("http://127.0.0.1:{port}"));
    let token = link.split("token=").nth(1).unwrap().to_owned();

    // Drive a whole session through it, including a failed sign-in.
    let browser = Browser::new(
        &format!("http://127.0.0.1:{port}"),
        &"http://localhost:8080".parse().unwrap(),
    );
    let setup_page = link.trim_start_matches(&browser.address).to_owned();
    let created = browser
        .submit(
            &setup_page,
            "/setup",
            &[
                ("token", &token),
                ("email", ADMIN_EMAIL),
                ("display_name", ADMIN_NAME),
                ("password", ADMIN_PASSWORD),
                ("password_confirm", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_redirect_to(&created, "/mfa/enrol");
    let cookie = browser.session_cookie().unwrap();
    assert_redirect_to(&browser.logout().await, "/login?signed_out=1");
    assert_eq!(
        browser
            .login(ADMIN_EMAIL, "wrong but long password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(browser.get(&setup_page).await.status(), StatusCode::GONE);

    child.kill().unwrap();
    child.wait().unwrap();
    stderr.read_to_string(&mut log).unwrap();
    assert!(log.contains("path=/setup"), "requests are logged:\n{log}");
    let session_key = cookie.trim_start_matches("tb_session=");
    // The embedded default seals signing keys with a key generated into the data directory,
    // readable by its owner only, and says so.
    let kek_file = dir.path().join("key-encryption.key");
    let kek = std::fs::read_to_string(&kek_file).expect("key-encryption key generated");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kek_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only");
    }
    assert!(log.contains("generated a key-encryption key"), "{log}");
    for secret in [
        ADMIN_PASSWORD,
        "wrong but long password",
        token.as_str(),
        session_key,
        kek.trim(),
    ] {
        assert!(!log.contains(secret), "the log contains a secret");
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(!rest.contains("setup?token="), "the link is printed once");
}
