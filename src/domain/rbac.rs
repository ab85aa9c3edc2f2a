//! Roles and permissions. A role assignment is (user, role, tenant or global); one table maps roles to
//! permissions, and every handler asks [`may`] — never an ad-hoc role comparison.

use crate::domain::ids::TenantId;
use crate::domain::users::User;

/// What a principal may do. Grows with each area of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Open a tenant's pages at all (`/t/{slug}/…`).
    EnterTenant,
    /// Create tenants, change their logo, suspend and reactivate them.
    ManageTenants,
    /// See every tenant (the switcher lists all, not just assigned ones).
    SeeAllTenants,
    /// See the staff list and a staff member's roles.
    ViewStaff,
    /// Invite staff, grant and revoke roles, deactivate and reactivate accounts.
    ManageStaff,
    /// See any staff member's sessions and end them.
    ManageStaffSessions,
    /// Keep the tenant's catalogue of API scopes.
    ManageScopes,
    /// See the tenant's access requests.
    ViewRequests,
    /// Approve or deny access requests.
    DecideRequests,
    /// See grants and credentials.
    ViewCredentials,
    /// Mint credentials under a grant.
    MintCredentials,
    /// Revoke credentials.
    RevokeCredentials,
    /// See the tenant's signing keys, their states and dates.
    ViewKeys,
    /// Rotate the tenant's signing key now.
    RotateKeys,
    /// Ask for (or approve) dropping a key at once: always two different people.
    ReplaceKeysInEmergency,
    /// Revoke every grant and credential of a tenant at once (the incident kill switch; a second
    /// person approves).
    RevokeEverything,
    /// Start (or approve) the assisted recovery of someone who lost every passkey and recovery
    /// code. Recovering a superadmin takes `ManageStaff`.
    RecoverAccounts,
    /// See the approvals queue and decide what one's own permissions allow.
    DecideApprovals,
    /// Read the event log (held globally: every tenant's; in a tenant: that tenant's).
    ViewEvents,
    /// See suspicious-activity alerts (globally: all; in a tenant: that tenant's).
    ViewAlerts,
    /// Acknowledge, resolve, assign and annotate alerts.
    ManageAlerts,
}

impl Permission {
    pub const ALL: [Permission; 21] = [
        Self::EnterTenant,
        Self::ManageTenants,
        Self::SeeAllTenants,
        Self::ViewStaff,
        Self::ManageStaff,
        Self::ManageStaffSessions,
        Self::ManageScopes,
        Self::ViewRequests,
        Self::DecideRequests,
        Self::ViewCredentials,
        Self::MintCredentials,
        Self::RevokeCredentials,
        Self::ViewKeys,
        Self::RotateKeys,
        Self::ReplaceKeysInEmergency,
        Self::RevokeEverything,
        Self::RecoverAccounts,
        Self::DecideApprovals,
        Self::ViewEvents,
        Self::ViewAlerts,
        Self::ManageAlerts,
    ];

    /// The permission's name in API keys, the API and the CLI (`mint_credentials`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnterTenant => "enter_tenant",
            Self::ManageTenants => "manage_tenants",
            Self::SeeAllTenants => "see_all_tenants",
            Self::ViewStaff => "view_staff",
            Self::ManageStaff => "manage_staff",
            Self::ManageStaffSessions => "manage_staff_sessions",
            Self::ManageScopes => "manage_scopes",
            Self::ViewRequests => "view_requests",
            Self::DecideRequests => "decide_requests",
            Self::ViewCredentials => "view_credentials",
            Self::MintCredentials => "mint_credentials",
            Self::RevokeCredentials => "revoke_credentials",
            Self::ViewKeys => "view_keys",
            Self::RotateKeys => "rotate_keys",
            Self::ReplaceKeysInEmergency => "replace_keys_in_emergency",
            Self::RevokeEverything => "revoke_everything",
            Self::RecoverAccounts => "recover_accounts",
            Self::DecideApprovals => "decide_approvals",
            Self::ViewEvents => "view_events",
            Self::ViewAlerts => "view_alerts",
            Self::ManageAlerts => "manage_alerts",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// What it allows, in a sentence (the API key form lists these).
    pub fn description(self) -> &'static str {
        match self {
            Self::EnterTenant => "Open a tenant's pages at all (`/t/{slug}/…`).",
            Self::ManageTenants => {
                "Create tenants, change their logo, suspend and reactivate them."
            }
            Self::SeeAllTenants => {
                "See every tenant (the switcher lists all, not just assigned ones)."
            }
            Self::ViewStaff => "See the staff list and a staff member's roles.",
            Self::ManageStaff => {
                "Invite staff, grant and revoke roles, deactivate and reactivate accounts."
            }
            Self::ManageStaffSessions => "See any staff member's sessions and end them.",
            Self::ManageScopes => "Keep the tenant's catalogue of API scopes.",
            Self::ViewRequests => "See the tenant's access requests.",
            Self::DecideRequests => "Approve or deny access requests.",
            Self::ViewCredentials => "See grants and credentials.",
            Self::MintCredentials => "Mint credentials under a grant.",
            Self::RevokeCredentials => "Revoke credentials.",
            Self::ViewKeys => "See the tenant's signing keys, their states and dates.",
            Self::RotateKeys => "Rotate the tenant's signing key now.",
            Self::ReplaceKeysInEmergency => {
                "Ask for (or approve) dropping a key at once: always two different people."
            }
            Self::RevokeEverything => {
                "Revoke every grant and credential of a tenant at once (a second person approves)."
            }
            Self::RecoverAccounts => {
                "Start (or approve) the assisted recovery of someone who lost every passkey."
            }
            Self::DecideApprovals => {
                "See the approvals queue and decide what one's own permissions allow."
            }
            Self::ViewEvents => {
                "Read the event log (held globally: every tenant's; in a tenant: that tenant's)."
            }
            Self::ViewAlerts => {
                "See suspicious-activity alerts (globally: all; in a tenant: that tenant's)."
            }
            Self::ManageAlerts => "Acknowledge, resolve, assign and annotate alerts.",
        }
    }
}

