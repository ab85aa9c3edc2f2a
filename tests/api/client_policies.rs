//! What a client may do once authenticated: the networks it may call from, its tokens per minute
//! (across instances), whether it must use DPoP — and a tenant that wants server nonces in DPoP
//! proofs. Set in the console and through the API; enforced at the token endpoint.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::automation::{Api, key_for, problem};
use crate::dpop::{ProofKey, payload_of, proof_claims, token_with};
use crate::helpers::*;
use crate::keys::{both_instances_listen, within};
use crate::oauth_kit::*;
use crate::on_both_backends;
use tokenbroker::jobs::Job;

fn admin_api(s: &Service, key: String) -> Api<'_> {
    Api { app: &s.w.app, key }
}

async fn admin_key(s: &Service) -> String {
    key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await
}

async fn set_policy(api: &Api<'_>, credential: &str, body: Value) -> reqwest::Response {
    api.request(
        Method::PATCH,
        &format!("/api/v1/tenants/acme/credentials/{credential}/policy"),
    )
    .json(&body)
    .send()
    .await
    .unwrap()
}

async fn events_of(s: &Service, kind: &str) -> Vec<tokenbroker::domain::events::EventRecord> {
    s.w.app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == kind)
        .collect()
}

async fn alerts_of(s: &Service, detector: &str) -> Vec<String> {
    s.w.app.clock.advance(Duration::from_secs(3));
    s.w.app.run_job(Job::Detect).await;
    tokenbroker::domain::alerts::queue(&s.w.app.core, None, true, None, 50)
        .await
        .unwrap()
        .alerts
        .into_iter()
        .filter(|a| a.detector == detector)
        .map(|a| a.reason)
        .collect()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn a_client_outside_its_networks_is_refused_like_a_wrong_secret(backend: Backend) {
    let s = service(backend).await;
    let credential = s.credential_of(&s.client.id).await;
    let page = format!("/t/acme/credentials/{credential}");
    let html = s.w.support.page_with_form(&page).await;
    assert_eq!(text_of(&html, "#policy-networks").unwrap(), "anywhere");
    assert_eq!(text_of(&html, "#policy-limit").unwrap(), "60");

    // Support limits the client to a network the tests do not call from.
    let saved =
        s.w.support
            .submit(
                &page,
                &format!("{page}/policy"),
                &[
                    ("networks", "10.0.0.0/8\n2001:db8::/32"),
                    ("tokens_per_minute", "60"),
                ],
            )
            .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let html = s.w.support.page_with_form(&page).await;
    let shown = text_of(&html, "#policy-networks").unwrap();
    assert!(
        shown.contains("10.0.0.0/8") && shown.contains("2001:db8::/32"),
        "{shown}"
    );

    let wrong_secret = Client {
        id: s.client.id.clone(),
        secret: format!("{}x", s.client.secret),
    };
    let wrong: Value = s.token(&wrong_secret, &[]).await.json().await.unwrap();
    for minute in 0..3 {
        let outside = s.token(&s.client, &[]).await;
        assert_eq!(
            outside.status(),
            StatusCode::UNAUTHORIZED,
            "minute {minute}"
        );
        let body: Value = outside.json().await.unwrap();
        assert_eq!(body, wrong, "the same answer as a wrong secret");
        s.w.app.clock.advance(Duration::from_secs(61));
    }
    let refusals = events_of(&s, "client_network_refused").await;
    assert_eq!(refusals.len(), 3);
    assert!(refusals.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")
        && e.details.contains(&s.client.id)
        && !e.details.contains(&s.client.secret)));
    let alerts = alerts_of(&s, "client_outside_networks").await;
    assert_eq!(alerts.len(), 1, "one alert for the repeated refusals");
    assert!(alerts[0].contains(&s.client.id));

    // Allowing the tests' own network lets the client in at its very next request.
    let api = admin_api(&s, admin_key(&s).await);
    let changed = set_policy(&api, &credential, json!({"networks": ["127.0.0.1"]})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["networks"], json!(["127.0.0.1/32"]));
    assert_eq!(s.token(&s.client, &[]).await.status(), StatusCode::OK);
    let changes = events_of(&s, "credential_policy_changed").await;
    assert_eq!(changes.len(), 2, "each change is an event");
    assert!(changes.iter().all(|e| e.details.contains("networks")));
}

