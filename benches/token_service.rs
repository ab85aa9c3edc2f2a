//! The token service over HTTP, measured the way the issue asks: the server (`tokenbroker serve`,
//! one HTTP worker) pinned to core 0, `wrk` pinned to core 1, all in one run:
//!
//! - `/healthz` — the HTTP ceiling C of this machine and build;
//! - introspection of opaque API tokens (1,000 distinct, with `TB_BENCH_CREDENTIALS` = 1,000,000
//!   stored), of one JWT (EdDSA), of one DPoP-bound JWT, and the token endpoint with
//!   `client_secret_basic`, with `private_key_jwt` (a fresh Ed25519 assertion per request) and with
//!   `client_secret_basic` plus a DPoP proof (a fresh one per request);
//! - each at full load, then paced at half that rate (wrk's `delay()`, calibrated), for the p99.
//!
//! `cargo bench --bench token_service` (needs `wrk` and `taskset`; a temporary SQLite database, or
//! `TB_BENCH_DATABASE_URL` pointing at an empty PostgreSQL database). Figures go in the issue note.
//! `TB_BENCH_ONLY=token,dpop` runs only the scenarios whose script names are listed (healthz is
//! always measured: it is the ceiling the others are shared of), e.g. while profiling one.

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

use std::io::Write;
use std::process::Command;

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use tokenbroker::clock::{Clock, SystemClock};

