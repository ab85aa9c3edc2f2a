//! The key catalogue of a tenant: every signing key with its state, dates and usage; manual
//! rotation; and the two-person emergency replacement. Every change is behind a fresh passkey.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::{Millis, duration_ms, format_utc};
use crate::domain::Core;
use crate::domain::approvals::{self, Action, Approval, ApprovalError};
use crate::domain::keys::{self, KeyCatalogue, KeyError, KeyState, RotationCause};
use crate::domain::principal::Principal;
use crate::domain::rbac::Permission;
use crate::domain::tenants;
use crate::domain::users;
use crate::web::approvals::{refusal_status, requested};
use crate::web::authz::TenantPage;
use crate::web::error::WebError;
use crate::web::extractors::Client;
use crate::web::{Nav, render, see_other};

pub struct KeyRow {
    kid: String,
    algorithm: String,
    state: &'static str,
    created: String,
    /// Published-only keys: when they may start signing.
    usable_from: Option<String>,
    activated: Option<String>,
    retiring: Option<String>,
    retire_after: Option<String>,
    retired: Option<String>,
    retired_reason: Option<String>,
    tokens_signed: i64,
    last_expiry: Option<String>,
    droppable: bool,
}

pub struct PendingRow {
    id: String,
    kid: String,
    reason: String,
    requested_by: String,
    requested_at: String,
    expires_at: String,
}

