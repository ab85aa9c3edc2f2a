//! The WebAuthn ceremonies: enrolment, assertion (second factor or step-up) and passwordless
//! discovery, with the events each outcome records.

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Webauthn, WebauthnError,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::{
    CEREMONY_LIFETIME, NewPasskey, PasskeyError, PasskeyName, PasskeyRecord, credential_key,
};
use crate::clock::{Millis, duration_ms};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::ids::{UserId, time_ordered_id};
use crate::domain::secrets::sha256;
use crate::domain::signed_state::{self, Purpose as SealPurpose};
use crate::domain::users::{User, UserStatus};
use crate::store::StoreError;

/// What the user is proving with an assertion; a ceremony started for one purpose cannot finish
/// another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    SecondFactor,
    StepUp,
}

/// The ceremony in progress, as stored in the session.
#[derive(Serialize, Deserialize)]
pub enum Ceremony {
    Enrol {
        user: UserId,
        state: PasskeyRegistration,
        started_at: Millis,
    },
    Assert {
        user: UserId,
        purpose: Purpose,
        state: PasskeyAuthentication,
        started_at: Millis,
    },
}

impl Ceremony {
    fn started_at(&self) -> Millis {
        match self {
            Self::Enrol { started_at, .. } | Self::Assert { started_at, .. } => *started_at,
        }
    }

    pub fn is_expired(&self, now: Millis) -> bool {
        now.saturating_sub(self.started_at()) > duration_ms(CEREMONY_LIFETIME)
    }
}

/// Starts enrolment. The options prefer a discoverable credential (so it can sign in without a
/// password) and exclude the user's existing passkeys.
pub async fn start_enrolment(
    core: &Core,
    user: &User,
) -> Result<(CreationChallengeResponse, Ceremony), PasskeyError> {
    let existing = core
        .store
        .passkeys_of(user.id)
        .await?
        .iter()
        .map(|record| record.passkey().map(|p| p.cred_id().clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut options, state) = core
        .webauthn
        .start_passkey_registration(
            uuid_of(user.id),
            &user.email,
            &user.display_name,
            Some(existing),
        )
        .map_err(|e| PasskeyError::Setup(e.to_string()))?;
    // The server state does not depend on residency. Preferring it makes the passkey usable for
    // passwordless sign-in wherever the authenticator can store it; requiring it would lock out
    // security keys without resident-key storage.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Preferred);
    }
    let ceremony = Ceremony::Enrol {
        user: user.id,
        state,
        started_at: core.clock.now_ms(),
    };
    Ok((options, ceremony))
}

pub async fn finish_enrolment(
    core: &Core,
    user: &User,
    ceremony: Option<Ceremony>,
    name: PasskeyName,
    response_json: &str,
    context: &RequestContext,
) -> Result<(), PasskeyError> {
    let now = core.clock.now_ms();
    let state = match ceremony {
        Some(ceremony @ Ceremony::Enrol { .. }) if ceremony.is_expired(now) => {
            return Err(PasskeyError::NoCeremony);
        }
        Some(Ceremony::Enrol {
            user: owner, state, ..
        }) if owner == user.id => state,
        _ => return Err(PasskeyError::NoCeremony),
    };
    let response: RegisterPublicKeyCredential =
        serde_json::from_str(response_json).map_err(|_| PasskeyError::Malformed)?;
    let passkey = match core.webauthn.finish_passkey_registration(&response, &state) {
        Ok(passkey) => passkey,
        Err(e) => {
            record(
                core,
                EventType::PasskeyEnrolled,
                Outcome::Failure,
                user.id,
                context,
                |ev| ev.detail("reason", webauthn_reason(&e)),
            )
            .await?;
            return Err(PasskeyError::Rejected(Some(e)));
        }
    };
    let record = NewPasskey {
        id: time_ordered_id(),
        user_id: user.id,
        credential_id: credential_key(passkey.cred_id().as_ref()),
        name,
        passkey_json: serde_json::to_string(&passkey)
            .map_err(|e| PasskeyError::Setup(e.to_string()))?,
        sign_count: 0,
        backup_eligible: false,
        backup_state: false,
        created_at: now,
    };
    let event = Event::new(
        now,
        EventType::PasskeyEnrolled,
        Outcome::Success,
        Actor::User(user.id),
    )
    .subject(user.id)
    .context(context)
    .detail("passkey", record.id.clone())
    .detail("name", record.name.as_str());
    if core.store.insert_passkey(&record, &event).await? {
        Ok(())
    } else {
        Err(PasskeyError::AlreadyRegistered)
    }
}

