use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

async fn two_instances_on_one_database_share_sessions(backend: Backend) {
    let first = spawn_app(backend).await;
    first.create_admin().await;
    let cookie = first.session_cookie().unwrap();
    let second = first.spawn_sibling().await;

    // The cookie issued by the first instance works on the second.
    let on_second = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(second.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(on_second.status(), StatusCode::OK);
    assert!(
        on_second
            .text()
            .await
            .unwrap()
            .contains("Welcome, Ada Lovelace")
    );

    // Signing out on the second instance ends the session on the first.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&cookie, &second.address.parse().unwrap());
    let client = new_client(jar);
    let html = client
        .get(second.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_token(&html);
    let out = client
        .post(second.url("/logout"))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_redirect_to(&out, "/login?signed_out=1");
    assert_redirect_to(&first.get("/").await, "/login");
}

on_both_backends!(two_instances_on_one_database_share_sessions);
