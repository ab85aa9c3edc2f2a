use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

async fn password_then_passkey_lands_on_the_dashboard_showing_who_i_am(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;

    let response = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_redirect_to(&response, "/login/passkey");
    assert_redirect_to(&app.get("/").await, "/login/passkey");
    let second = app.answer_passkey("/login/passkey", "/login/passkey").await;

    assert_redirect_to(&second, "/");
    let html = app.dashboard_html().await;
    assert_eq!(
        text_of(&html, ".whoami").as_deref(),
        Some("Signed in as Ada Lovelace")
    );
    let activity = all_text_of(&html, "#activity td:nth-child(2)");
    assert!(activity.contains(&"sign-in".to_owned()), "{activity:?}");
    assert!(
        activity.contains(&"recovery codes created".to_owned())
            && !activity.iter().any(|a| a.contains("regenerated")),
        "the first codes are not \"regenerated\": {activity:?}"
    );
}

async fn e_mail_is_matched_without_regard_to_case(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;

    let response = app.login("  ADA@Example.COM ", ADMIN_PASSWORD).await;

    assert_redirect_to(&response, "/login/passkey");
}

async fn wrong_password_and_unknown_e_mail_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;

    let wrong_password = app.login(ADMIN_EMAIL, "not the right password").await;
    let unknown_email = app
        .login("nobody@example.com", "not the right password")
        .await;

    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_email.status(), StatusCode::UNAUTHORIZED);
    let a = text_of(&wrong_password.text().await.unwrap(), ".alert").unwrap();
    let b = text_of(&unknown_email.text().await.unwrap(), ".alert").unwrap();
    assert_eq!(a, b);
    assert_eq!(a, "The e-mail address or password is not correct.");
    assert_redirect_to(&app.get("/").await, "/login");
}

async fn failed_sign_in_keeps_the_e_mail_but_not_the_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;

    let html = app
        .login(ADMIN_EMAIL, "a wrong password")
        .await
        .text()
        .await
        .unwrap();

    assert!(html.contains(&format!(r#"value="{ADMIN_EMAIL}""#)));
    assert!(!html.contains("a wrong password"));
}

async fn empty_fields_are_named_in_the_errors(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.login("", "").await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert_eq!(
        text_of(&html, "#email-error").as_deref(),
        Some("Enter your e-mail address.")
    );
    assert_eq!(
        text_of(&html, "#password-error").as_deref(),
        Some("Enter your password.")
    );
}

async fn the_dashboard_needs_a_signed_in_user(backend: Backend) {
    let app = spawn_app(backend).await;

    assert_redirect_to(&app.get("/").await, "/login");
}

async fn signing_out_ends_the_session_on_the_server(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let cookie = app.session_cookie().unwrap();

    let response = app.logout().await;

    assert_redirect_to(&response, "/login?signed_out=1");
    let page = app.get("/login?signed_out=1").await.text().await.unwrap();
    assert_eq!(
        text_of(&page, ".notice").as_deref(),
        Some("You have signed out.")
    );
    // Replaying the old cookie from another client gets nowhere: the row is gone.
    let replay = app.browser_with_cookie(&cookie).get("/").await;
    assert_redirect_to(&replay, "/login");
}

async fn signed_in_users_visiting_the_login_page_go_to_the_dashboard(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    assert_redirect_to(&app.get("/login").await, "/");
}

on_both_backends!(
    password_then_passkey_lands_on_the_dashboard_showing_who_i_am,
    e_mail_is_matched_without_regard_to_case,
    wrong_password_and_unknown_e_mail_get_the_same_answer,
    failed_sign_in_keeps_the_e_mail_but_not_the_password,
    empty_fields_are_named_in_the_errors,
    the_dashboard_needs_a_signed_in_user,
    signing_out_ends_the_session_on_the_server,
    signed_in_users_visiting_the_login_page_go_to_the_dashboard,
);
