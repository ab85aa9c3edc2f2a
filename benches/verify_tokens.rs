//! Opaque-credential verification with a million credentials stored (issue: "verifications per
//! second with a million credentials stored").
//!
//! `cargo bench --bench verify_tokens` builds a temporary SQLite database (or uses
//! `TB_BENCH_DATABASE_URL`, which must point at an empty database) holding `TB_BENCH_CREDENTIALS`
//! (default 1,000,000) credentials, each with a retrieved secret, then times `partners::verify` —
//! the function introspection will call — for known tokens (10,000 distinct: most calls are a
//! token's first use this minute, so they also record the last use), a hot set of 100 tokens (a
//! gateway's steady state: last use written once a minute each), unknown and malformed tokens, on
//! one task and on two.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use secrecy::ExposeSecret;
use sqlx::any::install_default_drivers;
use tokenbroker::clock::SystemClock;
use tokenbroker::domain::Core;
use tokenbroker::domain::partners;
use tokenbroker::domain::password::PasswordService;
use tokenbroker::domain::secrets::SecretDigest;
use tokenbroker::domain::tokens::{self, SecretKind};
use tokenbroker::store::Store;

const BATCH: usize = 400;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = std::env::var("TB_BENCH_CREDENTIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("TB_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/verify.db?mode=rwc", dir.path().display()));
    install_default_drivers();
    let store = Store::connect_lazy(&url.clone().into()).expect("store");
    store.migrate().await.expect("migrations");
    let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
    let now = now_ms();

    for sql in [
        "INSERT INTO tenants (id, slug, name, brand_colour, status, created_at, updated_at) VALUES ('t', 'bench', 'Bench', '#336699', 'active', 0, 0)",
        "INSERT INTO users (id, email, email_normalized, display_name, status, created_at, updated_at) VALUES ('00000000-0000-4000-8000-000000000001', 'b@example.com', 'b@example.com', 'B', 'active', 0, 0)",
        "INSERT INTO access_requests (id, tenant_id, organisation, contact_name, email, email_normalized, scopes, justification, status, confirm_token_hash, created_at) VALUES ('r', 't', 'P', 'P', 'p@example.com', 'p@example.com', '[\"read\"]', 'x', 'approved', 'h', 0)",
        "INSERT INTO grants (id, tenant_id, request_id, organisation, contact_email, scopes, max_lifetime_days, created_at, created_by) VALUES ('g', 't', 'r', 'P', 'p@example.com', '[\"read\"]', 365, 0, '00000000-0000-4000-8000-000000000001')",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("fixture");
    }

    let started = Instant::now();
    let mut sample = Vec::new();
    let expires = now + 365 * 86_400_000;
    for batch_start in (0..total).step_by(BATCH) {
        let n = BATCH.min(total - batch_start);
        let mut credentials = String::from(
            "INSERT INTO credentials (id, tenant_id, grant_id, kind, status, created_at, created_by, expires_at) VALUES ",
        );
        let mut secrets = String::from(
            "INSERT INTO credential_secrets (id, tenant_id, credential_id, secret_hash, display_prefix, created_at, expires_at, retrieval_token_hash, retrieval_expires_at, retrieved_at) VALUES ",
        );
        for i in 0..n {
            let id = batch_start + i;
            let issued = tokens::issue(SecretKind::ApiToken, "live");
            let hash = SecretDigest::of(issued.secret.expose_secret());
            if id % 100 == 0 {
                sample.push(issued.secret.expose_secret().to_owned());
            }
            let sep = if i == 0 { "" } else { "," };
            credentials.push_str(&format!("{sep}('c{id}', 't', 'g', 'api_token', 'active', {id}, '00000000-0000-4000-8000-000000000001', {expires})"));
            secrets.push_str(&format!(
                "{sep}('s{id}', 't', 'c{id}', '{}', 'tbk_live_x', 0, {expires}, 'rt{id}', 0, 0)",
                hash.as_hex()
            ));
        }
        let mut tx = pool.begin().await.expect("tx");
        sqlx::query(sqlx::AssertSqlSafe(credentials))
            .execute(&mut *tx)
            .await
            .expect("credentials");
        sqlx::query(sqlx::AssertSqlSafe(secrets))
            .execute(&mut *tx)
            .await
            .expect("secrets");
        tx.commit().await.expect("commit");
    }
    println!(
        "stored {total} credentials in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    );

    let core = Core::new(
        store,
        PasswordService::new(1, 1).expect("hasher"),
        Arc::new(SystemClock),
        &"http://localhost:8080".parse().expect("url"),
        tokenbroker::domain::TokenServiceSettings::default(),
    )
    .expect("core");
    let unknown: Vec<String> = (0..1000)
        .map(|_| {
            tokens::issue(SecretKind::ApiToken, "live")
                .secret
                .expose_secret()
                .to_owned()
        })
        .collect();
    let malformed: Vec<String> = sample
        .iter()
        .take(1000)
        .map(|t| {
            // A one-character typo: the checksum rejects it before any database lookup.
            let last = t.chars().last().unwrap_or('x');
            format!(
                "{}{}",
                &t[..t.len() - 1],
                if last == 'x' { 'y' } else { 'x' }
            )
        })
        .collect();

    for (label, tokens, expect_active) in [
        ("known", &sample, true),
        ("unknown", &unknown, false),
        ("malformed", &malformed, false),
    ] {
        let per_sec = measure(&core, tokens, expect_active, 1, Duration::from_secs(5)).await;
        println!("verify {label:<10} 1 task : {per_sec:>9.0}/s");
    }
    let per_sec = measure(&core, &sample, true, 2, Duration::from_secs(5)).await;
    println!("verify known      2 tasks: {per_sec:>9.0}/s");
    // A gateway re-verifies the same few live tokens: last use is written once a minute each.
    let hot: Vec<String> = sample.iter().take(100).cloned().collect();
    measure(&core, &hot, true, 1, Duration::from_secs(1)).await;
    for tasks in [1, 2] {
        let per_sec = measure(&core, &hot, true, tasks, Duration::from_secs(5)).await;
        println!(
            "verify hot (100)  {tasks} task{}: {per_sec:>9.0}/s",
            if tasks == 1 { " " } else { "s" }
        );
    }
}

async fn measure(
    core: &Core,
    tokens: &[String],
    expect_active: bool,
    tasks: usize,
    period: Duration,
) -> f64 {
    let until = Instant::now() + period;
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let core = core.clone();
        let tokens = tokens.to_vec();
        handles.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < until {
                let token = tokens.choose(&mut rand::rng()).expect("tokens");
                let verified = partners::verify(&core, token, None).await.expect("verify");
                assert_eq!(verified.is_some(), expect_active);
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for handle in handles {
        total += handle.await.expect("task");
    }
    total as f64 / period.as_secs_f64()
}

fn now_ms() -> i64 {
    use tokenbroker::clock::Clock;
    SystemClock.now_ms()
}
