//! private_key_jwt (RFC 7523): clients authenticate with assertions signed by a registered public
//! key. Assertions are made here with an independent JOSE implementation (jwt-simple), never the
//! server's own code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_simple::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::automation::{Api, key_for};
use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client's key pair, of one of the three supported kinds.
enum TestKey {
    Ed(Ed25519KeyPair),
    Ec(ES256KeyPair),
    Rsa(Box<RS256KeyPair>),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    fn ed() -> Self {
        Self::Ed(Ed25519KeyPair::generate())
    }

    fn ec() -> Self {
        Self::Ec(ES256KeyPair::generate())
    }

    fn rsa() -> Self {
        Self::Rsa(Box::new(RS256KeyPair::generate(2048).unwrap()))
    }

    /// The public half as a JWK, built from the raw key material.
    fn jwk(&self) -> Value {
        match self {
            Self::Ed(kp) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&kp.public_key().to_bytes())})
            }
            Self::Ec(kp) => {
                let point = kp.public_key().public_key().to_bytes_uncompressed();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Self::Rsa(kp) => {
                let parts = kp.public_key().to_components();
                json!({"kty": "RSA", "n": b64(&parts.n), "e": b64(&parts.e)})
            }
        }
    }

    fn sign(&self, claims: JWTClaims<NoCustomClaims>) -> String {
        match self {
            Self::Ed(kp) => kp.sign(claims),
            Self::Ec(kp) => kp.sign(claims),
            Self::Rsa(kp) => kp.sign(claims),
        }
        .unwrap()
    }
}

/// Claims as a well-behaved client makes them, timed by the service's clock.
fn claims(s: &Service, iss: &str, sub: &str, aud: &str, jti: &str) -> JWTClaims<NoCustomClaims> {
    let now = u64::try_from(s.w.app.now_ms() / 1000).unwrap();
    let mut claims = Claims::create(Duration::from_secs(60))
        .with_issuer(iss)
        .with_subject(sub)
        .with_audience(aud)
        .with_jwt_id(jti);
    claims.issued_at = Some(Duration::from_secs(now));
    claims.expires_at = Some(Duration::from_secs(now + 60));
    claims.invalid_before = None;
    claims
}

/// The token endpoint as the tenant's metadata names it (the audience a client puts in `aud`).
fn token_endpoint(s: &Service) -> String {
    s.w.app
        .origin
        .join("/t/acme/oauth/token")
        .unwrap()
        .to_string()
}

async fn with_assertion(s: &Service, assertion: &str) -> reqwest::Response {
    assertion_to(s, s.url("/t/acme/oauth/token"), assertion).await
}