async fn past_its_limit_a_client_gets_429_with_retry_after_and_ratelimit_headers(backend: Backend) {
    let s = service(backend).await;
    let credential = s.credential_of(&s.client.id).await;
    let api = admin_api(&s, admin_key(&s).await);
    let minted = api.credential_detail(&credential).await;
    assert_eq!(
        minted["policy"],
        json!({"networks": [], "tokens_per_minute": 60, "require_dpop": false}),
        "the defaults at mint"
    );
    assert_eq!(
        set_policy(&api, &credential, json!({"tokens_per_minute": 3}))
            .await
            .status(),
        StatusCode::OK
    );

    for remaining in ["2", "1", "0"] {
        let issued = s.token(&s.client, &[]).await;
        assert_eq!(issued.status(), StatusCode::OK);
        assert_eq!(header(&issued, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&issued, "ratelimit-remaining").as_deref(),
            Some(remaining)
        );
    }
    for _ in 0..3 {
        let refused = s.token(&s.client, &[]).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(
            header(&refused, "ratelimit-remaining").as_deref(),
            Some("0")
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
    }
    let issued = events_of(&s, "token_issued").await;
    let of_client =
        |e: &&tokenbroker::domain::events::EventRecord| e.details.contains(&s.client.id);
    assert_eq!(
        issued.iter().filter(of_client).count(),
        3,
        "nothing issued past the limit"
    );
    assert_eq!(
        events_of(&s, "token_limit_reached").await.len(),
        1,
        "one event per minute, not one per refusal"
    );

    // A new minute, a new budget; a client over its limit minute after minute is an alert.
    for _ in 0..2 {
        s.w.app.clock.advance(Duration::from_secs(61));
        let fresh = s.token(&s.client, &[]).await;
        assert_eq!(fresh.status(), StatusCode::OK);
        assert_eq!(header(&fresh, "ratelimit-remaining").as_deref(), Some("2"));
        for _ in 0..3 {
            s.token(&s.client, &[]).await;
        }
    }
    assert_eq!(events_of(&s, "token_limit_reached").await.len(), 3);
    let alerts = alerts_of(&s, "issuance_limit_abuse").await;
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].contains(&s.client.id));
    // Other clients are not affected.
    assert_eq!(
        s.token(&s.gateway, &[]).await.status(),
        StatusCode::OK,
        "the limit is the client's own"
    );
}

