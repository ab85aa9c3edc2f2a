//! Periodic jobs: in tests nothing runs on its own timer — each test runs the job it needs, when it
//! needs it — every job does its work when run once, and the background runner ends when the server
//! stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use tokenbroker::jobs::{Shutdown, spawn_every};

use crate::helpers::*;
use crate::keys::introspect_on;
use crate::oauth_kit::*;
use crate::on_both_backends;
use crate::staff_kit::*;

/// A generous bound for things that happen at once; never a wait for a timer.
const BOUND: Duration = Duration::from_secs(10);

async fn unsealed(app: &TestApp) -> i64 {
    let head = app.core.store.chain_head().await.unwrap();
    app.core.store.unsealed_events(&head).await.unwrap()
}

async fn sessions_of_admin(app: &TestApp) -> i64 {
    let admin = user_id(app, ADMIN_EMAIL).await;
    // Time zero counts every row, expired or not.
    app.core.store.count_sessions_of(admin, 0).await.unwrap()
}

async fn with_background_jobs_off_nothing_changes_until_a_job_is_run(backend: Backend) {
    let app = spawn_app(backend).await;
    // Only the reactive tasks run, on no timer: the database watcher (it probes when the database
    // looks unwell) and, on PostgreSQL, the notification follower.
    let reactive = 1 + usize::from(backend == Backend::Postgres);
    assert_eq!(app.shutdown.running(), reactive, "no periodic job spawned");

    app.create_admin().await;
    invite_to_acme(&app, "late@example.com", "Late").await;
    let events = unsealed(&app).await;
    assert!(events > 0);

    // Long enough for every job to have something due: events settled, the session idle past
    // its timeout, the mail due since it was queued.
    app.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(unsealed(&app).await, events, "nothing sealed on its own");
    assert!(
        sessions_of_admin(&app).await > 0,
        "nothing swept on its own"
    );
    assert_eq!(
        app.core.store.unsent_mail().await.unwrap(),
        1,
        "nothing sent on its own"
    );
    assert_eq!(app.shutdown.running(), reactive);

    // Each state changes exactly when its job is run.
    assert_eq!(app.run_job(Job::SealEvents).await, events as u64);
    assert_eq!(unsealed(&app).await, 0);
    assert!(app.run_job(Job::Sweep).await >= 1);
    assert_eq!(sessions_of_admin(&app).await, 0);
    assert_eq!(app.run_job(Job::Outbox).await, 1);
    assert_eq!(app.core.store.unsent_mail().await.unwrap(), 0);
}

async fn each_job_run_once_does_its_work_and_a_second_run_finds_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    // Outbox: a queued invitation is delivered.
    invite_to_acme(&app, "sam@example.com", "Sam").await;
    assert_eq!(app.run_job(Job::Outbox).await, 1);
    assert_eq!(app.run_job(Job::Outbox).await, 0);

    // Detect: a burst of failed sign-ins is one alert.
    let attacker = app.new_browser();
    for _ in 0..5 {
        attacker.login(ADMIN_EMAIL, "not the password at all").await;
        app.clock.advance(Duration::from_secs(1));
    }
    app.clock.advance(Duration::from_secs(3));
    assert!(app.run_job(Job::Detect).await >= 1);
    assert_eq!(app.run_job(Job::Detect).await, 0);
    assert!(app.core.store.count_open_alerts().await.unwrap() >= 1);

    // Seal: settled events join the hash chain, once.
    app.clock.advance(Duration::from_secs(3 * 60));
    assert!(app.run_job(Job::SealEvents).await > 0);
    assert_eq!(app.run_job(Job::SealEvents).await, 0);
    assert_eq!(unsealed(&app).await, 0);

    // Sweep: sessions past their idle timeout are deleted.
    app.clock.advance(Duration::from_secs(31 * 60));
    assert!(app.run_job(Job::Sweep).await >= 1);
    assert_eq!(app.run_job(Job::Sweep).await, 0);
    assert_eq!(sessions_of_admin(&app).await, 0);

    // Purge: sealed events past retention (365 days) are removed.
    app.clock.advance(Duration::from_secs(366 * 86_400));
    app.run_job(Job::SealEvents).await;
    assert!(app.run_job(Job::PurgeEvents).await > 0);
    assert_eq!(app.run_job(Job::PurgeEvents).await, 0);
}

