//! Credentials end to end: expiry and its notice, filters and keyset paging, bulk revocation, racing
//! revocations, client secret rotation, and tenant isolation of grant ids.

use std::time::Duration;

use reqwest::StatusCode;
use tokenbroker::domain::partners;

use crate::helpers::*;
use crate::on_both_backends;
use crate::partners::{grant_page_of, mails_to, mint, pending_request, retrieve, world};
use crate::staff_kit::*;

async fn credentials_expire_on_time_and_are_swept(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = grant_page_of(&w, &request).await;
    let too_long = mint(&w, &grant_page, "client", "91").await;
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert_redirect_to(
        &mint(&w, &grant_page, "client", "1").await,
        &format!("{grant_page}?notice=minted"),
    );
    let secret = retrieve(&w).await;
    assert!(secret.starts_with("tbs_live_"));
    assert!(
        partners::verify(&w.app.core, &secret, None)
            .await
            .unwrap()
            .is_some()
    );

    // Expiring within a week: the tenant admins hear about it, once however often the sweep runs.
    w.app.run_job(Job::Sweep).await;
    w.app.run_job(Job::Sweep).await;
    let notices = mails_to(&w.app, "ta@example.com")
        .await
        .into_iter()
        .filter(|m| m.contains("expires in a week"))
        .count();
    assert_eq!(notices, 1);

    w.app.clock.advance(Duration::from_secs(2 * 86_400));
    assert!(
        partners::verify(&w.app.core, &secret, None)
            .await
            .unwrap()
            .is_none(),
        "expired by time, before any sweep"
    );
    w.app.run_job(Job::Sweep).await;

    // Two days later every browser session has idled out too: read the outcome from storage.
    let tenant = w
        .app
        .core
        .store
        .tenant_by_slug("acme")
        .await
        .unwrap()
        .unwrap();
    let listed = w
        .app
        .core
        .store
        .credentials_of(tenant.id, &Default::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(listed[0].status, "expired");
    assert!(
        w.app
            .events()
            .await
            .iter()
            .any(|e| e.event_type == "credential_expired")
    );
}

async fn revoking_at_the_same_time_from_two_places_revokes_once(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = grant_page_of(&w, &request).await;
    mint(&w, &grant_page, "api_token", "").await;
    let token = retrieve(&w).await;
    let credential = partners::verify(&w.app.core, &token, None)
        .await
        .unwrap()
        .unwrap()
        .credential_id;
    let revoke = format!("/t/acme/credentials/{credential}/revoke");
    let unknown = w
        .support
        .submit(
            "/t/acme/credentials",
            "/t/acme/credentials/no-such-credential/revoke",
            &[("reason", "typo")],
        )
        .await;
    assert_eq!(
        unknown.status(),
        StatusCode::NOT_FOUND,
        "revoking what this tenant does not have is not found"
    );

    let (a, b) = tokio::join!(
        w.support
            .submit("/t/acme/credentials", &revoke, &[("reason", "one")]),
        w.tenant_admin
            .submit("/t/acme/credentials", &revoke, &[("reason", "two")]),
    );

    assert_eq!(
        (a.status(), b.status()),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER)
    );
    assert_eq!(
        w.app
            .events()
            .await
            .iter()
            .filter(|e| e.event_type == "credential_revoked")
            .count(),
        1
    );
    assert!(
        partners::verify(&w.app.core, &token, None)
            .await
            .unwrap()
            .is_none()
    );
}

