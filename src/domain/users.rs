//! Staff users.

use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::email::Email;
use crate::domain::ids::UserId;
use crate::domain::password::{Password, PasswordHash};
use crate::domain::rbac::Role;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Deactivated,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(Self::Active),
            "deactivated" => Some(Self::Deactivated),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub status: UserStatus,
    pub created_at: Millis,
    pub roles: Vec<RoleAssignment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub id: String,
    pub role: Role,
    /// `None` for global roles.
    pub tenant_id: Option<String>,
}

/// A user row together with its password hash, for sign-in only.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<PasswordHash>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DisplayNameError {
    #[error("Enter a name.")]
    Empty,
    #[error("Use at most {} characters.", DisplayName::MAX_CHARS)]
    TooLong,
    #[error("Use letters, digits, spaces and punctuation only.")]
    ControlCharacters,
}

/// A person's name as shown in the console. Any script; no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, DisplayNameError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(DisplayNameError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(DisplayNameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DisplayNameError::ControlCharacters);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything needed to create a staff account.
pub struct NewStaff {
    pub email: Email,
    pub display_name: DisplayName,
    pub password: Password,
}

/// Display names by account id (as text), for pages that show people rather than ids.
pub async fn names(
    core: &Core,
    ids: &[UserId],
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(core.store.user_names(ids).await?.into_iter().collect())
}

pub async fn find(core: &Core, id: UserId) -> Result<Option<User>, StoreError> {
    core.store.find_user(id).await
}

/// Staff whose name or e-mail contains `search`, by name, after the person `after` (keyset
/// paging; an id that no longer exists starts from the top), at most `limit`, with their roles.
pub async fn page(
    core: &Core,
    search: &str,
    after: Option<UserId>,
    limit: i64,
) -> Result<Vec<User>, StoreError> {
    let after = match after {
        Some(id) => core.store.find_user(id).await?,
        None => None,
    };
    let after_id = after.as_ref().map(|u| u.id.to_string());
    core.store
        .staff_page(
            search,
            after
                .as_ref()
                .zip(after_id.as_deref())
                .map(|(u, id)| (u.display_name.as_str(), id)),
            limit,
        )
        .await
}

/// The account with this e-mail address (compared in its normalized form).
pub async fn by_email(core: &Core, email: &Email) -> Result<Option<User>, StoreError> {
    Ok(core
        .store
        .find_credentials_by_email(email.normalized())
        .await?
        .map(|found| found.user))
}
