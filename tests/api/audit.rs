//! Tamper evidence: settled events are sealed into a hash chain; editing or deleting a sealed row by
//! hand is found and named, from the console and from `tokenbroker audit verify`.

use std::time::Duration;

use reqwest::StatusCode;
use tokenbroker::domain::audit::{self, Verdict};
use tokenbroker::domain::events::{Actor, Event, EventType, Outcome};

use crate::cli::tokenbroker;
use crate::event_log::log;
use crate::helpers::*;
use crate::on_both_backends;

/// Lifts the append-only guard the way someone with database access would, and runs `sql`.
async fn by_hand(app: &TestApp, sql: &str) {
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let lift = match app.backend {
        Backend::Sqlite => {
            "DROP TRIGGER IF EXISTS auth_events_no_update; DROP TRIGGER IF EXISTS auth_events_no_delete"
        }
        Backend::Postgres => "ALTER TABLE auth_events DISABLE TRIGGER USER",
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(lift.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn sealed_events_verify_until_someone_edits_one(backend: Backend) {
    let l = log(backend).await;
    let core = &l.app.core;
    assert_eq!(
        audit::seal_pending(core).await.unwrap(),
        0,
        "too recent to seal"
    );
    l.app.clock.advance(Duration::from_secs(3 * 60));
    let sealed = audit::seal_pending(core).await.unwrap();
    assert!(sealed >= 120, "{sealed}");
    assert_eq!(
        audit::seal_pending(core).await.unwrap(),
        0,
        "each event is sealed once"
    );
    assert_eq!(
        audit::verify(core, "test").await.unwrap(),
        Verdict::Intact {
            checked: sealed as i64
        }
    );

    by_hand(
        &l.app,
        "UPDATE auth_events SET outcome = 'success' WHERE details LIKE '%\"seq\":40}%'",
    )
    .await;
    let Verdict::Broken {
        event_id, problem, ..
    } = audit::verify(core, "test").await.unwrap()
    else {
        panic!("the edit must be found");
    };
    assert!(problem.contains("changed"), "{problem}");
    let edited = core
        .store
        .search_events(&Default::default(), None, 500)
        .await
        .unwrap();
    let edited = edited
        .rows
        .iter()
        .find(|e| e.details.contains("\"seq\":40}"))
        .unwrap();
    assert_eq!(
        event_id, edited.id,
        "the first broken link names the edited event"
    );

    // The console shows the last verification and can run one.
    let page = l.app.page_with_form("/admin/events").await;
    assert!(text_of(&page, "#chain-outcome").unwrap().contains("BROKEN"));
    let html = l.app.page_with_form("/admin/events").await;
    let token = crate::client::csrf_token(&html);
    let started = l
        .app
        .post_form("/admin/events/verify", &[("csrf_token", &token)])
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
}

async fn a_deleted_event_breaks_the_chain_at_its_link(backend: Backend) {
    let l = log(backend).await;
    l.app.clock.advance(Duration::from_secs(3 * 60));
    audit::seal_pending(&l.app.core).await.unwrap();
    by_hand(
        &l.app,
        "DELETE FROM auth_events WHERE details LIKE '%\"seq\":77}%'",
    )
    .await;
    let verdict = audit::verify(&l.app.core, "test").await.unwrap();
    assert!(
        matches!(verdict, Verdict::Broken { problem, .. } if problem.contains("deleted")),
        "{verdict:?}"
    );
}

async fn a_back_dated_event_written_behind_the_chain_is_found(backend: Backend) {
    let l = log(backend).await;
    let core = &l.app.core;
    l.app.clock.advance(Duration::from_secs(3 * 60));
    audit::seal_pending(core).await.unwrap();
    let forged = Event::new(
        l.app.now_ms() - 2 * 60 * 1000,
        EventType::Login,
        Outcome::Success,
        Actor::System,
    );
    core.store.append_event(&forged).await.unwrap();
    audit::seal_pending(core).await.unwrap();
    match audit::verify(core, "test").await.unwrap() {
        Verdict::Broken {
            event_id, problem, ..
        } => {
            assert_eq!(event_id, forged.id);
            assert!(problem.contains("never sealed"), "{problem}");
        }
        intact => panic!("a row behind the chain's back went unnoticed: {intact:?}"),
    }
}

async fn the_command_line_reports_ok_or_the_first_broken_link(backend: Backend) {
    let app = spawn_app(backend).await;
    // Old enough for the command (on the real clock) to seal them.
    let long_ago = app.now_ms() - 3_600_000;
    for i in 0..10 {
        let event = Event::new(
            long_ago + i * 1_000,
            EventType::Login,
            Outcome::Failure,
            Actor::Anonymous,
        )
        .detail("n", i);
        app.core.store.append_event(&event).await.unwrap();
    }
    let url = app.database_url.clone();
    let run = move || {
        let dir = tempfile::tempdir().unwrap();
        tokenbroker(&url, dir.path())
            .args(["audit", "verify"])
            .output()
            .unwrap()
    };
    let ok = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK"));
    by_hand(
        &app,
        "UPDATE auth_events SET ip = '198.51.100.1' WHERE details = '{\"n\":3}'",
    )
    .await;
    let broken = tokio::task::spawn_blocking(run).await.unwrap();
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("BROKEN at link 4"), "{stderr}");
}

async fn retention_purges_old_events_and_the_chain_still_verifies(backend: Backend) {
    let l = log(backend).await;
    let core = &l.app.core;
    let start = l.app.now_ms() + 1_000;
    l.app.clock.advance(Duration::from_secs(5 * 60));
    let sealed = audit::seal_pending(core).await.unwrap() as i64;
    // Everything before the 60th seeded event goes (and the setup events before them).
    let cutoff = start + 60 * 1_000;
    let removed = audit::purge_before(core, cutoff).await.unwrap() as i64;
    assert!(removed >= 60, "{removed}");
    assert_eq!(
        audit::purge_before(core, cutoff).await.unwrap(),
        0,
        "nothing left that old"
    );
    let left = core
        .store
        .search_events(&Default::default(), None, 1000)
        .await
        .unwrap();
    assert!(left.rows.iter().all(|e| e.occurred_at >= cutoff));
    assert_eq!(
        audit::verify(core, "test").await.unwrap(),
        Verdict::Intact {
            checked: sealed - removed
        },
        "verification starts from the anchor the purge left"
    );
    // The append-only guard still holds outside a purge.
    let pool = sqlx::AnyPool::connect(&l.app.database_url).await.unwrap();
    assert!(
        sqlx::query("DELETE FROM auth_events")
            .execute(&pool)
            .await
            .is_err()
    );
    pool.close().await;
    let page = l.app.page_with_form("/admin/events").await;
    assert!(
        text_of(&page, "#last-purge")
            .unwrap()
            .contains(&format!("{removed} events older than"))
    );
}

on_both_backends!(
    retention_purges_old_events_and_the_chain_still_verifies,
    sealed_events_verify_until_someone_edits_one,
    a_deleted_event_breaks_the_chain_at_its_link,
    a_back_dated_event_written_behind_the_chain_is_found,
    the_command_line_reports_ok_or_the_first_broken_link,
);
