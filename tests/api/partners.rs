//! Partner access end to end: public form → e-mail confirmation → approval → minting → one-time
//! retrieval → verification → revocation → expiry; the deny path; decisions and revocations racing.

use std::time::Duration;

use reqwest::StatusCode;
use tokenbroker::domain::partners;

use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

const PARTNER: &str = "dev@partner.example";

/// The latest link with `marker` in any mail to `recipient`.
async fn mailed_link(app: &TestApp, recipient: &str, marker: &str) -> String {
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
async fn mails_to(app: &TestApp, recipient: &str) -> Vec<String> {
    app.mailer.deliver_due(&app.core).await.unwrap();
    read_mail(&app.mail_dir)
        .into_iter()
        .filter(|m| m.contains(&format!("To: {recipient}")))
        .collect()
}

struct World {
    app: TestApp,
    tenant_admin: Browser,
    support: Browser,
    partner: Browser,
}

async fn world(backend: Backend) -> World {
    let app = spawn_app(backend).await;
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

async fn submit_request(w: &World, scopes: &[&str]) -> reqwest::Response {
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
async fn pending_request(w: &World) -> String {
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

async fn approve(browser: &Browser, request: &str) -> reqwest::Response {
    let page = format!("/t/acme/requests/{request}");
    browser
        .submit(
            &page,
            &format!("{page}/approve"),
            &[("scope", "payments:read"), ("max_lifetime_days", "90")],
        )
        .await
}

async fn mint(w: &World, grant_page: &str, kind: &str, days: &str) -> reqwest::Response {
    w.support
        .submit(
            grant_page,
            &format!("{grant_page}/mint"),
            &[("kind", kind), ("lifetime_days", days)],
        )
        .await
}

async fn retrieve(w: &World) -> String {
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
    let request = pending_request(&w).await;
    assert!(
        mails_to(&w.app, "ta@example.com")
            .await
            .iter()
            .any(|m| m.contains("New access request for Acme Bank"))
    );

    let approved = approve(&w.tenant_admin, &request).await;
    let grant_page = approved.headers()["location"].to_str().unwrap().to_owned();
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
    let revoke = format!("/t/acme/credentials/{credential}/revoke");
    assert_redirect_to(
        &w.support
            .submit(
                "/t/acme/credentials",
                &revoke,
                &[("reason", "Leaked in a log")],
            )
            .await,
        "/t/acme/credentials",
    );
    assert!(
        partners::verify(&w.app.core, &token, None)
            .await
            .unwrap()
            .is_none(),
        "revocation takes effect at once"
    );
    assert_redirect_to(
        &w.support
            .submit("/t/acme/credentials", &revoke, &[("reason", "Again")])
            .await,
        "/t/acme/credentials",
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

async fn credentials_expire_on_time_and_are_swept(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = approve(&w.tenant_admin, &request).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let too_long = mint(&w, &grant_page, "client", "91").await;
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert_redirect_to(
        &mint(&w, &grant_page, "client", "1").await,
        &format!("{grant_page}?notice=minted"),
    );
    let secret = retrieve(&w).await;
    assert!(secret.starts_with("tbs_live_"));
    assert!(
        partners::verify(&w.app.core, &secret, None)
            .await
            .unwrap()
            .is_some()
    );

    // Expiring within a week: the tenant admins hear about it, once however often the sweep runs.
    tokenbroker::app::sweep_once(&w.app.core).await.unwrap();
    tokenbroker::app::sweep_once(&w.app.core).await.unwrap();
    let notices = mails_to(&w.app, "ta@example.com")
        .await
        .into_iter()
        .filter(|m| m.contains("expires in a week"))
        .count();
    assert_eq!(notices, 1);

    w.app.clock.advance(Duration::from_secs(2 * 86_400));
    assert!(
        partners::verify(&w.app.core, &secret, None)
            .await
            .unwrap()
            .is_none(),
        "expired by time, before any sweep"
    );
    tokenbroker::app::sweep_once(&w.app.core).await.unwrap();

    // Two days later every browser session has idled out too: read the outcome from storage.
    let tenant = w
        .app
        .core
        .store
        .tenant_by_slug("acme")
        .await
        .unwrap()
        .unwrap();
    let listed = w
        .app
        .core
        .store
        .credentials_of(tenant.id, &Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed[0].status, "expired");
    assert!(
        w.app
            .events()
            .await
            .iter()
            .any(|e| e.event_type == "credential_expired")
    );
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

async fn revoking_at_the_same_time_from_two_places_revokes_once(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = approve(&w.tenant_admin, &request).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    mint(&w, &grant_page, "api_token", "").await;
    let token = retrieve(&w).await;
    let credential = partners::verify(&w.app.core, &token, None)
        .await
        .unwrap()
        .unwrap()
        .credential_id;
    let revoke = format!("/t/acme/credentials/{credential}/revoke");

    let (a, b) = tokio::join!(
        w.support
            .submit("/t/acme/credentials", &revoke, &[("reason", "one")]),
        w.tenant_admin
            .submit("/t/acme/credentials", &revoke, &[("reason", "two")]),
    );

    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
    );
    assert_eq!(
        w.app
            .events()
            .await
            .iter()
            .filter(|e| e.event_type == "credential_revoked")
            .count(),
        1
    );
    assert!(
        partners::verify(&w.app.core, &token, None)
            .await
            .unwrap()
            .is_none()
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

async fn revoking_a_grant_or_a_partner_needs_the_slug_and_stops_every_credential(backend: Backend) {
    let w = world(backend).await;
    let first = pending_request(&w).await;
    let grant_page = approve(&w.tenant_admin, &first).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        mint(&w, &grant_page, "api_token", "").await;
        tokens.push(retrieve(&w).await);
    }
    let verifies = |token: String| {
        let core = w.app.core.clone();
        async move {
            partners::verify(&core, &token, None)
                .await
                .unwrap()
                .is_some()
        }
    };

    let revoke = format!("{grant_page}/revoke");
    let unconfirmed = w
        .support
        .submit(
            &grant_page,
            &revoke,
            &[("reason", "Contract ended"), ("confirm_slug", "acne")],
        )
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(verifies(tokens[0].clone()).await && verifies(tokens[1].clone()).await);

    let revoked = w
        .support
        .submit(
            &grant_page,
            &revoke,
            &[("reason", "Contract ended"), ("confirm_slug", "acme")],
        )
        .await;
    assert_redirect_to(&revoked, &format!("{grant_page}?notice=revoked"));
    assert!(!verifies(tokens[0].clone()).await && !verifies(tokens[1].clone()).await);
    let bulk = w
        .app
        .events()
        .await
        .into_iter()
        .find(|e| e.details.contains(r#""scope":"grant""#))
        .unwrap();
    assert!(
        bulk.details.contains(r#""credentials_revoked":2"#),
        "{}",
        bulk.details
    );
    assert_eq!(
        mint(&w, &grant_page, "api_token", "").await.status(),
        StatusCode::BAD_REQUEST,
        "nothing new under a revoked grant"
    );

    // A second grant for the same partner; revoking the partner stops it too.
    let second = pending_request(&w).await;
    let second_page = approve(&w.tenant_admin, &second).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    mint(&w, &second_page, "api_token", "").await;
    let token = retrieve(&w).await;
    assert!(verifies(token.clone()).await);
    let everything = w
        .tenant_admin
        .submit(
            &second_page,
            &format!("{second_page}/revoke-partner"),
            &[("reason", "Fraud"), ("confirm_slug", "acme")],
        )
        .await;
    assert_redirect_to(&everything, &format!("{second_page}?notice=revoked"));
    assert!(!verifies(token).await);
}

async fn the_credentials_list_filters_and_pages_by_keyset(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = approve(&w.tenant_admin, &request).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    for (kind, days) in [("api_token", "30"), ("client", "30"), ("api_token", "3")] {
        mint(&w, &grant_page, kind, days).await;
        retrieve(&w).await;
    }
    let count = |query: &'static str| {
        let support = &w.support;
        async move {
            let html = support
                .page_with_form(&format!("/t/acme/credentials?{query}"))
                .await;
            all_text_of(&html, "tr[data-credential] td:first-child").len()
        }
    };

    assert_eq!(count("").await, 3);
    assert_eq!(count("kind=client").await, 1);
    assert_eq!(count("status=expiring").await, 1);
    assert_eq!(count("partner=PARTNER.example").await, 3);
    assert_eq!(count("partner=nobody").await, 0);
    assert_eq!(count("prefix=tbc_live_").await, 1);
    assert_eq!(count("prefix=tbk_live_").await, 2);
    assert_eq!(
        count("prefix=%25").await,
        0,
        "LIKE wildcards are matched literally"
    );
    assert_eq!(count("status=revoked").await, 0);

    // Keyset paging: two at a time, then the rest, nothing twice.
    let tenant = w
        .app
        .core
        .store
        .tenant_by_slug("acme")
        .await
        .unwrap()
        .unwrap();
    let all = Default::default();
    let first = w
        .app
        .core
        .store
        .credentials_of(tenant.id, &all, None, 2)
        .await
        .unwrap();
    let last = first.last().unwrap();
    let rest = w
        .app
        .core
        .store
        .credentials_of(tenant.id, &all, Some((last.created_at, &last.id)), 2)
        .await
        .unwrap();
    assert_eq!((first.len(), rest.len()), (2, 1));
    assert!(rest.iter().all(|c| first.iter().all(|f| f.id != c.id)));
}

async fn a_client_rotates_through_two_live_secrets(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = approve(&w.tenant_admin, &request).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    mint(&w, &grant_page, "client", "").await;
    let first = retrieve(&w).await;
    let credential = partners::verify(&w.app.core, &first, None)
        .await
        .unwrap()
        .unwrap()
        .credential_id;
    let secrets = format!("/t/acme/credentials/{credential}/secrets");

    assert_redirect_to(
        &w.support.submit("/t/acme/credentials", &secrets, &[]).await,
        "/t/acme/credentials",
    );
    let second = retrieve(&w).await;

    assert_ne!(first, second);
    for secret in [&first, &second] {
        let verified = partners::verify(&w.app.core, secret, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            verified.credential_id, credential,
            "both secrets belong to the one client"
        );
    }
    let third = w.support.submit("/t/acme/credentials", &secrets, &[]).await;
    assert_eq!(third.status(), StatusCode::BAD_REQUEST);
    assert!(third.text().await.unwrap().contains("two live secrets"));
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

async fn a_grant_asked_for_under_another_tenant_is_not_found(backend: Backend) {
    let w = world(backend).await;
    create_tenant(&w.app, "Globex", "globex", "#654321", None).await;
    let request = pending_request(&w).await;
    let grant_page = approve(&w.tenant_admin, &request).await.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let grant = grant_page.rsplit('/').next().unwrap().to_owned();

    // The superadmin may enter both tenants, so only the tenant filter in storage stands in the way.
    assert_eq!(
        w.app
            .get(&format!("/t/globex/grants/{grant}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.app
            .get(&format!("/t/globex/requests/{request}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let minted = w
        .app
        .submit(
            "/t/globex/credentials",
            &format!("/t/globex/grants/{grant}/mint"),
            &[("kind", "api_token"), ("lifetime_days", "")],
        )
        .await;
    assert_eq!(minted.status(), StatusCode::NOT_FOUND);
    let acme = w
        .app
        .core
        .store
        .tenant_by_slug("acme")
        .await
        .unwrap()
        .unwrap();
    assert!(
        w.app
            .core
            .store
            .credentials_of(acme.id, &Default::default(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

on_both_backends!(
    a_partner_withdraws_an_undecided_request,
    a_grant_asked_for_under_another_tenant_is_not_found,
    a_client_rotates_through_two_live_secrets,
    the_credentials_list_filters_and_pages_by_keyset,
    revoking_a_grant_or_a_partner_needs_the_slug_and_stops_every_credential,
    a_request_becomes_a_working_token_that_revocation_stops_at_once,
    credentials_expire_on_time_and_are_swept,
    a_denied_request_tells_the_partner_why,
    two_admins_deciding_at_once_produce_exactly_one_decision,
    revoking_at_the_same_time_from_two_places_revokes_once,
    spam_on_the_public_form_is_turned_away,
    an_unconfirmed_request_lapses_after_seven_days,
);
