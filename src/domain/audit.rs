//! Tamper evidence for the event log. Events are sealed in order into a hash chain by a background
//! pass (any instance; the head moves only from where the sealer read it, so each event is sealed
//! once), a minute after they occur so slow transactions have committed. `verify` walks the chain
//! from its anchor and names the first broken link: an event edited or deleted by hand, or a link
//! missing.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::duration_ms;
use crate::domain::Core;
use crate::domain::events::EventRecord;
use crate::domain::ids::time_ordered_id;
use crate::store::StoreError;
pub use crate::store::chain::{RetentionRun, VerificationRecord};

/// Events are sealed once they are this old: later, nothing can still commit before them.
pub const SEAL_DELAY: Duration = Duration::from_secs(60);
const SEAL_BATCH: i64 = 1_000;
const VERIFY_BATCH: i64 = 5_000;

/// The hash of a link: the previous hash, then every field of the event, each length-prefixed
/// (absent fields marked apart from empty ones), so no two different events hash alike. Fields
/// added since the first release (the session) are hashed only when present, so links sealed
/// before they existed still verify.
pub fn link_hash(previous: &str, event: &EventRecord) -> String {
    let mut hash = Sha256::new();
    hash.update(previous.as_bytes());
    let occurred_at = event.occurred_at.to_string();
    let fields: [Option<&str>; 13] = [
        Some(&event.id),
        Some(&occurred_at),
        event.tenant_id.as_deref(),
        Some(&event.actor_kind),
        event.actor_id.as_deref(),
        event.subject.as_deref(),
        Some(&event.event_type),
        Some(&event.outcome),
        event.ip.as_deref(),
        event.country.as_deref(),
        event.user_agent.as_deref(),
        event.request_id.as_deref(),
        Some(&event.details),
    ];
    for field in fields {
        match field {
            Some(text) => {
                hash.update((text.len() as u64).to_be_bytes());
                hash.update(text.as_bytes());
            }
            None => hash.update(u64::MAX.to_be_bytes()),
        }
    }
    if let Some(session) = event.session.as_deref() {
        hash.update((session.len() as u64).to_be_bytes());
        hash.update(session.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Seals every settled event not sealed yet. Returns how many this call sealed.
pub async fn seal_pending(core: &Core) -> Result<u64, StoreError> {
    let mut sealed = 0;
    loop {
        let now = core.clock.now_ms();
        let head = core.store.chain_head().await?;
        let events = core
            .store
            .events_to_seal(&head, now - duration_ms(SEAL_DELAY), SEAL_BATCH)
            .await?;
        let Some(last) = events.last() else {
            return Ok(sealed);
        };
        let mut previous = head.hash.clone();
        let links: Vec<(i64, String, String)> = events
            .iter()
            .zip(head.position + 1..)
            .map(|(event, position)| {
                previous = link_hash(&previous, event);
                (position, event.id.clone(), previous.clone())
            })
            .collect();
        if core.store.seal_links(&head, &links, last, now).await? {
            sealed += links.len() as u64;
        }
        if (events.len() as i64) < SEAL_BATCH {
            return Ok(sealed);
        }
    }
}

/// Rows removed per purge transaction: small, so the log is never locked for long.
const PURGE_BATCH: i64 = 1_000;

/// Purges sealed events that occurred before `cutoff`, in small batches, keeping the chain
/// verifiable from its moving anchor. Returns how many were removed.
pub async fn purge_before(core: &Core, cutoff: i64) -> Result<u64, StoreError> {
    let run = time_ordered_id();
    let mut removed = 0;
    loop {
        let now = core.clock.now_ms();
        let batch = core
            .store
            .purge_sealed_before(cutoff, PURGE_BATCH, &run, now)
            .await?;
        removed += batch;
        if batch == 0 {
            return Ok(removed);
        }
    }
}

/// Where the chain stands, for the event log's page.
pub struct ChainState {
    /// Events sealed into the chain since its anchor.
    pub sealed: i64,
    /// Events written but not sealed yet.
    pub waiting: i64,
    pub last_verification: Option<VerificationRecord>,
    pub last_purge: Option<RetentionRun>,
}

pub async fn chain_state(core: &Core) -> Result<ChainState, StoreError> {
    let head = core.store.chain_head().await?;
    Ok(ChainState {
        sealed: head.position - head.anchor_position,
        waiting: core.store.unsealed_events(&head).await?,
        last_verification: core.store.latest_verification().await?,
        last_purge: core.store.latest_retention_run().await?,
    })
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        checked: i64,
    },
    Broken {
        checked: i64,
        position: i64,
        event_id: String,
        problem: &'static str,
    },
}

/// Walks the chain from its anchor, records the result, and returns it.
pub async fn verify(core: &Core, run_by: &str) -> Result<Verdict, StoreError> {
    let started_at = core.clock.now_ms();
    let verdict = walk(core).await?;
    let (ok, checked, position, event, problem) = match &verdict {
        Verdict::Intact { checked } => (1, *checked, None, None, None),
        Verdict::Broken {
            checked,
            position,
            event_id,
            problem,
        } => (
            0,
            *checked,
            Some(*position),
            Some(event_id.clone()),
            Some((*problem).to_owned()),
        ),
    };
    core.store
        .record_verification(&VerificationRecord {
            id: time_ordered_id(),
            started_at,
            finished_at: core.clock.now_ms(),
            ok,
            checked,
            broken_position: position,
            broken_event: event,
            problem,
            run_by: run_by.to_owned(),
        })
        .await?;
    Ok(verdict)
}

async fn walk(core: &Core) -> Result<Verdict, StoreError> {
    let head = core.store.chain_head().await?;
    let mut previous = head.anchor_hash.clone();
    let mut expected = head.anchor_position + 1;
    let mut checked = 0;
    loop {
        let links = core.store.chain_links(expected - 1, VERIFY_BATCH).await?;
        let count = links.len();
        for link in links {
            let broken = |problem| Verdict::Broken {
                checked,
                position: expected,
                event_id: link.event_id.clone(),
                problem,
            };
            if link.position != expected {
                return Ok(broken("a link of the chain is missing"));
            }
            let Some(event) = &link.event else {
                return Ok(broken("the event was deleted"));
            };
            let recomputed = link_hash(&previous, event);
            if recomputed != link.hash {
                return Ok(broken("the event was changed after it was sealed"));
            }
            previous = link.hash;
            expected += 1;
            checked += 1;
        }
        if (count as i64) < VERIFY_BATCH {
            break;
        }
    }
    if expected - 1 != head.position || previous != head.hash {
        return Ok(Verdict::Broken {
            checked,
            position: expected,
            event_id: head.last_id,
            problem: "the chain ends before its recorded head",
        });
    }
    // An event dated before the head yet in no link was written behind the sealer's back: a
    // forged back-dated row, or one committed later than the seal delay allows.
    if let Some(event_id) = core.store.first_unsealed_behind(&head).await? {
        return Ok(Verdict::Broken {
            checked,
            position: expected,
            event_id,
            problem: "an event dated inside the sealed range was never sealed (written behind the chain's back)",
        });
    }
    Ok(Verdict::Intact { checked })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(details: &str) -> EventRecord {
        EventRecord {
            id: "e1".into(),
            occurred_at: 1,
            tenant_id: None,
            actor_kind: "system".into(),
            actor_id: None,
            subject: Some(String::new()),
            event_type: "login".into(),
            outcome: "success".into(),
            ip: None,
            country: None,
            user_agent: None,
            request_id: None,
            session: None,
            details: details.into(),
        }
    }

    #[test]
    fn any_change_to_an_event_or_its_predecessor_changes_the_link() {
        let base = link_hash("0", &event("{}"));
        assert_ne!(base, link_hash("1", &event("{}")));
        assert_ne!(base, link_hash("0", &event("{ }")));
        let mut absent = event("{}");
        absent.subject = None;
        assert_ne!(base, link_hash("0", &absent), "absent is not empty");
        assert_eq!(base, link_hash("0", &event("{}")));
    }
}
