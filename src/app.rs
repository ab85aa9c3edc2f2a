//! Builds the application: storage, services, middleware and the whole route table in one place.

use std::net::TcpListener;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Server;
use actix_web::error::UrlencodedError;
use actix_web::middleware::from_fn;
use actix_web::web::{self, FormConfig, PayloadConfig, QueryConfig};
use actix_web::{App, HttpServer};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::password::PasswordService;
use crate::domain::sessions::SessionPolicy;
use crate::domain::setup;
use crate::domain::{Core, TokenServiceSettings, alerts, audit, keys, replication};
use crate::mail::Mailer;
use crate::store::{Store, StoreError};
use crate::web::error::{WebError, error_pages};
use crate::web::routes::{self, Router};
use crate::web::session_backend::DatabaseSessions;
use crate::web::{csrf, middleware};

/// Forms are small; anything bigger is refused with 413 before a handler sees it.
pub const FORM_LIMIT_BYTES: usize = 64 * 1024;
const SWEEP_INTERVAL: Duration = Duration::from_secs(300);
const MIGRATION_RETRY: Duration = Duration::from_secs(2);
const SEAL_INTERVAL: Duration = Duration::from_secs(5);
const DETECT_INTERVAL: Duration = Duration::from_secs(2);

pub struct Application {
    server: Server,
    port: u16,
    core: Core,
    mailer: Mailer,
    setup_link: Option<SecretString>,
}

