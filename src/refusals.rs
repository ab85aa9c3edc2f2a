//! Refused work, summarised in the log. A flood turns requests away by the thousand (password
//! checks while the hashing queue is full, throttled sign-ins and client authentications, forms
//! without a valid CSRF token); one log line each would bury everything else. Instead the first
//! refusal after a quiet spell is logged at once, and then one line per interval says how many of
//! each kind were refused since.
//!
//! There is no timer of its own (nothing to race tests or to stop at shutdown): a summary is
//! written when a refusal arrives after the interval has passed, and by the periodic detectors'
//! pass (`flush`), so the tail of a flood is reported too.

use std::sync::Mutex;
use std::time::Duration;

use crate::clock::{Millis, duration_ms};

/// How often, at most, a summary line is written.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A password check (a sign-in, mostly) turned away with 503: too many already waiting.
    Busy,
    /// A sign-in refused because the account or the address is locked after failures.
    ThrottledSignIn,
    /// A token-service client refused because its id or address is locked after failures.
    ThrottledClient,
    /// A form or script request without a valid CSRF token.
    Csrf,
}

impl Refusal {
    const ALL: [Self; 4] = [
        Self::Busy,
        Self::ThrottledSignIn,
        Self::ThrottledClient,
        Self::Csrf,
    ];

    fn index(self) -> usize {
        match self {
            Self::Busy => 0,
            Self::ThrottledSignIn => 1,
            Self::ThrottledClient => 2,
            Self::Csrf => 3,
        }
    }

    fn describe(self, count: u64) -> String {
        let plural = if count == 1 { "" } else { "s" };
        match self {
            Self::Busy => format!("{count} password check{plural} as busy (hashing queue full)"),
            Self::ThrottledSignIn => format!("{count} throttled sign-in{plural}"),
            Self::ThrottledClient => format!("{count} throttled client authentication{plural}"),
            Self::Csrf => format!("{count} request{plural} without a valid CSRF token"),
        }
    }
}

/// What one log line says: how many of each kind were refused over how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Refusals per kind, in [`Refusal::ALL`] order; kinds with none are left out.
    pub counts: Vec<(Refusal, u64)>,
    /// The span the counts cover (0 for the first refusal after a quiet spell).
    pub seconds: u64,
}

impl Summary {
    pub fn message(&self) -> String {
        let what: Vec<String> = self
            .counts
            .iter()
            .map(|(refusal, count)| refusal.describe(*count))
            .collect();
        if self.seconds == 0 {
            format!(
                "refused {}; further refusals are summarised every {} s",
                what.join(", "),
                INTERVAL.as_secs()
            )
        } else {
            format!("refused {} in the last {} s", what.join(", "), self.seconds)
        }
    }

    fn count_of(&self, refusal: Refusal) -> u64 {
        self.counts
            .iter()
            .find(|(r, _)| *r == refusal)
            .map_or(0, |(_, count)| *count)
    }

    fn log(&self) {
        tracing::warn!(
            busy = self.count_of(Refusal::Busy),
            throttled_sign_ins = self.count_of(Refusal::ThrottledSignIn),
            throttled_clients = self.count_of(Refusal::ThrottledClient),
            csrf = self.count_of(Refusal::Csrf),
            seconds = self.seconds,
            "{}",
            self.message()
        );
    }
}

/// The counters; one per process, shared by every worker.
#[derive(Debug, Default)]
pub struct RefusalLog {
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
enum Window {
    /// Nothing refused lately: the next refusal is logged at once.
    #[default]
    Quiet,
    /// Counting since `started_at`.
    Counting {
        started_at: Millis,
        counts: [u64; 4],
    },
}

impl RefusalLog {
    /// Counts a refusal at `now`, writing a summary line when one is due.
    pub fn record(&self, refusal: Refusal, now: Millis) {
        if let Some(summary) = self.note(refusal, now) {
            summary.log();
        }
    }

