//! The event log as security staff search it: a filter parsed once from what was typed (every
//! field checked, with a message naming the field), and keyset cursors over (time, id) so a page
//! costs the same at row ten and at row ten million.

use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::events::EventRecord;
use crate::domain::events::{EventType, Outcome};
use crate::domain::ids::TenantId;
use crate::domain::ids::UserId;
use crate::store::StoreError;
pub use crate::store::events::EventPage;

mod ip_filter;
pub use ip_filter::IpFilter;

/// Rows per page: fixed, so nobody can ask the database for a million at once.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FilterError {
    pub field: &'static str,
    pub problem: &'static str,
}

fn bad(field: &'static str, problem: &'static str) -> FilterError {
    FilterError { field, problem }
}

/// Who acted, as the log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    User,
    Client,
    Partner,
    Anonymous,
    Cli,
    System,
}

impl ActorKind {
    pub const ALL: [ActorKind; 6] = [
        Self::User,
        Self::Client,
        Self::Partner,
        Self::Anonymous,
        Self::Cli,
        Self::System,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Client => "client",
            Self::Partner => "partner",
            Self::Anonymous => "anonymous",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// A validated filter. `tenant` is forced by the per-tenant page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub tenant: Option<TenantId>,
    pub actor_kind: Option<ActorKind>,
    pub actor_id: Option<String>,
    pub event_type: Option<EventType>,
    pub outcome: Option<Outcome>,
    pub ip: Option<IpFilter>,
    pub country: Option<String>,
    /// Matches the subject or the actor id exactly (indexed).
    pub text: Option<String>,
    /// Text inside the details (a scan: narrow it with a time range on a large log).
    pub detail: Option<String>,
    /// One console session's public handle (indexed).
    pub session: Option<String>,
}

/// The filter as typed (query string); every field optional.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct RawFilter {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub actor_id: String,
    #[serde(default, rename = "type")]
    pub event_type: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default)]
    pub session: String,
}

fn present(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|s| !s.is_empty())
}

/// `2026-11-24` (start of that day, UTC) or `2026-11-24T08:30` (the `datetime-local` form).
pub fn parse_time(raw: &str, field: &'static str, end_of_day: bool) -> Result<Millis, FilterError> {
    let problem = "is not a date like 2026-11-24 or 2026-11-24T08:30 (UTC)";
    let minute = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let at = if let Ok(t) = time::PrimitiveDateTime::parse(raw, &minute) {
        t.assume_utc()
    } else {
        let date = time::Date::parse(raw, &day).map_err(|_| bad(field, problem))?;
        let t = date.midnight().assume_utc();
        if end_of_day {
            t + time::Duration::days(1)
        } else {
            t
        }
    };
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad(field, problem))
}

impl RawFilter {
    /// Resolves what was typed; `tenant_by_slug` is asked only when a tenant was typed.
    pub fn parse(&self, tenant: Option<TenantId>) -> Result<EventFilter, FilterError> {
        let from = present(&self.from)
            .map(|raw| parse_time(raw, "from", false))
            .transpose()?;
        let to = present(&self.to)
            .map(|raw| parse_time(raw, "to", true))
            .transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(bad("to", "must be after `from`"));
            }
        }
        let actor_kind = present(&self.actor)
            .map(|raw| ActorKind::parse(raw).ok_or(bad("actor", "is not a kind of actor")))
            .transpose()?;
        let event_type = present(&self.event_type)
            .map(|raw| EventType::parse(raw).ok_or(bad("type", "is not an event type")))
            .transpose()?;
        let outcome = present(&self.outcome)
            .map(|raw| Outcome::parse(raw).ok_or(bad("outcome", "is success or failure")))
            .transpose()?;
        let ip = present(&self.ip).map(IpFilter::parse).transpose()?;
        let country = present(&self.country)
            .map(|raw| {
                let code = raw.to_ascii_uppercase();
                if code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()) {
                    Ok(code)
                } else {
                    Err(bad("country", "is a two-letter code like DE"))
                }
            })
            .transpose()?;
        let bounded = |raw: &str, field: &'static str| {
            if raw.chars().count() > 200 {
                Err(bad(field, "is longer than 200 characters"))
            } else {
                Ok(raw.to_owned())
            }
        };
        Ok(EventFilter {
            from,
            to,
            tenant,
            actor_kind,
            actor_id: present(&self.actor_id)
                .map(|raw| bounded(raw, "actor_id"))
                .transpose()?,
            event_type,
            outcome,
            ip,
            country,
            text: present(&self.text)
                .map(|raw| bounded(raw, "text"))
                .transpose()?,
            detail: present(&self.detail)
                .map(|raw| bounded(raw, "detail"))
                .transpose()?,
            session: present(&self.session)
                .map(|raw| bounded(raw, "session"))
                .transpose()?,
        })
    }
}