/// Starts an assertion against the user's own passkeys.
pub async fn start_assertion(
    core: &Core,
    user: UserId,
    purpose: Purpose,
) -> Result<(RequestChallengeResponse, Ceremony), PasskeyError> {
    let passkeys = core
        .store
        .passkeys_of(user)
        .await?
        .iter()
        .map(PasskeyRecord::passkey)
        .collect::<Result<Vec<_>, _>>()?;
    if passkeys.is_empty() {
        return Err(PasskeyError::NoPasskeys);
    }
    let (options, state) = core
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| PasskeyError::Setup(e.to_string()))?;
    Ok((
        options,
        Ceremony::Assert {
            user,
            purpose,
            state,
            started_at: core.clock.now_ms(),
        },
    ))
}

/// Verifies an assertion for `purpose`, updates the passkey's counter and flags, records the event.
pub async fn finish_assertion(
    core: &Core,
    user: UserId,
    purpose: Purpose,
    ceremony: Option<Ceremony>,
    response_json: &str,
    context: &RequestContext,
) -> Result<(), PasskeyError> {
    let now = core.clock.now_ms();
    let state = match ceremony {
        Some(ceremony @ Ceremony::Assert { .. }) if ceremony.is_expired(now) => {
            return Err(PasskeyError::NoCeremony);
        }
        Some(Ceremony::Assert {
            user: owner,
            purpose: started_for,
            state,
            ..
        }) if owner == user && started_for == purpose => state,
        _ => return Err(PasskeyError::NoCeremony),
    };
    let outcome = match serde_json::from_str::<PublicKeyCredential>(response_json) {
        Ok(response) => {
            verify(core, user, &response, |webauthn, _| {
                webauthn.finish_passkey_authentication(&response, &state)
            })
            .await
        }
        Err(_) => Err(PasskeyError::Malformed),
    };
    record_assertion(core, user, purpose, &outcome, context).await?;
    outcome
}

/// Starts a passwordless sign-in: any discoverable passkey of any user may answer. The ceremony
/// comes back sealed (signed, expiring, see `signed_state`) for the browser to keep until it
/// answers: the sign-in page is shown to anyone, and showing it must not write a row.
pub async fn start_discovery(
    core: &Core,
) -> Result<(RequestChallengeResponse, String), PasskeyError> {
    let (options, state) = core
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| PasskeyError::Setup(e.to_string()))?;
    let state = serde_json::to_vec(&state).map_err(|e| PasskeyError::Setup(e.to_string()))?;
    let expires_at = core
        .clock
        .now_ms()
        .saturating_add(duration_ms(CEREMONY_LIFETIME));
    let sealed =
        signed_state::key(core)
            .await?
            .sign(SealPurpose::PasskeyDiscovery, &state, expires_at);
    Ok((options, sealed))
}

/// Opens a sealed discovery ceremony, once: the first answer to it uses it up on every instance
/// (so a captured answer cannot be replayed while the ceremony is still fresh).
async fn open_discovery(
    core: &Core,
    sealed: Option<&str>,
) -> Result<DiscoverableAuthentication, PasskeyError> {
    let sealed = sealed.ok_or(PasskeyError::NoCeremony)?;
    let opened = signed_state::key(core)
        .await?
        .open(SealPurpose::PasskeyDiscovery, sealed, core.clock.now_ms())
        .map_err(|_| PasskeyError::NoCeremony)?;
    let used = hex::encode(sha256(&format!("passkey-discovery\n{sealed}")));
    if !core.store.use_assertion(&used, opened.expires_at).await? {
        return Err(PasskeyError::NoCeremony);
    }
    serde_json::from_slice(&opened.payload).map_err(|_| PasskeyError::NoCeremony)
}

