//! Test kit: a real server on a random port, a fresh database per test (a temporary SQLite file or
//! a new PostgreSQL database), a cookie-keeping HTTP client, and a clock the test can move.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};
use scraper::{Html, Selector};
use secrecy::ExposeSecret;
use sqlx::{Connection, Executor, PgConnection};
use tokenbroker::app::Application;
use tokenbroker::clock::{Clock, ManualClock};
use tokenbroker::config::Settings;
use tokenbroker::domain::Core;
use tokenbroker::domain::events::EventRecord;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

pub const ADMIN_EMAIL: &str = "ada@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
pub const ADMIN_NAME: &str = "Ada Lovelace";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an `async fn(Backend)` test once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )+};
}

fn postgres_admin_url() -> String {
    std::env::var("TB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that disappears with the test.
pub enum TestDatabase {
    /// Held only so the directory (and the database file in it) lives as long as the test.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        name: String,
    },
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> (Self, String, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}/tokenbroker.db?mode=rwc", dir.path().display());
                let path = dir.path().to_path_buf();
                (Self::Sqlite { _dir: dir }, url, path)
            }
            Backend::Postgres => {
                let name = format!("tb_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = PgConnection::connect(&postgres_admin_url())
                    .await
                    .expect("PostgreSQL must be running for the test suite (see README)");
                admin
                    .execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                    .await
                    .expect("create test database");
                let base = postgres_admin_url();
                let url = format!(
                    "{}/{name}",
                    base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b)
                );
                let path = dir.keep();
                (Self::Postgres { name }, url, path)
            }
        }
    }

    /// Drops the PostgreSQL database now, connections and all (simulates the database vanishing).
    pub async fn drop_now(name: &str) {
        let mut admin = PgConnection::connect(&postgres_admin_url())
            .await
            .expect("admin connection");
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .await
            .expect("drop test database");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Self::Postgres { name } = self {
            let name = name.clone();
            // Drop runs outside async context; a short-lived runtime on its own thread does the work.
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(TestDatabase::drop_now(&name));
                }
            })
            .join();
        }
    }
}

/// A browser: a cookie-keeping client pointed at one server, with the steps a person takes, and a
/// software passkey authenticator as its "device".
pub struct Browser {
    pub address: String,
    /// The console's public origin, which passkey ceremonies are bound to.
    pub origin: Url,
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
    pub authenticator: Mutex<SoftPasskey>,
}

pub struct TestApp {
    pub browser: Browser,
    pub clock: Arc<ManualClock>,
    pub core: Core,
    pub setup_link: Option<String>,
    /// The recovery codes shown when the admin enrolled their first passkey.
    pub recovery_codes: Mutex<Vec<String>>,
    pub database_url: String,
    pub backend: Backend,
    /// Where the file transport writes `.eml` files.
    pub mail_dir: std::path::PathBuf,
    pub mailer: tokenbroker::mail::Mailer,
    server: actix_web::dev::ServerHandle,
    // Dropped last: the database outlives the server using it.
    database: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the test does not wait for it.
        drop(self.server.stop(false));
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (database, url, data_dir) = TestDatabase::create(backend).await;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut settings = test_settings(&url, &data_dir, &listener);
    configure(&mut settings);
    let mut app = start(
        listener,
        settings,
        Arc::new(ManualClock::default()),
        backend,
        url,
    )
    .await;
    app.database = Some(database);
    app
}

/// Settings for a test server on `listener`, whose public URL is `http://localhost:<its port>`
/// (WebAuthn needs a host name, not an IP).
pub fn test_settings(
    database_url: &str,
    data_dir: &std::path::Path,
    listener: &TcpListener,
) -> Settings {
    let mut settings = Settings::for_database(database_url, data_dir).expect("valid test settings");
    let port = listener.local_addr().expect("port").port();
    settings.listen = format!("127.0.0.1:{port}").parse().expect("address");
    settings.public_url = format!("http://localhost:{port}").parse().expect("url");
    settings.workers = 1;
    settings.password_hash_concurrency = 2;
    settings
}

async fn start(
    listener: TcpListener,
    settings: Settings,
    clock: Arc<ManualClock>,
    backend: Backend,
    database_url: String,
) -> TestApp {
    let origin = settings.public_url.clone();
    let mail_dir = settings.mail_dir();
    let app = Application::build_on(listener, settings, clock.clone())
        .await
        .expect("application builds");
    let port = app.port();
    let core = app.core().clone();
    let mailer = app.mailer().clone();
    let address = format!("http://127.0.0.1:{port}");
    let setup_link = app.setup_link().map(|link| {
        link.expose_secret()
            .replace(origin.as_str().trim_end_matches('/'), &address)
    });
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        browser: Browser::new(&address, &origin),
        clock,
        core,
        setup_link,
        recovery_codes: Mutex::new(Vec::new()),
        database_url,
        backend,
        mail_dir,
        mailer,
        server,
        database: None,
    }
}

