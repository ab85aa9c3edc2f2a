//! `/metrics`: Prometheus text for loopback callers, or only with the bearer token when one is set.

use reqwest::StatusCode;

use crate::helpers::*;
use crate::oauth_kit::service_with;
use crate::on_both_backends;

async fn metrics_count_what_happens_and_stay_private(backend: Backend) {
    let s = service_with(backend, |settings| {
        settings.metrics_token = Some("scrape-me-please-0123456789".to_owned().into());
    })
    .await;
    let token = s.access_token().await;
    assert!(s.is_active(&token).await);
    assert!(!s.is_active("not-a-token").await);
    s.w.app
        .new_browser()
        .login("nobody@example.com", "wrong password here")
        .await;

    let metrics = |auth: Option<&'static str>| {
        let mut request = s.http.get(s.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    assert_eq!(metrics(None).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        metrics(Some("Bearer wrong")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    let response = metrics(Some("Bearer scrape-me-please-0123456789"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for series in [
        r#"tokenbroker_events_total{outcome="failure",type="login"}"#,
        r#"tokenbroker_events_total{outcome="success",type="token_issued"}"#,
        r#"tokenbroker_introspections_total{kind="jwt",result="active"}"#,
        r#"tokenbroker_introspections_total{kind="opaque",result="malformed"}"#,
        r#"tokenbroker_http_request_duration_seconds_bucket{method="POST",route="/t/{tenant}/oauth/introspect",status="2xx""#,
        "tokenbroker_open_alerts ",
        "tokenbroker_outbox_backlog ",
    ] {
        assert!(text.contains(series), "missing {series}");
    }
    assert!(!text.contains(&token) && !text.contains(&s.client.secret));
}

async fn without_a_token_only_this_machine_may_scrape(backend: Backend) {
    let app = spawn_app(backend).await;
    // The test client is on loopback.
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("tokenbroker_"));
}

on_both_backends!(
    metrics_count_what_happens_and_stay_private,
    without_a_token_only_this_machine_may_scrape,
);
