//! Passkeys (WebAuthn) through webauthn-rs: enrolment, assertion as a second factor or step-up,
//! and passwordless sign-in with a discoverable credential. Ceremony state is kept in the server-side
//! session by the caller and handed back here, except for passwordless sign-in, which anyone may
//! start: its state is sealed with the installation's key for the browser to hold (no row per
//! visitor), and can be used once. Nothing from the client is trusted but our own signature and
//! the signed response itself. The ceremonies are in `ceremony`; this module holds the types and the
//! management of stored passkeys.

use url::Url;
use webauthn_rs::prelude::{Passkey, Webauthn, WebauthnBuilder, WebauthnError};

use crate::clock::Millis;
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::UserId;
use crate::store::StoreError;
use crate::store::passkeys::RemovePasskey;

mod ceremony;

pub use ceremony::{
    Ceremony, Purpose, finish_assertion, finish_discovery, finish_enrolment, start_assertion,
    start_discovery, start_enrolment,
};

/// A ceremony not finished within this time is refused.
pub const CEREMONY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("The passkey check did not start on this page, or it took too long. Try again.")]
    NoCeremony,
    #[error("The browser's answer could not be read. Try again.")]
    Malformed,
    #[error("This passkey could not be verified.")]
    Rejected(#[source] Option<WebauthnError>),
    #[error(
        "This passkey's signature counter went backwards, which can mean it was copied. It was refused; contact security."
    )]
    CounterRegressed,
    #[error("This passkey is already registered.")]
    AlreadyRegistered,
    #[error("There is no passkey on this account yet.")]
    NoPasskeys,
    #[error("You cannot remove your only passkey. Add another one first.")]
    LastPasskey,
    #[error("That passkey does not exist.")]
    NotFound,
    #[error("The passkey service is misconfigured: {0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Relying party from the public URL: its host is the RP id (`localhost` in development), its
/// origin the only origin accepted.
pub fn relying_party(public_url: &Url) -> Result<Webauthn, PasskeyError> {
    let rp_id = public_url
        .host_str()
        .ok_or_else(|| PasskeyError::Setup("public_url has no host".into()))?;
    WebauthnBuilder::new(rp_id, public_url)
        .and_then(|builder| builder.rp_name("Token Broker").build())
        .map_err(|e| PasskeyError::Setup(e.to_string()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasskeyNameError {
    #[error("Give the passkey a name, like \"YubiKey 5\" or \"MacBook Touch ID\".")]
    Empty,
    #[error("Use at most {} characters.", PasskeyName::MAX_CHARS)]
    TooLong,
    #[error("Use letters, digits, spaces and punctuation only.")]
    ControlCharacters,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    pub const MAX_CHARS: usize = 60;

    pub fn parse(raw: &str) -> Result<Self, PasskeyNameError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PasskeyNameError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(PasskeyNameError::TooLong);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(PasskeyNameError::ControlCharacters);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored passkey as the store hands it back.
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    pub id: String,
    pub name: String,
    pub passkey_json: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
}

impl PasskeyRecord {
    pub(crate) fn passkey(&self) -> Result<Passkey, PasskeyError> {
        serde_json::from_str(&self.passkey_json).map_err(|e| {
            PasskeyError::Store(StoreError::Corrupt(format!("passkey {}: {e}", self.id)))
        })
    }
}

/// A passkey ready to store.
pub struct NewPasskey {
    pub id: String,
    pub user_id: UserId,
    pub credential_id: String,
    pub name: PasskeyName,
    pub passkey_json: String,
    pub sign_count: i64,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: Millis,
}

pub(crate) fn credential_key(id: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(id)
}

/// The user's passkeys, oldest first.
pub async fn list(core: &Core, user: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
    core.store.passkeys_of(user).await
}

/// Whether the user has enrolled any passkey (a password alone then leads to the passkey step).
pub async fn has_any(core: &Core, user: UserId) -> Result<bool, StoreError> {
    core.store.has_passkey(user).await
}

/// Renames one of the user's passkeys.
pub async fn rename(
    core: &Core,
    user: UserId,
    passkey_id: &str,
    name: PasskeyName,
) -> Result<(), PasskeyError> {
    if core
        .store
        .rename_passkey(user, passkey_id, name.as_str())
        .await?
    {
        Ok(())
    } else {
        Err(PasskeyError::NotFound)
    }
}

/// Removes one of the user's passkeys, never the last.
pub async fn remove(
    core: &Core,
    user: UserId,
    passkey_id: &str,
    context: &RequestContext,
) -> Result<(), PasskeyError> {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::PasskeyRemoved,
        Outcome::Success,
        Actor::User(user),
    )
    .subject(user)
    .context(context)
    .detail("passkey", passkey_id);
    match core.store.remove_passkey(user, passkey_id, &event).await? {
        RemovePasskey::Removed => Ok(()),
        RemovePasskey::NotFound => Err(PasskeyError::NotFound),
        RemovePasskey::LastOne => Err(PasskeyError::LastPasskey),
    }
}
