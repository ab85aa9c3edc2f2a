//! Partner access end to end: public form → e-mail confirmation → approval → minting → one-time
//! retrieval → verification → revocation → expiry; the deny path; decisions and revocations racing.

use std::time::Duration;

use reqwest::StatusCode;
use scraper::{Html, Selector};
use tokenbroker::domain::partners;

use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

pub(crate) const PARTNER: &str = "dev@partner.example";

/// The latest link with `marker` in any mail to `recipient`.
pub(crate) async fn mailed_link(app: &TestApp, recipient: &str, marker: &str) -> String {
    app.mailer.deliver_due(&app.core).await.unwrap();
    let decoded: Vec<String> = read_mail(&app.mail_dir)
        .into_iter()
        .filter(|m| m.contains(&format!("To: {recipient}")))
        .map(|m| {
            m.replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=")
        })
        .collect();
    let message = decoded
        .iter()
        .rev()
        .find(|m| m.contains(marker))
        .unwrap_or_else(|| panic!("no mail to {recipient} with {marker}"));
    let start = message.find(marker).unwrap();
    let token: String = message[start + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("{marker}{token}")
}

/// Every message sent to `recipient`, after delivering what is due.
pub(crate) async fn mails_to(app: &TestApp, recipient: &str) -> Vec<String> {
    app.mailer.deliver_due(&app.core).await.unwrap();
    read_mail(&app.mail_dir)
        .into_iter()
        .filter(|m| m.contains(&format!("To: {recipient}")))
        .collect()
}

pub(crate) struct World {
    pub(crate) app: TestApp,
    pub(crate) tenant_admin: Browser,
    pub(crate) support: Browser,
    pub(crate) partner: Browser,
}

pub(crate) async fn world(backend: Backend) -> World {
    world_with(backend, |_| {}).await
}

pub(crate) async fn world_with(
    backend: Backend,
    configure: impl FnOnce(&mut tokenbroker::config::Settings),
) -> World {
    let app = spawn_app_with(backend, configure).await;
    app.create_admin().await;
    create_tenant(&app, "Acme Bank", "acme", "#123456", None).await;
    for (name, description) in [
        ("payments:read", "Read payments"),
        ("payments:write", "Create payments"),
    ] {
        let added = app
            .submit(
                "/t/acme/scopes",
                "/t/acme/scopes",
                &[("name", name), ("description", description)],
            )
            .await;
        assert_redirect_to(&added, "/t/acme/scopes");
    }
    let tenant_admin = staff_member(&app, "ta@example.com", "tenant_admin", Some("acme")).await;
    let support = staff_member(&app, "sup@example.com", "support", Some("acme")).await;
    let partner = app.new_browser();
    World {
        app,
        tenant_admin,
        support,
        partner,
    }
}

pub(crate) async fn submit_request(w: &World, scopes: &[&str]) -> reqwest::Response {
    let mut form = vec![
        ("organisation", "Partner Ltd"),
        ("contact_name", "Pat Partner"),
        ("email", PARTNER),
        ("justification", "Reconciling our payments nightly."),
    ];
    form.extend(scopes.iter().map(|s| ("scope", *s)));
    w.partner
        .submit("/t/acme/request-access", "/t/acme/request-access", &form)
        .await
}

/// Submitted and confirmed: the request waits in the queue. Returns its id.
pub(crate) async fn pending_request(w: &World) -> String {
    assert_eq!(
        submit_request(w, &["payments:read", "payments:write"])
            .await
            .status(),
        StatusCode::OK
    );
    let confirm = mailed_link(&w.app, PARTNER, "/t/acme/request-access/confirm?token=").await;
    let confirmed = w.partner.get(&confirm).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(
        text_of(&confirmed.text().await.unwrap(), "h1")
            .unwrap()
            .contains("Request sent")
    );
    let queue = w.tenant_admin.page_with_form("/t/acme/requests").await;
    let document = scraper::Html::parse_document(&queue);
    let selector = scraper::Selector::parse("tr[data-status=pending]").unwrap();
    document
        .select(&selector)
        .next()
        .expect("a pending request")
        .value()
        .attr("data-request")
        .unwrap()
        .to_owned()
}

pub(crate) async fn approve(browser: &Browser, request: &str) -> reqwest::Response {
    let page = format!("/t/acme/requests/{request}");
    browser
        .submit(
            &page,
            &format!("{page}/approve"),
            &[("scope", "payments:read"), ("max_lifetime_days", "90")],
        )
        .await
}

/// Approves `request` (as the tenant admin) and returns its grant's page.
pub(crate) async fn grant_page_of(w: &World, request: &str) -> String {
    let approved = approve(&w.tenant_admin, request).await;
    assert_eq!(
        approved.status(),
        StatusCode::SEE_OTHER,
        "the approval goes through"
    );
    approved_grant_page(&approved)
}

/// Where an approval leads: the new grant's page, which says the request was approved.
pub(crate) fn approved_grant_page(approved: &reqwest::Response) -> String {
    let location = approved.headers()["location"].to_str().unwrap();
    location
        .strip_suffix("?notice=approved")
        .unwrap_or_else(|| panic!("the grant page says the request was approved: {location}"))
        .to_owned()
}

pub(crate) async fn mint(w: &World, grant_page: &str, kind: &str, days: &str) -> reqwest::Response {
    w.support
        .submit(
            grant_page,
            &format!("{grant_page}/mint"),
            &[("kind", kind), ("lifetime_days", days)],
        )
        .await
}

pub(crate) async fn retrieve(w: &World) -> String {
    let link = mailed_link(&w.app, PARTNER, "/retrieve?token=").await;
    let page = w.partner.page_with_form(&link).await;
    assert!(
        !page.contains("tbk_live_"),
        "opening the link must not reveal (or spend) it"
    );
    let revealed = w
        .partner
        .submit(
            &link,
            "/retrieve",
            &[("token", link.trim_start_matches("/retrieve?token="))],
        )
        .await;
    assert_eq!(revealed.status(), StatusCode::OK);
    let html = revealed.text().await.unwrap();
    let document = scraper::Html::parse_document(&html);
    let selector = scraper::Selector::parse("#secret").unwrap();
    document
        .select(&selector)
        .next()
        .unwrap()
        .value()
        .attr("value")
        .unwrap()
        .to_owned()
}

async fn a_request_becomes_a_working_token_that_revocation_stops_at_once(backend: Backend) {
    let w = world(backend).await;
    let form = w.partner.page_with_form("/t/acme/request-access").await;
    assert_eq!(
        text_of(&form, ".tenant-band .tenant-name").as_deref(),
        Some("Acme Bank")
    );
    assert!(
        text_of(&form, ".account").is_none(),
        "a partner is not offered an account menu or sign-out"
    );
    let request = pending_request(&w).await;
    let as_support = w
        .support
        .page_with_form(&format!("/t/acme/requests/{request}"))
        .await;
    assert!(
        text_of(&as_support, "#who-decides")
            .unwrap()
            .contains("Waiting for a tenant admin of Acme Bank"),
        "support learns who decides"
    );
    let as_admin = w
        .tenant_admin
        .page_with_form(&format!("/t/acme/requests/{request}"))
        .await;
    assert!(text_of(&as_admin, "#who-decides").is_none());
    let notice = mails_to(&w.app, "ta@example.com")
        .await
        .into_iter()
        .find(|m| m.contains("New access request for Acme Bank"))
        .unwrap();
    assert!(
        notice.contains("Hello Invited Person,") && !notice.contains("Hello ,"),
        "the tenant admin is greeted by name: {notice}"
    );

    let approved = approve(&w.tenant_admin, &request).await;
    let grant_page = approved_grant_page(&approved);
    assert!(grant_page.starts_with("/t/acme/grants/"), "{grant_page}");
    assert!(
        mails_to(&w.app, PARTNER)
            .await
            .iter()
            .any(|m| m.contains("was approved"))
    );

    assert_redirect_to(
        &mint(&w, &grant_page, "api_token", "").await,
        &format!("{grant_page}?notice=minted"),
    );
    let token = retrieve(&w).await;
    assert!(token.starts_with("tbk_live_"));
    let ready = mails_to(&w.app, PARTNER)
        .await
        .into_iter()
        .find(|m| m.contains("Subject: Your Acme Bank API token is ready"))
        .expect("the mail names the kind of credential");
    assert!(
        ready
            .replace("=\r\n", "")
            .replace("=\n", "")
            .contains("scopes: payments:read"),
        "and the access it is for: {ready}"
    );
    assert!(
        mails_to(&w.app, PARTNER)
            .await
            .iter()
            .all(|m| !m.contains(&token)),
        "the secret is never e-mailed"
    );
    let link = mailed_link(&w.app, PARTNER, "/retrieve?token=").await;
    let again = w
        .partner
        .submit(
            &link,
            "/retrieve",
            &[("token", link.trim_start_matches("/retrieve?token="))],
        )
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already retrieved"));

    let verified = partners::verify(&w.app.core, &token, Some("203.0.113.9"))
        .await
        .unwrap()
        .expect("the token verifies");
    assert_eq!(verified.scopes, vec!["payments:read"]);
    assert!(
        partners::verify(&w.app.core, &format!("{token}x"), None)
            .await
            .unwrap()
            .is_none()
    );

    let list = w.support.page_with_form("/t/acme/credentials").await;
    let credential = verified.credential_id.clone();
    assert!(
        text_of(&list, &format!("tr[data-credential='{credential}']"))
            .unwrap()
            .contains("from 203.0.113.9"),
        "last use is shown"
    );
    assert!(list.contains(&format!(
        r#"data-credential="{credential}" data-status="active""#
    )));
    let page = format!("/t/acme/credentials/{credential}");
    let revoke = format!("{page}/revoke");
    assert_redirect_to(
        &w.support
            .submit(&page, &revoke, &[("reason", "Leaked in a log")])
            .await,
        &format!("{page}?notice=revoked"),
    );
    let shown = w.support.get(&page).await.text().await.unwrap();
    assert!(shown.contains("Leaked in a log"), "the reason is shown");
    assert!(shown.contains(r#"data-status="revoked""#));
    assert!(
        partners::verify(&w.app.core, &token, None)
            .await
            .unwrap()
            .is_none(),
        "revocation takes effect at once"
    );
    assert_redirect_to(
        &w.support
            .submit(&page, &revoke, &[("reason", "Again")])
            .await,
        &format!("{page}?notice=revoked"),
    );

    let events = w.app.events().await;
    for expected in [
        "request_submitted",
        "request_confirmed",
        "request_approved",
        "grant_created",
        "credential_minted",
        "credential_retrieved",
    ] {
        assert!(
            events.iter().any(|e| e.event_type == expected),
            "{expected} recorded"
        );
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "credential_revoked")
            .count(),
        1,
        "revoking twice changes nothing"
    );
    let dump: String = events.iter().map(|e| format!("{e:?}")).collect();
    assert!(!dump.contains(&token));
}

async fn a_denied_request_tells_the_partner_why(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let page = format!("/t/acme/requests/{request}");

    let empty = w
        .tenant_admin
        .submit(&page, &format!("{page}/deny"), &[("reason", "  ")])
        .await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    let denied = w
        .tenant_admin
        .submit(
            &page,
            &format!("{page}/deny"),
            &[("reason", "We do not work with resellers.")],
        )
        .await;
    assert_redirect_to(&denied, &page);

    let html = w.tenant_admin.page_with_form(&page).await;
    assert_eq!(text_of(&html, "#status").as_deref(), Some("denied"));
    assert!(html.contains("We do not work with resellers."));
    w.app.mailer.deliver_due(&w.app.core).await.unwrap();
    assert!(
        mails_to(&w.app, PARTNER)
            .await
            .iter()
            .any(|m| m.contains("resellers"))
    );
    assert_eq!(
        approve(&w.tenant_admin, &request).await.status(),
        StatusCode::CONFLICT
    );
}

async fn two_admins_deciding_at_once_produce_exactly_one_decision(backend: Backend) {
    let w = world(backend).await;
    let second_admin = staff_member(&w.app, "ta2@example.com", "tenant_admin", Some("acme")).await;
    let request = pending_request(&w).await;

    let (a, b) = tokio::join!(
        approve(&w.tenant_admin, &request),
        approve(&second_admin, &request)
    );

    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::CONFLICT]);
    let events = w.app.events().await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "request_approved")
            .count(),
        1
    );
}

