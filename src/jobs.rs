//! Periodic background work, in one place. Every job is named in [`Job`]; [`Jobs::run`] runs one
//! once (what tests do, at the point they need it); [`spawn_every`] runs one on its interval until
//! the application shuts down. Every job is idempotent and safe on several instances at once.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::clock::duration_ms;
use crate::config::Settings;
use crate::domain::alerts::{self, DetectorPolicy};
use crate::domain::keys::{self, KeyError};
use crate::domain::{Core, audit, operations, replication};
use crate::mail::{MailError, Mailer};
use crate::store::StoreError;
use crate::streak::FailureStreak;

/// Sweeps and retention run rarely: they delete what is long dead.
const SWEEP_INTERVAL: Duration = Duration::from_secs(300);
const SEAL_INTERVAL: Duration = Duration::from_secs(5);
const DETECT_INTERVAL: Duration = Duration::from_secs(2);
const OUTBOX_INTERVAL: Duration = Duration::from_secs(2);

/// Every periodic job the application runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Expired sessions, spent setup links, expired credentials (with their notices), and
    /// revocation entries past the feed's horizon.
    Sweep,
    /// Events past `event_retention`, in small batches (the hash chain keeps its anchor).
    PurgeEvents,
    /// Settled events into the hash chain; each event is sealed once.
    SealEvents,
    /// The suspicious-activity detectors over new events; each event is examined once.
    Detect,
    /// Scheduled key rotation and retirement; the store lets exactly one instance win.
    KeySchedule,
    /// Re-reads revocations and key changes, bounding staleness when a notification is lost.
    Reconcile,
    /// Delivers due e-mail from the outbox, with leases so nothing is sent twice.
    Outbox,
}

