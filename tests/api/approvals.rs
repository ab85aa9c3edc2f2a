//! Four-eyes approvals: dangerous actions wait for a different, eligible person, who approves with
//! a passkey; an approved request executes exactly once, a refused step changes nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokenbroker::domain::approvals::{self, ApprovalStatus};
use tokenbroker::domain::events::RequestContext;
use tokenbroker::jobs::Job;

use crate::automation::{Api, key_for, problem};
use crate::helpers::*;
use crate::oauth_kit::*;
use crate::on_both_backends;
use crate::partners::{mailed_link, mails_to};
use crate::staff_kit::*;

/// A superadmin's page of a person, and the form that asks for something there.
async fn ask(
    app: &Browser,
    person: &str,
    action: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("/admin/users/{person}");
    app.submit(&page, &format!("{page}/{action}"), form).await
}

fn roles_of(user: &tokenbroker::domain::users::User) -> Vec<&'static str> {
    user.roles.iter().map(|r| r.role.as_str()).collect()
}

async fn granting_and_removing_superadmin_waits_for_a_second_superadmin(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let root2 = staff_member(&app, "root2@example.com", "superadmin", None).await;
    let sec = staff_member(&app, "sec@example.com", "security", None).await;
    let sec_id = user_id(&app, "sec@example.com").await;
    let root2_id = user_id(&app, "root2@example.com").await;

    let no_reason = ask(
        &app,
        &sec_id.to_string(),
        "roles",
        &[("role", "superadmin")],
    )
    .await;
    assert_eq!(no_reason.status(), StatusCode::BAD_REQUEST);
    assert!(
        text_of(&no_reason.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("Say why")
    );
    let id = requested_approval(
        &ask(
            &app,
            &sec_id.to_string(),
            "roles",
            &[("role", "superadmin"), ("reason", "second on-call owner")],
        )
        .await,
    );
    let user = app.core.store.find_user(sec_id).await.unwrap().unwrap();
    assert_eq!(roles_of(&user), ["security"], "nothing granted yet");
    // The person it is about may not decide it, even if they could decide others.
    let by_subject = approve(&sec, &id).await;
    assert_eq!(by_subject.status(), StatusCode::FORBIDDEN);
    assert_redirect_to(
        &approve(&root2, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    let user = app.core.store.find_user(sec_id).await.unwrap().unwrap();
    assert!(roles_of(&user).contains(&"superadmin"));
    let granted = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "role_granted" && e.details.contains("superadmin"))
        .unwrap();
    assert!(
        granted.details.contains(&id),
        "the change names its approval"
    );

    // Removing a superadmin role: the person it is about cannot approve their own demotion.
    let root2_user = app.core.store.find_user(root2_id).await.unwrap().unwrap();
    let assignment = root2_user.roles[0].id.clone();
    let removal = requested_approval(
        &ask(
            &app,
            &root2_id.to_string(),
            &format!("roles/{assignment}/revoke"),
            &[("reason", "left the company")],
        )
        .await,
    );
    let by_subject = approve(&root2, &removal).await;
    assert_eq!(by_subject.status(), StatusCode::FORBIDDEN);
    assert!(
        text_of(&by_subject.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("about you")
    );
    assert_redirect_to(
        &approve(&sec, &removal).await,
        &format!("/approvals/{removal}?notice=approved"),
    );
    let root2_user = app.core.store.find_user(root2_id).await.unwrap().unwrap();
    assert!(root2_user.roles.is_empty());
    let events: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        events.iter().filter(|e| *e == "approval_executed").count(),
        2
    );
}

async fn a_rejected_or_cancelled_request_changes_nothing_and_cannot_be_approved(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let root2 = staff_member(&app, "root2@example.com", "superadmin", None).await;
    staff_member(&app, "root3@example.com", "superadmin", None).await;
    let root3_id = user_id(&app, "root3@example.com").await;

    // Deactivating a superadmin waits; the other superadmin rejects it with a note.
    let id = requested_approval(
        &ask(
            &app,
            &root3_id.to_string(),
            "deactivate",
            &[("reason", "unused account")],
        )
        .await,
    );
    let rejected = decide(
        &root2,
        &id,
        "reject",
        &[("note", "they are on leave, not gone")],
    )
    .await;
    assert_redirect_to(&rejected, &format!("/approvals/{id}?notice=rejected"));
    let root3 = app.core.store.find_user(root3_id).await.unwrap().unwrap();
    assert_eq!(root3.status.as_str(), "active");
    let after_rejection = approve(&root2, &id).await;
    assert_eq!(after_rejection.status(), StatusCode::CONFLICT);
    assert!(
        text_of(&after_rejection.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("already rejected")
    );
    assert!(
        mails_to(&app, ADMIN_EMAIL)
            .await
            .iter()
            .any(|m| m.contains("Request rejected") && m.contains("on leave"))
    );

    // The requester may cancel their own request; nobody else may.
    let id = requested_approval(
        &ask(
            &app,
            &root3_id.to_string(),
            "deactivate",
            &[("reason", "unused account")],
        )
        .await,
    );
    let not_theirs = root2
        .submit(
            &format!("/approvals/{id}"),
            &format!("/approvals/{id}/cancel"),
            &[],
        )
        .await;
    assert_eq!(not_theirs.status(), StatusCode::FORBIDDEN);
    assert_redirect_to(
        &app.submit(
            &format!("/approvals/{id}"),
            &format!("/approvals/{id}/cancel"),
            &[],
        )
        .await,
        &format!("/approvals/{id}?notice=cancelled"),
    );
    assert_eq!(approve(&root2, &id).await.status(), StatusCode::CONFLICT);
    let root3 = app.core.store.find_user(root3_id).await.unwrap().unwrap();
    assert_eq!(root3.status.as_str(), "active");
    let events: Vec<String> = app
        .events()
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert!(events.contains(&"approval_rejected".to_owned()));
    assert!(events.contains(&"approval_cancelled".to_owned()));
    assert!(!events.contains(&"user_deactivated".to_owned()));
}

async fn a_request_lapses_after_a_day(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let root2 = staff_member(&app, "root2@example.com", "superadmin", None).await;
    staff_member(&app, "sec@example.com", "security", None).await;
    let sec_id = user_id(&app, "sec@example.com").await;
    let id = requested_approval(
        &ask(
            &app,
            &sec_id.to_string(),
            "roles",
            &[("role", "superadmin"), ("reason", "cover for holidays")],
        )
        .await,
    );
    app.clock.advance(Duration::from_secs(25 * 3600));
    // A day later the second superadmin signs in again and finds it too late.
    assert_redirect_to(
        &root2.login("root2@example.com", STAFF_PASSWORD).await,
        "/login/passkey",
    );
    root2
        .answer_passkey("/login/passkey", "/login/passkey")
        .await;
    let late = approve(&root2, &id).await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    assert!(
        text_of(&late.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("expired")
    );
    app.run_job(Job::Sweep).await;
    let lapsed = approvals::get(&app.core, &id).await.unwrap();
    assert_eq!(lapsed.status, ApprovalStatus::Expired);
    let user = app.core.store.find_user(sec_id).await.unwrap().unwrap();
    assert_eq!(roles_of(&user), ["security"]);
    assert!(
        app.events()
            .await
            .iter()
            .any(|e| e.event_type == "approval_expired" && e.details.contains(&id))
    );
    assert!(
        mails_to(&app, ADMIN_EMAIL)
            .await
            .iter()
            .any(|m| m.contains("Request expired"))
    );
}

async fn assisted_recovery_after_approval_mails_a_single_use_link(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let sec = staff_member(&app, "sec@example.com", "security", None).await;
    let sam = staff_member(&app, "sam@example.com", "support", Some("acme")).await;
    let sam_id = user_id(&app, "sam@example.com").await;
    staff_member(&app, "root2@example.com", "superadmin", None).await;
    let root2_id = user_id(&app, "root2@example.com").await;
    staff_member(&app, "root3@example.com", "superadmin", None).await;

    // Security staff may approve the recovery of a non-superadmin...
    let id = requested_approval(
        &ask(
            &app,
            &sam_id.to_string(),
            "recover",
            &[("reason", "lost phone; checked by video call")],
        )
        .await,
    );
    assert_eq!(sam.get("/").await.status(), StatusCode::OK, "nothing yet");
    assert_redirect_to(
        &approve(&sec, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    assert_redirect_to(&sam.get("/").await, "/login");
    let link = mailed_link(&app, "sam@example.com", "/recover?token=").await;
    let token = link.trim_start_matches("/recover?token=").to_owned();
    let person = app.new_browser();
    let right = person
        .submit(
            &link,
            "/recover",
            &[("token", &token), ("password", STAFF_PASSWORD)],
        )
        .await;
    assert_redirect_to(&right, "/mfa/enrol");
    let enrolled = person.enrol_passkey("New phone").await;
    assert_eq!(enrolled.status(), StatusCode::OK);
    assert_eq!(
        app.new_browser().get(&link).await.status(),
        StatusCode::GONE,
        "the link works once"
    );
    let started = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "account_recovery_started")
        .unwrap();
    assert!(!started.details.contains(&token), "no link in the event");

    // ...but not of a superadmin.
    let id = requested_approval(
        &ask(
            &app,
            &root2_id.to_string(),
            "recover",
            &[("reason", "lost keys")],
        )
        .await,
    );
    let by_security = approve(&sec, &id).await;
    assert_eq!(by_security.status(), StatusCode::FORBIDDEN);
    assert!(
        text_of(&by_security.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("Only a superadmin")
    );

    // Each high-gravity request raises one alert for security staff.
    app.clock.advance(Duration::from_secs(3));
    app.run_job(Job::Detect).await;
    let alerts = tokenbroker::domain::alerts::queue(&app.core, None, true, None, 50)
        .await
        .unwrap();
    let four_eyes = alerts
        .alerts
        .iter()
        .filter(|a| a.detector == "four_eyes_action")
        .count();
    assert_eq!(four_eyes, 2, "one alert per request");
}

async fn revoking_everything_of_a_tenant_waits_for_a_second_person(backend: Backend) {
    let s = service(backend).await;
    let token = s.access_token().await;
    let sec = staff_member(&s.w.app, "sec@example.com", "security", None).await;
    let page = sec.page_with_form("/t/acme/credentials").await;
    assert!(text_of(&page, "#revoke-everything").is_some());
    let wrong_slug = sec
        .submit(
            "/t/acme/credentials",
            "/t/acme/revoke-everything",
            &[("confirm_slug", "acne"), ("reason", "breach")],
        )
        .await;
    assert_eq!(wrong_slug.status(), StatusCode::BAD_REQUEST);
    let id = requested_approval(
        &sec.submit(
            "/t/acme/credentials",
            "/t/acme/revoke-everything",
            &[
                ("confirm_slug", "acme"),
                ("reason", "partner database breached"),
            ],
        )
        .await,
    );
    assert!(s.is_active(&token).await, "nothing changes before approval");
    // Support staff of the tenant cannot see the queue at all.
    assert_eq!(
        s.w.support.get(&format!("/approvals/{id}")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_redirect_to(
        &approve(&s.w.app, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    // Every credential went, the tenant's own gateway's included: nothing authenticates.
    let introspected = s
        .post_basic(
            "/t/acme/oauth/introspect",
            &s.gateway,
            &[("token", token.as_str())],
        )
        .await;
    assert_eq!(introspected.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.token(&s.client, &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let listed =
        s.w.app
            .page_with_form("/t/acme/credentials?status=active")
            .await;
    assert!(all_text_of(&listed, "#credentials tbody tr").is_empty());
    let revoked = s
        .w
        .app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "credential_revoked" && e.details.contains(r#""scope":"tenant""#))
        .unwrap();
    assert!(revoked.details.contains("partner database breached"));
}

async fn two_approvals_at_once_execute_once(backend: Backend) {
    let s = service(backend).await;
    let root2 = staff_member(&s.w.app, "root2@example.com", "superadmin", None).await;
    let sec = staff_member(&s.w.app, "sec@example.com", "security", None).await;
    let requested =
        s.w.app
            .submit(
                "/t/acme/credentials",
                "/t/acme/revoke-everything",
                &[("confirm_slug", "acme"), ("reason", "incident drill")],
            )
            .await;
    let id = requested_approval(&requested);
    // Two people in the console and the same approver several more times through the use case,
    // all at once: one execution, every other attempt told it was already decided.
    let approver =
        s.w.app
            .core
            .store
            .find_user(user_id(&s.w.app, "root2@example.com").await)
            .await
            .unwrap()
            .unwrap();
    let context = RequestContext::default();
    let direct = (0..4).map(|_| approvals::approve(&s.w.app.core, &approver, &id, &context));
    let (by_root2, by_sec, direct) = tokio::join!(
        approve(&root2, &id),
        approve(&sec, &id),
        futures_util::future::join_all(direct)
    );
    let approved_in_console = [by_root2.status(), by_sec.status()]
        .iter()
        .filter(|status| **status == StatusCode::SEE_OTHER)
        .count();
    let approved_directly = direct.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(approved_in_console + approved_directly, 1);
    let events = s.w.app.events().await;
    let count = |kind: &str| events.iter().filter(|e| e.event_type == kind).count();
    assert_eq!(count("approval_executed"), 1);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == "credential_revoked"
                && e.details.contains(r#""scope":"tenant""#))
            .count(),
        1
    );
}

async fn approvals_by_key_are_listed_requested_and_cancelled(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    staff_member(&app, "root2@example.com", "superadmin", None).await;
    staff_member(&app, "sec@example.com", "security", None).await;
    let sec_id = user_id(&app, "sec@example.com").await;
    let mine = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let theirs = Api {
        app: &app,
        key: key_for(&app, "root2@example.com", &["all"], &[]).await,
    };

    let no_reason = mine
        .post(
            &format!("/api/v1/staff/{sec_id}/roles"),
            json!({ "role": "superadmin" }),
        )
        .await;
    let body = problem(no_reason, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(body["field"], "reason");
    let requested = mine
        .post(
            &format!("/api/v1/staff/{sec_id}/roles"),
            json!({ "role": "superadmin", "reason": "second owner" }),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let approval: Value = requested.json().await.unwrap();
    assert_eq!(approval["kind"], "grant_role");
    assert_eq!(approval["subject_id"], sec_id.to_string().as_str());
    let id = approval["id"].as_str().unwrap().to_owned();
    let twice = mine
        .post(
            &format!("/api/v1/staff/{sec_id}/roles"),
            json!({ "role": "superadmin", "reason": "second owner" }),
        )
        .await;
    problem(twice, StatusCode::CONFLICT).await;

    let suspend = mine
        .post(
            "/api/v1/tenants/acme/suspend",
            json!({ "confirm_slug": "acme", "reason": "unpaid" }),
        )
        .await;
    assert_eq!(suspend.status(), StatusCode::ACCEPTED);
    let kill = mine
        .post(
            "/api/v1/tenants/acme/revoke-everything",
            json!({ "confirm_slug": "acme", "reason": "breach" }),
        )
        .await;
    assert_eq!(kill.status(), StatusCode::ACCEPTED);
    let listed: Value = theirs.get("/api/v1/approvals").await.json().await.unwrap();
    let kinds: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["revoke_tenant", "suspend_tenant", "grant_role"]);
    let paged: Value = theirs
        .get("/api/v1/approvals?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let cursor = paged["next_cursor"].as_str().unwrap().to_owned();
    let rest: Value = theirs
        .get(&format!("/api/v1/approvals?limit=2&cursor={cursor}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["id"], id.as_str());
    problem(
        theirs.get("/api/v1/approvals?status=maybe").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    // Only the requester cancels.
    let cancel = format!("/api/v1/approvals/{id}/cancel");
    problem(theirs.post(&cancel, json!({})).await, StatusCode::FORBIDDEN).await;
    let cancelled: Value = mine.post(&cancel, json!({})).await.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    problem(mine.post(&cancel, json!({})).await, StatusCode::CONFLICT).await;
    let user = app.core.store.find_user(sec_id).await.unwrap().unwrap();
    assert_eq!(roles_of(&user), ["security"]);
    let tenant = tokenbroker::domain::tenants::by_slug(&app.core, "acme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tenant.status.as_str(), "active", "suspension still waits");
}

async fn an_invitation_to_superadmin_is_sent_only_after_approval(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let root2 = staff_member(&app, "root2@example.com", "superadmin", None).await;
    let invite_new = async |reason: &str| {
        app.submit(
            "/admin/invitations",
            "/admin/invitations",
            &[
                ("email", "new@example.com"),
                ("display_name", "New Owner"),
                ("role", "superadmin"),
                ("reason", reason),
            ],
        )
        .await
    };
    assert_eq!(invite_new("").await.status(), StatusCode::BAD_REQUEST);
    let id = requested_approval(&invite_new("second owner for the night shift").await);
    assert!(
        !mails_to(&app, "new@example.com")
            .await
            .iter()
            .any(|m| m.contains("You are invited")),
        "no invitation before approval"
    );
    assert_redirect_to(
        &approve(&root2, &id).await,
        &format!("/approvals/{id}?notice=approved"),
    );
    let link = invitation_link(&app, "new@example.com").await;
    let newcomer = accept(&app, &link, STAFF_PASSWORD).await;
    assert!(
        text_of(&newcomer.dashboard_html().await, ".roles")
            .unwrap()
            .contains("Superadmin")
    );
    let sent = app
        .events()
        .await
        .into_iter()
        .find(|e| e.event_type == "invitation_sent")
        .unwrap();
    assert!(
        sent.details.contains(&id),
        "the invitation names its approval"
    );

    // By key: the answer says the invitation waits.
    let api = Api {
        app: &app,
        key: key_for(&app, ADMIN_EMAIL, &["all"], &[]).await,
    };
    let invited = api
        .post(
            "/api/v1/staff/invitations",
            json!({ "email": "sec@example.com", "display_name": "Sec", "role": "security",
                    "reason": "incident response" }),
        )
        .await;
    assert_eq!(invited.status(), StatusCode::ACCEPTED);
    let invited: Value = invited.json().await.unwrap();
    assert_eq!(invited["delivery"], "after_approval");
    assert_eq!(invited["approval"]["kind"], "invite_staff");
}

async fn a_single_superadmin_is_told_nobody_else_can_approve(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    staff_member(&app, "sec@example.com", "security", None).await;
    let sec_id = user_id(&app, "sec@example.com").await;

    let settings = app.page_with_form("/t/acme/settings").await;
    assert!(text_of(&settings, "#no-second-person").is_some());
    assert!(!settings.contains("Ask to suspend"));
    let person = app.page_with_form(&format!("/admin/users/{sec_id}")).await;
    assert!(
        text_of(&person, "#grant-reason-hint")
            .unwrap()
            .contains("nobody else")
    );
    let refused = ask(
        &app,
        &sec_id.to_string(),
        "roles",
        &[("role", "superadmin"), ("reason", "need a second owner")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(
        text_of(&refused.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("Nobody else can approve this")
    );
    // Security staff may approve a tenant-wide revocation, so that one can be asked for.
    let credentials = app.page_with_form("/t/acme/credentials").await;
    assert!(text_of(&credentials, "#revoke-everything form").is_some());
}

on_both_backends!(
    granting_and_removing_superadmin_waits_for_a_second_superadmin,
    a_rejected_or_cancelled_request_changes_nothing_and_cannot_be_approved,
    a_request_lapses_after_a_day,
    assisted_recovery_after_approval_mails_a_single_use_link,
    revoking_everything_of_a_tenant_waits_for_a_second_person,
    two_approvals_at_once_execute_once,
    approvals_by_key_are_listed_requested_and_cancelled,
    an_invitation_to_superadmin_is_sent_only_after_approval,
    a_single_superadmin_is_told_nobody_else_can_approve,
);
