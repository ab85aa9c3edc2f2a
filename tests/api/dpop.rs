//! DPoP (RFC 9449) at the token endpoint: a proof binds the token to the client's key. Proofs are
//! assembled here by hand (header, claims, signature over them), not by the server's JOSE code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) struct ProofKey {
    signing: SigningKey,
}

impl ProofKey {
    pub(crate) fn new() -> Self {
        Self {
            signing: SigningKey::from_bytes(&rand_seed()),
        }
    }

    fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(self.signing.verifying_key().as_bytes())})
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    pub(crate) fn thumbprint(&self) -> String {
        let x = b64(self.signing.verifying_key().as_bytes());
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    /// A compact JWS of `header` and `claims`, signed with this key.
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature.to_bytes()))
    }

    pub(crate) fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.jwk()})
    }
}

fn rand_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&Sha256::digest(uuid::Uuid::new_v4().as_bytes())[..32]);
    seed
}

fn endpoint(s: &Service) -> String {
    s.w.app
        .origin
        .join("/t/acme/oauth/token")
        .unwrap()
        .to_string()
}

pub(crate) fn proof_claims(s: &Service, jti: &str) -> Value {
    json!({"htm": "POST", "htu": endpoint(s), "iat": s.w.app.now_ms() / 1000, "jti": jti})
}

pub(crate) async fn token_with(s: &Service, proofs: &[&str]) -> reqwest::Response {
    let mut request = s
        .http
        .post(s.url("/t/acme/oauth/token"))
        .header("authorization", basic(&s.client.id, &s.client.secret))
        .form(&[("grant_type", "client_credentials")]);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.send().await.unwrap()
}

pub(crate) fn payload_of(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn a_token_requested_with_a_dpop_proof_is_bound_to_its_key(backend: Backend) {
    let s = service(backend).await;
    let key = ProofKey::new();
    let proof = key.sign(&key.header(), &proof_claims(&s, "bind-1"));

    let answer = token_with(&s, &[&proof]).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(payload_of(token)["cnf"]["jkt"], key.thumbprint().as_str());
    let introspected = s.introspect(token).await;
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], key.thumbprint().as_str());

    // Without a proof, a plain bearer token as before.
    let plain: Value = token_with(&s, &[]).await.json().await.unwrap();
    assert_eq!(plain["token_type"], "Bearer");
    let bearer = plain["access_token"].as_str().unwrap();
    assert!(payload_of(bearer).get("cnf").is_none());
    assert_eq!(s.introspect(bearer).await["token_type"], "Bearer");

    let metadata: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server/t/acme"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["EdDSA", "ES256", "RS256", "PS256"])
    );
}

async fn bad_dpop_proofs_are_refused_and_issue_nothing(backend: Backend) {
    let s = service(backend).await;
    let key = ProofKey::new();
    let issued = async || {
        s.w.app
            .events()
            .await
            .iter()
            .filter(|e| e.event_type == "token_issued")
            .count()
    };
    let before = issued().await;
    let claims_with = |field: &str, value: Value| {
        let mut claims = proof_claims(&s, &format!("bad-{field}"));
        claims[field] = value;
        claims
    };
    let mut private_header = key.header();
    private_header["jwk"]["d"] = json!(b64(key.signing.as_bytes()));
    let mut hmac_header = key.header();
    hmac_header["alg"] = json!("HS256");
    let mut untyped = key.header();
    untyped["typ"] = json!("JWT");
    let mut keyless = key.header();
    keyless.as_object_mut().unwrap().remove("jwk");
    let stranger = ProofKey::new();
    let mut foreign_key = key.header();
    foreign_key["jwk"] = stranger.jwk();
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong method",
            key.sign(&key.header(), &claims_with("htm", json!("GET"))),
        ),
        (
            "wrong URL",
            key.sign(
                &key.header(),
                &claims_with("htu", json!("https://elsewhere.example/token")),
            ),
        ),
        (
            "old iat",
            key.sign(
                &key.header(),
                &claims_with("iat", json!(s.w.app.now_ms() / 1000 - 600)),
            ),
        ),
        (
            "no jti",
            key.sign(&key.header(), &claims_with("jti", json!(null))),
        ),
        (
            "private key in jwk",
            key.sign(&private_header, &proof_claims(&s, "private")),
        ),
        ("HMAC", key.sign(&hmac_header, &proof_claims(&s, "hmac"))),
        (
            "not typed dpop+jwt",
            key.sign(&untyped, &proof_claims(&s, "untyped")),
        ),
        ("no jwk", key.sign(&keyless, &proof_claims(&s, "keyless"))),
        (
            "signed by another key",
            key.sign(&foreign_key, &proof_claims(&s, "foreign")),
        ),
        ("garbage", "not.a.proof".to_owned()),
        ("oversized", "e".repeat(8 * 1024)),
    ];
    for (case, proof) in &cases {
        let answer = token_with(&s, &[proof.as_str()]).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{case}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{case}");
    }
    // Two proofs at once, and a replayed one.
    let once = key.sign(&key.header(), &proof_claims(&s, "once"));
    let two = token_with(&s, &[once.as_str(), once.as_str()]).await;
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
    assert_eq!(token_with(&s, &[&once]).await.status(), StatusCode::OK);
    let replayed = token_with(&s, &[&once]).await;
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        issued().await,
        before + 1,
        "only the one good proof got a token"
    );
    let refused =
        s.w.app
            .events()
            .await
            .into_iter()
            .filter(|e| e.event_type == "token_refused" && e.details.contains("invalid_dpop_proof"))
            .count();
    assert_eq!(refused, cases.len() + 1, "each refusal is an event");
}

on_both_backends!(
    a_token_requested_with_a_dpop_proof_is_bound_to_its_key,
    bad_dpop_proofs_are_refused_and_issue_nothing,
);