async fn spam_on_the_public_form_is_turned_away(backend: Backend) {
    let w = world(backend).await;

    let bot = w
        .partner
        .submit(
            "/t/acme/request-access",
            "/t/acme/request-access",
            &[
                ("organisation", "Bot"),
                ("contact_name", "Bot"),
                ("email", "bot@spam.example"),
                ("scope", "payments:read"),
                ("justification", "x"),
                ("website", "http://spam"),
            ],
        )
        .await;
    assert_eq!(
        bot.status(),
        StatusCode::OK,
        "the bot sees the usual answer"
    );
    let unknown_scope = submit_request(&w, &["admin:everything"]).await;
    assert_eq!(unknown_scope.status(), StatusCode::BAD_REQUEST);
    for _ in 0..5 {
        assert_eq!(
            submit_request(&w, &["payments:read"]).await.status(),
            StatusCode::OK
        );
    }
    let flooded = submit_request(&w, &["payments:read"]).await;
    assert_eq!(flooded.status(), StatusCode::TOO_MANY_REQUESTS);
    // The same mailbox written with a display name is no way around the limit: only a bare
    // address is an address.
    let disguised = w
        .partner
        .submit(
            "/t/acme/request-access",
            "/t/acme/request-access",
            &[
                ("organisation", "Partner Ltd"),
                ("contact_name", "Pat Partner"),
                ("email", &format!("Pat <{PARTNER}>")),
                ("scope", "payments:read"),
                ("justification", "Reconciling our payments nightly."),
            ],
        )
        .await;
    assert_eq!(disguised.status(), StatusCode::BAD_REQUEST);
    assert!(
        disguised
            .text()
            .await
            .unwrap()
            .contains("Enter a valid e-mail address.")
    );

    w.app.mailer.deliver_due(&w.app.core).await.unwrap();
    assert!(
        mails_to(&w.app, "bot@spam.example").await.is_empty(),
        "nothing was stored or sent for the bot"
    );
    assert_eq!(mails_to(&w.app, PARTNER).await.len(), 5);
}

