//! The event log at scale: seeds `TB_BENCH_EVENTS` (default 10,000,000) events — 20 tenants, 10,000
//! accounts, 65,536 addresses, 90 days — then times the query behind each common filter of the log
//! page (p50/p95 of 40 runs, on the page's own store method), a page deep in the log by keyset
//! cursor, and event insertion with the hash chain on (8 concurrent writers, then sealing), then
//! verification of the whole chain.
//!
//! `cargo bench --bench event_log` (temporary SQLite), or `TB_BENCH_DATABASE_URL=postgres://…` or
//! `sqlite://…?mode=rwc` (an empty database, or one an earlier run seeded: it is reused).

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

use tokenbroker::clock::{Clock, SystemClock};
use tokenbroker::domain::event_log::{
    ActorKind, Cursor, EventFilter, IpFilter, PAGE_SIZE, RawFilter,
};
use tokenbroker::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use tokenbroker::domain::ids::TenantId;
use tokenbroker::domain::password::PasswordService;
use tokenbroker::domain::{Core, TokenServiceSettings, audit};
use tokenbroker::store::Store;

const TENANTS: usize = 20;
const BATCH: usize = 1_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = seed::env_number("TB_BENCH_EVENTS", 10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, store, pool) = server::migrated_database(dir.path(), "events.db").await;
    let now = SystemClock.now_ms();
    let tenants: Vec<String> = (0..TENANTS)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let backend = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    println!("backend: {backend}");
    // A database seeded by an earlier run is reused as it is (re-measuring takes minutes, not the
    // seeding's quarter of an hour).
    let (existing,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM auth_events")
        .fetch_one(&pool)
        .await
        .expect("count");
    if existing as usize >= total {
        println!("reusing the {existing} events an earlier run seeded");
    } else {
        seed_events(&pool, &tenants, total, now).await;
    }
    if backend == "postgres" {
        sqlx::query("ANALYZE auth_events")
            .execute(&pool)
            .await
            .expect("analyze");
    }

    // Tenant 9 holds every twentieth event, half of them failed client authentications.
    let tenant = TenantId::parse(&tenants[9]).expect("tenant id");
    let subject = "00000000-0000-4000-9000-000000004245".to_owned();
    let day = RawFilter {
        from: time_text(now - 2 * 86_400_000),
        to: time_text(now - 86_400_000),
        ..RawFilter::default()
    }
    .parse(None)
    .expect("range");
    let cases: Vec<(&str, EventFilter)> = vec![
        ("no filter", EventFilter::default()),
        (
            "tenant",
            EventFilter {
                tenant: Some(tenant),
                ..Default::default()
            },
        ),
        (
            "type=login, outcome=failure",
            EventFilter {
                event_type: Some(EventType::Login),
                outcome: Some(Outcome::Failure),
                ..Default::default()
            },
        ),
        (
            "tenant + type=client_auth_failed",
            EventFilter {
                tenant: Some(tenant),
                event_type: Some(EventType::ClientAuthFailed),
                ..Default::default()
            },
        ),
        (
            "ip exact",
            EventFilter {
                ip: Some(IpFilter::parse("10.0.24.104").expect("address")),
                ..Default::default()
            },
        ),
        (
            "ip /16",
            EventFilter {
                ip: Some(IpFilter::parse("10.0.0.0/16").expect("network")),
                ..Default::default()
            },
        ),
        (
            "ip /20 (sixteen /24 ranges)",
            EventFilter {
                ip: Some(IpFilter::parse("10.1.16.0/20").expect("network")),
                ..Default::default()
            },
        ),
        (
            "subject (text)",
            EventFilter {
                text: Some(subject),
                ..Default::default()
            },
        ),
        (
            "actor=client, actor id (credential)",
            EventFilter {
                actor_kind: Some(ActorKind::Client),
                actor_id: Some("cred-0046".into()),
                ..Default::default()
            },
        ),
        (
            "session",
            EventFilter {
                session: Some("00000000-0000-4000-9000-000000004245-7".into()),
                ..Default::default()
            },
        ),
        (
            "one day, tenant",
            EventFilter {
                tenant: Some(tenant),
                ..day.clone()
            },
        ),
    ];
    println!(
        "{:<34} {:>9} {:>9} {:>6}",
        "log page query", "p50 ms", "p95 ms", "rows"
    );
    for (label, filter) in &cases {
        let (p50, p95, rows) = time_query(&store, filter, None).await;
        println!("{label:<34} {p50:>9.2} {p95:>9.2} {rows:>6}");
    }
    // 200 pages deep by cursor (what "Older" does), then the next page from there.
    let mut cursor = None;
    for _ in 0..200 {
        let page = store
            .search_events(&EventFilter::default(), cursor.as_ref(), PAGE_SIZE)
            .await
            .expect("page");
        cursor = page
            .rows
            .last()
            .map(|r| Cursor::Before(r.occurred_at, r.id.clone()));
    }
    let (p50, p95, rows) = time_query(&store, &EventFilter::default(), cursor.as_ref()).await;
    println!(
        "{:<34} {p50:>9.2} {p95:>9.2} {rows:>6}",
        "page 201 (keyset)"
    );

    // Insertion with the chain on: 8 writers append through the store, then the sealer catches up.
    let core = Core::new(
        store.clone(),
        PasswordService::new(1, 1).expect("hasher"),
        Arc::new(SystemClock),
        &"http://localhost:8080".parse().expect("url"),
        TokenServiceSettings::default(),
    )
    .expect("core");
    let inserts = 20_000usize;
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..8 {
        let core = core.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..inserts / 8 {
                let context = RequestContext {
                    ip: Some(format!("192.0.2.{}", (w * 31 + i) % 256)),
                    ..RequestContext::default()
                };
                let event = Event::new(
                    SystemClock.now_ms(),
                    EventType::Login,
                    Outcome::Success,
                    Actor::Anonymous,
                )
                .tenant(tenant)
                .context(&context);
                core.store.append_event(&event).await.expect("append");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let insert_rate = inserts as f64 / started.elapsed().as_secs_f64();
    println!("insert (8 writers)                 {insert_rate:>9.0} events/s");
    // Seal the whole seeded log (it is older than the seal delay) and the new events.
    tokio::time::sleep(Duration::from_secs(61)).await;
    let started = Instant::now();
    let sealed = audit::seal_pending(&core).await.expect("seal");
    println!(
        "seal                               {:>9.0} events/s ({sealed} sealed)",
        sealed as f64 / started.elapsed().as_secs_f64()
    );
    // What `tokenbroker audit verify` costs on the whole log (walk + unsealed-row check).
    let started = Instant::now();
    let verdict = audit::verify(&core, "bench").await.expect("verify");
    println!(
        "verify                             {:>9.1} s ({verdict:?})",
        started.elapsed().as_secs_f64()
    );
}

async fn seed_events(pool: &sqlx::AnyPool, tenants: &[String], total: usize, now: i64) {
    for (i, id) in tenants.iter().enumerate() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tenants (id, slug, name, brand_colour, status, created_at, updated_at) \
             VALUES ('{id}', 'tenant-{i}', 'Tenant {i}', '#336699', 'active', 0, 0)"
        )))
        .execute(pool)
        .await
        .expect("tenant");
    }

    let started = Instant::now();
    let span_ms: i64 = 90 * 86_400_000;
    let first = now - span_ms;
    let step = span_ms / total.max(1) as i64;
    for batch_start in (0..total).step_by(BATCH) {
        let n = BATCH.min(total - batch_start);
        let mut sql = String::from(
            "INSERT INTO auth_events (id, occurred_at, tenant_id, actor_kind, actor_id, subject, event_type, outcome, ip, country, user_agent, request_id, session_id, details) VALUES ",
        );
        for i in 0..n {
            let k = batch_start + i;
            let tenant = &tenants[k % TENANTS];
            let (kind, outcome) = match k % 10 {
                0 => ("login", "failure"),
                1..=5 => ("login", "success"),
                6..=8 => ("token_issued", "success"),
                _ => ("client_auth_failed", "failure"),
            };
            let user = format!("00000000-0000-4000-9000-{:012}", (k * 7919) % 10_000);
            // Sign-ins act as the account, in one of its sessions (about ten events each);
            // issuances as one of 2,000 credentials; failures anonymously. Account 4245 signs in
            // (k % 10 = 5), so its subject and session filters find rows.
            let (actor_kind, actor_id, subject, session) = match (kind, outcome) {
                ("login", "success") => (
                    "user",
                    format!("'{user}'"),
                    format!("'{user}'"),
                    format!("'{user}-{}'", k / 200_000),
                ),
                ("login", _) => (
                    "anonymous",
                    "NULL".into(),
                    format!("'{user}'"),
                    "NULL".into(),
                ),
                ("token_issued", _) => (
                    "client",
                    format!("'cred-{:04}'", k % 2_000),
                    "NULL".into(),
                    "NULL".into(),
                ),
                _ => ("anonymous", "NULL".into(), "NULL".into(), "NULL".into()),
            };
            let ip = format!(
                "10.{}.{}.{}",
                (k / 65_536) % 4,
                (k * 31) % 256,
                (k * 17) % 256
            );
            let sep = if i == 0 { "" } else { "," };
            sql.push_str(&format!(
                "{sep}('{k:016x}-bench', {}, '{tenant}', '{actor_kind}', {actor_id}, {subject}, '{kind}', '{outcome}', '{ip}', 'DE', 'bench', NULL, {session}, '{{\"n\":{k}}}')",
                first + k as i64 * step
            ));
        }
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("events");
    }
    println!(
        "seeded {total} events in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

fn time_text(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(ms / 1000).expect("time");
    at.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]"
    ))
    .expect("format")
}

async fn time_query(
    store: &Store,
    filter: &EventFilter,
    cursor: Option<&Cursor>,
) -> (f64, f64, usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..40 {
        let started = Instant::now();
        let page = store
            .search_events(filter, cursor, PAGE_SIZE)
            .await
            .expect("search");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        rows = page.rows.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    (times[times.len() / 2], times[times.len() * 95 / 100], rows)
}
