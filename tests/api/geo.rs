//! Locations: a GeoIP fixture (written with mmdb-writer) or a trusted proxy's header gives events
//! their country, and sign-ins of one account from two countries in quick succession raise one
//! impossible-travel alert — for security staff, not for an unrelated tenant's admin.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use tokenbroker::domain::alerts::{DetectorPolicy, run_detectors};
use tokenbroker::domain::geo::Locator;

use crate::client::{all_text_of, csrf_token};
use crate::helpers::*;
use crate::on_both_backends;
use crate::staff_kit::*;

#[derive(Serialize)]
struct Record {
    country: Country,
}

#[derive(Serialize)]
struct Country {
    iso_code: String,
}

/// A country database: each network to its country code.
fn fixture(networks: &[(&str, &str)]) -> tempfile::NamedTempFile {
    let mut writer = mmdb_writer::Writer::new("Test-Country");
    for (network, code) in networks {
        let record = Record {
            country: Country {
                iso_code: (*code).to_owned(),
            },
        };
        writer
            .insert(network.parse::<ipnet::IpNet>().unwrap(), &record)
            .unwrap();
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), writer.to_bytes().unwrap()).unwrap();
    file
}

#[test]
fn the_geoip_database_locates_addresses_and_bad_files_are_named() {
    let db = fixture(&[("198.51.100.0/24", "DE"), ("203.0.113.0/24", "JP")]);
    let locator = Locator::open(Some(db.path()), false, None).unwrap();
    assert_eq!(
        locator
            .country_of("198.51.100.7".parse().unwrap())
            .as_deref(),
        Some("DE")
    );
    assert_eq!(
        locator
            .country_of("203.0.113.200".parse().unwrap())
            .as_deref(),
        Some("JP")
    );
    assert_eq!(
        locator.country_of("192.0.2.1".parse().unwrap()),
        None,
        "unknown is unknown"
    );

    let missing = std::path::Path::new("/nonexistent/GeoLite2-Country.mmdb");
    let error = Locator::open(Some(missing), false, None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("GeoLite2-Country.mmdb") && error.contains("geoip_optional"),
        "{error}"
    );
    let corrupt = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(corrupt.path(), b"not a maxmind database").unwrap();
    assert!(Locator::open(Some(corrupt.path()), false, None).is_err());
    let without = Locator::open(Some(corrupt.path()), true, None).unwrap();
    assert_eq!(without.country_of("198.51.100.7".parse().unwrap()), None);
}

/// Signs in with the password (the first factor) through a proxy that says where from.
async fn password_from(app: &TestApp, country: &str) {
    let browser = app.new_browser();
    let html = browser.get("/login").await.text().await.unwrap();
    let response = browser
        .client
        .post(browser.url("/login"))
        .header("X-Test-Country", country)
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&response, "/login/passkey");
}

async fn sign_ins_from_two_countries_raise_one_impossible_travel_alert(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.country_header = Some("X-Test-Country".into())
    })
    .await;
    app.create_admin().await;
    create_tenant(&app, "Acme", "acme", "#123456", None).await;
    let security = staff_member(&app, "sec@example.com", "security", None).await;
    let unrelated = staff_member(&app, "ta@acme.example", "tenant_admin", Some("acme")).await;

    password_from(&app, "DE").await;
    app.clock.advance(Duration::from_secs(20 * 60));
    password_from(&app, "jp").await;
    app.clock.advance(Duration::from_secs(3));
    run_detectors(&app.core, &DetectorPolicy::default())
        .await
        .unwrap();
    run_detectors(&app.core, &DetectorPolicy::default())
        .await
        .unwrap();

    let queue = security.page_with_form("/admin/alerts").await;
    let travel = all_text_of(
        &queue,
        "tr[data-detector=impossible_travel] td:nth-child(4)",
    );
    assert_eq!(travel.len(), 1, "{queue}");
    assert!(
        travel[0].contains("from DE and then from JP 20 minutes later"),
        "{}",
        travel[0]
    );
    assert!(
        all_text_of(
            &queue,
            "tr[data-detector=impossible_travel][data-severity=high]"
        )
        .len()
            == 1
    );
    assert!(
        all_text_of(
            &unrelated.page_with_form("/t/acme/alerts").await,
            "#alerts tbody tr"
        )
        .is_empty()
    );
    assert_eq!(
        unrelated.get("/admin/alerts").await.status(),
        StatusCode::FORBIDDEN
    );
    // The log knows where each sign-in came from.
    let from_japan = security
        .page_with_form("/admin/events?country=JP&type=login")
        .await;
    assert_eq!(all_text_of(&from_japan, "#events tbody tr").len(), 1);
}

