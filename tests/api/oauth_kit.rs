//! A tenant with a working token service, for the OAuth and key tests: a grant with two scopes, a
//! plain client, a resource-server (gateway) client and an API token — all minted and retrieved
//! through the console, as staff and partners do.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::partners::{PARTNER, World, mailed_link, mint, pending_request, world_with};

pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) secret: String,
}

pub(crate) struct Service {
    pub(crate) w: World,
    pub(crate) http: reqwest::Client,
    pub(crate) client: Client,
    pub(crate) gateway: Client,
    pub(crate) api_token: String,
    pub(crate) grant_page: String,
}

pub(crate) async fn service(backend: Backend) -> Service {
    service_with(backend, |_| {}).await
}

pub(crate) async fn service_with(
    backend: Backend,
    configure: impl FnOnce(&mut tokenbroker::config::Settings),
) -> Service {
    let w = world_with(backend, configure).await;
    let request = pending_request(&w).await;
    let page = format!("/t/acme/requests/{request}");
    let approved = w
        .tenant_admin
        .submit(
            &page,
            &format!("{page}/approve"),
            &[
                ("scope", "payments:read"),
                ("scope", "payments:write"),
                ("max_lifetime_days", "90"),
            ],
        )
        .await;
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let grant_page = crate::partners::approved_grant_page(&approved);
    let client = minted_client(&w, &grant_page, "client", "").await;
    let gateway = minted_client(&w, &grant_page, "resource_server", "").await;
    mint(&w, &grant_page, "api_token", "").await;
    let api_token = retrieved(&w).await.1;
    Service {
        w,
        http: reqwest::Client::new(),
        client,
        gateway,
        api_token,
        grant_page,
    }
}

pub(crate) async fn minted_client(w: &World, grant_page: &str, kind: &str, days: &str) -> Client {
    assert_eq!(
        mint(w, grant_page, kind, days).await.status(),
        StatusCode::SEE_OTHER
    );
    let (id, secret) = retrieved(w).await;
    Client {
        id: id.expect("a client id"),
        secret,
    }
}

/// Opens the latest retrieval link: (client id, secret).
async fn retrieved(w: &World) -> (Option<String>, String) {
    let link = mailed_link(&w.app, PARTNER, "/retrieve?token=").await;
    let revealed = w
        .partner
        .submit(
            &link,
            "/retrieve",
            &[("token", link.trim_start_matches("/retrieve?token="))],
        )
        .await;
    let html = revealed.text().await.unwrap();
    let document = scraper::Html::parse_document(&html);
    let value = |css: &str| {
        document
            .select(&scraper::Selector::parse(css).unwrap())
            .next()
            .and_then(|e| e.value().attr("value"))
            .map(str::to_owned)
    };
    (value("#client-id"), value("#secret").expect("a secret"))
}

impl Service {
    pub(crate) fn url(&self, path: &str) -> String {
        self.w.app.url(path)
    }

    /// POST a form to an OAuth endpoint with HTTP Basic client authentication.
    pub(crate) async fn post_basic(
        &self,
        path: &str,
        client: &Client,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("authorization", basic(&client.id, &client.secret))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn token(&self, client: &Client, form: &[(&str, &str)]) -> reqwest::Response {
        let mut form = form.to_vec();
        if !form.iter().any(|(k, _)| *k == "grant_type") {
            form.push(("grant_type", "client_credentials"));
        }
        self.post_basic("/t/acme/oauth/token", client, &form).await
    }

    /// A fresh access token for the plain client.
    pub(crate) async fn access_token(&self) -> String {
        let response = self.token(&self.client, &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Introspection by the gateway: the whole JSON answer.
    pub(crate) async fn introspect(&self, token: &str) -> Value {
        let response = self
            .post_basic(
                "/t/acme/oauth/introspect",
                &self.gateway,
                &[("token", token)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    pub(crate) async fn is_active(&self, token: &str) -> bool {
        let answer = self.introspect(token).await;
        let active = answer["active"].as_bool().unwrap();
        if !active {
            assert_eq!(
                answer,
                serde_json::json!({"active": false}),
                "nothing else disclosed"
            );
        }
        active
    }

    pub(crate) async fn jwks(&self) -> Value {
        self.http
            .get(self.url("/t/acme/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn published_kids(&self) -> Vec<String> {
        self.jwks().await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The credential id behind a client id of the acme tenant.
    pub(crate) async fn credential_of(&self, client_id: &str) -> String {
        let tenant = self.tenant().await;
        self.w
            .app
            .core
            .store
            .asserting_client(tenant, client_id)
            .await
            .unwrap()
            .unwrap()
            .0
            .credential_id
    }

    pub(crate) async fn tenant(&self) -> tokenbroker::domain::ids::TenantId {
        self.w
            .app
            .core
            .store
            .tenant_by_slug("acme")
            .await
            .unwrap()
            .unwrap()
            .id
    }
}

pub(crate) fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The decoded header and claims of a compact JWT (no verification: for looking only).
pub(crate) fn parts(token: &str) -> (Value, Value) {
    let mut pieces = token.split('.');
    let mut next = || {
        let bytes = URL_SAFE_NO_PAD.decode(pieces.next().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (next(), next())
}
