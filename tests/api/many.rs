//! A console with more tenants and staff than fit on a page: every list pages through everything
//! (nothing is silently cut off) and the tenant pickers reach the last tenant.

use reqwest::StatusCode;
use serde_json::Value;
use tokenbroker::domain::events::{Actor, Event, EventType, Outcome};
use tokenbroker::domain::ids::TenantId;
use tokenbroker::domain::tenants::{BrandColour, NewTenant, Slug};

use crate::automation::key_for;
use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

/// More than two pages' worth (the console shows 50 per page).
const TENANTS: usize = 120;
const STAFF: usize = 60;

/// `count` tenants named "Tenant 0000"… with slugs "tenant-0000"…, straight through the store.
pub(crate) async fn many_tenants(app: &TestApp, count: usize) {
    for n in 0..count {
        let tenant = NewTenant {
            name: format!("Tenant {n:04}"),
            slug: Slug::parse(&format!("tenant-{n:04}")).unwrap(),
            colour: BrandColour::parse("#336699").unwrap(),
            logo: None,
        };
        let event = Event::new(
            app.now_ms(),
            EventType::TenantCreated,
            Outcome::Success,
            Actor::Cli,
        );
        assert!(
            app.core
                .store
                .insert_tenant(TenantId::new(), &tenant, app.now_ms(), &event)
                .await
                .unwrap()
        );
    }
}

/// Follows the page's `next` link until there is none; the texts of `items` on every page.
async fn every_page(app: &TestApp, first: &str, items: &str, next: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut path = first.to_owned();
    loop {
        let html = app.page_with_form(&path).await;
        let page = all_text_of(&html, items);
        assert!(page.len() <= 50, "a page holds at most 50");
        seen.extend(page);
        let link = scraper::Html::parse_document(&html)
            .select(&scraper::Selector::parse(next).unwrap())
            .next()
            .map(|a| a.value().attr("href").unwrap().to_owned());
        match link {
            Some(href) => path = href,
            None => return seen,
        }
    }
}

