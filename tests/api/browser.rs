//! End to end in headless Debian Chromium, driven over the DevTools protocol. Passkeys come from
//! Chromium's virtual authenticator (one per tab), so the page's own script runs every ceremony.

use std::time::{Duration, Instant};

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::network::{Headers, SetExtraHttpHeadersParams};
use chromiumoxide::cdp::browser_protocol::web_authn::{
    AddCredentialParams, AddVirtualAuthenticatorParams, AuthenticatorId, AuthenticatorProtocol,
    AuthenticatorTransport, Ctap2Version, EnableParams, GetCredentialsParams,
    SetResponseOverrideBitsParams, VirtualAuthenticatorOptions,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use futures_util::StreamExt;
use tokenbroker::domain::alerts::{DetectorPolicy, run_detectors};

use crate::helpers::*;

const CHROMIUM_FLAGS: [&str; 5] = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// One Chromium process with its own profile; closed when dropped.
struct Chromium {
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn launch() -> Self {
        let executable =
            std::env::var("TB_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&executable).exists(),
            "browser tests need Debian's chromium at {executable} (apt-get install chromium chromium-driver)"
        );
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(&executable)
            .new_headless_mode()
            .no_sandbox()
            .user_data_dir(profile.path())
            .args(CHROMIUM_FLAGS)
            .launch_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let (browser, mut handler) = Browser::launch(config).await.expect("chromium starts");
        tokio::spawn(async move { while handler.next().await.is_some() {} });
        Self {
            browser,
            _profile: profile,
        }
    }

    /// A tab with its own virtual authenticator (CTAP2.1, platform, resident keys, user verification).
    /// The virtual authenticator answers a browser-autofill (conditional UI) request at once, which
    /// would sign in before a password could be typed; tabs that test the password path are
    /// browsers without conditional mediation.
    async fn tab(&self) -> (Page, AuthenticatorId) {
        let (page, authenticator) = self.tab_with_autofill().await;
        page.evaluate_on_new_document(
            "if (window.PublicKeyCredential) { PublicKeyCredential.isConditionalMediationAvailable = async () => false; }",
        )
        .await
        .unwrap();
        (page, authenticator)
    }

    async fn tab_with_autofill(&self) -> (Page, AuthenticatorId) {
        let page = self.browser.new_page("about:blank").await.unwrap();
        page.execute(EnableParams::default()).await.unwrap();
        let options = VirtualAuthenticatorOptions::builder()
            .protocol(AuthenticatorProtocol::Ctap2)
            .ctap2_version(Ctap2Version::Ctap21)
            .transport(AuthenticatorTransport::Internal)
            .has_resident_key(true)
            .has_user_verification(true)
            .is_user_verified(true)
            .automatic_presence_simulation(true)
            .build()
            .unwrap();
        let added = page
            .execute(AddVirtualAuthenticatorParams::new(options))
            .await
            .unwrap();
        (page, added.result.authenticator_id.clone())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Some(child) = self.browser.get_mut_child() {
            let _ = child.as_mut_inner().start_kill();
        }
    }
}

async fn open(page: &Page, url: &str) {
    page.goto(url).await.unwrap();
    wait_until_loaded(page).await;
}

async fn wait_until_loaded(page: &Page) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let state = page
            .evaluate("document.readyState")
            .await
            .ok()
            .and_then(|r| r.into_value::<String>().ok());
        if state.as_deref() == Some("complete") {
            return;
        }
        assert!(Instant::now() < deadline, "the page never finished loading");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the page is at `path` (navigations started by scripts finish on their own time).
async fn wait_for_path(page: &Page, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let url = page.url().await.unwrap().unwrap_or_default();
        let here = url::Url::parse(&url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        if here == path {
            wait_until_loaded(page).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected to reach {path}, still at {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_text(page: &Page, css: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // The node may belong to a document being replaced: look again rather than fail.
        if let Ok(element) = page.find_element(css).await {
            if let Ok(Some(text)) = element.inner_text().await {
                if text.contains(needle) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {css} containing {needle:?} appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `action` on the element `css` in the page, as a user gesture, retrying while a navigation
/// replaces the document. `action` is a JavaScript function body with the element as `el`.
async fn on_element(page: &Page, css: &str, action: &str) {
    let script = format!(
        "(() => {{ const el = document.querySelector({}); if (!el) return false; {action}; return true; }})()",
        serde_json::to_string(css).unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let params = EvaluateParams::builder()
            .expression(script.clone())
            .user_gesture(true)
            .build()
            .unwrap();
        let done = page
            .evaluate(params)
            .await
            .ok()
            .and_then(|result| result.into_value::<bool>().ok());
        if done == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "no usable {css} on the page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(page: &Page, css: &str, value: &str) {
    let value = serde_json::to_string(value).unwrap();
    on_element(
        page,
        css,
        &format!("el.focus(); el.value = {value}; el.dispatchEvent(new Event('input', {{ bubbles: true }}))"),
    )
    .await;
}

/// The element's own click(): the page's handlers and form submission run as for a person's click.
async fn click(page: &Page, css: &str) {
    on_element(page, css, "el.click()").await;
}

fn console(app: &TestApp, path: &str) -> String {
    format!("{}{}", app.origin.as_str().trim_end_matches('/'), path)
}

/// First run in the browser: setup link, passkey creation, recovery codes, dashboard.
async fn set_up_admin(app: &TestApp, page: &Page) {
    let link = app
        .setup_link
        .clone()
        .unwrap()
        .replace(&app.address, app.origin.as_str().trim_end_matches('/'));
    open(page, &link).await;
    fill(page, "#email", ADMIN_EMAIL).await;
    fill(page, "#display_name", ADMIN_NAME).await;
    fill(page, "#password", ADMIN_PASSWORD).await;
    fill(page, "#password_confirm", ADMIN_PASSWORD).await;
    click(page, "form[action='/setup'] button[type=submit]").await;
    wait_for_path(page, "/mfa/enrol").await;

    fill(page, "#name", "Chromium virtual key").await;
    click(page, "#enrol-submit").await;
    wait_for_text(page, "h2", "Save your recovery codes").await;
    let codes = page.find_elements("#recovery-codes code").await.unwrap();
    assert_eq!(codes.len(), 10);
    click(page, "#codes-done").await;
    wait_for_text(page, "h1", "Welcome, Ada Lovelace").await;
}

async fn sign_out(page: &Page) {
    click(page, "form[action='/logout'] button").await;
    wait_for_path(page, "/login").await;
}

async fn sign_in_with_password(app: &TestApp, page: &Page) {
    open(page, &console(app, "/login")).await;
    fill(page, "#email", ADMIN_EMAIL).await;
    fill(page, "#password", ADMIN_PASSWORD).await;
    click(page, "#login-submit").await;
    wait_for_path(page, "/login/passkey").await;
}

/// Every request of this tab arrives as if through a proxy that located it in `country`.
async fn browse_from(page: &Page, country: &str) {
    let headers = Headers::new(serde_json::json!({ "X-Test-Country": country }));
    page.execute(SetExtraHttpHeadersParams::new(headers))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_person_enrols_a_passkey_and_signs_in_with_it_and_without_a_password() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.country_header = Some("X-Test-Country".into())
    })
    .await;
    let chromium = Chromium::launch().await;
    let (page, _) = chromium.tab().await;

    set_up_admin(&app, &page).await;
    sign_out(&page).await;

    sign_in_with_password(&app, &page).await;
    click(&page, "#passkey-submit").await;
    wait_for_text(&page, "h1", "Welcome, Ada Lovelace").await;
    sign_out(&page).await;

    // Passwordless: the discoverable passkey names the account itself. Each completed sign-in is
    // one "login" event with its method, whichever path it took.
    browse_from(&page, "DE").await;
    click(&page, "#passkey-login").await;
    wait_for_text(&page, "h1", "Welcome, Ada Lovelace").await;
    sign_out(&page).await;
    app.clock.advance(Duration::from_secs(20 * 60));
    browse_from(&page, "JP").await;
    // A fresh login page: the one left open 20 minutes ago holds an expired ceremony.
    open(&page, &console(&app, "/login")).await;
    click(&page, "#passkey-login").await;
    wait_for_text(&page, "h1", "Welcome, Ada Lovelace").await;
    let methods: Vec<String> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "login" && e.outcome == "success")
        .map(|e| {
            let details: serde_json::Value = serde_json::from_str(&e.details).unwrap();
            details["method"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(methods, ["passkey", "passkey", "password"], "newest first");

    // Two passwordless sign-ins from two countries 20 minutes apart: impossible travel. The
    // detectors read events a moment old (a commit still in flight is never skipped).
    app.clock.advance(Duration::from_secs(3));
    run_detectors(&app.core, &DetectorPolicy::default())
        .await
        .unwrap();
    open(&page, &console(&app, "/admin/alerts")).await;
    wait_for_text(
        &page,
        "tr[data-detector=impossible_travel]",
        "from DE and then from JP 20 minutes later",
    )
    .await;
}

#[tokio::test]
async fn browser_autofill_offers_the_passkey_on_the_login_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let chromium = Chromium::launch().await;
    let (setup_tab, setup_key) = chromium.tab().await;
    set_up_admin(&app, &setup_tab).await;
    sign_out(&setup_tab).await;
    let (page, key) = chromium.tab_with_autofill().await;
    let credentials = setup_tab
        .execute(GetCredentialsParams::new(setup_key))
        .await
        .unwrap();
    for credential in credentials.result.credentials.clone() {
        page.execute(AddCredentialParams::new(key.clone(), credential))
            .await
            .unwrap();
    }

    // Nothing is typed or clicked: the page's conditional request is answered by the authenticator,
    // as when a person picks the passkey from the e-mail field's suggestions.
    open(&page, &console(&app, "/login")).await;

    wait_for_text(&page, "h1", "Welcome, Ada Lovelace").await;
}

#[tokio::test]
async fn a_bogus_signature_or_missing_user_verification_is_refused_by_the_server() {
    let app = spawn_app(Backend::Postgres).await;
    let chromium = Chromium::launch().await;
    let (page, authenticator) = chromium.tab().await;
    set_up_admin(&app, &page).await;
    sign_out(&page).await;
    sign_in_with_password(&app, &page).await;

    for (bogus_signature, bad_uv) in [(true, false), (false, true)] {
        page.execute(SetResponseOverrideBitsParams {
            authenticator_id: authenticator.clone(),
            is_bogus_signature: Some(bogus_signature),
            is_bad_uv: Some(bad_uv),
            is_bad_up: None,
        })
        .await
        .unwrap();
        click(&page, "#passkey-submit").await;
        wait_for_text(&page, ".alert", "could not be verified").await;
        assert_redirect_to(&app.get("/").await, "/login");
    }
    let failures = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "second_factor_failed")
        .count();
    assert_eq!(failures, 2);
}

#[tokio::test]
async fn a_session_ended_from_another_browser_is_sent_to_the_login_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let first = Chromium::launch().await;
    let (laptop, laptop_key) = first.tab().await;
    set_up_admin(&app, &laptop).await;

    // The same passkey, synced to a second device: a separate browser profile.
    let second = Chromium::launch().await;
    let (phone, phone_key) = second.tab().await;
    let credentials = laptop
        .execute(GetCredentialsParams::new(laptop_key))
        .await
        .unwrap();
    for credential in credentials.result.credentials.clone() {
        phone
            .execute(AddCredentialParams::new(phone_key.clone(), credential))
            .await
            .unwrap();
    }
    sign_in_with_password(&app, &phone).await;
    click(&phone, "#passkey-submit").await;
    wait_for_text(&phone, "h1", "Welcome").await;

    open(&phone, &console(&app, "/account/sessions")).await;
    wait_until_loaded(&phone).await;
    let rows = phone.find_elements("tr[data-session]").await.unwrap();
    assert_eq!(rows.len(), 2);
    click(&phone, "tr[data-session]:not(:has(.tag)) button").await;
    wait_for_text(&phone, ".notice", "Ended 1 session").await;

    laptop.reload().await.unwrap();
    wait_for_path(&laptop, "/login").await;
}

/// Creates a tenant through the use case, as the admin set up in the browser.
async fn tenant(app: &TestApp, name: &str, slug: &str) {
    use tokenbroker::domain::email::Email;
    use tokenbroker::domain::events::RequestContext;
    use tokenbroker::domain::tenants::{self, BrandColour, NewTenant, Slug};
    let admin =
        tokenbroker::domain::users::by_email(&app.core, &Email::parse(ADMIN_EMAIL).unwrap())
            .await
            .unwrap()
            .unwrap();
    let new = NewTenant {
        name: name.to_owned(),
        slug: Slug::parse(slug).unwrap(),
        colour: BrandColour::parse("#7a2e8c").unwrap(),
        logo: None,
    };
    tenants::create(&app.core, admin.id, new, &RequestContext::default())
        .await
        .unwrap();
}

async fn focused_id(page: &Page) -> String {
    page.evaluate("document.activeElement ? document.activeElement.id : ''")
        .await
        .unwrap()
        .into_value::<String>()
        .unwrap()
}

#[tokio::test]
async fn the_top_bar_switches_tenant_as_you_type_and_keeps_the_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let chromium = Chromium::launch().await;
    let (page, _) = chromium.tab().await;
    set_up_admin(&app, &page).await;
    tenant(&app, "Acme Bank", "acme").await;
    tenant(&app, "Globex", "globex").await;

    open(&page, &console(&app, "/t/acme/credentials")).await;
    wait_for_text(&page, ".topbar .current-tenant", "Acme Bank").await;
    // "/" jumps to the search from anywhere on the page.
    page.find_element("h1")
        .await
        .unwrap()
        .press_key("/")
        .await
        .unwrap();
    assert_eq!(focused_id(&page).await, "tenant-switcher");
    page.find_element("#tenant-switcher")
        .await
        .unwrap()
        .type_str("glo")
        .await
        .unwrap();
    // The answer to what was typed (focusing alone lists every tenant, the recent ones first).
    wait_for_text(&page, "#tenant-suggestions li:first-child", "Globex").await;
    click(&page, "#tenant-suggestions li:first-child a").await;
    wait_for_path(&page, "/t/globex/credentials").await;
    wait_for_text(&page, ".topbar .current-tenant", "Globex").await;

    // Nothing typed: the tenants just used come first.
    on_element(&page, "#tenant-switcher", "el.focus()").await;
    wait_for_text(&page, "#tenant-suggestions li:first-child", "Globex").await;
    wait_for_text(&page, "#tenant-suggestions li:nth-child(2)", "Acme Bank").await;
    wait_for_text(&page, "#tenant-suggestions li:nth-child(2)", "recent").await;
}

/// How far the page is wider than the window (0 when nothing scrolls sideways). With `tables`,
/// a wide table scrolling inside its own box counts too (fine on a phone, not on a laptop).
async fn sideways_overflow(page: &Page, tables: bool) -> i64 {
    let script = format!(
        "Math.max(document.documentElement.scrollWidth - window.innerWidth, {})",
        if tables {
            "...Array.from(document.querySelectorAll('.table-scroll, .table-wrap'), el => el.scrollWidth - el.clientWidth), 0"
        } else {
            "0"
        }
    );
    page.evaluate(script)
        .await
        .unwrap()
        .into_value::<i64>()
        .unwrap()
}

#[tokio::test]
async fn every_page_fits_a_laptop_and_a_phone_without_sideways_scrolling() {
    use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
    use chromiumoxide::cdp::browser_protocol::network::CookieParam;

    // A tenant with a partner, a grant and one credential of each kind, one revoked with a long
    // reason: the pages as support staff see them on a working day.
    let w = crate::partners::world(Backend::Sqlite).await;
    let request = crate::partners::pending_request(&w).await;
    let grant = crate::partners::grant_page_of(&w, &request).await;
    for kind in ["api_token", "client", "resource_server"] {
        crate::partners::mint(&w, &grant, kind, "").await;
    }
    let credentials = w.support.page_with_form("/t/acme/credentials").await;
    let first = scraper::Html::parse_document(&credentials)
        .select(&scraper::Selector::parse("tr[data-credential]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("data-credential")
        .unwrap()
        .to_owned();
    let credential = format!("/t/acme/credentials/{first}");
    w.support
        .submit(
            &credential,
            &format!("{credential}/revoke"),
            &[("reason", &"Found in a public repository's CI log during the incident review; rotated by the partner. ".repeat(3))],
        )
        .await;

    // Chromium carries the superadmin's session (signed in over HTTP with the test passkey).
    let chromium = Chromium::launch().await;
    let (page, _) = chromium.tab().await;
    let cookie = w.app.session_cookie().unwrap();
    let (name, value) = cookie.split_once('=').unwrap();
    page.set_cookie(
        CookieParam::builder()
            .name(name)
            .value(value)
            .url(console(&w.app, "/"))
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let request_page = format!("/t/acme/requests/{request}");
    let pages = [
        "/",
        "/tenants",
        "/admin/tenants",
        "/t/acme",
        "/t/acme/credentials",
        &credential,
        &grant,
        "/t/acme/requests",
        &request_page,
        "/t/acme/scopes",
        "/t/acme/keys",
        "/t/acme/settings",
        "/t/acme/events",
        "/admin/events",
        "/admin/alerts",
        "/admin/users",
        "/admin/invitations",
        "/account/security",
        "/account/sessions",
        "/account/api-keys",
    ];
    let mut too_wide = Vec::new();
    for (width, mobile) in [(1280, false), (390, true)] {
        page.execute(SetDeviceMetricsOverrideParams::new(width, 900, 1.0, mobile))
            .await
            .unwrap();
        for path in pages {
            open(&page, &console(&w.app, path)).await;
            let here = page.url().await.unwrap().unwrap_or_default();
            assert!(here.ends_with(path), "{path} opened as {here}");
            let overflow = sideways_overflow(&page, !mobile).await;
            if overflow > 0 {
                too_wide.push(format!("{path} at {width} px: {overflow} px too wide"));
            }
        }
    }
    assert!(too_wide.is_empty(), "{too_wide:#?}");
}

/// A second superadmin, created on the server as an operator would (`tokenbroker create-admin`),
/// signs in and sets up their passkey in `page`.
async fn second_superadmin(app: &TestApp, page: &Page) {
    use tokenbroker::domain::email::Email;
    use tokenbroker::domain::password::Password;
    use tokenbroker::domain::rbac::Role;
    use tokenbroker::domain::setup;
    use tokenbroker::domain::users::{DisplayName, NewStaff};
    let staff = NewStaff {
        email: Email::parse("grace@example.com").unwrap(),
        display_name: DisplayName::parse("Grace Hopper").unwrap(),
        password: Password::new("grace's long passphrase".to_owned().into()).unwrap(),
    };
    setup::create_global_staff_from_cli(&app.core, staff, Role::Superadmin)
        .await
        .unwrap();
    open(page, &console(app, "/login")).await;
    fill(page, "#email", "grace@example.com").await;
    fill(page, "#password", "grace's long passphrase").await;
    click(page, "#login-submit").await;
    wait_for_path(page, "/mfa/enrol").await;
    fill(page, "#name", "Grace's virtual key").await;
    click(page, "#enrol-submit").await;
    wait_for_text(page, "h2", "Save your recovery codes").await;
    click(page, "#codes-done").await;
    wait_for_text(page, "h1", "Welcome, Grace Hopper").await;
}

#[tokio::test]
async fn a_second_superadmin_approves_a_suspension_with_a_passkey_and_it_happens_once() {
    let app = spawn_app(Backend::Sqlite).await;
    let ada_browser = Chromium::launch().await;
    let (ada, _) = ada_browser.tab().await;
    set_up_admin(&app, &ada).await;
    tenant(&app, "Acme Bank", "acme").await;
    let grace_browser = Chromium::launch().await;
    let (grace, _) = grace_browser.tab().await;
    second_superadmin(&app, &grace).await;

    // Ada asks; nothing changes yet.
    open(&ada, &console(&app, "/t/acme/settings")).await;
    fill(&ada, "#confirm_slug", "acme").await;
    fill(&ada, "#suspend-reason", "The contract ended yesterday").await;
    click(&ada, "form[action='/t/acme/suspend'] button[type=submit]").await;
    wait_for_text(&ada, ".notice", "Requested").await;
    assert!(ada.find_element("#approve").await.is_err(), "not her own");

    // Grace finds it in her queue and approves it, confirming with her passkey.
    app.clock.advance(Duration::from_secs(6 * 60));
    open(&grace, &console(&app, "/approvals")).await;
    wait_for_text(&grace, "#pending-approvals", "Suspend tenant Acme Bank").await;
    click(&grace, "#pending-approvals a.button").await;
    wait_for_text(&grace, "#approval-reason", "The contract ended yesterday").await;
    click(&grace, "#approve").await;
    wait_for_path(&grace, "/step-up").await;
    click(&grace, "#step-up-submit").await;
    wait_for_text(&grace, ".notice", "Approved and carried out").await;
    wait_for_text(&grace, "#approval-status", "executed").await;

    let acme = tokenbroker::domain::tenants::by_slug(&app.core, "acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acme.status.as_str(), "suspended");
    let executed = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "approval_executed" || e.event_type == "tenant_suspended")
        .count();
    assert_eq!(executed, 2, "one execution, one suspension");
    // Ada's page of the request now says who decided it, and offers nothing more.
    ada.reload().await.unwrap();
    wait_for_text(&ada, "#approval", "Grace Hopper").await;
    assert!(ada.find_element("form[action$='/cancel']").await.is_err());
}
