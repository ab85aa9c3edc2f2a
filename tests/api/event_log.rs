//! The event log pages: filters, keyset paging both ways, tenant isolation, bad filters answered
//! clearly, HTML in details escaped, and streamed CSV / JSON Lines exports.

use reqwest::StatusCode;
use tokenbroker::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use tokenbroker::domain::ids::TenantId;

use crate::client::all_text_of;
use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

pub(crate) struct Log {
    pub(crate) app: TestApp,
    acme: TenantId,
    globex: TenantId,
    /// When event 0 occurred; event i occurred i seconds later.
    start: i64,
}

/// 120 events, newest last: even ones in acme from 10.1.x.x (failed logins), odd ones in globex
/// from 192.0.2.x (successful logins), one second apart.
pub(crate) async fn log(backend: Backend) -> Log {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    let acme = TenantId::parse(&tenant_id(&app, "acme").await).unwrap();
    let globex = TenantId::parse(&tenant_id(&app, "globex").await).unwrap();
    let start = app.now_ms() + 1_000;
    for i in 0..120i64 {
        let (tenant, ip, outcome) = if i % 2 == 0 {
            (
                acme,
                format!("10.1.{}.{}", i / 10, i % 10),
                Outcome::Failure,
            )
        } else {
            (globex, format!("192.0.2.{i}"), Outcome::Success)
        };
        let context = RequestContext {
            ip: Some(ip),
            ..RequestContext::default()
        };
        let event = Event::new(
            start + i * 1_000,
            EventType::Login,
            outcome,
            Actor::Anonymous,
        )
        .tenant(tenant)
        .context(&context)
        .detail("seq", i)
        .detail("credential", format!("cred-{}", i % 3));
        app.core.store.append_event(&event).await.unwrap();
    }
    Log {
        app,
        acme,
        globex,
        start,
    }
}

fn seqs(html: &str) -> Vec<i64> {
    all_text_of(html, "#events td code")
        .iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|d| d["seq"].as_i64())
        .collect()
}

fn href(html: &str, rel: &str) -> Option<String> {
    let document = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(&format!("a[rel={rel}]")).unwrap();
    document
        .select(&selector)
        .next()
        .and_then(|a| a.value().attr("href"))
        .map(|h| h.replace("&amp;", "&"))
}

async fn the_log_pages_newest_first_by_keyset_both_ways(backend: Backend) {
    let l = log(backend).await;
    let first = l
        .app
        .page_with_form("/admin/events?type=login&actor=anonymous")
        .await;
    let page_one = seqs(&first);
    assert_eq!(page_one.len(), 50);
    assert_eq!(page_one[0], 119, "newest first");
    assert!(page_one.windows(2).all(|w| w[0] == w[1] + 1));
    assert!(
        href(&first, "prev").is_none(),
        "nothing newer than the newest page"
    );
    let older = href(&first, "next").expect("an older page");
    assert!(
        older.contains("type=login"),
        "paging keeps the filter: {older}"
    );
    let second = l.app.page_with_form(&older).await;
    assert_eq!(seqs(&second), (20..70).rev().collect::<Vec<_>>());
    let third = l.app.page_with_form(&href(&second, "next").unwrap()).await;
    assert_eq!(seqs(&third), (0..20).rev().collect::<Vec<_>>());
    assert!(
        href(&third, "next").is_none(),
        "the oldest page ends the log"
    );
    let back = l.app.page_with_form(&href(&third, "prev").unwrap()).await;
    assert_eq!(
        seqs(&back),
        seqs(&second),
        "newer from page three is page two again"
    );
}

