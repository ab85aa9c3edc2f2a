//! The token endpoint's group commit: a batch of signed tokens counted against their credentials'
//! limits and recorded with their `token_issued` events in one transaction. On PostgreSQL the
//! counting and recording are one statement (a data-modifying `WITH`) between `BEGIN` and
//! `COMMIT`. The statement alone would be a transaction of its own and save two round trips, but
//! a batch the writer abandons (the database stalled) could then still commit when the stall ends,
//! recording tokens nobody was given; inside an explicit transaction, closing the connection
//! before `COMMIT` rolls it back.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Connection, FromRow};

use super::events::{EVENT_COLUMN_COUNT, EVENT_COLUMNS, bind_event, count_events, insert_events};
use super::issued_tokens::IssuedToken;
use super::partners::policies::{
    COUNT_PARAMETERS, COUNTED_COLUMNS, Counted, CountedWindow, IssuanceCount, IssuanceWindow,
    bind_count, count_issuances, count_statement,
};
use super::{Backend, Store, StoreError, placeholders, placeholders_from};
use crate::clock::Millis;
use crate::domain::events::Event;

/// A signed token waiting to be recorded, with its `token_issued` event and its credential's
/// tokens-per-minute limit.
pub struct TokenToRecord<'a> {
    pub token: &'a IssuedToken,
    pub ip: Option<&'a str>,
    pub event: &'a Event,
    pub per_minute: i64,
    /// Single-use ids the request presented (a client assertion's, a DPoP proof's), spent with
    /// the token: a replay collides here, on every instance.
    pub spends: &'a [SingleUse],
}

/// A single-use id (digest) to spend, remembered until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleUse {
    pub digest: String,
    pub expires_at: Millis,
}

/// What became of a token to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRecording {
    /// Recorded; the credential's window with this token counted.
    Recorded(IssuanceWindow),
    /// Not recorded: the credential has had its tokens for this window.
    OverLimit(IssuanceWindow),
    /// Not recorded: the single-use id at this index was spent before.
    Replayed(usize),
}

/// The token recorder's own connection, outside the pool: a batch starts without waiting for
/// the pool and its liveness check, and the connection's I/O is driven by the recorder's own
/// runtime, not behind the requests of a busy HTTP worker. One idle for a while is checked before
/// it is trusted again; one that failed is closed, and the next batch opens a new one.
#[derive(Default)]
pub struct HeldConnection {
    connection: Option<(AnyConnection, Instant)>,
}

/// How long a held connection may sit unused and still be trusted without a check.
const HELD_IDLE: Duration = Duration::from_secs(5);

impl HeldConnection {
    async fn take_or_open(&mut self, store: &Store) -> Result<&mut AnyConnection, StoreError> {
        let connection = match self.connection.take() {
            Some((mut held, used)) if used.elapsed() > HELD_IDLE => match held.ping().await {
                Ok(()) => held,
                Err(_) => store.dedicated_connection().await?,
            },
            Some((held, _)) => held,
            None => store.dedicated_connection().await?,
        };
        let (connection, _) = self.connection.insert((connection, Instant::now()));
        Ok(connection)
    }

    /// Closes the held connection (after a failure or an abandoned batch); the next batch opens
    /// a fresh one.
    pub fn release(&mut self) {
        self.connection = None;
    }
}

