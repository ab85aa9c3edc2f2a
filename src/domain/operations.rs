//! What operators watch: whether the service can serve, and the figures its metrics report.

use std::time::Duration;

use crate::domain::Core;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The database was unreachable at start-up; migrations run once it answers.
    MigrationsPending,
    Unreachable,
}

impl Readiness {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ok",
            Self::MigrationsPending => "migrations pending",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Where the instance is in its life: serving, or draining before it stops.
#[derive(Debug, Default)]
pub struct Lifecycle {
    draining: std::sync::atomic::AtomicBool,
}

/// The instance is stopping: `/readyz` says so at once (the load balancer stops sending), and
/// every response closes its connection, so keep-alive clients move to another instance after the
/// answer they are waiting for.
pub fn begin_draining(core: &Core) {
    if !core
        .lifecycle
        .draining
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        tracing::info!(
            "draining: answering what is in flight, closing connections after each answer"
        );
    }
}

pub fn is_draining(core: &Core) -> bool {
    core.lifecycle
        .draining
        .load(std::sync::atomic::Ordering::SeqCst)
}

/// Whether the schema is in place; cheap (no query), for a gate in front of every request.
pub fn is_migrated(core: &Core) -> bool {
    core.store.is_migrated()
}

pub async fn readiness(core: &Core) -> Readiness {
    if !core.store.is_migrated() {
        Readiness::MigrationsPending
    } else if core.store.health().is_down() {
        // Known without asking: a ping would wait out the pool's acquire timeout.
        Readiness::Unreachable
    } else if core.store.ping().await {
        Readiness::Ready
    } else {
        Readiness::Unreachable
    }
}

/// The last probe of the database failed and none has succeeded since: requests can be answered
/// 503 without asking it (cheap, for a gate in front of every request).
pub fn is_database_down(core: &Core) -> bool {
    core.store.health().is_down()
}

/// Something suggests the database may be gone (a request failed to reach it or has waited on it
/// unusually long): the watcher probes it now.
pub fn suspect_database(core: &Core) {
    core.store.health().suspect();
}

/// The longest a request may wait on the database (`database_timeout`).
pub fn database_timeout(core: &Core) -> Duration {
    core.store.timeout()
}

/// Completes once the database is known to be down (at once if it is).
pub async fn database_went_down(core: &Core) {
    core.store.health().went_down().await;
}

/// How often a database known (or suspected) to be down is probed: recovery is noticed within this
/// (plus one connection), and an instance opens at most four probe connections a second.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// Keeps `core.store.health()` true to the database: when something looks wrong (see
/// [`crate::store::health::DatabaseHealth::suspect`]) it probes with a fresh connection, marks the
/// database down while probes fail, every [`PROBE_INTERVAL`], and up at the first that succeeds.
/// Runs for the life of the application.
pub async fn watch_database(core: Core) {
    let health = core.store.health();
    loop {
        health.suspected().await;
        loop {
            let next_probe = tokio::time::Instant::now() + PROBE_INTERVAL;
            match core.store.probe().await {
                Ok(()) => {
                    if health.record(false) {
                        tracing::info!("database reachable again; the console serves as usual");
                    }
                }
                Err(e) => {
                    if health.record(true) {
                        tracing::error!(error = %e, "database unreachable; the console answers 503 until a probe succeeds");
                    }
                }
            }
            // Pacing even after a success, so suspicion under load costs at most a few probes.
            tokio::time::sleep_until(next_probe).await;
            if !health.is_down() {
                break;
            }
        }
    }
}

/// Gauges read from the database when metrics are scraped.
pub struct Gauges {
    pub open_alerts: i64,
    pub outbox_backlog: i64,
}

pub async fn gauges(core: &Core) -> Result<Gauges, StoreError> {
    Ok(Gauges {
        open_alerts: core.store.count_open_alerts().await?,
        outbox_backlog: core.store.outbox_backlog().await?,
    })
}

/// Revocation entries and token records outlive their tokens by a day, for the feed's readers.
const REVOCATION_KEEP_MS: i64 = 86_400_000;

/// Expired sessions and spent setup links, expired credentials (with their notices), old
/// revocation entries. Idempotent deletes: safe on every instance at once. Returns the sessions and
/// links removed.
pub async fn sweep(core: &Core) -> Result<u64, StoreError> {
    let now = core.clock.now_ms();
    let sessions = core.store.sweep_sessions(now).await?;
    let links = core.store.sweep_setup_tokens(now).await?;
    crate::domain::partners::sweep(core).await?;
    crate::domain::idempotency::sweep(core, now).await?;
    crate::domain::approvals::expire_lapsed(core).await?;
    core.store.sweep_used_assertions(now).await?;
    core.store
        .prune_revocations(now - REVOCATION_KEEP_MS)
        .await?;
    if sessions + links > 0 {
        tracing::info!(sessions, setup_links = links, "swept expired rows");
    }
    Ok(sessions + links)
}
