//! Secrets the whole installation shares (every instance of a PostgreSQL deployment alike), made
//! once on first use. They key MACs the server checks itself; nobody types or sees them.

use super::{Store, StoreError};
use crate::clock::Millis;

impl Store {
    /// The secret named `name`: `candidate` if this call created it, else the one stored first
    /// (two instances racing agree on the winner).
    pub async fn installation_secret(
        &self,
        name: &str,
        candidate: &str,
        now: Millis,
    ) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO installation_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now)
        .execute(self.pool())
        .await?;
        let (secret,): (String,) =
            sqlx::query_as("SELECT secret FROM installation_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(self.pool())
                .await?;
        Ok(secret)
    }
}