impl std::ops::Deref for TestApp {
    type Target = Browser;

    fn deref(&self) -> &Browser {
        &self.browser
    }
}

impl TestApp {
    /// A second instance on the same database and clock (multi-instance deployment).
    pub async fn spawn_sibling(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut settings = test_settings(&self.database_url, &dir, &listener);
        // Same public URL as the first instance: they sit behind one load balancer.
        settings.public_url = self.origin.clone();
        start(
            listener,
            settings,
            self.clock.clone(),
            self.backend,
            self.database_url.clone(),
        )
        .await
    }

    /// Completes first-run setup through the link and enrols a passkey: the admin is fully signed in.
    pub async fn create_admin(&self) {
        let response = self
            .submit_setup(&[
                ("email", ADMIN_EMAIL),
                ("display_name", ADMIN_NAME),
                ("password", ADMIN_PASSWORD),
                ("password_confirm", ADMIN_PASSWORD),
            ])
            .await;
        assert_redirect_to(&response, "/mfa/enrol");
        self.finish_enrolment().await;
    }

    /// Enrols this browser's passkey on the required-enrolment page and keeps the recovery codes.
    pub async fn finish_enrolment(&self) {
        let response = self.browser.enrol_passkey("Test key").await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "enrolment shows the recovery codes"
        );
        let html = response.text().await.expect("codes page");
        let codes = all_text_of(&html, "#recovery-codes code");
        assert_eq!(codes.len(), 10);
        *self.recovery_codes.lock().expect("codes") = codes;
    }

    pub async fn submit_setup(&self, form: &[(&str, &str)]) -> Response {
        let link = self
            .setup_link
            .clone()
            .expect("a fresh installation prints a setup link");
        let token = link
            .split("token=")
            .nth(1)
            .expect("token in link")
            .to_owned();
        let path = link.trim_start_matches(&self.address).to_owned();
        let mut fields = vec![("token", token.as_str())];
        fields.extend_from_slice(form);
        self.submit(&path, "/setup", &fields).await
    }

    /// A recovery code shown at enrolment, not yet used by the test.
    pub fn recovery_code(&self, index: usize) -> String {
        self.recovery_codes.lock().expect("codes")[index].clone()
    }

    /// An admin exists and this client is signed out.
    pub async fn with_admin_signed_out(&self) {
        self.create_admin().await;
        assert_redirect_to(&self.logout().await, "/login?signed_out=1");
    }

    /// Another browser (its own cookies, its own authenticator) on this server.
    pub fn new_browser(&self) -> Browser {
        Browser::new(&self.address, &self.origin)
    }

    /// A browser carrying `cookie` (another device replaying a session).
    pub fn browser_with_cookie(&self, cookie: &str) -> Browser {
        Browser::with_cookie(&self.address, &self.origin, cookie)
    }

    pub async fn events(&self) -> Vec<EventRecord> {
        self.core.store.recent_events(1000).await.expect("events")
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn postgres_database_name(&self) -> Option<String> {
        match &self.database {
            Some(TestDatabase::Postgres { name }) => Some(name.clone()),
            _ => None,
        }
    }
}

