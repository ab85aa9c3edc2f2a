//! Tenants: creation with colour and logo, what is refused, suspension, the band on every page, the
//! switcher.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

async fn a_signed_in_person_keeps_the_menu_on_an_error_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    for path in [
        "/t/no-such-tenant",
        "/t/acme/credentials/no-such-credential",
        "/no/such/page",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let html = response.text().await.unwrap();
        assert!(text_of(&html, "nav.account").is_some(), "{path}: {html}");
        assert!(html.contains("Go to the dashboard"));
    }
    // Someone without an account (a partner on a spent link) is not sent to a console they
    // cannot enter.
    let partner = app
        .new_browser()
        .get("/t/no-such-tenant/request-access")
        .await;
    assert_eq!(partner.status(), StatusCode::NOT_FOUND);
    let html = partner.text().await.unwrap();
    assert!(text_of(&html, "nav.account").is_none());
    assert!(!html.contains("Go to the dashboard"), "{html}");
}

async fn a_superadmin_creates_a_branded_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let logo = png(16, 16);

    let created = create_tenant(
        &app,
        "Acme Bank",
        "acme-bank",
        "#ffcc00",
        Some(logo.clone()),
    )
    .await;

    assert_redirect_to(&created, "/t/acme-bank");
    let home = app.page_with_form("/t/acme-bank").await;
    assert_eq!(
        text_of(&home, ".tenant-band .tenant-name").as_deref(),
        Some("Acme Bank")
    );
    assert!(text_of(&home, "title").unwrap().contains("Acme Bank"));
    assert!(home.contains(r#"href="/t/acme-bank/theme.css""#));
    let theme = app
        .get("/t/acme-bank/theme.css")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        theme.contains("background: #ffcc00; color: #000000;"),
        "{theme}"
    );
    let served = app.get("/t/acme-bank/logo").await;
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert_eq!(served.bytes().await.unwrap().to_vec(), logo);
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "tenant_created" && e.tenant_id.is_some())
    );
}

async fn bad_tenant_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    assert_redirect_to(
        &create_tenant(&app, "Acme", "acme", "#123456", None).await,
        "/t/acme",
    );
    let count = || async {
        app.core
            .store
            .search_tenants(
                tokenbroker::store::tenants::TenantScope::All,
                None,
                "",
                None,
                100,
            )
            .await
            .unwrap()
            .len()
    };
    let before = count().await;

    let duplicate = create_tenant(&app, "Acme again", "acme", "#123456", None).await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    assert!(duplicate.text().await.unwrap().contains("already taken"));
    for (slug, colour, message) in [
        ("Bad Slug!", "#123456", "lower-case letters"),
        ("fine-slug", "red", "Pick a colour"),
        ("fine-slug", "#12345", "Pick a colour"),
    ] {
        let response = create_tenant(&app, "Name", slug, colour, None).await;
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{slug} {colour}"
        );
        assert!(response.text().await.unwrap().contains(message));
    }
    let html_as_png = b"<html><body><script>alert(1)</script></body></html>".to_vec();
    let svg =
        br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    // 4096 x 4096 pixels of nothing: a few kilobytes that would decode to 16 MB.
    let bomb = png(4096, 4096);
    assert!(bomb.len() < 512 * 1024);
    for (logo, message) in [
        (html_as_png, "PNG, JPEG or WebP"),
        (svg, "PNG, JPEG or WebP"),
        (bomb, "2048"),
    ] {
        let response = create_tenant(&app, "Name", "fine-slug", "#123456", Some(logo)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.text().await.unwrap().contains(message));
    }
    let huge = create_tenant(
        &app,
        "Name",
        "fine-slug",
        "#123456",
        Some(vec![0u8; 50 * 1024 * 1024]),
    )
    .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(count().await, before);
}

