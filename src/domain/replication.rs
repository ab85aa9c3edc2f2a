//! Keeps this instance's in-memory token-service state (revocations, key ring) in step with the
//! database and the other instances: PostgreSQL notifications for speed, and a periodic
//! reconciliation that bounds staleness when a notification is lost (or on SQLite, where there is
//! one instance and local changes update the caches directly).

use std::time::Duration;

use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::ids::TenantId;
use crate::store::StoreError;
use crate::store::listener::Change;

const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// An outage fails the listener every second until the database is back: logged as one streak.
static LISTENER_FAILURES: crate::streak::FailureStreak =
    crate::streak::FailureStreak::new("following other instances' changes");

/// Re-reads revocations after the cursor and drops the key-ring copies of tenants whose keys
/// changed since `since` (with a margin for clocks that disagree between instances).
pub async fn reconcile(core: &Core, since: Millis, interval: Duration) -> Result<(), StoreError> {
    core.revocations.catch_up(&core.store).await?;
    let margin = duration_ms(interval) * 2 + 5_000;
    for tenant in core.store.tenants_with_key_changes(since - margin).await? {
        if let Some(tenant) = TenantId::parse(&tenant) {
            core.keys.invalidate(tenant);
        }
    }
    core.revocations.forget_expired(core.clock.now_ms());
    Ok(())
}

/// PostgreSQL: applies other instances' changes as their notifications arrive.
pub async fn follow_notifications(core: Core) {
    let mut listener = match core.store.change_listener() {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for changes; relying on reconciliation");
            return;
        }
    };
    loop {
        let applied = match listener.next().await {
            Ok(Change::Revocations) => core.revocations.catch_up(&core.store).await.map(|_| ()),
            Ok(Change::Keys(tenant)) => {
                if let Some(tenant) = TenantId::parse(&tenant) {
                    core.keys.invalidate(tenant);
                }
                Ok(())
            }
            Ok(Change::Credential(credential)) => {
                core.verified.forget_credential(&credential);
                Ok(())
            }
            Ok(Change::Tenant(slug)) => {
                core.verified.forget_tenant(&slug);
                Ok(())
            }
            Ok(Change::Resync) => {
                tracing::info!("listening for changes; re-reading revocations and keys");
                core.keys.invalidate_all();
                core.verified.forget_settings();
                core.revocations.catch_up(&core.store).await.map(|_| ())
            }
            Ok(Change::Quiet) => Ok(()),
            Ok(Change::Lost) => {
                // Often the first sign of a database outage: have it probed now, so the console
                // answers 503 at once rather than after a request has waited for the pool.
                core.store.health().suspect();
                Ok(())
            }
            Err(e) => {
                core.store.health().suspect();
                Err(e)
            }
        };
        match applied {
            Ok(()) => LISTENER_FAILURES.succeeded(),
            Err(e) => {
                LISTENER_FAILURES.failed(&e);
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
            }
        }
    }
}
