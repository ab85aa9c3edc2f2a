//! Passkey ceremonies with a software authenticator, through the real pages.

use std::time::Duration;

use reqwest::StatusCode;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::RequestChallengeResponse;

use crate::helpers::*;
use crate::on_both_backends;

async fn signed_out_at_second_factor(backend: Backend) -> TestApp {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    app
}

async fn post_second_factor(app: &TestApp, csrf: &str, credential: &str) -> reqwest::Response {
    app.post_form(
        "/login/passkey",
        &[("csrf_token", csrf), ("credential", credential)],
    )
    .await
}

async fn a_new_staff_member_must_enrol_a_passkey_before_anything_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .submit_setup(&[
            ("email", ADMIN_EMAIL),
            ("display_name", ADMIN_NAME),
            ("password", ADMIN_PASSWORD),
            ("password_confirm", ADMIN_PASSWORD),
        ])
        .await;
    assert_redirect_to(&response, "/mfa/enrol");

    for page in [
        "/",
        "/account/security",
        "/account/sessions",
        "/admin/users",
    ] {
        assert_redirect_to(&app.get(page).await, "/login/passkey");
    }
    assert_redirect_to(&app.get("/login/passkey").await, "/mfa/enrol");

    let nameless = app.enrol_passkey("   ").await;
    assert_eq!(nameless.status(), StatusCode::BAD_REQUEST);
    assert!(
        nameless
            .text()
            .await
            .unwrap()
            .contains("Give the passkey a name")
    );

    let enrolled = app.enrol_passkey("YubiKey 5").await;
    assert_eq!(enrolled.status(), StatusCode::OK);
    let html = enrolled.text().await.unwrap();
    let codes = all_text_of(&html, "#recovery-codes code");
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.len() == 29), "{codes:?}");
    let security = app.page_with_form("/account/security").await;
    assert!(security.contains("YubiKey 5"));
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "passkey_enrolled" && e.outcome == "success")
    );
}

async fn signing_in_with_the_passkey_records_its_use(backend: Backend) {
    let app = signed_out_at_second_factor(backend).await;

    let response = app.answer_passkey("/login/passkey", "/login/passkey").await;

    assert_redirect_to(&response, "/");
    let passkeys = app
        .core
        .store
        .passkeys_of(admin_id(&app).await)
        .await
        .unwrap();
    assert!(passkeys[0].last_used_at.is_some());
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "passkey_used" && e.details.contains("sign_in"))
    );
}

async fn a_replayed_assertion_is_refused(backend: Backend) {
    let app = signed_out_at_second_factor(backend).await;
    let (csrf, credential) = app.passkey_answer("/login/passkey").await;
    assert_redirect_to(&post_second_factor(&app, &csrf, &credential).await, "/");
    app.logout().await;
    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    let fresh_page = app.page_with_form("/login/passkey").await;

    let replay = post_second_factor(&app, &csrf_token(&fresh_page), &credential).await;

    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(
        replay
            .text()
            .await
            .unwrap()
            .contains("could not be verified")
    );
    assert_redirect_to(&app.get("/").await, "/login/passkey");
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "second_factor_failed")
    );
}

async fn an_answer_to_an_earlier_challenge_is_refused(backend: Backend) {
    let app = signed_out_at_second_factor(backend).await;
    let (_, stale) = app.passkey_answer("/login/passkey").await;
    // Opening the page again starts a new ceremony; the earlier challenge is void.
    let html = app.page_with_form("/login/passkey").await;

    let response = post_second_factor(&app, &csrf_token(&html), &stale).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_redirect_to(&app.get("/").await, "/login/passkey");
}

async fn a_tampered_signature_is_refused(backend: Backend) {
    let app = signed_out_at_second_factor(backend).await;
    let (csrf, credential) = app.passkey_answer("/login/passkey").await;
    let mut json: serde_json::Value = serde_json::from_str(&credential).unwrap();
    let signature = json["response"]["signature"].as_str().unwrap().to_owned();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    json["response"]["signature"] = format!("{flipped}{}", &signature[1..]).into();

    let response = post_second_factor(&app, &csrf, &json.to_string()).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_redirect_to(&app.get("/").await, "/login/passkey");
}

