//! Roles. A role assignment is (user, role, tenant or global). The permission table arrives with
//! tenants; for now the roles exist so the first administrator can be made a superadmin.

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
