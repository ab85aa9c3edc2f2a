//! Builds the application: storage, services, middleware and the whole route table in one place.

use std::net::TcpListener;
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Server;
use actix_web::error::UrlencodedError;
use actix_web::middleware::from_fn;
use actix_web::web::{self, FormConfig, JsonConfig, PayloadConfig, QueryConfig};
use actix_web::{App, HttpServer};
use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::password::PasswordService;
use crate::domain::sessions::SessionPolicy;
use crate::domain::setup;
use crate::domain::{Core, TokenServiceSettings, operations, replication};
use crate::jobs::{Jobs, Shutdown, spawn_until_stopped};
use crate::mail::Mailer;
use crate::store::{Store, StoreError};
use crate::web::error::{WebError, error_pages};
use crate::web::routes::{self, ExtraRoutes, Router};
use crate::web::session_backend::DatabaseSessions;
use crate::web::{csrf, middleware};

/// Forms are small; anything bigger is refused with 413 before a handler sees it.
pub const FORM_LIMIT_BYTES: usize = 64 * 1024;
/// What a stopping instance keeps, of its `shutdown_timeout`, for background jobs to finish the
/// run they are in after the requests in flight are answered.
const JOBS_GRACE: Duration = Duration::from_secs(1);

/// How long requests in flight may take to finish once the instance stops.
fn requests_grace(shutdown_timeout: Duration) -> Duration {
    shutdown_timeout
        .saturating_sub(JOBS_GRACE)
        .max(Duration::from_secs(1))
}

pub struct Application {
    server: Server,
    port: u16,
    core: Core,
    mailer: Mailer,
    jobs: Jobs,
    shutdown: Shutdown,
    setup_link: Option<SecretString>,
    shutdown_timeout: Duration,
    listener: std::sync::Arc<TcpListener>,
}

/// Stops an application gracefully: drain, then stop within `shutdown_timeout`.
#[derive(Clone)]
pub struct Drainer {
    core: Core,
    server: actix_web::dev::ServerHandle,
    /// The listening socket (a second handle to it), closed first.
    listener: std::sync::Arc<TcpListener>,
}

impl Drainer {
    /// The listening socket closes (new connections are refused, so a load balancer retries them
    /// elsewhere); then `/readyz` fails and every answer closes its connection, so keep-alive
    /// clients leave after the answer they wait for; every request in flight is answered (a token
    /// waiting for its batch gets it), and the server stops once they are, or at the shutdown
    /// timeout. In that order: a client told to close must find the socket already shut, or its
    /// next connection could wait in the backlog of a server that will never accept it.
    pub async fn drain(&self) {
        if let Err(error) =
            socket2::SockRef::from(&*self.listener).shutdown(std::net::Shutdown::Read)
        {
            tracing::warn!(%error, "could not close the listening socket; stopping anyway");
        }
        operations::begin_draining(&self.core);
        self.server.stop(true).await;
    }

    /// Drains on SIGTERM or SIGINT (Ctrl-C); a second signal stops at once.
    pub async fn drain_on_signal(self) {
        if wait_for_stop_signal().await.is_err() {
            return;
        }
        tracing::info!("stop signal received");
        let draining = self.clone();
        let drain = tokio::spawn(async move { draining.drain().await });
        if wait_for_stop_signal().await.is_ok() {
            tracing::warn!("second stop signal: stopping without waiting for requests in flight");
            self.server.stop(false).await;
        }
        let _ = drain.await;
    }
}

