//! Staff administration: invitations by e-mail (file transport and a real SMTP server that is out of
//! service at first), role grants taking effect at once, deactivation, and what other roles may not do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

async fn an_invited_person_sets_a_password_and_a_passkey_and_gets_their_role(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;

    let sent = invite(
        &app,
        "Sam@Example.com",
        "Sam Support",
        "support",
        Some("acme"),
    )
    .await;
    assert_redirect_to(&sent, "/admin/invitations?notice=sent");
    assert!(
        app.page_with_form("/admin/invitations")
            .await
            .contains("Sam@Example.com")
    );
    let link = invitation_link(&app, "Sam@Example.com").await;
    let raw = read_mail(&app.mail_dir).pop().unwrap();
    assert!(raw.contains("Subject: You are invited to Token Broker"));
    assert!(
        raw.contains("as Support for Acme."),
        "the invitation names the tenant: {raw}"
    );
    let accept_page = app.new_browser().page_with_form(&link).await;
    assert!(accept_page.contains("<strong>Support for Acme</strong>"));
    assert!(!raw.contains(ADMIN_PASSWORD));

    let sam = accept(&app, &link, STAFF_PASSWORD).await;

    let dashboard = sam.page_with_form("/").await;
    assert_eq!(all_text_of(&dashboard, "#my-tenants a"), vec!["Acme"]);
    assert_eq!(
        all_text_of(&dashboard, ".roles li"),
        vec!["Support Acme"],
        "a tenant role names its tenant, never its internal id"
    );
    assert_eq!(all_text_of(&dashboard, ".roles a"), vec!["Acme"]);
    assert_eq!(sam.get("/t/acme").await.status(), StatusCode::OK);
    let events = app.events().await;
    assert!(events.iter().any(|e| e.event_type == "invitation_sent"));
    assert!(events.iter().any(|e| e.event_type == "invitation_accepted"));
    // The delivered message's body no longer sits in the database with its link.
    let pending = app.core.store.unsent_mail().await.unwrap();
    assert_eq!(pending, 0);
}

