//! The console and the automation API at a support company's scale: `TB_BENCH_TENANTS` tenants
//! (default 10,000) created by the tenant use case, and `TB_BENCH_CREDENTIALS` credentials (default
//! 1,000,000) minted by the mint use case — a tenth of them in one large tenant, the rest spread over
//! a thousand partner tenants — and `TB_BENCH_STAFF` staff accounts (default 2,000). Then, over HTTP against the real server (two workers), p50/p95 of
//! `TB_BENCH_SAMPLES` (default 200) sequential requests for each API list and search, and for the
//! console's tenant switcher (page and top-bar search), dashboard and credential list, signed in as
//! the superadmin.
//!
//! `cargo bench --bench scale` (a temporary SQLite database), `TB_BENCH_BACKEND=postgres` for a fresh
//! PostgreSQL database (`TB_TEST_POSTGRES_URL` names the server). Figures go in the issue note.

// Test code, not a request path: a panic here fails the run, which is what benchmarks should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code,
    unused_imports
)]

#[path = "../tests/api/client.rs"]
mod client;
#[path = "../tests/api/helpers.rs"]
mod helpers;
#[path = "support/seed.rs"]
mod seed;

use std::time::{Duration, Instant};

use helpers::{ADMIN_EMAIL, Backend, TestApp, spawn_app_with};
use secrecy::ExposeSecret;
use tokenbroker::domain::api_keys::{self, NewApiKey};
use tokenbroker::domain::email::Email;
use tokenbroker::domain::events::{Actor, RequestContext};
use tokenbroker::domain::ids::UserId;
use tokenbroker::domain::partners::{self, Delivery, MintRequest};
use tokenbroker::domain::tenants::{self, BrandColour, NewTenant, Slug};
use tokenbroker::domain::users;

/// Tenants with partners; the others have none (most customers of a support company are small).
const PARTNER_TENANTS: usize = 1_000;
/// Credentials minted at once (SQLite has one writer; PostgreSQL takes them in parallel).
const MINTERS: usize = 4;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let tenant_count: usize = seed::env_number("TB_BENCH_TENANTS", 10_000);
    let credential_count: usize = seed::env_number("TB_BENCH_CREDENTIALS", 1_000_000);
    let samples: usize = seed::env_number("TB_BENCH_SAMPLES", 200);
    let staff_count: usize = seed::env_number("TB_BENCH_STAFF", 2_000);
    let backend = match std::env::var("TB_BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    println!("backend: {backend:?}");
    let app = spawn_app_with(backend, |settings| {
        settings.workers = 2;
        settings.api_rate_limit = u32::MAX;
    })
    .await;
    app.create_admin().await;
    let admin = users::by_email(&app.core, &Email::parse(ADMIN_EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();

    let slugs = create_tenants(&app, admin.id, tenant_count).await;
    create_staff(&app, staff_count).await;
    let partner_tenants = &slugs[..PARTNER_TENANTS.min(slugs.len())];
    let grants = create_grants(&app, admin.id, partner_tenants).await;
    mint_credentials(&app, admin.id, &grants, credential_count).await;
    if backend == Backend::Postgres {
        sqlx::query("ANALYZE")
            .execute(&pool(&app).await)
            .await
            .expect("analyze");
    }

    let key = {
        let permissions = vec!["all".to_owned()];
        let new = NewApiKey::parse("bench", &permissions, &admin).unwrap();
        let (_, key) = api_keys::create(&app.core, &admin, new, Actor::Cli, &context())
            .await
            .unwrap();
        key.expose_secret().to_owned()
    };
    let big = &slugs[0];
    let small = &slugs[PARTNER_TENANTS.min(slugs.len()) - 1];
    let api = reqwest::Client::new();
    let base = app.url("");
    let deep_tenants = deep_cursor(&api, &base, &key, "/api/v1/tenants?limit=500", 18).await;
    let deep_staff = deep_cursor(&api, &base, &key, "/api/v1/staff?limit=500", 3).await;
    let deep_credentials = deep_cursor(
        &api,
        &base,
        &key,
        &format!("/api/v1/tenants/{big}/credentials?limit=500"),
        100,
    )
    .await;

    println!("\n{:<62} {:>8} {:>8}", "request", "p50 ms", "p95 ms");
    let api_paths = [
        "/api/v1/tenants".to_owned(),
        "/api/v1/tenants?q=Customer%200042".to_owned(),
        "/api/v1/tenants?q=customer-9".to_owned(),
        paged("/api/v1/tenants", "cursor", &deep_tenants),
        format!("/api/v1/tenants/{big}/credentials"),
        paged(
            &format!("/api/v1/tenants/{big}/credentials"),
            "cursor",
            &deep_credentials,
        ),
        format!("/api/v1/tenants/{big}/credentials?prefix=tbc_live_"),
        format!("/api/v1/tenants/{big}/credentials?partner=partner-0&status=active"),
        format!("/api/v1/tenants/{big}/credentials?status=revoked"),
        format!("/api/v1/tenants/{small}/credentials"),
        format!("/api/v1/tenants/{big}/grants"),
        format!("/api/v1/tenants/{big}/requests"),
        "/api/v1/events?limit=50".to_owned(),
        "/api/v1/staff".to_owned(),
        "/api/v1/staff?q=person-01".to_owned(),
        paged("/api/v1/staff", "cursor", &deep_staff),
    ];
    for path in &api_paths {
        let url = format!("{base}{path}");
        let (p50, p95) = measure(samples, || api.get(&url).header("x-api-key", &key).send()).await;
        print_row(path, p50, p95);
    }
    let console_paths = [
        "/".to_owned(),
        "/tenants".to_owned(),
        "/tenants?q=Customer%200042".to_owned(),
        "/tenants?q=customer-9".to_owned(),
        "/tenants/suggest?q=".to_owned(),
        "/tenants/suggest?q=Customer%200042".to_owned(),
        "/tenants/suggest?q=customer-9&then=credentials".to_owned(),
        format!("/t/{big}/credentials"),
        format!("/t/{big}/credentials?prefix=tbc_live_"),
        format!("/t/{big}/credentials?status=revoked"),
        format!("/t/{small}/credentials"),
        "/admin/tenants".to_owned(),
        "/admin/tenants?q=customer-9".to_owned(),
        "/admin/tenants?after=customer-09000".to_owned(),
        "/admin/users".to_owned(),
        "/admin/users?q=person-01".to_owned(),
        paged("/admin/users", "after", &deep_staff),
        "/admin/invitations".to_owned(),
    ];
    for path in &console_paths {
        let (p50, p95) = measure(samples, || app.browser_get(path)).await;
        print_row(&format!("console {path}"), p50, p95);
    }
}

async fn pool(app: &TestApp) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&app.database_url)
        .await
        .expect("pool")
}

