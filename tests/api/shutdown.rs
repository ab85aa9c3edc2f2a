//! The binary under token load, stopped the two ways an orchestrator stops it: SIGTERM (a drain:
//! every request already sent is answered, keep-alive clients are told to go, the process exits
//! within `shutdown_timeout`) and SIGKILL (nothing handed out is lost). The tenant and its client
//! are set up in-process first; the binary then serves the same database.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::automation::key_for;
use crate::dpop::payload_of;
use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;
use crate::stall::Ledger;
use tokenbroker::domain::partners::policies::MAX_TOKENS_PER_MINUTE;

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients hammering the token endpoint at once, each on its own keep-alive connection.
const CLIENTS: usize = 8;
/// Tokens handed out before the stop signal.
const BEFORE_SIGNAL: usize = 200;

/// The service's client may take as many tokens as the load asks for; then the in-process server
/// stops, and `tokenbroker serve` takes over its database. Returns the process and its address.
async fn serve(s: &Service) -> (Child, String) {
    let key = key_for(&s.w.app, ADMIN_EMAIL, &["all"], &[]).await;
    let credential = s.credential_of(&s.client.id).await;
    let unlimited = s
        .http
        .patch(s.url(&format!(
            "/api/v1/tenants/acme/credentials/{credential}/policy"
        )))
        .bearer_auth(key)
        .json(&serde_json::json!({ "tokens_per_minute": MAX_TOKENS_PER_MINUTE }))
        .send()
        .await
        .unwrap();
    assert_eq!(unlimited.status(), StatusCode::OK);
    s.w.app.server.stop(true).await;
    let data_dir = tempfile::tempdir().unwrap().keep();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenbroker"))
        .env_clear()
        .env("TB_DATABASE_URL", &s.w.app.database_url)
        .env("TB_DATA_DIR", &data_dir)
        .env("TB_KEY_ENCRYPTION_KEY", TEST_KEK)
        .env(
            "TB_PUBLIC_URL",
            s.w.app.origin.as_str().trim_end_matches('/'),
        )
        .env("TB_LISTEN", "127.0.0.1:0")
        .env("TB_BACKGROUND_JOBS", "false")
        .env(
            "TB_SHUTDOWN_TIMEOUT",
            format!("{}s", SHUTDOWN_TIMEOUT.as_secs()),
        )
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    let port = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server starts")
            .unwrap()
            .unwrap_or_else(|| panic!("the server exited:\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if let Some(rest) = line.split("port=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // The request log must keep flowing, or the server would block on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://127.0.0.1:{port}"))
}

#[derive(Default)]
struct Load {
    /// The jti of every token handed out.
    handed_out: HashSet<String>,
    /// How many, for waiting on.
    count: tokio::sync::watch::Sender<usize>,
    /// Answers that told the client to close its connection.
    told_to_close: usize,
    /// Requests that got no answer on a connection that had been answering.
    cut: Vec<String>,
    unexpected: Vec<StatusCode>,
}

/// Clients asking for tokens back to back until the server stops taking connections.
/// Clients asking for tokens back to back, each on one keep-alive connection it opens itself: a
/// new connection only when an answer said `Connection: close` (a pooled HTTP client may open a
/// second connection of its own accord, and one that lands in the listener's queue as it closes is
/// the kernel's race, not a request the server was given). A request that gets no answer on a
/// connection that was already answering is cut.
fn hammer(s: &Service, base: &str, load: &Arc<Mutex<Load>>) -> Vec<tokio::task::JoinHandle<()>> {
    let address = base.trim_start_matches("http://").to_owned();
    let body = "grant_type=client_credentials";
    let credentials = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", s.client.id, s.client.secret));
    let request = format!(
        "POST /t/acme/oauth/token HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    (0..CLIENTS)
        .map(|_| {
            let (address, request, load) = (address.clone(), request.clone(), load.clone());
            tokio::spawn(async move {
                let mut open: Option<BufReader<TcpStream>> = None;
                loop {
                    let (mut connection, answered_before) = match open.take() {
                        Some(connection) => (connection, true),
                        // Refused: the server no longer takes connections; nothing was sent.
                        None => match TcpStream::connect(&address).await {
                            Ok(stream) => (BufReader::new(stream), false),
                            Err(_) => return,
                        },
                    };
                    let (status, closing, body) = match ask(&mut connection, &request).await {
                        Ok(answer) => answer,
                        Err(e) if answered_before => {
                            load.lock().unwrap().cut.push(e.to_string());
                            return;
                        }
                        // A connection the kernel completed as the listener closed: never
                        // accepted, so the request never reached the server (like a refusal).
                        Err(_) => return,
                    };
                    let mut load = load.lock().unwrap();
                    load.told_to_close += usize::from(closing);
                    match (status, serde_json::from_slice::<Value>(&body).ok()) {
                        (StatusCode::OK, Some(body)) => {
                            let token = body["access_token"].as_str().unwrap();
                            let jti = payload_of(token)["jti"].as_str().unwrap().to_owned();
                            load.handed_out.insert(jti);
                            load.count.send_replace(load.handed_out.len());
                        }
                        (status, _) => load.unexpected.push(status),
                    }
                    if !closing {
                        open = Some(connection);
                    }
                }
            })
        })
        .collect()
}

/// Sends one HTTP/1.1 request and reads its answer: (status, whether it closes the connection,
/// body).
async fn ask(
    connection: &mut BufReader<TcpStream>,
    request: &str,
) -> std::io::Result<(StatusCode, bool, Vec<u8>)> {
    let ended = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
    connection.get_mut().write_all(request.as_bytes()).await?;
    let mut line = String::new();
    if connection.read_line(&mut line).await? == 0 {
        return Err(ended());
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(ended)?;
    let (mut length, mut closing) = (0, false);
    loop {
        line.clear();
        if connection.read_line(&mut line).await? == 0 {
            return Err(ended());
        }
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().map_err(|_| ended())?,
            "connection" => closing = value.trim().eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    connection.read_exact(&mut body).await?;
    Ok((status, closing, body))
}

async fn until_handed_out(load: &Arc<Mutex<Load>>, count: usize) {
    let mut handed_out = load.lock().unwrap().count.subscribe();
    let reached = handed_out.wait_for(|n| *n >= count);
    let issued = tokio::time::timeout(Duration::from_secs(60), reached).await;
    if issued.is_err() {
        let load = load.lock().unwrap();
        panic!(
            "no tokens issued: {} unexpected answers (first {:?}), {} cut",
            load.unexpected.len(),
            load.unexpected.first(),
            load.cut.len()
        );
    }
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args([name, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn sigterm_under_keep_alive_token_load_answers_every_request_and_exits_in_time(
    backend: Backend,
) {
    let s = service(backend).await;
    let (mut child, base) = serve(&s).await;
    let load = Arc::new(Mutex::new(Load::default()));
    let clients = hammer(&s, &base, &load);
    until_handed_out(&load, BEFORE_SIGNAL).await;

    signal(&child, "-TERM");
    let signalled = Instant::now();
    let exit = tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(5), child.wait())
        .await
        .expect("the server exits while clients keep asking")
        .unwrap();
    let took = signalled.elapsed();
    for client in clients {
        client.await.unwrap();
    }

    assert!(exit.success(), "a drained stop is a clean exit: {exit:?}");
    assert!(
        took < SHUTDOWN_TIMEOUT,
        "exited {took:?} after SIGTERM (shutdown_timeout {SHUTDOWN_TIMEOUT:?})"
    );
    let load = std::mem::take(&mut *load.lock().unwrap());
    assert_eq!(load.cut.len(), 0, "requests cut: {:?}", load.cut.first());
    assert_eq!(load.unexpected, Vec::<StatusCode>::new());
    assert!(
        load.told_to_close >= 1,
        "answers during the drain close their connection"
    );
    let ledger = Ledger::read(&s.w.app.database_url).await;
    ledger.assert_whole();
    assert!(
        load.handed_out.is_subset(&ledger.tokens),
        "the writer committed every token it held before the process exited"
    );
}

async fn sigkill_under_token_load_loses_no_token_that_was_handed_out(backend: Backend) {
    let s = service(backend).await;
    let (mut child, base) = serve(&s).await;
    let load = Arc::new(Mutex::new(Load::default()));
    let clients = hammer(&s, &base, &load);
    until_handed_out(&load, BEFORE_SIGNAL).await;

    signal(&child, "-KILL");
    child.wait().await.unwrap();
    for client in clients {
        client.await.unwrap();
    }

    let load = std::mem::take(&mut *load.lock().unwrap());
    let ledger = Ledger::read(&s.w.app.database_url).await;
    ledger.assert_whole();
    let lost: Vec<&String> = load.handed_out.difference(&ledger.tokens).collect();
    assert!(
        lost.is_empty(),
        "tokens handed out but not recorded: {lost:?}"
    );
}

on_both_backends!(
    sigterm_under_keep_alive_token_load_answers_every_request_and_exits_in_time,
    sigkill_under_token_load_loses_no_token_that_was_handed_out,
);