async fn invitation_links_work_once_and_expire(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    invite_to_acme(&app, "one@example.com", "One").await;
    let link = invitation_link(&app, "one@example.com").await;
    accept(&app, &link, STAFF_PASSWORD).await;

    let reused = app.new_browser().get(&link).await;
    assert_eq!(reused.status(), StatusCode::GONE);
    assert!(
        reused
            .text()
            .await
            .unwrap()
            .contains("already been accepted")
    );

    invite_to_acme(&app, "late@example.com", "Late").await;
    let late = invitation_link(&app, "late@example.com").await;
    app.clock.advance(Duration::from_secs(73 * 3600));
    let expired = app.new_browser().get(&late).await;
    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(expired.text().await.unwrap().contains("expired"));
    assert_eq!(
        app.new_browser()
            .get("/invite?token=guessed")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn inviting_an_existing_account_or_a_wrong_role_scope_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;

    let existing = invite(&app, ADMIN_EMAIL, "Again", "security", None).await;
    assert_eq!(existing.status(), StatusCode::BAD_REQUEST);
    assert!(
        existing
            .text()
            .await
            .unwrap()
            .contains("already has an account")
    );
    // The same mailbox behind a display name is not a new address.
    let disguised = invite(
        &app,
        &format!("Ada <{ADMIN_EMAIL}>"),
        "Again",
        "security",
        None,
    )
    .await;
    assert_eq!(disguised.status(), StatusCode::BAD_REQUEST);
    assert!(disguised.text().await.unwrap().contains("valid e-mail"));
    let no_tenant = invite(&app, "x@example.com", "X", "support", None).await;
    assert!(no_tenant.text().await.unwrap().contains("Pick the tenant"));
    let global_with_tenant = invite(&app, "x@example.com", "X", "security", Some("acme")).await;
    assert!(
        global_with_tenant
            .text()
            .await
            .unwrap()
            .contains("do not pick one")
    );
    assert!(
        app.core
            .store
            .pending_invitations(app.now_ms())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.core.store.unsent_mail().await.unwrap(), 0);
}

async fn a_withdrawn_invitation_no_longer_works(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    invite_to_acme(&app, "gone@example.com", "Gone").await;
    let link = invitation_link(&app, "gone@example.com").await;
    let id = app
        .core
        .store
        .pending_invitations(app.now_ms())
        .await
        .unwrap()[0]
        .id
        .clone();

    let withdrawn = app
        .submit(
            "/admin/invitations",
            &format!("/admin/invitations/{id}/revoke"),
            &[],
        )
        .await;

    assert_redirect_to(&withdrawn, "/admin/invitations?notice=revoked");
    assert_eq!(
        app.new_browser().get(&link).await.status(),
        StatusCode::GONE
    );
}

async fn roles_granted_and_removed_apply_on_the_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    let sam = staff_member(&app, "sam@example.com", "support", Some("acme")).await;
    let sam_id = user_id(&app, "sam@example.com").await;
    assert_eq!(sam.get("/t/globex").await.status(), StatusCode::NOT_FOUND);

    let page = format!("/admin/users/{sam_id}");
    let globex = tenant_id(&app, "globex").await;
    let granted = app
        .submit(
            &page,
            &format!("{page}/roles"),
            &[("role", "tenant_admin"), ("tenant", &globex)],
        )
        .await;
    assert_redirect_to(&granted, &format!("{page}?notice=granted"));
    assert_eq!(sam.get("/t/globex").await.status(), StatusCode::OK);

    let duplicate = app
        .submit(
            &page,
            &format!("{page}/roles"),
            &[("role", "tenant_admin"), ("tenant", &globex)],
        )
        .await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);

    let user = app.core.store.find_user(sam_id).await.unwrap().unwrap();
    let assignment = user
        .roles
        .iter()
        .find(|r| r.tenant_id.as_deref() == Some(globex.as_str()))
        .unwrap()
        .id
        .clone();
    let revoked = app
        .submit(&page, &format!("{page}/roles/{assignment}/revoke"), &[])
        .await;
    assert_redirect_to(&revoked, &format!("{page}?notice=revoked"));
    assert_eq!(sam.get("/t/globex").await.status(), StatusCode::NOT_FOUND);
    let events = app.events().await;
    let grant = events
        .iter()
        .find(|e| e.event_type == "role_granted")
        .unwrap();
    assert_eq!(grant.subject.as_deref(), Some(sam_id.to_string().as_str()));
    assert!(grant.details.contains(r#""after":"granted""#));
    assert!(events.iter().any(|e| e.event_type == "role_revoked"));
}

async fn role_changes_ask_for_a_fresh_passkey(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let sec = staff_member(&app, "sec@example.com", "security", None).await;
    drop(sec);
    let sec_id = user_id(&app, "sec@example.com").await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let page = format!("/admin/users/{sec_id}");

    let asked = app
        .submit(
            &page,
            &format!("{page}/roles"),
            &[("role", "superadmin"), ("tenant", "")],
        )
        .await;

    assert_redirect_to(&asked, "/step-up");
    let continue_page = app
        .answer_passkey("/step-up", "/step-up")
        .await
        .text()
        .await
        .unwrap();
    assert!(continue_page.contains(r#"name="role" value="superadmin""#));
}

async fn deactivation_ends_every_session_and_reactivation_brings_none_back(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let sec = staff_member(&app, "sec@example.com", "security", None).await;
    let cookie = sec.session_cookie().unwrap();
    let sec_id = user_id(&app, "sec@example.com").await;
    let page = format!("/admin/users/{sec_id}");

    assert_redirect_to(
        &app.submit(&page, &format!("{page}/deactivate"), &[]).await,
        &format!("{page}?notice=deactivated"),
    );
    assert_redirect_to(&sec.get("/").await, "/login");
    let refused = app
        .new_browser()
        .login("sec@example.com", STAFF_PASSWORD)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        text_of(&refused.text().await.unwrap(), ".alert")
            .unwrap()
            .contains("deactivated")
    );

    assert_redirect_to(
        &app.submit(&page, &format!("{page}/reactivate"), &[]).await,
        &format!("{page}?notice=reactivated"),
    );
    assert_redirect_to(&app.browser_with_cookie(&cookie).get("/").await, "/login");
    let own = crate::passkeys::admin_id(&app).await;
    let myself = app
        .submit(
            &format!("/admin/users/{own}"),
            &format!("/admin/users/{own}/deactivate"),
            &[],
        )
        .await;
    assert_eq!(myself.status(), StatusCode::BAD_REQUEST);
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "user_deactivated"
                && e.details.contains(r#""before":"active""#))
    );
}

async fn a_tenant_admin_cannot_grant_roles_and_support_cannot_touch_other_tenants(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    create_tenant(&app, "Globex", "globex", "#654321", None).await;
    let ta = staff_member(&app, "ta@example.com", "tenant_admin", Some("acme")).await;
    let sam = staff_member(&app, "sam@example.com", "support", Some("acme")).await;
    let sam_id = user_id(&app, "sam@example.com").await;
    let acme = tenant_id(&app, "acme").await;

    let html = ta.page_with_form("/").await;
    let grant = ta
        .post_form(
            &format!("/admin/users/{sam_id}/roles"),
            &[
                ("csrf_token", &csrf_token(&html)),
                ("role", "tenant_admin"),
                ("tenant", &acme),
            ],
        )
        .await;
    assert_eq!(grant.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.core
            .store
            .find_user(sam_id)
            .await
            .unwrap()
            .unwrap()
            .roles
            .len(),
        1
    );

    let html = sam.page_with_form("/").await;
    let foreign = sam
        .post_form(
            "/t/globex/suspend",
            &[
                ("csrf_token", &csrf_token(&html)),
                ("confirm_slug", "globex"),
            ],
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let own = sam
        .post_form(
            "/t/acme/suspend",
            &[("csrf_token", &csrf_token(&html)), ("confirm_slug", "acme")],
        )
        .await;
    assert_eq!(own.status(), StatusCode::FORBIDDEN);
    assert!(!app.page_with_form("/t/globex").await.contains("suspended"));
}

/// A local SMTP server that keeps what it receives, and while it is "down" refuses service
/// (421, as an SMTP server being taken out of service does) instead of accepting mail.
#[derive(Clone, Default)]
struct Sink {
    received: Arc<Mutex<Vec<String>>>,
    up: Arc<AtomicBool>,
    current: Vec<u8>,
}

impl mailin_embedded::Handler for Sink {
    fn helo(&mut self, _ip: std::net::IpAddr, _domain: &str) -> mailin_embedded::Response {
        if self.up.load(Ordering::SeqCst) {
            mailin_embedded::response::OK
        } else {
            mailin_embedded::response::NO_SERVICE
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let message = String::from_utf8_lossy(&std::mem::take(&mut self.current)).into_owned();
        self.received.lock().unwrap().push(message);
        mailin_embedded::response::OK
    }
}

/// A local SMTP server, down until told otherwise: its port, what it received, and its switch.
fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
    // The port stays bound from here to the end: the SMTP server serves on this very listener
    // (connections wait in its backlog until it accepts them), so no other test can take the port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = Sink::default();
    let received = sink.received.clone();
    let up = sink.up.clone();
    let mut server = mailin_embedded::Server::new(sink);
    server.with_tcp_listener(listener).with_num_threads(2);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, received, up)
}

async fn invitations_wait_out_an_smtp_outage_and_are_delivered_once_it_is_back(backend: Backend) {
    let (port, received, up) = smtp_server();
    let app = spawn_app_with(backend, |settings| {
        settings.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
    })
    .await;
    app.create_admin().await;

    invite_to_acme(&app, "late@example.com", "Late").await;
    assert_eq!(app.run_job(Job::Outbox).await, 0, "the SMTP server is down");
    assert_eq!(
        app.core.store.unsent_mail().await.unwrap(),
        1,
        "nothing is lost"
    );

    up.store(true, Ordering::SeqCst);
    // Not before its retry time…
    assert_eq!(app.run_job(Job::Outbox).await, 0);
    app.clock.advance(Duration::from_secs(11));
    // …then delivered, exactly once.
    assert_eq!(app.run_job(Job::Outbox).await, 1);
    assert_eq!(app.run_job(Job::Outbox).await, 0);
    assert_eq!(app.core.store.unsent_mail().await.unwrap(), 0);

    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 1);
    let link = link_in(&messages[0]);
    assert!(messages[0].contains("late@example.com"));
    accept(&app, &link, STAFF_PASSWORD).await;
}

async fn after_a_long_smtp_outage_mail_goes_out_within_a_minute_of_smtp_coming_back(
    backend: Backend,
) {
    let (port, received, up) = smtp_server();
    let app = spawn_app_with(backend, |settings| {
        settings.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
    })
    .await;
    app.create_admin().await;
    invite_to_acme(&app, "patient@example.com", "Patient").await;

    // Half an hour of outage, the outbox pass looking every 30 s (the back-off has long reached
    // its cap, which once was ten minutes).
    for _ in 0..60 {
        app.run_job(Job::Outbox).await;
        app.clock.advance(Duration::from_secs(30));
    }
    assert!(received.lock().unwrap().is_empty());
    // The worst moment for SMTP to come back: right after a failed attempt.
    app.clock.advance(Duration::from_secs(60));
    assert_eq!(app.run_job(Job::Outbox).await, 0, "still down");
    up.store(true, Ordering::SeqCst);

    app.clock.advance(Duration::from_secs(55));
    assert_eq!(app.run_job(Job::Outbox).await, 1, "retried within a minute");
    assert_eq!(received.lock().unwrap().len(), 1);
}

async fn mail_that_fails_for_three_days_is_given_up(backend: Backend) {
    let (port, received, up) = smtp_server();
    let app = spawn_app_with(backend, |settings| {
        settings.smtp_url = Some(format!("smtp://127.0.0.1:{port}").into());
    })
    .await;
    app.create_admin().await;
    invite_to_acme(&app, "never@example.com", "Never").await;
    assert_eq!(app.run_job(Job::Outbox).await, 0);

    app.clock.advance(Duration::from_secs(3 * 24 * 60 * 60));
    assert_eq!(
        app.run_job(Job::Outbox).await,
        0,
        "the last attempt fails too"
    );
    up.store(true, Ordering::SeqCst);
    app.clock.advance(Duration::from_secs(60 * 60));

    assert_eq!(app.run_job(Job::Outbox).await, 0, "never retried again");
    assert!(received.lock().unwrap().is_empty());
    assert_eq!(app.core.store.unsent_mail().await.unwrap(), 0);
    assert_eq!(app.core.store.abandoned_mail().await.unwrap(), 1);
}

on_both_backends!(
    an_invited_person_sets_a_password_and_a_passkey_and_gets_their_role,
    invitation_links_work_once_and_expire,
    inviting_an_existing_account_or_a_wrong_role_scope_is_refused,
    a_withdrawn_invitation_no_longer_works,
    roles_granted_and_removed_apply_on_the_next_request,
    role_changes_ask_for_a_fresh_passkey,
    deactivation_ends_every_session_and_reactivation_brings_none_back,
    a_tenant_admin_cannot_grant_roles_and_support_cannot_touch_other_tenants,
    invitations_wait_out_an_smtp_outage_and_are_delivered_once_it_is_back,
    after_a_long_smtp_outage_mail_goes_out_within_a_minute_of_smtp_coming_back,
    mail_that_fails_for_three_days_is_given_up,
);

/// The outbox clears a delivered mail's body; on SQLite the link must not survive in the file's
/// free space or in the write-ahead log either (a copy of the database file is a copy of every
/// one-time link still in it).
#[tokio::test]
async fn a_sent_invitation_link_is_nowhere_in_the_sqlite_files() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_admin().await;
    invite_to_acme(&app, "new@example.com", "New Person").await;
    let link = invitation_link(&app, "new@example.com").await;
    let token = link.trim_start_matches("/invite?token=");
    assert!(token.len() > 20, "{link}");

    let path = app
        .database_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    for file in [path.clone(), format!("{path}-wal")] {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the link's token is readable in {file}"
        );
    }
    // The link still works: only its copy in the outbox is gone.
    assert_eq!(app.new_browser().get(&link).await.status(), StatusCode::OK);
}