#[derive(Template)]
#[template(path = "keys/catalogue.html")]
pub struct CataloguePage {
    nav: Option<Nav>,
    csrf_token: String,
    slug: String,
    keys: Vec<KeyRow>,
    jwks_max_age_secs: u64,
    prepublication: String,
    token_lifetime: String,
    rotation_period_days: u64,
    next_rotation: Option<String>,
    pending: Option<PendingRow>,
    can_rotate: bool,
    can_replace: bool,
    /// DPoP proofs at the token endpoint must carry a server nonce.
    dpop_nonce: bool,
    /// Someone besides this person could approve an emergency replacement.
    second_person: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn when(ms: Option<Millis>) -> Option<String> {
    ms.map(format_utc)
}

fn minutes(duration: std::time::Duration) -> String {
    format!("{} min", duration.as_secs().div_ceil(60))
}

async fn catalogue(core: &Core, page: &TenantPage) -> Result<CataloguePage, WebError> {
    let KeyCatalogue { keys } = keys::catalogue(core, page.tenant.id).await?;
    let policy = core.keys.policy;
    let next_rotation = keys
        .iter()
        .map(|(k, _)| k)
        .find(|k| k.state == KeyState::Active)
        .map(|k| k.activated_at.unwrap_or(k.created_at) + duration_ms(policy.rotation_period))
        .map(format_utc);
    let pending = match approvals::pending_key_replacement(core, page.tenant.id).await? {
        Some(approval) => Some(pending_row(core, approval).await?),
        None => None,
    };
    // Any droppable key stands for all: who may approve does not depend on which.
    let example = Action::ReplaceSigningKey {
        tenant: page.tenant.id,
        kid: String::new(),
    };
    let second_person = approvals::second_person_exists(core, &page.current.user, &example).await?;
    let keys = keys
        .into_iter()
        .map(|(k, used)| KeyRow {
            droppable: k.state != KeyState::Retired,
            usable_from: (k.state == KeyState::Next).then(|| format_utc(k.usable_from)),
            activated: when(k.activated_at),
            retiring: when(k.retiring_at),
            retire_after: when(k.retire_after),
            retired: when(k.retired_at),
            retired_reason: k.retired_reason,
            tokens_signed: used.tokens_signed,
            last_expiry: when(used.last_expiry),
            created: format_utc(k.created_at),
            kid: k.kid,
            algorithm: k.algorithm,
            state: k.state.as_str(),
        })
        .collect();
    Ok(CataloguePage {
        nav: Some(Nav::in_tenant(&page.current, &page.tenant)),
        csrf_token: page.current.csrf_token.clone(),
        slug: page.tenant.slug.to_string(),
        keys,
        jwks_max_age_secs: policy.jwks_max_age.as_secs(),
        prepublication: minutes(policy.prepublication()),
        token_lifetime: minutes(policy.token_lifetime),
        rotation_period_days: policy.rotation_period.as_secs() / 86_400,
        next_rotation,
        pending,
        can_rotate: page.may(Permission::RotateKeys),
        dpop_nonce: page.tenant.dpop_nonce,
        can_replace: page.may(Permission::ReplaceKeysInEmergency),
        second_person,
        notice: None,
        error: None,
    })
}

async fn pending_row(core: &Core, approval: Approval) -> Result<PendingRow, WebError> {
    let requester = users::find(core, approval.requested_by)
        .await?
        .map_or_else(|| approval.requested_by.to_string(), |u| u.email);
    let kid = match &approval.action {
        Action::ReplaceSigningKey { kid, .. } => kid.clone(),
        _ => String::new(),
    };
    Ok(PendingRow {
        id: approval.id,
        kid,
        reason: approval.reason,
        requested_by: requester,
        requested_at: format_utc(approval.requested_at),
        expires_at: format_utc(approval.expires_at),
    })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn catalogue_get(
    core: web::Data<Core>,
    page: TenantPage,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let mut view = catalogue(&core, &page).await?;
    view.notice = match query.notice.as_deref() {
        Some("rotated") => {
            Some("The key was rotated. The previous key keeps verifying until its tokens expire.")
        }
        Some("dpop_nonce") => Some("Saved: the token endpoint applies it from the next request."),
        _ => None,
    };
    render(&view, StatusCode::OK)
}

/// Outcome of a key change: back to the catalogue with a notice, or the page with the reason.
async fn finish(
    core: &Core,
    page: &TenantPage,
    outcome: Result<(), KeyError>,
    notice: &str,
) -> Result<HttpResponse, WebError> {
    match outcome {
        Ok(()) => Ok(see_other(&format!(
            "/t/{}/keys?notice={notice}",
            page.tenant.slug
        ))),
        Err(KeyError::Refused(reason)) => {
            let mut view = catalogue(core, page).await?;
            view.error = Some(reason);
            render(&view, StatusCode::CONFLICT)
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn rotate_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
) -> Result<HttpResponse, WebError> {
    let cause = RotationCause::Manual(page.current.user.id, client);
    let outcome = keys::rotate(&core, page.tenant.id, cause).await.map(|_| ());
    finish(&core, &page, outcome, "rotated").await
}

#[derive(Deserialize)]
pub struct DpopNonceForm {
    /// A checkbox: present when ticked.
    required: Option<String>,
}

/// Whether DPoP proofs must carry a server nonce (RFC 9449 §8).
pub async fn dpop_nonce_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    form: web::Form<DpopNonceForm>,
) -> Result<HttpResponse, WebError> {
    let required = form.required.is_some();
    tenants::set_dpop_nonce(&core, page.current.user.id, &page.tenant, required, &client).await?;
    Ok(see_other(&format!(
        "/t/{}/keys?notice=dpop_nonce",
        page.tenant.slug
    )))
}

#[derive(Deserialize)]
pub struct EmergencyForm {
    #[serde(default)]
    kid: String,
    #[serde(default)]
    reason: String,
}

/// Asks for dropping a key at once; a second superadmin approves on the request's page.
pub async fn emergency_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    form: web::Form<EmergencyForm>,
) -> Result<HttpResponse, WebError> {
    let action = Action::ReplaceSigningKey {
        tenant: page.tenant.id,
        kid: form.kid.trim().to_owned(),
    };
    match approvals::request(
        &core,
        Principal::Person(&page.current.user),
        action,
        &form.reason,
        &client,
    )
    .await
    {
        Ok(approval) => Ok(requested(&approval)),
        Err(error @ (ApprovalError::Store(_) | ApprovalError::Keys(_))) => Err(error.into()),
        Err(error) => {
            let mut view = catalogue(&core, &page).await?;
            let status = refusal_status(&error);
            view.error = Some(error.to_string());
            render(&view, status)
        }
    }
}
