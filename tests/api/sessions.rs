use std::time::Duration;

use reqwest::StatusCode;
use tokenbroker::domain::ids::UserId;

use crate::helpers::*;
use crate::on_both_backends;

const MINUTE: Duration = Duration::from_secs(60);

async fn admin_id(app: &TestApp) -> UserId {
    app.core
        .store
        .find_credentials_by_email(ADMIN_EMAIL)
        .await
        .unwrap()
        .expect("admin exists")
        .user
        .id
}

async fn dashboard_with_cookie(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.browser_with_cookie(cookie).get("/").await
}

/// No session exists before sign-in, so there is none to fixate; the key then changes with every
/// privilege change.
async fn signing_in_issues_a_new_session_key(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    app.get("/login").await;
    assert_eq!(
        app.session_cookie(),
        None,
        "the login page starts no session"
    );

    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    let half = app.session_cookie().expect("signing in starts the session");
    assert_redirect_to(
        &app.answer_passkey("/login/passkey", "/login/passkey").await,
        "/",
    );

    assert_ne!(
        app.session_cookie().unwrap(),
        half,
        "the second factor renews the key"
    );
    assert_redirect_to(&dashboard_with_cookie(&app, &half).await, "/login");
}

async fn an_idle_session_ends_after_thirty_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    app.clock.advance(29 * MINUTE);
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    app.clock.advance(31 * MINUTE);

    assert_redirect_to(&app.get("/").await, "/login");
}

async fn activity_keeps_a_session_alive_until_its_absolute_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    // Active every 25 minutes for 11h40m: never idle long enough to expire.
    for _ in 0..28 {
        app.clock.advance(25 * MINUTE);
        assert_eq!(app.get("/").await.status(), StatusCode::OK);
    }
    // Crossing 12 hours since sign-in ends it regardless of activity.
    app.clock.advance(25 * MINUTE);
    assert_redirect_to(&app.get("/").await, "/login");
}

async fn a_deleted_session_row_signs_the_browser_out_on_its_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let user = admin_id(&app).await;
    assert_eq!(
        app.core
            .store
            .count_sessions_of(user, app.now_ms())
            .await
            .unwrap(),
        1
    );

    app.core.store.delete_sessions_of(user).await.unwrap();

    assert_redirect_to(&app.get("/").await, "/login");
}

async fn a_forged_session_cookie_is_treated_as_anonymous(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    let forged = dashboard_with_cookie(&app, &format!("tb_session={}", "A".repeat(108))).await;
    assert_redirect_to(&forged, "/login");

    // A real cookie with one character added fails its signature and gets nowhere either.
    let cookie = app.session_cookie().unwrap();
    let tampered = format!("{}x", cookie);
    assert_redirect_to(&dashboard_with_cookie(&app, &tampered).await, "/login");
}

async fn the_database_stores_only_a_hash_of_the_session_key(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let cookie = app.session_cookie().unwrap();
    let value = cookie.trim_start_matches("tb_session=");

    let user = admin_id(&app).await;
    assert_eq!(
        app.core
            .store
            .count_sessions_of(user, app.now_ms())
            .await
            .unwrap(),
        1
    );
    let dump = session_table_dump(&app).await;
    assert!(!dump.is_empty());
    // The cookie is "<signature><key>"; no stored column may contain any 32-character run of it.
    for window in value.as_bytes().windows(32) {
        let piece = std::str::from_utf8(window).unwrap();
        assert!(
            !dump.contains(piece),
            "session table holds part of the cookie"
        );
    }
}

pub async fn session_table_dump(app: &TestApp) -> String {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let rows = sqlx::query("SELECT key_hash, state FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    rows.iter()
        .map(|row| format!("{}|{}", row.get::<String, _>(0), row.get::<String, _>(1)))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn expired_sessions_are_swept_from_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let user = admin_id(&app).await;

    app.clock.advance(31 * MINUTE);
    app.run_job(Job::Sweep).await;

    // Counting with time zero sees every row, expired or not: the sweep really deleted them.
    let remaining = app.core.store.count_sessions_of(user, 0).await.unwrap();
    assert_eq!(remaining, 0);
}

on_both_backends!(
    signing_in_issues_a_new_session_key,
    an_idle_session_ends_after_thirty_minutes,
    activity_keeps_a_session_alive_until_its_absolute_lifetime,
    a_deleted_session_row_signs_the_browser_out_on_its_next_request,
    a_forged_session_cookie_is_treated_as_anonymous,
    the_database_stores_only_a_hash_of_the_session_key,
    expired_sessions_are_swept_from_the_database,
);