/// The one role → permission table.
fn grants(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Superadmin => true,
        Role::Security => matches!(
            permission,
            EnterTenant
                | SeeAllTenants
                | ViewStaff
                | ManageStaffSessions
                | ViewRequests
                | ViewCredentials
                | RevokeCredentials
                | ViewKeys
                | RotateKeys
                | RevokeEverything
                | RecoverAccounts
                | DecideApprovals
                | ViewEvents
                | ViewAlerts
                | ManageAlerts
        ),
        Role::Support => matches!(
            permission,
            EnterTenant
                | ManageScopes
                | ViewRequests
                | ViewCredentials
                | MintCredentials
                | RevokeCredentials
                | ViewEvents
        ),
        Role::TenantAdmin => matches!(
            permission,
            EnterTenant
                | ManageScopes
                | ViewRequests
                | DecideRequests
                | ViewCredentials
                | RevokeCredentials
                | ViewKeys
                | RotateKeys
                | ViewEvents
                | ViewAlerts
        ),
    }
}

/// May `user` do `permission`, globally (`tenant` = None) or in one tenant? Global roles apply in
/// every tenant; tenant roles only in their own.
pub fn may(user: &User, permission: Permission, tenant: Option<TenantId>) -> bool {
    let tenant = tenant.map(|t| t.to_string());
    user.roles.iter().any(|assignment| {
        let in_scope = match (&assignment.tenant_id, &tenant) {
            (None, _) => true,
            (Some(own), Some(asked)) => own == asked,
            (Some(_), None) => false,
        };
        in_scope && grants(assignment.role, permission)
    })
}

/// Does `user` hold `permission` anywhere: globally or in at least one tenant?
pub fn holds_anywhere(user: &User, permission: Permission) -> bool {
    user.roles
        .iter()
        .any(|assignment| grants(assignment.role, permission))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Superadmin,
    Security,
    Support,
    TenantAdmin,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Self::Superadmin,
        Self::Security,
        Self::Support,
        Self::TenantAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Superadmin => "superadmin",
            Self::Security => "security",
            Self::Support => "support",
            Self::TenantAdmin => "tenant_admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == raw)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Superadmin => "Superadmin",
            Self::Security => "Security",
            Self::Support => "Support",
            Self::TenantAdmin => "Tenant admin",
        }
    }

    /// Superadmin and security act across all tenants; support and tenant admins within one.
    pub fn is_global(self) -> bool {
        matches!(self, Self::Superadmin | Self::Security)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::UserId;
    use crate::domain::users::{RoleAssignment, UserStatus};

    fn user(roles: &[(Role, Option<TenantId>)]) -> User {
        User {
            id: UserId::new(),
            email: "x@example.com".into(),
            display_name: "X".into(),
            status: UserStatus::Active,
            created_at: 0,
            roles: roles
                .iter()
                .map(|(role, tenant)| RoleAssignment {
                    id: String::new(),
                    role: *role,
                    tenant_id: tenant.map(|t| t.to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn tenant_roles_stop_at_their_tenant() {
        let (a, b) = (TenantId::new(), TenantId::new());
        let support = user(&[(Role::Support, Some(a))]);
        assert!(may(&support, Permission::EnterTenant, Some(a)));
        assert!(!may(&support, Permission::EnterTenant, Some(b)));
        assert!(!may(&support, Permission::ManageStaff, None));
        let security = user(&[(Role::Security, None)]);
        assert!(may(&security, Permission::EnterTenant, Some(b)));
        assert!(!may(&security, Permission::ManageTenants, Some(b)));
        assert!(may(
            &user(&[(Role::Superadmin, None)]),
            Permission::ManageStaff,
            None
        ));
        assert!(!may(&user(&[]), Permission::EnterTenant, Some(a)));
    }
}