/// Finishes a passwordless sign-in and returns the (active) user it proves.
pub async fn finish_discovery(
    core: &Core,
    sealed_ceremony: Option<&str>,
    response_json: &str,
    context: &RequestContext,
) -> Result<User, PasskeyError> {
    let state = open_discovery(core, sealed_ceremony).await?;
    let response: PublicKeyCredential =
        serde_json::from_str(response_json).map_err(|_| PasskeyError::Malformed)?;
    let (user_uuid, _) = core
        .webauthn
        .identify_discoverable_authentication(&response)
        .map_err(|e| PasskeyError::Rejected(Some(e)))?;
    let user_id = UserId::from(user_uuid);
    let user = match core.store.find_user(user_id).await? {
        Some(user) if user.status == UserStatus::Active => user,
        _ => return Err(PasskeyError::Rejected(None)),
    };
    let outcome = verify(core, user_id, &response, |webauthn, passkey| {
        webauthn.finish_discoverable_authentication_v2(&response, state, passkey)
    })
    .await;
    match outcome {
        // A completed sign-in, like the password path's: the log's "login" filter and the detectors
        // (impossible travel) see it, whichever way the person came in.
        Ok(()) => {
            record(
                core,
                EventType::Login,
                Outcome::Success,
                user_id,
                context,
                |ev| ev.detail("method", "passkey"),
            )
            .await?;
            Ok(user)
        }
        Err(error) => {
            let failed = Err(error);
            let context = context.without_session();
            record_assertion(core, user_id, Purpose::SecondFactor, &failed, &context).await?;
            failed.map(|()| user)
        }
    }
}

/// Looks up the answering passkey, runs the check, and persists counter and flags.
async fn verify(
    core: &Core,
    user: UserId,
    response: &PublicKeyCredential,
    check: impl FnOnce(&Webauthn, &Passkey) -> Result<AuthenticationResult, WebauthnError>,
) -> Result<(), PasskeyError> {
    let credential = credential_key(response.get_credential_id());
    let record = core
        .store
        .passkey_by_credential(user, &credential)
        .await?
        .ok_or(PasskeyError::Rejected(None))?;
    let mut passkey = record.passkey()?;
    let result = check(&core.webauthn, &passkey).map_err(|e| match e {
        WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterRegressed,
        other => PasskeyError::Rejected(Some(other)),
    })?;
    let updated = if passkey.update_credential(&result) == Some(true) {
        Some(serde_json::to_string(&passkey).map_err(|e| PasskeyError::Setup(e.to_string()))?)
    } else {
        None
    };
    let flags = updated.as_deref().map(|json| {
        (
            json,
            i64::from(result.counter()),
            result.backup_eligible(),
            result.backup_state(),
        )
    });
    core.store
        .record_passkey_use(&record.id, flags, core.clock.now_ms())
        .await?;
    Ok(())
}

async fn record_assertion(
    core: &Core,
    user: UserId,
    purpose: Purpose,
    outcome: &Result<(), PasskeyError>,
    context: &RequestContext,
) -> Result<(), StoreError> {
    let purpose_name = match purpose {
        Purpose::SecondFactor => "sign_in",
        Purpose::StepUp => "step_up",
    };
    match outcome {
        Ok(()) => {
            record(
                core,
                EventType::PasskeyUsed,
                Outcome::Success,
                user,
                context,
                |ev| ev.detail("purpose", purpose_name),
            )
            .await
        }
        Err(PasskeyError::CounterRegressed) => {
            record(
                core,
                EventType::PasskeyCounterRegressed,
                Outcome::Failure,
                user,
                context,
                |ev| ev.detail("purpose", purpose_name).detail("alert", true),
            )
            .await
        }
        Err(error) => {
            let reason = match error {
                PasskeyError::Rejected(Some(e)) => webauthn_reason(e),
                PasskeyError::Malformed => "malformed_response".into(),
                _ => "rejected".into(),
            };
            record(
                core,
                EventType::SecondFactorFailed,
                Outcome::Failure,
                user,
                context,
                |ev| ev.detail("purpose", purpose_name).detail("reason", reason),
            )
            .await
        }
    }
}

/// A stable, secret-free reason code from webauthn-rs's error.
fn webauthn_reason(error: &WebauthnError) -> String {
    let debug = format!("{error:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("unknown")
        .to_owned()
}

async fn record(
    core: &Core,
    event_type: EventType,
    outcome: Outcome,
    user: UserId,
    context: &RequestContext,
    decorate: impl FnOnce(Event) -> Event,
) -> Result<(), StoreError> {
    let event = Event::new(core.clock.now_ms(), event_type, outcome, Actor::User(user))
        .subject(user)
        .context(context);
    core.store.append_event(&decorate(event)).await
}

fn uuid_of(user: UserId) -> uuid::Uuid {
    user.into()
}
