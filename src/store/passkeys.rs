//! Registered passkeys (public keys and counters: nothing secret).

use super::events::insert_event;
use super::{Store, StoreError, is_unique_violation};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::UserId;
use crate::domain::passkeys::{NewPasskey, PasskeyRecord};

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    id: String,
    name: String,
    passkey: String,
    backup_eligible: i64,
    backup_state: i64,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<PasskeyRow> for PasskeyRecord {
    fn from(row: PasskeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            passkey_json: row.passkey,
            backup_eligible: row.backup_eligible != 0,
            backup_state: row.backup_state != 0,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        }
    }
}

const COLUMNS: &str = "id, name, passkey, backup_eligible, backup_state, created_at, last_used_at";

#[derive(Debug, PartialEq, Eq)]
pub enum RemovePasskey {
    Removed,
    NotFound,
    /// Refused: a staff account must always keep one passkey.
    LastOne,
}

impl Store {
    /// Stores a new passkey with its event; `Ok(false)` if the credential is already registered
    /// (to anyone).
    pub async fn insert_passkey(
        &self,
        passkey: &NewPasskey,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, name, passkey, sign_count, backup_eligible, \
             backup_state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&passkey.id)
        .bind(passkey.user_id.to_string())
        .bind(&passkey.credential_id)
        .bind(passkey.name.as_str())
        .bind(&passkey.passkey_json)
        .bind(passkey.sign_count)
        .bind(i64::from(passkey.backup_eligible))
        .bind(i64::from(passkey.backup_state))
        .bind(passkey.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Ok(false),
            other => {
                other?;
            }
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn passkeys_of(&self, user_id: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at");
        let rows: Vec<PasskeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(PasskeyRecord::from).collect())
    }

    pub async fn has_passkey(&self, user_id: UserId) -> Result<bool, StoreError> {
        let found: Option<(String,)> =
            sqlx::query_as("SELECT id FROM passkeys WHERE user_id = $1 LIMIT 1")
                .bind(user_id.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(found.is_some())
    }

    /// The passkey with this credential id, if it belongs to this user.
    pub async fn passkey_by_credential(
        &self,
        user_id: UserId,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 AND credential_id = $2");
        let row: Option<PasskeyRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(user_id.to_string())
            .bind(credential_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(PasskeyRecord::from))
    }

    /// Records a successful assertion: new counter and backup flags (when they changed), last use.
    pub async fn record_passkey_use(
        &self,
        id: &str,
        updated: Option<(&str, i64, bool, bool)>,
        now: Millis,
    ) -> Result<(), StoreError> {
        match updated {
            Some((passkey_json, sign_count, backup_eligible, backup_state)) => {
                sqlx::query(
                    "UPDATE passkeys SET passkey = $2, sign_count = $3, backup_eligible = $4, backup_state = $5, \
                     last_used_at = $6 WHERE id = $1",
                )
                .bind(id)
                .bind(passkey_json)
                .bind(sign_count)
                .bind(i64::from(backup_eligible))
                .bind(i64::from(backup_state))
                .bind(now)
                .execute(self.pool())
                .await?
            }
            None => {
                sqlx::query("UPDATE passkeys SET last_used_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(self.pool())
                    .await?
            }
        };
        Ok(())
    }

    pub async fn rename_passkey(
        &self,
        user_id: UserId,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2")
            .bind(user_id.to_string())
            .bind(id)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a passkey unless it is the user's last one; the event commits with it.
    pub async fn remove_passkey(
        &self,
        user_id: UserId,
        id: &str,
        event: &Event,
    ) -> Result<RemovePasskey, StoreError> {
        let mut tx = self.pool().begin().await?;
        let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM passkeys WHERE user_id = $1")
            .bind(user_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        if !ids.iter().any(|(existing,)| existing == id) {
            return Ok(RemovePasskey::NotFound);
        }
        if ids.len() <= 1 {
            return Ok(RemovePasskey::LastOne);
        }
        sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
            .bind(user_id.to_string())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(RemovePasskey::Removed)
    }
}