async fn a_ceremony_left_too_long_is_refused(backend: Backend) {
    let app = signed_out_at_second_factor(backend).await;
    let (csrf, credential) = app.passkey_answer("/login/passkey").await;
    app.clock.advance(Duration::from_secs(6 * 60));

    let response = post_second_factor(&app, &csrf, &credential).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("took too long"));
}

async fn garbage_instead_of_a_credential_is_refused_clearly(backend: Backend) {
    let app = signed_out_at_second_factor(backend).await;
    let html = app.page_with_form("/login/passkey").await;

    let response = post_second_factor(&app, &csrf_token(&html), "{not json").await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("could not be read"));
}

async fn a_signature_counter_that_goes_backwards_is_refused_and_recorded(backend: Backend) {
    let app = signed_out_at_second_factor(backend).await;
    // Pretend the genuine authenticator had already counted far beyond this (cloned) one.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let (json,): (String,) = sqlx::query_as("SELECT passkey FROM passkeys")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut passkey: serde_json::Value = serde_json::from_str(&json).unwrap();
    passkey["cred"]["counter"] = 1_000_000.into();
    sqlx::query("UPDATE passkeys SET passkey = $1")
        .bind(passkey.to_string())
        .execute(&pool)
        .await
        .unwrap();

    let response = app.answer_passkey("/login/passkey", "/login/passkey").await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("counter went backwards")
    );
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "passkey_counter_regressed")
    );
}

async fn passkeys_can_be_renamed_and_removed_but_never_the_last(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let first = passkey_ids(&app).await[0].clone();

    let renamed = app
        .submit(
            "/account/security",
            &format!("/account/passkeys/{first}/rename"),
            &[("name", "Laptop")],
        )
        .await;
    assert_redirect_to(&renamed, "/account/security?notice=renamed");
    assert!(
        app.page_with_form("/account/security")
            .await
            .contains(r#"value="Laptop""#)
    );

    let refused = app
        .submit(
            "/account/security",
            &format!("/account/passkeys/{first}/remove"),
            &[],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.unwrap().contains("only passkey"));

    // A second device: a new authenticator enrols another passkey.
    let first_device = std::mem::replace(
        &mut *app.authenticator.lock().unwrap(),
        SoftPasskey::new(true),
    );
    assert_redirect_to(&app.enrol_passkey("Phone").await, "/account/security");
    assert_eq!(passkey_ids(&app).await.len(), 2);

    let other_session = app.new_browser();
    other_session.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let removed = app
        .submit(
            "/account/security",
            &format!("/account/passkeys/{first}/remove"),
            &[],
        )
        .await;
    assert_redirect_to(&removed, "/account/security?notice=removed");
    assert_redirect_to(&other_session.get("/login/passkey").await, "/login");
    assert_eq!(passkey_ids(&app).await.len(), 1);
    // The removed passkey no longer signs in.
    *app.authenticator.lock().unwrap() = first_device;
    app.logout().await;
    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    let html = app.page_with_form("/login/passkey").await;
    let options: RequestChallengeResponse = serde_json::from_str(&passkey_options(&html)).unwrap();
    let answer = app
        .authenticator
        .lock()
        .unwrap()
        .do_authentication(app.origin.clone(), options);
    assert!(
        answer.is_err(),
        "the old device holds no passkey the server still offers"
    );
}

async fn passkey_ids(app: &TestApp) -> Vec<String> {
    let html = app.page_with_form("/account/security").await;
    let document = scraper::Html::parse_document(&html);
    let selector = scraper::Selector::parse("tr[data-passkey]").unwrap();
    document
        .select(&selector)
        .map(|row| row.value().attr("data-passkey").unwrap().to_owned())
        .collect()
}

pub async fn admin_id(app: &TestApp) -> tokenbroker::domain::ids::UserId {
    app.core
        .store
        .find_credentials_by_email(ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap()
        .user
        .id
}

on_both_backends!(
    a_new_staff_member_must_enrol_a_passkey_before_anything_else,
    signing_in_with_the_passkey_records_its_use,
    a_replayed_assertion_is_refused,
    an_answer_to_an_earlier_challenge_is_refused,
    a_tampered_signature_is_refused,
    a_ceremony_left_too_long_is_refused,
    garbage_instead_of_a_credential_is_refused_clearly,
    a_signature_counter_that_goes_backwards_is_refused_and_recorded,
    passkeys_can_be_renamed_and_removed_but_never_the_last,
);