async fn wait_for_stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            _ = terminate.recv() => Ok(()),
            ctrl_c = tokio::signal::ctrl_c() => ctrl_c,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
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
        Self::build_with_routes(listener, settings, clock, routes::no_extra_routes).await
    }

    /// [`Application::build_on`], with `extra` routes registered in the console scope through the
    /// same route table (tests prove with it that a rule is enforced whatever the handler does).
    pub async fn build_with_routes(
        listener: TcpListener,
        settings: Settings,
        clock: SharedClock,
        extra: ExtraRoutes,
    ) -> anyhow::Result<Self> {
        settings.prepare_data_dir()?;
        let store = Store::connect_lazy_with_timeout(
            &settings.database_url,
            settings.deployment.database_timeout,
        )?;
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

        let shutdown = Shutdown::default();
        // One quick probe first: migrating through the pool would retry a refused connection for
        // its whole acquire timeout (3 s) before the server could start answering 503.
        let migrated = match core.store.probe().await {
            Ok(()) => core.store.migrate().await,
            Err(unreachable) => Err(unreachable),
        };
        let setup_link = match migrated {
            Ok(()) => setup::issue_setup_link(&core, &settings.public_url).await?,
            Err(StoreError::Unavailable(cause)) => {
                tracing::error!(error = %cause, "database unreachable at start-up; serving 503 and retrying");
                spawn_until_stopped(
                    &shutdown,
                    migrate_when_reachable(core.clone(), settings.public_url.clone()),
                );
                None
            }
            Err(other) => return Err(other).context("applying database migrations"),
        };
        let mailer = Mailer::new(
            settings.smtp_url.as_ref(),
            settings.mail_dir(),
            &settings.mail_from,
        )?;
        // Not a periodic job: it probes only when the database looks unwell.
        spawn_until_stopped(&shutdown, operations::watch_database(core.clone()));
        let jobs = Jobs::new(core.clone(), mailer.clone(), &settings);
        if settings.background_jobs {
            jobs.spawn_all(&shutdown);
        } else {
            tracing::info!("background jobs are off: periodic jobs run only when asked to");
        }
        if !settings.is_sqlite() {
            // Not a periodic job: it reacts to other instances' notifications as they arrive.
            spawn_until_stopped(&shutdown, replication::follow_notifications(core.clone()));
        }

        let port = listener.local_addr()?.port();
        let listening = std::sync::Arc::new(listener.try_clone()?);
        let server = http_server(listener, &settings, core.clone(), extra)?;
        Ok(Self {
            server,
            port,
            core,
            mailer,
            jobs,
            shutdown,
            setup_link,
            shutdown_timeout: settings.deployment.shutdown_timeout,
            listener: listening,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests, signal handling).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Drains and stops the server, on demand or on a stop signal.
    pub fn drainer(&self) -> Drainer {
        Drainer {
            core: self.core.clone(),
            server: self.server.handle(),
            listener: self.listener.clone(),
        }
    }

    /// The outbox sender (tests deliver on demand instead of waiting for the background pass).
    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// The periodic jobs, to run one now (`jobs().run(Job::SealEvents)`), whether or not they also
    /// run in the background.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Stops the background tasks; fired when the server stops, and tells how many still run.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The first-run setup link, when the installation has no users yet.
    pub fn setup_link(&self) -> Option<&SecretString> {
        self.setup_link.as_ref()
    }

    /// Serves until the server is stopped (a signal or its handle), then stops the background
    /// tasks, letting a job that is mid-run finish it (for a while).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        self.shutdown.trigger();
        let jobs_grace = self.shutdown_timeout - requests_grace(self.shutdown_timeout);
        if tokio::time::timeout(jobs_grace.max(JOBS_GRACE), self.shutdown.stopped())
            .await
            .is_err()
        {
            tracing::warn!(
                running = self.shutdown.running(),
                "background jobs still running at shutdown; abandoning them"
            );
        }
        served
    }
}

fn http_server(
    listener: TcpListener,
    settings: &Settings,
    core: Core,
    extra: ExtraRoutes,
) -> anyhow::Result<Server> {
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
    let api_limits = web::Data::new(crate::web::api::ApiLimits {
        per_minute: settings.api_rate_limit,
    });
    let proxy_trust = web::Data::new(settings.deployment.proxies.clone());
    tracing::info!(client_address = %settings.deployment.proxies.describe(), "client addresses");
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
            .app_data(proxy_trust.clone())
            .app_data(metrics_access.clone())
            .app_data(api_limits.clone())
            .app_data(PayloadConfig::new(FORM_LIMIT_BYTES))
            .app_data(
                JsonConfig::default()
                    .limit(FORM_LIMIT_BYTES)
                    .error_handler(crate::web::api::problem::json_error),
            )
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
                    .configure(|cfg| {
                        let mut router = Router::new(cfg);
                        routes::console(&mut router);
                        extra(&mut router);
                    })
                    .default_service(web::to(crate::web::authz::unknown_page))
                    // Listed innermost first: CSRF needs the session.
                    .wrap(from_fn(csrf::verify))
                    .wrap(sessions),
            )
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(WebError::NotFound)
            }))
            // Listed innermost first: error pages must see every error, the request id every
            // line; the database gate answers for the session store when the database is down.
            .wrap(from_fn(middleware::database_gate))
            .wrap(from_fn(middleware::readiness_gate))
            .wrap(from_fn(error_pages))
            .wrap(middleware::security_headers(https))
            .wrap(from_fn(middleware::request_log))
            .wrap(from_fn(middleware::close_connections_while_draining))
    })
    .workers(settings.workers)
    // Signals are the drainer's (`Application::drainer`): it makes `/readyz` fail and closes
    // keep-alive connections before it stops the server.
    .disable_signals()
    .shutdown_timeout(requests_grace(settings.deployment.shutdown_timeout).as_secs())
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

/// Probes every [`operations::PROBE_INTERVAL`] (a quick refusal each while the database is down)
/// and migrates once a probe succeeds, so the console opens within that interval of the database.
async fn migrate_when_reachable(core: Core, public_url: Url) {
    loop {
        tokio::time::sleep(operations::PROBE_INTERVAL).await;
        if core.store.probe().await.is_err() {
            continue;
        }
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

/// Printed to the terminal, not the log: the link is a secret that must not end up in log storage.
pub fn announce_setup_link(link: &SecretString) {
    println!(
        "\n  No administrator exists yet. Open this single-use link within one hour to create one:\n\n    {}\n\n  (or run `tokenbroker create-admin --email you@example.com`)\n",
        link.expose_secret()
    );
}