async fn revoking_a_grant_or_a_partner_needs_the_slug_and_stops_every_credential(backend: Backend) {
    let w = world(backend).await;
    let first = pending_request(&w).await;
    let grant_page = grant_page_of(&w, &first).await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        mint(&w, &grant_page, "api_token", "").await;
        tokens.push(retrieve(&w).await);
    }
    let verifies = |token: String| {
        let core = w.app.core.clone();
        async move {
            partners::verify(&core, &token, None)
                .await
                .unwrap()
                .is_some()
        }
    };

    let revoke = format!("{grant_page}/revoke");
    let unconfirmed = w
        .support
        .submit(
            &grant_page,
            &revoke,
            &[("reason", "Contract ended"), ("confirm_slug", "acne")],
        )
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::BAD_REQUEST);
    assert!(verifies(tokens[0].clone()).await && verifies(tokens[1].clone()).await);

    let revoked = w
        .support
        .submit(
            &grant_page,
            &revoke,
            &[("reason", "Contract ended"), ("confirm_slug", "acme")],
        )
        .await;
    assert_redirect_to(&revoked, &format!("{grant_page}?notice=revoked"));
    assert!(!verifies(tokens[0].clone()).await && !verifies(tokens[1].clone()).await);
    let bulk = w
        .app
        .events()
        .await
        .into_iter()
        .find(|e| e.details.contains(r#""scope":"grant""#))
        .unwrap();
    assert!(
        bulk.details.contains(r#""credentials_revoked":2"#),
        "{}",
        bulk.details
    );
    assert_eq!(
        mint(&w, &grant_page, "api_token", "").await.status(),
        StatusCode::BAD_REQUEST,
        "nothing new under a revoked grant"
    );

    // A second grant for the same partner; revoking the partner stops it too.
    let second = pending_request(&w).await;
    let second_page = grant_page_of(&w, &second).await;
    mint(&w, &second_page, "api_token", "").await;
    let token = retrieve(&w).await;
    assert!(verifies(token.clone()).await);
    let everything = w
        .tenant_admin
        .submit(
            &second_page,
            &format!("{second_page}/revoke-partner"),
            &[("reason", "Fraud"), ("confirm_slug", "acme")],
        )
        .await;
    assert_redirect_to(&everything, &format!("{second_page}?notice=revoked"));
    assert!(!verifies(token).await);
}

async fn the_credentials_list_filters_and_pages_by_keyset(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = grant_page_of(&w, &request).await;
    for (kind, days) in [("api_token", "30"), ("client", "30"), ("api_token", "3")] {
        mint(&w, &grant_page, kind, days).await;
        retrieve(&w).await;
    }
    let count = |query: &'static str| {
        let support = &w.support;
        async move {
            let html = support
                .page_with_form(&format!("/t/acme/credentials?{query}"))
                .await;
            all_text_of(&html, "tr[data-credential] td:first-child").len()
        }
    };

    assert_eq!(count("").await, 3);
    assert_eq!(count("kind=client").await, 1);
    assert_eq!(count("status=expiring").await, 1);
    assert_eq!(count("partner=PARTNER.example").await, 3);
    assert_eq!(count("partner=nobody").await, 0);
    assert_eq!(count("prefix=tbc_live_").await, 1);
    assert_eq!(count("prefix=tbk_live_").await, 2);
    assert_eq!(count("prefix=tbs_live_").await, 1, "a client by its secret");
    assert_eq!(count("prefix=tb").await, 3, "ids and secrets both");
    assert_eq!(
        count("prefix=%25").await,
        0,
        "LIKE wildcards are matched literally"
    );
    assert_eq!(count("status=revoked").await, 0);

    // Keyset paging: two at a time, then the rest, nothing twice.
    let tenant = w
        .app
        .core
        .store
        .tenant_by_slug("acme")
        .await
        .unwrap()
        .unwrap();
    let all = Default::default();
    let first = w
        .app
        .core
        .store
        .credentials_of(tenant.id, &all, None, 2)
        .await
        .unwrap();
    let last = first.last().unwrap();
    let rest = w
        .app
        .core
        .store
        .credentials_of(tenant.id, &all, Some((last.created_at, &last.id)), 2)
        .await
        .unwrap();
    assert_eq!((first.len(), rest.len()), (2, 1));
    assert!(rest.iter().all(|c| first.iter().all(|f| f.id != c.id)));
}

async fn a_client_rotates_through_two_live_secrets(backend: Backend) {
    let w = world(backend).await;
    let request = pending_request(&w).await;
    let grant_page = grant_page_of(&w, &request).await;
    mint(&w, &grant_page, "client", "").await;
    let first = retrieve(&w).await;
    let credential = partners::verify(&w.app.core, &first, None)
        .await
        .unwrap()
        .unwrap()
        .credential_id;
    let secrets = format!("/t/acme/credentials/{credential}/secrets");

    let page = format!("/t/acme/credentials/{credential}");
    assert_redirect_to(
        &w.support.submit(&page, &secrets, &[]).await,
        &format!("{page}?notice=secret_added"),
    );
    let second = retrieve(&w).await;

    assert_ne!(first, second);
    for secret in [&first, &second] {
        let verified = partners::verify(&w.app.core, secret, None)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            verified.credential_id, credential,
            "both secrets belong to the one client"
        );
    }
    let third = w.support.submit(&page, &secrets, &[]).await;
    assert_eq!(third.status(), StatusCode::BAD_REQUEST);
    assert!(third.text().await.unwrap().contains("two live secrets"));

    // The partner has switched: support retires the first secret from the credential's page.
    let html = w.support.get(&page).await.text().await.unwrap();
    let rows = secret_rows(&html);
    assert_eq!(rows.len(), 2, "{html}");
    assert!(
        rows.iter()
            .all(|(_, state, retirable)| state == "live" && *retirable)
    );
    let first_id = rows[0].0.clone();
    let retire = format!("{page}/secrets/{first_id}/retire");
    assert_redirect_to(
        &w.support.submit(&page, &retire, &[]).await,
        &format!("{page}?notice=secret_retired"),
    );
    assert!(
        partners::verify(&w.app.core, &first, None)
            .await
            .unwrap()
            .is_none(),
        "a retired secret stops working at once"
    );
    assert!(
        partners::verify(&w.app.core, &second, None)
            .await
            .unwrap()
            .is_some()
    );
    let html = w.support.get(&page).await.text().await.unwrap();
    let rows = secret_rows(&html);
    assert_eq!(rows[0].1, "retired");
    assert!(
        rows.iter().all(|(_, _, retirable)| !retirable),
        "the last live secret offers no retire button"
    );
    let last = format!("{page}/secrets/{}/retire", rows[1].0);
    let refused = w.support.submit(&page, &last, &[]).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("revoke the credential instead")
    );
    assert!(
        partners::verify(&w.app.core, &second, None)
            .await
            .unwrap()
            .is_some()
    );
    let retired = w
        .app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "credential_secret_retired")
        .collect::<Vec<_>>();
    assert_eq!(retired.len(), 1);
    assert!(retired[0].details.contains(&first_id));
    assert!(!retired[0].details.contains(&first));
}

