//! Group commit at the token endpoint: concurrent token requests are recorded together, yet every
//! token handed out is recorded — its row and its event — and a batch that cannot be recorded
//! hands out none of its tokens.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::automation::{Api, key_for};
use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;

/// Lets the client obtain as many tokens as the test asks for at once.
async fn unlimited(s: &Service, client_id: &str) {
    limit(s, client_id, 10_000).await;
}

async fn limit(s: &Service, client_id: &str, per_minute: u32) {
    let api = Api {
        app: &s.w.app,
        key: key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let credential = s.credential_of(client_id).await;
    let changed = api
        .request(
            Method::PATCH,
            &format!("/api/v1/tenants/acme/credentials/{credential}/policy"),
        )
        .json(&json!({"tokens_per_minute": per_minute}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
}

async fn issued_events_of(s: &Service, client_id: &str) -> Vec<String> {
    s.w.app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "token_issued" && e.details.contains(client_id))
        .map(|e| e.details)
        .collect()
}

/// Every request answered, with its status and (on success) its token.
async fn at_once(s: &Service, clients: &[&Client]) -> Vec<(StatusCode, Option<String>)> {
    let requests = clients.iter().map(|client| async move {
        let answer = s.token(client, &[]).await;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap();
        (status, body["access_token"].as_str().map(str::to_owned))
    });
    join_all(requests).await
}

async fn concurrent_token_requests_are_each_recorded_with_their_event(backend: Backend) {
    let s = service(backend).await;
    unlimited(&s, &s.client.id).await;
    let clients: Vec<&Client> = std::iter::repeat_n(&s.client, 64).collect();

    let answers = at_once(&s, &clients).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK));
    let tokens: Vec<String> = answers.into_iter().filter_map(|(_, t)| t).collect();
    let mut distinct = tokens.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 64, "64 different tokens");
    assert_eq!(
        issued_events_of(&s, &s.client.id).await.len(),
        64,
        "one token_issued event each"
    );
    for token in &tokens {
        assert!(s.is_active(token).await, "every token was recorded");
    }
}

/// Makes recording any token of `client_id` fail: on PostgreSQL at commit (a deferred constraint
/// trigger), on SQLite at the insert.
async fn fail_recording_of(app: &TestApp, backend: Backend, client_id: &str) {
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let statements = match backend {
        Backend::Postgres => vec![
            format!(
                "CREATE FUNCTION refuse_token() RETURNS trigger AS $$ BEGIN \
                 IF NEW.client_id = '{client_id}' THEN RAISE EXCEPTION 'injected failure'; END IF; \
                 RETURN NEW; END $$ LANGUAGE plpgsql"
            ),
            "CREATE CONSTRAINT TRIGGER refuse_token AFTER INSERT ON access_tokens \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_token()"
                .to_owned(),
        ],
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER refuse_token BEFORE INSERT ON access_tokens \
             WHEN NEW.client_id = '{client_id}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn heal_recording(app: &TestApp, backend: Backend) {
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let drop = match backend {
        Backend::Postgres => "DROP TRIGGER refuse_token ON access_tokens",
        Backend::Sqlite => "DROP TRIGGER refuse_token",
    };
    sqlx::query(drop).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn a_batch_that_cannot_be_recorded_hands_out_none_of_its_tokens(backend: Backend) {
    let s = service(backend).await;
    unlimited(&s, &s.client.id).await;
    unlimited(&s, &s.gateway.id).await;
    fail_recording_of(&s.w.app, backend, &s.client.id).await;

    // The doomed client's requests and the gateway's, interleaved: some share batches.
    let clients: Vec<&Client> = (0..48)
        .map(|i| if i % 2 == 0 { &s.client } else { &s.gateway })
        .collect();
    let answers = at_once(&s, &clients).await;
    let mut handed_out = Vec::new();
    for (client, (status, token)) in clients.iter().zip(answers) {
        if client.id == s.client.id {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "never recorded");
        } else {
            assert!(
                status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                "{status}"
            );
        }
        if status == StatusCode::OK {
            handed_out.push(token.unwrap());
        } else {
            assert!(token.is_none());
        }
    }
    assert!(issued_events_of(&s, &s.client.id).await.is_empty());
    assert_eq!(
        issued_events_of(&s, &s.gateway.id).await.len(),
        handed_out.len(),
        "exactly the tokens handed out were recorded"
    );
    for token in &handed_out {
        assert!(s.is_active(token).await);
    }

    // The answer a client gets, and recovery once recording works again.
    let refused = s.token(&s.client, &[]).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    heal_recording(&s.w.app, backend).await;
    assert_eq!(s.token(&s.client, &[]).await.status(), StatusCode::OK);
}

async fn concurrent_requests_of_several_clients_each_get_exactly_their_limit(backend: Backend) {
    let s = service(backend).await;
    limit(&s, &s.client.id, 5).await;
    limit(&s, &s.gateway.id, 7).await;

    // Interleaved, so batches hold both clients and run past both limits.
    let clients: Vec<&Client> = (0..40)
        .map(|i| if i % 2 == 0 { &s.client } else { &s.gateway })
        .collect();
    let s = &s;
    let requests = clients.iter().map(|client| async move {
        let answer = s.token(client, &[]).await;
        let remaining = answer
            .headers()
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (client.id.clone(), answer.status(), remaining)
    });
    let answers = join_all(requests).await;

    for (client, per_minute) in [(&s.client, 5), (&s.gateway, 7)] {
        let mine: Vec<_> = answers.iter().filter(|(id, ..)| *id == client.id).collect();
        let mut remaining: Vec<String> = mine
            .iter()
            .filter(|(_, status, _)| *status == StatusCode::OK)
            .filter_map(|(.., remaining)| remaining.clone())
            .collect();
        remaining.sort();
        let expected: Vec<String> = (0..per_minute).map(|n| n.to_string()).collect();
        assert_eq!(
            remaining, expected,
            "{}: each token counted once, in turn",
            client.id
        );
        let refused = mine
            .iter()
            .filter(|(_, status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!(refused, 20 - per_minute, "{}: the rest refused", client.id);
        assert_eq!(
            issued_events_of(s, &client.id).await.len(),
            per_minute,
            "{}: only what was handed out is recorded",
            client.id
        );
    }
}

on_both_backends!(
    concurrent_requests_of_several_clients_each_get_exactly_their_limit,
    concurrent_token_requests_are_each_recorded_with_their_event,
    a_batch_that_cannot_be_recorded_hands_out_none_of_its_tokens,
);