/// A token request authenticated by `assertion`, sent to `endpoint` (any instance's).
async fn assertion_to(s: &Service, endpoint: String, assertion: &str) -> reqwest::Response {
    s.http
        .post(endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

/// A fresh, correct assertion of the plain client, signed by `key`.
fn assertion(s: &Service, key: &TestKey, jti: &str) -> String {
    let endpoint = token_endpoint(s);
    key.sign(claims(s, &s.client.id, &s.client.id, &endpoint, jti))
}

/// Support registers `key` for the plain client on its credential page.
async fn register_in_console(s: &Service, key: &TestKey) -> reqwest::Response {
    let credential = s.credential_of(&s.client.id).await;
    let page = format!("/t/acme/credentials/{credential}");
    s.w.support
        .submit(
            &page,
            &format!("{page}/keys"),
            &[("jwk", &key.jwk().to_string())],
        )
        .await
}

/// Removes the credential's oldest key through the automation API.
async fn remove_first_key(api: &Api<'_>, credential: &str) -> StatusCode {
    let detail = api.credential_detail(credential).await;
    let key = detail["keys"][0]["id"].as_str().unwrap();
    api.request(
        reqwest::Method::DELETE,
        &format!("/api/v1/tenants/acme/credentials/{credential}/keys/{key}"),
    )
    .send()
    .await
    .unwrap()
    .status()
}

async fn invalid_client(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

async fn a_client_authenticates_with_assertions_signed_by_its_registered_keys(backend: Backend) {
    // Keys first: an RSA key takes a while to make, and no connection should sit idle meanwhile.
    let (ed, ec, rsa) = (TestKey::ed(), TestKey::ec(), TestKey::rsa());
    let s = service(backend).await;
    let credential = s.credential_of(&s.client.id).await;
    // Before its key is registered, an assertion gets nowhere.
    invalid_client(with_assertion(&s, &assertion(&s, &ed, "before")).await).await;

    let registered = register_in_console(&s, &ed).await;
    assert_eq!(registered.status(), StatusCode::SEE_OTHER);
    let page =
        s.w.support
            .page_with_form(&format!("/t/acme/credentials/{credential}"))
            .await;
    assert!(text_of(&page, "#keys").unwrap().contains("EdDSA"));

    let issued = with_assertion(&s, &assertion(&s, &ed, "first")).await;
    assert_eq!(issued.status(), StatusCode::OK);
    let body: Value = issued.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(s.is_active(body["access_token"].as_str().unwrap()).await);

    // By key: a P-256 key; a third is refused; the first removed, an RSA key takes its place.
    let api = Api {
        app: &s.w.app,
        key: key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let keys = format!("/api/v1/tenants/acme/credentials/{credential}/keys");
    let added = api.post(&keys, json!({ "jwk": ec.jwk() })).await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["algorithm"], "ES256");
    let third = api.post(&keys, json!({ "jwk": rsa.jwk() })).await;
    assert_eq!(third.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let ec_works = with_assertion(&s, &assertion(&s, &ec, "ec")).await;
    assert_eq!(ec_works.status(), StatusCode::OK);

    assert_eq!(
        remove_first_key(&api, &credential).await,
        StatusCode::NO_CONTENT
    );
    invalid_client(with_assertion(&s, &assertion(&s, &ed, "after-removal")).await).await;
    assert_eq!(
        api.post(&keys, json!({ "jwk": rsa.jwk() })).await.status(),
        StatusCode::CREATED
    );
    let rsa_works = with_assertion(&s, &assertion(&s, &rsa, "rsa")).await;
    assert_eq!(rsa_works.status(), StatusCode::OK);

    let metadata: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server/t/acme"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        metadata["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert!(
        metadata["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("EdDSA"))
    );
    let events = s.w.app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "credential_key_added")
    );
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "credential_key_removed")
    );
}

async fn bad_assertions_are_refused_as_invalid_client_and_change_nothing(backend: Backend) {
    let s = service(backend).await;
    let ed = TestKey::ed();
    assert_eq!(
        register_in_console(&s, &ed).await.status(),
        StatusCode::SEE_OTHER
    );
    let id = s.client.id.clone();
    let issued_before =
        s.w.app
            .events()
            .await
            .iter()
            .filter(|e| e.event_type == "token_issued")
            .count();

    // Failed client authentications are throttled after ten within a quarter of an hour, so the
    // cases come in two rounds with the clock moved on in between.
    let mut refused_cases = 0;
    for round in [first_round(&s, &ed), second_round(&s, &ed)] {
        for (case, assertion) in &round {
            let answer = s
                .http
                .post(s.url("/t/acme/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", id.as_str()),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{case}");
            let body: Value = answer.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client", "{case}");
            refused_cases += 1;
        }
        s.w.app
            .clock
            .advance(std::time::Duration::from_secs(16 * 60));
    }
    // A replayed assertion: accepted once, then refused.
    let once = assertion(&s, &ed, "only-once");
    assert_eq!(with_assertion(&s, &once).await.status(), StatusCode::OK);
    invalid_client(with_assertion(&s, &once).await).await;
    // A secret and an assertion together are one method too many.
    let both = s
        .post_basic(
            "/t/acme/oauth/token",
            &s.client,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion(&s, &ed, "both").as_str()),
            ],
        )
        .await;
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);

    let events = s.w.app.events().await;
    let issued = events
        .iter()
        .filter(|e| e.event_type == "token_issued")
        .count();
    assert_eq!(
        issued,
        issued_before + 1,
        "only the one good assertion got a token"
    );
    let refusals: Vec<&str> = events
        .iter()
        .filter(|e| e.event_type == "client_auth_failed" && e.details.contains("private_key_jwt"))
        .map(|e| e.details.as_str())
        .collect();
    assert_eq!(
        refusals.len(),
        refused_cases + 1,
        "every refusal is recorded"
    );
    assert!(refusals.iter().any(|d| d.contains("assertion_replayed")));
    assert!(refusals.iter().any(|d| d.contains("assertion_audience")));
    assert!(
        refusals.iter().all(|d| !d.contains("eyJ")),
        "no assertion in an event"
    );
}

