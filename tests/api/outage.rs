//! The console through a database outage (PostgreSQL): the server reaches its database through a
//! TCP proxy the test controls, and the outage is the proxy closing every connection and its port,
//! as a stopped server does. Nothing else shares the proxy, so nothing else sees the outage.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::db_proxy::DatabaseProxy;
use crate::helpers::*;
use crate::keys::within;

/// Generous: the watcher probes every 250 ms; a loaded test machine may be slow to schedule it.
const SETTLES: Duration = Duration::from_secs(10);

async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let response = app.get("/readyz").await;
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn console_pages_answer_503_while_the_database_is_unreachable_and_recover_by_themselves() {
    let proxy = DatabaseProxy::to_postgres().await;
    let app = spawn_app_with(Backend::Postgres, |s| proxy.route(s)).await;
    app.create_admin().await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);

    proxy.cut().await;

    // The first request meets the outage itself (a dead pooled connection, a refused new one).
    let page = app.get("/").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("cannot reach its database")
    );
    assert!(
        within(SETTLES, async || app.core.store.health().is_down())
            .await
            .is_some(),
        "the failed probes mark the database down"
    );
    // From now on pages are answered without waiting on the database: same page, same status.
    for path in ["/", "/login", "/account/security"] {
        let page = app.get(path).await;
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(page.headers()["retry-after"], "2");
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("cannot reach its database")
        );
    }
    assert_eq!(
        readiness(&app).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unavailable", "database": "unreachable" })
        )
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    proxy.restore().await;

    assert!(
        within(SETTLES, async || app.get("/").await.status()
            == StatusCode::OK)
        .await
        .is_some(),
        "the console serves again once the database answers"
    );
    let dashboard = app.get("/").await.text().await.unwrap();
    assert!(
        dashboard.contains(ADMIN_NAME),
        "still signed in: the session outlived the outage"
    );
    assert_eq!(readiness(&app).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_sign_in_during_an_outage_is_refused_with_503_and_works_afterwards() {
    let proxy = DatabaseProxy::to_postgres().await;
    let app = spawn_app_with(Backend::Postgres, |s| proxy.route(s)).await;
    app.with_admin_signed_out().await;
    let form = app.get("/login").await.text().await.unwrap();
    let csrf = csrf_token(&form);

    proxy.cut().await;
    let refused = app
        .post_form(
            "/login",
            &[
                ("csrf_token", csrf.as_str()),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.restore().await;
    assert!(
        within(SETTLES, async || app.get("/login").await.status()
            == StatusCode::OK)
        .await
        .is_some()
    );
    let form = app.get("/login").await.text().await.unwrap();
    let signed_in = app
        .post_form(
            "/login",
            &[
                ("csrf_token", csrf_token(&form).as_str()),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_redirect_to(&signed_in, "/login/passkey");
}

#[tokio::test]
async fn an_instance_started_while_its_database_is_down_serves_503_then_opens_by_itself() {
    let proxy = DatabaseProxy::to_postgres().await;
    proxy.cut().await;

    let app = spawn_app_with(Backend::Postgres, |s| proxy.route(s)).await;

    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(
        readiness(&app).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "status": "unavailable", "database": "migrations pending" })
        )
    );
    let login = app.get("/login").await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("cannot reach its database")
    );

    proxy.restore().await;

    assert!(
        within(SETTLES, async || readiness(&app).await.0 == StatusCode::OK)
            .await
            .is_some(),
        "migrations run once the database answers"
    );
    assert_eq!(app.get("/login").await.status(), StatusCode::OK);
}