async fn the_key_schedule_rotates_a_due_key_when_run(backend: Backend) {
    let s = service(backend).await;
    // A tenant's keys are made on first use.
    s.access_token().await;
    let tenant = s.tenant().await;
    let active = async || {
        s.w.app
            .core
            .store
            .signing_keys(tenant)
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.state == tokenbroker::domain::keys::KeyState::Active)
            .map(|k| k.kid)
            .unwrap()
    };
    let before = active().await;
    s.w.app.clock.advance(Duration::from_secs(30 * 86_400 + 60));
    assert_eq!(active().await, before, "no rotation on its own");
    s.w.app.run_job(Job::KeySchedule).await;
    assert_ne!(active().await, before, "rotated when the schedule ran");
}

on_both_backends!(
    with_background_jobs_off_nothing_changes_until_a_job_is_run,
    each_job_run_once_does_its_work_and_a_second_run_finds_nothing,
    the_key_schedule_rotates_a_due_key_when_run,
);

/// SQLite has no notifications: another instance learns of a revocation when it reconciles.
#[tokio::test]
async fn without_notifications_another_instance_learns_a_revocation_when_it_reconciles() {
    let s = service(Backend::Sqlite).await;
    let other = s.w.app.spawn_sibling().await;
    let token = s.access_token().await;
    assert!(introspect_on(&other, &s, &token).await);
    let revoked = s
        .post_basic(
            "/t/acme/oauth/revoke",
            &s.client,
            &[("token", token.as_str())],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(!s.is_active(&token).await, "inactive where it was revoked");
    assert!(
        introspect_on(&other, &s, &token).await,
        "the other instance has not reconciled yet"
    );
    other.run_job(Job::Reconcile).await;
    assert!(!introspect_on(&other, &s, &token).await);
}

async fn the_background_runner_stops_when_the_server_stops(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.background_jobs = true).await;
    // Plus the reactive tasks: the database watcher and, on PostgreSQL, the notification follower.
    let reactive = 1 + usize::from(backend == Backend::Postgres);
    assert_eq!(
        app.shutdown.running(),
        Job::ALL.len() + reactive,
        "every job runs in the background"
    );
    app.server.stop(true).await;
    tokio::time::timeout(BOUND, app.shutdown.stopped())
        .await
        .expect("every background task ends once the server has stopped");
    assert_eq!(app.shutdown.running(), 0);
}

on_both_backends!(the_background_runner_stops_when_the_server_stops);

#[tokio::test]
async fn spawn_every_runs_at_once_then_on_its_interval_until_shut_down() {
    let shutdown = Shutdown::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let (ran, mut each_run) = tokio::sync::mpsc::unbounded_channel();
    let task = spawn_every(Duration::from_millis(10), &shutdown, {
        let runs = runs.clone();
        move || {
            runs.fetch_add(1, Ordering::SeqCst);
            let ran = ran.clone();
            async move {
                let _ = ran.send(());
            }
        }
    });
    assert_eq!(shutdown.running(), 1);
    for _ in 0..3 {
        tokio::time::timeout(BOUND, each_run.recv())
            .await
            .expect("a run within the bound")
            .expect("the task is alive");
    }
    shutdown.trigger();
    tokio::time::timeout(BOUND, task)
        .await
        .expect("the task ends once shut down")
        .unwrap();
    assert_eq!(shutdown.running(), 0);
    // The job itself is gone with its task: nothing can run it again.
    assert_eq!(Arc::strong_count(&runs), 1);
    assert!(runs.load(Ordering::SeqCst) >= 3);
}

#[tokio::test]
async fn dropping_every_shutdown_handle_stops_the_tasks_too() {
    let shutdown = Shutdown::default();
    let task = spawn_every(Duration::from_secs(3600), &shutdown, || async {});
    drop(shutdown);
    tokio::time::timeout(BOUND, task)
        .await
        .expect("the task ends once nobody can stop it any more")
        .unwrap();
}
