//! Secrets of the installation as a whole (not of a tenant or a user), shared by every instance.

use secrecy::{ExposeSecret, SecretString};

use super::{Store, StoreError};
use crate::clock::Millis;

impl Store {
    /// The secret called `name`; when there is none yet, `candidate` becomes it. Several instances
    /// starting at once may all offer a candidate: the first insert wins and every instance reads
    /// back that one, so they all sign and verify with the same secret.
    pub async fn installation_secret(
        &self,
        name: &str,
        candidate: &SecretString,
        now: Millis,
    ) -> Result<SecretString, StoreError> {
        sqlx::query(
            "INSERT INTO installation_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate.expose_secret())
        .bind(now)
        .execute(self.pool())
        .await?;
        let (secret,): (String,) =
            sqlx::query_as("SELECT secret FROM installation_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(self.pool())
                .await?;
        Ok(SecretString::from(secret))
    }
}
