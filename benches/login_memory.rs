//! Memory under a sign-in flood (issue 18, goal 3: "RSS ≤ 150 MB during and after the flood").
//!
//! `cargo bench --bench login_memory` starts `tokenbroker serve` (the release binary, as the README
//! runs it) as a separate process on a temporary SQLite database (or `TB_BENCH_DATABASE_URL`), then
//! for `TB_BENCH_SECONDS` (default 20) `TB_BENCH_CONNECTIONS` clients (default 200) sign in with
//! wrong passwords as fast as they can: GET /login for the form's CSRF token, POST /login with an
//! unknown e-mail. Every client connects from its own loopback address (127.1.x.y), so the per-IP
//! throttle (20 failures) does not stop the hashing: this is the worst case, a distributed flood.
//!
//! It reads the server's `/proc/PID/status` (VmRSS, VmHWM, Threads) before, every 250 ms during,
//! and `TB_BENCH_SETTLE` seconds (default 10) after the flood, and prints RSS before, peak and
//! after. Other `TB_*` variables reach the server (e.g. `TB_PASSWORD_HASH_CONCURRENCY`);
//! `TB_BENCH_SERVER` runs another build of the server (to compare with an older one).

// Test code, not a request path: a panic here fails the run, which is what benchmarks should do.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use reqwest::redirect::Policy;

/// A throwaway key-encryption key: benchmark databases are deleted afterwards.
const KEK: &str = "YmVuY2gta2VrLWZvci10b2tlbmJyb2tlci1iZW5jaCE=";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

fn serve(url: &str, data_dir: &std::path::Path, port: u16) -> Child {
    let binary = std::env::var("TB_BENCH_SERVER")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tokenbroker").to_owned());
    Command::new(binary)
        .arg("serve")
        .env("TB_DATABASE_URL", url)
        .env("TB_DATA_DIR", data_dir)
        .env("TB_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "TB_LOG_LEVEL",
            std::env::var("TB_LOG_LEVEL").unwrap_or("warn".into()),
        )
        .env("TB_KEY_ENCRYPTION_KEY", KEK)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tokenbroker serve")
}

/// (VmRSS, VmHWM, Threads) of `pid`, in MiB and threads.
fn status(pid: u32) -> (f64, f64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (
        field("VmRSS:") as f64 / 1024.0,
        field("VmHWM:") as f64 / 1024.0,
        field("Threads:"),
    )
}

fn csrf(html: &str) -> Option<String> {
    let marker = r#"name="csrf_token" value=""#;
    let start = html.find(marker)? + marker.len();
    html[start..].split('"').next().map(str::to_owned)
}

/// One failed sign-in from `client`'s address; the status of the POST (or of a failed GET).
async fn failed_sign_in(client: &reqwest::Client, base: &str, n: u64) -> u16 {
    let page = match client.get(format!("{base}/login")).send().await {
        Ok(page) => page,
        Err(_) => return 0,
    };
    if !page.status().is_success() {
        return page.status().as_u16();
    }
    let Some(token) = csrf(&page.text().await.unwrap_or_default()) else {
        return 1;
    };
    let email = format!("nobody-{n}@example.com");
    client
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", email.as_str()),
            ("password", "not the password at all"),
        ])
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = env_or("TB_BENCH_SECONDS", 20);
    let settle: u64 = env_or("TB_BENCH_SETTLE", 10);
    let connections: usize = env_or("TB_BENCH_CONNECTIONS", 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("TB_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(&url, dir.path(), port);
    let pid = server.id();

    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (before, _, threads_before) = status(pid);

    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut flood = Vec::new();
    for i in 0..connections {
        let base = base.clone();
        let statuses = statuses.clone();
        // 127.1.0.1, 127.1.0.2, …: one address per client, all of them loopback.
        let address = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
        flood.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .cookie_provider(Arc::new(Jar::default()))
                .redirect(Policy::none())
                .local_address(IpAddr::V4(address))
                .build()
                .expect("client");
            let mut n = (i as u64) << 32;
            while Instant::now() < until {
                n += 1;
                let status = failed_sign_in(&client, &base, n).await;
                *statuses.lock().unwrap().entry(status).or_default() += 1;
            }
        }));
    }
    let mut peak = before;
    let mut threads_peak = threads_before;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (rss, _, threads) = status(pid);
        peak = peak.max(rss);
        threads_peak = threads_peak.max(threads);
    }
    for task in flood {
        task.await.expect("flood task");
    }
    let (_, hwm, _) = status(pid);
    tokio::time::sleep(Duration::from_secs(settle)).await;
    let (after, _, threads_after) = status(pid);

    println!(
        "sign-in flood: {connections} connections, {seconds} s, db={}",
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    );
    let statuses = statuses.lock().unwrap().clone();
    let total: u64 = statuses.values().sum();
    println!(
        "answers: {total} ({:.0}/s) by status {statuses:?} (0 = transport error)",
        total as f64 / seconds as f64
    );
    println!(
        "RSS before {before:.1} MiB, peak {peak:.1} MiB (VmHWM {hwm:.1}), after {settle} s {after:.1} MiB"
    );
    println!("threads before {threads_before}, peak {threads_peak}, after {threads_after}");
    server.kill().expect("stop the server");
    server.wait().expect("reap the server");
}
