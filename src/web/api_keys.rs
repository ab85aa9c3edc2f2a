//! Account → API keys: a person's automation keys — list, create (behind a fresh passkey; shown
//! once), revoke.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::ExposeSecret;

use crate::clock::{Millis, format_utc};
use crate::domain::Core;
use crate::domain::api_keys::{self, ApiKeyError, NewApiKey, StoredApiKey};
use crate::domain::ids::TenantId;
use crate::domain::rbac::{self, Permission};
use crate::domain::tenants::{self, Tenant};
use crate::web::error::WebError;
use crate::web::extractors::{Client, CurrentUser};
use crate::web::{Nav, render, see_other};

pub struct KeyRow {
    id: String,
    name: String,
    prefix: String,
    permissions: String,
    tenants: String,
    created: String,
    expires: String,
    last_used: String,
    /// `active`, `expired` or `revoked`.
    state: &'static str,
}

impl KeyRow {
    /// `named`: the tenants the keys are limited to, to show by name.
    fn new(key: StoredApiKey, now: Millis, named: &[Tenant]) -> Self {
        let state = if key.revoked_at.is_some() {
            "revoked"
        } else if key.expires_at <= now {
            "expired"
        } else {
            "active"
        };
        Self {
            state,
            last_used: match (key.last_used_at, &key.last_used_ip) {
                (Some(at), Some(ip)) => format!("{} from {ip}", format_utc(at)),
                (Some(at), None) => format_utc(at),
                _ => "never".into(),
            },
            permissions: key.permissions.replace(',', ", "),
            tenants: key
                .tenants
                .as_deref()
                .map_or_else(|| "all yours".into(), |ids| tenant_names(ids, named)),
            created: format_utc(key.created_at),
            expires: format_utc(key.expires_at),
            prefix: key.display_prefix,
            name: key.name,
            id: key.id,
        }
    }
}

#[derive(Template)]
#[template(path = "account/api_keys.html")]
pub struct KeysPage {
    nav: Option<Nav>,
    csrf_token: String,
    keys: Vec<KeyRow>,
    /// The permissions the person holds somewhere: (name, what it allows).
    permissions: Vec<(&'static str, &'static str)>,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// "Acme, Globex" for a key limited to those tenants (by id, comma-separated).
fn tenant_names(ids: &str, named: &[Tenant]) -> String {
    ids.split(',')
        .map(|id| {
            named
                .iter()
                .find(|t| t.id.to_string() == id)
                .map_or("a removed tenant", |t| t.name.as_str())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn keys_page(core: &Core, current: &CurrentUser) -> Result<KeysPage, WebError> {
    let now = core.clock.now_ms();
    let stored = api_keys::keys_of(core, current.user.id).await?;
    let limited_to: Vec<TenantId> = stored
        .iter()
        .filter_map(|k| k.tenants.as_deref())
        .flat_map(|ids| ids.split(',').filter_map(TenantId::parse))
        .collect();
    let named = tenants::by_ids(core, &limited_to).await?;
    let keys = stored
        .into_iter()
        .map(|k| KeyRow::new(k, now, &named))
        .collect();
    Ok(KeysPage {
        nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
        csrf_token: current.csrf_token.clone(),
        keys,
        permissions: Permission::ALL
            .into_iter()
            .filter(|p| rbac::holds_anywhere(&current.user, *p))
            .map(|p| (p.as_str(), p.description()))
            .collect(),
        notice: None,
        error: None,
    })
}

#[derive(serde::Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

pub async fn list_get(
    core: web::Data<Core>,
    current: CurrentUser,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, WebError> {
    let mut page = keys_page(&core, &current).await?;
    page.notice = (query.notice.as_deref() == Some("revoked"))
        .then_some("Key revoked. It stops working at its next use.");
    render(&page, StatusCode::OK)
}

#[derive(Template)]
#[template(path = "account/api_key_created.html")]
pub struct CreatedPage {
    nav: Option<Nav>,
    name: String,
    expires: String,
    key: String,
}

fn pairs(body: &[u8]) -> Result<Vec<(String, String)>, WebError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| WebError::BadRequest("The form could not be read."))
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Creates a key (the route asks for a fresh passkey first) and shows it once.
pub async fn create_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let form = pairs(&body)?;
    let permissions: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "permission")
        .map(|(_, v)| v.clone())
        .collect();
    let new = async {
        NewApiKey::parse(field(&form, "name"), &permissions, &current.user)?
            .expiring_in(&format!("{}d", field(&form, "expires_days").trim()))?
            .only_from(&list(field(&form, "networks")))?
            .only_in(&core, &list(field(&form, "tenants")))
            .await
    }
    .await;
    let actor = crate::domain::events::Actor::User(current.user.id);
    let created = match new {
        Ok(new) => api_keys::create(&core, &current.user, new, actor, &client).await,
        Err(error) => Err(error),
    };
    match created {
        Ok((key, secret)) => render(
            &CreatedPage {
                nav: Some(Nav::for_user(&current.user, current.csrf_token.clone())),
                name: key.name,
                expires: format_utc(key.expires_at),
                key: secret.expose_secret().to_owned(),
            },
            StatusCode::OK,
        ),
        Err(ApiKeyError::Store(e)) => Err(e.into()),
        Err(error) => {
            let mut page = keys_page(&core, &current).await?;
            page.error = Some(error.to_string());
            render(&page, StatusCode::BAD_REQUEST)
        }
    }
}

pub async fn revoke_post(
    core: web::Data<Core>,
    current: CurrentUser,
    Client(client): Client,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    match api_keys::revoke(&core, current.user.id, &path, &client).await {
        Ok(()) => Ok(see_other("/account/api-keys?notice=revoked")),
        Err(ApiKeyError::NotFound) => Err(WebError::NotFound),
        Err(ApiKeyError::Store(e)) => Err(e.into()),
        Err(other) => Err(WebError::unexpected(other)),
    }
}
