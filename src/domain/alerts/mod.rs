//! Suspicious activity: the detectors that read the event log as it grows (`detectors`), and the
//! queue security staff work through — acknowledge, resolve or dismiss, assign, annotate — each
//! step itself an event.

use std::time::Duration;

use crate::domain::Core;
use crate::domain::events::EventRecord;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{TenantId, UserId};
use crate::domain::paging::{next_cursor, parse_cursor};
use crate::store::StoreError;
use crate::store::alerts::AlertChange;
pub use crate::store::alerts::{AlertNote, AlertRow};

mod detectors;
mod responses;
pub mod travel;

pub use detectors::*;
pub use responses::*;

/// Whose whereabouts the impossible-travel detector follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traveller<'a> {
    /// A staff account, by its successful sign-ins.
    Account(&'a str),
    /// A machine client's credential, by the tokens issued to it.
    Credential(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
    FalsePositive,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 4] = [
        Self::Open,
        Self::Acknowledged,
        Self::Resolved,
        Self::FalsePositive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::FalsePositive => "false_positive",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Thresholds of the detectors.
#[derive(Debug, Clone, Copy)]
pub struct DetectorPolicy {
    pub window: Duration,
    /// Failed sign-ins on one account within the window.
    pub account_failures: i64,
    /// Failed sign-ins from one address within the window.
    pub ip_failures: i64,
    /// …aimed at this many different accounts: password spraying.
    pub spraying_accounts: i64,
    /// Failed client authentications from one address within the window.
    pub client_failures: i64,
    /// Sign-ins of one account from two countries closer together than this are impossible
    /// travel (country-level: no flight makes the hop faster).
    pub travel_window: Duration,
}

impl Default for DetectorPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            account_failures: 5,
            ip_failures: 20,
            spraying_accounts: 5,
            client_failures: 20,
            travel_window: Duration::from_secs(2 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(&'static str),
    /// Refused for a reason that names specifics (who must approve it).
    #[error("{0}")]
    Refused(String),
    #[error("That alert does not exist.")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A page of the queue, and the cursor of the next (older) one.
pub struct AlertPage {
    pub alerts: Vec<AlertRow>,
    pub next: Option<String>,
}

/// The queue, newest first: every tenant's alerts (`tenant` None) or one tenant's; `open_only`
/// hides resolved and dismissed ones; `after` is the cursor of the previous page.
pub async fn queue(
    core: &Core,
    tenant: Option<TenantId>,
    open_only: bool,
    after: Option<&str>,
    limit: i64,
) -> Result<AlertPage, StoreError> {
    let mut alerts = core
        .store
        .alerts(tenant, open_only, after.and_then(parse_cursor), limit + 1)
        .await?;
    let next = next_cursor(&mut alerts, limit, |a| (a.created_at, a.id.as_str()));
    Ok(AlertPage { alerts, next })
}

/// One alert with everything its page shows: the events that raised it and the notes on it.
pub struct AlertFile {
    pub alert: AlertRow,
    pub evidence: Vec<EventRecord>,
    pub notes: Vec<AlertNote>,
}

pub async fn open_file(core: &Core, id: &str) -> Result<AlertFile, AlertError> {
    let alert = core.store.alert(id).await?.ok_or(AlertError::NotFound)?;
    Ok(AlertFile {
        evidence: core.store.alert_evidence(id).await?,
        notes: core.store.alert_notes(id).await?,
        alert,
    })
}

/// A person's work on an alert.
pub enum AlertAction<'a> {
    SetStatus(AlertStatus),
    AssignToMe,
    Note(&'a str),
}

pub async fn work_on(
    core: &Core,
    actor: UserId,
    alert: &str,
    action: AlertAction<'_>,
    context: &RequestContext,
) -> Result<(), AlertError> {
    let (change, what) = match action {
        AlertAction::SetStatus(status) => (
            AlertChange {
                status: Some(status.as_str()),
                assignee: None,
                note: None,
            },
            status.as_str(),
        ),
        AlertAction::AssignToMe => (
            AlertChange {
                status: None,
                assignee: Some(actor),
                note: None,
            },
            "assigned",
        ),
        AlertAction::Note(text) => {
            let text = text.trim();
            if text.is_empty() || text.chars().count() > 2000 {
                return Err(AlertError::Invalid("A note is 1 to 2000 characters."));
            }
            (
                AlertChange {
                    status: None,
                    assignee: None,
                    note: Some((actor, text)),
                },
                "noted",
            )
        }
    };
    let now = core.clock.now_ms();
    let event = Event::new(
        now,
        EventType::AlertUpdated,
        Outcome::Success,
        Actor::User(actor),
    )
    .context(context)
    .detail("alert", alert)
    .detail("change", what);
    if core
        .store
        .work_on_alert(alert, &change, now, &event)
        .await?
    {
        Ok(())
    } else {
        Err(AlertError::NotFound)
    }
}
