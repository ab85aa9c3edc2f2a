//! A lost passkey: password plus one recovery code, then a new passkey before anything else.

use reqwest::StatusCode;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::helpers::*;
use crate::on_both_backends;

async fn at_second_factor_with_a_lost_passkey(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    *app.authenticator.lock().unwrap() = SoftPasskey::new(true);
    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    app
}

async fn a_recovery_code_gets_in_once_and_demands_a_new_passkey(backend: Backend) {
    let app = at_second_factor_with_a_lost_passkey(backend).await;
    let code = app.recovery_code(3);
    let thief = app.new_browser();
    thief.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let response = app
        .submit("/login/recovery", "/login/recovery", &[("code", &code)])
        .await;

    assert_redirect_to(&response, "/mfa/enrol");
    assert_redirect_to(&app.get("/").await, "/mfa/enrol");
    assert_redirect_to(&thief.get("/login/passkey").await, "/login");
    let events = app.events().await;
    let used = events
        .iter()
        .find(|e| e.event_type == "recovery_code_used" && e.outcome == "success")
        .expect("recovery code use is recorded");
    assert!(used.details.contains(r#""alert":true"#));
    assert!(!used.details.contains(&code));

    let enrolled = app.enrol_passkey("Replacement key").await;
    assert_eq!(enrolled.status(), StatusCode::OK);
    let fresh_codes = all_text_of(&enrolled.text().await.unwrap(), "#recovery-codes code");
    assert_eq!(fresh_codes.len(), 10, "a new set replaces the old one");
    assert_eq!(app.get("/").await.status(), StatusCode::OK);

    // The burned code (and the whole old set) no longer works.
    app.logout().await;
    *app.authenticator.lock().unwrap() = SoftPasskey::new(true);
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let reused = app
        .submit("/login/recovery", "/login/recovery", &[("code", &code)])
        .await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    let another_old = app
        .submit(
            "/login/recovery",
            "/login/recovery",
            &[("code", &app.recovery_code(4))],
        )
        .await;
    assert_eq!(another_old.status(), StatusCode::UNAUTHORIZED);
}

async fn codes_are_accepted_however_they_are_typed(backend: Backend) {
    let app = at_second_factor_with_a_lost_passkey(backend).await;
    let typed = app.recovery_code(0).to_uppercase().replace('-', " ");

    let response = app
        .submit("/login/recovery", "/login/recovery", &[("code", &typed)])
        .await;

    assert_redirect_to(&response, "/mfa/enrol");
}

async fn a_wrong_code_is_refused_and_changes_nothing(backend: Backend) {
    let app = at_second_factor_with_a_lost_passkey(backend).await;

    let response = app
        .submit(
            "/login/recovery",
            "/login/recovery",
            &[("code", "aaaa-bbbb-cccc-dddd-eeee-ffff")],
        )
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("not valid"));
    assert_redirect_to(&app.get("/").await, "/login/passkey");
    let user = crate::passkeys::admin_id(&app).await;
    assert_eq!(
        app.core.store.unused_recovery_codes(user).await.unwrap(),
        10
    );
}

async fn recovery_codes_need_a_password_first(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;

    assert_redirect_to(&app.get("/login/recovery").await, "/login");
}

on_both_backends!(
    a_recovery_code_gets_in_once_and_demands_a_new_passkey,
    codes_are_accepted_however_they_are_typed,
    a_wrong_code_is_refused_and_changes_nothing,
    recovery_codes_need_a_password_first,
);