async fn an_unconfirmed_request_lapses_after_seven_days(backend: Backend) {
    let w = world(backend).await;
    submit_request(&w, &["payments:read"]).await;
    let confirm = mailed_link(&w.app, PARTNER, "/t/acme/request-access/confirm?token=").await;
    w.app.clock.advance(Duration::from_secs(8 * 86_400));

    assert_eq!(w.partner.get(&confirm).await.status(), StatusCode::GONE);
    let queue = w.tenant_admin.page_with_form("/t/acme/requests").await;
    assert!(!queue.contains("data-status=\"pending\""));
}

async fn a_partner_withdraws_an_undecided_request(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let confirm = mailed_link(&w.app, PARTNER, "/t/acme/request-access/confirm?token=").await;
    let token = confirm.split("token=").nth(1).unwrap().to_owned();

    let withdrawn = w
        .partner
        .submit(
            "/t/acme/request-access",
            "/t/acme/request-access/withdraw",
            &[("token", &token)],
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::OK);
    assert!(
        text_of(&withdrawn.text().await.unwrap(), "h1")
            .unwrap()
            .contains("withdrawn")
    );

    let page = w
        .tenant_admin
        .page_with_form(&format!("/t/acme/requests/{request}"))
        .await;
    assert_eq!(text_of(&page, "#status").as_deref(), Some("withdrawn"));
    assert_eq!(
        approve(&w.tenant_admin, &request).await.status(),
        StatusCode::CONFLICT
    );
    let again = w
        .partner
        .submit(
            "/t/acme/request-access",
            "/t/acme/request-access/withdraw",
            &[("token", &token)],
        )
        .await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(
        w.app
            .events()
            .await
            .iter()
            .any(|e| e.event_type == "request_withdrawn")
    );
}

