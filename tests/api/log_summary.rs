//! Refused work during a flood is counted for the log's periodic summary (`tokenbroker::refusals`),
//! not logged one line per request: the first refusal after a quiet spell is news (logged at once),
//! the rest are counted until the interval has passed.

use std::time::Duration;

use reqwest::StatusCode;
use tokenbroker::refusals::{INTERVAL, Refusal};

use crate::helpers::*;
use crate::on_both_backends;

async fn throttled_sign_ins_and_forms_without_a_token_are_counted_for_the_summary(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.with_admin_signed_out().await;
    for _ in 0..5 {
        app.login(ADMIN_EMAIL, "not the password at all").await;
    }

    // The first refusal is logged at once; the next ones are counted.
    for _ in 0..4 {
        let locked = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    for _ in 0..3 {
        let forged = app.post_form("/login", &[("csrf_token", "forged")]).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    }

    let refusals = &app.core.refusals;
    assert_eq!(
        refusals.take_due(app.now_ms()),
        None,
        "not before the interval"
    );
    app.clock.advance(INTERVAL);
    let summary = refusals.take_due(app.now_ms()).expect("a summary is due");
    assert_eq!(
        summary.counts,
        vec![(Refusal::ThrottledSignIn, 3), (Refusal::Csrf, 3)]
    );
    assert_eq!(
        summary.message(),
        "refused 3 throttled sign-ins, 3 requests without a valid CSRF token in the last 10 s"
    );
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(
        refusals.take_due(app.now_ms()),
        None,
        "one line per interval"
    );
}

on_both_backends!(throttled_sign_ins_and_forms_without_a_token_are_counted_for_the_summary);