/// (id, state, offers a retire button) of each row of a credential page's secrets table.
fn secret_rows(html: &str) -> Vec<(String, String, bool)> {
    let document = scraper::Html::parse_document(html);
    let rows = scraper::Selector::parse("#secrets tbody tr").unwrap();
    let button = scraper::Selector::parse("form[action$='/retire'] button").unwrap();
    document
        .select(&rows)
        .map(|row| {
            (
                row.value().attr("data-secret").unwrap().to_owned(),
                row.value().attr("data-state").unwrap().to_owned(),
                row.select(&button).next().is_some(),
            )
        })
        .collect()
}

async fn a_grant_asked_for_under_another_tenant_is_not_found(backend: Backend) {
    let w = world(backend).await;
    create_tenant(&w.app, "Globex", "globex", "#654321", None).await;
    let request = pending_request(&w).await;
    let grant_page = grant_page_of(&w, &request).await;
    let grant = grant_page.rsplit('/').next().unwrap().to_owned();

    // The superadmin may enter both tenants, so only the tenant filter in storage stands in the way.
    assert_eq!(
        w.app
            .get(&format!("/t/globex/grants/{grant}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.app
            .get(&format!("/t/globex/requests/{request}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let minted = w
        .app
        .submit(
            "/t/globex/credentials",
            &format!("/t/globex/grants/{grant}/mint"),
            &[("kind", "api_token"), ("lifetime_days", "")],
        )
        .await;
    assert_eq!(minted.status(), StatusCode::NOT_FOUND);
    let acme = w
        .app
        .core
        .store
        .tenant_by_slug("acme")
        .await
        .unwrap()
        .unwrap();
    assert!(
        w.app
            .core
            .store
            .credentials_of(acme.id, &Default::default(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

on_both_backends!(
    a_grant_asked_for_under_another_tenant_is_not_found,
    a_client_rotates_through_two_live_secrets,
    the_credentials_list_filters_and_pages_by_keyset,
    revoking_a_grant_or_a_partner_needs_the_slug_and_stops_every_credential,
    credentials_expire_on_time_and_are_swept,
    revoking_at_the_same_time_from_two_places_revokes_once,
);
