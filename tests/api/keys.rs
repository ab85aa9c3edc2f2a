//! Signing keys over time: pre-publication, rotation with overlap, retirement, the schedule across
//! instances, the two-person emergency replacement (through the approvals queue), notices, and revocations reaching another
//! instance through PostgreSQL notifications.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenbroker::domain::keys::{self, RotationCause};

use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;
use crate::partners::mails_to;
use crate::staff_kit::*;

async fn states(s: &Service) -> Vec<(String, String)> {
    s.w.app
        .core
        .store
        .signing_keys(s.tenant().await)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state.as_str().to_owned()))
        .collect()
}

fn kid_in(state: &[(String, String)], wanted: &str) -> String {
    state
        .iter()
        .find(|(_, s)| s == wanted)
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| panic!("no {wanted} key in {state:?}"))
}

async fn rotation_overlaps_old_tokens_and_retires_their_key_after(backend: Backend) {
    let s = service(backend).await;
    let core = &s.w.app.core;
    let tenant = s.tenant().await;
    let before = s.access_token().await;
    let first = states(&s).await;
    let (old, next) = (kid_in(&first, "active"), kid_in(&first, "next"));
    assert_eq!(s.published_kids().await.len(), 2);

    // The next key was published moments ago: no gateway can have it yet, so it may not sign.
    let refused =
        s.w.app
            .submit("/t/acme/keys", "/t/acme/keys/rotate", &[])
            .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(
        text_of(&refused.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("can take over from")
    );

    // Past the pre-publication window (twice the JWKS max-age), rotation goes through.
    s.w.app.clock.advance(Duration::from_secs(11 * 60));
    let old_signer = keys::tenant_keys(core, tenant).await.unwrap();
    assert!(
        keys::rotate(core, tenant, RotationCause::Scheduled)
            .await
            .unwrap()
    );
    let after = states(&s).await;
    assert_eq!(kid_in(&after, "retiring"), old);
    assert_eq!(kid_in(&after, "active"), next);
    let newest = kid_in(&after, "next");
    let published = s.published_kids().await;
    assert_eq!(
        published.len(),
        3,
        "retiring, active and next are all published"
    );
    assert!(published.contains(&old) && published.contains(&next) && published.contains(&newest));

    let (header, _) = parts(&s.access_token().await);
    assert_eq!(
        header["kid"],
        next.as_str(),
        "new tokens are signed by the new key"
    );
    assert!(
        s.is_active(&before).await,
        "tokens of the old key verify through the overlap"
    );

    // Once every token it signed has expired, the old key retires and leaves the JWKS.
    s.w.app.clock.advance(Duration::from_secs(15 * 60 + 61));
    keys::run_schedule(core).await.unwrap();
    let retired = states(&s).await;
    assert!(retired.contains(&(old.clone(), "retired".into())));
    assert!(!s.published_kids().await.contains(&old));
    // Even a token it signs "now" with a long life fails: the key is gone.
    let signer = old_signer.signer.as_ref().unwrap();
    let (_, mut claims) = parts(&before);
    let now = s.w.app.now_ms() / 1000;
    claims["iat"] = json!(now);
    claims["nbf"] = json!(now);
    claims["exp"] = json!(now + 600);
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(signer.kid.clone());
    let late = jsonwebtoken::encode(&header, &claims, &signer.key.encoding_key().unwrap()).unwrap();
    assert!(!s.is_active(&late).await);

    let page = s.w.app.page_with_form("/t/acme/keys").await;
    assert!(page.contains(&format!("data-kid=\"{old}\" data-state=\"retired\"")));
    assert!(
        page.contains("may sign from"),
        "the console shows when the next key may sign"
    );
    let events: Vec<String> =
        s.w.app
            .events()
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect();
    for wanted in [
        "key_retiring",
        "key_activated",
        "key_published",
        "key_retired",
    ] {
        assert!(events.iter().any(|e| e == wanted), "{wanted} recorded");
    }
    let notices = mails_to(&s.w.app, "ta@example.com").await;
    assert!(notices.iter().any(|m| m.contains("signing key rotated")));
    assert!(notices.iter().any(|m| m.contains("signing key retired")));
}

async fn scheduled_rotation_happens_once_however_many_instances_run_it(backend: Backend) {
    let mut s = service(backend).await;
    // Credentials that outlive the 30-day rotation period.
    s.client = minted_client(&s.w, &s.grant_page, "client", "90").await;
    s.gateway = minted_client(&s.w, &s.grant_page, "resource_server", "90").await;
    let sibling = s.w.app.spawn_sibling().await;
    let tenant = s.tenant().await;
    // A tenant's keys are made on first use.
    s.access_token().await;
    s.w.app.clock.advance(Duration::from_secs(30 * 86_400 + 60));
    let (a, b) = tokio::join!(
        keys::run_schedule(&s.w.app.core),
        keys::run_schedule(&sibling.core)
    );
    a.unwrap();
    b.unwrap();
    let keys = s.w.app.core.store.signing_keys(tenant).await.unwrap();
    let count = |state: &str| keys.iter().filter(|k| k.state.as_str() == state).count();
    assert_eq!(
        (count("active"), count("next"), count("retiring")),
        (1, 1, 1),
        "{keys:?}"
    );
    let rotations =
        s.w.app
            .events()
            .await
            .into_iter()
            .filter(|e| e.event_type == "key_retiring")
            .count();
    assert_eq!(rotations, 1, "exactly one rotation");
    // And the sibling signs with the new key after it hears of it.
    let token = s.access_token().await;
    assert!(s.is_active(&token).await);
}

async fn emergency_replacement_needs_a_second_superadmin(backend: Backend) {
    let s = service(backend).await;
    let token = s.access_token().await;
    let compromised = kid_in(&states(&s).await, "active");
    let security = staff_member(&s.w.app, "sec@example.com", "security", None).await;
    let ask = async || {
        s.w.app
            .submit(
                "/t/acme/keys",
                "/t/acme/keys/emergency",
                &[
                    ("kid", compromised.as_str()),
                    ("reason", "private key found on a laptop"),
                ],
            )
            .await
    };
    // Security staff may not approve a key replacement: with no second superadmin, the page
    // says so instead of offering the form, and a request is refused.
    let page = s.w.app.page_with_form("/t/acme/keys").await;
    assert!(text_of(&page, "#no-second-person").is_some());
    let alone = ask().await;
    assert_eq!(alone.status(), StatusCode::CONFLICT);
    assert!(
        text_of(&alone.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("Nobody else can approve this")
    );

    let second = staff_member(&s.w.app, "root2@example.com", "superadmin", None).await;
    let id = requested_approval(&ask().await);
    assert!(s.is_active(&token).await, "nothing changes before approval");
    let again = ask().await;
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "one request at a time"
    );

    // The requester cannot approve; security staff may not at all.
    let own = approve(&s.w.app, &id).await;
    assert_eq!(own.status(), StatusCode::FORBIDDEN);
    assert!(
        text_of(&own.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("cannot decide your own request")
    );
    let by_security = approve(&security, &id).await;
    assert_eq!(by_security.status(), StatusCode::FORBIDDEN);
    assert!(
        text_of(&by_security.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("Only a superadmin")
    );
    assert!(s.is_active(&token).await);

    let page = second.page_with_form("/t/acme/keys").await;
    assert!(page.contains("private key found on a laptop"));
    assert!(text_of(&page, "#pending-emergency").is_some());
    assert_redirect_to(
        &approve(&second, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    assert!(
        !s.is_active(&token).await,
        "tokens of the dropped key fail at once"
    );
    assert!(!s.published_kids().await.contains(&compromised));
    let fresh = s.access_token().await;
    assert!(s.is_active(&fresh).await, "the next key took over");
    let after = states(&s).await;
    assert_eq!(after.iter().filter(|(_, st)| st == "next").count(), 1);
    let twice = approve(&second, &id).await;
    assert_eq!(twice.status(), StatusCode::CONFLICT, "it executes once");

    // Gateways that verify locally hear of it through the feed.
    let feed: Value = s
        .http
        .get(s.url("/t/acme/revocations"))
        .header("authorization", basic(&s.gateway.id, &s.gateway.secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        feed["revocations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "key" && e["kid"] == compromised.as_str())
    );
    for recipient in ["ta@example.com", "sec@example.com"] {
        let mails = mails_to(&s.w.app, recipient).await;
        assert!(
            mails.iter().any(|m| m.contains("dropped in an emergency")),
            "{recipient}"
        );
    }
    // Only those who may approve it were asked to.
    assert!(
        mails_to(&s.w.app, "root2@example.com")
            .await
            .iter()
            .any(|m| m.contains("Approval needed"))
    );
    assert!(
        !mails_to(&s.w.app, "sec@example.com")
            .await
            .iter()
            .any(|m| m.contains("Approval needed"))
    );
    let events: Vec<String> =
        s.w.app
            .events()
            .await
            .into_iter()
            .map(|e| e.event_type)
            .collect();
    for expected in [
        "approval_requested",
        "approval_approved",
        "approval_executed",
        "key_retired",
    ] {
        assert!(events.contains(&expected.to_owned()), "{expected}");
    }
}

async fn private_keys_are_sealed_at_rest(backend: Backend) {
    let s = service(backend).await;
    s.access_token().await;
    let keys =
        s.w.app
            .core
            .store
            .signing_keys(s.tenant().await)
            .await
            .unwrap();
    assert_eq!(keys.len(), 2);
    for key in &keys {
        let jwk: Value = serde_json::from_str(&key.public_jwk).unwrap();
        assert!(jwk.get("d").is_none());
        assert!(!key.sealed_private.is_empty());
        // Another key-encryption key cannot open it.
        let other = keys::Kek::from_base64("b3RoZXIta2VrLW90aGVyLWtlay1vdGhlci1rZWstISE=").unwrap();
        let algorithm = keys::KeyAlgorithm::parse(&key.algorithm).unwrap();
        let tenant = s.tenant().await;
        assert!(
            keys::material::signer(
                &other,
                tenant,
                &key.kid,
                algorithm,
                &key.sealed_private,
                other.id()
            )
            .is_err()
        );
    }
}

on_both_backends!(
    rotation_overlaps_old_tokens_and_retires_their_key_after,
    scheduled_rotation_happens_once_however_many_instances_run_it,
    emergency_replacement_needs_a_second_superadmin,
    private_keys_are_sealed_at_rest,
);

/// Polls `check` until it holds or `limit` passes; returns how long it took.
pub(crate) async fn within(
    limit: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

pub(crate) async fn introspect_on(app: &TestApp, s: &Service, token: &str) -> bool {
    let response = s
        .http
        .post(app.url("/t/acme/oauth/introspect"))
        .header("authorization", basic(&s.gateway.id, &s.gateway.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    response.json::<Value>().await.unwrap()["active"] == true
}

async fn revoke_on_one_instance_reaches_the_other(s: &Service, other: &TestApp) {
    let token = s.access_token().await;
    assert!(
        introspect_on(other, s, &token).await,
        "cached as active on the other instance"
    );
    let revoked = s
        .post_basic(
            "/t/acme/oauth/revoke",
            &s.client,
            &[("token", token.as_str())],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let took = within(Duration::from_secs(1), async || {
        !introspect_on(other, s, &token).await
    })
    .await;
    assert!(
        took.is_some(),
        "the other instance answers inactive within a second"
    );
    // For the issue note (run with --nocapture): how long the revocation took to arrive.
    eprintln!("revocation visible on the other instance after {took:?}");
}

/// The backends of the instances' notification listeners on the test database that have run
/// their `LISTEN` (connected is not enough: a notification before it would be missed).
async fn listener_pids(admin: &sqlx::PgPool, database: &str) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'tokenbroker-listener' \
         AND datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(database)
    .fetch_all(admin)
    .await
    .unwrap()
}

/// Waits (bounded) until both instances' listeners are connected to PostgreSQL.
pub(crate) async fn both_instances_listen(admin: &sqlx::PgPool, database: &str) {
    assert!(
        within(Duration::from_secs(5), async || listener_pids(
            admin, database
        )
        .await
        .len()
            == 2)
        .await
        .is_some(),
        "both instances listen"
    );
}

#[tokio::test]
async fn a_revocation_reaches_another_postgres_instance_within_a_second() {
    let s = service(Backend::Postgres).await;
    let other = s.w.app.spawn_sibling().await;
    let database = s.w.app.postgres_database_name().unwrap();
    let admin = sqlx::PgPool::connect(&s.w.app.database_url).await.unwrap();
    both_instances_listen(&admin, &database).await;
    revoke_on_one_instance_reaches_the_other(&s, &other).await;
    admin.close().await;
}

#[tokio::test]
async fn a_revocation_still_arrives_after_the_notification_connection_drops() {
    let s = service(Backend::Postgres).await;
    let other = s.w.app.spawn_sibling().await;
    let database = s.w.app.postgres_database_name().unwrap();
    let admin = sqlx::PgPool::connect(&s.w.app.database_url).await.unwrap();
    let listeners = async || listener_pids(&admin, &database).await;
    both_instances_listen(&admin, &database).await;
    let dropped = listeners().await;
    for pid in &dropped {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&admin)
            .await
            .unwrap();
    }
    let reconnected = within(Duration::from_secs(5), async || {
        let now = listeners().await;
        now.len() == 2 && now.iter().all(|pid| !dropped.contains(pid))
    })
    .await;
    assert!(
        reconnected.is_some(),
        "both listeners reconnect on new connections"
    );
    revoke_on_one_instance_reaches_the_other(&s, &other).await;
    admin.close().await;
}

/// How many backends of the test database wait for a lock.
async fn waiting_for_locks(admin: &sqlx::PgPool, database: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
    )
    .bind(database)
    .fetch_one(admin)
    .await
    .unwrap()
}

/// A scheduled rotation on one instance and the approval of an emergency drop on another are both
/// planned from the same keys; the rotation commits first (the test holds the active key's row
/// until both wait for it, so the order is certain). The drop then finds its key no longer active:
/// it changes nothing and says so (409), the request stays pending, and approving it again drops
/// the key as the keys now are.
#[tokio::test]
async fn an_emergency_drop_overtaken_by_a_rotation_changes_nothing_and_can_be_approved_again() {
    let s = service(Backend::Postgres).await;
    let core = &s.w.app.core;
    let tenant = s.tenant().await;
    s.access_token().await;
    let before = states(&s).await;
    let (compromised, next) = (kid_in(&before, "active"), kid_in(&before, "next"));
    let second = staff_member(&s.w.app, "root2@example.com", "superadmin", None).await;
    let id = requested_approval(
        &s.w.app
            .submit(
                "/t/acme/keys",
                "/t/acme/keys/emergency",
                &[("kid", compromised.as_str()), ("reason", "key on a laptop")],
            )
            .await,
    );
    // The next key may sign (past its pre-publication window), so the schedule may rotate.
    s.w.app.clock.advance(Duration::from_secs(11 * 60));

    let database = s.w.app.postgres_database_name().unwrap();
    let admin = sqlx::PgPool::connect(&s.w.app.database_url).await.unwrap();
    let mut holder = admin.begin().await.unwrap();
    sqlx::query("SELECT kid FROM signing_keys WHERE kid = $1 FOR UPDATE")
        .bind(&compromised)
        .fetch_one(&mut *holder)
        .await
        .unwrap();
    let waiters = async |count: i64| {
        within(Duration::from_secs(5), async || {
            waiting_for_locks(&admin, &database).await == count
        })
        .await
        .is_some()
    };
    let rotating = keys::rotate(core, tenant, RotationCause::Scheduled);
    let approving = async {
        assert!(waiters(1).await, "the rotation waits for the key");
        approve(&second, &id).await
    };
    let releasing = async {
        assert!(waiters(2).await, "the drop waits behind the rotation");
        holder.commit().await.unwrap();
    };
    let (rotated, answer, ()) = tokio::join!(rotating, approving, releasing);
    assert!(rotated.unwrap(), "the rotation went through");
    assert_eq!(answer.status(), StatusCode::CONFLICT);
    let said = text_of(&answer.text().await.unwrap(), ".alert").unwrap();
    assert!(said.contains("signing keys changed meanwhile"), "{said}");

    let rotated = states(&s).await;
    assert_eq!(kid_in(&rotated, "retiring"), compromised, "{rotated:?}");
    assert_eq!(kid_in(&rotated, "active"), next);
    assert_eq!(rotated.iter().filter(|(_, st)| st == "next").count(), 1);
    assert!(
        !rotated.iter().any(|(_, st)| st == "retired"),
        "nothing was dropped: {rotated:?}"
    );

    assert_redirect_to(
        &approve(&second, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    let dropped = states(&s).await;
    assert!(dropped.contains(&(compromised.clone(), "retired".into())));
    assert_eq!(kid_in(&dropped, "active"), next, "the signing key stays");
    assert_eq!(dropped.iter().filter(|(_, st)| st == "next").count(), 1);
    assert!(!s.published_kids().await.contains(&compromised));
    admin.close().await;
}
