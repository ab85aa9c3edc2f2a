//! The key catalogue of a tenant: every signing key with its state, dates and usage; manual
//! rotation; and the two-person emergency replacement. Every change is behind a fresh passkey.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::clock::{Millis, duration_ms, format_utc};
use crate::domain::Core;
use crate::domain::keys::{
    self, KeyCatalogue, KeyError, KeyState, PendingKeyAction, RotationCause,
};
use crate::domain::rbac::Permission;
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
    mine: bool,
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
    let KeyCatalogue { keys, pending } = keys::catalogue(core, page.tenant.id).await?;
    let policy = core.keys.policy;
    let next_rotation = keys
        .iter()
        .map(|(k, _)| k)
        .find(|k| k.state == KeyState::Active)
        .map(|k| k.activated_at.unwrap_or(k.created_at) + duration_ms(policy.rotation_period))
        .map(format_utc);
    let pending = pending.map(|p: PendingKeyAction| PendingRow {
        mine: p.requested_by == page.current.user.id.to_string(),
        id: p.id,
        kid: p.kid,
        reason: p.reason,
        requested_by: p.requester_email,
        requested_at: format_utc(p.requested_at),
        expires_at: format_utc(p.expires_at),
    });
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
        can_replace: page.may(Permission::ReplaceKeysInEmergency),
        notice: None,
        error: None,
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
        Some("requested") => {
            Some("Emergency replacement requested. A second superadmin must approve it.")
        }
        Some("replaced") => Some("The key was dropped. Tokens it signed no longer verify."),
        Some("cancelled") => Some("The emergency replacement was cancelled."),
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
pub struct EmergencyForm {
    #[serde(default)]
    kid: String,
    #[serde(default)]
    reason: String,
}

pub async fn emergency_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    form: web::Form<EmergencyForm>,
) -> Result<HttpResponse, WebError> {
    let outcome = keys::request_emergency(
        &core,
        page.current.user.id,
        page.tenant.id,
        form.kid.trim(),
        &form.reason,
        &client,
    )
    .await;
    finish(&core, &page, outcome, "requested").await
}

pub async fn emergency_approve_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let id = &path.1;
    let outcome =
        keys::approve_emergency(&core, page.current.user.id, page.tenant.id, id, &client).await;
    finish(&core, &page, outcome, "replaced").await
}

pub async fn emergency_cancel_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let outcome = keys::cancel_emergency(
        &core,
        page.current.user.id,
        page.tenant.id,
        &path.1,
        &client,
    )
    .await;
    finish(&core, &page, outcome, "cancelled").await
}