async fn manage_tenants_pages_through_every_tenant_and_searches(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    many_tenants(&app, TENANTS).await;

    let all = every_page(
        &app,
        "/admin/tenants",
        "#all-tenants li > a:first-child",
        "#next-tenants",
    )
    .await;
    assert_eq!(all.len(), TENANTS);
    assert_eq!(
        all.last().unwrap(),
        "Tenant 0119",
        "the last tenant is reachable"
    );
    let found = every_page(
        &app,
        "/admin/tenants?q=tenant-011",
        "#all-tenants li > a:first-child",
        "#next-tenants",
    )
    .await;
    assert_eq!(found.len(), 10);

    // The switcher page too, keeping the kind of page to open.
    let switcher = every_page(
        &app,
        "/tenants?then=credentials",
        "#tenant-list a",
        "#next-tenants",
    )
    .await;
    assert_eq!(switcher.len(), TENANTS);
    let last_page = app
        .page_with_form("/tenants?then=credentials&after=tenant-0099")
        .await;
    assert!(last_page.contains(r#"href="/t/tenant-0119/credentials""#));
}

async fn a_role_and_an_invitation_can_be_given_for_the_last_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    many_tenants(&app, TENANTS).await;

    // By slug, as the picker fills it in.
    let by_slug = invite(
        &app,
        "last@example.com",
        "Last Admin",
        "tenant_admin",
        Some("tenant-0119"),
    )
    .await;
    assert_redirect_to(&by_slug, "/admin/invitations?notice=sent");

    // Without script: part of a name brings the form back with the matches to pick from, and the
    // chosen role kept.
    let partial = invite(
        &app,
        "other@example.com",
        "Other Admin",
        "tenant_admin",
        Some("Tenant 011"),
    )
    .await;
    assert_eq!(partial.status(), StatusCode::BAD_REQUEST);
    let html = partial.text().await.unwrap();
    assert!(html.contains("pick one of the matching tenants"), "{html}");
    let choices: Vec<String> = scraper::Html::parse_document(&html)
        .select(&scraper::Selector::parse("#tenant-matches input[type=radio]").unwrap())
        .map(|i| i.value().attr("value").unwrap().to_owned())
        .collect();
    assert_eq!(choices.len(), 10);
    assert!(choices.contains(&"tenant-0115".to_owned()));
    assert!(html.contains(r#"<option value="tenant_admin" selected>"#));
    assert!(
        app.core
            .store
            .pending_invitations(app.now_ms())
            .await
            .unwrap()
            .iter()
            .all(|i| i.email != "other@example.com"),
        "nothing was sent while the tenant was unclear"
    );
    let picked = invite(
        &app,
        "other@example.com",
        "Other Admin",
        "tenant_admin",
        Some("tenant-0115"),
    )
    .await;
    assert_redirect_to(&picked, "/admin/invitations?notice=sent");
    let nothing = invite(
        &app,
        "none@example.com",
        "No One",
        "support",
        Some("no such tenant"),
    )
    .await;
    assert_eq!(nothing.status(), StatusCode::BAD_REQUEST);
    assert!(nothing.text().await.unwrap().contains("No tenant matches"));

    // A role on a staff member's page, for the last tenant.
    let link = invitation_link(&app, "last@example.com").await;
    accept(&app, &link, STAFF_PASSWORD).await;
    let person = user_id(&app, "last@example.com").await;
    let page = format!("/admin/users/{person}");
    let granted = app
        .submit(
            &page,
            &format!("{page}/roles"),
            &[("role", "support"), ("tenant", "tenant-0118")],
        )
        .await;
    assert_redirect_to(&granted, &format!("{page}?notice=granted"));
    let shown = app.page_with_form(&page).await;
    assert!(shown.contains("tenant-0118"), "{shown}");
}

async fn many_staff(app: &TestApp) {
    use sqlx::Connection;
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    for n in 0..STAFF {
        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at) \
             VALUES ($1, $2, $2, $3, 'active', 0, 0)",
        )
        .bind(TenantId::new().to_string())
        .bind(format!("person{n:03}@example.com"))
        .bind(format!("Person {n:03}"))
        .execute(&mut db)
        .await
        .unwrap();
    }
}

async fn the_staff_list_pages_through_everyone_in_the_console_and_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    many_staff(&app).await;

    let everyone = every_page(
        &app,
        "/admin/users",
        "#staff tbody td:first-child a",
        "#next-staff",
    )
    .await;
    assert_eq!(everyone.len(), STAFF + 1);
    assert_eq!(everyone.first().unwrap(), ADMIN_NAME);
    assert_eq!(everyone.last().unwrap(), "Person 059");
    let found = app.page_with_form("/admin/users?q=PERSON042").await;
    assert_eq!(
        all_text_of(&found, "#staff tbody td:first-child a"),
        vec!["Person 042"]
    );

    let key = key_for(&app, ADMIN_EMAIL, &["view_staff"], &[]).await;
    let api = reqwest::Client::new();
    let mut names = Vec::new();
    let mut path = "/api/v1/staff?limit=25".to_owned();
    loop {
        let page: Value = api
            .get(app.url(&path))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        names.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["display_name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/staff?limit=25&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(names, everyone, "the API pages through the same people");
    let searched: Value = api
        .get(app.url("/api/v1/staff?q=person0"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(searched["items"].as_array().unwrap().len(), 50);
    assert!(searched["next_cursor"].is_string());
}

/// Follows `next_cursor` through an API list; the ids of every item.
async fn every_api_page(app: &TestApp, key: &str, path: &str) -> Vec<String> {
    let api = reqwest::Client::new();
    let mut ids = Vec::new();
    let mut url = format!("{path}?limit=20");
    loop {
        let page: Value = api
            .get(app.url(&url))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}?limit=20&cursor={cursor}"),
            None => return ids,
        }
    }
}

async fn the_request_and_alert_queues_page_through_everything(backend: Backend) {
    use sqlx::Connection;
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let acme = tenant_id(&app, "acme").await;
    let mut db = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    for n in 0..70_i64 {
        sqlx::query(
            "INSERT INTO access_requests (id, tenant_id, organisation, contact_name, email, email_normalized, scopes, justification, status, confirm_token_hash, created_at) \
             VALUES ($1, $2, $3, 'P', $4, $4, '[]', 'x', 'pending', $5, $6)",
        )
        .bind(format!("request-{n:03}"))
        .bind(&acme)
        .bind(format!("Partner {n:03}"))
        .bind(format!("p{n}@example.com"))
        .bind(format!("hash-{n}"))
        .bind(1_000 + n)
        .execute(&mut db)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO alerts (id, tenant_id, detector, severity, status, reason, dedup_key, created_at, updated_at) \
             VALUES ($1, $2, 'login_failure_burst', 'medium', 'open', $3, $1, $4, $4)",
        )
        .bind(format!("alert-{n:03}"))
        .bind(&acme)
        .bind(format!("Burst {n:03}"))
        .bind(1_000 + n)
        .execute(&mut db)
        .await
        .unwrap();
    }

    let requests = every_page(
        &app,
        "/t/acme/requests",
        "#requests tbody td:first-child a",
        "#older-requests",
    )
    .await;
    assert_eq!(requests.len(), 70);
    assert_eq!(
        (requests[0].as_str(), requests[69].as_str()),
        ("Partner 069", "Partner 000")
    );
    for queue in ["/admin/alerts", "/t/acme/alerts", "/admin/alerts?all=1"] {
        let alerts = every_page(
            &app,
            queue,
            "#alerts tbody td:nth-child(4)",
            "#older-alerts",
        )
        .await;
        assert_eq!(alerts.len(), 70, "{queue}");
        assert_eq!(alerts[69], "Burst 000", "{queue}");
    }

    let key = key_for(&app, ADMIN_EMAIL, &["all"], &[]).await;
    assert_eq!(every_api_page(&app, &key, "/api/v1/alerts").await.len(), 70);
    assert_eq!(
        every_api_page(&app, &key, "/api/v1/tenants/acme/alerts")
            .await
            .len(),
        70
    );
    assert_eq!(
        every_api_page(&app, &key, "/api/v1/tenants/acme/requests")
            .await
            .len(),
        70
    );
}

on_both_backends!(
    manage_tenants_pages_through_every_tenant_and_searches,
    a_role_and_an_invitation_can_be_given_for_the_last_tenant,
    the_staff_list_pages_through_everyone_in_the_console_and_the_api,
    the_request_and_alert_queues_page_through_everything,
);