impl Browser {
    pub fn new(address: &str, origin: &Url) -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(Policy::none())
            .user_agent("tokenbroker-tests/1.0")
            .build()
            .expect("http client");
        Self {
            address: address.to_owned(),
            origin: origin.clone(),
            client,
            jar,
            authenticator: Mutex::new(SoftPasskey::new(true)),
        }
    }

    /// A browser that carries someone else's session cookie (`name=value`).
    pub fn with_cookie(address: &str, origin: &Url, cookie: &str) -> Self {
        let browser = Self::new(address, origin);
        browser
            .jar
            .add_cookie_str(cookie, &address.parse().expect("url"));
        browser
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// GETs `page`, then POSTs `form` to `action` with that page's CSRF token, like a browser.
    pub async fn submit(&self, page: &str, action: &str, form: &[(&str, &str)]) -> Response {
        let html = self.get(page).await.text().await.expect("page body");
        let token = csrf_token(&html);
        let mut fields = vec![("csrf_token", token.as_str())];
        fields.extend_from_slice(form);
        self.post_form(action, &fields).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn logout(&self) -> Response {
        let html = self.page_with_form("/").await;
        self.post_form("/logout", &[("csrf_token", &csrf_token(&html))])
            .await
    }

    /// GETs `path`, following redirects (as a browser would) to the page that is finally shown.
    pub async fn page_with_form(&self, path: &str) -> String {
        let mut path = path.to_owned();
        for _ in 0..5 {
            let response = self.get(&path).await;
            if response.status() != StatusCode::SEE_OTHER {
                return response.text().await.expect("page body");
            }
            path = response.headers()["location"]
                .to_str()
                .expect("location")
                .to_owned();
        }
        panic!("too many redirects from {path}");
    }

    /// Signs in completely: password, then this browser's passkey.
    pub async fn sign_in(&self, email: &str, password: &str) {
        assert_redirect_to(&self.login(email, password).await, "/login/passkey");
        assert_redirect_to(
            &self
                .answer_passkey("/login/passkey", "/login/passkey")
                .await,
            "/",
        );
    }

    /// Opens `page`, answers its passkey prompt with this browser's authenticator, posts to `action`.
    pub async fn answer_passkey(&self, page: &str, action: &str) -> Response {
        let (csrf, credential) = self.passkey_answer(page).await;
        self.post_form(
            action,
            &[("csrf_token", &csrf), ("credential", &credential)],
        )
        .await
    }

    /// Opens `page` and answers its passkey prompt without posting (to tamper with or replay):
    /// the page's CSRF token and the credential JSON.
    pub async fn passkey_answer(&self, page: &str) -> (String, String) {
        let html = self.page_with_form(page).await;
        let options: RequestChallengeResponse =
            serde_json::from_str(&passkey_options(&html)).expect("assertion options");
        let credential = self
            .authenticator
            .lock()
            .expect("authenticator")
            .do_authentication(self.origin.clone(), options)
            .expect("the soft passkey answers");
        (
            csrf_token(&html),
            serde_json::to_string(&credential).expect("json"),
        )
    }

    /// Creates a passkey named `name` through the enrolment page.
    pub async fn enrol_passkey(&self, name: &str) -> Response {
        let html = self.page_with_form("/mfa/enrol").await;
        let options: CreationChallengeResponse =
            serde_json::from_str(&passkey_options(&html)).expect("creation options");
        let credential = self
            .authenticator
            .lock()
            .expect("authenticator")
            .do_registration(self.origin.clone(), options)
            .expect("the soft passkey registers");
        let json = serde_json::to_string(&credential).expect("json");
        self.post_form(
            "/mfa/enrol",
            &[
                ("csrf_token", &csrf_token(&html)),
                ("name", name),
                ("credential", &json),
            ],
        )
        .await
    }

    pub async fn dashboard_html(&self) -> String {
        let response = self.get("/").await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "dashboard should be reachable"
        );
        response.text().await.expect("dashboard body")
    }

    pub fn session_cookie(&self) -> Option<String> {
        let url = self.address.parse().expect("url");
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split("; ")
            .find(|pair| pair.starts_with("tb_session="))
            .map(str::to_owned)
    }
}

pub fn csrf_token(html: &str) -> String {
    let document = Html::parse_document(html);
    let selector = Selector::parse(r#"input[name="csrf_token"]"#).expect("selector");
    document
        .select(&selector)
        .next()
        .and_then(|input| input.value().attr("value"))
        .expect("page carries a CSRF token")
        .to_owned()
}

/// The ceremony options a page hands to its passkey script.
pub fn passkey_options(html: &str) -> String {
    let document = Html::parse_document(html);
    let selector = Selector::parse("form[data-webauthn]").expect("selector");
    document
        .select(&selector)
        .next()
        .and_then(|form| form.value().attr("data-options"))
        .expect("page carries passkey options")
        .to_owned()
}

/// The texts of every element matching `css`.
pub fn all_text_of(html: &str, css: &str) -> Vec<String> {
    let document = Html::parse_document(html);
    let selector = Selector::parse(css).expect("selector");
    document
        .select(&selector)
        .map(|element| element.text().collect::<String>().trim().to_owned())
        .collect()
}

/// The text of the first element matching `css`, whitespace-collapsed.
pub fn text_of(html: &str, css: &str) -> Option<String> {
    let document = Html::parse_document(html);
    let selector = Selector::parse(css).expect("selector");
    document.select(&selector).next().map(|element| {
        element
            .text()
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })
}

pub fn assert_redirect_to(response: &Response, location: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {location}"
    );
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some(location)
    );
}