impl Job {
    pub const ALL: [Job; 7] = [
        Job::Sweep,
        Job::PurgeEvents,
        Job::SealEvents,
        Job::Detect,
        Job::KeySchedule,
        Job::Reconcile,
        Job::Outbox,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Job::Sweep => "sweep",
            Job::PurgeEvents => "purge events",
            Job::SealEvents => "seal events",
            Job::Detect => "detect",
            Job::KeySchedule => "key schedule",
            Job::Reconcile => "reconcile",
            Job::Outbox => "outbox",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// What the jobs need: the domain core, the mailer and the settings that shape them.
#[derive(Clone)]
pub struct Jobs {
    core: Core,
    mailer: Mailer,
    retention: Duration,
    detector_policy: DetectorPolicy,
    key_schedule_interval: Duration,
    reconcile_interval: Duration,
    /// When the last successful reconciliation started: the next one looks for key changes since.
    reconciled_since: Arc<AtomicI64>,
}

impl Jobs {
    pub fn new(core: Core, mailer: Mailer, settings: &Settings) -> Self {
        let now = core.clock.now_ms();
        Self {
            core,
            mailer,
            retention: settings.event_retention,
            detector_policy: settings.detector_policy,
            key_schedule_interval: settings.key_schedule_interval,
            reconcile_interval: settings.revocation_reconcile_interval,
            reconciled_since: Arc::new(AtomicI64::new(now)),
        }
    }

    /// How often `job` runs in the background.
    pub fn interval(&self, job: Job) -> Duration {
        match job {
            Job::Sweep | Job::PurgeEvents => SWEEP_INTERVAL,
            Job::SealEvents => SEAL_INTERVAL,
            Job::Detect => DETECT_INTERVAL,
            Job::KeySchedule => self.key_schedule_interval,
            Job::Reconcile => self.reconcile_interval,
            Job::Outbox => OUTBOX_INTERVAL,
        }
    }

    /// Runs `job` once, now. Returns how many things it handled (rows swept or purged, events
    /// sealed, alerts raised, mails sent); the key schedule and reconciliation count nothing (0).
    pub async fn run(&self, job: Job) -> Result<u64, JobError> {
        let core = &self.core;
        match job {
            Job::Sweep => Ok(operations::sweep(core).await?),
            Job::PurgeEvents => {
                let cutoff = core.clock.now_ms() - duration_ms(self.retention);
                let removed = audit::purge_before(core, cutoff).await?;
                if removed > 0 {
                    tracing::info!(removed, "purged events past retention");
                }
                Ok(removed)
            }
            Job::SealEvents => Ok(audit::seal_pending(core).await?),
            Job::Detect => {
                // The pass that watches for abuse also writes the refused-work summary whose
                // interval has passed, so the tail of a flood reaches the log without a timer.
                core.refusals.flush(core.clock.now_ms());
                Ok(alerts::run_detectors(core, &self.detector_policy).await?)
            }
            Job::KeySchedule => {
                keys::run_schedule(core).await?;
                Ok(0)
            }
            Job::Reconcile => {
                let started = core.clock.now_ms();
                let since = self.reconciled_since.load(Ordering::SeqCst);
                replication::reconcile(core, since, self.reconcile_interval).await?;
                self.reconciled_since.store(started, Ordering::SeqCst);
                Ok(0)
            }
            Job::Outbox => {
                let sent = self.mailer.deliver_due(core).await?;
                Ok(u64::try_from(sent).unwrap_or(u64::MAX))
            }
        }
    }

    /// Runs `job` on its interval until `shutdown` fires; a failed run is logged and retried at the
    /// next tick, and nothing runs while the database is not yet migrated.
    /// An outage fails every run of every job: each job logs when it starts failing, a count while
    /// it does, and when it works again.
    pub fn spawn(&self, job: Job, shutdown: &Shutdown) -> JoinHandle<()> {
        let jobs = self.clone();
        let failures = Arc::new(FailureStreak::named(format!(
            "background job `{}`",
            job.name()
        )));
        spawn_every(self.interval(job), shutdown, move || {
            let jobs = jobs.clone();
            let failures = failures.clone();
            async move {
                if !operations::is_migrated(&jobs.core) {
                    return;
                }
                match jobs.run(job).await {
                    Ok(_) => failures.succeeded(),
                    Err(error) => failures.failed(&error),
                }
            }
        })
    }

    /// Every job in [`Job::ALL`], each on its own interval.
    pub fn spawn_all(&self, shutdown: &Shutdown) {
        for job in Job::ALL {
            self.spawn(job, shutdown);
        }
    }
}

/// Tells background tasks to stop, and knows how many are still running. Every task spawned with
/// [`spawn_every`] or [`spawn_until_stopped`] holds a listener until it ends; dropping every clone
/// of the `Shutdown` stops them too.
#[derive(Clone)]
pub struct Shutdown {
    signal: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            signal: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl Shutdown {
    /// Asks every task to stop (a job mid-run finishes its run first).
    pub fn trigger(&self) {
        self.signal.send_replace(true);
    }

    /// Background tasks that have not ended yet.
    pub fn running(&self) -> usize {
        self.signal.receiver_count()
    }

    /// Completes once every background task has ended.
    pub async fn stopped(&self) {
        self.signal.closed().await;
    }

    fn listen(&self) -> Stopping {
        Stopping(self.signal.subscribe())
    }
}

/// One task's end of the [`Shutdown`] signal.
struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// Completes when shutdown is triggered or every `Shutdown` is gone.
    async fn requested(&mut self) {
        // An error means the sender is gone: nobody is left to run for.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Runs `run` now and then every `interval` until `shutdown` fires. Ticks missed while a run takes
/// long are not made up in a burst.
pub fn spawn_every<F, Fut>(interval: Duration, shutdown: &Shutdown, mut run: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut stopping = shutdown.listen();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = stopping.requested() => break,
                _ = ticker.tick() => run().await,
            }
        }
    })
}

/// Runs `work` (a listener, a retry loop) until it ends by itself or `shutdown` fires.
pub fn spawn_until_stopped(
    shutdown: &Shutdown,
    work: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let mut stopping = shutdown.listen();
    tokio::spawn(async move {
        tokio::select! {
            () = stopping.requested() => {}
            () = work => {}
        }
    })
}