async fn adding_and_removing_a_scope_shows_in_the_tenants_event_log(backend: Backend) {
    let w = world(backend).await;
    let catalogue = w.tenant_admin.page_with_form("/t/acme/scopes").await;
    let document = Html::parse_document(&catalogue);
    let form = Selector::parse("form[action$='/remove']").unwrap();
    let remove = document
        .select(&Selector::parse("#scopes li").unwrap())
        .find(|item| item.text().any(|t| t.contains("payments:write")))
        .and_then(|item| item.select(&form).next())
        .and_then(|form| form.value().attr("action").map(str::to_owned))
        .expect("a remove button for payments:write");
    let removed = w.tenant_admin.submit("/t/acme/scopes", &remove, &[]).await;
    assert_redirect_to(&removed, "/t/acme/scopes");
    let again = w.tenant_admin.submit("/t/acme/scopes", &remove, &[]).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let log = w.tenant_admin.page_with_form("/t/acme/events").await;
    let rows: Vec<(String, String)> = Html::parse_document(&log)
        .select(&Selector::parse("tr[data-type^='scope_']").unwrap())
        .map(|row| {
            let kind = row.value().attr("data-type").unwrap().to_owned();
            (kind, row.text().collect::<String>())
        })
        .collect();
    assert_eq!(
        rows.len(),
        3,
        "two added when the tenant was set up, one removed: {rows:?}"
    );
    assert_eq!(rows[0].0, "scope_removed", "newest first");
    assert!(rows[0].1.contains("payments:write"), "{}", rows[0].1);
    assert!(
        rows[1..].iter().all(|(kind, _)| kind == "scope_added"),
        "{rows:?}"
    );
    for name in ["payments:read", "payments:write"] {
        assert!(
            rows[1..].iter().any(|(_, text)| text.contains(name)),
            "{name}"
        );
    }
    let removal = w
        .app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "scope_removed")
        .unwrap();
    assert_eq!(removal.actor_kind, "user");
    assert!(removal.tenant_id.is_some());
}

on_both_backends!(
    adding_and_removing_a_scope_shows_in_the_tenants_event_log,
    a_partner_withdraws_an_undecided_request,
    a_request_becomes_a_working_token_that_revocation_stops_at_once,
    a_denied_request_tells_the_partner_why,
    two_admins_deciding_at_once_produce_exactly_one_decision,
    spam_on_the_public_form_is_turned_away,
    an_unconfirmed_request_lapses_after_seven_days,
);
