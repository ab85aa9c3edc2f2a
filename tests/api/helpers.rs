//! Test kit: a real server on a random port, a fresh database per test (a temporary SQLite file or
//! a new PostgreSQL database), a cookie-keeping HTTP client, and a clock the test can move.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use sqlx::{Connection, Executor, PgConnection};
use tokenbroker::app::Application;
use tokenbroker::clock::{Clock, ManualClock};
use tokenbroker::config::Settings;
use tokenbroker::domain::Core;
use tokenbroker::domain::events::EventRecord;
pub use tokenbroker::jobs::Job;
use tokenbroker::jobs::{Jobs, Shutdown};
use tokenbroker::web::routes::{ExtraRoutes, no_extra_routes};

pub use crate::client::*;

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

pub fn postgres_admin_url() -> String {
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
    /// The periodic jobs; tests run them with [`TestApp::run_job`] where they need them.
    pub jobs: Jobs,
    /// Fired when the server stops; counts the background tasks still running.
    pub shutdown: Shutdown,
    pub server: actix_web::dev::ServerHandle,
    // Dropped last: the database outlives the server using it.
    database: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the test does not wait for it.
        drop(self.server.stop(false));
    }
}

/// Shared by every instance of a test deployment (they must open each other's signing keys).
pub const TEST_KEK: &str = "dGVzdC1rZWstZm9yLXRva2VuYnJva2VyLXRlc3RzISE=";

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with_routes(backend, configure, no_extra_routes).await
}

/// An application whose console also serves `extra` routes, registered through the route table.
pub async fn spawn_app_with_routes(
    backend: Backend,
    configure: impl FnOnce(&mut Settings),
    extra: ExtraRoutes,
) -> TestApp {
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
        extra,
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
    let mut settings = Settings::for_database(database_url, data_dir, Some(TEST_KEK))
        .expect("valid test settings");
    let port = listener.local_addr().expect("port").port();
    settings.listen = format!("127.0.0.1:{port}").parse().expect("address");
    settings.public_url = format!("http://localhost:{port}").parse().expect("url");
    settings.workers = 1;
    settings.password_hash_concurrency = 2;
    // Nothing runs on its own timer in tests: each test runs the jobs it needs, when it needs them.
    settings.background_jobs = false;
    settings
}

async fn start(
    listener: TcpListener,
    settings: Settings,
    clock: Arc<ManualClock>,
    backend: Backend,
    database_url: String,
    extra: ExtraRoutes,
) -> TestApp {
    let origin = settings.public_url.clone();
    let mail_dir = settings.mail_dir();
    let app = Application::build_with_routes(listener, settings, clock.clone(), extra)
        .await
        .expect("application builds");
    let port = app.port();
    let core = app.core().clone();
    let mailer = app.mailer().clone();
    let jobs = app.jobs().clone();
    let shutdown = app.shutdown().clone();
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
        jobs,
        shutdown,
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
            no_extra_routes,
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

    /// Runs one periodic job now, as the background runner would on its next tick; returns how
    /// many things it handled.
    pub async fn run_job(&self, job: Job) -> u64 {
        self.jobs
            .run(job)
            .await
            .unwrap_or_else(|e| panic!("job {} failed: {e}", job.name()))
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