impl Application {
    /// Binds `settings.listen`, then [`Application::build_on`].
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        Self::build_on(listener, settings, clock).await
    }

    /// Connects storage, applies migrations (or keeps retrying in the background while the database
    /// is down), and prepares the server on `listener` (bound by the caller, so tests and
    /// benchmarks know the port before the public URL is fixed). The server does not run until
    /// `run_until_stopped`.
    pub async fn build_on(
        listener: TcpListener,
        settings: Settings,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        if settings.is_sqlite() {
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!(
                    "cannot create data directory {}",
                    settings.data_dir.display()
                )
            })?;
        }
        let store = Store::connect_lazy(&settings.database_url)?;
        let passwords = PasswordService::new(
            settings.password_hash_concurrency,
            settings.password_hash_queue,
        )?;
        let core = Core::new(
            store,
            passwords,
            clock,
            &settings.public_url,
            token_service(&settings)?,
        )?
        .with_geo(crate::domain::geo::Locator::open(
            settings.geoip_database.as_deref(),
            settings.geoip_optional,
            settings.country_header.clone(),
        )?);

        let setup_link = match core.store.migrate().await {
            Ok(()) => setup::issue_setup_link(&core, &settings.public_url).await?,
            Err(StoreError::Unavailable(cause)) => {
                tracing::error!(error = %cause, "database unreachable at start-up; serving 503 and retrying");
                tokio::spawn(migrate_when_reachable(
                    core.clone(),
                    settings.public_url.clone(),
                ));
                None
            }
            Err(other) => return Err(other).context("applying database migrations"),
        };
        tokio::spawn(sweep_periodically(core.clone()));
        tokio::spawn(seal_events_periodically(core.clone()));
        tokio::spawn(purge_events_periodically(
            core.clone(),
            settings.event_retention,
        ));
        tokio::spawn(detect_periodically(core.clone(), settings.detector_policy));
        tokio::spawn(schedule_keys_periodically(
            core.clone(),
            settings.key_schedule_interval,
        ));
        tokio::spawn(replication::reconcile_periodically(
            core.clone(),
            settings.revocation_reconcile_interval,
        ));
        if !settings.is_sqlite() {
            tokio::spawn(replication::follow_notifications(
                core.clone(),
                settings.database_url.clone(),
            ));
        }
        let mailer = Mailer::new(
            settings.smtp_url.as_ref(),
            settings.mail_dir(),
            &settings.mail_from,
        )?;
        tokio::spawn(crate::mail::send_periodically(core.clone(), mailer.clone()));

        let port = listener.local_addr()?.port();
        let server = http_server(listener, &settings, core.clone())?;
        Ok(Self {
            server,
            port,
            core,
            mailer,
            setup_link,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests, signal handling).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The outbox sender (tests deliver on demand instead of waiting for the background pass).
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The first-run setup link, when the installation has no users yet.
    pub fn setup_link(&self) -> Option<&SecretString> {
        self.setup_link.as_ref()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn http_server(listener: TcpListener, settings: &Settings, core: Core) -> anyhow::Result<Server> {
    let https = settings.is_https();
    let cookie_name = if https {
        "__Host-tb_session"
    } else {
        "tb_session"
    };
    let policy = SessionPolicy {
        idle: settings.session_idle_timeout,
        absolute: settings.session_absolute_timeout,
    };
    let absolute = CookieDuration::try_from(settings.session_absolute_timeout)
        .context("session_absolute_timeout is out of range")?;
    let core_data = web::Data::new(core);
    let metrics_access = web::Data::new(crate::web::metrics::MetricsAccess {
        token: settings.metrics_token.clone(),
    });

    let server = HttpServer::new(move || {
        let backend = DatabaseSessions::new(core_data.get_ref().clone(), policy);
        let sessions = SessionMiddleware::builder(backend, cookie_signing_key())
            .cookie_name(cookie_name.to_owned())
            .cookie_secure(https)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_path("/".to_owned())
            .cookie_domain(None)
            .cookie_content_security(CookieContentSecurity::Signed)
            // A browser-session cookie; the server enforces idle and absolute expiry itself.
            .session_lifecycle(
                BrowserSession::default()
                    .state_ttl(absolute)
                    .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
            )
            .build();

        App::new()
            .app_data(core_data.clone())
            .app_data(metrics_access.clone())
            .app_data(PayloadConfig::new(FORM_LIMIT_BYTES))
            .app_data(
                FormConfig::default()
                    .limit(FORM_LIMIT_BYTES)
                    .error_handler(form_error),
            )
            .app_data(QueryConfig::default().error_handler(|_, _| {
                WebError::BadRequest("The link's parameters could not be read.").into()
            }))
            .configure(|cfg| routes::sessionless(&mut Router::new(cfg)))
            .service(
                web::scope("")
                    .configure(|cfg| routes::console(&mut Router::new(cfg)))
                    // Listed innermost first: CSRF needs the session.
                    .wrap(from_fn(csrf::verify))
                    .wrap(sessions),
            )
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(WebError::NotFound)
            }))
            // Listed innermost first: error pages must see every error, the request id every line.
            .wrap(from_fn(middleware::readiness_gate))
            .wrap(from_fn(error_pages))
            .wrap(middleware::security_headers(https))
            .wrap(from_fn(middleware::request_log))
    })
    .workers(settings.workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// actix-session insists on signing its cookie. The value is already a ~381-bit random key that
/// means nothing outside our database, so the signature adds no secrecy; a fixed, public key keeps
/// every instance able to read every other instance's cookies with nothing to distribute.
fn cookie_signing_key() -> Key {
    Key::derive_from(
        b"tokenbroker/session-cookie/v1: the session key itself is the secret, not this",
    )
}

fn form_error(error: UrlencodedError, _req: &actix_web::HttpRequest) -> actix_web::Error {
    match error {
        UrlencodedError::Overflow { .. } => WebError::TooLarge.into(),
        _ => WebError::BadRequest(
            "The form was incomplete or malformed. Reload the page and try again.",
        )
        .into(),
    }
}

async fn migrate_when_reachable(core: Core, public_url: Url) {
    loop {
        tokio::time::sleep(MIGRATION_RETRY).await;
        match core.store.migrate().await {
            Ok(()) => {
                tracing::info!("database reachable; migrations applied");
                match setup::issue_setup_link(&core, &public_url).await {
                    Ok(Some(link)) => announce_setup_link(&link),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "could not create the setup link"),
                }
                return;
            }
            Err(StoreError::Unavailable(_)) => continue,
            Err(e) => {
                tracing::error!(error = ?e, "migrations failed; the console stays unavailable");
                return;
            }
        }
    }
}

