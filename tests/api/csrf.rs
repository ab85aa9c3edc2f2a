use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

async fn a_login_without_a_csrf_token_is_refused_and_records_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    app.get("/login").await;
    let events_before = app.events().await.len();

    let response = app
        .post_form(
            "/login",
            &[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)],
        )
        .await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let html = response.text().await.unwrap();
    assert!(html.contains("This form has expired or was sent from another site"));
    assert_eq!(app.events().await.len(), events_before);
    assert_redirect_to(&app.get("/").await, "/login");
}

async fn a_token_from_another_session_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let foreign_html = app.new_browser().get("/login").await.text().await.unwrap();
    let foreign_token = csrf_token(&foreign_html);

    let response = app
        .post_form("/logout", &[("csrf_token", &foreign_token)])
        .await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/").await.status(),
        StatusCode::OK,
        "still signed in"
    );
}

async fn sign_out_without_a_token_does_not_sign_out(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    let response = app.post_form("/logout", &[]).await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
}

async fn the_token_may_come_in_a_header_for_scripts(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let token = csrf_token(&app.dashboard_html().await);

    let response = app
        .client
        .post(app.url("/logout"))
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();

    assert_redirect_to(&response, "/login?signed_out=1");
}

async fn a_post_with_no_session_at_all_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;

    let response = app
        .new_browser()
        .post_form(
            "/login",
            &[
                ("csrf_token", "guessed"),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

on_both_backends!(
    a_login_without_a_csrf_token_is_refused_and_records_nothing,
    a_token_from_another_session_is_refused,
    sign_out_without_a_token_does_not_sign_out,
    the_token_may_come_in_a_header_for_scripts,
    a_post_with_no_session_at_all_is_refused,
);
