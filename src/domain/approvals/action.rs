//! The actions that wait for a second person, as typed values: what each is about, who may ask for
//! and approve it, and how it is written to and read from its approval row.

use crate::domain::Core;
use crate::domain::ids::{TenantId, UserId};
use crate::domain::principal::Principal;
use crate::domain::rbac::{Permission, Role};
use crate::domain::users::User;
use crate::store::StoreError;
use crate::store::approvals::ApprovalRow;

/// A dangerous action waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Drop a signing key at once (believed compromised).
    ReplaceSigningKey {
        tenant: TenantId,
        kid: String,
    },
    /// Give someone the superadmin or security role.
    GrantRole {
        user: UserId,
        role: Role,
    },
    /// Take the superadmin or security role away.
    RemoveRole {
        user: UserId,
        role: Role,
        assignment: String,
    },
    DeactivateSuperadmin {
        user: UserId,
    },
    SuspendTenant {
        tenant: TenantId,
    },
    /// Revoke every grant and credential of the tenant: the incident kill switch.
    RevokeTenant {
        tenant: TenantId,
    },
    /// Remove every passkey, recovery code and session of a person and mail them a recovery link.
    RecoverAccount {
        user: UserId,
    },
    /// Invite someone new with the superadmin or security role (the invitation is sent on approval).
    InviteStaff {
        email: String,
        display_name: String,
        role: Role,
    },
}

