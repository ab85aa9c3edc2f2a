//! Grants and credentials: minting, retrieval, verification lookups, revocation, listing, expiry.

use super::{CredentialFilter, ExpiryNotice, GrantSelection, NewCredential, StatusFilter};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{TenantId, UserId, time_ordered_id};
use crate::domain::partners::{CredentialView, Grant};
use crate::store::events::insert_event;
use crate::store::outbox::insert_mail;
use crate::store::revocations::insert_revocation;
use crate::store::staff::OutgoingMail;
use crate::store::{Backend, Store, StoreError, escape_like};
use sqlx::{Any, Transaction};

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    request_id: String,
    organisation: String,
    contact_email: String,
    scopes: String,
    max_lifetime_days: i64,
    created_at: i64,
    revoked_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    kind: String,
    client_id: Option<String>,
    status: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    revoke_reason: Option<String>,
    may_introspect: i64,
    organisation: String,
    grant_id: String,
    created_by: String,
    last_used_at: Option<i64>,
    last_used_ip: Option<String>,
    display_prefix: Option<String>,
}

impl From<CredentialRow> for CredentialView {
    fn from(row: CredentialRow) -> Self {
        Self {
            id: row.id,
            kind: row.kind,
            client_id: row.client_id,
            status: row.status,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            revoke_reason: row.revoke_reason,
            may_introspect: row.may_introspect != 0,
            organisation: row.organisation,
            grant_id: row.grant_id,
            created_by: row.created_by,
            last_used_at: row.last_used_at,
            last_used_ip: row.last_used_ip,
            display_prefix: row.display_prefix,
        }
    }
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> Result<Self, StoreError> {
        Ok(Grant {
            scopes: serde_json::from_str(&row.scopes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            id: row.id,
            request_id: row.request_id,
            organisation: row.organisation,
            contact_email: row.contact_email,
            max_lifetime_days: row.max_lifetime_days,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// What the credentials list and a single credential show, joined with their grant and creator.
const CREDENTIAL_SELECT: &str = "SELECT c.id, c.kind, c.client_id, c.status, c.created_at, c.expires_at, \
     c.revoked_at, c.revoke_reason, c.may_introspect, g.organisation, c.grant_id, u.display_name AS created_by, c.last_used_at, c.last_used_ip, \
     (SELECT MAX(s.display_prefix) FROM credential_secrets s WHERE s.credential_id = c.id) AS display_prefix \
     FROM credentials c JOIN grants g ON g.id = c.grant_id JOIN users u ON u.id = c.created_by";

/// How a client id starts (`tbc_live_…`), and how displayed secret prefixes start (API tokens and
/// client secrets): the prefix filter looks only where a prefix can be.
const CLIENT_ID_START: &str = "tbc_";
const SECRET_STARTS: [&str; 2] = ["tbk_", "tbs_"];

impl Store {
    pub async fn grant(&self, tenant: TenantId, id: &str) -> Result<Option<Grant>, StoreError> {
        let row: Option<GrantRow> = sqlx::query_as(
            "SELECT id, request_id, organisation, contact_email, scopes, max_lifetime_days, created_at, revoked_at \
             FROM grants WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(Grant::try_from).transpose()
    }

    /// Grants of a tenant, newest first, after the keyset cursor `(created_at, id)`.
    pub async fn grants_of(
        &self,
        tenant: TenantId,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<Grant>, StoreError> {
        let (cursor_time, cursor_id) = after.unwrap_or((i64::MAX, ""));
        let rows: Vec<GrantRow> = sqlx::query_as(
            "SELECT id, request_id, organisation, contact_email, scopes, max_lifetime_days, created_at, revoked_at \
             FROM grants WHERE tenant_id = $1 AND created_at <= $2 AND (created_at < $2 OR id < $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(tenant.to_string())
        .bind(cursor_time)
        .bind(cursor_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Grant::try_from).collect()
    }

    /// One credential of a tenant, as the list shows it.
    pub async fn credential(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> Result<Option<CredentialView>, StoreError> {
        let sql = format!("{CREDENTIAL_SELECT} WHERE c.tenant_id = $1 AND c.id = $2");
        let row: Option<CredentialRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(CredentialView::from))
    }

    /// Mints a credential with its first secret's retrieval link, the partner's mail and the event.
    pub async fn insert_credential(
        &self,
        tenant: TenantId,
        credential: NewCredential<'_>,
        mail: Option<&OutgoingMail>,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO credentials (id, tenant_id, grant_id, kind, client_id, status, created_at, created_by, expires_at, may_introspect, \
             allowed_networks, tokens_per_minute, require_dpop) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(credential.id)
        .bind(tenant.to_string())
        .bind(credential.grant_id)
        .bind(credential.kind)
        .bind(credential.client_id)
        .bind(credential.now)
        .bind(credential.created_by.to_string())
        .bind(credential.expires_at)
        .bind(i64::from(credential.may_introspect))
        .bind(credential.policy.allowed_networks)
        .bind(credential.policy.tokens_per_minute)
        .bind(i64::from(credential.policy.require_dpop))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO credential_secrets (id, tenant_id, credential_id, created_at, expires_at, retrieval_token_hash, \
             retrieval_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(time_ordered_id())
        .bind(tenant.to_string())
        .bind(credential.id)
        .bind(credential.now)
        .bind(credential.expires_at)
        .bind(credential.retrieval_token.as_hex())
        .bind(credential.retrieval_expires_at)
        .execute(&mut *tx)
        .await?;
        if let Some(mail) = mail {
            insert_mail(&mut *tx, mail).await?;
        }
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes one active credential; false if it was not active (revoking twice changes nothing).
    pub async fn revoke_credential(
        &self,
        tenant: TenantId,
        id: &str,
        by: UserId,
        reason: &str,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let revoked: Option<(Option<String>, i64)> = sqlx::query_as(
            "UPDATE credentials SET status = 'revoked', revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
             WHERE tenant_id = $1 AND id = $2 AND status = 'active' RETURNING client_id, expires_at",
        )
        .bind(tenant.to_string())
        .bind(id)
        .bind(now)
        .bind(by.to_string())
        .bind(reason)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((client_id, expires_at)) = revoked else {
            return Ok(false);
        };
        insert_revocation(
            &mut tx,
            tenant,
            "credential",
            id,
            client_id.as_deref(),
            now,
            Some(expires_at),
            self.backend(),
        )
        .await?;
        sqlx::query("UPDATE credential_secrets SET revoked_at = $3 WHERE tenant_id = $1 AND credential_id = $2 AND revoked_at IS NULL")
            .bind(tenant.to_string())
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes grants (one, all of a partner's, or all of the tenant's) with every credential and
    /// secret under them, in one transaction. Returns how many credentials were still active.
    /// Grants already revoked are left as they were.
    pub async fn revoke_grants(
        &self,
        tenant: TenantId,
        grants: GrantSelection<'_>,
        by: UserId,
        reason: &str,
        now: Millis,
        event: &Event,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let revocation = GrantRevocation {
            tenant,
            grants,
            by,
            reason,
        };
        let revoked = revoke_grants_tx(&mut tx, &revocation, now, event, self.backend()).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Credentials of a tenant matching `filter`, newest first, after the keyset cursor
    /// `(created_at, id)`. The WHERE clause is assembled from fixed fragments only; every value is bound.
    pub async fn credentials_of(
        &self,
        tenant: TenantId,
        filter: &CredentialFilter<'_>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<CredentialView>, StoreError> {
        let (cursor_time, cursor_id) = after.unwrap_or((i64::MAX, ""));
        let mut conditions = vec![
            "c.tenant_id = $1".to_owned(),
            // The redundant `<=` bounds the index range scan (the OR alone is a filter).
            "c.created_at <= $2 AND (c.created_at < $2 OR c.id < $3)".to_owned(),
        ];
        // The partner's grants first, then their credentials by grant: left to itself the planner
        // joins from the few matching grants and sorts every credential they hold.
        let partner_grants = match filter.partner {
            Some(partner) => {
                let grants = self.grants_of_partner(tenant, partner).await?;
                if grants.is_empty() {
                    return Ok(Vec::new());
                }
                Some(grants)
            }
            None => None,
        };
        let mut texts: Vec<(usize, String)> = Vec::new();
        let mut next = 5;
        // Binds `value` as the next parameter and names it (`$n`).
        let mut param = |value: String| {
            texts.push((next, value));
            next += 1;
            format!("${}", next - 1)
        };
        if let Some(kind) = filter.kind {
            conditions.push(format!("c.kind = {}", param(kind.to_owned())));
        }
        if let Some(grant) = filter.grant {
            conditions.push(format!("c.grant_id = {}", param(grant.to_owned())));
        }
        if let Some(grants) = partner_grants {
            let placeholders: Vec<String> = grants.into_iter().map(&mut param).collect();
            conditions.push(format!("c.grant_id IN ({})", placeholders.join(", ")));
        }
        if let Some(prefix) = filter.prefix {
            let pattern = format!("{}%", escape_like(prefix));
            // Client ids and displayed secret prefixes start differently: search only where the
            // prefix can be (an OR with the secrets makes the planner read every secret).
            let in_secrets = "EXISTS (SELECT 1 FROM credential_secrets p WHERE p.credential_id = c.id \
                              AND p.tenant_id = $1 AND p.display_prefix LIKE {p} ESCAPE '\\')";
            let condition = if prefix.starts_with(CLIENT_ID_START) {
                "c.client_id LIKE {p} ESCAPE '\\'".to_owned()
            } else if SECRET_STARTS.iter().any(|start| prefix.starts_with(start)) {
                in_secrets.to_owned()
            } else {
                format!("(c.client_id LIKE {{p}} ESCAPE '\\' OR {in_secrets})")
            };
            let placeholder = param(pattern);
            conditions.push(condition.replace("{p}", &placeholder));
        }
        // $4 is the limit; "expiring soon" compares with the time passed as the last number.
        let status_condition = match filter.status {
            None => None,
            Some(StatusFilter::Active) => Some("c.status = 'active'".to_owned()),
            Some(StatusFilter::Revoked) => Some("c.status = 'revoked'".to_owned()),
            Some(StatusFilter::Expired) => Some("c.status = 'expired'".to_owned()),
            Some(StatusFilter::ExpiringBefore(_)) => {
                Some(format!("c.status = 'active' AND c.expires_at <= ${next}"))
            }
        };
        conditions.extend(status_condition);
        let sql = format!(
            "{CREDENTIAL_SELECT} WHERE {} ORDER BY c.created_at DESC, c.id DESC LIMIT $4",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query_as::<_, CredentialRow>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_string())
            .bind(cursor_time)
            .bind(cursor_id.to_owned())
            .bind(limit);
        for (_, value) in texts {
            query = query.bind(value);
        }
        if let Some(StatusFilter::ExpiringBefore(until)) = filter.status {
            query = query.bind(until);
        }
        let rows = query.fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(CredentialView::from).collect())
    }

    /// The ids of a tenant's grants whose organisation or contact e-mail contains `partner`.
    async fn grants_of_partner(
        &self,
        tenant: TenantId,
        partner: &str,
    ) -> Result<Vec<String>, StoreError> {
        let pattern = format!("%{}%", escape_like(&partner.to_lowercase()));
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM grants WHERE tenant_id = $1 \
             AND (LOWER(organisation) LIKE $2 ESCAPE '\\' OR LOWER(contact_email) LIKE $2 ESCAPE '\\')",
        )
        .bind(tenant.to_string())
        .bind(pattern)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Active credentials expiring before `until` whose tenant admins have not been told yet; each
    /// is marked as told in the same call, so one instance sends one notice.
    pub async fn claim_expiry_notices(
        &self,
        until: Millis,
        now: Millis,
    ) -> Result<Vec<ExpiryNotice>, StoreError> {
        let due: Vec<ExpiryNotice> = sqlx::query_as(
            "SELECT c.id AS credential_id, c.tenant_id, c.expires_at, g.organisation, c.kind FROM credentials c \
             JOIN grants g ON g.id = c.grant_id \
             WHERE c.status = 'active' AND c.expires_at <= $1 AND c.expiry_notice_at IS NULL",
        )
        .bind(until)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for notice in due {
            let won = sqlx::query("UPDATE credentials SET expiry_notice_at = $2 WHERE id = $1 AND expiry_notice_at IS NULL")
                .bind(&notice.credential_id)
                .bind(now)
                .execute(self.pool())
                .await?;
            if won.rows_affected() == 1 {
                claimed.push(notice);
            }
        }
        Ok(claimed)
    }

    /// Marks credentials past their expiry as expired; returns (tenant, credential) of each, for events.
    pub async fn expire_credentials(
        &self,
        now: Millis,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let due: Vec<(String, String)> = sqlx::query_as(
            "SELECT tenant_id, id FROM credentials WHERE status = 'active' AND expires_at <= $1",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await?;
        let mut expired = Vec::new();
        for (tenant, id) in due {
            let done = sqlx::query(
                "UPDATE credentials SET status = 'expired' WHERE id = $1 AND status = 'active'",
            )
            .bind(&id)
            .execute(self.pool())
            .await?;
            if done.rows_affected() == 1 {
                expired.push((tenant, id));
            }
        }
        Ok(expired)
    }
}

/// What a bulk revocation covers and why.
pub struct GrantRevocation<'a> {
    pub tenant: TenantId,
    pub grants: GrantSelection<'a>,
    pub by: UserId,
    pub reason: &'a str,
}

/// The revocation inside the caller's transaction: credentials (each with a revocation entry the
/// other instances and gateways follow), their secrets, then the grants; the event is recorded
/// with how many credentials were still active.
pub(crate) async fn revoke_grants_tx(
    tx: &mut Transaction<'_, Any>,
    revocation: &GrantRevocation<'_>,
    now: Millis,
    event: &Event,
    backend: Backend,
) -> Result<u64, StoreError> {
    let tenant = revocation.tenant;
    let (filter, value) = match revocation.grants {
        GrantSelection::One(id) => ("id = $2", id),
        GrantSelection::OfPartner(email) => ("LOWER(contact_email) = LOWER($2)", email),
        // `$2 = $2` keeps the placeholders numbered alike for every selection.
        GrantSelection::All => ("$2 = $2", ""),
    };
    let selected = format!("SELECT id FROM grants WHERE tenant_id = $1 AND {filter}");
    let revoked: Vec<(String, Option<String>, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE credentials SET status = 'revoked', revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
         WHERE tenant_id = $1 AND status = 'active' AND grant_id IN ({selected}) \
         RETURNING id, client_id, expires_at"
    )))
    .bind(tenant.to_string())
    .bind(value)
    .bind(now)
    .bind(revocation.by.to_string())
    .bind(revocation.reason)
    .fetch_all(&mut **tx)
    .await?;
    for (credential, client_id, expires_at) in &revoked {
        insert_revocation(
            tx,
            tenant,
            "credential",
            credential,
            client_id.as_deref(),
            now,
            Some(*expires_at),
            backend,
        )
        .await?;
    }
    let credentials = revoked.len() as u64;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE credential_secrets SET revoked_at = $3 WHERE tenant_id = $1 AND revoked_at IS NULL \
         AND credential_id IN (SELECT id FROM credentials WHERE tenant_id = $1 AND grant_id IN ({selected}))"
    )))
    .bind(tenant.to_string())
    .bind(value)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE grants SET revoked_at = $3, revoked_by = $4, revoke_reason = $5 \
         WHERE tenant_id = $1 AND revoked_at IS NULL AND {filter}"
    )))
    .bind(tenant.to_string())
    .bind(value)
    .bind(now)
    .bind(revocation.by.to_string())
    .bind(revocation.reason)
    .execute(&mut **tx)
    .await?;
    let mut event = event.clone();
    if let serde_json::Value::Object(map) = &mut event.details {
        map.insert("credentials_revoked".into(), credentials.into());
    }
    insert_event(&mut **tx, &event).await?;
    Ok(credentials)
}
