use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::on_both_backends;

async fn probes_report_alive_and_ready(backend: Backend) {
    let app = spawn_app(backend).await;

    let alive = app.get("/healthz").await;
    assert_eq!(alive.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

async fn unknown_pages_get_a_friendly_not_found_page(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/definitely/not/here").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    assert_eq!(text_of(&html, "h1").as_deref(), Some("Not Found"));
    assert!(
        text_of(&html, ".muted.small")
            .unwrap()
            .starts_with("Request id:")
    );
}

on_both_backends!(
    probes_report_alive_and_ready,
    unknown_pages_get_a_friendly_not_found_page
);

#[tokio::test]
async fn a_database_down_at_start_up_leaves_the_server_serving_and_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let settings = test_settings(
        "postgres://postgres@127.0.0.1:1/unreachable",
        dir.path(),
        &listener,
    );
    let app = tokenbroker::app::Application::build_on(
        listener,
        settings,
        std::sync::Arc::new(tokenbroker::clock::SystemClock),
    )
    .await
    .expect("the server starts even when its database is down");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    assert_eq!(
        client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let ready = client
        .get(format!("{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["database"],
        "migrations pending"
    );
    let login = client.get(format!("{address}/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("cannot reach its database")
    );
    handle.stop(false).await;
}

#[tokio::test]
async fn a_database_lost_mid_flight_gives_the_unavailable_page_and_readiness_says_so() {
    let app = spawn_app(Backend::Postgres).await;
    app.create_admin().await;
    let name = app.postgres_database_name().unwrap();

    crate::helpers::TestDatabase::drop_now(&name).await;

    let page = app.get("/").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("cannot reach its database"));
    assert!(html.contains("Request id"));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json::<Value>().await.unwrap()["database"],
        "unreachable"
    );
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "the process keeps serving"
    );
}
