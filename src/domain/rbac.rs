//! Roles and permissions. A role assignment is (user, role, tenant or global); one table maps roles
//! to permissions, and every handler asks [`may`] — never an ad-hoc role comparison.

use crate::domain::users::User;

/// What a principal may do. Grows with each area of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See any staff member's sessions and end them.
    ManageStaffSessions,
    /// See the staff list.
    ViewStaff,
}

/// The one role → permission table.
fn grants(role: Role, permission: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Superadmin => matches!(permission, ManageStaffSessions | ViewStaff),
        Role::Security => matches!(permission, ManageStaffSessions | ViewStaff),
        Role::Support | Role::TenantAdmin => false,
    }
}

/// May `user` do `permission` globally? (Tenant-scoped checks arrive with tenants.)
pub fn may(user: &User, permission: Permission) -> bool {
    user.roles
        .iter()
        .any(|assignment| assignment.tenant_id.is_none() && grants(assignment.role, permission))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Superadmin,
    Security,
    Support,
    TenantAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Superadmin => "superadmin",
            Self::Security => "security",
            Self::Support => "support",
            Self::TenantAdmin => "tenant_admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Superadmin,
            Self::Security,
            Self::Support,
            Self::TenantAdmin,
        ]
        .into_iter()
        .find(|role| role.as_str() == raw)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Superadmin => "Superadmin",
            Self::Security => "Security",
            Self::Support => "Support",
            Self::TenantAdmin => "Tenant admin",
        }
    }
}
