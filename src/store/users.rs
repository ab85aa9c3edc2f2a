//! Staff users and their role assignments.

use sqlx::FromRow;

use super::events::insert_event;
use super::{Store, StoreError, escape_like};
use crate::domain::events::Event;
use crate::domain::ids::UserId;
use crate::domain::password::PasswordHash;
use crate::domain::rbac::Role;
use crate::domain::users::{Credentials, RoleAssignment, User, UserStatus};

#[derive(FromRow)]
struct UserRow {
    id: String,
    email: String,
    display_name: String,
    status: String,
    created_at: i64,
    password_hash: Option<String>,
}

#[derive(FromRow)]
struct RoleRow {
    id: String,
    role: String,
    tenant_id: Option<String>,
}

const USER_COLUMNS: &str = "id, email, display_name, status, created_at, password_hash";

impl UserRow {
    fn into_user(
        self,
        roles: Vec<RoleAssignment>,
    ) -> Result<(User, Option<PasswordHash>), StoreError> {
        let id = UserId::parse(&self.id)
            .ok_or_else(|| StoreError::Corrupt(format!("user id {}", self.id)))?;
        let status = UserStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("status of user {id}")))?;
        let user = User {
            id,
            email: self.email,
            display_name: self.display_name,
            status,
            created_at: self.created_at,
            roles,
        };
        Ok((user, self.password_hash.map(PasswordHash::from_stored)))
    }
}

impl Store {
    /// E-mail addresses of active security staff and superadmins (they hear about key events).
    pub async fn security_staff_emails(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT u.email FROM users u JOIN role_assignments r ON r.user_id = u.id \
             WHERE r.role IN ('security', 'superadmin') AND r.tenant_id IS NULL AND u.status = 'active' \
             ORDER BY u.email",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(email,)| email).collect())
    }

    pub async fn any_user_exists(&self) -> Result<bool, StoreError> {
        let found: Option<(String,)> = sqlx::query_as("SELECT id FROM users LIMIT 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(found.is_some())
    }

    /// Looks a user up by normalized e-mail, with the password hash, for sign-in.
    pub async fn find_credentials_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_normalized = $1");
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(email_normalized)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let roles = self.roles_of(&row.id).await?;
        let (user, password_hash) = row.into_user(roles)?;
        Ok(Some(Credentials {
            user,
            password_hash,
        }))
    }

    /// The display names of the accounts among `ids` that exist: `(id, name)`.
    pub async fn user_names(&self, ids: &[UserId]) -> Result<Vec<(String, String)>, StoreError> {
        let mut names = Vec::with_capacity(ids.len());
        // Bound parameters per statement stay well under every backend's limit.
        for chunk in ids.chunks(500) {
            let placeholders = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!("SELECT id, display_name FROM users WHERE id IN ({placeholders})");
            let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            names.extend(query.fetch_all(self.pool()).await?);
        }
        Ok(names)
    }

    pub async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let roles = self.roles_of(&row.id).await?;
        Ok(Some(row.into_user(roles)?.0))
    }

    pub async fn password_hash_of(&self, id: UserId) -> Result<Option<PasswordHash>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT password_hash FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(hash,)| hash).map(PasswordHash::from_stored))
    }

    /// Replaces a user's password hash; the event commits with it.
    pub async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        now: i64,
        event: &Event,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(id.to_string())
            .bind(hash.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut *tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Staff whose name or e-mail contains `search`, by name (then id, so the order is total),
    /// after the person `(name, id)`, at most `limit`.
    pub async fn staff_page(
        &self,
        search: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<User>, StoreError> {
        let pattern = format!("%{}%", escape_like(&search.trim().to_lowercase()));
        let (after_name, after_id) = after.unwrap_or(("", ""));
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE (LOWER(display_name) LIKE $1 ESCAPE '\\' OR email_normalized LIKE $1 ESCAPE '\\') \
             AND (display_name > $2 OR (display_name = $2 AND id > $3)) \
             ORDER BY display_name, id LIMIT $4"
        );
        let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .bind(after_name.to_owned())
            .bind(after_id.to_owned())
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in rows {
            let roles = self.roles_of(&row.id).await?;
            users.push(row.into_user(roles)?.0);
        }
        Ok(users)
    }

    async fn roles_of(&self, user_id: &str) -> Result<Vec<RoleAssignment>, StoreError> {
        let rows: Vec<RoleRow> = sqlx::query_as(
            "SELECT id, role, tenant_id FROM role_assignments WHERE user_id = $1 ORDER BY role, tenant_id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                let role = Role::parse(&row.role).ok_or_else(|| {
                    StoreError::Corrupt(format!("role {} of user {user_id}", row.role))
                })?;
                Ok(RoleAssignment {
                    id: row.id,
                    role,
                    tenant_id: row.tenant_id,
                })
            })
            .collect()
    }
}
