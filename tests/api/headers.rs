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

/// Every `Set-Cookie` of a response, by cookie name.
fn set_cookies(response: &Response) -> Vec<(String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let line = v.to_str().unwrap().to_owned();
            (line.split('=').next().unwrap().to_owned(), line)
        })
        .collect()
}

fn assert_host_wide_http_only_lax(cookie: &str, secure: bool) {
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Domain="), "{cookie}");
    assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
}

/// First-run setup through the link, with the form cookie sent by hand (over plain http a client
/// keeps no `Secure` cookie, and the https test talks plain http to the server behind its proxy).
async fn complete_setup(app: &TestApp, form_cookie: &str, csrf: &str) -> Response {
    let link = app.setup_link.clone().unwrap();
    let token = link.split("token=").nth(1).unwrap().to_owned();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/setup"))
        .header("cookie", form_cookie)
        .form(&[
            ("csrf_token", csrf),
            ("token", token.as_str()),
            ("email", ADMIN_EMAIL),
            ("display_name", ADMIN_NAME),
            ("password", ADMIN_PASSWORD),
            ("password_confirm", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap()
}

async fn development_cookies_are_http_only_lax_and_host_wide(backend: Backend) {
    let app = spawn_app(backend).await;
    let setup_path = app
        .setup_link
        .clone()
        .unwrap()
        .trim_start_matches(&app.address)
        .to_owned();

    let page = app.get(&setup_path).await;
    let cookies = set_cookies(&page);
    let names: Vec<&str> = cookies.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["tb_form"], "an anonymous page starts no session");
    let (_, form_cookie) = &cookies[0];
    assert_host_wide_http_only_lax(form_cookie, false);
    let form_pair = form_cookie.split(';').next().unwrap().to_owned();
    let csrf = csrf_token(&page.text().await.unwrap());

    let signed_in = complete_setup(&app, &form_pair, &csrf).await;

    assert_redirect_to(&signed_in, "/mfa/enrol");
    let session = set_cookies(&signed_in)
        .into_iter()
        .find(|(name, _)| name == "tb_session")
        .expect("signing in starts the session")
        .1;
    assert_host_wide_http_only_lax(&session, false);
    assert!(
        !session.contains("Max-Age"),
        "a browser-session cookie; the server enforces expiry"
    );
    let login = app.new_browser().get("/login").await;
    for (name, cookie) in set_cookies(&login) {
        assert!(["tb_form", "tb_passkey"].contains(&name.as_str()), "{name}");
        assert_host_wide_http_only_lax(&cookie, false);
    }
}

async fn https_deployment_uses_host_prefixed_secure_cookies_and_hsts(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.public_url = "https://console.example.com".parse().unwrap();
    })
    .await;

    let login = app.get("/login").await;
    let hsts = header(&login, "strict-transport-security").unwrap();
    assert!(hsts.contains("max-age=63072000"));
    let names: Vec<String> = set_cookies(&login).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["__Host-tb_passkey", "__Host-tb_form"]);
    for (_, cookie) in set_cookies(&login) {
        assert_host_wide_http_only_lax(&cookie, true);
    }
    let form_pair = set_cookies(&login)[1]
        .1
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = csrf_token(&login.text().await.unwrap());

    let signed_in = complete_setup(&app, &form_pair, &csrf).await;

    assert_redirect_to(&signed_in, "/mfa/enrol");
    let (_, session) = set_cookies(&signed_in)
        .into_iter()
        .find(|(name, _)| name == "__Host-tb_session")
        .expect("signing in starts the session");
    assert_host_wide_http_only_lax(&session, true);
}

on_both_backends!(
    every_kind_of_response_carries_the_security_headers,
    console_pages_are_never_cached_but_assets_are,
    development_cookies_are_http_only_lax_and_host_wide,
    https_deployment_uses_host_prefixed_secure_cookies_and_hsts,
);