async fn suspension_needs_the_slug_typed_and_is_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;

    let wrong = app
        .submit(
            "/t/acme/settings",
            "/t/acme/suspend",
            &[("confirm_slug", "acne")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    assert!(
        text_of(&wrong.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("Type the tenant's slug")
    );
    assert!(!app.page_with_form("/t/acme").await.contains("suspended"));

    let no_reason = app
        .submit(
            "/t/acme/settings",
            "/t/acme/suspend",
            &[("confirm_slug", "acme")],
        )
        .await;
    assert_eq!(no_reason.status(), StatusCode::BAD_REQUEST);
    // A suspension waits for a second superadmin.
    let second = staff_member(&app, "root2@example.com", "superadmin", None).await;
    let id = requested_approval(
        &app.submit(
            "/t/acme/settings",
            "/t/acme/suspend",
            &[("confirm_slug", "acme"), ("reason", "unpaid invoices")],
        )
        .await,
    );
    assert!(!app.page_with_form("/t/acme").await.contains("suspended"));
    assert!(
        text_of(
            &app.page_with_form("/t/acme/settings").await,
            "#pending-suspension"
        )
        .is_some()
    );
    assert_redirect_to(
        &approve(&second, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    assert!(
        text_of(&app.page_with_form("/t/acme").await, ".tenant-band")
            .unwrap()
            .contains("suspended")
    );
    let reactivated = app
        .submit("/t/acme/settings", "/t/acme/reactivate", &[])
        .await;
    assert_redirect_to(&reactivated, "/t/acme/settings?notice=reactivated");
    let events = app.events().await;
    let suspension = events
        .iter()
        .find(|e| e.event_type == "tenant_suspended")
        .unwrap();
    assert!(
        suspension.details.contains(r#""before":"active""#)
            && suspension.details.contains(r#""after":"suspended""#)
    );
    assert!(events.iter().any(|e| e.event_type == "tenant_reactivated"));
}

async fn a_new_logo_replaces_the_old_one_and_bad_files_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    assert_eq!(
        app.get("/t/acme/logo").await.status(),
        StatusCode::NOT_FOUND
    );
    let upload = |bytes: Vec<u8>| async {
        let html = app.page_with_form("/t/acme/settings").await;
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", csrf_token(&html))
            .part(
                "logo",
                reqwest::multipart::Part::bytes(bytes).file_name("logo.png"),
            );
        app.client
            .post(app.url("/t/acme/logo"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    };

    assert_redirect_to(&upload(png(8, 8)).await, "/t/acme/settings?notice=logo");
    assert_eq!(app.get("/t/acme/logo").await.status(), StatusCode::OK);
    assert_eq!(
        upload(b"GIF89a not allowed".to_vec()).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/t/acme/logo")
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        png(8, 8)
    );
}

async fn an_upload_without_its_csrf_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;

    let form = reqwest::multipart::Form::new().part(
        "logo",
        reqwest::multipart::Part::bytes(png(8, 8)).file_name("x.png"),
    );
    let response = app
        .client
        .post(app.url("/t/acme/logo"))
        .multipart(form)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/t/acme/logo").await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn suggestions(browser: &Browser, query: &str) -> Vec<(String, String, bool)> {
    let response = browser.get(&format!("/tenants/suggest?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let found: Vec<serde_json::Value> = response.json().await.unwrap();
    found
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["href"].as_str().unwrap().to_owned(),
                t["recent"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn the_top_bar_switcher_keeps_the_kind_of_page_and_offers_recent_tenants_first(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    for (name, slug) in [
        ("Acme", "acme"),
        ("Globex", "globex"),
        ("Initech", "initech"),
    ] {
        create_tenant(&app, name, slug, "#123456", None).await;
    }
    let page = app.page_with_form("/t/globex/credentials").await;
    assert!(text_of(&page, "#switcher-form").is_some(), "on every page");
    assert_eq!(
        text_of(&page, ".topbar .current-tenant").as_deref(),
        Some("Globex")
    );
    app.page_with_form("/t/acme").await;

    // Nothing typed: the tenants used lately first, most recent first.
    assert_eq!(
        suggestions(&app, "q=&then=credentials").await,
        vec![
            ("Acme".into(), "/t/acme/credentials".into(), true),
            ("Globex".into(), "/t/globex/credentials".into(), true),
            ("Initech".into(), "/t/initech/credentials".into(), false),
        ]
    );
    assert_eq!(
        suggestions(&app, "q=GLO&then=requests").await,
        vec![("Globex".into(), "/t/globex/requests".into(), false)]
    );

    // Without script: the form goes to the switcher page, which opens the only match on the same
    // kind of page as the one the search was made from.
    let referer = app.origin.join("/t/acme/requests/some-request").unwrap();
    let only = app
        .client
        .get(app.url("/tenants?go=1&q=glob"))
        .header("referer", referer.as_str())
        .send()
        .await
        .unwrap();
    assert_redirect_to(&only, "/t/globex/requests");
    let several = app
        .client
        .get(app.url("/tenants?go=1&q=e"))
        .header("referer", referer.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(several.status(), StatusCode::OK);
    let html = several.text().await.unwrap();
    let links: Vec<String> = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("#tenant-list a").unwrap())
        .map(|a| a.value().attr("href").unwrap().to_owned())
        .collect();
    assert_eq!(
        links,
        vec![
            "/t/acme/requests",
            "/t/globex/requests",
            "/t/initech/requests"
        ]
    );
    let recent = app.page_with_form("/tenants").await;
    assert_eq!(
        all_text_of(&recent, "#recent-tenants a"),
        vec!["Acme", "Globex"]
    );

    // A support person is offered only their own tenants.
    let support = staff_member(&app, "sup@example.com", "support", Some("initech")).await;
    assert_eq!(
        suggestions(&support, "q=").await,
        vec![("Initech".into(), "/t/initech".into(), false)]
    );
}

async fn the_switcher_lists_only_the_tenants_one_may_act_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    for (name, slug) in [
        ("Acme Bank", "acme"),
        ("Globex", "globex"),
        ("Initech", "initech"),
    ] {
        create_tenant(&app, name, slug, "#123456", None).await;
    }
    let support = staff_member(&app, "sam@example.com", "support", Some("globex")).await;

    let theirs = support.page_with_form("/tenants").await;
    assert_eq!(all_text_of(&theirs, "#tenant-list a"), vec!["Globex"]);
    let dashboard = support.page_with_form("/").await;
    assert_eq!(all_text_of(&dashboard, "#my-tenants a"), vec!["Globex"]);
    let all = app.page_with_form("/tenants").await;
    assert_eq!(
        all_text_of(&all, "#tenant-list a"),
        vec!["Acme Bank", "Globex", "Initech"]
    );
    let searched = app.page_with_form("/tenants?q=TECH").await;
    assert_eq!(all_text_of(&searched, "#tenant-list a"), vec!["Initech"]);
    let percent = app.page_with_form("/tenants?q=%25").await;
    assert!(
        all_text_of(&percent, "#tenant-list a").is_empty(),
        "LIKE wildcards are escaped"
    );
}

on_both_backends!(
    a_signed_in_person_keeps_the_menu_on_an_error_page,
    the_top_bar_switcher_keeps_the_kind_of_page_and_offers_recent_tenants_first,
    a_superadmin_creates_a_branded_tenant,
    bad_tenant_input_is_refused_and_changes_nothing,
    suspension_needs_the_slug_typed_and_is_recorded,
    a_new_logo_replaces_the_old_one_and_bad_files_are_refused,
    an_upload_without_its_csrf_token_is_refused,
    the_switcher_lists_only_the_tenants_one_may_act_in,
);

async fn the_switcher_stays_usable_with_a_thousand_tenants(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    crate::many::many_tenants(&app, 1000).await;

    let first_page = app.page_with_form("/tenants").await;
    assert_eq!(all_text_of(&first_page, "#tenant-list a").len(), 50);
    assert!(
        text_of(&first_page, "#next-tenants").is_some(),
        "more than a page says how to get further"
    );
    let found = app.page_with_form("/tenants?q=tenant-0777").await;
    assert_eq!(all_text_of(&found, "#tenant-list a"), vec!["Tenant 0777"]);
}

on_both_backends!(the_switcher_stays_usable_with_a_thousand_tenants);
