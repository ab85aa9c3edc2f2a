//! The token service over HTTP, as RFC clients and gateways see it: the client-credentials grant
//! (both client authentication methods), introspection, revocation, the revocation feed, discovery
//! documents, and every kind of bad input answered with the RFC error or `active: false`.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenbroker::domain::keys;

use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;
use crate::staff_kit::*;

async fn client_credentials_issue_an_rfc9068_token_that_introspects_active(backend: Backend) {
    let s = service(backend).await;
    let response = s.token(&s.client, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900, "15 minutes by default");
    assert_eq!(body["scope"], "payments:read payments:write");
    assert!(body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap();

    let (header, claims) = parts(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let issuer = format!("{}t/acme", s.w.app.origin);
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], format!("{issuer}/api").as_str());
    assert_eq!(claims["sub"], s.client.id.as_str());
    assert_eq!(claims["client_id"], s.client.id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(
        s.published_kids()
            .await
            .contains(&header["kid"].as_str().unwrap().to_owned())
    );

    let answer = s.introspect(token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], s.client.id.as_str());
    assert_eq!(answer["scope"], "payments:read payments:write");
    assert_eq!(answer["jti"], claims["jti"]);
    assert_eq!(answer["iss"], issuer.as_str());

    // client_secret_post works the same.
    let posted = s
        .http
        .post(s.url("/t/acme/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s.client.id.as_str()),
            ("client_secret", s.client.secret.as_str()),
            ("scope", "payments:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let body: Value = posted.json().await.unwrap();
    assert_eq!(body["scope"], "payments:read");

    let events = s.w.app.events().await;
    let issued: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "token_issued")
        .collect();
    assert_eq!(issued.len(), 2);
    assert!(issued.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")
        && e.details.contains(&s.client.id)
        && !e.details.contains(&s.client.secret)
        && !e.details.contains(token)));
}

async fn scopes_are_limited_to_the_grant(backend: Backend) {
    let s = service(backend).await;
    let narrowed = s.token(&s.client, &[("scope", "payments:write")]).await;
    let body: Value = narrowed.json().await.unwrap();
    assert_eq!(body["scope"], "payments:write");
    for asked in ["payments:admin", "payments:read everything"] {
        let refused = s.token(&s.client, &[("scope", asked)]).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_scope");
    }
    assert!(
        s.w.app
            .events()
            .await
            .iter()
            .any(|e| e.event_type == "token_refused"
                && e.details.contains("invalid_scope")
                && e.details.contains(&s.client.id))
    );
}

async fn a_token_never_outlives_its_credential(backend: Backend) {
    let s = service(backend).await;
    let short = minted_client(&s.w, &s.grant_page, "client", "1").await;
    s.w.app.clock.advance(Duration::from_secs(86_400 - 120));
    let response = s.token(&short, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["expires_in"].as_i64().unwrap() <= 120);
    s.w.app.clock.advance(Duration::from_secs(121));
    assert_eq!(
        s.token(&short, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn token_request_errors_follow_rfc6749(backend: Backend) {
    let s = service(backend).await;
    let error_of = |response: reqwest::Response| async move {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["error"].as_str().unwrap().to_owned())
    };
    let wrong = Client {
        id: s.client.id.clone(),
        secret: s.gateway.secret.clone(),
    };
    let response = s.token(&wrong, &[]).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"tokenbroker\""
    );
    assert_eq!(
        error_of(response).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let unknown = Client {
        id: "tbc_live_nobody".into(),
        secret: s.client.secret.clone(),
    };
    assert_eq!(
        error_of(s.token(&unknown, &[]).await).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    assert_eq!(
        error_of(s.token(&s.client, &[("grant_type", "password")]).await).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
    assert_eq!(
        error_of(s.post_basic("/t/acme/oauth/token", &s.client, &[]).await).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let both = s
        .http
        .post(s.url("/t/acme/oauth/token"))
        .header("authorization", basic(&s.client.id, &s.client.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s.client.id.as_str()),
            ("client_secret", s.client.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(both).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let twice = s
        .http
        .post(s.url("/t/acme/oauth/token"))
        .header("authorization", basic(&s.client.id, &s.client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(twice).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let no_auth = s
        .http
        .post(s.url("/t/acme/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(no_auth).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let nowhere = s
        .http
        .post(s.url("/t/nowhere/oauth/token"))
        .header("authorization", basic(&s.client.id, &s.client.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    assert!(
        nowhere.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );

    let failures = s.w.app.events().await;
    let failures: Vec<_> = failures
        .iter()
        .filter(|e| e.event_type == "client_auth_failed")
        .collect();
    assert!(failures.len() >= 2);
    assert!(failures.iter().all(|e| e.ip.is_some()
        && !e.details.contains(&s.client.secret)
        && !e.details.contains(&s.gateway.secret)));
}

async fn failed_client_authentication_is_throttled(backend: Backend) {
    let s = service(backend).await;
    let wrong = Client {
        id: s.client.id.clone(),
        secret: s.gateway.secret.clone(),
    };
    for _ in 0..10 {
        assert_eq!(
            s.token(&wrong, &[]).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = s.token(&wrong, &[]).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        locked.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let body: Value = locked.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // The lock ends with its time.
    s.w.app.clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(s.token(&s.client, &[]).await.status(), StatusCode::OK);
}

async fn a_locked_client_id_or_address_never_refuses_the_right_secret(backend: Backend) {
    let s = service(backend).await;
    let wrong = Client {
        id: s.client.id.clone(),
        secret: s.gateway.secret.clone(),
    };
    for _ in 0..10 {
        s.token(&wrong, &[]).await;
    }
    for n in 0..50 {
        let stranger = Client {
            id: format!("tbc_stranger{n}"),
            secret: s.gateway.secret.clone(),
        };
        s.token(&stranger, &[]).await;
    }
    assert_eq!(
        s.token(&wrong, &[]).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the client id at this address, and the address, are locked"
    );

    // The partner's real secret, never used on this instance before, from the same address.
    assert_eq!(s.token(&s.client, &[]).await.status(), StatusCode::OK);
    let sibling = s.w.app.spawn_sibling().await;
    let from_sibling = s
        .http
        .post(sibling.url("/t/acme/oauth/token"))
        .basic_auth(&s.client.id, Some(&s.client.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        from_sibling.status(),
        StatusCode::OK,
        "nor on another instance"
    );
    assert_eq!(
        s.token(&wrong, &[]).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "guesses stay locked out"
    );
}

async fn revoking_the_credential_or_suspending_the_tenant_stops_its_tokens_at_once(
    backend: Backend,
) {
    let s = service(backend).await;
    let token = s.access_token().await;
    assert!(s.is_active(&token).await);
    assert!(s.is_active(&s.api_token).await);

    let credential = s.introspect(&token).await;
    let jti = credential["jti"].as_str().unwrap().to_owned();
    let tenant = s.tenant().await;
    let record =
        s.w.app
            .core
            .store
            .access_token(tenant, &jti)
            .await
            .unwrap()
            .unwrap();
    let revoked =
        s.w.support
            .submit(
                "/t/acme/credentials",
                &format!("/t/acme/credentials/{}/revoke", record.credential_id),
                &[("reason", "leaked in a log")],
            )
            .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert!(!s.is_active(&token).await, "revoked: inactive at once");
    assert_eq!(
        s.token(&s.client, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(
        s.w.app
            .events()
            .await
            .iter()
            .any(|e| e.event_type == "revoked_token_presented"
                && e.details.contains(&record.credential_id)),
        "presenting a revoked token is recorded"
    );

    let second = staff_member(&s.w.app, "root2@example.com", "superadmin", None).await;
    let id = requested_approval(
        &s.w.app
            .submit(
                "/t/acme/settings",
                "/t/acme/suspend",
                &[("reason", "contract ended"), ("confirm_slug", "acme")],
            )
            .await,
    );
    assert_eq!(approve(&second, &id).await.status(), StatusCode::SEE_OTHER);
    // The tenant's own gateway cannot authenticate any more, and its tokens verify nowhere.
    let gateway = s
        .post_basic(
            "/t/acme/oauth/introspect",
            &s.gateway,
            &[("token", s.api_token.as_str())],
        )
        .await;
    assert_eq!(gateway.status(), StatusCode::UNAUTHORIZED);
    assert!(
        tokenbroker::domain::partners::verify(core_of(&s), &s.api_token, None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.token(&s.gateway, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

fn core_of(s: &Service) -> &tokenbroker::domain::Core {
    &s.w.app.core
}

async fn introspection_tells_nothing_about_bad_tokens(backend: Backend) {
    let s = service(backend).await;
    let core = &s.w.app.core;
    let tenant = s.tenant().await;
    let signer = keys::tenant_keys(core, tenant).await.unwrap();
    let signer = signer.signer.as_ref().unwrap();
    let ours = signer.key.encoding_key().unwrap();
    let good = s.access_token().await;
    let (_, claims) = parts(&good);
    let forged = |header: Header, claims: &Value, key: &EncodingKey| {
        jsonwebtoken::encode(&header, claims, key).unwrap()
    };
    let typed = |alg: Algorithm, kid: &str| {
        let mut header = Header::new(alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.into());
        header
    };
    let mut cases: Vec<(&str, String)> = Vec::new();

    let mut later = claims.clone();
    later["nbf"] = json!(claims["nbf"].as_i64().unwrap() + 3600);
    later["iat"] = later["nbf"].clone();
    later["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    cases.push((
        "not yet valid",
        forged(typed(Algorithm::EdDSA, &signer.kid), &later, &ours),
    ));

    let mut unknown = claims.clone();
    unknown["jti"] = json!("never-issued");
    cases.push((
        "signed by us, never issued",
        forged(typed(Algorithm::EdDSA, &signer.kid), &unknown, &ours),
    ));

    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    cases.push(("alg none", format!("{header}.{body}.")));

    let jwks = s.jwks().await;
    let public_x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    cases.push((
        "HS256 keyed with the public key",
        forged(
            typed(Algorithm::HS256, &signer.kid),
            &claims,
            &EncodingKey::from_secret(public_x.as_bytes()),
        ),
    ));
    cases.push((
        "unknown kid",
        forged(typed(Algorithm::EdDSA, "no-such-kid"), &claims, &ours),
    ));
    for extra in ["jku", "x5u"] {
        let mut header = typed(Algorithm::EdDSA, &signer.kid);
        if extra == "jku" {
            header.jku = Some("https://attacker.example/jwks.json".into());
        } else {
            header.x5u = Some("https://attacker.example/cert.pem".into());
        }
        cases.push(("key named by the token", forged(header, &claims, &ours)));
    }
    let mut embedded = typed(Algorithm::EdDSA, &signer.kid);
    embedded.jwk = serde_json::from_value(jwks["keys"][0].clone()).ok();
    cases.push(("embedded jwk", forged(embedded, &claims, &ours)));
    let mut untyped = typed(Algorithm::EdDSA, &signer.kid);
    untyped.typ = Some("JWT".into());
    cases.push((
        "not typed as an access token",
        forged(untyped, &claims, &ours),
    ));
    cases.push(("truncated signature", good[..good.len() - 10].to_owned()));
    cases.push(("16 KB of garbage", "x".repeat(16 * 1024)));
    cases.push(("opaque garbage", "tbk_live_notarealtoken".into()));
    cases.push(("a client secret", s.client.secret.clone()));

    // A token of another tenant: signed with that tenant's own key.
    create_tenant(&s.w.app, "Globex", "globex", "#654321", None).await;
    let globex =
        s.w.app
            .core
            .store
            .tenant_by_slug("globex")
            .await
            .unwrap()
            .unwrap();
    let theirs = keys::tenant_keys(core, globex.id).await.unwrap();
    let theirs = theirs.signer.as_ref().unwrap();
    cases.push((
        "another tenant's token",
        forged(
            typed(Algorithm::EdDSA, &theirs.kid),
            &claims,
            &theirs.key.encoding_key().unwrap(),
        ),
    ));

    for (what, token) in &cases {
        assert!(!s.is_active(token).await, "{what} must be inactive");
    }
    s.w.app.clock.advance(Duration::from_secs(16 * 60));
    assert!(!s.is_active(&good).await, "expired");

    let events = s.w.app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "unknown_key_presented" && e.details.contains("unknown_key")),
        "a token naming a key we never had is recorded"
    );

    // Non-UTF-8 input is a request error, not a crash.
    let garbage = s
        .http
        .post(s.url("/t/acme/oauth/introspect"))
        .header("authorization", basic(&s.gateway.id, &s.gateway.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=%FF%FE%FD")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        garbage.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let raw = s
        .http
        .post(s.url("/t/acme/oauth/introspect"))
        .header("authorization", basic(&s.gateway.id, &s.gateway.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b't', b'o', b'k', b'e', b'n', b'=', 0xff, 0xc3])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
}

async fn only_resource_servers_may_introspect(backend: Backend) {
    let s = service(backend).await;
    let token = s.access_token().await;
    let refused = s
        .post_basic(
            "/t/acme/oauth/introspect",
            &s.client,
            &[("token", token.as_str())],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    let missing = s
        .post_basic("/t/acme/oauth/introspect", &s.gateway, &[])
        .await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // Opaque API tokens introspect too.
    let answer = s.introspect(&s.api_token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "payments:read payments:write");
}

async fn revocation_follows_rfc7009(backend: Backend) {
    let s = service(backend).await;
    let token = s.access_token().await;
    let other = s.access_token().await;
    let revoke = |client: &Client, token: &str| {
        let token = token.to_owned();
        let client = Client {
            id: client.id.clone(),
            secret: client.secret.clone(),
        };
        let s = &s;
        async move {
            s.post_basic(
                "/t/acme/oauth/revoke",
                &client,
                &[
                    ("token", token.as_str()),
                    ("token_type_hint", "access_token"),
                ],
            )
            .await
        }
    };
    // Only the client the token was issued to may revoke it.
    let foreign = revoke(&s.gateway, &token).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(s.is_active(&token).await);

    let done = revoke(&s.client, &token).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(done.headers()["cache-control"], "no-store");
    assert!(!s.is_active(&token).await);
    assert!(s.is_active(&other).await, "only that token");
    assert_eq!(
        revoke(&s.client, &token).await.status(),
        StatusCode::OK,
        "idempotent"
    );
    assert_eq!(
        revoke(&s.client, "not-a-token").await.status(),
        StatusCode::OK,
        "unknown: 200"
    );
    let api = revoke(&s.client, &s.api_token).await;
    assert_eq!(api.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        api.json::<Value>().await.unwrap()["error"],
        "unsupported_token_type"
    );
    let revocations = s.w.app.events().await;
    let revocations: Vec<_> = revocations
        .iter()
        .filter(|e| e.event_type == "token_revoked")
        .collect();
    assert_eq!(revocations.len(), 1);
}

async fn the_revocation_feed_pages_by_cursor(backend: Backend) {
    let s = service(backend).await;
    let feed = |since: Option<&str>, client: &Client| {
        let url = match since {
            Some(c) => s.url(&format!("/t/acme/revocations?since={c}")),
            None => s.url("/t/acme/revocations"),
        };
        s.http
            .get(url)
            .header("authorization", basic(&client.id, &client.secret))
            .send()
    };
    let start: Value = feed(None, &s.gateway).await.unwrap().json().await.unwrap();
    assert_eq!(start["revocations"], json!([]));
    let cursor = start["next_cursor"].as_str().unwrap().to_owned();

    let token = s.access_token().await;
    let (_, claims) = parts(&token);
    s.post_basic(
        "/t/acme/oauth/revoke",
        &s.client,
        &[("token", token.as_str())],
    )
    .await;
    let page: Value = feed(Some(&cursor), &s.gateway)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = page["revocations"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["type"], "token");
    assert_eq!(entries[0]["jti"], claims["jti"]);
    assert_eq!(entries[0]["client_id"], s.client.id.as_str());
    assert_eq!(page["has_more"], false);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let empty: Value = feed(Some(&next), &s.gateway)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(empty["revocations"], json!([]));
    assert_eq!(empty["next_cursor"], next.as_str());

    for bad in ["-1", "abc", "1e9", "%27%20OR%201=1"] {
        let response = feed(Some(bad), &s.gateway).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "cursor {bad}");
    }
    assert_eq!(
        feed(None, &s.client).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let anonymous = s
        .http
        .get(s.url("/t/acme/revocations"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn discovery_documents_follow_rfc8414_and_rfc7517(backend: Backend) {
    let s = service(backend).await;
    let metadata = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server/t/acme"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), StatusCode::OK);
    let metadata: Value = metadata.json().await.unwrap();
    let issuer = format!("{}t/acme", s.w.app.origin);
    assert_eq!(metadata["issuer"], issuer.as_str());
    for (field, path) in [
        ("token_endpoint", "/oauth/token"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("revocation_feed_endpoint", "/revocations"),
    ] {
        assert_eq!(
            metadata[field],
            format!("{issuer}{path}").as_str(),
            "{field}"
        );
    }
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["client_credentials"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(
        metadata["token_endpoint_auth_signing_alg_values_supported"],
        json!(["EdDSA", "ES256", "RS256", "PS256"]),
        "asymmetric only: never none or an HMAC"
    );
    let scopes: HashSet<&str> = metadata["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(scopes, HashSet::from(["payments:read", "payments:write"]));
    let (_, claims) = parts(&s.access_token().await);
    assert_eq!(
        claims["iss"], metadata["issuer"],
        "tokens name the advertised issuer"
    );

    let jwks = s
        .http
        .get(s.url("/t/acme/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let cache = jwks.headers()["cache-control"].to_str().unwrap().to_owned();
    assert_eq!(
        cache, "public, max-age=300",
        "shorter than the 10-minute pre-publication window"
    );
    let jwks: Value = jwks.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "active and next");
    for key in keys {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "EdDSA");
        assert!(key.get("d").is_none(), "never a private part");
    }
    let missing = s
        .http
        .get(s.url("/t/nowhere/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// An independent implementation (jwt-simple) verifies our tokens from the published JWKS alone.
async fn issued_tokens_verify_with_an_independent_jwt_library(backend: Backend) {
    use jwt_simple::prelude::*;
    for algorithm in ["EdDSA", "ES256"] {
        let s = service_with(backend, |settings| {
            settings.key_policy.algorithm = keys::KeyAlgorithm::parse(algorithm).unwrap();
        })
        .await;
        let token = s.access_token().await;
        let (header, _) = parts(&token);
        let jwks = s.jwks().await;
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .expect("the signing key is published")
            .clone();
        let decode = |field: &str| {
            URL_SAFE_NO_PAD
                .decode(jwk[field].as_str().unwrap())
                .unwrap()
        };
        let issuer = format!("{}t/acme", s.w.app.origin);
        let options = VerificationOptions {
            required_signature_type: Some("at+jwt".into()),
            allowed_issuers: Some(HashSet::from([issuer.clone()])),
            allowed_audiences: Some(HashSet::from([format!("{issuer}/api")])),
            ..Default::default()
        };
        let claims = if algorithm == "EdDSA" {
            Ed25519PublicKey::from_bytes(&decode("x"))
                .unwrap()
                .verify_token::<NoCustomClaims>(&token, Some(options))
        } else {
            let mut point = vec![0x04];
            point.extend(decode("x"));
            point.extend(decode("y"));
            ES256PublicKey::from_bytes(&point)
                .unwrap()
                .verify_token::<NoCustomClaims>(&token, Some(options))
        }
        .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert_eq!(claims.subject.as_deref(), Some(s.client.id.as_str()));
        assert!(s.is_active(&token).await);
    }
}

on_both_backends!(
    client_credentials_issue_an_rfc9068_token_that_introspects_active,
    scopes_are_limited_to_the_grant,
    a_token_never_outlives_its_credential,
    token_request_errors_follow_rfc6749,
    failed_client_authentication_is_throttled,
    a_locked_client_id_or_address_never_refuses_the_right_secret,
    revoking_the_credential_or_suspending_the_tenant_stops_its_tokens_at_once,
    introspection_tells_nothing_about_bad_tokens,
    only_resource_servers_may_introspect,
    revocation_follows_rfc7009,
    the_revocation_feed_pages_by_cursor,
    discovery_documents_follow_rfc8414_and_rfc7517,
    issued_tokens_verify_with_an_independent_jwt_library,
);
