#![allow(dead_code)] // each benchmark uses part of it
//! The server under measurement: `tokenbroker serve` with one HTTP worker, pinned to core 0 (the
//! load runs on the other), on a database a benchmark seeded.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokenbroker::store::Store;

pub const KEK: &str = "YmVuY2gta2VrLWZvci10b2tlbmJyb2tlci1iZW5jaCE=";

/// The database a benchmark seeds: `TB_BENCH_DATABASE_URL` (an empty PostgreSQL database), or
/// SQLite file `file` in `dir`; migrated, with the store and a pool for seeding.
pub async fn migrated_database(
    dir: &std::path::Path,
    file: &str,
) -> (String, Store, sqlx::AnyPool) {
    let url = std::env::var("TB_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/{file}?mode=rwc", dir.display()));
    sqlx::any::install_default_drivers();
    let store = Store::connect_lazy(&url.clone().into()).expect("store");
    store.migrate().await.expect("migrations");
    let pool = sqlx::AnyPool::connect(&url).await.expect("pool");
    (url, store, pool)
}

pub fn backend_name(url: &str) -> &'static str {
    if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts the server on `port` with `extra` settings (environment variables) besides the usual.
pub fn serve(url: &str, data_dir: &std::path::Path, port: u16, extra: &[(&str, &str)]) -> Child {
    Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_tokenbroker"), "serve"])
        .env("TB_DATABASE_URL", url)
        .env("TB_DATA_DIR", data_dir)
        .env("TB_LISTEN", format!("127.0.0.1:{port}"))
        .env("TB_WORKERS", "1")
        .env("TB_LOG_LEVEL", "warn")
        .env("TB_KEY_ENCRYPTION_KEY", KEK)
        // Assertions and proofs name this URL (their audience and `htu`).
        .env("TB_PUBLIC_URL", format!("http://localhost:{port}/"))
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tokenbroker serve (and taskset)")
}

pub async fn wait_until_ready(base: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready");
}
