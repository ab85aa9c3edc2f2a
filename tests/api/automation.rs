//! The automation API through real HTTP: keys act as their owner within the key's permissions and
//! tenants, use the console's own use cases (the same events), and every error is a problem
//! document.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenbroker::domain::api_keys::{self, NewApiKey};
use tokenbroker::domain::email::Email;
use tokenbroker::domain::events::{Actor, RequestContext};
use tokenbroker::domain::idempotency;
use tokenbroker::domain::rbac::{Permission, may};
use tokenbroker::domain::tenants;
use tokenbroker::domain::users;
use tokenbroker::web::authz::Access;
use tokenbroker::web::routes::route_table;

use crate::cli::tokenbroker;
use crate::helpers::*;
use crate::on_both_backends;
use crate::partners::{World, pending_request, world};
use crate::staff_kit::*;

/// A key for `email` with `permissions` (names, or `all`), optionally only in some tenants.
pub(crate) async fn key_for(
    app: &TestApp,
    email: &str,
    permissions: &[&str],
    only: &[&str],
) -> String {
    let email = Email::parse(email).unwrap();
    let owner = users::by_email(&app.core, &email).await.unwrap().unwrap();
    let permissions: Vec<String> = permissions.iter().map(|p| (*p).to_owned()).collect();
    let mut new = NewApiKey::parse("test key", &permissions, &owner).unwrap();
    if !only.is_empty() {
        let mut ids = Vec::new();
        for slug in only {
            ids.push(tenants::by_slug(&app.core, slug).await.unwrap().unwrap().id);
        }
        new.tenants = Some(ids);
    }
    let context = RequestContext::default();
    let (_, key) = api_keys::create(&app.core, &owner, new, Actor::Cli, &context)
        .await
        .unwrap();
    secrecy::ExposeSecret::expose_secret(&key).to_owned()
}

pub(crate) struct Api<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) key: String,
}

impl Api<'_> {
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.key)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
    }

    /// A credential of tenant `acme` as the API shows it (policy, keys, status).
    pub(crate) async fn credential_detail(&self, credential: &str) -> Value {
        self.get(&format!("/api/v1/tenants/acme/credentials/{credential}"))
            .await
            .json()
            .await
            .unwrap()
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

pub(crate) async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().unwrap().starts_with("https://"));
    assert!(!body["title"].as_str().unwrap().is_empty());
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    body
}

