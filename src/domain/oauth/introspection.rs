//! Introspection (RFC 7662), revocation (RFC 7009) and the revocation feed.

use serde::Serialize;

use super::{
    AuthenticatedClient, ErrorCode, Inactive, JwtCheck, OAuthError, Presented, SecretCheck,
    ServedTenant, check_jwt, check_secret, looks_like_jwt,
};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::partners::CredentialKind;
use crate::domain::tokens::{self, SecretKind};

/// An RFC 7662 response. Inactive tokens are `{"active": false}` and nothing else.
#[derive(Debug, Default, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// RFC 9449 §6.2: the key a DPoP-bound token is bound to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<super::Confirmation>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Self::default()
    }
}

/// Counts an introspection by token kind and result.
fn count(kind: &str, result: &str) {
    if let Some(metrics) = crate::metrics::get() {
        metrics
            .introspections
            .with_label_values(&[kind, result])
            .inc();
    }
}

pub async fn introspect(
    core: &Core,
    tenant: &ServedTenant,
    caller: &AuthenticatedClient,
    token: &str,
    context: &RequestContext,
) -> Result<Introspection, OAuthError> {
    let answer = answer(core, tenant, caller, token, context).await?;
    let kind = if looks_like_jwt(token) {
        "jwt"
    } else {
        "opaque"
    };
    count(kind, answer.1);
    Ok(answer.0)
}

async fn answer(
    core: &Core,
    tenant: &ServedTenant,
    caller: &AuthenticatedClient,
    token: &str,
    context: &RequestContext,
) -> Result<(Introspection, &'static str), OAuthError> {
    if looks_like_jwt(token) {
        return match check_jwt(core, tenant, token).await? {
            JwtCheck::Active(verified) => {
                let claims = verified.claims;
                let token_type = claims.token_type();
                Ok((
                    Introspection {
                        active: true,
                        scope: Some(claims.scope),
                        client_id: Some(claims.client_id),
                        token_type: Some(token_type),
                        cnf: claims.cnf,
                        exp: Some(claims.exp),
                        iat: Some(claims.iat),
                        nbf: Some(claims.nbf),
                        sub: Some(claims.sub),
                        aud: Some(tenant.audience(&core.public_url)),
                        iss: Some(claims.iss),
                        jti: Some(claims.jti),
                    },
                    "active",
                ))
            }
            JwtCheck::Inactive { reason, issued } => {
                let credential = issued.as_ref().map(|i| i.credential_id.clone());
                note_inactive(core, tenant, caller, reason, credential, context).await?;
                Ok((Introspection::inactive(), reason.code()))
            }
        };
    }
    if !tokens::is_well_formed(token, SecretKind::ApiToken) {
        // Client secrets are not access tokens; garbage is garbage. Neither is worth an event.
        return Ok((Introspection::inactive(), "malformed"));
    }
    match check_secret(core, &Presented::new(token), None).await? {
        SecretCheck::Active(known)
            if known.kind == CredentialKind::ApiToken && known.tenant_id == tenant.id =>
        {
            Ok((
                Introspection {
                    active: true,
                    scope: Some(known.scopes.join(" ")),
                    token_type: Some("Bearer"),
                    exp: Some(known.expires_at / 1000),
                    sub: Some(known.credential_id.clone()),
                    aud: Some(tenant.audience(&core.public_url)),
                    iss: Some(tenant.issuer(&core.public_url)),
                    ..Introspection::default()
                },
                "active",
            ))
        }
        SecretCheck::Active(known) => {
            let credential = Some(known.credential_id.clone());
            note_inactive(
                core,
                tenant,
                caller,
                Inactive::WrongTenant,
                credential,
                context,
            )
            .await?;
            Ok((Introspection::inactive(), Inactive::WrongTenant.code()))
        }
        SecretCheck::Inactive { reason, known } => {
            let credential = known.map(|k| k.credential_id.clone());
            note_inactive(core, tenant, caller, reason, credential, context).await?;
            Ok((Introspection::inactive(), reason.code()))
        }
    }
}

