use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

async fn setup_link_creates_the_first_superadmin_and_signs_them_in(backend: Backend) {
    let app = spawn_app(backend).await;
    assert!(!app.core.store.any_user_exists().await.unwrap());

    app.create_admin().await;

    let html = app.dashboard_html().await;
    assert_eq!(
        text_of(&html, "h1").as_deref(),
        Some("Welcome, Ada Lovelace")
    );
    assert!(text_of(&html, ".roles").unwrap().contains("Superadmin"));
    assert!(html.contains(ADMIN_EMAIL));
}

async fn setup_link_works_only_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let link = app.setup_link.clone().unwrap();
    app.create_admin().await;

    let again = app.client.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already been used"));

    // Replaying the form with the spent link creates nobody.
    let token = link.split("token=").nth(1).unwrap();
    let replay = app
        .submit(
            "/",
            "/setup",
            &[
                ("token", token),
                ("email", "mallory@example.com"),
                ("display_name", "Mallory"),
                ("password", ADMIN_PASSWORD),
                ("password_confirm", ADMIN_PASSWORD),
            ],
        )
        .await;
    assert_eq!(replay.status(), StatusCode::GONE);
    let found = app
        .core
        .store
        .find_credentials_by_email("mallory@example.com")
        .await
        .unwrap();
    assert!(found.is_none());
}

async fn setup_link_expires_after_one_hour(backend: Backend) {
    let app = spawn_app(backend).await;
    app.clock.advance(std::time::Duration::from_secs(61 * 60));

    let response = app
        .client
        .get(app.setup_link.clone().unwrap())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::GONE);
    assert!(response.text().await.unwrap().contains("expired"));
}

async fn unknown_setup_token_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/setup?token=not-a-real-token").await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

async fn setup_form_errors_keep_what_was_typed_but_never_the_password(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app
        .submit_setup(&[
            ("email", "not-an-email"),
            ("display_name", "Grace Hopper"),
            ("password", "short"),
            ("password_confirm", "short"),
        ])
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(
        text_of(&html, "#email-error")
            .unwrap()
            .contains("valid e-mail")
    );
    assert!(
        text_of(&html, "#password-error")
            .unwrap()
            .contains("at least 12")
    );
    assert!(html.contains(r#"value="not-an-email""#));
    assert!(html.contains(r#"value="Grace Hopper""#));
    assert!(!html.contains("value=\"short\""));
    assert!(!app.core.store.any_user_exists().await.unwrap());

    let mismatch = app
        .submit_setup(&[
            ("email", ADMIN_EMAIL),
            ("display_name", ADMIN_NAME),
            ("password", ADMIN_PASSWORD),
            ("password_confirm", "something else entirely"),
        ])
        .await;
    assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
    assert!(
        text_of(&mismatch.text().await.unwrap(), "#confirm-error")
            .unwrap()
            .contains("do not match")
    );
    assert!(!app.core.store.any_user_exists().await.unwrap());
}

async fn markup_in_a_display_name_is_shown_as_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let name = "<script>alert(1)</script> O'Brien";

    let response = app
        .submit_setup(&[
            ("email", ADMIN_EMAIL),
            ("display_name", name),
            ("password", ADMIN_PASSWORD),
            ("password_confirm", ADMIN_PASSWORD),
        ])
        .await;
    assert_redirect_to(&response, "/mfa/enrol");
    app.finish_enrolment().await;

    let html = app.dashboard_html().await;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert_eq!(text_of(&html, "h1").unwrap(), format!("Welcome, {name}"));
}

async fn a_fresh_start_after_setup_prints_no_link(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    let sibling = app.spawn_sibling().await;

    assert!(sibling.setup_link.is_none());
}

on_both_backends!(
    setup_link_creates_the_first_superadmin_and_signs_them_in,
    setup_link_works_only_once,
    setup_link_expires_after_one_hour,
    unknown_setup_token_is_not_found,
    setup_form_errors_keep_what_was_typed_but_never_the_password,
    markup_in_a_display_name_is_shown_as_text,
    a_fresh_start_after_setup_prints_no_link,
);
