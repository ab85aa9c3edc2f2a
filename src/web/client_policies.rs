//! A client credential's rules in the console: the networks it may call from, its tokens per
//! minute, and whether it must prove possession of a key (DPoP). Changing them is like minting:
//! the route table asks for a fresh passkey.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::domain::Core;
use crate::domain::partners::policies::{self, ClientPolicy, PolicyChange};
use crate::web::authz::TenantPage;
use crate::web::error::WebError;
use crate::web::extractors::Client;
use crate::web::see_other;

/// A client's rules as the credential page shows them.
pub struct PolicyView {
    /// One network per line, as the form takes them.
    pub networks_text: String,
    pub networks: Vec<String>,
    pub tokens_per_minute: u32,
    pub require_dpop: bool,
}

impl From<ClientPolicy> for PolicyView {
    fn from(policy: ClientPolicy) -> Self {
        let networks = policy.network_entries();
        Self {
            networks_text: networks.join("\n"),
            networks,
            tokens_per_minute: policy.tokens_per_minute,
            require_dpop: policy.require_dpop,
        }
    }
}

/// The rules of a client credential (none for API tokens).
pub async fn policy_view(
    core: &Core,
    page: &TenantPage,
    credential: &str,
    kind: &str,
) -> Result<Option<PolicyView>, WebError> {
    if kind != "client" {
        return Ok(None);
    }
    let policy = policies::client_policy(core, page.tenant.id, credential).await?;
    Ok(Some(policy.into()))
}

#[derive(Deserialize)]
pub struct PolicyForm {
    #[serde(default)]
    networks: String,
    #[serde(default)]
    tokens_per_minute: String,
    /// A checkbox: present when ticked.
    require_dpop: Option<String>,
}

pub async fn policy_post(
    core: web::Data<Core>,
    page: TenantPage,
    Client(client): Client,
    path: web::Path<(String, String)>,
    form: web::Form<PolicyForm>,
) -> Result<HttpResponse, WebError> {
    let credential = &path.1;
    let change = PolicyChange::default()
        .networks(std::slice::from_ref(&form.networks))?
        .tokens_per_minute_text(&form.tokens_per_minute)?
        .require_dpop(form.require_dpop.is_some());
    let actor = page.current.user.id;
    policies::set_policy(&core, actor, page.tenant.id, credential, &change, &client).await?;
    Ok(see_other(&format!(
        "/t/{}/credentials/{credential}?notice=policy_changed",
        page.tenant.slug
    )))
}
