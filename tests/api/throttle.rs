//! Sign-in throttling: per account and per IP, temporary, and silent about which accounts exist.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

async fn fail(app: &TestApp, email: &str, times: usize) {
    for _ in 0..times {
        assert_eq!(
            app.login(email, "not the password at all").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

async fn five_failures_lock_the_account_for_a_while(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    fail(&app, ADMIN_EMAIL, 5).await;

    let locked = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            <= 60
    );
    assert!(
        text_of(&locked.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("Too many failed sign-ins")
    );
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "login_locked" && e.details.contains(r#""scope":"account""#))
    );
    assert!(events.iter().any(|e| e.event_type == "login_throttled"));

    app.clock.advance(Duration::from_secs(61));
    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    assert!(
        app.events()
            .await
            .iter()
            .any(|e| e.event_type == "login_unlocked")
    );
}

async fn locks_grow_with_each_further_failure_but_stay_temporary(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    fail(&app, ADMIN_EMAIL, 5).await;
    app.clock.advance(Duration::from_secs(61));
    fail(&app, ADMIN_EMAIL, 1).await;

    let locked = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (61..=120).contains(&wait),
        "the second lock is longer: {wait}s"
    );

    app.clock.advance(Duration::from_secs(16 * 60));
    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
}

async fn unknown_and_known_accounts_get_identical_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    for attempt in 0..6 {
        let known = app.login(ADMIN_EMAIL, "not the password at all").await;
        let unknown = app
            .login("nobody@example.com", "not the password at all")
            .await;
        assert_eq!(known.status(), unknown.status(), "attempt {attempt}");
        let known_text = text_of(&known.text().await.unwrap(), ".alert");
        let unknown_text = text_of(&unknown.text().await.unwrap(), ".alert");
        assert_eq!(known_text, unknown_text, "attempt {attempt}");
    }
}

async fn an_address_locked_for_guessing_refuses_guesses_but_admits_a_colleague(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    for n in 0..20 {
        fail(&app, &format!("guess{n}@example.com"), 1).await;
    }
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "login_locked" && e.details.contains(r#""scope":"ip""#))
    );

    let guess = app.login("guess99@example.com", "guess").await;
    assert_eq!(guess.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(guess.headers().contains_key("retry-after"));

    // Someone else at the same address, with their password and passkey, is not locked out.
    app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(app.dashboard_html().await.contains(ADMIN_NAME));
}

async fn a_success_clears_the_account_counter(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    fail(&app, ADMIN_EMAIL, 4).await;
    app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    app.logout().await;

    fail(&app, ADMIN_EMAIL, 4).await;

    assert_redirect_to(
        &app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
}

on_both_backends!(
    five_failures_lock_the_account_for_a_while,
    locks_grow_with_each_further_failure_but_stay_temporary,
    unknown_and_known_accounts_get_identical_answers,
    an_address_locked_for_guessing_refuses_guesses_but_admits_a_colleague,
    a_success_clears_the_account_counter,
);