/// Forged and malformed assertions, made now.
fn first_round(s: &Service, ed: &TestKey) -> Vec<(&'static str, String)> {
    let (id, endpoint) = (s.client.id.as_str(), token_endpoint(s));
    let header = b64(json!({ "alg": "none", "typ": "JWT" })
        .to_string()
        .as_bytes());
    let payload = serde_json::to_string(&claims(s, id, id, &endpoint, "none")).unwrap();
    let hmac = HS256Key::generate()
        .authenticate(claims(s, id, id, &endpoint, "hmac"))
        .unwrap();
    vec![
        ("alg none", format!("{header}.{}.", b64(payload.as_bytes()))),
        ("HMAC", hmac),
        (
            "unregistered key",
            TestKey::ed().sign(claims(s, id, id, &endpoint, "stranger")),
        ),
        (
            "wrong audience",
            ed.sign(claims(s, id, id, "https://elsewhere.example/token", "aud")),
        ),
        (
            "wrong issuer",
            ed.sign(claims(s, "tbc_someone_else", id, &endpoint, "iss")),
        ),
        (
            "wrong subject",
            ed.sign(claims(s, id, "tbc_someone_else", &endpoint, "sub")),
        ),
    ]
}

/// Assertions with bad times or claims, and ones that are not assertions at all, made now.
fn second_round(s: &Service, ed: &TestKey) -> Vec<(&'static str, String)> {
    let (id, endpoint) = (s.client.id.as_str(), token_endpoint(s));
    let now = u64::try_from(s.w.app.now_ms() / 1000).unwrap();
    let mut expired = claims(s, id, id, &endpoint, "expired");
    expired.issued_at = Some(Duration::from_secs(now - 600));
    expired.expires_at = Some(Duration::from_secs(now - 300));
    let mut far = claims(s, id, id, &endpoint, "far");
    far.expires_at = Some(Duration::from_secs(now + 3600));
    let mut no_jti = claims(s, id, id, &endpoint, "x");
    no_jti.jwt_id = None;
    vec![
        ("expired", ed.sign(expired)),
        ("far-future expiry", ed.sign(far)),
        ("no jti", ed.sign(no_jti)),
        ("garbage", "not.a.jwt".to_owned()),
        ("16 KB", "e".repeat(16 * 1024)),
    ]
}

