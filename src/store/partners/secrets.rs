//! Secrets of credentials: retrieval links, the lookup behind verification, last use, and extra
//! client secrets.

use super::{NewSecret, RetrievedSecret, SecretLookup, SecretRow, SecretsState};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{TenantId, time_ordered_id};
use crate::domain::partners::{CredentialKind, CredentialStatus};
use crate::domain::secrets::SecretDigest;
use crate::store::events::insert_event;
use crate::store::outbox::insert_mail;
use crate::store::revocations::insert_revocation;
use crate::store::staff::OutgoingMail;
use crate::store::{Store, StoreError};

impl Store {
    /// Binds a newly generated secret to the retrieval link, once. Returns the credential id (and its
    /// tenant and kind) if this call retrieved it.
    pub async fn retrieve_secret(
        &self,
        link: &SecretDigest,
        secret: &SecretDigest,
        display_prefix: &str,
        now: Millis,
        event: &Event,
    ) -> Result<Option<RetrievedSecret>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let claimed = sqlx::query(
            "UPDATE credential_secrets SET secret_hash = $2, display_prefix = $3, retrieved_at = $4 \
             WHERE retrieval_token_hash = $1 AND retrieved_at IS NULL AND retrieval_expires_at > $4 AND revoked_at IS NULL",
        )
        .bind(link.as_hex())
        .bind(secret.as_hex())
        .bind(display_prefix)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let retrieved: RetrievedSecret = sqlx::query_as(
            "SELECT c.id AS credential_id, c.tenant_id, c.client_id FROM credential_secrets s \
             JOIN credentials c ON c.id = s.credential_id WHERE s.retrieval_token_hash = $1",
        )
        .bind(link.as_hex())
        .fetch_one(&mut *tx)
        .await?;
        let mut event = event
            .clone()
            .detail("credential", retrieved.credential_id.as_str());
        if let Some(tenant) = TenantId::parse(&retrieved.tenant_id) {
            event = event.tenant(tenant);
        }
        insert_event(&mut *tx, &event).await?;
        tx.commit().await?;
        Ok(Some(retrieved))
    }

    /// The kind of credential a retrieval link belongs to.
    pub async fn retrieval_kind(
        &self,
        link: &SecretDigest,
    ) -> Result<Option<CredentialKind>, StoreError> {
        let row: Option<(CredentialKind,)> = sqlx::query_as(
            "SELECT c.kind FROM credential_secrets s JOIN credentials c ON c.id = s.credential_id \
             WHERE s.retrieval_token_hash = $1",
        )
        .bind(link.as_hex())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(kind,)| kind))
    }

    /// The state of a retrieval link: (retrieved?, expired?) if it exists.
    pub async fn retrieval_link_state(
        &self,
        link: &SecretDigest,
        now: Millis,
    ) -> Result<Option<(bool, bool)>, StoreError> {
        let row: Option<(Option<i64>, i64)> =
            sqlx::query_as("SELECT retrieved_at, retrieval_expires_at FROM credential_secrets WHERE retrieval_token_hash = $1")
                .bind(link.as_hex())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(retrieved, expires)| (retrieved.is_some(), expires <= now)))
    }

    /// Everything verification needs about a presented secret, in one indexed query.
    pub async fn lookup_secret(
        &self,
        secret: &SecretDigest,
    ) -> Result<Option<SecretLookup>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT s.id AS secret_id, c.id AS credential_id, c.tenant_id, c.kind, c.client_id, c.may_introspect, s.secret_hash, c.status AS credential_status, \
             c.expires_at AS credential_expires_at, s.expires_at AS secret_expires_at, s.revoked_at AS secret_revoked_at, \
             g.revoked_at AS grant_revoked_at, t.status AS tenant_status, g.scopes, c.last_used_at \
             FROM credential_secrets s JOIN credentials c ON c.id = s.credential_id \
             JOIN grants g ON g.id = c.grant_id JOIN tenants t ON t.id = c.tenant_id \
             WHERE s.secret_hash = $1",
        )
        .bind(secret.as_hex())
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records a use of a credential. Callers skip it when the last use is recent; the guard here
    /// keeps two instances from both writing within the same minute.
    pub async fn touch_credential(
        &self,
        tenant: TenantId,
        id: &str,
        now: Millis,
        from_ip: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE credentials SET last_used_at = $2, last_used_ip = $3 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $4) AND tenant_id = $5",
        )
        .bind(id)
        .bind(now)
        .bind(from_ip)
        .bind(now - 60_000)
        .bind(tenant.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A credential's kind, status, expiry and the number of its secrets still usable (or waiting
    /// to be retrieved) at `now`.
    pub async fn credential_secrets_state(
        &self,
        tenant: TenantId,
        id: &str,
        now: Millis,
    ) -> Result<Option<SecretsState>, StoreError> {
        let row: Option<(CredentialKind, CredentialStatus, i64, String)> = sqlx::query_as(
            "SELECT c.kind, c.status, c.expires_at, g.contact_email FROM credentials c JOIN grants g ON g.id = c.grant_id \
             WHERE c.tenant_id = $1 AND c.id = $2",
        )
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        let Some((kind, status, expires_at, contact)) = row else {
            return Ok(None);
        };
        let (live,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM credential_secrets WHERE tenant_id = $1 AND credential_id = $2 \
             AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(tenant.to_string())
        .bind(id)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(Some(SecretsState {
            kind,
            status,
            expires_at,
            contact_email: contact,
            live,
        }))
    }

    /// Adds a secret (to be retrieved through its link) to an existing credential.
    pub async fn insert_secret(
        &self,
        tenant: TenantId,
        secret: NewSecret<'_>,
        mail: &OutgoingMail,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO credential_secrets (id, tenant_id, credential_id, created_at, expires_at, retrieval_token_hash, \
             retrieval_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(time_ordered_id())
        .bind(tenant.to_string())
        .bind(secret.credential)
        .bind(secret.now)
        .bind(secret.expires_at)
        .bind(secret.retrieval.as_hex())
        .bind(secret.retrieval_expires_at)
        .execute(&mut *tx)
        .await?;
        insert_mail(&mut *tx, mail).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The secrets of a credential of `tenant`, oldest first.
    pub async fn secrets_of(
        &self,
        tenant: TenantId,
        credential: &str,
    ) -> Result<Vec<SecretRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, display_prefix, created_at, expires_at, retrieved_at, revoked_at FROM credential_secrets \
             WHERE tenant_id = $1 AND credential_id = $2 ORDER BY created_at, id",
        )
        .bind(tenant.to_string())
        .bind(credential)
        .fetch_all(self.pool())
        .await?)
    }

    /// Retires one secret of a client while another live one — or a registered public key —
    /// remains, with a revocation entry (so every instance stops accepting it at once) and the
    /// event. False when it was not live, or is the client's last way to authenticate.
    pub async fn retire_secret(
        &self,
        tenant: TenantId,
        credential: &str,
        secret: &str,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let expires_at: Option<(i64,)> = sqlx::query_as(
            "UPDATE credential_secrets SET revoked_at = $4 \
             WHERE tenant_id = $1 AND credential_id = $2 AND id = $3 AND revoked_at IS NULL AND expires_at > $4 \
             AND ((SELECT COUNT(*) FROM credential_secrets o WHERE o.credential_id = $2 AND o.id <> $3 \
                  AND o.revoked_at IS NULL AND o.expires_at > $4) > 0 \
                  OR EXISTS (SELECT 1 FROM credential_keys k WHERE k.credential_id = $2 AND k.removed_at IS NULL)) \
             RETURNING expires_at",
        )
        .bind(tenant.to_string())
        .bind(credential)
        .bind(secret)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((expires_at,)) = expires_at else {
            return Ok(false);
        };
        insert_revocation(
            &mut tx,
            tenant,
            "secret",
            secret,
            None,
            now,
            Some(expires_at),
            self.backend(),
        )
        .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }
}
