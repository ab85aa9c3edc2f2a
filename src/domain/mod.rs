//! The rules, with no HTTP in sight. Handlers call these; these call the store.

pub mod auth;
pub mod email;
pub mod events;
pub mod ids;
pub mod password;
pub mod rbac;
pub mod secrets;
pub mod sessions;
pub mod setup;
pub mod users;

use crate::clock::SharedClock;
use crate::store::Store;
use password::PasswordService;

/// What every use case needs: storage, the password hasher and the clock.
#[derive(Clone)]
pub struct Core {
    pub store: Store,
    pub passwords: PasswordService,
    pub clock: SharedClock,
}
