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

/// `tokenbroker recover` against the app's database: the link it prints (only the link, on
/// standard output), as a path on the test server.
async fn break_glass(app: &TestApp, email: &str, reason: &str) -> std::process::Output {
    let (url, email, reason) = (
        app.database_url.clone(),
        email.to_owned(),
        reason.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        crate::cli::tokenbroker(&url, dir.path())
            .args(["recover", "--email", &email, "--reason", &reason])
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

async fn break_glass_recovery_removes_every_factor_and_a_link_leads_to_a_new_passkey(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let old_code = app.recovery_code(0);

    let refused = break_glass(&app, ADMIN_EMAIL, "  ").await;
    assert!(!refused.status.success(), "a reason is required");
    let output = break_glass(&app, ADMIN_EMAIL, "Lost laptop and the printed codes").await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let link = url::Url::parse(stdout.trim_end()).unwrap();
    assert_eq!(link.path(), "/recover");
    let path = format!("{}?{}", link.path(), link.query().unwrap());

    // Every session ended; the password alone no longer leads anywhere, nor does an old code.
    assert_redirect_to(&app.get("/").await, "/login");
    let password_only = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(password_only.status(), StatusCode::FORBIDDEN);
    assert!(
        password_only
            .text()
            .await
            .unwrap()
            .contains("open the recovery link")
    );
    let refused_login = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "login")
        .unwrap();
    assert_eq!(
        refused_login.outcome, "failure",
        "no session, so no sign-in"
    );
    assert!(refused_login.details.contains("awaiting_recovery"));
    assert_eq!(
        app.core
            .store
            .unused_recovery_codes(crate::passkeys::admin_id(&app).await)
            .await
            .unwrap(),
        0
    );

    // The link, with a wrong password, then the right one: a new passkey and new codes.
    let person = app.new_browser();
    let page = person.page_with_form(&path).await;
    assert!(page.contains(ADMIN_EMAIL));
    let token = link
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .to_string();
    let wrong = person
        .submit(
            &path,
            "/recover",
            &[("token", &token), ("password", "not my password at all")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = person
        .submit(
            &path,
            "/recover",
            &[("token", &token), ("password", ADMIN_PASSWORD)],
        )
        .await;
    assert_redirect_to(&right, "/mfa/enrol");
    assert_redirect_to(&person.get("/").await, "/mfa/enrol");
    let enrolled = person.enrol_passkey("New laptop").await;
    assert_eq!(enrolled.status(), StatusCode::OK);
    let codes = all_text_of(&enrolled.text().await.unwrap(), "#recovery-codes code");
    assert_eq!(codes.len(), 10);
    assert!(!codes.contains(&old_code));
    assert_eq!(person.get("/").await.status(), StatusCode::OK);

    // Once only.
    assert_eq!(
        app.new_browser().get(&path).await.status(),
        StatusCode::GONE
    );
    let events = app.events().await;
    let started = events
        .iter()
        .find(|e| e.event_type == "account_recovery_started")
        .unwrap();
    assert_eq!(started.actor_kind, "cli");
    assert!(started.details.contains("Lost laptop"));
    assert!(!started.details.contains(&token), "no link in the event");
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "account_recovery_used")
    );
    // The command line stamps its event with the real time, ahead of the app's manual clock by
    // however long the test has taken so far: move past it, plus the detectors' settling delay.
    let ahead = u64::try_from(started.occurred_at - app.now_ms()).unwrap_or(0);
    app.clock
        .advance(std::time::Duration::from_millis(ahead) + std::time::Duration::from_secs(3));
    app.run_job(Job::Detect).await;
    let alerts = tokenbroker::domain::alerts::queue(&app.core, None, true, None, 10)
        .await
        .unwrap();
    assert!(
        alerts
            .alerts
            .iter()
            .any(|a| a.detector == "account_recovery_started" && a.severity.as_str() == "high")
    );
}

on_both_backends!(
    a_recovery_code_gets_in_once_and_demands_a_new_passkey,
    break_glass_recovery_removes_every_factor_and_a_link_leads_to_a_new_passkey,
    codes_are_accepted_however_they_are_typed,
    a_wrong_code_is_refused_and_changes_nothing,
    recovery_codes_need_a_password_first,
);
