//! Behind a load balancer: the client is the address a trusted proxy forwards, never what an
//! untrusted caller claims. Loopback has many addresses, so 127.0.0.2 plays the load balancer and
//! 127.0.0.3 a caller who reaches the server directly.

use std::net::IpAddr;

use reqwest::StatusCode;
use serde_json::json;
use tokenbroker::domain::networks::Networks;
use tokenbroker::web::client_address::{ForwardingHeader, ProxyTrust};

use crate::automation::{Api, key_for};
use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;

const LOAD_BALANCER: &str = "127.0.0.2";
const DIRECT_CALLER: &str = "127.0.0.3";

fn trusting_the_load_balancer(settings: &mut tokenbroker::config::Settings) {
    settings.deployment.proxies = ProxyTrust::new(
        Networks::parse(&[LOAD_BALANCER]).unwrap(),
        ForwardingHeader::XForwardedFor,
    );
    settings.country_header = Some("CF-IPCountry".into());
}

/// A browser whose requests reach the server from `from`, with these headers.
fn browser_at(app: &TestApp, from: &str, headers: &[(&'static str, &str)]) -> Browser {
    let local: IpAddr = from.parse().unwrap();
    Browser::connecting_from(&app.address, &app.origin, local, headers)
}

async fn last_login_event(app: &TestApp) -> tokenbroker::domain::events::EventRecord {
    app.events()
        .await
        .into_iter()
        .find(|e| e.event_type == "login")
        .expect("a login event")
}

async fn the_client_behind_a_trusted_proxy_is_the_right_most_address_it_forwards(backend: Backend) {
    let app = spawn_app_with(backend, trusting_the_load_balancer).await;
    app.with_admin_signed_out().await;
    // The caller wrote the first entry; the load balancer appended the address it saw.
    let via_proxy = browser_at(
        &app,
        LOAD_BALANCER,
        &[
            ("x-forwarded-for", "198.51.100.1, 203.0.113.5"),
            ("cf-ipcountry", "FR"),
        ],
    );

    via_proxy.login(ADMIN_EMAIL, "wrong password").await;

    let event = last_login_event(&app).await;
    assert_eq!(event.outcome, "failure");
    assert_eq!(event.ip.as_deref(), Some("203.0.113.5"));
    assert_eq!(event.country.as_deref(), Some("FR"));
}

async fn forwarding_headers_from_an_untrusted_caller_are_ignored(backend: Backend) {
    let app = spawn_app_with(backend, trusting_the_load_balancer).await;
    app.with_admin_signed_out().await;
    let forger = browser_at(
        &app,
        DIRECT_CALLER,
        &[
            ("x-forwarded-for", "203.0.113.5"),
            ("forwarded", "for=203.0.113.5"),
            ("cf-ipcountry", "FR"),
        ],
    );

    forger.login(ADMIN_EMAIL, "wrong password").await;

    let event = last_login_event(&app).await;
    assert_eq!(event.ip.as_deref(), Some(DIRECT_CALLER));
    assert_eq!(
        event.country, None,
        "a country header counts only when a trusted proxy passed it on"
    );
}

async fn one_client_behind_the_load_balancer_cannot_lock_out_the_others(backend: Backend) {
    let app = spawn_app_with(backend, trusting_the_load_balancer).await;
    app.with_admin_signed_out().await;
    let guesser = browser_at(&app, LOAD_BALANCER, &[("x-forwarded-for", "203.0.113.66")]);
    for n in 0..20 {
        guesser
            .login(&format!("nobody{n}@example.com"), "guess")
            .await;
    }
    let locked = guesser.login("nobody@example.com", "guess").await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the guessing address is locked"
    );

    let colleague = browser_at(&app, LOAD_BALANCER, &[("x-forwarded-for", "203.0.113.7")]);
    assert_eq!(
        colleague.login(ADMIN_EMAIL, "a typo").await.status(),
        StatusCode::UNAUTHORIZED,
        "another client's address is not the locked one"
    );
    assert_redirect_to(
        &colleague.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
}

async fn a_client_allowlist_sees_the_forwarded_address(backend: Backend) {
    let s = service_with(backend, trusting_the_load_balancer).await;
    let api = Api {
        app: &s.w.app,
        key: key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let credential = s.credential_of(&s.client.id).await;
    let changed = api
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/tenants/acme/credentials/{credential}/policy"),
        )
        .json(&json!({"networks": ["203.0.113.0/24"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);

    let token_from = |from: &'static str, forwarded: &'static str| {
        let local: IpAddr = from.parse().unwrap();
        let http = reqwest::Client::builder()
            .local_address(local)
            .build()
            .unwrap();
        let request = http
            .post(s.url("/t/acme/oauth/token"))
            .basic_auth(&s.client.id, Some(&s.client.secret))
            .header("x-forwarded-for", forwarded)
            .form(&[("grant_type", "client_credentials")]);
        async move { request.send().await.unwrap().status() }
    };

    assert_eq!(
        token_from(LOAD_BALANCER, "203.0.113.9").await,
        StatusCode::OK
    );
    assert_eq!(
        token_from(LOAD_BALANCER, "198.51.100.9").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        token_from(DIRECT_CALLER, "203.0.113.9").await,
        StatusCode::UNAUTHORIZED,
        "a caller cannot claim an allowed address"
    );
}

on_both_backends!(
    the_client_behind_a_trusted_proxy_is_the_right_most_address_it_forwards,
    forwarding_headers_from_an_untrusted_caller_are_ignored,
    one_client_behind_the_load_balancer_cannot_lock_out_the_others,
    a_client_allowlist_sees_the_forwarded_address,
);
