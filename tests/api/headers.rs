use reqwest::Response;

use crate::helpers::*;
use crate::on_both_backends;

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn assert_security_headers(response: &Response) {
    let csp = header(response, "content-security-policy").expect("CSP on every response");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(header(response, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(response, "referrer-policy"), Some("no-referrer"));
    assert!(header(response, "x-request-id").is_some_and(|id| id.len() == 32));
}

async fn every_kind_of_response_carries_the_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;

    for path in [
        "/login",
        "/",
        "/healthz",
        "/static/app.css",
        "/no/such/page",
    ] {
        let response = app.get(path).await;
        assert_security_headers(&response);
        assert!(
            header(&response, "strict-transport-security").is_none(),
            "no HSTS on plain http"
        );
    }
    let refused = app.post_form("/logout", &[]).await;
    assert_security_headers(&refused);
}

async fn console_pages_are_never_cached_but_assets_are(backend: Backend) {
    let app = spawn_app(backend).await;

    assert_eq!(
        header(&app.get("/login").await, "cache-control"),
        Some("no-store")
    );
    let css = app.get("/static/app.css").await;
    assert_eq!(header(&css, "content-type"), Some("text/css"));
    assert_eq!(header(&css, "cache-control"), Some("public, max-age=3600"));
}

async fn development_cookie_is_http_only_lax_and_host_wide(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/login").await;

    let cookie = header(&response, "set-cookie").expect("the login page starts a session");
    assert!(cookie.starts_with("tb_session="));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/"));
    assert!(!cookie.contains("Domain="));
    assert!(
        !cookie.contains("Max-Age"),
        "a browser-session cookie; the server enforces expiry"
    );
}

async fn https_deployment_uses_a_host_prefixed_secure_cookie_and_hsts(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.public_url = "https://console.example.com".parse().unwrap();
    })
    .await;

    let response = app.get("/login").await;

    let cookie = header(&response, "set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-tb_session="));
    assert!(cookie.contains("Secure"));
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/"));
    assert!(!cookie.contains("Domain="));
    let hsts = header(&response, "strict-transport-security").unwrap();
    assert!(hsts.contains("max-age=63072000"));
}

on_both_backends!(
    every_kind_of_response_carries_the_security_headers,
    console_pages_are_never_cached_but_assets_are,
    development_cookie_is_http_only_lax_and_host_wide,
    https_deployment_uses_a_host_prefixed_secure_cookie_and_hsts,
);
