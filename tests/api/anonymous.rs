//! Visitors without a session: opening the pages anyone may open writes no session row (a flood of
//! anonymous GETs of /login used to leave one row per request), and the forms on those pages are
//! still protected against cross-site posts, by a signed, expiring double-submit token.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::cookie::CookieStore;

use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

/// Each page is opened this many times by new browsers, and as often again by one browser.
const VISITS: usize = 20;
const REFUSED: &str = "This form has expired or was sent from another site";

async fn session_rows(app: &TestApp) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.database_url).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

/// Opens `path` with new browsers and with one browser again and again, like a crowd and a
/// reloading visitor; no answer may be a server error.
async fn visit(app: &TestApp, path: &str) {
    let regular = app.new_browser();
    for _ in 0..VISITS {
        for browser in [&app.new_browser(), &regular] {
            let status = browser.get(path).await.status();
            assert!(!status.is_server_error(), "{path} answered {status}");
        }
    }
}

/// The value of the cookie `name` this browser holds.
fn cookie(browser: &Browser, name: &str) -> Option<String> {
    let url = browser.address.parse().unwrap();
    let header = browser.jar.cookies(&url)?;
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

async fn opening_the_pages_anyone_may_open_writes_no_session_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let setup = app
        .setup_link
        .clone()
        .unwrap()
        .trim_start_matches(&app.address)
        .to_owned();
    // A fresh installation: only the first-run page and the sign-in page exist for anyone.
    visit(&app, &setup).await;
    visit(&app, "/login").await;
    assert_eq!(session_rows(&app).await, 0);

    app.create_admin().await;
    invite_to_acme(&app, "new@example.com", "New Person").await;
    let invitation = invitation_link(&app, "new@example.com").await;
    assert_redirect_to(&app.logout().await, "/login?signed_out=1");
    let before = session_rows(&app).await;

    for path in [
        "/login",
        "/login?signed_out=1",
        invitation.as_str(),
        "/recover?token=unknown",
        "/t/acme/request-access",
        "/t/acme/request-access/confirm?token=unknown",
        "/retrieve?token=unknown",
        "/",
        "/account/security",
        "/no-such-page",
        "/t/nowhere/request-access",
    ] {
        visit(&app, path).await;
    }

    assert_eq!(session_rows(&app).await, before);
}

async fn signing_in_creates_exactly_one_session_row(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    visit(&app, "/login").await;
    let before = session_rows(&app).await;

    app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    assert_eq!(session_rows(&app).await, before + 1);
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
}

async fn a_missing_forged_foreign_or_expired_form_token_is_refused_and_changes_nothing(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    let visitor = app.new_browser();
    let token = csrf_token(&visitor.get("/login").await.text().await.unwrap());
    let foreign = csrf_token(&app.new_browser().get("/login").await.text().await.unwrap());
    let forged = {
        // The same nonce and expiry, another signature.
        let (signed, _) = token.rsplit_once('.').unwrap();
        format!("{signed}.{}", "A".repeat(43))
    };
    let rows = session_rows(&app).await;
    let events = app.events().await.len();
    let login = |token: &str| {
        vec![
            ("csrf_token", token.to_owned()),
            ("email", ADMIN_EMAIL.to_owned()),
            ("password", ADMIN_PASSWORD.to_owned()),
        ]
    };
    let post = |browser: &Browser, form: Vec<(&'static str, String)>| {
        let request = browser.client.post(browser.url("/login")).form(&form);
        async move { request.send().await.unwrap() }
    };

    let mut refused = vec![
        (
            "missing",
            post(
                &visitor,
                login("")
                    .into_iter()
                    .filter(|(name, _)| *name != "csrf_token")
                    .collect(),
            )
            .await,
        ),
        ("forged", post(&visitor, login(&forged)).await),
        ("another browser's", post(&visitor, login(&foreign)).await),
        (
            "without its cookie",
            post(&app.new_browser(), login(&token)).await,
        ),
    ];
    app.clock.advance(Duration::from_secs(2 * 60 * 60 + 1));
    refused.push(("expired", post(&visitor, login(&token)).await));

    for (case, response) in refused {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case} token");
        assert!(
            response.text().await.unwrap().contains(REFUSED),
            "{case} token: the page says why"
        );
    }
    assert_eq!(session_rows(&app).await, rows, "no session was created");
    assert_eq!(app.events().await.len(), events, "no sign-in was attempted");

    // Reloading the page brings a fresh token, and signing in works again.
    assert_redirect_to(
        &visitor.login(ADMIN_EMAIL, ADMIN_PASSWORD).await,
        "/login/passkey",
    );
    assert_eq!(session_rows(&app).await, rows + 1);
}

async fn a_form_shown_by_one_instance_is_accepted_by_another(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    let sibling = app.spawn_sibling().await;
    let visitor = app.new_browser();
    let token = csrf_token(&visitor.get("/login").await.text().await.unwrap());

    // Cookies belong to the host, not the port: the visitor's go to the sibling too.
    let response = visitor
        .client
        .post(sibling.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();

    assert_redirect_to(&response, "/login/passkey");
}

/// The software authenticator of these tests cannot answer a discoverable ceremony (the Chromium
/// tests in `browser.rs` sign in without a password for real); what is checked here is that the
/// ceremony lives in the browser, signed, and can be used once.
async fn a_passwordless_ceremony_is_held_by_the_browser_and_used_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    let rows = session_rows(&app).await;
    let html = app.page_with_form("/login").await;
    let csrf = csrf_token(&html);
    assert!(passkey_options(&html).contains("challenge"));
    assert_eq!(session_rows(&app).await, rows, "the page wrote nothing");
    let ceremony = cookie(&app, "tb_passkey").expect("the ceremony travels in a cookie");
    let form_cookie = cookie(&app, "tb_form").unwrap();
    let answer = |browser: &Browser| {
        let request = browser
            .client
            .post(browser.url("/login/passkey-only"))
            .form(&[("csrf_token", csrf.as_str()), ("credential", "{}")]);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            response.text().await.unwrap()
        }
    };

    // The first answer reaches the passkey check (and fails it: it is no passkey's answer)…
    assert!(answer(&app).await.contains("could not be read"));
    // …and uses the ceremony up, for whoever copied the cookies too.
    let replayer = app.new_browser();
    let url = app.address.parse().unwrap();
    replayer
        .jar
        .add_cookie_str(&format!("tb_passkey={ceremony}"), &url);
    replayer
        .jar
        .add_cookie_str(&format!("tb_form={form_cookie}"), &url);
    assert!(
        answer(&replayer)
            .await
            .contains("did not start on this page")
    );
    assert_eq!(session_rows(&app).await, rows);
}

on_both_backends!(
    opening_the_pages_anyone_may_open_writes_no_session_row,
    signing_in_creates_exactly_one_session_row,
    a_missing_forged_foreign_or_expired_form_token_is_refused_and_changes_nothing,
    a_form_shown_by_one_instance_is_accepted_by_another,
    a_passwordless_ceremony_is_held_by_the_browser_and_used_once,
);
