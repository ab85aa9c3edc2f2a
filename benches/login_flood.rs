//! Login flood vs. dashboard latency (issue: "the dashboard's p99 stays under 50 ms while hashing
//! saturates its limit").
//!
//! `cargo bench --bench login_flood` starts the real server in-process on a temporary SQLite
//! database (or `TB_BENCH_DATABASE_URL`), signs one user in, then for `TB_BENCH_SECONDS` (default 20):
//! - 50 clients sign in over and over (GET /login for the CSRF token, POST /login);
//! - one signed-in client loads the dashboard in a loop and records each latency.
//!
//! A quiet-phase dashboard loop runs first as the baseline. The load generator shares the machine
//! with the server, so figures are a lower bound on what a dedicated server does.

// Test code, not a request path: a panic here fails the run, which is what benchmarks should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use secrecy::ExposeSecret;
use tokenbroker::app::Application;
use tokenbroker::clock::SystemClock;
use tokenbroker::config::Settings;

const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "benchmark passphrase 1";
const LOGIN_CLIENTS: usize = 50;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(Jar::default()))
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn csrf(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker).expect("csrf field") + marker.len();
    html[start..]
        .split('"')
        .next()
        .expect("csrf value")
        .to_owned()
}

async fn sign_in(client: &reqwest::Client, base: &str) -> reqwest::StatusCode {
    let Ok(page) = client.get(format!("{base}/login")).send().await else {
        return reqwest::StatusCode::SERVICE_UNAVAILABLE;
    };
    let html = page.text().await.unwrap_or_default();
    if !html.contains("csrf_token") {
        // Already signed in from the previous round: the login page redirected. Sign out first.
        return reqwest::StatusCode::CONFLICT;
    }
    client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("email", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .map(|r| r.status())
        .unwrap_or(reqwest::StatusCode::SERVICE_UNAVAILABLE)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn dashboard_loop(client: &reqwest::Client, base: &str, until: Instant) -> Vec<Duration> {
    let mut samples = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let response = client
            .get(format!("{base}/"))
            .send()
            .await
            .expect("dashboard");
        assert_eq!(response.status(), 200, "dashboard must stay reachable");
        response.bytes().await.expect("body");
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    samples.sort();
    samples
}

fn report(label: &str, samples: &[Duration]) {
    println!(
        "{label:<24} n={:<6} p50={:>7.2} ms  p90={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms",
        samples.len(),
        percentile(samples, 50.0).as_secs_f64() * 1e3,
        percentile(samples, 90.0).as_secs_f64() * 1e3,
        percentile(samples, 99.0).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = std::env::var("TB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("TB_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()));
    let mut settings = Settings::for_database(&url, dir.path(), Some(BENCH_KEK)).expect("settings");
    settings.listen = "127.0.0.1:0".parse().expect("addr");
    let concurrency = settings.password_hash_concurrency;
    let workers = settings.workers;
    let app = Application::build(settings, Arc::new(SystemClock))
        .await
        .expect("app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let link = app
        .setup_link()
        .expect("fresh database: setup link")
        .expose_secret()
        .replace("http://localhost:8080", &base);
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());

    // The benchmark user, created through the setup page like any operator would.
    let admin = client();
    let html = admin
        .get(&link)
        .send()
        .await
        .expect("setup page")
        .text()
        .await
        .expect("html");
    let token = link.split("token=").nth(1).expect("token");
    let created = admin
        .post(format!("{base}/setup"))
        .form(&[
            ("csrf_token", csrf(&html).as_str()),
            ("token", token),
            ("email", EMAIL),
            ("display_name", "Bench"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ])
        .send()
        .await
        .expect("setup");
    assert_eq!(created.status(), 303);

    println!(
        "login flood: {LOGIN_CLIENTS} clients, {seconds} s, {workers} HTTP workers, {concurrency} concurrent argon2id hashes, db={}",
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    );

    let quiet = dashboard_loop(&admin, &base, Instant::now() + Duration::from_secs(5)).await;

    let until = Instant::now() + Duration::from_secs(seconds);
    let succeeded = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for _ in 0..LOGIN_CLIENTS {
        let base = base.clone();
        let succeeded = succeeded.clone();
        let refused = refused.clone();
        flood.push(tokio::spawn(async move {
            while Instant::now() < until {
                // A fresh cookie jar per attempt: every round is a brand-new browser.
                match sign_in(&client(), &base).await.as_u16() {
                    303 => succeeded.fetch_add(1, Ordering::Relaxed),
                    _ => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let started = Instant::now();
    let loaded = dashboard_loop(&admin, &base, until).await;
    for task in flood {
        task.await.expect("flood task");
    }
    let elapsed = started.elapsed().as_secs_f64();

    let ok = succeeded.load(Ordering::Relaxed);
    let busy = refused.load(Ordering::Relaxed);
    println!(
        "logins succeeded         {ok} ({:.1}/s)",
        ok as f64 / elapsed
    );
    println!(
        "logins refused (503)     {busy} ({:.1}/s)",
        busy as f64 / elapsed
    );
    report("dashboard, quiet", &quiet);
    report("dashboard, under flood", &loaded);
    handle.stop(true).await;
}

/// A throwaway key-encryption key: benchmark databases are deleted afterwards.
const BENCH_KEK: &str = "YmVuY2gta2VrLWZvci10b2tlbmJyb2tlci1iZW5jaCE=";