/// How loudly a request is announced: high ones also raise an alert for security staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gravity {
    High,
    Medium,
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ReplaceSigningKey { .. } => "replace_signing_key",
            Self::GrantRole { .. } => "grant_role",
            Self::RemoveRole { .. } => "remove_role",
            Self::DeactivateSuperadmin { .. } => "deactivate_superadmin",
            Self::SuspendTenant { .. } => "suspend_tenant",
            Self::RevokeTenant { .. } => "revoke_tenant",
            Self::RecoverAccount { .. } => "recover_account",
            Self::InviteStaff { .. } => "invite_staff",
        }
    }

    /// The tenant the action is in, if any.
    pub fn tenant(&self) -> Option<TenantId> {
        match self {
            Self::ReplaceSigningKey { tenant, .. }
            | Self::SuspendTenant { tenant }
            | Self::RevokeTenant { tenant } => Some(*tenant),
            _ => None,
        }
    }

    /// The person the action is about, who may never decide it.
    pub fn subject(&self) -> Option<UserId> {
        match self {
            Self::GrantRole { user, .. }
            | Self::RemoveRole { user, .. }
            | Self::DeactivateSuperadmin { user }
            | Self::RecoverAccount { user } => Some(*user),
            _ => None,
        }
    }

    fn target(&self) -> String {
        match self {
            Self::ReplaceSigningKey { kid, .. } => kid.clone(),
            Self::GrantRole { role, .. } | Self::InviteStaff { role, .. } => {
                role.as_str().to_owned()
            }
            Self::RemoveRole {
                role, assignment, ..
            } => format!("{}:{assignment}", role.as_str()),
            _ => String::new(),
        }
    }

    /// Names the change: one emergency replacement per tenant, one request per person and role.
    pub fn dedupe(&self) -> String {
        let kind = self.kind();
        match self {
            Self::ReplaceSigningKey { tenant, .. }
            | Self::SuspendTenant { tenant }
            | Self::RevokeTenant { tenant } => format!("{kind}:{tenant}"),
            Self::GrantRole { user, role } => format!("{kind}:{user}:{}", role.as_str()),
            Self::RemoveRole {
                user, assignment, ..
            } => format!("{kind}:{user}:{assignment}"),
            Self::DeactivateSuperadmin { user } | Self::RecoverAccount { user } => {
                format!("{kind}:{user}")
            }
            Self::InviteStaff { email, .. } => format!("{kind}:{}", email.to_lowercase()),
        }
    }

    pub fn gravity(&self) -> Gravity {
        match self {
            Self::ReplaceSigningKey { .. }
            | Self::SuspendTenant { .. }
            | Self::RevokeTenant { .. }
            | Self::RecoverAccount { .. }
            | Self::GrantRole {
                role: Role::Superadmin,
                ..
            }
            | Self::InviteStaff {
                role: Role::Superadmin,
                ..
            } => Gravity::High,
            _ => Gravity::Medium,
        }
    }

    /// What one must hold, where, to ask for this action or to approve it. Security staff may
    /// revoke a tenant's everything and recover anyone but a superadmin; the rest is superadmins'.
    pub fn permission(&self, subject_is_superadmin: bool) -> (Permission, Option<TenantId>) {
        match self {
            Self::ReplaceSigningKey { tenant, .. } => {
                (Permission::ReplaceKeysInEmergency, Some(*tenant))
            }
            Self::SuspendTenant { tenant } => (Permission::ManageTenants, Some(*tenant)),
            Self::RevokeTenant { tenant } => (Permission::RevokeEverything, Some(*tenant)),
            Self::RecoverAccount { .. } if !subject_is_superadmin => {
                (Permission::RecoverAccounts, None)
            }
            Self::GrantRole { .. }
            | Self::InviteStaff { .. }
            | Self::RemoveRole { .. }
            | Self::DeactivateSuperadmin { .. }
            | Self::RecoverAccount { .. } => (Permission::ManageStaff, None),
        }
    }

    /// Who may approve it, in words, for refusals and the "nobody else" message.
    pub fn approvers_in_words(&self, subject_is_superadmin: bool) -> &'static str {
        match self.permission(subject_is_superadmin).0 {
            Permission::RevokeEverything | Permission::RecoverAccounts => {
                "a superadmin or a member of security staff"
            }
            _ => "a superadmin",
        }
    }

    pub(super) fn columns(&self) -> (String, String) {
        (self.target(), self.dedupe())
    }

    /// What the typed columns cannot hold, as JSON.
    pub(super) fn details(&self) -> String {
        match self {
            Self::InviteStaff {
                email,
                display_name,
                ..
            } => serde_json::json!({ "email": email, "display_name": display_name }).to_string(),
            _ => "{}".to_owned(),
        }
    }

    /// Reads the row's kind and typed columns back into the action.
    pub(super) fn from_row(row: &ApprovalRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("approval {}: {what}", row.id));
        let tenant = || {
            row.tenant_id
                .as_deref()
                .and_then(TenantId::parse)
                .ok_or_else(|| corrupt("tenant"))
        };
        let user = || {
            row.subject_user_id
                .as_deref()
                .and_then(UserId::parse)
                .ok_or_else(|| corrupt("subject"))
        };
        Ok(match row.kind.as_str() {
            "replace_signing_key" => Self::ReplaceSigningKey {
                tenant: tenant()?,
                kid: row.target.clone(),
            },
            "grant_role" => Self::GrantRole {
                user: user()?,
                role: Role::parse(&row.target).ok_or_else(|| corrupt("role"))?,
            },
            "remove_role" => {
                let (role, assignment) = row
                    .target
                    .split_once(':')
                    .ok_or_else(|| corrupt("target"))?;
                Self::RemoveRole {
                    user: user()?,
                    role: Role::parse(role).ok_or_else(|| corrupt("role"))?,
                    assignment: assignment.to_owned(),
                }
            }
            "deactivate_superadmin" => Self::DeactivateSuperadmin { user: user()? },
            "suspend_tenant" => Self::SuspendTenant { tenant: tenant()? },
            "revoke_tenant" => Self::RevokeTenant { tenant: tenant()? },
            "recover_account" => Self::RecoverAccount { user: user()? },
            "invite_staff" => {
                let details: serde_json::Value =
                    serde_json::from_str(&row.details).map_err(|_| corrupt("details"))?;
                let text = |key: &str| {
                    details
                        .get(key)
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| corrupt(key))
                };
                Self::InviteStaff {
                    email: text("email")?,
                    display_name: text("display_name")?,
                    role: Role::parse(&row.target).ok_or_else(|| corrupt("role"))?,
                }
            }
            _ => return Err(corrupt("kind")),
        })
    }

    /// The action in a sentence, naming people and tenants.
    pub async fn describe(&self, core: &Core) -> Result<String, StoreError> {
        let person = |user: UserId| async move {
            Ok::<_, StoreError>(match core.store.find_user(user).await? {
                Some(found) if found.display_name.is_empty() => found.email,
                Some(found) => format!("{} ({})", found.display_name, found.email),
                None => user.to_string(),
            })
        };
        let tenant_name = |tenant: TenantId| async move {
            Ok::<_, StoreError>(
                core.store
                    .tenant_by_id(tenant)
                    .await?
                    .map_or_else(|| tenant.to_string(), |t| t.name),
            )
        };
        Ok(match self {
            Self::ReplaceSigningKey { tenant, kid } => format!(
                "Drop signing key {kid} of {} at once",
                tenant_name(*tenant).await?
            ),
            Self::GrantRole { user, role } => {
                format!("Make {} {}", person(*user).await?, role_phrase(*role))
            }
            Self::RemoveRole { user, role, .. } => format!(
                "Remove the {} role from {}",
                role.label().to_lowercase(),
                person(*user).await?
            ),
            Self::DeactivateSuperadmin { user } => {
                format!("Deactivate superadmin {}", person(*user).await?)
            }
            Self::SuspendTenant { tenant } => {
                format!("Suspend tenant {}", tenant_name(*tenant).await?)
            }
            Self::RevokeTenant { tenant } => format!(
                "Revoke every grant and credential of {}",
                tenant_name(*tenant).await?
            ),
            Self::RecoverAccount { user } => format!(
                "Recover the account of {}: remove every passkey, recovery code and session and mail a recovery link",
                person(*user).await?
            ),
            Self::InviteStaff {
                email,
                display_name,
                role,
            } => format!("Invite {display_name} ({email}) as {}", role_phrase(*role)),
        })
    }
}

fn role_phrase(role: Role) -> &'static str {
    match role {
        Role::Superadmin => "a superadmin",
        Role::Security => "a member of security staff",
        Role::Support => "support staff",
        Role::TenantAdmin => "a tenant admin",
    }
}

/// Whether `person` may ask for or approve `action` (the subject's superadmin role decides who
/// may recover them). Through a key, the key's permissions decide, within its owner's roles.
pub fn allowed(person: Principal<'_>, action: &Action, subject_is_superadmin: bool) -> bool {
    let (permission, tenant) = action.permission(subject_is_superadmin);
    person.may(permission, tenant)
}

/// Whether `user` holds the superadmin role.
pub fn is_superadmin(user: &User) -> bool {
    user.roles
        .iter()
        .any(|r| r.role == Role::Superadmin && r.tenant_id.is_none())
}
