//! The token endpoint's one grant, client credentials (RFC 6749 §4.4), and the tenant an endpoint
//! URL names.

use std::sync::Arc;

use super::{AuthenticatedClient, ErrorCode, IssuedAccessToken, OAuthError, ServedTenant};
use crate::domain::Core;
use crate::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use crate::domain::partners::{self, Scope};
use crate::domain::tenants;

/// The tenant named in an endpoint's URL, remembered after the first lookup. Suspension is not
/// cached here: it is checked on every use against the revocation cache.
pub async fn served_tenant(core: &Core, slug: &str) -> Result<Arc<ServedTenant>, OAuthError> {
    if let Some(tenant) = core.verified.tenant(slug) {
        return Ok(tenant);
    }
    let tenant = tenants::by_slug(core, slug)
        .await?
        .ok_or(OAuthError::UnknownTenant)?;
    let served = Arc::new(ServedTenant {
        id: tenant.id,
        slug: tenant.slug.as_str().to_owned(),
        dpop_nonce: tenant.dpop_nonce,
    });
    core.verified.remember_tenant(slug, served.clone());
    Ok(served)
}

/// A token request of an authenticated client. A refusal is recorded as an event (failed client
/// authentications are recorded where they are counted, not here).
/// With a DPoP proof (RFC 9449), the token is bound to the proof's key.
pub async fn grant_token(
    core: &Core,
    tenant: &ServedTenant,
    client: &AuthenticatedClient,
    grant_type: Option<&str>,
    scope: Option<&str>,
    dpop_proof: Option<&str>,
    context: &RequestContext,
) -> Result<IssuedAccessToken, OAuthError> {
    let issued = match grant_type {
        None => Err(OAuthError::rejected(
            ErrorCode::InvalidRequest,
            "grant_type is required.",
        )),
        Some("client_credentials") => {
            bound_token(core, tenant, client, scope, dpop_proof, context).await
        }
        Some(_) => Err(OAuthError::rejected(
            ErrorCode::UnsupportedGrantType,
            "Only the client_credentials grant is supported.",
        )),
    };
    if let Err(OAuthError::Rejected { code, .. }) = &issued {
        record_refusal(core, tenant, client, *code, context).await;
    }
    issued
}

async fn bound_token(
    core: &Core,
    tenant: &ServedTenant,
    client: &AuthenticatedClient,
    scope: Option<&str>,
    dpop_proof: Option<&str>,
    context: &RequestContext,
) -> Result<IssuedAccessToken, OAuthError> {
    let proven = match dpop_proof {
        Some(proof) => {
            let endpoint = format!("{}/oauth/token", tenant.issuer(&core.public_url));
            Some(super::verify_proof(core, tenant, proof, "POST", &endpoint).await?)
        }
        None if client.policy.require_dpop => {
            return Err(OAuthError::rejected(
                ErrorCode::InvalidDpopProof,
                "This client must send a DPoP proof with every token request.",
            ));
        }
        None => None,
    };
    let mut issued =
        super::issue_access_token(core, tenant, client, scope, proven, context).await?;
    // RFC 9449 §8.2: a fresh nonce with every answer, so the client never has to ask for one.
    if tenant.dpop_nonce {
        issued.dpop_nonce = Some(super::nonce::current(core, tenant).await?);
    }
    Ok(issued)
}

async fn record_refusal(
    core: &Core,
    tenant: &ServedTenant,
    client: &AuthenticatedClient,
    code: ErrorCode,
    context: &RequestContext,
) {
    let event = Event::new(
        core.clock.now_ms(),
        EventType::TokenRefused,
        Outcome::Failure,
        Actor::Client(client.known.credential_id.clone()),
    )
    .tenant(tenant.id)
    .context(context)
    .detail("client_id", client.client_id.as_str())
    .detail("error", code.as_str());
    if let Err(e) = core.store.append_event(&event).await {
        tracing::warn!(error = %e, "could not record a refused token request");
    }
}

/// The scope names a tenant's metadata advertises.
pub async fn scopes_supported(
    core: &Core,
    tenant: &ServedTenant,
) -> Result<Vec<String>, OAuthError> {
    Ok(partners::scopes(core, tenant.id)
        .await?
        .into_iter()
        .map(|s: Scope| s.name)
        .collect())
}
