//! Repeated failures of one kind in the log: one line when they start, a count while they last
//! (at most one line per [`INTERVAL`]), one line when they end. An outage must not bury the log
//! under a line per failed request or batch.

use std::borrow::Cow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often, at most, a running streak writes its count.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// One kind of failure (e.g. "recording issued tokens").
pub struct FailureStreak {
    what: Cow<'static, str>,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Quiet,
    Failing {
        since: Instant,
        total: u64,
        /// Failures since the last line.
        unreported: u64,
        last_line: Instant,
    },
}

/// What a failure or success means for the log, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Started,
    Continuing { failures: u64, seconds: u64 },
    Ended { failures: u64, seconds: u64 },
}

impl FailureStreak {
    pub const fn new(what: &'static str) -> Self {
        Self {
            what: Cow::Borrowed(what),
            state: Mutex::new(State::Quiet),
        }
    }

    /// A streak whose name is made at run time (a job's, say).
    pub fn named(what: String) -> Self {
        Self {
            what: Cow::Owned(what),
            state: Mutex::new(State::Quiet),
        }
    }

    /// Counts a failure, logging it if a line is due.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        match self.note_failure(Instant::now()) {
            Some(Line::Started) => {
                tracing::warn!(%error, "{} failing; further failures are counted every {} s", self.what, INTERVAL.as_secs());
            }
            Some(Line::Continuing { failures, seconds }) => {
                tracing::warn!(failures, seconds, %error, "{} still failing: {failures} failures in the last {seconds} s", self.what);
            }
            _ => {}
        }
    }

    /// Ends a streak, if one is running, with a line saying how long it lasted.
    pub fn succeeded(&self) {
        if let Some(Line::Ended { failures, seconds }) = self.note_success(Instant::now()) {
            tracing::info!(
                failures,
                seconds,
                "{} works again after {failures} failures over {seconds} s",
                self.what
            );
        }
    }

    fn note_failure(&self, now: Instant) -> Option<Line> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *state {
            State::Quiet => {
                *state = State::Failing {
                    since: now,
                    total: 1,
                    unreported: 0,
                    last_line: now,
                };
                Some(Line::Started)
            }
            State::Failing {
                total,
                unreported,
                last_line,
                ..
            } => {
                *total += 1;
                *unreported += 1;
                let elapsed = now.saturating_duration_since(*last_line);
                if elapsed < INTERVAL {
                    return None;
                }
                let line = Line::Continuing {
                    failures: *unreported,
                    seconds: elapsed.as_secs(),
                };
                *unreported = 0;
                *last_line = now;
                Some(line)
            }
        }
    }

    fn note_success(&self, now: Instant) -> Option<Line> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State::Failing { since, total, .. } = *state else {
            return None;
        };
        *state = State::Quiet;
        Some(Line::Ended {
            failures: total,
            seconds: now.saturating_duration_since(since).as_secs(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_of_failures_writes_a_line_to_start_one_per_interval_and_one_to_end() {
        let streak = FailureStreak::new("recording issued tokens");
        let start = Instant::now();
        let mut lines = Vec::new();
        // 10,000 failures over 25 s: one every 2.5 ms.
        for i in 0..10_000u64 {
            lines.extend(streak.note_failure(start + Duration::from_micros(i * 2_500)));
        }
        lines.extend(streak.note_success(start + Duration::from_secs(26)));

        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(lines[0], Line::Started);
        assert!(matches!(lines[1], Line::Continuing { seconds: 10, .. }));
        assert!(matches!(lines[2], Line::Continuing { seconds: 10, .. }));
        assert_eq!(
            lines[3],
            Line::Ended {
                failures: 10_000,
                seconds: 26
            }
        );
        assert_eq!(streak.note_success(start + Duration::from_secs(27)), None);
    }
}
