//! What a client credential may do once authenticated (networks, tokens per minute, DPoP), and
//! the per-credential issuance counter the token endpoint moves with each token it records (in the
//! same transaction, so a token that is not recorded is not counted).

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, FromRow};

use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::TenantId;
use crate::domain::partners::{CredentialKind, CredentialStatus};
use crate::store::events::insert_event;
use crate::store::revocations::{CREDENTIAL_CHANGED, notify};
use crate::store::{Store, StoreError};

/// A credential's policy as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredPolicy {
    pub kind: CredentialKind,
    pub status: CredentialStatus,
    /// Comma-separated CIDRs; `None`: anywhere.
    pub allowed_networks: Option<String>,
    pub tokens_per_minute: i64,
    pub require_dpop: i64,
}

/// The policy values to write.
pub struct PolicyValues<'a> {
    pub allowed_networks: Option<&'a str>,
    pub tokens_per_minute: i64,
    pub require_dpop: bool,
}

/// Where a credential's issuance stands after counting one more token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssuanceWindow {
    pub started_at: Millis,
    /// Tokens issued in the window, this one included.
    pub issued: i64,
}

impl Store {
    pub async fn client_policy(
        &self,
        tenant: TenantId,
        credential: &str,
    ) -> Result<Option<StoredPolicy>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT kind, status, allowed_networks, tokens_per_minute, require_dpop \
             FROM credentials WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(credential)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Writes a credential's policy with its event; every instance drops its cached copy when
    /// the change commits (PostgreSQL NOTIFY).
    pub async fn set_client_policy(
        &self,
        tenant: TenantId,
        credential: &str,
        values: &PolicyValues<'_>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let changed = sqlx::query(
            "UPDATE credentials SET allowed_networks = $3, tokens_per_minute = $4, require_dpop = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'active'",
        )
        .bind(tenant.to_string())
        .bind(credential)
        .bind(values.allowed_networks)
        .bind(values.tokens_per_minute)
        .bind(i64::from(values.require_dpop))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Ok(false);
        }
        insert_event(&mut *tx, event).await?;
        notify(
            &mut tx,
            self.backend(),
            &format!("{CREDENTIAL_CHANGED}{credential}"),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// Whether one more token fits its credential's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    /// Counted; the window with it.
    Within(IssuanceWindow),
    /// Not counted: the window is full.
    Over(IssuanceWindow),
}

/// One credential's tokens in a batch, counted against its window together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IssuanceCount<'a> {
    pub credential: &'a str,
    /// The batch's time for the window: a window that started a minute or more before it is
    /// over, and a new one starts here.
    pub at: Millis,
    /// Tokens asking to be counted.
    pub wanted: i64,
    /// The credential's limit (the lowest its tokens in the batch carry).
    pub per_minute: i64,
}

/// A credential's window after a count, as the counting statement returns it: of the tokens
/// asked for, the first `last_counted` were let through.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CountedWindow {
    pub credential_id: String,
    pub window_start: Millis,
    pub issued: i64,
    pub last_counted: i64,
}

impl CountedWindow {
    /// Whether the credential's `nth` token (from 0) of the count was let through.
    pub(crate) fn lets_through(&self, nth: usize) -> bool {
        i64::try_from(nth).is_ok_and(|n| n < self.last_counted)
    }

    /// The answer for the credential's `nth` token (from 0) of the count.
    pub(crate) fn nth(&self, nth: usize) -> Counted {
        let window = |issued| IssuanceWindow {
            started_at: self.window_start,
            issued,
        };
        match i64::try_from(nth) {
            Ok(n) if n < self.last_counted => {
                Counted::Within(window(self.issued - self.last_counted + n + 1))
            }
            _ => Counted::Over(window(self.issued)),
        }
    }
}

/// Columns of [`CountedWindow`], returned by [`count_statement`].
pub(crate) const COUNTED_COLUMNS: &str = "credential_id, window_start, issued, last_counted";

/// Parameters of one [`count_statement`].
pub(crate) const COUNT_PARAMETERS: usize = 5;

/// The upsert that counts one credential's tokens (parameters from `$first`, bound by
/// [`bind_count`]) and returns [`COUNTED_COLUMNS`]. Tokens are let through while the window holds
/// fewer than the limit; a lowered limit never takes back what was counted. Every `SET` expression
/// reads the row as it was, on both backends. On PostgreSQL the row stays locked, and on SQLite the
/// write lock held, until the transaction ends, so issuances on every instance count one after
/// another.
pub(crate) fn count_statement(first: usize) -> String {
    let [credential, at, wanted, limit, opening]: [String; COUNT_PARAMETERS] =
        std::array::from_fn(|i| format!("${}", first + i));
    let expired = format!("issuance_windows.window_start <= {at} - {ISSUANCE_WINDOW_MS}");
    let issued = "issuance_windows.issued";
    format!(
        "INSERT INTO issuance_windows ({COUNTED_COLUMNS}) VALUES ({credential}, {at}, {opening}, {opening}) \
         ON CONFLICT (credential_id) DO UPDATE SET \
         window_start = CASE WHEN {expired} THEN {at} ELSE issuance_windows.window_start END, \
         issued = CASE WHEN {expired} THEN {opening} WHEN {issued} + {wanted} <= {limit} THEN {issued} + {wanted} \
         WHEN {issued} < {limit} THEN {limit} ELSE {issued} END, \
         last_counted = CASE WHEN {expired} THEN {opening} WHEN {issued} + {wanted} <= {limit} THEN {wanted} \
         WHEN {issued} < {limit} THEN {limit} - {issued} ELSE 0 END \
         RETURNING {COUNTED_COLUMNS}"
    )
}

/// Binds a [`count_statement`]'s parameters.
pub(crate) fn bind_count<'q>(
    query: Query<'q, Any, AnyArguments>,
    count: &IssuanceCount<'q>,
) -> Query<'q, Any, AnyArguments> {
    // What a window opened by this count holds.
    let opening = count.wanted.min(count.per_minute).max(0);
    query
        .bind(count.credential)
        .bind(count.at)
        .bind(count.wanted)
        .bind(count.per_minute)
        .bind(opening)
}

/// Counts one credential's tokens in its own statement (see [`count_statement`]).
pub(crate) async fn count_issuances(
    connection: &mut AnyConnection,
    count: &IssuanceCount<'_>,
) -> Result<CountedWindow, sqlx::Error> {
    let row = bind_count(sqlx::query(sqlx::AssertSqlSafe(count_statement(1))), count)
        .fetch_one(connection)
        .await?;
    CountedWindow::from_row(&row)
}

/// The issuance limit's window.
pub const ISSUANCE_WINDOW_MS: Millis = 60_000;