async fn the_issuance_limit_is_counted_across_instances(backend: Backend) {
    let s = service(backend).await;
    let other = s.w.app.spawn_sibling().await;
    let credential = s.credential_of(&s.client.id).await;
    let api = admin_api(&s, admin_key(&s).await);
    set_policy(&api, &credential, json!({"tokens_per_minute": 4})).await;
    let on_other = |form: Vec<(&'static str, &'static str)>| {
        s.http
            .post(other.url("/t/acme/oauth/token"))
            .header("authorization", basic(&s.client.id, &s.client.secret))
            .form(&form)
            .send()
    };
    let grant = vec![("grant_type", "client_credentials")];
    for _ in 0..2 {
        assert_eq!(s.token(&s.client, &[]).await.status(), StatusCode::OK);
        assert_eq!(
            on_other(grant.clone()).await.unwrap().status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        s.token(&s.client, &[]).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        on_other(grant).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn a_client_that_must_use_dpop_gets_no_bearer_token(backend: Backend) {
    let s = service(backend).await;
    let credential = s.credential_of(&s.client.id).await;
    let page = format!("/t/acme/credentials/{credential}");
    let saved =
        s.w.support
            .submit(
                &page,
                &format!("{page}/policy"),
                &[
                    ("networks", ""),
                    ("tokens_per_minute", "60"),
                    ("require_dpop", "on"),
                ],
            )
            .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let html = s.w.support.page_with_form(&page).await;
    assert!(
        text_of(&html, "#policy-dpop")
            .unwrap()
            .starts_with("required")
    );

    let bearer = s.token(&s.client, &[]).await;
    assert_eq!(bearer.status(), StatusCode::BAD_REQUEST);
    let body: Value = bearer.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");

    let key = ProofKey::new();
    let proof = key.sign(&key.header(), &proof_claims(&s, "required-1"));
    let bound = token_with(&s, &[&proof]).await;
    assert_eq!(bound.status(), StatusCode::OK);
    let body: Value = bound.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(payload_of(token)["cnf"]["jkt"], key.thumbprint().as_str());
}

async fn a_tenant_requiring_dpop_nonces_hands_them_out_and_accepts_only_current_ones(
    backend: Backend,
) {
    let s = service(backend).await;
    // The tenant admin turns server nonces on, on the signing-keys page.
    let saved =
        s.w.tenant_admin
            .submit("/t/acme/keys", "/t/acme/dpop-nonce", &[("required", "on")])
            .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let html = s.w.tenant_admin.page_with_form("/t/acme/keys").await;
    assert!(
        text_of(&html, "#dpop-nonce-state")
            .unwrap()
            .contains("required")
    );

    let key = ProofKey::new();
    let without = token_with(&s, &[&key.sign(&key.header(), &proof_claims(&s, "n-1"))]).await;
    assert_eq!(without.status(), StatusCode::BAD_REQUEST);
    let nonce = header(&without, "dpop-nonce").expect("a nonce to use");
    let body: Value = without.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");

    let with_nonce = |jti: &str, nonce: &str| {
        let mut claims = proof_claims(&s, jti);
        claims["nonce"] = json!(nonce);
        key.sign(&key.header(), &claims)
    };
    let accepted = token_with(&s, &[&with_nonce("n-2", &nonce)]).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert!(
        header(&accepted, "dpop-nonce").is_some(),
        "a fresh nonce with every token"
    );
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");

    let forged = token_with(
        &s,
        &[&with_nonce("n-3", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");

    // Eleven minutes on, the nonce is stale: a new one is handed out.
    s.w.app.clock.advance(Duration::from_secs(11 * 60));
    let stale = token_with(&s, &[&with_nonce("n-4", &nonce)]).await;
    assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
    let newer = header(&stale, "dpop-nonce").unwrap();
    assert_ne!(newer, nonce);
    assert_eq!(
        token_with(&s, &[&with_nonce("n-5", &newer)]).await.status(),
        StatusCode::OK
    );
    // Bearer clients are not asked for a nonce.
    assert_eq!(s.token(&s.client, &[]).await.status(), StatusCode::OK);

    // Through the API, back off: a proof without a nonce is fine again.
    let api = admin_api(&s, admin_key(&s).await);
    let off = api
        .request(Method::PUT, "/api/v1/tenants/acme/dpop-nonce")
        .json(&json!({"required": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::OK);
    assert_eq!(
        token_with(&s, &[&key.sign(&key.header(), &proof_claims(&s, "n-6"))])
            .await
            .status(),
        StatusCode::OK
    );
    let changes = events_of(&s, "tenant_updated").await;
    assert_eq!(
        changes
            .iter()
            .filter(|e| e.details.contains("dpop_nonce"))
            .count(),
        2
    );
}

async fn bad_policy_input_is_refused_and_changes_nothing(backend: Backend) {
    let s = service(backend).await;
    let credential = s.credential_of(&s.client.id).await;
    let api = admin_api(&s, admin_key(&s).await);
    let cases = [
        (json!({"networks": ["10.0.0.0/33"]}), Some("networks")),
        (json!({"networks": ["not a network"]}), Some("networks")),
        (json!({"tokens_per_minute": 0}), Some("tokens_per_minute")),
        (
            json!({"tokens_per_minute": 5_000_000}),
            Some("tokens_per_minute"),
        ),
        (json!({"tokens_per_minute": "ten"}), None),
        (json!({"colour": "red"}), Some("colour")),
        (json!({}), None),
    ];
    for (body, field) in cases {
        let answer = problem(
            set_policy(&api, &credential, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(answer["field"].as_str(), field, "{body}");
    }
    // API tokens have no such rules.
    let tokens = api
        .get("/api/v1/tenants/acme/credentials?kind=api_token")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let api_token = tokens["items"][0]["id"].as_str().unwrap().to_owned();
    problem(
        set_policy(&api, &api_token, json!({"require_dpop": true})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // In the console: a clear page, nothing saved.
    let page = format!("/t/acme/credentials/{credential}");
    let refused =
        s.w.support
            .submit(
                &page,
                &format!("{page}/policy"),
                &[("networks", "nonsense"), ("tokens_per_minute", "60")],
            )
            .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("is not a network"));

    assert_eq!(
        api.credential_detail(&credential).await["policy"],
        json!({"networks": [], "tokens_per_minute": 60, "require_dpop": false})
    );
    assert!(events_of(&s, "credential_policy_changed").await.is_empty());
    assert_eq!(s.token(&s.client, &[]).await.status(), StatusCode::OK);
}

/// A change made on one instance applies on another at its next request (PostgreSQL NOTIFY).
#[tokio::test]
async fn a_policy_change_reaches_another_postgres_instance_at_once() {
    let s = service(Backend::Postgres).await;
    let other = s.w.app.spawn_sibling().await;
    let database = s.w.app.postgres_database_name().unwrap();
    let admin = sqlx::PgPool::connect(&s.w.app.database_url).await.unwrap();
    both_instances_listen(&admin, &database).await;
    let credential = s.credential_of(&s.client.id).await;
    let on_other = async || {
        s.http
            .post(other.url("/t/acme/oauth/token"))
            .header("authorization", basic(&s.client.id, &s.client.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .status()
    };
    // The other instance has the policy in memory.
    assert_eq!(on_other().await, StatusCode::OK);

    let api = admin_api(&s, admin_key(&s).await);
    set_policy(&api, &credential, json!({"networks": ["10.0.0.0/8"]})).await;
    let took = within(Duration::from_secs(5), async || {
        on_other().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took.is_some(), "the other instance refuses the client");
    admin.close().await;
}

on_both_backends!(
    a_client_outside_its_networks_is_refused_like_a_wrong_secret,
    past_its_limit_a_client_gets_429_with_retry_after_and_ratelimit_headers,
    the_issuance_limit_is_counted_across_instances,
    a_client_that_must_use_dpop_gets_no_bearer_token,
    a_tenant_requiring_dpop_nonces_hands_them_out_and_accepts_only_current_ones,
    bad_policy_input_is_refused_and_changes_nothing,
);
