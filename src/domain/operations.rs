//! What operators watch: whether the service can serve, and the figures its metrics report.

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

/// Whether the schema is in place; cheap (no query), for a gate in front of every request.
pub fn is_migrated(core: &Core) -> bool {
    core.store.is_migrated()
}

pub async fn readiness(core: &Core) -> Readiness {
    if !core.store.is_migrated() {
        Readiness::MigrationsPending
    } else if core.store.ping().await {
        Readiness::Ready
    } else {
        Readiness::Unreachable
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
