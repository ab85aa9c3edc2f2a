//! Group commit for issued tokens. Every token is recorded — its row and its `token_issued` event
//! committed — before its response is sent, but committing one transaction per token made the
//! commit, not the signature, the token endpoint's limit. Requests hand their signed token to one
//! writer per instance; the writer takes whatever is waiting (up to a bounded batch, without
//! waiting for more: under light load a batch is one token), records it in one transaction and
//! answers each request. If the transaction fails, every request of the batch hears so and none of
//! its tokens is handed out.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use crate::domain::events::Event;
use crate::store::Store;
use crate::store::issued_tokens::IssuedToken;
use crate::store::token_batches::{HeldConnection, SingleUse, TokenRecording, TokenToRecord};

/// Tokens recorded in one transaction at most: bounds a transaction's length, and so the wait of
/// the tokens behind it.
const MAX_BATCH: usize = 128;
/// Tokens waiting for the writer at most; further requests wait for room (back-pressure).
const QUEUE: usize = 4096;

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
        let pending = Pending {
            ip: event.context.ip.clone(),
            token,
            event,
            per_minute,
            spends,
            answer,
        };
        self.queue(store)
            .send(pending)
            .await
            .map_err(|_| NotRecorded)?;
        answered.await.map_err(|_| NotRecorded)?
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
        let recorded = store.record_issued_tokens(&mut connection, &items).await;
        drop(items);
        match recorded {
            Ok(outcomes) => {
                for (pending, outcome) in batch.drain(..).zip(outcomes) {
                    // A request that gave up waiting needs no answer.
                    let _ = pending.answer.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::warn!(tokens = batch.len(), error = %e, "a batch of issued tokens could not be recorded; none was handed out");
                for pending in batch.drain(..) {
                    let _ = pending.answer.send(Err(NotRecorded));
                }
            }
        }
        batch.clear();
    }
}