async fn a_support_script_approves_mints_and_revokes_through_the_console_use_cases(
    backend: Backend,
) {
    let w: World = world(backend).await;
    let request = pending_request(&w).await;
    staff_member(&w.app, "lead@example.com", "tenant_admin", Some("acme")).await;
    let api = Api {
        app: &w.app,
        key: key_for(&w.app, "lead@example.com", &["all"], &[]).await,
    };

    let me: Value = api.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["email"], "lead@example.com");
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("decide_requests"))
    );

    let listed: Value = api
        .get("/api/v1/tenants/acme/requests?status=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], request.as_str());
    let approved = api
        .post(
            &format!("/api/v1/tenants/acme/requests/{request}/approve"),
            json!({ "scopes": ["payments:read"], "max_lifetime_days": 60 }),
        )
        .await;
    assert_eq!(approved.status(), StatusCode::OK);
    let grant = approved.json::<Value>().await.unwrap()["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = api
        .post(
            &format!("/api/v1/tenants/acme/requests/{request}/approve"),
            json!({ "scopes": ["payments:read"], "max_lifetime_days": 60 }),
        )
        .await;
    problem(again, StatusCode::CONFLICT).await;

    // A tenant admin may not mint (as in the console); support may.
    let refused = api
        .post(
            &format!("/api/v1/tenants/acme/grants/{grant}/credentials"),
            json!({ "kind": "api_token" }),
        )
        .await;
    let body = problem(refused, StatusCode::FORBIDDEN).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("mint_credentials")
    );
    let support = Api {
        app: &w.app,
        key: key_for(&w.app, "sup@example.com", &["all"], &[]).await,
    };
    let minted = support
        .post(
            &format!("/api/v1/tenants/acme/grants/{grant}/credentials"),
            json!({ "kind": "client", "lifetime_days": 30 }),
        )
        .await;
    assert_eq!(minted.status(), StatusCode::CREATED);
    let minted: Value = minted.json().await.unwrap();
    assert_eq!(minted["delivery"], "email");
    assert!(
        !minted.to_string().contains("tbs_"),
        "no secret in a response"
    );
    let credential = minted["id"].as_str().unwrap().to_owned();

    let listed: Value = support
        .get(&format!("/api/v1/tenants/acme/credentials?grant={grant}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], credential.as_str());
    assert_eq!(listed["items"][0]["status"], "active");
    let revoked = support
        .post(
            &format!("/api/v1/tenants/acme/credentials/{credential}/revoke"),
            json!({ "reason": "rotating integrations" }),
        )
        .await;
    assert_eq!(revoked.json::<Value>().await.unwrap()["revoked_now"], true);

    // A second credential, then the whole grant at once (the slug typed again).
    let second = support
        .post(
            &format!("/api/v1/tenants/acme/grants/{grant}/credentials"),
            json!({ "kind": "api_token" }),
        )
        .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let unconfirmed = support
        .post(
            &format!("/api/v1/tenants/acme/grants/{grant}/revoke"),
            json!({ "reason": "contract ended", "confirm_slug": "acne" }),
        )
        .await;
    problem(unconfirmed, StatusCode::UNPROCESSABLE_ENTITY).await;
    let bulk: Value = support
        .post(
            &format!("/api/v1/tenants/acme/grants/{grant}/revoke"),
            json!({ "reason": "contract ended", "confirm_slug": "acme" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bulk["credentials_revoked"], 1);

    // The log has the console's events, by the owner, naming the key.
    let events = w.app.events().await;
    for kind in [
        "request_approved",
        "credential_minted",
        "credential_revoked",
    ] {
        let event = events.iter().find(|e| e.event_type == kind).unwrap();
        assert_eq!(event.actor_kind, "user", "{kind}");
        assert!(
            event.details.contains("\"api_key\""),
            "{kind}: {}",
            event.details
        );
    }
}

async fn tenants_and_scopes_are_managed_by_key(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let api = Api {
        app: &app,
        key: key_for(
            &app,
            ADMIN_EMAIL,
            &["manage_tenants", "enter_tenant", "manage_scopes"],
            &[],
        )
        .await,
    };
    let created = api
        .post(
            "/api/v1/tenants",
            json!({ "name": "Initech", "slug": "initech", "colour": "#112233" }),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await.unwrap()["slug"], "initech");
    let taken = api
        .post(
            "/api/v1/tenants",
            json!({ "name": "Again", "slug": "initech" }),
        )
        .await;
    problem(taken, StatusCode::CONFLICT).await;
    let renamed: Value = api
        .request(reqwest::Method::PATCH, "/api/v1/tenants/initech")
        .json(&json!({ "name": "Initech Corp", "colour": "#abcdef" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["name"], "Initech Corp");
    assert_eq!(renamed["colour"], "#abcdef");
    assert_eq!(renamed["slug"], "initech");
    let bad_colour = api
        .request(reqwest::Method::PATCH, "/api/v1/tenants/initech")
        .json(&json!({ "colour": "red" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(bad_colour, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "colour"
    );
    let bad_slug = api
        .post(
            "/api/v1/tenants",
            json!({ "name": "X", "slug": "No Spaces" }),
        )
        .await;
    assert_eq!(
        problem(bad_slug, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "slug"
    );

    let scope = api
        .post(
            "/api/v1/tenants/initech/scopes",
            json!({ "name": "reports:read", "description": "Read reports" }),
        )
        .await;
    assert_eq!(scope.status(), StatusCode::CREATED);
    let id = scope.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let removed = api
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/tenants/initech/scopes/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let list: Value = api
        .get("/api/v1/tenants/initech/scopes")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]));
    let kinds: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    for kind in [
        "tenant_created",
        "tenant_updated",
        "scope_added",
        "scope_removed",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}");
    }
}

async fn tenant_lists_page_through_everything_the_key_may_see(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    for i in 0..7 {
        create_tenant(
            &app,
            &format!("Tenant {i}"),
            &format!("tenant-{i}"),
            "#123456",
            None,
        )
        .await;
    }
    let everything = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["enter_tenant"], &[]).await,
    };
    let mut seen = Vec::new();
    let mut path = "/api/v1/tenants?limit=3".to_owned();
    loop {
        let page: Value = everything.get(&path).await.json().await.unwrap();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["slug"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/tenants?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("tenant-{i}")).collect();
    assert_eq!(seen, expected);

    let two = Api {
        app: &app,
        key: key_for(
            &app,
            ADMIN_EMAIL,
            &["enter_tenant"],
            &["tenant-2", "tenant-5"],
        )
        .await,
    };
    let page: Value = two
        .get("/api/v1/tenants?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["slug"], "tenant-2");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let page: Value = two
        .get(&format!("/api/v1/tenants?limit=1&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["slug"], "tenant-5");
    assert!(page["next_cursor"].is_null());
    problem(
        two.get("/api/v1/tenants/tenant-3").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        everything.get("/api/v1/tenants?limit=501").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

async fn bad_keys_and_bad_bodies_get_problems_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let key = key_for(&app, ADMIN_EMAIL, &["all"], &[]).await;
    let api = Api {
        app: &app,
        key: key.clone(),
    };

    let anonymous = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert!(anonymous.headers().contains_key("www-authenticate"));
    problem(anonymous, StatusCode::UNAUTHORIZED).await;
    // A signed-in console session is not a key.
    problem(app.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    // One character changed (never "changed" to itself: a key may end in either letter).
    let replacement = if key.ends_with('x') { 'y' } else { 'x' };
    let typo = format!("{}{replacement}", &key[..key.len() - 1]);
    let mistyped = Api {
        app: &app,
        key: typo,
    };
    problem(mistyped.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    let by_header = app
        .client
        .get(app.url("/api/v1/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), StatusCode::OK);

    let unknown_field = api
        .post(
            "/api/v1/tenants",
            json!({ "name": "Globex", "slug": "globex", "color": "#123456" }),
        )
        .await;
    let body = problem(unknown_field, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "color");
    let wrong_type = api
        .post("/api/v1/tenants", json!({ "name": 7, "slug": "globex" }))
        .await;
    problem(wrong_type, StatusCode::UNPROCESSABLE_ENTITY).await;
    let not_json = api
        .request(reqwest::Method::POST, "/api/v1/tenants")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    problem(not_json, StatusCode::BAD_REQUEST).await;
    let form = api
        .request(reqwest::Method::POST, "/api/v1/tenants")
        .form(&[("name", "Globex"), ("slug", "globex")])
        .send()
        .await
        .unwrap();
    problem(form, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // On its own connection: the server answers 413 without reading the body and closes it.
    let huge = reqwest::Client::new()
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(&key)
        .json(&json!({ "name": "x".repeat(200_000), "slug": "globex" }))
        .send()
        .await
        .unwrap();
    problem(huge, StatusCode::PAYLOAD_TOO_LARGE).await;
    problem(
        api.get("/api/v1/no-such-thing").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // A NUL byte (PostgreSQL cannot store one) is the caller's mistake, never a server error.
    let nul_search = api.get("/api/v1/tenants?q=a%00b").await.status();
    assert!(!nul_search.is_server_error(), "{nul_search}");
    let nul_name = api
        .post(
            "/api/v1/tenants",
            json!({ "name": "Nul\u{0}name", "slug": "nul-name" }),
        )
        .await
        .status();
    assert!(!nul_name.is_server_error(), "{nul_name}");
    assert!(
        tenants::by_slug(&app.core, "globex")
            .await
            .unwrap()
            .is_none()
    );

    // Revoked and expired keys stop at once.
    let owner = user_id(&app, ADMIN_EMAIL).await;
    let listed = api_keys::keys_of(&app.core, owner).await.unwrap();
    api_keys::revoke(&app.core, owner, &listed[0].id, &RequestContext::default())
        .await
        .unwrap();
    problem(api.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    let short_lived = key_for(&app, ADMIN_EMAIL, &["all"], &[]).await;
    let short = Api {
        app: &app,
        key: short_lived,
    };
    assert_eq!(short.get("/api/v1/me").await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(91 * 24 * 3600));
    problem(short.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    let refusals = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "api_key_refused")
        .count();
    assert_eq!(refusals, 3, "a mistyped, a revoked and an expired key");
    assert!(
        app.events()
            .await
            .iter()
            .all(|e| !e.details.contains(&key[9..])),
        "no key in the log"
    );
}

async fn a_key_is_only_as_strong_as_its_owner_is_now(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    staff_member(&app, "sup@example.com", "support", Some("acme")).await;
    let api = Api {
        app: &app,
        key: key_for(&app, "sup@example.com", &["all"], &[]).await,
    };
    assert_eq!(
        api.get("/api/v1/tenants/acme/credentials").await.status(),
        StatusCode::OK
    );
    problem(
        api.get("/api/v1/tenants/globex/credentials").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Support cannot be given what support does not hold.
    let owner = users::by_email(&app.core, &Email::parse("sup@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let too_much = NewApiKey::parse("too much", &["manage_tenants".to_owned()], &owner);
    let refused = api_keys::create(
        &app.core,
        &owner,
        too_much.unwrap(),
        Actor::Cli,
        &RequestContext::default(),
    )
    .await;
    assert!(refused.is_err());

    // Removing the role narrows the key at once.
    let id = user_id(&app, "sup@example.com").await;
    let assignment = owner.roles[0].id.clone();
    app.submit(
        &format!("/admin/users/{id}"),
        &format!("/admin/users/{id}/roles/{assignment}/revoke"),
        &[],
    )
    .await;
    problem(
        api.get("/api/v1/tenants/acme/credentials").await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn the_openapi_document_lists_exactly_the_registered_api_routes(backend: Backend) {
    let app = spawn_app(backend).await;
    let document: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let schemes = &document["components"]["securitySchemes"];
    assert!(schemes["bearer"].is_object() && schemes["api_key"].is_object());
    let mut documented = BTreeSet::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let registered: BTreeSet<String> = route_table()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/") && r.access.is_key())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(documented, registered);
}

async fn the_reference_page_documents_every_operation_from_the_console_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = app.client.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") || csp.contains("default-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    let document = scraper::Html::parse_document(&html);
    let scripts = scraper::Selector::parse("script[src], link[href]").unwrap();
    for element in document.select(&scripts) {
        let source = element
            .value()
            .attr("src")
            .or(element.value().attr("href"))
            .unwrap();
        assert!(
            source.starts_with('/'),
            "{source} is not served by the console"
        );
    }
    let headings = all_text_of(&html, "article.operation h3");
    let registered: BTreeSet<String> = route_table()
        .into_iter()
        .filter(|r| r.access.is_key())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(headings.into_iter().collect::<BTreeSet<_>>(), registered);
    assert!(html.contains("id=\"schema-NewTenantBody\""));
}

async fn each_key_has_its_own_budget_per_minute(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.api_rate_limit = 3).await;
    app.create_admin().await;
    let busy = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let other = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    for remaining in ["2", "1", "0"] {
        let ok = busy.get("/api/v1/me").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()["ratelimit-limit"], "3");
        assert_eq!(ok.headers()["ratelimit-remaining"], remaining);
    }
    let limited = busy.get("/api/v1/me").await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(other.get("/api/v1/me").await.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(61));
    assert_eq!(busy.get("/api/v1/me").await.status(), StatusCode::OK);
}

async fn a_retried_create_with_its_idempotency_key_creates_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let api = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let create = |key: &'static str, body: Value| {
        api.request(reqwest::Method::POST, "/api/v1/tenants")
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let tenant = json!({ "name": "Initech", "slug": "initech" });
    let first = create("create-initech-1", tenant.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = create("create-initech-1", tenant.clone()).await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    let created = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "tenant_created")
        .count();
    assert_eq!(created, 1, "one tenant, however often the script retries");

    let reused = create(
        "create-initech-1",
        json!({ "name": "Other", "slug": "other" }),
    )
    .await
    .unwrap();
    assert_eq!(
        problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "Idempotency-Key"
    );
    assert!(
        tenants::by_slug(&app.core, "other")
            .await
            .unwrap()
            .is_none()
    );
    // Without the header the second create is a conflict, as it should be.
    let again = api.post("/api/v1/tenants", tenant).await;
    problem(again, StatusCode::CONFLICT).await;
}

async fn the_event_log_pages_by_cursor_with_the_consoles_filters(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    for slug in ["acme", "globex", "initech"] {
        create_tenant(&app, slug, slug, "#123456", None).await;
    }
    let api = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let mut seen = Vec::new();
    let mut path = "/api/v1/events?type=tenant_created&limit=2".to_owned();
    loop {
        let page: Value = api.get(&path).await.json().await.unwrap();
        for event in page["items"].as_array().unwrap() {
            assert_eq!(event["type"], "tenant_created");
            assert!(event["details"].is_object());
            seen.push(event["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/events?type=tenant_created&limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "every tenant_created once: {seen:?}");
    let acme: Value = api
        .get("/api/v1/tenants/acme/events?type=tenant_created")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acme["items"].as_array().unwrap().len(), 1);
    let export = api.get("/api/v1/events/export?type=tenant_created").await;
    assert_eq!(export.headers()["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = export
        .text()
        .await
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|e| e["event_type"] == "tenant_created"));
    let bad = api.get("/api/v1/events?from=yesterday").await;
    assert_eq!(
        problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await["field"],
        "from"
    );
    let support_key = {
        staff_member(&app, "sup@example.com", "support", Some("acme")).await;
        key_for(&app, "sup@example.com", &["all"], &[]).await
    };
    let support = Api {
        app: &app,
        key: support_key,
    };
    problem(support.get("/api/v1/events").await, StatusCode::FORBIDDEN).await;
    assert_eq!(
        support.get("/api/v1/tenants/acme/events").await.status(),
        StatusCode::OK
    );
}

async fn security_works_the_alert_queue_by_key(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    staff_member(&app, "sec@example.com", "security", None).await;
    let user = tokenbroker::domain::ids::UserId::new();
    let used = tokenbroker::domain::events::Event::new(
        app.now_ms(),
        tokenbroker::domain::events::EventType::RecoveryCodeUsed,
        tokenbroker::domain::events::Outcome::Success,
        Actor::User(user),
    )
    .subject(user);
    app.core.store.append_event(&used).await.unwrap();
    // The detectors read events once they have settled.
    app.clock.advance(Duration::from_secs(3));
    app.run_job(tokenbroker::jobs::Job::Detect).await;
    let api = Api {
        app: &app,
        key: key_for(&app, "sec@example.com", &["all"], &[]).await,
    };
    let queue: Value = api.get("/api/v1/alerts").await.json().await.unwrap();
    let alert = queue["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(queue["items"][0]["severity"], "high");
    let path = format!("/api/v1/alerts/{alert}");
    let taken: Value = api
        .post(&path, json!({ "assign_to_me": true }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(taken["alert"]["assignee_email"], "sec@example.com");
    assert_eq!(taken["evidence"][0]["type"], "recovery_code_used");
    let noted: Value = api
        .post(&path, json!({ "note": "called the user; it was them" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(noted["notes"][0]["body"], "called the user; it was them");
    let resolved: Value = api
        .post(&path, json!({ "status": "resolved" }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["alert"]["status"], "resolved");
    let two_at_once = api
        .post(&path, json!({ "status": "resolved", "note": "x" }))
        .await;
    problem(two_at_once, StatusCode::UNPROCESSABLE_ENTITY).await;
    let open: Value = api.get("/api/v1/alerts").await.json().await.unwrap();
    assert_eq!(open["items"], json!([]));
    let all: Value = api
        .get("/api/v1/alerts?all=true")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    problem(
        api.get("/api/v1/alerts/00000000-0000-4000-8000-000000000000")
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn keys_rotate_and_an_emergency_needs_a_second_person(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let second_browser = staff_member(&app, "second@example.com", "superadmin", None).await;
    let first = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let second = Api {
        app: &app,
        key: key_for(&app, "second@example.com", &["all"], &[]).await,
    };
    let active = |catalogue: &Value| {
        catalogue["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["state"] == "active")
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let before: Value = first
        .get("/api/v1/tenants/acme/keys")
        .await
        .json()
        .await
        .unwrap();
    let too_soon = first
        .post("/api/v1/tenants/acme/keys/rotate", json!({}))
        .await;
    let body = problem(too_soon, StatusCode::CONFLICT).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("can take over from")
    );
    // Once gateways can have fetched the next key (twice the JWKS max-age), it may take over.
    app.clock.advance(Duration::from_secs(11 * 60));
    let rotated = first
        .post("/api/v1/tenants/acme/keys/rotate", json!({}))
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let after: Value = rotated.json().await.unwrap();
    assert_ne!(active(&before), active(&after));

    let requested = first
        .post(
            "/api/v1/tenants/acme/keys/emergency",
            json!({ "kid": active(&after), "reason": "private key found in a public repository" }),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let approval: Value = requested.json().await.unwrap();
    assert_eq!(approval["kind"], "replace_signing_key");
    assert_eq!(approval["status"], "pending");
    let id = approval["id"].as_str().unwrap().to_owned();
    assert!(
        approval["console_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/approvals/{id}"))
    );
    // The second person sees it waiting, by key; the catalogue names it.
    let waiting: Value = second.get("/api/v1/approvals").await.json().await.unwrap();
    assert_eq!(waiting["items"][0]["id"], id.as_str());
    let catalogue: Value = first
        .get("/api/v1/tenants/acme/keys")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(catalogue["pending_replacement"]["id"], id.as_str());
    // Approving needs a passkey: the second superadmin does it in the console.
    assert_redirect_to(
        &approve(&second_browser, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    let replaced: Value = first
        .get("/api/v1/tenants/acme/keys")
        .await
        .json()
        .await
        .unwrap();
    assert!(replaced["pending_replacement"].is_null());
    assert_ne!(active(&replaced), active(&after));
    let done: Value = first
        .get(&format!("/api/v1/approvals/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "executed");
}

async fn staff_are_invited_given_roles_and_deactivated_by_key(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let api = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let invited = api
        .post(
            "/api/v1/staff/invitations",
            json!({ "email": "new@example.com", "display_name": "New Person",
                    "role": "support", "tenant": "acme" }),
        )
        .await;
    // Nothing waits for a second person: created, not accepted for later.
    assert_eq!(invited.status(), StatusCode::CREATED);
    let invited: Value = invited.json().await.unwrap();
    assert_eq!(invited["delivery"], "email");
    let link = invitation_link(&app, "new@example.com").await;
    assert!(link.contains("/invite?token="));
    let pending: Value = api
        .get("/api/v1/staff/invitations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["items"][0]["email"], "new@example.com");
    let invitation = pending["items"][0]["id"].as_str().unwrap().to_owned();
    let withdrawn = api
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/staff/invitations/{invitation}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), StatusCode::NO_CONTENT);
    let link_path = link
        .split_once("/invite")
        .map(|(_, rest)| format!("/invite{rest}"))
        .unwrap();
    assert_eq!(
        app.new_browser().get(&link_path).await.status(),
        StatusCode::GONE
    );
    let duplicate = api
        .post(
            "/api/v1/staff/invitations",
            json!({ "email": ADMIN_EMAIL, "display_name": "Me", "role": "security" }),
        )
        .await;
    problem(duplicate, StatusCode::CONFLICT).await;

    staff_member(&app, "sup@example.com", "support", Some("acme")).await;
    let id = user_id(&app, "sup@example.com").await;
    let person_key = key_for(&app, "sup@example.com", &["all"], &[]).await;
    let granted: Value = api
        .post(
            &format!("/api/v1/staff/{id}/roles"),
            json!({ "role": "tenant_admin", "tenant": "acme" }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(granted["roles"].as_array().unwrap().len(), 2);
    let global_with_tenant = api
        .post(
            &format!("/api/v1/staff/{id}/roles"),
            json!({ "role": "security", "tenant": "acme" }),
        )
        .await;
    problem(global_with_tenant, StatusCode::UNPROCESSABLE_ENTITY).await;
    let assignment = granted["roles"][0]["id"].as_str().unwrap().to_owned();
    let removed = api
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/staff/{id}/roles/{assignment}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        removed.json::<Value>().await.unwrap()["roles"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let listed: Value = api.get("/api/v1/staff").await.json().await.unwrap();
    assert!(listed["items"].as_array().unwrap().len() >= 2);
    let deactivated: Value = api
        .post(&format!("/api/v1/staff/{id}/deactivate"), json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deactivated["status"], "deactivated");
    let theirs = Api {
        app: &app,
        key: person_key,
    };
    problem(theirs.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    let own = user_id(&app, ADMIN_EMAIL).await;
    problem(
        api.post(&format!("/api/v1/staff/{own}/deactivate"), json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

async fn an_idempotency_key_left_by_a_request_that_never_answered_is_free_after_its_lease(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let api = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let me: Value = api.get("/api/v1/me").await.json().await.unwrap();
    let key_id = me["key_id"].as_str().unwrap();
    let body = r#"{"name":"Initech","slug":"initech"}"#;
    // An instance claimed the key for this very request, then died before answering.
    let print = idempotency::fingerprint("POST", "/api/v1/tenants", body.as_bytes());
    let claimed = idempotency::claim(&app.core, key_id, "create-initech", &print)
        .await
        .unwrap();
    assert_eq!(claimed, idempotency::Claim::First);
    let create = || {
        api.request(reqwest::Method::POST, "/api/v1/tenants")
            .header("Idempotency-Key", "create-initech")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    problem(create().await.unwrap(), StatusCode::CONFLICT).await;
    app.clock
        .advance(idempotency::LEASE + Duration::from_secs(1));
    let retried = create().await.unwrap();

    assert_eq!(retried.status(), StatusCode::CREATED, "the retry runs");
    let replayed = create().await.unwrap();
    assert_eq!(replayed.status(), StatusCode::CREATED);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let created = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "tenant_created")
        .count();
    assert_eq!(created, 1);
}

async fn a_key_guessing_run_is_throttled_and_raises_an_alert_but_never_locks_out_a_valid_key(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let guesser = Api {
        app: &app,
        key: "tba_live_notarealkeyatall".into(),
    };
    for _ in 0..api_keys::FAILURES_PER_MINUTE {
        problem(guesser.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    }
    for _ in 0..5 {
        let throttled = guesser.get("/api/v1/me").await;
        assert!(throttled.headers().contains_key("retry-after"));
        problem(throttled, StatusCode::TOO_MANY_REQUESTS).await;
    }
    let refusals = |events: Vec<tokenbroker::domain::events::EventRecord>| {
        events
            .iter()
            .filter(|e| e.event_type == "api_key_refused")
            .count()
    };
    assert_eq!(
        refusals(app.events().await),
        usize::try_from(api_keys::FAILURES_PER_MINUTE).unwrap(),
        "guesses past the limit are turned away without being recorded one by one"
    );
    // A colleague's real key from the same address (an office, a proxy) works all along.
    let good = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    assert_eq!(good.get("/api/v1/me").await.status(), StatusCode::OK);
    problem(
        guesser.get("/api/v1/me").await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    app.clock.advance(Duration::from_secs(61));
    problem(guesser.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;

    app.run_job(tokenbroker::jobs::Job::Detect).await;
    let alerts = tokenbroker::domain::alerts::queue(&app.core, None, true, None, 10)
        .await
        .unwrap();
    let alert = alerts
        .alerts
        .iter()
        .find(|a| a.detector == "api_key_guessing")
        .expect("an alert for the guessing run");
    assert_eq!(alert.severity.as_str(), "high");
}

async fn a_script_can_take_the_retrieval_link_instead_of_the_partner_mail(backend: Backend) {
    let w: World = world(backend).await;
    let request = pending_request(&w).await;
    let admin = Api {
        app: &w.app,
        key: key_for(&w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let approved: Value = admin
        .post(
            &format!("/api/v1/tenants/acme/requests/{request}/approve"),
            json!({ "scopes": ["payments:read"], "max_lifetime_days": 30 }),
        )
        .await
        .json()
        .await
        .unwrap();
    let grant = approved["grant_id"].as_str().unwrap().to_owned();
    let mails_before = crate::partners::mails_to(&w.app, crate::partners::PARTNER)
        .await
        .len();
    let mint = |idempotency: &'static str| {
        admin
            .request(
                reqwest::Method::POST,
                &format!("/api/v1/tenants/acme/grants/{grant}/credentials"),
            )
            .header("Idempotency-Key", idempotency)
            .json(&json!({ "kind": "api_token", "delivery": "link" }))
            .send()
    };
    let minted: Value = mint("mint-1").await.unwrap().json().await.unwrap();
    assert_eq!(minted["delivery"], "link");
    let link = minted["retrieval_link"].as_str().unwrap().to_owned();
    assert!(link.contains("/retrieve?token="));
    assert_eq!(
        crate::partners::mails_to(&w.app, crate::partners::PARTNER)
            .await
            .len(),
        mails_before,
        "no mail: the caller delivers the link"
    );
    // A retry does not mint again, and the link is not kept anywhere to be replayed.
    let retry = mint("mint-1").await.unwrap();
    let body = problem(retry, StatusCode::CONFLICT).await;
    assert!(!body.to_string().contains("token="));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let owner = user_id(&w.app, ADMIN_EMAIL).await;
    let key_id = api_keys::keys_of(&w.app.core, owner).await.unwrap()[0]
        .id
        .clone();
    let kept = w
        .app
        .core
        .store
        .remembered_request(&key_id, "mint-1")
        .await
        .unwrap()
        .unwrap();
    assert!(!kept.body.unwrap_or_default().contains(&token));
    let event = w
        .app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "credential_minted")
        .unwrap();
    assert!(
        event.details.contains("\"delivery\":\"link\""),
        "{}",
        event.details
    );
    assert!(event.details.contains("\"api_key\""));
    assert!(!event.details.contains(&token));
    let path = link
        .split_once("/retrieve")
        .map(|(_, rest)| format!("/retrieve{rest}"))
        .unwrap();
    let page = w.partner.get(&path).await;
    assert_eq!(page.status(), StatusCode::OK);
}

async fn create_api_key_prints_only_the_key_and_records_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let url = app.database_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        tokenbroker(&url, dir.path())
            .args([
                "create-api-key",
                "--email",
                ADMIN_EMAIL,
                "--name",
                "ci",
                "--permission",
                "enter_tenant",
                "--permission",
                "manage_tenants",
                "--expires",
                "30d",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let key = stdout.trim_end_matches('\n');
    assert!(
        key.starts_with("tba_live_") && !key.contains('\n'),
        "{stdout:?}"
    );
    let api = Api {
        app: &app,
        key: key.to_owned(),
    };
    let me: Value = api.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["permissions"], json!(["enter_tenant", "manage_tenants"]));
    let created = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "api_key_created")
        .unwrap();
    assert_eq!(created.actor_kind, "cli");
    assert!(!created.details.contains(&key[9..]));
}

async fn a_person_makes_a_key_in_the_console_sees_it_once_and_revokes_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let created = app
        .submit(
            "/account/api-keys",
            "/account/api-keys",
            &[
                ("name", "onboarding script"),
                ("expires_days", "30"),
                ("permission", "enter_tenant"),
                ("permission", "manage_scopes"),
                ("tenants", "acme"),
                ("networks", "127.0.0.0/8"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    let page = created.text().await.unwrap();
    let key = text_of(&page, "#new-key").unwrap();
    assert!(key.starts_with("tba_live_"));
    let api = Api {
        app: &app,
        key: key.clone(),
    };
    let me: Value = api.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["permissions"], json!(["enter_tenant", "manage_scopes"]));
    assert_eq!(me["tenants"].as_array().unwrap().len(), 1);

    let list = app.page_with_form("/account/api-keys").await;
    assert!(!list.contains(&key), "the key is never shown again");
    let row = text_of(&list, "#api-keys tbody tr").unwrap();
    assert!(
        row.contains("onboarding script") && row.contains("from 127.0.0.1"),
        "{row}"
    );
    let limited_to = all_text_of(&list, "#api-keys tbody td")[2].clone();
    assert_eq!(
        limited_to, "Acme",
        "the tenants a key is limited to, by name"
    );
    let revoke = scraper::Html::parse_document(&list)
        .select(&scraper::Selector::parse("#api-keys form").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("action")
        .unwrap()
        .to_owned();
    assert_redirect_to(
        &app.submit("/account/api-keys", &revoke, &[]).await,
        "/account/api-keys?notice=revoked",
    );
    problem(api.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;

    // Nobody gives a key more than they hold.
    let support = staff_member(&app, "sup@example.com", "support", Some("acme")).await;
    let refused = support
        .submit(
            "/account/api-keys",
            "/account/api-keys",
            &[
                ("name", "escalate"),
                ("expires_days", "30"),
                ("permission", "manage_tenants"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        text_of(&refused.text().await.unwrap(), "p.alert")
            .unwrap()
            .contains("manage_tenants")
    );
}

async fn a_key_from_outside_its_networks_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let email = Email::parse(ADMIN_EMAIL).unwrap();
    let owner = users::by_email(&app.core, &email).await.unwrap().unwrap();
    let new = NewApiKey::parse("office only", &["all".to_owned()], &owner)
        .unwrap()
        .only_from(&["203.0.113.0/24".to_owned()])
        .unwrap();
    let (_, key) = api_keys::create(
        &app.core,
        &owner,
        new,
        Actor::Cli,
        &RequestContext::default(),
    )
    .await
    .unwrap();
    let api = Api {
        app: &app,
        key: secrecy::ExposeSecret::expose_secret(&key).to_owned(),
    };
    problem(api.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    let refusal = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "api_key_refused")
        .unwrap();
    assert!(refusal.details.contains("network"), "{}", refusal.details);
}

/// A key acts with the permissions it names, within its owner's roles — never with its owner's
/// roles alone: a superadmin's key made only to recover accounts recovers support staff, but may
/// not ask to recover another superadmin (that needs manage_staff), and nothing is asked for.
async fn a_key_acts_with_its_own_permissions_not_all_of_its_owners(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    for (email, role) in [
        ("root2@example.com", "superadmin"),
        ("root3@example.com", "superadmin"),
        ("sam@example.com", "security"),
    ] {
        staff_member(&app, email, role, None).await;
    }
    let superadmin = user_id(&app, "root2@example.com").await;
    let colleague = user_id(&app, "sam@example.com").await;
    let narrow = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["recover_accounts"], &[]).await,
    };
    let recover = async |api: &Api<'_>, who| {
        api.post(
            &format!("/api/v1/staff/{who}/recovery"),
            json!({"reason": "lost their passkey on a trip"}),
        )
        .await
    };
    let asked = async || {
        app.events()
            .await
            .into_iter()
            .filter(|e| e.event_type == "approval_requested")
            .count()
    };

    let refused = problem(recover(&narrow, superadmin).await, StatusCode::FORBIDDEN).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("superadmin"),
        "{refused}"
    );
    assert_eq!(asked().await, 0, "nothing was asked for");

    assert_eq!(
        recover(&narrow, colleague).await.status(),
        StatusCode::ACCEPTED,
        "its own job it may do"
    );
    let wide = Api {
        app: &app,
        key: key_for(
            &app,
            ADMIN_EMAIL,
            &["recover_accounts", "manage_staff"],
            &[],
        )
        .await,
    };
    assert_eq!(
        recover(&wide, superadmin).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(asked().await, 2);
}

on_both_backends!(
    a_person_makes_a_key_in_the_console_sees_it_once_and_revokes_it,
    a_key_from_outside_its_networks_is_refused,
    a_support_script_approves_mints_and_revokes_through_the_console_use_cases,
    tenants_and_scopes_are_managed_by_key,
    tenant_lists_page_through_everything_the_key_may_see,
    bad_keys_and_bad_bodies_get_problems_and_change_nothing,
    a_key_is_only_as_strong_as_its_owner_is_now,
    the_openapi_document_lists_exactly_the_registered_api_routes,
    each_key_has_its_own_budget_per_minute,
    a_script_can_take_the_retrieval_link_instead_of_the_partner_mail,
    a_key_guessing_run_is_throttled_and_raises_an_alert_but_never_locks_out_a_valid_key,
    staff_are_invited_given_roles_and_deactivated_by_key,
    keys_rotate_and_an_emergency_needs_a_second_person,
    security_works_the_alert_queue_by_key,
    the_event_log_pages_by_cursor_with_the_consoles_filters,
    a_retried_create_with_its_idempotency_key_creates_once,
    an_idempotency_key_left_by_a_request_that_never_answered_is_free_after_its_lease,
    the_reference_page_documents_every_operation_from_the_console_itself,
    create_api_key_prints_only_the_key_and_records_it,
    a_rotation_is_finished_by_key_and_grants_and_requests_page,
    a_tenant_logo_is_uploaded_by_key_as_a_form_or_as_the_image,
    a_key_acts_with_its_own_permissions_not_all_of_its_owners,
);

/// What a key may do, computed here from the role table and the key's own limits (not by the
/// server's code), for the matrix below.
struct KeyActor {
    name: &'static str,
    key: String,
    owner: tokenbroker::domain::users::User,
    permissions: Option<Vec<Permission>>,
    tenants: Option<Vec<tokenbroker::domain::ids::TenantId>>,
}

impl KeyActor {
    fn allows(
        &self,
        permission: Permission,
        tenant: Option<tokenbroker::domain::ids::TenantId>,
    ) -> bool {
        let in_limit = match (&self.tenants, tenant) {
            (None, _) => true,
            (Some(only), Some(t)) => only.contains(&t),
            (Some(_), None) => false,
        };
        let named = permission == Permission::EnterTenant
            || self
                .permissions
                .as_ref()
                .is_none_or(|p| p.contains(&permission));
        in_limit && named && may(&self.owner, permission, tenant)
    }

    fn expected(
        &self,
        access: Access,
        tenant: Option<tokenbroker::domain::ids::TenantId>,
    ) -> StatusClass {
        match access {
            Access::AnyKey => StatusClass::Allowed,
            Access::Key(p) if self.allows(p, None) => StatusClass::Allowed,
            Access::Key(_) => StatusClass::Forbidden,
            Access::KeyInTenant(_) if !self.allows(Permission::EnterTenant, tenant) => {
                StatusClass::NotFound
            }
            Access::KeyInTenant(p) if self.allows(p, tenant) => StatusClass::Allowed,
            Access::KeyInTenant(_) => StatusClass::Forbidden,
            _ => StatusClass::Allowed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusClass {
    Allowed,
    Forbidden,
    NotFound,
    Unauthenticated,
}

fn class_of(status: StatusCode) -> StatusClass {
    match status {
        StatusCode::UNAUTHORIZED => StatusClass::Unauthenticated,
        StatusCode::FORBIDDEN => StatusClass::Forbidden,
        StatusCode::NOT_FOUND => StatusClass::NotFound,
        _ => StatusClass::Allowed,
    }
}

async fn a_rotation_is_finished_by_key_and_grants_and_requests_page(backend: Backend) {
    let w: World = world(backend).await;
    let first_request = pending_request(&w).await;
    let second_request = pending_request(&w).await;
    let admin = Api {
        app: &w.app,
        key: key_for(&w.app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let page: Value = admin
        .get("/api/v1/tenants/acme/requests?status=pending&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["items"][0]["id"],
        second_request.as_str(),
        "newest first"
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest: Value = admin
        .get(&format!(
            "/api/v1/tenants/acme/requests?status=pending&limit=1&cursor={cursor}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["id"], first_request.as_str());
    assert!(rest["next_cursor"].is_null());
    let approved: Value = admin
        .post(
            &format!("/api/v1/tenants/acme/requests/{first_request}/approve"),
            json!({ "scopes": ["payments:read"], "max_lifetime_days": 30 }),
        )
        .await
        .json()
        .await
        .unwrap();
    let grant = approved["grant_id"].as_str().unwrap().to_owned();
    let grants: Value = admin
        .get("/api/v1/tenants/acme/grants")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(grants["items"][0]["id"], grant.as_str());
    assert_eq!(grants["items"][0]["request_id"], first_request.as_str());
    let none: Value = admin
        .get("/api/v1/tenants/acme/requests?status=unconfirmed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        none["items"],
        json!([]),
        "unconfirmed requests are the partner's"
    );

    let minted: Value = admin
        .post(
            &format!("/api/v1/tenants/acme/grants/{grant}/credentials"),
            json!({ "kind": "resource_server" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let credential = minted["id"].as_str().unwrap().to_owned();
    let first = crate::partners::retrieve(&w).await;
    let added = admin
        .post(
            &format!("/api/v1/tenants/acme/credentials/{credential}/secrets"),
            json!({}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::ACCEPTED);
    let second = crate::partners::retrieve(&w).await;
    let detail: Value = admin
        .get(&format!("/api/v1/tenants/acme/credentials/{credential}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["id"], credential.as_str());
    assert_eq!(detail["kind"], "client");
    assert_eq!(detail["may_introspect"], true, "a gateway's client");
    let states: Vec<&str> = detail["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["live", "live"]);
    assert!(!detail.to_string().contains(&first) && !detail.to_string().contains(&second));
    let first_id = detail["secrets"][0]["id"].as_str().unwrap().to_owned();
    let second_id = detail["secrets"][1]["id"].as_str().unwrap().to_owned();

    let secret_url =
        |id: &str| format!("/api/v1/tenants/acme/credentials/{credential}/secrets/{id}");
    let retired = admin
        .request(reqwest::Method::DELETE, &secret_url(&first_id))
        .send()
        .await
        .unwrap();
    assert_eq!(retired.status(), StatusCode::NO_CONTENT);
    assert!(
        tokenbroker::domain::partners::verify(&w.app.core, &first, None)
            .await
            .unwrap()
            .is_none()
    );
    let last = admin
        .request(reqwest::Method::DELETE, &secret_url(&second_id))
        .send()
        .await
        .unwrap();
    let body = problem(last, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("only live secret")
    );
    let unknown = admin
        .request(reqwest::Method::DELETE, &secret_url("no-such-secret"))
        .send()
        .await
        .unwrap();
    problem(unknown, StatusCode::NOT_FOUND).await;
    let detail: Value = admin
        .get(&format!("/api/v1/tenants/acme/credentials/{credential}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["secrets"][0]["status"], "retired");
    assert_eq!(detail["secrets"][1]["status"], "live");
    problem(
        admin
            .get("/api/v1/tenants/acme/credentials/no-such-credential")
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn a_tenant_logo_is_uploaded_by_key_as_a_form_or_as_the_image(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let api = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let put = || api.request(reqwest::Method::PUT, "/api/v1/tenants/acme/logo");

    let raw = put()
        .header("content-type", "image/png")
        .body(png(8, 8))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.json::<Value>().await.unwrap()["has_logo"], true);
    let served = app.get("/t/acme/logo").await;
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.unwrap().to_vec(), png(8, 8));

    let form = reqwest::multipart::Form::new().part(
        "logo",
        reqwest::multipart::Part::bytes(png(12, 12)).file_name("logo.png"),
    );
    let uploaded = put().multipart(form).send().await.unwrap();
    assert_eq!(uploaded.status(), StatusCode::OK);
    assert_eq!(
        app.get("/t/acme/logo")
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        png(12, 12)
    );

    let html = put()
        .header("content-type", "image/png")
        .body("<svg onload=alert(1)>")
        .send()
        .await
        .unwrap();
    let body = problem(html, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "logo");
    let text = put()
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    problem(text, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    // Refused before it is read: the server closes that connection, so it gets one of its own.
    let huge = reqwest::Client::new()
        .put(app.url("/api/v1/tenants/acme/logo"))
        .bearer_auth(&api.key)
        .header("content-type", "image/png")
        .body(vec![0u8; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    problem(huge, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(
        app.get("/t/acme/logo")
            .await
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        png(12, 12),
        "refused uploads change nothing"
    );
    let changes = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "tenant_logo_changed")
        .count();
    assert_eq!(changes, 2);
}

async fn every_api_route_answers_every_key_as_its_rule_says(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    staff_member(&app, "sec@example.com", "security", None).await;
    staff_member(&app, "sup@example.com", "support", Some("acme")).await;
    staff_member(&app, "ta@example.com", "tenant_admin", Some("acme")).await;
    let owner = |email: &'static str| {
        let app = &app;
        async move {
            users::by_email(&app.core, &Email::parse(email).unwrap())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let acme = tenants::by_slug(&app.core, "acme")
        .await
        .unwrap()
        .unwrap()
        .id;
    let globex = tenants::by_slug(&app.core, "globex")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut actors = Vec::new();
    for (name, email) in [
        ("superadmin", ADMIN_EMAIL),
        ("security", "sec@example.com"),
        ("support@acme", "sup@example.com"),
        ("tenant_admin@acme", "ta@example.com"),
    ] {
        actors.push(KeyActor {
            name,
            key: key_for(&app, email, &["all"], &[]).await,
            owner: owner(email).await,
            permissions: None,
            tenants: None,
        });
    }
    actors.push(KeyActor {
        name: "superadmin key for view_credentials only",
        key: key_for(&app, ADMIN_EMAIL, &["view_credentials"], &[]).await,
        owner: owner(ADMIN_EMAIL).await,
        permissions: Some(vec![Permission::ViewCredentials]),
        tenants: None,
    });
    actors.push(KeyActor {
        name: "superadmin key for acme only",
        key: key_for(&app, ADMIN_EMAIL, &["all"], &["acme"]).await,
        owner: owner(ADMIN_EMAIL).await,
        permissions: None,
        tenants: Some(vec![acme]),
    });

    let table: Vec<_> = route_table()
        .into_iter()
        .filter(|r| r.access.is_key())
        .collect();
    assert!(table.len() >= 17, "{} API routes", table.len());
    let mut failures = Vec::new();
    let mut calls = 0;
    for route in &table {
        let scopes = if route.path.contains("{tenant}") {
            vec![Some(("acme", acme)), Some(("globex", globex))]
        } else {
            vec![None]
        };
        for scope in scopes {
            let mut path = route.path.to_owned();
            if let Some((slug, _)) = scope {
                path = path.replace("{tenant}", slug);
            }
            let unknown_id = path.contains("{id}");
            path = path.replace("{id}", "00000000-0000-4000-8000-000000000000");
            for actor in &actors {
                let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
                let mut request = app
                    .client
                    .request(method.clone(), app.url(&path))
                    .bearer_auth(&actor.key);
                if method == reqwest::Method::POST {
                    request = request.json(&json!({}));
                }
                let status = request.send().await.unwrap().status();
                calls += 1;
                let observed = class_of(status);
                let expected = actor.expected(route.access, scope.map(|(_, id)| id));
                let acceptable = observed == expected
                    || (expected == StatusClass::Allowed
                        && observed == StatusClass::NotFound
                        && unknown_id);
                if !acceptable || status.is_server_error() {
                    failures.push(format!(
                        "{} {path} as {}: expected {expected:?}, got {status}",
                        route.method, actor.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls disagree with the route table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

on_both_backends!(every_api_route_answers_every_key_as_its_rule_says);
