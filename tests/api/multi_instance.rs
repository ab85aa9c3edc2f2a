use crate::helpers::*;
use crate::on_both_backends;

async fn two_instances_on_one_database_share_sessions(backend: Backend) {
    let first = spawn_app(backend).await;
    first.create_admin().await;
    let cookie = first.session_cookie().unwrap();
    let second = first.spawn_sibling().await;

    // The cookie issued by the first instance works on the second.
    let on_second = second.browser_with_cookie(&cookie);
    let html = on_second.dashboard_html().await;
    assert!(html.contains("Welcome, Ada Lovelace"));

    // Signing out on the second instance ends the session on the first.
    assert_redirect_to(&on_second.logout().await, "/login?signed_out=1");
    assert_redirect_to(&first.get("/").await, "/login");
}

on_both_backends!(two_instances_on_one_database_share_sessions);
