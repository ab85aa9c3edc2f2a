//! Who acts. A person signed in to the console acts with their roles; an automation key acts with
//! the permissions (and tenants) it names, within its owner's roles — never with its owner's roles
//! alone. A use case called from both the console and the API asks the principal, so a key made
//! for one narrow job cannot reach a wider one through a check that only looked at its owner.

use crate::domain::api_keys::ApiCaller;
use crate::domain::ids::TenantId;
use crate::domain::rbac::{self, Permission};
use crate::domain::users::User;

#[derive(Clone, Copy)]
pub enum Principal<'a> {
    Person(&'a User),
    Key(&'a ApiCaller),
}

impl<'a> Principal<'a> {
    /// The person behind the action (a key's owner), for events and "not about yourself" rules.
    pub fn user(self) -> &'a User {
        match self {
            Self::Person(user) => user,
            Self::Key(caller) => &caller.owner,
        }
    }

    pub fn may(self, permission: Permission, tenant: Option<TenantId>) -> bool {
        match self {
            Self::Person(user) => rbac::may(user, permission, tenant),
            Self::Key(caller) => caller.may(permission, tenant),
        }
    }
}