fn context() -> RequestContext {
    RequestContext::default()
}

/// Creates the tenants through the use case, two at a time; returns their slugs, by name.
async fn create_tenants(app: &TestApp, admin: UserId, count: usize) -> Vec<String> {
    let started = Instant::now();
    let colour = BrandColour::parse("#336699").unwrap();
    let slugs: Vec<String> = (0..count).map(|i| format!("customer-{i:05}")).collect();
    for chunk in slugs.chunks(2) {
        let mut creating = Vec::new();
        for slug in chunk {
            let tenant = NewTenant {
                name: format!("Customer {}", &slug[9..]),
                slug: Slug::parse(slug).unwrap(),
                colour: colour.clone(),
                logo: None,
            };
            creating.push(async move {
                tenants::create(&app.core, admin, tenant, &context())
                    .await
                    .unwrap()
            });
        }
        futures_util::future::join_all(creating).await;
    }
    println!(
        "created {count} tenants in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    slugs
}

/// Staff accounts (no roles): the staff list and its search at a large company's size.
async fn create_staff(app: &TestApp, count: usize) {
    let pool = pool(app).await;
    for n in 0..count {
        sqlx::query(
            "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at) \
             VALUES ($1, $2, $2, $3, 'active', 0, 0)",
        )
        .bind(tokenbroker::domain::ids::TenantId::new().to_string())
        .bind(format!("person-{n:05}@example.com"))
        .bind(format!("Person {n:05}"))
        .execute(&pool)
        .await
        .expect("staff");
    }
}

/// One approved partner per tenant. The request and the grant are written directly: the public
/// request form's confirmation mail is not what this benchmark measures.
async fn create_grants(
    app: &TestApp,
    admin: UserId,
    slugs: &[String],
) -> Vec<(tenants::Tenant, partners::Grant)> {
    let pool = pool(app).await;
    let mut grants = Vec::new();
    for (i, slug) in slugs.iter().enumerate() {
        let tenant = tenants::by_slug(&app.core, slug).await.unwrap().unwrap();
        let id = tenant.id;
        for sql in [
            format!(
                "INSERT INTO access_requests (id, tenant_id, organisation, contact_name, email, email_normalized, scopes, justification, status, confirm_token_hash, created_at) \
                 VALUES ('r{i}', '{id}', 'Partner {i}', 'P', 'partner-{i}@example.com', 'partner-{i}@example.com', '[\"read\"]', 'x', 'approved', 'h{i}', 0)"
            ),
            format!(
                "INSERT INTO grants (id, tenant_id, request_id, organisation, contact_email, scopes, max_lifetime_days, created_at, created_by) \
                 VALUES ('g{i}', '{id}', 'r{i}', 'Partner {i}', 'partner-{i}@example.com', '[\"read\"]', 365, 0, '{admin}')"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .expect("grant");
        }
        let grant = partners::grant(&app.core, id, &format!("g{i}"))
            .await
            .unwrap();
        grants.push((tenant, grant));
    }
    grants
}

/// Mints `total` credentials through the mint use case: a tenth under the first grant, the rest
/// spread evenly; every fourth is a client credential, every hundredth is revoked afterwards.
async fn mint_credentials(
    app: &TestApp,
    admin: UserId,
    grants: &[(tenants::Tenant, partners::Grant)],
    total: usize,
) {
    let started = Instant::now();
    let in_big = total / 10;
    let per_other = (total - in_big) / (grants.len() - 1).max(1);
    let mut plan: Vec<(usize, usize)> = vec![(0, in_big)];
    plan.extend((1..grants.len()).map(|g| (g, per_other)));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let jobs: Vec<(usize, usize)> = plan
        .iter()
        .flat_map(|&(g, n)| (0..n).map(move |i| (g, i)))
        .collect();
    let minted = std::sync::atomic::AtomicUsize::new(0);
    let minter = || async {
        loop {
            let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&(g, i)) = jobs.get(at) else { break };
            let (tenant, grant) = &grants[g];
            let kind = if i % 4 == 0 { "client" } else { "api_token" };
            let mut request = MintRequest::parse(kind, "365", grant).unwrap();
            request.delivery = Delivery::Link;
            let credential = partners::mint(&app.core, admin, tenant, grant, request, &context())
                .await
                .unwrap();
            if i % 100 == 1 {
                partners::revoke(
                    &app.core,
                    admin,
                    tenant.id,
                    &credential.id,
                    "rotated",
                    &context(),
                )
                .await
                .unwrap();
            }
            let done = minted.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if done % 100_000 == 0 {
                println!(
                    "  {done} credentials after {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
    };
    futures_util::future::join_all((0..MINTERS).map(|_| minter())).await;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "minted {} credentials in {seconds:.1} s ({:.0} per second)",
        jobs.len(),
        jobs.len() as f64 / seconds
    );
}

/// The cursor `pages` pages of `limit` items into a list.
async fn deep_cursor(
    api: &reqwest::Client,
    base: &str,
    key: &str,
    path: &str,
    pages: usize,
) -> String {
    let mut cursor = String::new();
    for _ in 0..pages {
        let separator = if cursor.is_empty() { "" } else { "&cursor=" };
        let body: serde_json::Value = api
            .get(format!("{base}{path}{separator}{cursor}"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    cursor
}

/// `path?name=value`, or the path alone when a small database has no page that deep.
fn paged(path: &str, name: &str, value: &str) -> String {
    if value.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{name}={value}")
    }
}

/// p50 and p95 of `samples` sequential requests, after a few to warm up; every answer must be 200.
async fn measure<F, Fut>(samples: usize, mut request: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    for _ in 0..5 {
        request().await.unwrap().bytes().await.unwrap();
    }
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let response = request().await.unwrap();
        let status = response.status();
        response.bytes().await.unwrap();
        times.push(started.elapsed());
        assert_eq!(status, reqwest::StatusCode::OK);
    }
    times.sort();
    (times[samples / 2], times[samples * 95 / 100])
}

fn print_row(what: &str, p50: Duration, p95: Duration) {
    // A cursor is long and says nothing: the row names the list, the cursor is elided.
    let what = match what.find("cursor=") {
        Some(at) => format!("{}cursor=…", &what[..at]),
        None => what.to_owned(),
    };
    println!(
        "{what:<62} {:>8.2} {:>8.2}",
        p50.as_secs_f64() * 1000.0,
        p95.as_secs_f64() * 1000.0
    );
}

trait BrowserGet {
    fn browser_get(&self, path: &str) -> impl Future<Output = reqwest::Result<reqwest::Response>>;
}

impl BrowserGet for TestApp {
    fn browser_get(&self, path: &str) -> impl Future<Output = reqwest::Result<reqwest::Response>> {
        self.browser.client.get(self.browser.url(path)).send()
    }
}