    /// Writes the summary of an interval that has passed (the periodic pass calls this).
    pub fn flush(&self, now: Millis) {
        if let Some(summary) = self.take_due(now) {
            summary.log();
        }
    }

    /// Counts a refusal; returns the line to write, if one is due.
    pub fn note(&self, refusal: Refusal, now: Millis) -> Option<Summary> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *window {
            Window::Quiet => {
                *window = Window::Counting {
                    started_at: now,
                    counts: [0; 4],
                };
                Some(Summary {
                    counts: vec![(refusal, 1)],
                    seconds: 0,
                })
            }
            Window::Counting { counts, .. } => {
                if let Some(count) = counts.get_mut(refusal.index()) {
                    *count = count.saturating_add(1);
                }
                drop(window);
                self.take_due(now)
            }
        }
    }

    /// The summary of the interval if it has passed, starting the next one; a passed interval with
    /// nothing in it ends the flood (the next refusal is logged at once again).
    pub fn take_due(&self, now: Millis) -> Option<Summary> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let Window::Counting { started_at, counts } = &*window else {
            return None;
        };
        let elapsed = now.saturating_sub(*started_at);
        if elapsed < duration_ms(INTERVAL) {
            return None;
        }
        let counts: Vec<(Refusal, u64)> = Refusal::ALL
            .iter()
            .zip(counts.iter())
            .filter(|(_, count)| **count > 0)
            .map(|(refusal, count)| (*refusal, *count))
            .collect();
        if counts.is_empty() {
            *window = Window::Quiet;
            return None;
        }
        *window = Window::Counting {
            started_at: now,
            counts: [0; 4],
        };
        Some(Summary {
            counts,
            seconds: u64::try_from(elapsed / 1000).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Millis = 1000;

    #[test]
    fn the_first_refusal_after_a_quiet_spell_is_logged_at_once() {
        let log = RefusalLog::default();
        let summary = log.note(Refusal::Busy, 0).unwrap();
        assert_eq!(summary.counts, vec![(Refusal::Busy, 1)]);
        assert_eq!(
            summary.message(),
            "refused 1 password check as busy (hashing queue full); further refusals are summarised every 10 s"
        );
    }

    #[test]
    fn a_flood_gives_one_line_per_interval_not_one_per_request() {
        let log = RefusalLog::default();
        let mut lines = Vec::new();
        // 30,000 refusals over 30 s: one a millisecond, every tenth a throttled sign-in.
        for i in 0..30_000 {
            let now = i;
            let kind = if i % 10 == 0 {
                Refusal::ThrottledSignIn
            } else {
                Refusal::Busy
            };
            lines.extend(log.note(kind, now));
        }
        // The first at once, then one per 10 s.
        assert_eq!(lines.len(), 3);
        let first_interval = &lines[1];
        assert_eq!(first_interval.seconds, 10);
        assert_eq!(
            first_interval.message(),
            "refused 9000 password checks as busy (hashing queue full), 1000 throttled sign-ins in the last 10 s"
        );
    }

    #[test]
    fn the_tail_of_a_flood_is_reported_by_the_periodic_flush_then_all_is_quiet() {
        let log = RefusalLog::default();
        assert!(log.note(Refusal::ThrottledClient, 0).is_some());
        assert!(log.note(Refusal::ThrottledClient, SECOND).is_none());
        assert!(log.note(Refusal::Csrf, 2 * SECOND).is_none());
        assert_eq!(log.take_due(9 * SECOND), None, "not before the interval");

        let tail = log.take_due(10 * SECOND).unwrap();
        assert_eq!(
            tail.counts,
            vec![(Refusal::ThrottledClient, 1), (Refusal::Csrf, 1)]
        );
        // An empty interval ends the flood; the next refusal is news again.
        assert_eq!(log.take_due(20 * SECOND), None);
        assert_eq!(log.note(Refusal::Busy, 21 * SECOND).unwrap().seconds, 0);
    }
}
