//! Group commit for issued tokens. Every token is recorded — its row and its `token_issued` event
//! committed — before its response is sent, but committing one transaction per token made the
//! commit, not the signature, the token endpoint's limit. Requests hand their signed token to one
//! writer per instance; the writer takes whatever is waiting (up to a bounded batch, without
//! waiting for more: under light load a batch is one token), records it in one transaction and
//! answers each request. If the transaction fails, every request of the batch hears so and none of
//! its tokens is handed out.
//!
//! Waits are bounded by the database timeout. A request waits that long for its answer, then is
//! refused (503) and its token never handed out. The writer records nothing for a request that
//! gave up or ran out of time, and abandons a batch the database has not committed by the
//! earliest deadline among its requests, or once the database is found down (the requests are
//! answered 503 then): the transaction is rolled back when its connection is closed, the database
//! is probed, and the next batch opens a fresh connection.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::domain::events::Event;
use crate::store::Store;
use crate::store::issued_tokens::IssuedToken;
use crate::store::token_batches::{HeldConnection, SingleUse, TokenRecording, TokenToRecord};
use crate::streak::FailureStreak;

/// Tokens recorded in one transaction at most: bounds a transaction's length, and so the wait of
/// the tokens behind it.
const MAX_BATCH: usize = 128;
/// Tokens waiting for the writer at most; further requests wait for room (back-pressure).
const QUEUE: usize = 4096;
/// How much longer than its deadline a request waits for the writer's verdict: the writer answers
/// at the deadline, and a request should hear that answer rather than guess.
const VERDICT_GRACE: Duration = Duration::from_millis(250);

static BATCH_FAILURES: FailureStreak = FailureStreak::new("recording issued tokens");

/// Why a token could not be recorded (its request is refused as temporarily unavailable).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the token could not be recorded")]
pub struct NotRecorded;

struct Pending {
    token: IssuedToken,
    ip: Option<String>,
    event: Event,
    per_minute: i64,
    spends: Vec<SingleUse>,
    /// When the request stops waiting: its token must not be recorded after this.
    deadline: Instant,
    answer: oneshot::Sender<Result<TokenRecording, NotRecorded>>,
}

#[derive(Default)]
pub struct TokenRecorder {
    /// The writer's queue, started with the first token.
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
}

impl TokenRecorder {
    /// Records `token` with `event` in the next batch, counted against `per_minute` and spending
    /// the request's single-use ids.
    pub async fn record(
        &self,
        store: &Store,
        token: IssuedToken,
        event: Event,
        per_minute: i64,
        spends: Vec<SingleUse>,
    ) -> Result<TokenRecording, NotRecorded> {
        let (answer, answered) = oneshot::channel();
        let deadline = Instant::now() + store.timeout();
        let pending = Pending {
            ip: event.context.ip.clone(),
            token,
            event,
            per_minute,
            spends,
            deadline,
            answer,
        };
        let queue = self.queue(store);
        match tokio::time::timeout_at(deadline, queue.send(pending)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Err(NotRecorded),
        }
        match tokio::time::timeout_at(deadline + VERDICT_GRACE, answered).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(_)) | Err(_) => Err(NotRecorded),
        }
    }

    /// The writer's queue; a writer that stopped (it could not start) is replaced.
    fn queue(&self, store: &Store) -> mpsc::Sender<Pending> {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match queue.as_ref() {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::channel(QUEUE);
                start_writer(store.clone(), receiver);
                *queue = Some(sender.clone());
                sender
            }
        }
    }
}

/// The writer runs on a thread and runtime of its own: between its statements it must not wait
/// behind the requests a busy HTTP worker is serving, or every batch would take longer and hold
/// more requests. It ends when the recorder is dropped (its queue closes). If it cannot start,
/// the waiting requests are refused (503) and the next token tries again.
fn start_writer(store: Store, receiver: mpsc::Receiver<Pending>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let started = runtime.map_err(|e| e.to_string()).and_then(|runtime| {
        std::thread::Builder::new()
            .name("token-recorder".into())
            .spawn(move || runtime.block_on(write_batches(store, receiver)))
            .map_err(|e| e.to_string())
    });
    if let Err(error) = started {
        tracing::warn!(%error, "could not start the token recorder's thread");
    }
}

async fn write_batches(store: Store, mut queue: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut connection = HeldConnection::default();
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        drop_expired(&mut batch);
        let Some(deadline) = batch.iter().map(|p| p.deadline).min() else {
            continue;
        };
        let items: Vec<TokenToRecord<'_>> = batch
            .iter()
            .map(|p| TokenToRecord {
                token: &p.token,
                ip: p.ip.as_deref(),
                event: &p.event,
                per_minute: p.per_minute,
                spends: &p.spends,
            })
            .collect();
        let recording = store.record_issued_tokens(&mut connection, &items);
        // Given up at the deadline, or as soon as the database is found down: the requests are
        // being answered 503 then, and their tokens must not commit later.
        let recorded = tokio::select! {
            biased;
            recorded = recording => Ok(recorded),
            () = tokio::time::sleep_until(deadline) => Err(()),
            () = store.health().went_down() => Err(()),
        };
        drop(items);
        match recorded {
            Ok(Ok(outcomes)) => {
                BATCH_FAILURES.succeeded();
                for (pending, outcome) in batch.drain(..).zip(outcomes) {
                    // A request that gave up waiting needs no answer.
                    let _ = pending.answer.send(Ok(outcome));
                }
            }
            Ok(Err(e)) => {
                BATCH_FAILURES.failed(&e);
                refuse_all(&mut batch);
            }
            Err(()) => {
                // The database took the statement and did not answer in time: closing the
                // connection before `COMMIT` was sent rolls the transaction back.
                connection.release();
                store.health().suspect();
                BATCH_FAILURES.failed(&"the database did not answer in time");
                refuse_all(&mut batch);
            }
        }
        batch.clear();
    }
}

/// Takes out requests that stopped waiting (answered without recording their tokens).
fn drop_expired(batch: &mut Vec<Pending>) {
    let now = Instant::now();
    let (live, expired): (Vec<Pending>, Vec<Pending>) = batch
        .drain(..)
        .partition(|p| !p.answer.is_closed() && p.deadline > now);
    *batch = live;
    for pending in expired {
        let _ = pending.answer.send(Err(NotRecorded));
    }
}

fn refuse_all(batch: &mut Vec<Pending>) {
    for pending in batch.drain(..) {
        let _ = pending.answer.send(Err(NotRecorded));
    }
}
