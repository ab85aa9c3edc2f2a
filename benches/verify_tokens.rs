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

// Test code, not a request path: a panic here fails the run, which is what benchmarks should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/seed.rs"]
mod seed;
#[path = "support/server.rs"]
mod server;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::IndexedRandom;
use secrecy::ExposeSecret;
use tokenbroker::clock::SystemClock;
use tokenbroker::domain::Core;
use tokenbroker::domain::partners;
use tokenbroker::domain::password::PasswordService;
use tokenbroker::domain::tokens::{self, SecretKind};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = seed::env_number("TB_BENCH_CREDENTIALS", 1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, store, pool) = server::migrated_database(dir.path(), "verify.db").await;
    let now = now_ms();

    seed::fixtures(&pool).await;
    let sample = seed::api_tokens(&pool, total, 100, now).await;
    println!(
        "backend: {}",
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
