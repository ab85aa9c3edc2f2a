//! "My sessions" and the administrators' view: list, end one, end all others / all.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

fn session_rows(html: &str) -> Vec<(String, String)> {
    let document = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse("tr[data-session]").unwrap();
    document
        .select(&selector)
        .map(|row| {
            let text = row.text().collect::<Vec<_>>().join(" ");
            (row.value().attr("data-session").unwrap().to_owned(), text)
        })
        .collect()
}

async fn i_see_my_sessions_and_end_another_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let laptop = app.new_browser();
    laptop.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let html = app.page_with_form("/account/sessions").await;
    let rows = session_rows(&html);
    assert_eq!(rows.len(), 2);
    let (this, others): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|(_, text)| text.contains("this session"));
    assert_eq!(this.len(), 1);
    assert!(others[0].1.contains("127.0.0.1"));
    assert!(
        others[0].1.contains("tokenbroker-tests"),
        "device from the user agent: {}",
        others[0].1
    );

    let ended = app
        .submit(
            "/account/sessions",
            &format!("/account/sessions/{}/end", others[0].0),
            &[],
        )
        .await;

    assert_redirect_to(&ended, "/account/sessions?ended=1");
    assert_redirect_to(&laptop.get("/login/passkey").await, "/login");
    assert_eq!(
        session_rows(&app.page_with_form("/account/sessions").await).len(),
        1
    );
}

async fn ending_all_others_keeps_only_this_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let others = [app.new_browser(), app.new_browser()];
    for browser in &others {
        browser.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    }

    let response = app
        .submit("/account/sessions", "/account/sessions/end-others", &[])
        .await;

    assert_redirect_to(&response, "/account/sessions?ended=2");
    for browser in &others {
        assert_redirect_to(&browser.get("/login/passkey").await, "/login");
    }
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
}

async fn someone_else_s_session_id_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    let response = app
        .submit(
            "/account/sessions",
            "/account/sessions/0192-not-mine/end",
            &[],
        )
        .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn an_administrator_ends_a_users_sessions_after_a_step_up(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;
    let user = crate::passkeys::admin_id(&app).await;
    let elsewhere = app.new_browser();
    elsewhere.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let staff = app.page_with_form("/admin/users").await;
    assert!(staff.contains(&format!("/admin/users/{user}/sessions")));
    let page = format!("/admin/users/{user}/sessions");
    let html = app.page_with_form(&page).await;
    let (target, _) = session_rows(&html)
        .into_iter()
        .find(|(_, text)| !text.contains("this session"))
        .unwrap();
    app.clock.advance(Duration::from_secs(6 * 60));

    let asked = app
        .submit(&page, &format!("{page}/{target}/end"), &[])
        .await;
    assert_redirect_to(&asked, "/step-up");
    let confirmed = app.answer_passkey("/step-up", "/step-up").await;
    let continue_page = confirmed.text().await.unwrap();
    let done = app
        .post_form(
            &format!("{page}/{target}/end"),
            &[("csrf_token", &csrf_token(&continue_page))],
        )
        .await;

    assert_redirect_to(&done, &format!("{page}?ended=1"));
    assert_redirect_to(&elsewhere.get("/login/passkey").await, "/login");
    let events = app.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.event_type == "session_ended" && e.details.contains(r#""scope":"one""#))
    );
}

async fn unknown_users_have_no_sessions_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_admin().await;

    assert_eq!(
        app.get("/admin/users/not-a-uuid/sessions").await.status(),
        StatusCode::NOT_FOUND
    );
    let random = uuid::Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/admin/users/{random}/sessions"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

on_both_backends!(
    i_see_my_sessions_and_end_another_one,
    ending_all_others_keeps_only_this_session,
    someone_else_s_session_id_is_not_found,
    an_administrator_ends_a_users_sessions_after_a_step_up,
    unknown_users_have_no_sessions_page,
);
