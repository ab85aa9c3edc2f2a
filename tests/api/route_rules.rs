//! The route table enforces what it declares, whatever the handler does: a probe handler that would
//! answer anyone is registered under rules its callers do not meet, through the same `Router` as
//! every console route, and is never reached.

use std::time::Duration;

use actix_web::HttpResponse;
use reqwest::StatusCode;
use tokenbroker::domain::rbac::Permission::{ManageStaff, MintCredentials};
use tokenbroker::web::authz::Access::{Global, InTenant, SignedIn};
use tokenbroker::web::authz::TenantPage;
use tokenbroker::web::routes::Router;

use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

const REACHED: &str = "the handler ran";

async fn probe() -> HttpResponse {
    HttpResponse::Ok().body(REACHED)
}

/// Asks for the tenant page although its rule resolves no tenant: a misdeclared route.
async fn probe_needing_a_tenant(page: TenantPage) -> HttpResponse {
    HttpResponse::Ok().body(format!("{REACHED} in {}", page.tenant.slug))
}

fn probes(router: &mut Router<'_>) {
    router
        .get("/probe/staff-admins", Global(ManageStaff), probe)
        .get("/t/{tenant}/probe", InTenant(MintCredentials), probe)
        .get(
            "/probe/fresh-passkey",
            SignedIn.with_step_up("Open the probe"),
            probe,
        )
        .get(
            "/t/{tenant}/probe-misdeclared",
            SignedIn,
            probe_needing_a_tenant,
        );
}

async fn reached(browser: &Browser, path: &str) -> (StatusCode, bool) {
    let response = browser.get(path).await;
    let status = response.status();
    (status, response.text().await.unwrap().contains(REACHED))
}

async fn a_handler_is_reached_only_by_callers_its_rule_admits(backend: Backend) {
    let app = spawn_app_with_routes(backend, |_| {}, probes).await;
    let anonymous = app.new_browser();
    assert_eq!(
        reached(&anonymous, "/probe/staff-admins").await,
        (StatusCode::SEE_OTHER, false)
    );
    app.create_admin().await;
    create_tenant(&app, "Acme Bank", "acme", "#123456", None).await;
    create_tenant(&app, "Other", "other", "#654321", None).await;
    let support = staff_member(&app, "sup@example.com", "support", Some("acme")).await;

    // Global permission the caller lacks: refused before the handler.
    assert_eq!(
        reached(&support, "/probe/staff-admins").await,
        (StatusCode::FORBIDDEN, false)
    );
    assert_eq!(
        reached(&app, "/probe/staff-admins").await,
        (StatusCode::OK, true)
    );
    // A tenant permission: granted in the caller's tenant, and another tenant does not exist.
    assert_eq!(
        reached(&support, "/t/acme/probe").await,
        (StatusCode::OK, true)
    );
    assert_eq!(
        reached(&support, "/t/other/probe").await,
        (StatusCode::NOT_FOUND, false)
    );
    assert_eq!(
        reached(&support, "/t/nowhere/probe").await,
        (StatusCode::NOT_FOUND, false)
    );
    // Step-up is part of the rule: a stale passkey is sent to the prompt, with the rule's label.
    app.clock.advance(Duration::from_secs(6 * 60));
    let stale = app.get("/probe/fresh-passkey").await;
    assert_redirect_to(&stale, "/step-up");
    assert!(
        text_of(&app.page_with_form("/step-up").await, "p strong")
            .unwrap()
            .contains("Open the probe")
    );
}

async fn a_handler_asking_for_more_than_its_rule_established_fails_closed(backend: Backend) {
    let app = spawn_app_with_routes(backend, |_| {}, probes).await;
    app.create_admin().await;
    create_tenant(&app, "Acme Bank", "acme", "#123456", None).await;
    let (status, ran) = reached(&app, "/t/acme/probe-misdeclared").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !ran,
        "the tenant page exists only where the rule resolved it"
    );
}

on_both_backends!(
    a_handler_is_reached_only_by_callers_its_rule_admits,
    a_handler_asking_for_more_than_its_rule_established_fails_closed,
);
