use tokenbroker::domain::events::EventRecord;

use crate::helpers::*;
use crate::on_both_backends;

fn of_type<'a>(events: &'a [EventRecord], event_type: &str, outcome: &str) -> Vec<&'a EventRecord> {
    events
        .iter()
        .filter(|e| e.event_type == event_type && e.outcome == outcome)
        .collect()
}

async fn setup_sign_in_failure_and_sign_out_are_recorded_with_their_context(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    app.logout().await;
    app.login(ADMIN_EMAIL, "a wrong password!").await;
    app.login("stranger@example.com", "a wrong password!").await;
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let events = app.events().await;
    let setup = of_type(&events, "setup_completed", "success");
    assert_eq!(setup.len(), 1);
    let admin_id = setup[0].subject.clone().expect("setup names the new admin");
    assert_eq!(of_type(&events, "logout", "success").len(), 1);

    let failures = of_type(&events, "login", "failure");
    assert_eq!(failures.len(), 2);
    for failure in &failures {
        assert!(
            failure
                .details
                .contains(r#""reason":"invalid_credentials""#),
            "{}",
            failure.details
        );
        assert_eq!(failure.actor_kind, "anonymous");
    }
    let success = of_type(&events, "login", "success");
    assert_eq!(success.len(), 1);
    let success = success[0];
    assert_eq!(success.subject.as_deref(), Some(admin_id.as_str()));
    assert_eq!(success.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(success.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(success.user_agent.as_deref(), Some("tokenbroker-tests/1.0"));
    assert_eq!(success.request_id.as_ref().map(String::len), Some(32));
}

async fn no_secret_ever_reaches_the_event_log(backend: Backend) {
    let app = spawn_app(backend).await;
    let setup_token = app
        .setup_link
        .clone()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    app.create_admin().await;
    let cookie = app.session_cookie().unwrap();
    app.logout().await;
    app.login(ADMIN_EMAIL, "a wrong password!").await;

    let dump: String = app
        .events()
        .await
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    for secret in [
        ADMIN_PASSWORD,
        "a wrong password!",
        &setup_token,
        cookie.trim_start_matches("tb_session="),
    ] {
        assert!(!dump.contains(secret), "event log contains a secret");
    }
}

async fn the_event_log_refuses_updates_and_deletes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let before = app.events().await.len();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();

    let update = sqlx::query("UPDATE auth_events SET outcome = 'success'")
        .execute(&pool)
        .await;
    let delete = sqlx::query("DELETE FROM auth_events").execute(&pool).await;

    assert!(
        update.is_err() && delete.is_err(),
        "auth_events must be append-only"
    );
    assert_eq!(app.events().await.len(), before);
}

on_both_backends!(
    setup_sign_in_failure_and_sign_out_are_recorded_with_their_context,
    no_secret_ever_reaches_the_event_log,
    the_event_log_refuses_updates_and_deletes,
);
