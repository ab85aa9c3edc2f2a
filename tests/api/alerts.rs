//! Detectors and the alerts queue: bursts of failed sign-ins, recovery-code use, revoked
//! credentials still presented; one alert per burst, examined once across instances, visible to
//! security staff and to the tenant's own admins only, worked through with recorded steps.

use std::time::Duration;

use reqwest::StatusCode;
use tokenbroker::domain::alerts::{DetectorPolicy, run_detectors};
use tokenbroker::domain::events::{Actor, Event, EventType, Outcome, RequestContext};
use tokenbroker::domain::ids::{TenantId, UserId};

use crate::client::all_text_of;
use crate::helpers::*;
use crate::on_both_backends;
use crate::partners::mails_to;
use crate::staff_kit::*;

async fn detect(app: &TestApp) -> u64 {
    app.clock.advance(Duration::from_secs(3));
    run_detectors(&app.core, &DetectorPolicy::default())
        .await
        .unwrap()
}

fn alert_rows(html: &str) -> Vec<String> {
    all_text_of(html, "#alerts tbody tr td:nth-child(4)")
}

async fn a_burst_of_failed_sign_ins_is_one_alert_security_works_through(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let security = staff_member(&app, "sec@example.com", "security", None).await;
    let attacker = app.new_browser();
    for _ in 0..5 {
        attacker.login(ADMIN_EMAIL, "not the password at all").await;
        app.clock.advance(Duration::from_secs(1));
    }
    assert!(detect(&app).await >= 1);
    assert_eq!(detect(&app).await, 0, "nothing new, nothing found");

    let queue = security.page_with_form("/admin/alerts").await;
    let rows = alert_rows(&queue);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0].contains("5 failed sign-ins on account"),
        "{}",
        rows[0]
    );
    let document = scraper::Html::parse_document(&queue);
    let id = document
        .select(&scraper::Selector::parse("tr[data-detector=login_failure_burst]").unwrap())
        .next()
        .unwrap()
        .value()
        .attr("data-alert")
        .unwrap()
        .to_owned();
    let page = format!("/admin/alerts/{id}");
    let detail = security.page_with_form(&page).await;
    assert_eq!(
        all_text_of(&detail, "#evidence tbody tr").len(),
        1,
        "the fifth failure fired it"
    );
    for form in [
        vec![("assign", "me")],
        vec![(
            "note",
            "Looks like a script; blocking the address upstream.",
        )],
        vec![("status", "acknowledged")],
    ] {
        assert_redirect_to(&security.submit(&page, &page, &form).await, &page);
    }
    let detail = security.page_with_form(&page).await;
    assert_eq!(text_of(&detail, "#status").unwrap(), "acknowledged");
    assert_eq!(text_of(&detail, "#assignee").unwrap(), "sec@example.com");
    assert!(
        text_of(&detail, "#notes")
            .unwrap()
            .contains("blocking the address")
    );
    let bad = security
        .submit(&page, &page, &[("status", "deleted")])
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let steps = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "alert_updated")
        .count();
    assert_eq!(steps, 3, "every step is recorded");
}

async fn recovery_code_use_is_a_high_alert_mailed_to_security(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    staff_member(&app, "sec@example.com", "security", None).await;
    let user = UserId::new();
    let event = Event::new(
        app.now_ms(),
        EventType::RecoveryCodeUsed,
        Outcome::Success,
        Actor::User(user),
    )
    .subject(user);
    app.core.store.append_event(&event).await.unwrap();
    detect(&app).await;
    let alerts = app.core.store.alerts(None, true, None, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity.as_str(), "high");
    assert!(alerts[0].reason.contains("recovery code"));
    let mails = mails_to(&app, "sec@example.com").await;
    assert!(mails.iter().any(|m| m.contains("High-severity alert")));
}