fn token_service(settings: &Settings) -> anyhow::Result<TokenServiceSettings> {
    let (kek, created) = settings
        .key_encryption_key()
        .context("loading the key-encryption key")?;
    if created {
        tracing::warn!(
            path = %settings.data_dir.join("key-encryption.key").display(),
            "generated a key-encryption key in the data directory: signing keys are only as safe as \
             this file. Set TB_KEY_ENCRYPTION_KEY from a secret store for anything but development."
        );
    }
    Ok(TokenServiceSettings {
        kek: Some(kek),
        policy: settings.key_policy,
    })
}

/// Seals settled events into the hash chain; every instance runs it, each event is sealed once.
async fn seal_events_periodically(core: Core) {
    let mut ticker = tokio::time::interval(SEAL_INTERVAL);
    loop {
        ticker.tick().await;
        if core.store.is_migrated() {
            if let Err(e) = audit::seal_pending(&core).await {
                tracing::warn!(error = %e, "sealing events failed; will retry");
            }
        }
    }
}

/// Retention: purges events past their age in small batches; safe on every instance at once.
async fn purge_events_periodically(core: Core, retention: Duration) {
    let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticker.tick().await;
        if core.store.is_migrated() {
            let cutoff = core.clock.now_ms() - crate::clock::duration_ms(retention);
            match audit::purge_before(&core, cutoff).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "purged events past retention"),
                Err(e) => tracing::warn!(error = %e, "event purge failed; will retry"),
            }
        }
    }
}

/// Runs the suspicious-activity detectors over new events; every instance runs them, each event is
/// examined once.
async fn detect_periodically(core: Core, policy: alerts::DetectorPolicy) {
    let mut ticker = tokio::time::interval(DETECT_INTERVAL);
    loop {
        ticker.tick().await;
        if core.store.is_migrated() {
            if let Err(e) = alerts::run_detectors(&core, &policy).await {
                tracing::warn!(error = %e, "detectors failed; will retry");
            }
        }
    }
}

/// Scheduled rotation and retirement; every instance runs it, the store lets exactly one win.
async fn schedule_keys_periodically(core: Core, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        if core.store.is_migrated() {
            if let Err(e) = keys::run_schedule(&core).await {
                tracing::warn!(error = %e, "key schedule failed; will retry");
            }
        }
    }
}

/// Expired sessions and spent setup links. Idempotent deletes: safe on every instance at once.
async fn sweep_periodically(core: Core) {
    let mut ticker = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticker.tick().await;
        if core.store.is_migrated() {
            if let Err(e) = sweep_once(&core).await {
                tracing::warn!(error = %e, "sweep failed; will retry");
            }
        }
    }
}

pub async fn sweep_once(core: &Core) -> Result<(), StoreError> {
    let now = core.clock.now_ms();
    let sessions = core.store.sweep_sessions(now).await?;
    let links = core.store.sweep_setup_tokens(now).await?;
    crate::domain::partners::sweep(core).await?;
    // Revocation entries and token records outlive their tokens by a day, for the feed's readers.
    core.store.prune_revocations(now - 86_400_000).await?;
    if sessions + links > 0 {
        tracing::info!(sessions, setup_links = links, "swept expired rows");
    }
    Ok(())
}

/// Printed to the terminal, not the log: the link is a secret that must not end up in log storage.
pub fn announce_setup_link(link: &SecretString) {
    println!(
        "\n  No administrator exists yet. Open this single-use link within one hour to create one:\n\n    {}\n\n  (or run `tokenbroker create-admin --email you@example.com`)\n",
        link.expose_secret()
    );
}