/// Where a page starts: strictly older or strictly newer than (time, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Before(Millis, String),
    After(Millis, String),
}

impl Cursor {
    /// `1732435200000_<event id>`; anything else is no cursor (the newest page).
    pub fn parse(raw: &str, before: bool) -> Option<Self> {
        let (at, id) = raw.split_once('_')?;
        let at: Millis = at.parse().ok()?;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !id_ok {
            return None;
        }
        Some(if before {
            Self::Before(at, id.to_owned())
        } else {
            Self::After(at, id.to_owned())
        })
    }

    pub fn encode(at: Millis, id: &str) -> String {
        format!("{at}_{id}")
    }
}

/// The typed filter, resolved: within one tenant when `forced` (a tenant's own log), otherwise
/// the tenant a typed slug names, which must exist.
pub async fn resolve(
    core: &Core,
    raw: &RawFilter,
    forced: Option<TenantId>,
) -> Result<EventFilter, FilterError> {
    let tenant = match (forced, raw.tenant.trim()) {
        (Some(tenant), _) => Some(tenant),
        (None, "") => None,
        (None, slug) => match crate::domain::tenants::by_slug(core, slug).await {
            Ok(Some(tenant)) => Some(tenant.id),
            _ => return Err(bad("tenant", "no tenant has this slug")),
        },
    };
    raw.parse(tenant)
}

/// One page of events matching `filter`, newest first, strictly older (or newer) than the cursor.
pub async fn search(
    core: &Core,
    filter: &EventFilter,
    cursor: Option<&Cursor>,
    limit: i64,
) -> Result<EventPage, StoreError> {
    core.store.search_events(filter, cursor, limit).await
}

/// What happened to one person lately (the dashboard's recent activity), newest first.
pub async fn recent_activity(
    core: &Core,
    subject: UserId,
    limit: i64,
) -> Result<Vec<EventRecord>, StoreError> {
    core.store.recent_events_for_subject(subject, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days_or_minutes_and_ranges_must_be_ordered() {
        let day = parse_time("2026-11-24", "from", false).unwrap();
        assert_eq!(
            parse_time("2026-11-24", "to", true).unwrap() - day,
            86_400_000
        );
        assert_eq!(
            parse_time("2026-11-24T01:30", "from", false).unwrap() - day,
            5_400_000
        );
        assert!(parse_time("24/11/2026", "from", false).is_err());
        let raw = RawFilter {
            from: "2026-11-25".into(),
            to: "2026-11-24".into(),
            ..RawFilter::default()
        };
        assert_eq!(raw.parse(None).unwrap_err().field, "to");
        let unknown = RawFilter {
            event_type: "login'; DROP TABLE auth_events".into(),
            ..RawFilter::default()
        };
        assert_eq!(unknown.parse(None).unwrap_err().field, "type");
    }

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let raw = Cursor::encode(1_700_000_000_000, "0190-abc");
        assert_eq!(
            Cursor::parse(&raw, true),
            Some(Cursor::Before(1_700_000_000_000, "0190-abc".into()))
        );
        assert_eq!(Cursor::parse("x_y", true), None);
        assert_eq!(Cursor::parse("1_' OR 1=1", false), None);
    }
}
