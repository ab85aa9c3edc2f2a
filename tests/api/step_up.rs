//! Sensitive actions ask for a passkey if none was used in the last five minutes, then carry on.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

const SIX_MINUTES: Duration = Duration::from_secs(6 * 60);

async fn a_stale_session_confirms_with_a_passkey_and_the_action_carries_on(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let old_code = app.recovery_code(0);
    app.clock.advance(SIX_MINUTES);

    let asked = app
        .submit("/account/security", "/account/recovery-codes", &[])
        .await;
    assert_redirect_to(&asked, "/step-up");
    let prompt = app.page_with_form("/step-up").await;
    assert!(
        text_of(&prompt, "p strong")
            .unwrap()
            .contains("Replace your recovery codes")
    );
    assert_eq!(
        attribute_of(&prompt, "#step-up-cancel", "href"),
        "/account/security",
        "Cancel goes back to the page the action was started from"
    );

    let confirmed = app.answer_passkey("/step-up", "/step-up").await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let continue_page = confirmed.text().await.unwrap();
    let form = scraper::Html::parse_document(&continue_page);
    let selector = scraper::Selector::parse("form[data-autosubmit]").unwrap();
    let action = form
        .select(&selector)
        .next()
        .unwrap()
        .value()
        .attr("action")
        .unwrap()
        .to_owned();
    assert_eq!(action, "/account/recovery-codes");

    // What the page's script does by itself: post the saved action with the session's token.
    let carried_on = app
        .post_form(&action, &[("csrf_token", &csrf_token(&continue_page))])
        .await;
    assert_eq!(carried_on.status(), StatusCode::OK);
    let new_codes = all_text_of(&carried_on.text().await.unwrap(), "#recovery-codes code");
    assert_eq!(new_codes.len(), 10);
    assert!(!new_codes.contains(&old_code));
}

async fn within_five_minutes_no_second_prompt_is_needed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    app.clock.advance(Duration::from_secs(4 * 60));

    let response = app
        .submit("/account/security", "/account/recovery-codes", &[])
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("New recovery codes")
    );
}

async fn a_failed_step_up_leaves_the_action_undone(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let user = crate::passkeys::admin_id(&app).await;
    app.clock.advance(SIX_MINUTES);
    app.submit("/account/security", "/account/recovery-codes", &[])
        .await;
    let html = app.page_with_form("/step-up").await;

    let response = app
        .post_form(
            "/step-up",
            &[("csrf_token", &csrf_token(&html)), ("credential", "{}")],
        )
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.core.store.unused_recovery_codes(user).await.unwrap(),
        10
    );
    // Sent from another site, the action's "Cancel" never leads there: the dashboard instead.
    let html = app.page_with_form("/account/security").await;
    app.client
        .post(app.url("/account/recovery-codes"))
        .header("referer", "https://evil.example/account/security")
        .form(&[("csrf_token", csrf_token(&html).as_str())])
        .send()
        .await
        .unwrap();
    let prompt = app.page_with_form("/step-up").await;
    assert_eq!(attribute_of(&prompt, "#step-up-cancel", "href"), "/");
    assert!(app.recovery_codes.lock().unwrap().len() == 10);
}

async fn changing_the_password_needs_a_fresh_passkey_and_ends_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let other_device = app.new_browser();
    assert_redirect_to(
        &other_device.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    app.clock.advance(SIX_MINUTES);

    assert_redirect_to(&app.get("/account/password").await, "/step-up");
    assert_redirect_to(
        &app.answer_passkey("/step-up", "/step-up").await,
        "/account/password",
    );

    let wrong = app
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", "not my password"),
                ("new_password", "a brand new passphrase"),
                ("new_password_confirm", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("current password is not correct")
    );

    let changed = app
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", ADMIN_PASSWORD),
                ("new_password", "a brand new passphrase"),
                ("new_password_confirm", "a brand new passphrase"),
            ],
        )
        .await;
    assert_redirect_to(&changed, "/account/security?notice=password-changed");
    assert_eq!(
        app.get("/").await.status(),
        StatusCode::OK,
        "this session stays"
    );
    assert_redirect_to(&other_device.get("/login/passkey").await, "/login");
    app.logout().await;
    assert_eq!(
        app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.sign_in(ADMIN_EMAIL, "a brand new passphrase").await;
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "password_changed" && e.outcome == "success")
    );
    assert!(events.iter().any(|e| e.event_type == "session_ended"));
}

async fn a_late_password_form_is_not_saved_while_confirming(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let html = app.page_with_form("/account/password").await;
    app.clock.advance(SIX_MINUTES);

    let response = app
        .post_form(
            "/account/password",
            &[
                ("csrf_token", &csrf_token(&html)),
                ("current_password", ADMIN_PASSWORD),
                ("new_password", "a brand new passphrase"),
                ("new_password_confirm", "a brand new passphrase"),
            ],
        )
        .await;

    assert_redirect_to(&response, "/step-up");
    let dump = crate::sessions::session_table_dump(&app).await;
    assert!(
        !dump.contains("a brand new passphrase"),
        "passwords never go into the session store"
    );
    app.logout().await;
    app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

on_both_backends!(
    a_stale_session_confirms_with_a_passkey_and_the_action_carries_on,
    within_five_minutes_no_second_prompt_is_needed,
    a_failed_step_up_leaves_the_action_undone,
    changing_the_password_needs_a_fresh_passkey_and_ends_other_sessions,
    a_late_password_form_is_not_saved_while_confirming,
);

fn attribute_of(html: &str, css: &str, name: &str) -> String {
    scraper::Html::parse_document(html)
        .select(&scraper::Selector::parse(css).unwrap())
        .next()
        .unwrap_or_else(|| panic!("no {css}"))
        .value()
        .attr(name)
        .unwrap()
        .to_owned()
}