async fn a_client_may_drop_its_secret_once_it_has_a_key(backend: Backend) {
    let s = service(backend).await;
    let ed = TestKey::ed();
    let credential = s.credential_of(&s.client.id).await;
    let api = Api {
        app: &s.w.app,
        key: key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let detail = format!("/api/v1/tenants/acme/credentials/{credential}");
    let secret_id = api.get(&detail).await.json::<Value>().await.unwrap()["secrets"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let retire = format!("{detail}/secrets/{secret_id}");
    let last = api
        .request(reqwest::Method::DELETE, &retire)
        .send()
        .await
        .unwrap();
    assert_eq!(
        last.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "its only way in"
    );
    assert_eq!(
        api.post(&format!("{detail}/keys"), json!({ "jwk": ed.jwk() }))
            .await
            .status(),
        StatusCode::CREATED
    );
    let retired = api
        .request(reqwest::Method::DELETE, &retire)
        .send()
        .await
        .unwrap();
    assert_eq!(retired.status(), StatusCode::NO_CONTENT);
    invalid_client(s.token(&s.client, &[]).await).await;
    assert_eq!(
        with_assertion(&s, &assertion(&s, &ed, "keys-only"))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn public_keys_with_private_parts_or_weak_sizes_are_refused(backend: Backend) {
    // A 1024-bit modulus (jwt-simple will not make one): half of a 2048-bit one. Made before any
    // request, so no connection sits idle while it is.
    let mut weak = RS256KeyPair::generate(2048)
        .unwrap()
        .public_key()
        .to_components();
    weak.n.truncate(128);
    let s = service(backend).await;
    let credential = s.credential_of(&s.client.id).await;
    let api = Api {
        app: &s.w.app,
        key: key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let keys = format!("/api/v1/tenants/acme/credentials/{credential}/keys");
    let ed = Ed25519KeyPair::generate();
    let mut private = TestKey::Ed(ed.clone()).jwk();
    private["d"] = json!(b64(&ed.to_bytes()[..32]));
    let refused = [
        private,
        json!({"kty": "oct", "k": "c2VjcmV0"}),
        json!({"kty": "RSA", "n": b64(&weak.n), "e": b64(&weak.e)}),
        json!({"kty": "EC", "crv": "P-256", "x": b64(&[1; 32]), "y": b64(&[2; 32])}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": "not base64url!"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&ed.public_key().to_bytes()), "alg": "ES256"}),
    ];
    for jwk in refused {
        let answer = api.post(&keys, json!({ "jwk": jwk })).await;
        assert_eq!(answer.status(), StatusCode::UNPROCESSABLE_ENTITY, "{jwk}");
    }
    let detail = api.credential_detail(&credential).await;
    assert!(detail["keys"].as_array().unwrap().is_empty());
}

on_both_backends!(
    a_client_authenticates_with_assertions_signed_by_its_registered_keys,
    bad_assertions_are_refused_as_invalid_client_and_change_nothing,
    a_client_may_drop_its_secret_once_it_has_a_key,
    public_keys_with_private_parts_or_weak_sizes_are_refused,
);

/// A PostgreSQL service whose client has an Ed25519 key registered in the console, and a second
/// instance on the same database.
async fn client_with_key_and_sibling() -> (Service, TestKey, TestApp) {
    let s = service(Backend::Postgres).await;
    let ed = TestKey::ed();
    assert_eq!(
        register_in_console(&s, &ed).await.status(),
        StatusCode::SEE_OTHER
    );
    let sibling = s.w.app.spawn_sibling().await;
    (s, ed, sibling)
}

/// Two instances on one PostgreSQL database: an assertion accepted by one is a replay on the other.
#[tokio::test]
async fn an_assertion_is_accepted_once_across_instances() {
    let (s, ed, sibling) = client_with_key_and_sibling().await;
    let once = assertion(&s, &ed, "across-instances");
    assert_eq!(with_assertion(&s, &once).await.status(), StatusCode::OK);
    invalid_client(assertion_to(&s, sibling.url("/t/acme/oauth/token"), &once).await).await;
}

/// Two instances on one PostgreSQL database: a key removed on one stops authenticating on the
/// other, which had the client and its keys in memory, as soon as it hears of the change.
#[tokio::test]
async fn a_removed_key_stops_working_on_another_postgres_instance() {
    let (s, ed, sibling) = client_with_key_and_sibling().await;
    let database = s.w.app.postgres_database_name().unwrap();
    let admin = sqlx::PgPool::connect(&s.w.app.database_url).await.unwrap();
    crate::keys::both_instances_listen(&admin, &database).await;
    let mut sent = 0;
    let mut on_sibling = async || {
        sent += 1;
        let signed = assertion(&s, &ed, &format!("sibling-{sent}"));
        assertion_to(&s, sibling.url("/t/acme/oauth/token"), &signed)
            .await
            .status()
    };
    // The sibling now knows the client and its key.
    assert_eq!(on_sibling().await, StatusCode::OK);

    let credential = s.credential_of(&s.client.id).await;
    let api = Api {
        app: &s.w.app,
        key: key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    assert_eq!(
        remove_first_key(&api, &credential).await,
        StatusCode::NO_CONTENT
    );
    let took = crate::keys::within(std::time::Duration::from_secs(5), async || {
        on_sibling().await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(took.is_some(), "the sibling refuses the removed key");
    admin.close().await;
}
