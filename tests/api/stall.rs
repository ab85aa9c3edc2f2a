//! A database that accepts and then stops answering (a partition, a stuck primary) is not one that
//! refuses: nothing fails, everything waits. Every endpoint must still answer, 503 within the
//! database timeout and a second, write nothing by halves, and recover by itself. PostgreSQL,
//! through a proxy that stalls; SQLite's equivalent is a lock another process holds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::automation::key_for;
use crate::db_proxy::DatabaseProxy;
use crate::dpop::payload_of;
use crate::helpers::*;
use crate::keys::within;
use crate::oauth_kit::*;

const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);
/// What the issue promises: an answer within the database timeout and a second.
const ANSWERED_WITHIN: Duration = Duration::from_secs(3);
/// Generous: the watcher probes every 250 ms; a loaded test machine may be slow to schedule it.
const SETTLES: Duration = Duration::from_secs(10);

/// What the database holds about issued tokens: each token's row and its `token_issued` event.
pub(crate) struct Ledger {
    pub(crate) tokens: HashSet<String>,
    pub(crate) events: HashSet<String>,
}

impl Ledger {
    pub(crate) async fn read(database_url: &str) -> Self {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(database_url).await.unwrap();
        let tokens: Vec<(String,)> = sqlx::query_as("SELECT jti FROM access_tokens")
            .fetch_all(&pool)
            .await
            .unwrap();
        let details: Vec<(String,)> =
            sqlx::query_as("SELECT details FROM auth_events WHERE event_type = 'token_issued'")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        let events = details
            .iter()
            .map(|(d,)| {
                let details: Value = serde_json::from_str(d).unwrap();
                details["jti"].as_str().unwrap().to_owned()
            })
            .collect();
        Self {
            tokens: tokens.into_iter().map(|(jti,)| jti).collect(),
            events,
        }
    }

    /// Every token recorded has its event and every event its token: nothing half-written.
    pub(crate) fn assert_whole(&self) {
        assert_eq!(
            self.tokens, self.events,
            "every recorded token has its token_issued event, and the other way round"
        );
    }
}

fn jti_of(body: &Value) -> String {
    let token = body["access_token"].as_str().unwrap();
    payload_of(token)["jti"].as_str().unwrap().to_owned()
}

/// A request's status, body and how long it took to answer.
/// The client's token request (client_secret_basic).
fn token_request(s: &Service) -> reqwest::RequestBuilder {
    s.http
        .post(s.url("/t/acme/oauth/token"))
        .basic_auth(&s.client.id, Some(&s.client.secret))
        .form(&[("grant_type", "client_credentials")])
}

async fn timed(request: reqwest::RequestBuilder) -> (StatusCode, String, String, Duration) {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let retry_after = response.headers().contains_key("retry-after");
    let body = response.text().await.unwrap();
    assert!(
        status != StatusCode::SERVICE_UNAVAILABLE || retry_after,
        "a 503 says when to retry"
    );
    (status, content_type, body, started.elapsed())
}

#[tokio::test]
async fn a_stalled_database_gets_every_endpoint_a_503_in_time_and_recovery_by_itself() {
    let proxy = DatabaseProxy::to_postgres().await;
    let s = service_with(Backend::Postgres, |settings| {
        proxy.route(settings);
        settings.deployment.database_timeout = DATABASE_TIMEOUT;
    })
    .await;
    let app = &s.w.app;
    let key = key_for(app, ADMIN_EMAIL, &["all"], &[]).await;
    let mut handed_out = HashSet::new();
    // The client is known to this instance: its secret is served from memory from now on.
    let first: Value = s.token(&s.client, &[]).await.json().await.unwrap();
    handed_out.insert(jti_of(&first));
    let access_token = first["access_token"].as_str().unwrap().to_owned();

    proxy.stall();

    let token = token_request(&s);
    let introspection = s
        .http
        .post(s.url("/t/acme/oauth/introspect"))
        .basic_auth(&s.gateway.id, Some(&s.gateway.secret))
        .form(&[("token", access_token.as_str())]);
    let api = s.http.get(s.url("/api/v1/me")).bearer_auth(&key);
    let console = app.client.get(app.url("/"));
    let (token, introspection, api, console) = tokio::join!(
        timed(token),
        timed(introspection),
        timed(api),
        timed(console)
    );

    eprintln!(
        "stalled database, time to answer: token {:?}, introspection {:?}, api {:?}, console {:?}",
        token.3, introspection.3, api.3, console.3
    );
    for (what, (status, _, _, took)) in [
        ("token", &token),
        ("introspection", &introspection),
        ("api", &api),
        ("console", &console),
    ] {
        assert!(
            *took < ANSWERED_WITHIN,
            "{what} answered after {took:?} (database_timeout {DATABASE_TIMEOUT:?})"
        );
        if what != "introspection" {
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
        }
    }
    // Introspecting a token this instance issued may be answered from memory; if not, 503.
    assert!(matches!(
        introspection.0,
        StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE
    ));
    let error: Value = serde_json::from_str(&token.2).unwrap();
    assert_eq!(error["error"], "temporarily_unavailable");
    assert_eq!(api.1, "application/problem+json");
    assert!(console.2.contains("cannot reach its database"));

    // Found out: from now on every endpoint answers at once, and so does the readiness probe.
    assert!(
        within(SETTLES, async || app.core.store.health().is_down())
            .await
            .is_some()
    );
    let (status, _, _, took) = timed(token_request(&s)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_millis(500), "answered in {took:?}");
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    proxy.resume();

    let started = Instant::now();
    loop {
        let response = s.token(&s.client, &[]).await;
        if response.status() == StatusCode::OK {
            handed_out.insert(jti_of(&response.json().await.unwrap()));
            break;
        }
        assert!(
            started.elapsed() < SETTLES,
            "tokens are issued again by themselves"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    assert_eq!(
        s.http
            .get(s.url("/api/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let ledger = Ledger::read(&app.database_url).await;
    ledger.assert_whole();
    assert_eq!(
        ledger.tokens, handed_out,
        "every token handed out is recorded, and the one refused during the stall is not"
    );
}

#[tokio::test]
async fn a_sqlite_database_locked_by_another_process_gets_token_requests_a_503_in_time() {
    use sqlx::Connection;
    let s = service_with(Backend::Sqlite, |settings| {
        settings.deployment.database_timeout = DATABASE_TIMEOUT;
    })
    .await;
    let app = &s.w.app;
    let mut handed_out = HashSet::new();
    let first: Value = s.token(&s.client, &[]).await.json().await.unwrap();
    handed_out.insert(jti_of(&first));
    // Another process (a backup tool, a stuck script) holds the write lock.
    let mut locker = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .unwrap();

    let (status, _, body, took) = timed(token_request(&s)).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < ANSWERED_WITHIN, "answered after {took:?}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"], "temporarily_unavailable");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    let after = s.token(&s.client, &[]).await;
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the lock gone, tokens come again"
    );
    handed_out.insert(jti_of(&after.json().await.unwrap()));
    let ledger = Ledger::read(&app.database_url).await;
    ledger.assert_whole();
    assert_eq!(ledger.tokens, handed_out);
}