async fn filters_narrow_the_log(backend: Backend) {
    let l = log(backend).await;
    let only = |query: &'static str| {
        let app = &l.app;
        async move { seqs(&app.page_with_form(&format!("/admin/events?{query}")).await) }
    };
    let failures = only("outcome=failure&type=login").await;
    assert!(!failures.is_empty() && failures.iter().all(|s| s % 2 == 0));
    let network = only("ip=10.1.0.0%2F16").await;
    assert_eq!(network.len(), 50);
    assert!(network.iter().all(|s| s % 2 == 0));
    assert_eq!(only("ip=10.1.3.4").await, vec![34]);
    // Networks between octet boundaries: a /23 is two /24s, a /30 four addresses.
    assert_eq!(
        only("ip=10.1.2.0%2F23").await,
        (20..40).rev().filter(|s| s % 2 == 0).collect::<Vec<i64>>()
    );
    assert_eq!(only("ip=10.1.3.4%2F30").await, vec![36, 34]);
    let globex = only("tenant=globex").await;
    assert!(!globex.is_empty() && globex.iter().all(|s| s % 2 == 1));
    let credential = only("detail=cred-2").await;
    assert!(!credential.is_empty() && credential.iter().all(|s| s % 3 == 2));
    // A one-minute window (the first whole minute after event 0) holds that minute's sixty events;
    // the page shows the newest fifty of them.
    let minute_ms = 60_000;
    let from = (l.start / minute_ms + 1) * minute_ms;
    let first = (from - l.start + 999) / 1_000;
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let at = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp(ms / 1000)
            .unwrap()
            .format(&format)
            .unwrap()
    };
    let window = seqs(
        &l.app
            .page_with_form(&format!(
                "/admin/events?from={}&to={}&type=login",
                at(from),
                at(from + minute_ms)
            ))
            .await,
    );
    assert_eq!(window, (first + 10..first + 60).rev().collect::<Vec<_>>());
    let _ = (l.acme, l.globex);
}

async fn ipv6_networks_are_searched_by_whole_groups(backend: Backend) {
    let l = log(backend).await;
    let at = l.app.now_ms() + 200_000;
    for (seq, ip) in [
        (200, "2001:db8:5::1"),
        (201, "2001:db8:6:1::9"),
        (202, "2001:db9::1"),
    ] {
        let context = RequestContext {
            ip: Some(ip.into()),
            ..RequestContext::default()
        };
        let event = Event::new(
            at + seq,
            EventType::Login,
            Outcome::Success,
            Actor::Anonymous,
        )
        .tenant(l.acme)
        .context(&context)
        .detail("seq", seq);
        l.app.core.store.append_event(&event).await.unwrap();
    }
    let only = |query: &'static str| {
        let app = &l.app;
        async move {
            seqs(
                &app.page_with_form(&format!("/admin/events?ip={query}"))
                    .await,
            )
        }
    };
    assert_eq!(only("2001:db8::%2F32").await, vec![201, 200]);
    assert_eq!(only("2001:db8:5::%2F48").await, vec![200]);
    assert_eq!(only("2001:db8:6:1::%2F64").await, vec![201]);
    assert_eq!(
        only("2001:DB8:5:0::1").await,
        vec![200],
        "typed uncompressed"
    );
}