impl Store {
    /// Records a batch of issued tokens in one transaction (group commit): each is counted against
    /// its credential's limit, and recorded with its event only within it. One answer per token,
    /// in order; if the transaction fails, none of them was recorded.
    pub async fn record_issued_tokens(
        &self,
        held: &mut HeldConnection,
        batch: &[TokenToRecord<'_>],
    ) -> Result<Vec<TokenRecording>, StoreError> {
        let connection = held.take_or_open(self).await?;
        let recorded = record_batch(connection, self.backend(), batch).await;
        if recorded.is_err() {
            // It may be the connection that failed: the next batch takes a fresh, checked one.
            held.release();
        }
        recorded
    }
}

async fn record_batch(
    connection: &mut AnyConnection,
    backend: Backend,
    batch: &[TokenToRecord<'_>],
) -> Result<Vec<TokenRecording>, StoreError> {
    let mut tx = connection.begin().await?;
    // Single-use ids first: a replay is neither counted nor recorded.
    let replayed = spend(&mut tx, batch).await?;
    let counting = Counting::new(batch, replayed);
    let windows = match backend {
        Backend::Postgres => count_and_record_at_once(&mut tx, batch, &counting).await?,
        Backend::Sqlite => count_and_record_in_steps(&mut tx, batch, &counting).await?,
    };
    tx.commit().await?;
    counting.outcomes(&windows)
}

/// Per token, the index of the first of its single-use ids that was spent before. Within the
/// batch, the first request to present an id spends it.
async fn spend(
    connection: &mut AnyConnection,
    batch: &[TokenToRecord<'_>],
) -> Result<Vec<Option<usize>>, sqlx::Error> {
    let all_spends: Vec<&SingleUse> = batch.iter().flat_map(|item| item.spends).collect();
    let mut unspent = spend_all(connection, &all_spends).await?;
    Ok(batch
        .iter()
        .map(|item| {
            item.spends
                .iter()
                .position(|spend| !unspent.remove(&spend.digest))
        })
        .collect())
}

/// Spends single-use ids; the ones spent before (here, on another instance, or earlier in
/// `spends`) are not returned. On PostgreSQL a concurrent spender's insert waits for the first to
/// commit; ids go in sorted so two instances' batches never wait for each other in a cycle.
async fn spend_all(
    connection: &mut AnyConnection,
    spends: &[&SingleUse],
) -> Result<HashSet<String>, sqlx::Error> {
    let mut unique: Vec<&SingleUse> = spends.to_vec();
    unique.sort_by(|a, b| a.digest.cmp(&b.digest));
    unique.dedup_by(|a, b| a.digest == b.digest);
    if unique.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "INSERT INTO used_assertions (digest, expires_at) VALUES {} \
         ON CONFLICT (digest) DO NOTHING RETURNING digest",
        placeholders(unique.len(), 2)
    );
    let mut query = sqlx::query_as::<_, (String,)>(sqlx::AssertSqlSafe(sql));
    for spend in &unique {
        query = query.bind(spend.digest.as_str()).bind(spend.expires_at);
    }
    let spent = query.fetch_all(connection).await?;
    Ok(spent.into_iter().map(|(digest,)| digest).collect())
}

/// The batch's tokens that were not replays, by credential: one count per credential (sorted, so
/// every instance locks windows in the same order).
struct Counting<'a> {
    counts: Vec<IssuanceCount<'a>>,
    /// Per count, its tokens' places in the batch, in batch order.
    members: Vec<Vec<usize>>,
    /// Per token, the index of its single-use id that was spent before, if any.
    replayed: Vec<Option<usize>>,
}

impl<'a> Counting<'a> {
    fn new(batch: &[TokenToRecord<'a>], replayed: Vec<Option<usize>>) -> Self {
        let mut by_credential: BTreeMap<&'a str, Vec<usize>> = BTreeMap::new();
        for (place, (item, replay)) in batch.iter().zip(&replayed).enumerate() {
            if replay.is_none() {
                by_credential
                    .entry(item.token.credential_id.as_str())
                    .or_default()
                    .push(place);
            }
        }
        let (counts, members) = by_credential
            .into_iter()
            .map(|(credential, members)| {
                let mine = || members.iter().filter_map(|&place| batch.get(place));
                let count = IssuanceCount {
                    credential,
                    at: mine()
                        .map(|item| item.token.issued_at)
                        .min()
                        .unwrap_or_default(),
                    wanted: i64::try_from(members.len()).unwrap_or(i64::MAX),
                    per_minute: mine().map(|item| item.per_minute).min().unwrap_or_default(),
                };
                (count, members)
            })
            .unzip();
        Self {
            counts,
            members,
            replayed,
        }
    }

    /// Each count's window, in the order of `counts`, from rows returned in any order.
    fn in_order(&self, rows: Vec<CountedWindow>) -> Result<Vec<CountedWindow>, StoreError> {
        self.counts
            .iter()
            .map(|count| {
                rows.iter()
                    .find(|row| row.credential_id == count.credential)
                    .cloned()
                    .ok_or_else(|| StoreError::Unexpected("a credential left uncounted".into()))
            })
            .collect()
    }

    /// The places of the tokens that their windows let through, in batch order.
    fn let_through(&self, windows: &[CountedWindow]) -> Vec<usize> {
        let mut places: Vec<usize> = self
            .members
            .iter()
            .zip(windows)
            .flat_map(|(members, window)| {
                members
                    .iter()
                    .enumerate()
                    .filter(|(nth, _)| window.lets_through(*nth))
                    .map(|(_, &place)| place)
            })
            .collect();
        places.sort_unstable();
        places
    }

    /// One answer per token of the batch, in order.
    fn outcomes(&self, windows: &[CountedWindow]) -> Result<Vec<TokenRecording>, StoreError> {
        let mut outcomes: Vec<Option<TokenRecording>> = self
            .replayed
            .iter()
            .map(|replay| replay.map(TokenRecording::Replayed))
            .collect();
        for (members, window) in self.members.iter().zip(windows) {
            for (nth, place) in members.iter().enumerate() {
                if let Some(outcome) = outcomes.get_mut(*place) {
                    *outcome = Some(match window.nth(nth) {
                        Counted::Within(window) => TokenRecording::Recorded(window),
                        Counted::Over(window) => TokenRecording::OverLimit(window),
                    });
                }
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.ok_or_else(|| StoreError::Unexpected("a token left uncounted".into()))
            })
            .collect()
    }
}

const TOKEN_COLUMNS: &str =
    "jti, tenant_id, credential_id, client_id, kid, scopes, issued_at, expires_at, ip";
const TOKEN_COLUMN_COUNT: usize = 9;

/// Binds a token's [`TOKEN_COLUMNS`], in order.
fn bind_token<'q>(
    query: Query<'q, Any, AnyArguments>,
    item: &TokenToRecord<'q>,
) -> Query<'q, Any, AnyArguments> {
    let token = item.token;
    query
        .bind(token.jti.as_str())
        .bind(token.tenant_id.as_str())
        .bind(token.credential_id.as_str())
        .bind(token.client_id.as_str())
        .bind(token.kid.as_str())
        .bind(token.scopes.as_str())
        .bind(token.issued_at)
        .bind(token.expires_at)
        .bind(item.ip)
}