async fn each_event_is_examined_once_however_many_instances_run(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = app.spawn_sibling().await;
    let context = RequestContext {
        ip: Some("198.51.100.7".into()),
        ..RequestContext::default()
    };
    for i in 0..25 {
        let event = Event::new(
            app.now_ms() + i,
            EventType::Login,
            Outcome::Failure,
            Actor::Anonymous,
        )
        .context(&context);
        app.core.store.append_event(&event).await.unwrap();
    }
    app.clock.advance(Duration::from_secs(3));
    let policy = DetectorPolicy::default();
    let (a, b) = tokio::join!(
        run_detectors(&app.core, &policy),
        run_detectors(&sibling.core, &policy)
    );
    a.unwrap();
    b.unwrap();
    let alerts = app.core.store.alerts(None, false, None, 10).await.unwrap();
    assert_eq!(alerts.len(), 1, "one burst, one alert");
    assert!(alerts[0].reason.contains("from 198.51.100.7"));
    assert_eq!(
        alerts[0].evidence_count,
        25 - 20 + 1,
        "each failure past the threshold, once"
    );
}

async fn a_tenants_alerts_are_visible_to_its_admins_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    let acme_admin = staff_member(&app, "ta@acme.example", "tenant_admin", Some("acme")).await;
    let globex_admin =
        staff_member(&app, "ta@globex.example", "tenant_admin", Some("globex")).await;
    let acme = TenantId::parse(&tenant_id(&app, "acme").await).unwrap();
    let event = Event::new(
        app.now_ms(),
        EventType::RevokedTokenPresented,
        Outcome::Failure,
        Actor::Anonymous,
    )
    .tenant(acme)
    .detail("credential", "cred-123")
    .detail("reason", "revoked");
    app.core.store.append_event(&event).await.unwrap();
    detect(&app).await;
    let own = alert_rows(&acme_admin.page_with_form("/t/acme/alerts").await);
    assert_eq!(own.len(), 1);
    assert!(own[0].contains("cred-123"));
    assert!(alert_rows(&globex_admin.page_with_form("/t/globex/alerts").await).is_empty());
    assert_eq!(
        globex_admin.get("/t/acme/alerts").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        acme_admin.get("/admin/alerts").await.status(),
        StatusCode::FORBIDDEN
    );
}

async fn one_click_responses_end_sessions_and_lock_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let victim = staff_member(&app, "victim@example.com", "support", Some("acme")).await;
    let victim_id = user_id(&app, "victim@example.com").await;
    let security = staff_member(&app, "sec@example.com", "security", None).await;
    let event = Event::new(
        app.now_ms(),
        EventType::RecoveryCodeUsed,
        Outcome::Success,
        Actor::User(victim_id),
    )
    .subject(victim_id);
    app.core.store.append_event(&event).await.unwrap();
    detect(&app).await;
    let id = app.core.store.alerts(None, true, None, 10).await.unwrap()[0]
        .id
        .clone();
    let page = format!("/admin/alerts/{id}");
    let html = security.page_with_form(&page).await;
    let offered = all_text_of(&html, "button[data-response]");
    assert_eq!(
        offered,
        vec!["End the account's sessions", "Lock the account"]
    );

    let respond = |response: &'static str| {
        let security = &security;
        let page = page.clone();
        async move {
            security
                .submit(&page, &format!("{page}/respond"), &[("response", response)])
                .await
        }
    };
    assert_redirect_to(&respond("end_sessions").await, &page);
    assert_redirect_to(&victim.get("/").await, "/login");
    assert_redirect_to(&respond("lock_account").await, &page);
    let locked = app.core.store.find_user(victim_id).await.unwrap().unwrap();
    assert_eq!(locked.status.as_str(), "deactivated");
    let html = security.page_with_form(&page).await;
    assert!(text_of(&html, "#notes").unwrap().contains("locked account"));
    assert_eq!(text_of(&html, "#status").unwrap(), "acknowledged");
    assert_eq!(
        respond("lock_account").await.status(),
        StatusCode::CONFLICT,
        "done already"
    );
    // A response needs a fresh passkey.
    app.clock.advance(Duration::from_secs(6 * 60));
    assert_redirect_to(&respond("end_sessions").await, "/step-up");
}

on_both_backends!(
    one_click_responses_end_sessions_and_lock_the_account,
    a_burst_of_failed_sign_ins_is_one_alert_security_works_through,
    recovery_code_use_is_a_high_alert_mailed_to_security,
    each_event_is_examined_once_however_many_instances_run,
    a_tenants_alerts_are_visible_to_its_admins_only,
);