async fn bad_filters_are_explained_and_html_is_escaped(backend: Backend) {
    let l = log(backend).await;
    for (query, field) in [
        ("type=bogus", "type:"),
        ("ip=10.1.2.1%2F23", "ip:"),
        ("ip=2001:db8::%2F33", "ip:"),
        ("ip=not-an-ip", "ip:"),
        ("from=yesterday", "from:"),
        ("from=2026-11-25&to=2026-11-24", "to:"),
        ("tenant=nowhere", "tenant:"),
        ("country=Germany", "country:"),
        ("actor=robot", "actor:"),
    ] {
        let response = l.app.get(&format!("/admin/events?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let html = response.text().await.unwrap();
        assert!(
            text_of(&html, ".alert").unwrap().starts_with(field),
            "{query}"
        );
    }
    let sql = l.app.get("/admin/events?text=%27%20OR%201%3D1%20--").await;
    assert_eq!(sql.status(), StatusCode::OK);
    assert!(seqs(&sql.text().await.unwrap()).is_empty());
    let huge = l
        .app
        .get(&format!("/admin/events?text={}", "a".repeat(500)))
        .await;
    assert_eq!(huge.status(), StatusCode::BAD_REQUEST);
    // A junk cursor is just the first page.
    assert_eq!(
        seqs(&l.app.page_with_form("/admin/events?before=1_%27--").await).len(),
        50
    );

    let script = Event::new(
        l.app.now_ms() + 500_000,
        EventType::Login,
        Outcome::Failure,
        Actor::Anonymous,
    )
    .tenant(l.acme)
    .detail("note", "<script>alert(1)</script>");
    l.app.core.store.append_event(&script).await.unwrap();
    let html = l.app.page_with_form("/admin/events").await;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"));
}

async fn tenant_staff_see_their_tenant_only(backend: Backend) {
    let l = log(backend).await;
    let admin = staff_member(&l.app, "ta@example.com", "tenant_admin", Some("acme")).await;
    let own = seqs(&admin.page_with_form("/t/acme/events").await);
    assert_eq!(own.len(), 50);
    assert!(own.iter().all(|s| s % 2 == 0));
    // The tenant filter cannot be widened from the tenant page.
    let widened = seqs(&admin.page_with_form("/t/acme/events?tenant=globex").await);
    assert!(widened.iter().all(|s| s % 2 == 0));
    assert_eq!(
        admin.get("/t/globex/events").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        admin.get("/admin/events").await.status(),
        StatusCode::FORBIDDEN
    );
    let export = admin
        .get("/t/acme/events/export?format=jsonl")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        export
            .lines()
            .all(|line| line.contains(&l.acme.to_string()))
    );
    assert!(!export.contains(&l.globex.to_string()));
}

async fn exports_stream_the_filtered_selection(backend: Backend) {
    let l = log(backend).await;
    let csv = l
        .app
        .get("/admin/events/export?outcome=failure&format=csv")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("events.csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("occurred_at,tenant_id,actor_kind"));
    assert_eq!(lines.len(), 1 + 60, "every failed login, beyond one page");
    let jsonl = l
        .app
        .get("/admin/events/export?ip=192.0.2.0%2F24&format=jsonl")
        .await;
    let body = jsonl.text().await.unwrap();
    let parsed: Vec<serde_json::Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(parsed.len(), 60);
    assert!(
        parsed
            .iter()
            .all(|e| e["ip"].as_str().unwrap().starts_with("192.0.2."))
    );
    assert_eq!(
        l.app.get("/admin/events/export?format=xml").await.status(),
        StatusCode::BAD_REQUEST
    );
    // A cell a spreadsheet would evaluate is defused.
    let formula = Event::new(
        l.app.now_ms() + 500_000,
        EventType::Login,
        Outcome::Failure,
        Actor::Anonymous,
    )
    .context(&RequestContext {
        user_agent: Some("=HYPERLINK(\"http://evil\")".into()),
        ..RequestContext::default()
    });
    l.app.core.store.append_event(&formula).await.unwrap();
    let text = l
        .app
        .get("/admin/events/export?format=csv")
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("'=HYPERLINK"));
}

/// The public handle of the session `browser` is in, as its sessions page marks it.
async fn this_session(browser: &Browser) -> String {
    let html = browser.page_with_form("/account/sessions").await;
    let document = scraper::Html::parse_document(&html);
    let rows = scraper::Selector::parse("#sessions tr[data-session]").unwrap();
    document
        .select(&rows)
        .find(|row| row.text().any(|t| t.contains("this session")))
        .and_then(|row| row.value().attr("data-session"))
        .expect("the current session is marked")
        .to_owned()
}

fn attrs(html: &str, css: &str, attr: &str) -> Vec<String> {
    let document = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(css).unwrap();
    document
        .select(&selector)
        .filter_map(|e| e.value().attr(attr).map(str::to_owned))
        .collect()
}

async fn each_row_links_to_everything_its_console_session_did(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let security = staff_member(&app, "sec@example.com", "security", None).await;
    let session = this_session(&security).await;
    // Elsewhere: a refused sign-in (it creates no session), then a second session.
    let elsewhere = app.new_browser();
    elsewhere.login("sec@example.com", "not the password").await;
    assert_redirect_to(
        &elsewhere.login("sec@example.com", STAFF_PASSWORD).await,
        "/login/passkey",
    );

    let same = security
        .page_with_form(&format!("/admin/events?session={session}"))
        .await;
    let types = attrs(&same, "#events tbody tr", "data-type");
    assert!(
        types.contains(&"passkey_enrolled".to_owned()),
        "the first passkey and what followed in that session: {types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "login").count(),
        1,
        "its own sign-in, not the other session's: {types:?}"
    );
    let links = attrs(&same, "#events tbody tr a.same-session", "href");
    assert_eq!(links.len(), types.len(), "every row links its session");
    assert!(
        links
            .iter()
            .all(|l| l == &format!("/admin/events?session={session}"))
    );

    let refused = security
        .page_with_form("/admin/events?type=login&outcome=failure")
        .await;
    assert_eq!(all_text_of(&refused, "#events tbody tr").len(), 1);
    assert!(all_text_of(&refused, "#events tbody tr a.same-session").is_empty());
    let signed_in = security
        .page_with_form("/admin/events?type=login&outcome=success")
        .await;
    let sessions = attrs(&signed_in, "#events tbody tr a.same-session", "href");
    assert_eq!(sessions.len(), 2, "{signed_in}");
    let this = format!("/admin/events?session={session}");
    assert_eq!(
        sessions.iter().filter(|s| **s != this).count(),
        1,
        "the other sign-in links its own session"
    );
}

async fn partners_and_clients_act_under_their_own_names(backend: Backend) {
    let service = crate::oauth_kit::service(backend).await;
    service.access_token().await;
    let admin = &service.w.tenant_admin;

    let partner = admin.page_with_form("/t/acme/events?actor=partner").await;
    let types = attrs(&partner, "#events tbody tr", "data-type");
    assert_eq!(
        types,
        ["request_confirmed", "request_submitted"],
        "{partner}"
    );
    let request_pages = attrs(&partner, "#events tbody a.actor-id", "href");
    assert_eq!(request_pages.len(), 2);
    assert!(request_pages[0].starts_with("/t/acme/requests/"));
    assert_eq!(
        request_pages[0], request_pages[1],
        "one request, one partner"
    );

    // People are shown by name, their id on hover.
    let by_staff = service
        .w
        .app
        .page_with_form("/admin/events?actor=user")
        .await;
    let names = all_text_of(&by_staff, "#events tbody .actor-id");
    assert!(!names.is_empty());
    assert!(
        names
            .iter()
            .all(|n| n == ADMIN_NAME || n == "Invited Person"),
        "{names:?}"
    );
    let ids = attrs(&by_staff, "#events tbody .actor-id", "title");
    assert!(ids.iter().all(|id| id.len() == 36), "{ids:?}");

    let issued = admin
        .page_with_form("/t/acme/events?actor=client&type=token_issued")
        .await;
    let credential = all_text_of(&issued, "#events tbody .actor-id");
    assert_eq!(credential.len(), 1, "{issued}");
    let details = all_text_of(&issued, "#events tbody code");
    assert!(
        details[0].contains(&format!("\"credential\":\"{}\"", credential[0].trim())),
        "the actor is the credential that authenticated: {details:?}"
    );
}

on_both_backends!(
    the_log_pages_newest_first_by_keyset_both_ways,
    filters_narrow_the_log,
    ipv6_networks_are_searched_by_whole_groups,
    bad_filters_are_explained_and_html_is_escaped,
    tenant_staff_see_their_tenant_only,
    exports_stream_the_filtered_selection,
    each_row_links_to_everything_its_console_session_did,
    partners_and_clients_act_under_their_own_names,
);