async fn a_geoip_database_gives_events_their_country(backend: Backend) {
    let db = fixture(&[("127.0.0.0/8", "DE")]);
    let path = db.path().to_path_buf();
    let app = spawn_app_with(backend, move |s| s.geoip_database = Some(path)).await;
    app.create_admin().await;
    app.new_browser()
        .login(ADMIN_EMAIL, "a wrong password, surely")
        .await;
    let events = app.events().await;
    let failure = events
        .iter()
        .find(|e| e.event_type == "login" && e.outcome == "failure")
        .unwrap();
    assert_eq!(failure.country.as_deref(), Some("DE"));
}

/// A token for the service's client, asked for through a proxy that says where from.
async fn token_from(service: &crate::oauth_kit::Service, country: &str) {
    let issued = service
        .http
        .post(service.url("/t/acme/oauth/token"))
        .header(
            "authorization",
            crate::oauth_kit::basic(&service.client.id, &service.client.secret),
        )
        .header("X-Test-Country", country)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), StatusCode::OK);
}

async fn a_credential_used_from_two_countries_raises_one_travel_alert(backend: Backend) {
    let service = crate::oauth_kit::service_with(backend, |s| {
        s.country_header = Some("X-Test-Country".into())
    })
    .await;
    let app = &service.w.app;
    // Alerts of one credential collect per travel window (fixed two-hour buckets): start the
    // sequence where it fits in one.
    let window = 2 * 3600 * 1000;
    let left = window - app.now_ms() % window;
    if left < 13 * 60 * 1000 {
        app.clock.advance(Duration::from_millis(left as u64 + 1000));
    }
    // From Germany, then Japan ten minutes later, then both again: one alert for the window.
    for (country, minutes) in [("DE", 0), ("JP", 10), ("DE", 1), ("JP", 1)] {
        app.clock.advance(Duration::from_secs(minutes * 60));
        token_from(&service, country).await;
    }
    app.clock.advance(Duration::from_secs(3));
    run_detectors(&app.core, &DetectorPolicy::default())
        .await
        .unwrap();

    let queue = service
        .w
        .tenant_admin
        .page_with_form("/t/acme/alerts")
        .await;
    let travel = all_text_of(
        &queue,
        "tr[data-detector=impossible_travel][data-severity=medium] td:nth-child(4)",
    );
    assert_eq!(travel.len(), 1, "{queue}");
    assert!(
        travel[0].contains("obtained tokens from DE and then from JP 10 minutes later"),
        "{}",
        travel[0]
    );
    // Every issuance names the credential as its actor: that is what the detector followed.
    let issued = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.event_type == "token_issued")
        .collect::<Vec<_>>();
    assert_eq!(issued.len(), 4);
    let credential = issued[0].actor_id.clone().unwrap();
    assert!(
        issued
            .iter()
            .all(|e| e.actor_id.as_deref() == Some(credential.as_str()))
    );
    assert!(travel[0].contains(&credential), "{}", travel[0]);
}

/// The detector remembers where a credential was between its passes (the whereabouts are stored,
/// not read back from the log), lets a use older than the travel window go, and still sees the
/// credential hop back.
async fn a_credential_is_followed_from_one_detector_pass_to_the_next(backend: Backend) {
    let service = crate::oauth_kit::service_with(backend, |s| {
        s.country_header = Some("X-Test-Country".into())
    })
    .await;
    let app = &service.w.app;
    let token_and_detectors = async |country: &str| {
        token_from(&service, country).await;
        app.clock.advance(Duration::from_secs(3));
        run_detectors(&app.core, &DetectorPolicy::default())
            .await
            .unwrap();
    };
    // Read by someone signed in just now: hours pass in this test, and sessions with them.
    let travel = async |reader: &str| {
        let reader = staff_member(app, reader, "security", None).await;
        all_text_of(
            &reader.page_with_form("/admin/alerts").await,
            "tr[data-detector=impossible_travel] td:nth-child(4)",
        )
    };
    token_and_detectors("DE").await;
    app.clock.advance(Duration::from_secs(3 * 3600));
    token_and_detectors("JP").await;
    assert_eq!(
        travel("sec1@example.com").await,
        Vec::<String>::new(),
        "three hours is no travel"
    );
    app.clock.advance(Duration::from_secs(10 * 60));
    token_and_detectors("DE").await;
    let found = travel("sec2@example.com").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("obtained tokens from JP and then from DE 10 minutes later"),
        "{}",
        found[0]
    );
}

on_both_backends!(
    sign_ins_from_two_countries_raise_one_impossible_travel_alert,
    a_geoip_database_gives_events_their_country,
    a_credential_used_from_two_countries_raises_one_travel_alert,
    a_credential_is_followed_from_one_detector_pass_to_the_next,
);
