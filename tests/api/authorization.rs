//! The authorization matrix: every route of the application's route table, called as every kind of
//! principal, inside and outside their tenant, must answer exactly as its declared rule says.
//! Routes cannot be registered without a rule (`web::routes::Router`), so a new route is in this
//! matrix the moment it exists.

use reqwest::StatusCode;
use tokenbroker::domain::rbac::{Permission, may};
use tokenbroker::domain::users::User;
use tokenbroker::web::authz::Access;
use tokenbroker::web::routes::route_table;

use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allowed,
    LoginRedirect,
    Forbidden,
    NotFound,
    /// 401: client credentials required (a staff session is not one).
    ClientAuthRequired,
}

fn classify(response: &reqwest::Response) -> Answer {
    match response.status() {
        StatusCode::FORBIDDEN => Answer::Forbidden,
        StatusCode::NOT_FOUND => Answer::NotFound,
        StatusCode::UNAUTHORIZED if response.headers().contains_key("www-authenticate") => {
            Answer::ClientAuthRequired
        }
        StatusCode::SEE_OTHER if response.headers()["location"] == "/login" => {
            Answer::LoginRedirect
        }
        _ => Answer::Allowed,
    }
}

struct Actor {
    name: &'static str,
    browser: Browser,
    user: Option<User>,
}

impl Actor {
    fn expected(
        &self,
        access: Access,
        tenant: Option<tokenbroker::domain::ids::TenantId>,
    ) -> Answer {
        // Machine clients and automation keys authenticate on every request; a session is nothing there.
        if access == Access::TenantClient || access.is_key() {
            return Answer::ClientAuthRequired;
        }
        let Some(user) = &self.user else {
            return match access {
                Access::Public => Answer::Allowed,
                _ => Answer::LoginRedirect,
            };
        };
        match access {
            Access::Public | Access::PartlySignedIn | Access::SignedIn => Answer::Allowed,
            Access::Global(permission) if may(user, permission, None) => Answer::Allowed,
            Access::Global(_) => Answer::Forbidden,
            Access::InTenant(_) if !may(user, Permission::EnterTenant, tenant) => Answer::NotFound,
            Access::InTenant(permission) if may(user, permission, tenant) => Answer::Allowed,
            Access::InTenant(_) => Answer::Forbidden,
            Access::TenantClient | Access::AnyKey | Access::Key(_) | Access::KeyInTenant(_) => {
                Answer::ClientAuthRequired
            }
        }
    }
}

async fn every_route_answers_every_role_as_its_rule_says(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    let security = staff_member(&app, "sec@example.com", "security", None).await;
    let support = staff_member(&app, "sup@example.com", "support", Some("acme")).await;
    let tenant_admin = staff_member(&app, "ta@example.com", "tenant_admin", Some("acme")).await;
    let nobody = staff_member(&app, "nobody@example.com", "support", Some("acme")).await;
    let nobody_id = user_id(&app, "nobody@example.com").await;
    let assignment = app
        .core
        .store
        .find_user(nobody_id)
        .await
        .unwrap()
        .unwrap()
        .roles[0]
        .id
        .clone();
    app.submit(
        &format!("/admin/users/{nobody_id}"),
        &format!("/admin/users/{nobody_id}/roles/{assignment}/revoke"),
        &[],
    )
    .await;
    staff_member(&app, "victim@example.com", "support", Some("globex")).await;
    let victim = user_id(&app, "victim@example.com").await;

    let load = |email: &'static str| {
        let app = &app;
        async move {
            Some(
                app.core
                    .store
                    .find_user(user_id(app, email).await)
                    .await
                    .unwrap()
                    .unwrap(),
            )
        }
    };
    let actors = vec![
        Actor {
            name: "anonymous",
            browser: app.new_browser(),
            user: None,
        },
        Actor {
            name: "no role",
            browser: nobody,
            user: load("nobody@example.com").await,
        },
        Actor {
            name: "support@acme",
            browser: support,
            user: load("sup@example.com").await,
        },
        Actor {
            name: "tenant_admin@acme",
            browser: tenant_admin,
            user: load("ta@example.com").await,
        },
        Actor {
            name: "security",
            browser: security,
            user: load("sec@example.com").await,
        },
        Actor {
            name: "superadmin",
            browser: app.browser_with_cookie(&app.session_cookie().unwrap()),
            user: load(ADMIN_EMAIL).await,
        },
    ];
    let tenants = [
        (
            "acme",
            app.core
                .store
                .tenant_by_slug("acme")
                .await
                .unwrap()
                .unwrap()
                .id,
        ),
        (
            "globex",
            app.core
                .store
                .tenant_by_slug("globex")
                .await
                .unwrap()
                .unwrap()
                .id,
        ),
    ];

    let mut table = route_table();
    assert!(
        table.len() > 40,
        "the whole route table is walked ({} routes)",
        table.len()
    );
    // Signing out ends the actor's session: walk it last.
    table.sort_by_key(|route| route.path == "/logout");
    let mut failures = Vec::new();
    let mut calls = 0;
    for route in &table {
        let scopes: Vec<Option<(&str, _)>> = if route.path.contains("{tenant}") {
            tenants.iter().map(|t| Some(*t)).collect()
        } else {
            vec![None]
        };
        for scope in scopes {
            let mut unknown_id = false;
            let mut path = route.path.replace("{path:.*}", "app.css");
            if let Some((slug, _)) = scope {
                path = path.replace("{tenant}", slug);
            }
            if path.starts_with("/admin/users/{id}") {
                path = path.replacen("{id}", &victim.to_string(), 1);
            }
            for placeholder in ["{id}", "{session}", "{assignment}"] {
                if path.contains(placeholder) {
                    unknown_id = true;
                    path = path.replace(placeholder, "00000000-0000-4000-8000-000000000000");
                }
            }
            for actor in &actors {
                let response = if route.method == actix_web::http::Method::GET {
                    actor.browser.get(&path).await
                } else if route.method != actix_web::http::Method::POST {
                    let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes());
                    let url = actor.browser.url(&path);
                    let request = actor.browser.client.request(method.unwrap(), url);
                    request.send().await.unwrap()
                } else {
                    let html = actor.browser.page_with_form("/login").await;
                    let token = csrf_token(&html);
                    actor
                        .browser
                        .post_form(&path, &[("csrf_token", &token)])
                        .await
                };
                calls += 1;
                let observed = classify(&response);
                let expected = actor.expected(route.access, scope.map(|(_, id)| id));
                let acceptable = observed == expected
                    || (expected == Answer::Allowed
                        && observed == Answer::NotFound
                        && (unknown_id || route.access == Access::Public));
                if !acceptable {
                    failures.push(format!(
                        "{} {} as {}: expected {expected:?}, got {observed:?} ({})",
                        route.method,
                        path,
                        actor.name,
                        response.status()
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

async fn another_tenant_is_indistinguishable_from_no_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    let support = staff_member(&app, "sup@example.com", "support", Some("acme")).await;

    for suffix in ["", "/settings"] {
        let other = support.get(&format!("/t/globex{suffix}")).await;
        let missing = support.get(&format!("/t/no-such-tenant{suffix}")).await;
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let (other, missing) = (other.text().await.unwrap(), missing.text().await.unwrap());
        assert_eq!(text_of(&other, "main h1"), text_of(&missing, "main h1"));
        assert_eq!(text_of(&other, "main p"), text_of(&missing, "main p"));
        assert!(!other.contains("Globex"));
    }
}

on_both_backends!(
    every_route_answers_every_role_as_its_rule_says,
    another_tenant_is_indistinguishable_from_no_tenant,
);
