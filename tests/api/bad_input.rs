use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

async fn csrf_token_of_login_page(app: &TestApp) -> String {
    csrf_token(&app.get("/login").await.text().await.unwrap())
}

async fn a_megabyte_form_is_refused_as_too_large_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    let token = csrf_token_of_login_page(&app).await;
    let events_before = app.events().await.len();
    let huge = "x".repeat(1024 * 1024);

    let response = app
        .post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("email", ADMIN_EMAIL),
                ("password", &huge),
            ],
        )
        .await;

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.text().await.unwrap().contains("too large"));
    assert_eq!(app.events().await.len(), events_before);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

async fn an_oversized_body_on_the_token_service_is_answered_in_its_own_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge = format!(
        "grant_type=client_credentials&scope={}",
        "x".repeat(1024 * 1024)
    );
    for endpoint in ["token", "introspect", "revoke"] {
        // A connection of its own each time: the server answers before reading the whole body and
        // then closes the connection, which a pooled client would try to reuse.
        let response = reqwest::Client::new()
            .post(app.url(&format!("/t/acme/oauth/{endpoint}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{endpoint}"
        );
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{endpoint}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("larger than")
        );
    }
}

async fn a_form_that_is_not_utf8_is_refused_clearly(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = csrf_token_of_login_page(&app).await;
    let body = format!("csrf_token={token}&email=%FF%FE%40example.com&password=x");

    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("not valid UTF-8"));
}

async fn a_malformed_form_body_gets_a_clear_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = csrf_token_of_login_page(&app).await;

    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}&email=a&email=b&&=&password"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn sql_meta_characters_are_just_text(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;

    let response = app
        .login(
            "x' OR '1'='1'; DROP TABLE users; --@example.com",
            "' OR 1=1 --",
        )
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

async fn an_empty_post_body_is_refused_without_side_effects(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/login").await;

    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(app.events().await.is_empty());
}

on_both_backends!(
    a_megabyte_form_is_refused_as_too_large_and_changes_nothing,
    an_oversized_body_on_the_token_service_is_answered_in_its_own_json,
    a_form_that_is_not_utf8_is_refused_clearly,
    a_malformed_form_body_gets_a_clear_error,
    sql_meta_characters_are_just_text,
    an_empty_post_body_is_refused_without_side_effects,
);
