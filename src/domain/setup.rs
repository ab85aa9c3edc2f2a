//! First-run bootstrap: a fresh installation has no users. Start-up prints a single-use setup link
//! (valid one hour); `tokenbroker create-admin` does the same from the command line. Whichever runs
//! first creates the one and only bootstrap superadmin; every other path is dead afterwards.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clock::duration_ms;
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::domain::password::PasswordError;
use crate::domain::rbac::Role;
use crate::domain::secrets::{self, SecretDigest};
use crate::domain::users::NewStaff;
use crate::store::StoreError;
use crate::store::setup::{BootstrapAdmin, BootstrapError, GlobalStaff, SetupTokenStatus};

pub const SETUP_LINK_LIFETIME: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("This setup link is not valid.")]
    LinkUnknown,
    #[error("This setup link has already been used.")]
    LinkUsed,
    #[error(
        "This setup link has expired. Restart the server to print a new one, or use `tokenbroker create-admin`."
    )]
    LinkExpired,
    #[error("This installation already has an administrator.")]
    AlreadyInitialized,
    #[error("Someone with this e-mail address already has an account.")]
    AlreadyStaff,
    #[error("Only superadmin and security staff are created from the command line.")]
    NotGlobal,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a setup link when the installation has no users yet. The link is the only copy of the
/// secret: the database keeps its SHA-256.
pub async fn issue_setup_link(
    core: &Core,
    public_url: &Url,
) -> Result<Option<SecretString>, StoreError> {
    if core.store.any_user_exists().await? {
        return Ok(None);
    }
    let token = secrets::generate();
    let now = core.clock.now_ms();
    let expires = now + duration_ms(SETUP_LINK_LIFETIME);
    core.store
        .insert_setup_token(&SecretDigest::of(token.expose_secret()), now, expires)
        .await?;
    let mut link = public_url
        .join("/setup")
        .map_err(|e| StoreError::Unexpected(e.to_string()))?;
    link.query_pairs_mut()
        .append_pair("token", token.expose_secret());
    Ok(Some(SecretString::from(link.to_string())))
}

pub async fn check_setup_token(core: &Core, token: &str) -> Result<(), SetupError> {
    let status = core
        .store
        .setup_token_status(&SecretDigest::of(token), core.clock.now_ms())
        .await?;
    match status {
        SetupTokenStatus::Valid => Ok(()),
        SetupTokenStatus::Used => Err(SetupError::LinkUsed),
        SetupTokenStatus::Expired => Err(SetupError::LinkExpired),
        SetupTokenStatus::Unknown => Err(SetupError::LinkUnknown),
    }
}

/// Consumes the setup link and creates the first superadmin, atomically.
pub async fn complete_setup(
    core: &Core,
    token: &str,
    staff: NewStaff,
    context: &RequestContext,
) -> Result<UserId, SetupError> {
    check_setup_token(core, token).await?;
    bootstrap(
        core,
        Some(SecretDigest::of(token)),
        staff,
        EventType::SetupCompleted,
        Actor::Anonymous,
        context,
    )
    .await
}

/// `tokenbroker create-admin` once there are users: a further superadmin or security staff member,
/// from the server (whoever runs it holds the database and its keys anyway). It is how an
/// installation with a single superadmin gets a second one, who can then approve what needs two
/// people; the console only ever invites such roles with a second superadmin's approval.
pub async fn create_global_staff_from_cli(
    core: &Core,
    staff: NewStaff,
    role: Role,
) -> Result<UserId, SetupError> {
    if !role.is_global() {
        return Err(SetupError::NotGlobal);
    }
    let password_hash = core.passwords.hash(&staff.password).await?;
    let now = core.clock.now_ms();
    let user_id = UserId::new();
    let event = Event::new(now, EventType::AdminCreated, Outcome::Success, Actor::Cli)
        .subject(user_id)
        .detail("role", role.as_str())
        .detail("first", false);
    let created = GlobalStaff {
        user_id,
        email: staff.email,
        display_name: staff.display_name,
        password_hash,
        role,
        now,
        event,
    };
    if core.store.insert_global_staff(&created).await? {
        Ok(user_id)
    } else {
        Err(SetupError::AlreadyStaff)
    }
}

/// `tokenbroker create-admin`: the same bootstrap without a link.
pub async fn create_admin_from_cli(core: &Core, staff: NewStaff) -> Result<UserId, SetupError> {
    bootstrap(
        core,
        None,
        staff,
        EventType::AdminCreated,
        Actor::Cli,
        &RequestContext::default(),
    )
    .await
}

async fn bootstrap(
    core: &Core,
    token: Option<SecretDigest>,
    staff: NewStaff,
    event_type: EventType,
    actor: Actor,
    context: &RequestContext,
) -> Result<UserId, SetupError> {
    let password_hash = core.passwords.hash(&staff.password).await?;
    let now = core.clock.now_ms();
    let user_id = UserId::new();
    let event = Event::new(now, event_type, Outcome::Success, actor)
        .subject(user_id)
        .context(context)
        .detail("role", "superadmin");
    let admin = BootstrapAdmin {
        user_id,
        email: staff.email,
        display_name: staff.display_name,
        password_hash,
        setup_token: token,
        now,
        event,
    };
    match core.store.bootstrap_first_admin(admin).await {
        Ok(()) => Ok(user_id),
        Err(BootstrapError::AlreadyBootstrapped) => Err(SetupError::AlreadyInitialized),
        Err(BootstrapError::TokenNotUsable) => Err(SetupError::LinkUsed),
        Err(BootstrapError::Store(e)) => Err(e.into()),
    }
}
