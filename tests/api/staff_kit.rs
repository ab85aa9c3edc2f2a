//! Building blocks for tests with several staff members and tenants, all through the real pages:
//! tenants are created by the superadmin's form, people arrive by invitation e-mail.

use reqwest::StatusCode;
use tokenbroker::domain::email::Email;
use tokenbroker::domain::ids::UserId;
use tokenbroker::domain::password::Password;
use tokenbroker::domain::rbac::Role;
use tokenbroker::domain::setup;
use tokenbroker::domain::users::{DisplayName, NewStaff};

use crate::helpers::*;

/// Creates a tenant through the superadmin's form (the app's browser must be the admin).
pub async fn create_tenant(
    app: &TestApp,
    name: &str,
    slug: &str,
    colour: &str,
    logo: Option<Vec<u8>>,
) -> reqwest::Response {
    let html = app.page_with_form("/admin/tenants").await;
    let mut form = reqwest::multipart::Form::new()
        .text("csrf_token", csrf_token(&html))
        .text("name", name.to_owned())
        .text("slug", slug.to_owned())
        .text("colour", colour.to_owned());
    if let Some(bytes) = logo {
        form = form.part(
            "logo",
            reqwest::multipart::Part::bytes(bytes).file_name("logo.png"),
        );
    }
    app.client
        .post(app.url("/admin/tenants"))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

pub async fn tenant_id(app: &TestApp, slug: &str) -> String {
    app.core
        .store
        .tenant_by_slug(slug)
        .await
        .unwrap()
        .unwrap()
        .id
        .to_string()
}

/// Sends an invitation from the admin's browser; `tenant` is what is typed in the tenant field (a
/// slug, or part of a name) for tenant roles.
pub async fn invite(
    app: &TestApp,
    email: &str,
    name: &str,
    role: &str,
    tenant: Option<&str>,
) -> reqwest::Response {
    let tenant = tenant.unwrap_or_default();
    app.submit(
        "/admin/invitations",
        "/admin/invitations",
        &[
            ("email", email),
            ("display_name", name),
            ("role", role),
            ("tenant", tenant),
        ],
    )
    .await
}

/// Invites someone as support staff of Acme (created first if need be): an invitation that is sent
/// at once, for tests about invitations themselves.
pub async fn invite_to_acme(app: &TestApp, email: &str, name: &str) -> reqwest::Response {
    if tokenbroker::domain::tenants::by_slug(&app.core, "acme")
        .await
        .unwrap()
        .is_none()
    {
        create_tenant(app, "Acme", "acme", "#123456", None).await;
    }
    invite(app, email, name, "support", Some("acme")).await
}

/// Delivers the outbox now and returns the invitation link sent to `email` (from the .eml files).
pub async fn invitation_link(app: &TestApp, email: &str) -> String {
    app.mailer.deliver_due(&app.core).await.unwrap();
    let messages = read_mail(&app.mail_dir);
    let message = messages
        .iter()
        .rev()
        .find(|m| m.contains(&format!("To: {email}")))
        .unwrap_or_else(|| panic!("no mail to {email} in {} messages", messages.len()));
    link_in(message)
}

pub fn read_mail(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The invitation link in a raw message, undoing quoted-printable soft breaks and escapes.
pub fn link_in(raw: &str) -> String {
    let decoded = raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    let start = decoded.find("/invite?token=").expect("an invitation link");
    let token: String = decoded[start + "/invite?token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    format!("/invite?token={token}")
}

/// Accepts an invitation in a fresh browser and enrols its passkey: a fully signed-in new staff member.
pub async fn accept(app: &TestApp, link: &str, password: &str) -> Browser {
    let browser = app.new_browser();
    let accepted = browser
        .submit(
            link,
            "/invite",
            &[
                ("token", link.trim_start_matches("/invite?token=")),
                ("display_name", "Invited Person"),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await;
    assert_redirect_to(&accepted, "/mfa/enrol");
    assert_eq!(
        browser.enrol_passkey("Their key").await.status(),
        StatusCode::OK
    );
    browser
}

pub const STAFF_PASSWORD: &str = "staff member passphrase";

/// Signs in a staff member with one role: invited through the pages for tenant roles; superadmin
/// and security staff (whose invitation would wait for a second superadmin) are created as an
/// operator does on the server (`tokenbroker create-admin --role`), then sign in and enrol their
/// passkey through the pages.
pub async fn staff_member(app: &TestApp, email: &str, role: &str, tenant: Option<&str>) -> Browser {
    if let Some(global) = Role::parse(role).filter(|r| r.is_global()) {
        return global_staff_member(app, email, global).await;
    }
    assert_redirect_to(
        &invite(app, email, "Invited Person", role, tenant).await,
        "/admin/invitations?notice=sent",
    );
    let link = invitation_link(app, email).await;
    accept(app, &link, STAFF_PASSWORD).await
}

async fn global_staff_member(app: &TestApp, email: &str, role: Role) -> Browser {
    let staff = NewStaff {
        email: Email::parse(email).unwrap(),
        display_name: DisplayName::parse("Invited Person").unwrap(),
        password: Password::new(STAFF_PASSWORD.to_owned().into()).unwrap(),
    };
    setup::create_global_staff_from_cli(&app.core, staff, role)
        .await
        .unwrap();
    let browser = app.new_browser();
    assert_redirect_to(&browser.login(email, STAFF_PASSWORD).await, "/mfa/enrol");
    assert_eq!(
        browser.enrol_passkey("Their key").await.status(),
        StatusCode::OK
    );
    browser
}

pub async fn user_id(app: &TestApp, email: &str) -> UserId {
    app.core
        .store
        .find_credentials_by_email(email)
        .await
        .unwrap()
        .unwrap()
        .user
        .id
}

/// A small valid PNG.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::GrayImage::new(width, height)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

/// The approval request a form led to: its id, from the redirect to its page.
pub fn requested_approval(response: &reqwest::Response) -> String {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to an approval request"
    );
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    location
        .strip_prefix("/approvals/")
        .and_then(|rest| rest.strip_suffix("?notice=requested"))
        .unwrap_or_else(|| panic!("not an approval request: {location}"))
        .to_owned()
}

/// `approver` approves request `id` on its page, confirming with their passkey when asked.
pub async fn approve(approver: &Browser, id: &str) -> reqwest::Response {
    decide(approver, id, "approve", &[]).await
}

/// Approves or rejects (`step`) on the request's page; a stale passkey check is answered first.
pub async fn decide(
    approver: &Browser,
    id: &str,
    step: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let page = format!("/approvals/{id}");
    let action = format!("/approvals/{id}/{step}");
    let answer = approver.submit(&page, &action, form).await;
    if answer
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        != Some("/step-up")
    {
        return answer;
    }
    approver.answer_passkey("/step-up", "/step-up").await;
    approver.submit(&page, &action, form).await
}