const CONNECTIONS: usize = 32;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = seed::env_number("TB_BENCH_CREDENTIALS", 1_000_000);
    let seconds: u64 = seed::env_number("TB_BENCH_SECONDS", 10);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, _store, pool) = server::migrated_database(dir.path(), "bench.db").await;
    let now = SystemClock.now_ms();
    seed::fixtures(&pool).await;
    let sample = seed::api_tokens(&pool, total, (total / 1000).max(1), now).await;
    let gateway = seed::client(&pool, "gateway", true, now).await;
    let client = seed::client(&pool, "client", false, now).await;
    let signer = SigningKey::from_bytes(&[7u8; 32]);
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(signer.verifying_key().as_bytes())});
    seed::client_key(&pool, "client", &jwk.to_string(), now).await;
    // The seed's writes reach the data files now, not during the runs (a PostgreSQL checkpoint
    // forced by them would stall the commits being measured).
    let checkpoint = if url.starts_with("sqlite") {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    } else {
        "CHECKPOINT"
    };
    if let Err(e) = sqlx::query(checkpoint).execute(&pool).await {
        eprintln!("could not checkpoint after seeding ({e}); the first runs may be slower");
    }
    pool.close().await;

    let port = server::free_port();
    let mut server = server::serve(&url, dir.path(), port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    server::wait_until_ready(&base).await;
    let jwt = access_token(&base, &client, None).await;
    let fresh = Fresh {
        signer,
        jwk,
        client_id: client.0.clone(),
        token_endpoint: format!("http://localhost:{port}{}", endpoint("token")),
        issuer: format!("http://localhost:{port}/t/{}", seed::TENANT_SLUG),
    };
    let bound = access_token(&base, &client, Some(&fresh.proofs(1)[0])).await;
    let scripts = dir.path();
    write_lua(scripts, "opaque", &sample, &gateway, None);
    write_lua(scripts, "jwt", &[jwt], &gateway, None);
    write_lua(scripts, "bound", &[bound], &gateway, None);
    write_lua(
        scripts,
        "token",
        &[],
        &client,
        Some("grant_type=client_credentials"),
    );
    write_lua(scripts, "healthz", &[], &gateway, None);

    println!(
        "backend: {}; {total} API tokens stored; server on core 0 (1 worker), wrk on core 1, {CONNECTIONS} connections, {seconds} s each",
        if url.starts_with("sqlite") {
            "sqlite"
        } else {
            "postgres"
        }
    );
    println!(
        "{:<28} {:>10} {:>9} {:>9} {:>9}",
        "scenario", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let runs = [
        ("GET /healthz (ceiling C)", "healthz", "/healthz".to_owned()),
        ("introspect opaque", "opaque", endpoint("introspect")),
        ("introspect JWT (EdDSA)", "jwt", endpoint("introspect")),
        ("introspect DPoP-bound JWT", "bound", endpoint("introspect")),
        ("token endpoint", "token", endpoint("token")),
    ];
    let only = std::env::var("TB_BENCH_ONLY").ok();
    let chosen = |script: &str| {
        script == "healthz"
            || only
                .as_deref()
                .is_none_or(|only| only.split(',').any(|s| s.trim() == script))
    };
    let mut ceiling = 0.0;
    for (label, script, path) in runs.into_iter().filter(|run| chosen(run.1)) {
        let url = format!("{base}{path}");
        let full = wrk(scripts, script, &url, seconds, CONNECTIONS, 0);
        if script == "healthz" {
            ceiling = full.rate;
        }
        full.print(label);
        let half_rate = full.rate / 2.0;
        let half = paced(scripts, script, &url, seconds, half_rate);
        half.print(&format!("  at half load (asked {half_rate:.0}/s)"));
        if script != "healthz" {
            println!("{:<28} {:>10.2}", "  share of C", full.rate / ceiling);
        }
    }
    // Single-use assertions and proofs: a fresh script (enough for the run) before every wrk run.
    let single_use: [(&str, &str, Kind); 2] = [
        ("token (private_key_jwt)", "assertion", Kind::Assertion),
        ("token (basic + DPoP proof)", "dpop", Kind::Dpop),
    ];
    let url = format!("{base}{}", endpoint("token"));
    for (label, script, kind) in single_use.into_iter().filter(|run| chosen(run.1)) {
        let refill = |count: usize| fresh.write(scripts, script, kind, &client, count);
        refill(FRESH_PER_RUN);
        let full = wrk(scripts, script, &url, seconds, CONNECTIONS, 0);
        full.print(label);
        let half_rate = full.rate / 2.0;
        let half = paced_with(scripts, script, &url, seconds, half_rate, &refill);
        half.print(&format!("  at half load (asked {half_rate:.0}/s)"));
        println!("{:<28} {:>10.2}", "  share of C", full.rate / ceiling);
    }
    server.kill().ok();
    server.wait().ok();
}

/// More than any run here can use (a few thousand a second for ten seconds).
const FRESH_PER_RUN: usize = 60_000;

#[derive(Clone, Copy)]
enum Kind {
    Assertion,
    Dpop,
}

/// Makes single-use client assertions and DPoP proofs, signed with the client's Ed25519 key.
struct Fresh {
    signer: SigningKey,
    jwk: serde_json::Value,
    client_id: String,
    token_endpoint: String,
    issuer: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Fresh {
    fn jws(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        format!(
            "{input}.{}",
            b64(&self.signer.sign(input.as_bytes()).to_bytes())
        )
    }

    fn assertions(&self, count: usize) -> Vec<String> {
        let now = SystemClock.now_ms() / 1000;
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT"});
        (0..count)
            .map(|_| {
                let claims = serde_json::json!({
                    "iss": self.client_id, "sub": self.client_id, "aud": self.issuer,
                    "iat": now, "exp": now + 240, "jti": uuid::Uuid::new_v4().to_string(),
                });
                self.jws(&header, &claims)
            })
            .collect()
    }

    fn proofs(&self, count: usize) -> Vec<String> {
        let now = SystemClock.now_ms() / 1000;
        let header = serde_json::json!({"alg": "EdDSA", "typ": "dpop+jwt", "jwk": self.jwk});
        (0..count)
            .map(|_| {
                let claims = serde_json::json!({
                    "htm": "POST", "htu": self.token_endpoint, "iat": now,
                    "jti": uuid::Uuid::new_v4().to_string(),
                });
                self.jws(&header, &claims)
            })
            .collect()
    }

    /// A wrk script sending each of `count` fresh assertions (or proofs) once, in order.
    fn write(
        &self,
        dir: &std::path::Path,
        name: &str,
        kind: Kind,
        client: &(String, String),
        count: usize,
    ) {
        let mut lua = String::from("local items = {\n");
        let items = match kind {
            Kind::Assertion => self.assertions(count),
            Kind::Dpop => self.proofs(count),
        };
        for item in items {
            lua.push_str(&format!("  \"{item}\",\n"));
        }
        lua.push_str("}\nlocal i = 0\n");
        match kind {
            Kind::Assertion => lua.push_str(&format!(
                "local form = {{[\"Content-Type\"] = \"application/x-www-form-urlencoded\"}}\n\
                 request = function()\n  i = i + 1\n  return wrk.format(\"POST\", nil, form, \
                 \"grant_type=client_credentials&client_assertion_type={}&client_assertion=\" .. items[i])\nend\n",
                "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
            )),
            Kind::Dpop => lua.push_str(&format!(
                "request = function()\n  i = i + 1\n  return wrk.format(\"POST\", nil, \
                 {{[\"Content-Type\"] = \"application/x-www-form-urlencoded\", [\"Authorization\"] = \"{}\", [\"DPoP\"] = items[i]}}, \
                 \"grant_type=client_credentials\")\nend\n",
                basic(client)
            )),
        }
        lua.push_str("local pause = tonumber(os.getenv(\"TB_RATE_DELAY_MS\") or \"0\")\nfunction delay() return pause end\n");
        std::fs::write(dir.join(format!("{name}.lua")), lua).expect("lua");
    }
}

fn endpoint(name: &str) -> String {
    format!("/t/{}/oauth/{name}", seed::TENANT_SLUG)
}

fn basic((id, secret): &(String, String)) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

async fn access_token(base: &str, client: &(String, String), proof: Option<&str>) -> String {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/t/{}/oauth/token", seed::TENANT_SLUG))
        .header("authorization", basic(client))
        .form(&[("grant_type", "client_credentials")]);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response: serde_json::Value = request
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    response["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// A wrk script: POSTs `token=<one of tokens>` (or `body`) with the client's Basic header; plain
/// GET when there is neither. `delay()` paces each connection when `TB_RATE_DELAY_MS` is set.
fn write_lua(
    dir: &std::path::Path,
    name: &str,
    tokens: &[String],
    client: &(String, String),
    body: Option<&str>,
) {
    let mut lua = String::new();
    let post = !tokens.is_empty() || body.is_some();
    if post {
        lua.push_str("wrk.method = \"POST\"\n");
        lua.push_str("wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n");
        lua.push_str(&format!(
            "wrk.headers[\"Authorization\"] = \"{}\"\n",
            basic(client)
        ));
    }
    if let Some(body) = body {
        lua.push_str(&format!("wrk.body = \"{body}\"\n"));
    }
    if !tokens.is_empty() {
        lua.push_str("local tokens = {\n");
        for token in tokens {
            lua.push_str(&format!("  \"{token}\",\n"));
        }
        lua.push_str("}\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n  return wrk.format(nil, nil, nil, \"token=\" .. tokens[i])\nend\n");
    }
    lua.push_str("local pause = tonumber(os.getenv(\"TB_RATE_DELAY_MS\") or \"0\")\nfunction delay() return pause end\n");
    let mut file = std::fs::File::create(dir.join(format!("{name}.lua"))).expect("lua");
    file.write_all(lua.as_bytes()).expect("lua write");
}

struct Run {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

impl Run {
    fn print(&self, label: &str) {
        println!(
            "{label:<28} {:>10.0} {:>9.2} {:>9.2} {:>9}",
            self.rate, self.p50_ms, self.p99_ms, self.errors
        );
    }
}

/// Paces wrk near `rate`: each connection waits between requests (whole milliseconds, wrk's unit),
/// with enough connections for a few milliseconds per cycle, calibrated by one short run.
fn paced(dir: &std::path::Path, script: &str, url: &str, seconds: u64, rate: f64) -> Run {
    paced_with(dir, script, url, seconds, rate, &|_| {})
}

/// [`paced`], rewriting the script (`refill`) before each wrk run: single-use items cannot be sent
/// twice.
fn paced_with(
    dir: &std::path::Path,
    script: &str,
    url: &str,
    seconds: u64,
    rate: f64,
    refill: &dyn Fn(usize),
) -> Run {
    let connections = ((rate * 0.004).round() as usize).clamp(2, 256);
    let cycle_ms = connections as f64 * 1000.0 / rate;
    let first_delay = cycle_ms.round().max(1.0) as u64;
    refill(FRESH_PER_RUN / 4);
    let probe = wrk(dir, script, url, 2, connections, first_delay);
    // cycle = delay + time per request; take the request time from the probe and aim again.
    let request_ms = (connections as f64 * 1000.0 / probe.rate.max(1.0)) - first_delay as f64;
    let delay = (cycle_ms - request_ms.max(0.0)).round().max(1.0) as u64;
    refill(FRESH_PER_RUN);
    wrk(dir, script, url, seconds, connections, delay)
}

/// Runs wrk on core 1 (`delay_ms` between requests on each connection; 0 = flat out).
fn wrk(
    dir: &std::path::Path,
    script: &str,
    url: &str,
    seconds: u64,
    connections: usize,
    delay_ms: u64,
) -> Run {
    let output = Command::new("taskset")
        .args([
            "-c",
            "1",
            "wrk",
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(dir.join(format!("{script}.lua")))
        .arg(url)
        .env("TB_RATE_DELAY_MS", delay_ms.to_string())
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let number_after = |marker: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(marker))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
    };
    let millis = |raw: Option<String>| -> f64 {
        let raw = raw.unwrap_or_default();
        if let Some(us) = raw.strip_suffix("us") {
            us.parse::<f64>().unwrap_or(0.0) / 1000.0
        } else if let Some(ms) = raw.strip_suffix("ms") {
            ms.parse().unwrap_or(0.0)
        } else if let Some(s) = raw.strip_suffix('s') {
            s.parse::<f64>().unwrap_or(0.0) * 1000.0
        } else {
            0.0
        }
    };
    let errors = text
        .lines()
        .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        .flat_map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
        })
        .sum();
    Run {
        rate: text
            .lines()
            .find(|l| l.starts_with("Requests/sec:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0),
        p50_ms: millis(number_after("50%")),
        p99_ms: millis(number_after("99%")),
        errors,
    }
}