/// A revoked or expired credential still in use, a token from another tenant, or one naming a key
/// we never had: each is recorded (the detectors of the event log look for these). Plain garbage
/// is not.
async fn note_inactive(
    core: &Core,
    tenant: &ServedTenant,
    caller: &AuthenticatedClient,
    reason: Inactive,
    credential: Option<String>,
    context: &RequestContext,
) -> Result<(), OAuthError> {
    let event_type = match reason {
        r if r.is_stale_credential() => EventType::RevokedTokenPresented,
        Inactive::UnknownKey | Inactive::BadSignature | Inactive::WrongTenant => {
            EventType::UnknownKeyPresented
        }
        _ => return Ok(()),
    };
    let mut event = Event::new(
        core.clock.now_ms(),
        event_type,
        Outcome::Failure,
        Actor::Client(caller.known.credential_id.clone()),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("reason", reason.code())
    .detail("presented_to", caller.client_id.as_str());
    if let Some(credential) = credential {
        event = event.detail("credential", credential);
    }
    core.store.append_event(&event).await?;
    Ok(())
}

/// What revoking did (the endpoint answers 200 either way, RFC 7009 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    AlreadyRevoked,
    /// Unknown, malformed, expired or foreign: nothing to do.
    NothingToDo,
}

/// RFC 7009: a client revokes an access token issued to it.
pub async fn revoke_token(
    core: &Core,
    tenant: &ServedTenant,
    caller: &AuthenticatedClient,
    token: &str,
    context: &RequestContext,
) -> Result<Revocation, OAuthError> {
    if tokens::is_well_formed(token, SecretKind::ApiToken) {
        return Err(OAuthError::rejected(
            ErrorCode::UnsupportedTokenType,
            "API tokens are revoked by the tenant's staff in the console, not through this endpoint.",
        ));
    }
    let verified = match check_jwt(core, tenant, token).await? {
        JwtCheck::Active(verified) => verified,
        JwtCheck::Inactive {
            reason: Inactive::Revoked,
            ..
        } => return Ok(Revocation::AlreadyRevoked),
        JwtCheck::Inactive { .. } => return Ok(Revocation::NothingToDo),
    };
    if verified.issued.client_id != caller.client_id {
        return Err(OAuthError::rejected(
            ErrorCode::UnauthorizedClient,
            "This token was issued to another client.",
        ));
    }
    let now = core.clock.now_ms();
    let Some(record) = core
        .store
        .access_token(tenant.id, &verified.claims.jti)
        .await?
    else {
        return Ok(Revocation::NothingToDo);
    };
    let event = Event::new(
        now,
        EventType::TokenRevoked,
        Outcome::Success,
        Actor::Client(caller.known.credential_id.clone()),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("client_id", caller.client_id.as_str())
    .detail("jti", record.jti.as_str())
    .detail("via", "revocation_endpoint");
    let revoked = core
        .store
        .revoke_access_token(tenant.id, &record, now, &event)
        .await?;
    core.revocations.catch_up(&core.store).await?;
    Ok(if revoked {
        Revocation::Revoked
    } else {
        Revocation::AlreadyRevoked
    })
}

/// One entry of the revocation feed.
#[derive(Debug, Serialize)]
pub struct FeedEntry {
    pub cursor: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    pub revoked_at: i64,
    /// After this (epoch seconds) nothing the entry covers can verify anyway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forget_after: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Feed {
    pub revocations: Vec<FeedEntry>,
    /// Pass this as `since` next time.
    pub next_cursor: String,
    /// More entries are waiting: ask again at once.
    pub has_more: bool,
}

pub const FEED_PAGE: i64 = 500;

/// Revocations of the tenant after `since` (a cursor from an earlier answer; none = from the start
/// of what is still relevant).
pub async fn revocation_feed(
    core: &Core,
    tenant: &ServedTenant,
    since: Option<&str>,
) -> Result<Feed, OAuthError> {
    let cursor = match since.map(str::trim).filter(|s| !s.is_empty()) {
        None => 0,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|c| *c >= 0)
            .ok_or(OAuthError::rejected(
                ErrorCode::InvalidRequest,
                "`since` must be a cursor from an earlier answer.",
            ))?,
    };
    let entries = core
        .store
        .tenant_revocations_after(tenant.id, cursor, FEED_PAGE + 1)
        .await?;
    let has_more = entries.len() as i64 > FEED_PAGE;
    let entries: Vec<_> = entries.into_iter().take(FEED_PAGE as usize).collect();
    let next = entries.last().map_or(cursor, |e| e.seq);
    let revocations = entries
        .into_iter()
        .map(|e| {
            let subject = Some(e.subject);
            let (jti, credential_id, kid) = match e.kind.as_str() {
                "token" => (subject, None, None),
                "credential" => (None, subject, None),
                "key" => (None, None, subject),
                _ => (None, None, None),
            };
            FeedEntry {
                cursor: e.seq.to_string(),
                kind: e.kind,
                jti,
                credential_id,
                client_id: e.client_id,
                kid,
                revoked_at: e.revoked_at / 1000,
                forget_after: e.forget_after.map(|f| f / 1000),
            }
        })
        .collect();
    Ok(Feed {
        revocations,
        next_cursor: next.to_string(),
        has_more,
    })
}
