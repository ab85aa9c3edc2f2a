//! Tenants. Lists are searched and limited in SQL so the switcher stays fast with thousands.

use super::events::insert_event;
use super::revocations::{TENANT_CHANGED, insert_revocation, notify};
use super::{Backend, Store, StoreError, escape_like, is_unique_violation};
use crate::clock::Millis;
use crate::domain::events::Event;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::tenants::{BrandColour, Logo, NewTenant, Slug, Tenant, TenantStatus};
use sqlx::{Any, Transaction};

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    slug: String,
    name: String,
    brand_colour: String,
    status: String,
    has_logo: i64,
    created_at: i64,
    dpop_nonce: i64,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(row: TenantRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("tenant {}: {what}", row.id));
        Ok(Self {
            id: TenantId::parse(&row.id).ok_or_else(|| corrupt("id"))?,
            slug: Slug::parse(&row.slug).map_err(|_| corrupt("slug"))?,
            colour: BrandColour::parse(&row.brand_colour).map_err(|_| corrupt("colour"))?,
            status: TenantStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            name: row.name,
            has_logo: row.has_logo != 0,
            created_at: row.created_at,
            dpop_nonce: row.dpop_nonce != 0,
        })
    }
}

const COLUMNS: &str = "id, slug, name, brand_colour, status, \
                       CASE WHEN logo IS NULL THEN 0 ELSE 1 END AS has_logo, created_at, dpop_nonce";

/// Which tenants a list may show.
pub enum TenantScope {
    All,
    /// Tenants where the user holds a tenant role.
    AssignedTo(UserId),
}

impl Store {
    /// Inserts a tenant with its event; `Ok(false)` if the slug is taken.
    pub async fn insert_tenant(
        &self,
        id: TenantId,
        tenant: &NewTenant,
        now: Millis,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tenants (id, slug, name, brand_colour, status, logo, logo_type, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(id.to_string())
        .bind(tenant.slug.as_str())
        .bind(&tenant.name)
        .bind(tenant.colour.hex())
        .bind(TenantStatus::Active.as_str())
        .bind(tenant.logo.as_ref().map(|l| l.bytes.clone()))
        .bind(tenant.logo.as_ref().map(|l| l.content_type))
        .bind(now)
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

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1");
        let row: Option<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(slug)
            .fetch_optional(self.pool())
            .await?;
        row.map(Tenant::try_from).transpose()
    }

    pub async fn tenant_by_id(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
        let row: Option<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        row.map(Tenant::try_from).transpose()
    }

    /// The tenants among `ids` that exist, by name (a role or a key names them by id).
    pub async fn tenants_by_ids(&self, ids: &[TenantId]) -> Result<Vec<Tenant>, StoreError> {
        let mut tenants = Vec::with_capacity(ids.len());
        // Bound parameters per statement stay well under every backend's limit.
        for chunk in ids.chunks(500) {
            let placeholders = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id IN ({placeholders})");
            let mut query = sqlx::query_as::<_, TenantRow>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(self.pool()).await? {
                tenants.push(Tenant::try_from(row)?);
            }
        }
        tenants.sort_by(|a, b| (&a.name, a.slug.as_str()).cmp(&(&b.name, b.slug.as_str())));
        Ok(tenants)
    }

    /// Tenants in scope (and among `only`, when given) whose name or slug contains `search`, by
    /// name, at most `limit`.
    pub async fn search_tenants(
        &self,
        scope: TenantScope,
        only: Option<&[TenantId]>,
        search: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<Tenant>, StoreError> {
        let pattern = format!("%{}%", escape_like(&search.trim().to_lowercase()));
        let (after_name, after_slug) = after.unwrap_or(("", ""));
        // Keyset paging by (name, slug): slugs are unique, so the order is total.
        let filter = "(LOWER(name) LIKE $1 ESCAPE '\\' OR slug LIKE $1 ESCAPE '\\') \
                      AND (name > $3 OR (name = $3 AND slug > $4))";
        let scoped = match scope {
            TenantScope::All => "",
            TenantScope::AssignedTo(_) => {
                " AND id IN (SELECT tenant_id FROM role_assignments WHERE user_id = $5 AND tenant_id IS NOT NULL)"
            }
        };
        let first_listed = if matches!(scope, TenantScope::All) {
            5
        } else {
            6
        };
        let listed = match only {
            None => String::new(),
            // An empty list matches nothing (and `IN ()` is not SQL).
            Some([]) => " AND 1 = 0".to_owned(),
            Some(ids) => format!(
                " AND id IN ({})",
                (first_listed..first_listed + ids.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM tenants WHERE {filter}{scoped}{listed} ORDER BY name, slug LIMIT $2"
        );
        let query = sqlx::query_as::<_, TenantRow>(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .bind(limit)
            .bind(after_name.to_owned())
            .bind(after_slug.to_owned());
        let mut query = match scope {
            TenantScope::All => query,
            TenantScope::AssignedTo(user) => query.bind(user.to_string()),
        };
        for id in only.unwrap_or_default() {
            query = query.bind(id.to_string());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.into_iter().map(Tenant::try_from).collect()
    }

    pub async fn set_tenant_status(
        &self,
        id: TenantId,
        status: TenantStatus,
        now: Millis,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        set_tenant_status_tx(&mut tx, id, status, now, self.backend()).await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_tenant_logo(
        &self,
        id: TenantId,
        logo: &Logo,
        now: Millis,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE tenants SET logo = $2, logo_type = $3, updated_at = $4 WHERE id = $1")
            .bind(id.to_string())
            .bind(logo.bytes.clone())
            .bind(logo.content_type)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new name and brand colour, with the event.
    pub async fn rename_tenant(
        &self,
        id: TenantId,
        name: &str,
        colour: &str,
        now: Millis,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE tenants SET name = $2, brand_colour = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(name)
        .bind(colour)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the DPoP nonce requirement; every instance re-reads the tenant when it commits.
    pub async fn set_tenant_dpop_nonce(
        &self,
        id: TenantId,
        slug: &str,
        required: bool,
        now: Millis,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE tenants SET dpop_nonce = $2, updated_at = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(i64::from(required))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut *tx, event).await?;
        notify(&mut tx, self.backend(), &format!("{TENANT_CHANGED}{slug}")).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The logo bytes and their (validated) content type.
    pub async fn tenant_logo(&self, id: TenantId) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let row: Option<(Option<Vec<u8>>, Option<String>)> =
            sqlx::query_as("SELECT logo, logo_type FROM tenants WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(logo, kind)| logo.zip(kind)))
    }
}

/// The status change and its revocation entry: every token of a suspended tenant stops verifying,
/// on every instance.
pub(crate) async fn set_tenant_status_tx(
    tx: &mut Transaction<'_, Any>,
    id: TenantId,
    status: TenantStatus,
    now: Millis,
    backend: Backend,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tenants SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let kind = match status {
        TenantStatus::Active => "tenant_reactivated",
        TenantStatus::Suspended => "tenant_suspended",
    };
    insert_revocation(tx, id, kind, &id.to_string(), None, now, None, backend).await?;
    Ok(())
}
