//! Impossible travel under steady issuance, as issue 30 asks: the server (`tokenbroker serve`, one
//! HTTP worker, pinned to core 0) issues `TB_BENCH_RATE` tokens a second (default 1,000) to one
//! client whose requests carry a country header (DE), for `TB_BENCH_SECONDS` (default 600). Every
//! 10 s the run prints the detector cursor's age (events are examined once 2 s old, passes run every
//! 2 s: an age of up to ~4 s is keeping up), the server's resident memory and the CPU it used in
//! those 10 s. Then the client's requests come from JP: the run prints how long after the first of
//! them the impossible-travel alert was raised.
//!
//! `cargo bench --bench travel` (needs `taskset`); a temporary SQLite database, or
//! `TB_BENCH_DATABASE_URL` pointing at an empty PostgreSQL database. Figures go in the issue note.

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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use tokenbroker::clock::{Clock, SystemClock};

/// Requests in flight at once; each sender keeps its share of the rate.
const SENDERS: u64 = 16;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let rate: u64 = seed::env_number("TB_BENCH_RATE", 1_000);
    let seconds: u64 = seed::env_number("TB_BENCH_SECONDS", 600);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, _store, pool) = server::migrated_database(dir.path(), "bench.db").await;
    let now = SystemClock.now_ms();
    seed::fixtures(&pool).await;
    let client = seed::client(&pool, "client", false, now).await;

    let port = server::free_port();
    let mut server = server::serve(
        &url,
        dir.path(),
        port,
        &[("TB_COUNTRY_HEADER", "X-Bench-Country")],
    );
    let base = format!("http://127.0.0.1:{port}");
    server::wait_until_ready(&base).await;
    let sender = Sender {
        http: reqwest::Client::new(),
        url: format!("{base}/t/{}/oauth/token", seed::TENANT_SLUG),
        authorization: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", client.0, client.1))
        ),
        ok: Arc::new(AtomicU64::new(0)),
        failed: Arc::new(AtomicU64::new(0)),
    };

    println!(
        "backend: {}; {rate} tokens/s from DE for {seconds} s, server on core 0 (1 worker)",
        server::backend_name(&url)
    );
    println!(
        "{:>6} {:>9} {:>8} {:>13} {:>9} {:>10}",
        "t s", "tokens/s", "errors", "cursor age s", "RSS MiB", "CPU %"
    );
    let load = sender
        .clone()
        .at_rate(rate, "DE", Duration::from_secs(seconds));
    let watch = async {
        let started = Instant::now();
        let mut cpu = cpu_ticks(server.id());
        let mut issued = 0;
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        ticker.tick().await;
        while started.elapsed() < Duration::from_secs(seconds) {
            ticker.tick().await;
            let (last_at,): (i64,) =
                sqlx::query_as("SELECT last_at FROM detector_cursor WHERE id = 1")
                    .fetch_one(&pool)
                    .await
                    .expect("cursor");
            let age = (SystemClock.now_ms() - last_at) as f64 / 1000.0;
            let now_cpu = cpu_ticks(server.id());
            let ok = sender.ok.load(Ordering::Relaxed);
            println!(
                "{:>6} {:>9.0} {:>8} {:>13.1} {:>9.1} {:>10.0}",
                started.elapsed().as_secs(),
                (ok - issued) as f64 / SAMPLE_EVERY.as_secs_f64(),
                sender.failed.load(Ordering::Relaxed),
                age,
                rss_mib(server.id()),
                (now_cpu - cpu) as f64 / SAMPLE_EVERY.as_secs_f64(),
            );
            issued = ok;
            cpu = now_cpu;
        }
    };
    tokio::join!(load, watch);

    // The client turns up in Japan: the next detector passes must see it.
    let switched = SystemClock.now_ms();
    let switch = sender.clone().at_rate(rate, "JP", Duration::from_secs(10));
    let alert = async {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let raised: Option<(i64,)> = sqlx::query_as(
                "SELECT created_at FROM alerts WHERE detector = 'impossible_travel' LIMIT 1",
            )
            .fetch_optional(&pool)
            .await
            .expect("alerts");
            if let Some((at,)) = raised {
                return Some(at - switched);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    };
    let ((), raised) = tokio::join!(switch, alert);
    match raised {
        Some(ms) => println!(
            "country switch DE → JP: impossible-travel alert raised {:.1} s after the first JP request",
            ms as f64 / 1000.0
        ),
        None => println!("country switch DE → JP: NO alert within 60 s"),
    }
    println!(
        "issued {} tokens, {} errors",
        sender.ok.load(Ordering::Relaxed),
        sender.failed.load(Ordering::Relaxed)
    );
    server.kill().ok();
    server.wait().ok();
}

#[derive(Clone)]
struct Sender {
    http: reqwest::Client,
    url: String,
    authorization: String,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Sender {
    /// `rate` token requests a second from `country` for `lasting`, spread over [`SENDERS`].
    async fn at_rate(self, rate: u64, country: &'static str, lasting: Duration) {
        let period = Duration::from_micros(1_000_000 * SENDERS / rate.max(1));
        let until = Instant::now() + lasting;
        let senders = (0..SENDERS).map(|_| {
            let me = self.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                while Instant::now() < until {
                    ticker.tick().await;
                    me.one(country).await;
                }
            })
        });
        for sender in senders.collect::<Vec<_>>() {
            sender.await.expect("sender");
        }
    }

    async fn one(&self, country: &str) {
        let answer = self
            .http
            .post(&self.url)
            .header("authorization", &self.authorization)
            .header("x-bench-country", country)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        let counter = match answer {
            Ok(r) if r.status().is_success() => &self.ok,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// User plus system CPU time of a process, in clock ticks (100 a second on Linux): the change per
/// second is the share of a core in percent.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces; the fields counted from after its closing parenthesis.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| {
        fields
            .get(n)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