/// Counts and records statement by statement (SQLite, where a statement is a function call).
async fn count_and_record_in_steps(
    connection: &mut AnyConnection,
    batch: &[TokenToRecord<'_>],
    counting: &Counting<'_>,
) -> Result<Vec<CountedWindow>, StoreError> {
    let mut windows = Vec::with_capacity(counting.counts.len());
    for count in &counting.counts {
        windows.push(count_issuances(connection, count).await?);
    }
    let recorded: Vec<&TokenToRecord<'_>> = counting
        .let_through(&windows)
        .into_iter()
        .filter_map(|place| batch.get(place))
        .collect();
    if !recorded.is_empty() {
        let sql = format!(
            "INSERT INTO access_tokens ({TOKEN_COLUMNS}) VALUES {}",
            placeholders(recorded.len(), TOKEN_COLUMN_COUNT)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for item in &recorded {
            query = bind_token(query, item);
        }
        query.execute(&mut *connection).await?;
    }
    let events: Vec<&Event> = recorded.iter().map(|item| item.event).collect();
    insert_events(connection, &events).await?;
    Ok(windows)
}

/// Counts and records in one statement (PostgreSQL), so the decision and the writes are one
/// round trip.
async fn count_and_record_at_once(
    connection: &mut AnyConnection,
    batch: &[TokenToRecord<'_>],
    counting: &Counting<'_>,
) -> Result<Vec<CountedWindow>, StoreError> {
    if counting.counts.is_empty() {
        // Every token of the batch was a replay.
        return Ok(Vec::new());
    }
    let pending: Vec<(usize, &TokenToRecord<'_>)> = counting
        .members
        .iter()
        .flat_map(|members| members.iter().enumerate())
        .filter_map(|(nth, &place)| Some((nth, batch.get(place)?)))
        .collect();
    let sql = counting_and_recording(counting.counts.len(), pending.len());
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for count in &counting.counts {
        query = bind_count(query, count);
    }
    for (nth, item) in &pending {
        let nth = i64::try_from(*nth).unwrap_or(i64::MAX);
        query = bind_event(bind_token(query.bind(nth), item), item.event);
    }
    let rows = query.fetch_all(&mut *connection).await?;
    let rows = rows
        .iter()
        .map(CountedWindow::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let windows = counting.in_order(rows)?;
    let recorded: Vec<&Event> = counting
        .let_through(&windows)
        .into_iter()
        .filter_map(|place| batch.get(place).map(|item| item.event))
        .collect();
    count_events(&recorded);
    Ok(windows)
}

/// The one statement for `counts` credentials and `pending` tokens: each credential's count is a
/// data-modifying `WITH`; the pending rows (the token's place in its credential's count, its
/// columns, its event's columns) that their count lets through are inserted as tokens and events.
/// Returns the counts' windows ([`COUNTED_COLUMNS`]).
fn counting_and_recording(counts: usize, pending: usize) -> String {
    let listed = |columns: Vec<String>| columns.join(", ");
    let each_count = listed(
        (0..counts)
            .map(|i| {
                format!(
                    "count{i} AS ({})",
                    count_statement(1 + i * COUNT_PARAMETERS)
                )
            })
            .collect(),
    );
    let counted = (0..counts)
        .map(|i| format!("SELECT {COUNTED_COLUMNS} FROM count{i}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let event_columns = || EVENT_COLUMNS.split(',').map(str::trim);
    let token_columns = || TOKEN_COLUMNS.split(',').map(str::trim);
    let pending_event_columns = listed(event_columns().map(|c| format!("event_{c}")).collect());
    let token_values = listed(token_columns().map(|c| format!("p.{c}")).collect());
    let event_values = listed(event_columns().map(|c| format!("p.event_{c}")).collect());
    let values = placeholders_from(
        1 + counts * COUNT_PARAMETERS,
        pending,
        1 + TOKEN_COLUMN_COUNT + EVENT_COLUMN_COUNT,
    );
    let let_through = "FROM pending p JOIN counted c ON c.credential_id = p.credential_id \
                       WHERE p.nth < c.last_counted";
    format!(
        "WITH {each_count}, counted AS ({counted}), \
         pending (nth, {TOKEN_COLUMNS}, {pending_event_columns}) AS (VALUES {values}), \
         tokens AS (INSERT INTO access_tokens ({TOKEN_COLUMNS}) SELECT {token_values} {let_through}), \
         events AS (INSERT INTO auth_events ({EVENT_COLUMNS}) SELECT {event_values} {let_through}) \
         SELECT {COUNTED_COLUMNS} FROM counted"
    )
}
