//! Settings: defaults in code, then an optional TOML file, then `TB_*` environment variables.
//! Everything is validated once at start-up so a bad value fails fast with the setting's name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

mod deployment;

pub use deployment::Deployment;

use crate::domain::alerts::DetectorPolicy;
use crate::domain::keys::{Kek, KeyAlgorithm, KeyMaterialError, KeyPolicy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not read the configuration: {0}")]
    Source(#[from] Box<figment::Error>),
    #[error("setting `{setting}` is invalid: {problem}")]
    Invalid {
        setting: &'static str,
        problem: String,
    },
}

fn invalid(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        problem: problem.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Raw settings as read from the sources; [`Settings`] is the validated form.
#[derive(Debug, Serialize, Deserialize)]
struct RawSettings {
    /// Empty means "SQLite file in the data directory".
    #[serde(default)]
    database_url: Option<String>,
    listen: String,
    public_url: String,
    data_dir: PathBuf,
    #[serde(with = "humantime_serde")]
    session_idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    session_absolute_timeout: Duration,
    log_format: LogFormat,
    log_level: String,
    /// Concurrent argon2 computations; 0 means one per core.
    password_hash_concurrency: usize,
    /// Password checks allowed to wait for a slot before new ones are refused with 503.
    password_hash_queue: usize,
    /// HTTP worker threads; 0 means one per core.
    workers: usize,
    /// `smtp://host:port`, `smtp://user:pass@host:587?tls=required` or `smtps://…`; empty means
    /// "write .eml files under `<data_dir>/mail`".
    #[serde(default)]
    smtp_url: Option<String>,
    mail_from: String,
    /// Base64 of 32 random bytes sealing signing keys at rest. Required with PostgreSQL (every
    /// instance must share it); on SQLite, generated into the data directory when absent.
    #[serde(default)]
    key_encryption_key: Option<String>,
    /// `EdDSA` (Ed25519, the default) or `ES256`, for keys created from now on.
    signing_algorithm: String,
    #[serde(with = "humantime_serde")]
    access_token_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    jwks_max_age: Duration,
    #[serde(with = "humantime_serde")]
    key_rotation_period: Duration,
    /// How often each instance re-reads revocations and key changes even without a notification.
    #[serde(with = "humantime_serde")]
    revocation_reconcile_interval: Duration,
    /// How often the scheduled rotation checks whether a key is due.
    #[serde(with = "humantime_serde")]
    key_schedule_interval: Duration,
    /// A MaxMind-format country or city database (`.mmdb`) locating sign-ins.
    #[serde(default)]
    geoip_database: Option<PathBuf>,
    /// Run without locations (warning) when the GeoIP database is missing or corrupt.
    geoip_optional: bool,
    /// A trusted proxy's country header (e.g. `CF-IPCountry`); only set behind such a proxy.
    #[serde(default)]
    country_header: Option<String>,
    /// Events older than this are purged (in small batches; the hash chain keeps its anchor).
    #[serde(with = "humantime_serde")]
    event_retention: Duration,
    /// Bearer token for `/metrics`; when unset, only loopback callers may scrape.
    #[serde(default)]
    metrics_token: Option<String>,
    /// The window the burst detectors count in.
    #[serde(with = "humantime_serde")]
    detector_window: Duration,
    detector_account_failures: i64,
    detector_ip_failures: i64,
    detector_spraying_accounts: i64,
    detector_client_failures: i64,
    /// Two sign-ins of one account from two countries closer than this are impossible travel.
    #[serde(with = "humantime_serde")]
    impossible_travel_window: Duration,
    /// Run the periodic jobs (sweeps, sealing, detectors, outbox, key schedule, reconciliation) on
    /// their timers. Off, they run only when asked to (tests run them explicitly).
    background_jobs: bool,
    /// Requests per minute one automation key may make, counted across every instance.
    api_rate_limit: u32,
    #[serde(flatten)]
    deployment: deployment::RawDeployment,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            database_url: None,
            listen: "127.0.0.1:8080".into(),
            public_url: "http://localhost:8080".into(),
            data_dir: PathBuf::from("./data"),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(12 * 60 * 60),
            log_format: LogFormat::Text,
            log_level: "info".into(),
            password_hash_concurrency: 0,
            password_hash_queue: 32,
            workers: 0,
            smtp_url: None,
            mail_from: "Token Broker <no-reply@localhost>".into(),
            key_encryption_key: None,
            signing_algorithm: "EdDSA".into(),
            access_token_lifetime: Duration::from_secs(15 * 60),
            jwks_max_age: Duration::from_secs(5 * 60),
            key_rotation_period: Duration::from_secs(30 * 24 * 3600),
            revocation_reconcile_interval: Duration::from_secs(5),
            key_schedule_interval: Duration::from_secs(60),
            geoip_database: None,
            geoip_optional: false,
            country_header: None,
            metrics_token: None,
            event_retention: Duration::from_secs(365 * 86_400),
            detector_window: Duration::from_secs(15 * 60),
            detector_account_failures: 5,
            detector_ip_failures: 20,
            detector_spraying_accounts: 5,
            detector_client_failures: 20,
            impossible_travel_window: Duration::from_secs(2 * 3600),
            background_jobs: true,
            api_rate_limit: 600,
            deployment: deployment::RawDeployment::default(),
        }
    }
}

/// Validated settings. `database_url` may carry a password, so it is a redacting secret.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub listen: SocketAddr,
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub log_format: LogFormat,
    pub log_level: String,
    pub password_hash_concurrency: usize,
    pub password_hash_queue: usize,
    pub workers: usize,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub key_encryption_key: Option<SecretString>,
    pub key_policy: KeyPolicy,
    pub revocation_reconcile_interval: Duration,
    pub key_schedule_interval: Duration,
    pub geoip_database: Option<PathBuf>,
    pub geoip_optional: bool,
    pub country_header: Option<String>,
    pub detector_policy: DetectorPolicy,
    pub metrics_token: Option<SecretString>,
    pub event_retention: Duration,
    pub background_jobs: bool,
    pub api_rate_limit: u32,
    /// Trusted proxies, the database timeout, the shutdown timeout.
    pub deployment: Deployment,
}

impl Settings {
    /// Reads defaults, then `file` (if given and present), then `TB_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(invalid(
                    "config",
                    format!("file {} does not exist", file.display()),
                ));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("TB_").ignore(&["config"]));
        let raw: RawSettings = figment.extract().map_err(Box::new)?;
        Self::validate(raw)
    }

    /// Settings for tests and embedding: defaults with a given database, data directory and
    /// key-encryption key (base64; required with PostgreSQL).
    pub fn for_database(
        database_url: &str,
        data_dir: &Path,
        key_encryption_key: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let raw = RawSettings {
            database_url: Some(database_url.to_owned()),
            data_dir: data_dir.to_path_buf(),
            key_encryption_key: key_encryption_key.map(str::to_owned),
            ..RawSettings::default()
        };
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let key_policy = validate_key_policy(&raw)?;
        let detector_policy = validate_detector_policy(&raw)?;
        let deployment = raw.deployment.validate()?;
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{}` is not an address like 127.0.0.1:8080", raw.listen),
            )
        })?;
        let public_url = parse_public_url(&raw.public_url)?;
        if raw.api_rate_limit == 0 {
            return Err(invalid(
                "api_rate_limit",
                "must be at least 1 request a minute",
            ));
        }
        if raw.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let database_url = match raw.database_url.filter(|url| !url.trim().is_empty()) {
            Some(url) => validate_database_url(url)?,
            None => default_sqlite_url(&raw.data_dir)?,
        };
        if raw.session_idle_timeout < Duration::from_secs(60) {
            return Err(invalid("session_idle_timeout", "must be at least 1 minute"));
        }
        if raw.session_absolute_timeout < raw.session_idle_timeout {
            return Err(invalid(
                "session_absolute_timeout",
                "must not be shorter than session_idle_timeout",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&raw.log_level).is_err() {
            return Err(invalid(
                "log_level",
                format!("`{}` is not a log filter like `info`", raw.log_level),
            ));
        }
        if raw.password_hash_queue == 0 {
            return Err(invalid("password_hash_queue", "must be at least 1"));
        }
        let smtp_url = match raw.smtp_url.filter(|url| !url.trim().is_empty()) {
            Some(url) if url.starts_with("smtp://") || url.starts_with("smtps://") => {
                Some(SecretString::from(url))
            }
            Some(_) => return Err(invalid("smtp_url", "must start with smtp:// or smtps://")),
            None => None,
        };
        if raw.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail_from",
                format!(
                    "`{}` is not an address like Name <a@b.example>",
                    raw.mail_from
                ),
            ));
        }
        let key_encryption_key = match raw.key_encryption_key.filter(|k| !k.trim().is_empty()) {
            Some(text) => {
                // Validated now so a bad value fails at start-up, never echoed.
                Kek::from_base64(&text).map_err(|_| {
                    invalid(
                        "key_encryption_key",
                        "must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)",
                    )
                })?;
                Some(SecretString::from(text))
            }
            None if !database_url.expose_secret().starts_with("sqlite:") => {
                return Err(invalid(
                    "key_encryption_key",
                    "is required with PostgreSQL: every instance must share it (32 random bytes in base64)",
                ));
            }
            None => None,
        };
        if raw.revocation_reconcile_interval < Duration::from_millis(100)
            || raw.revocation_reconcile_interval > Duration::from_secs(60)
        {
            return Err(invalid(
                "revocation_reconcile_interval",
                "must be between 100ms and 60s: it bounds how stale a missed revocation can be",
            ));
        }
        if raw.event_retention < Duration::from_secs(86_400) {
            return Err(invalid("event_retention", "must be at least 1 day"));
        }
        if raw.key_schedule_interval < Duration::from_secs(1) {
            return Err(invalid("key_schedule_interval", "must be at least 1s"));
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Ok(Self {
            database_url,
            listen,
            public_url,
            data_dir: raw.data_dir,
            session_idle_timeout: raw.session_idle_timeout,
            session_absolute_timeout: raw.session_absolute_timeout,
            log_format: raw.log_format,
            log_level: raw.log_level,
            password_hash_concurrency: nonzero_or(raw.password_hash_concurrency, cores),
            password_hash_queue: raw.password_hash_queue,
            workers: nonzero_or(raw.workers, cores),
            smtp_url,
            mail_from: raw.mail_from,
            key_encryption_key,
            key_policy,
            revocation_reconcile_interval: raw.revocation_reconcile_interval,
            key_schedule_interval: raw.key_schedule_interval,
            geoip_database: raw.geoip_database.filter(|p| !p.as_os_str().is_empty()),
            geoip_optional: raw.geoip_optional,
            country_header: raw
                .country_header
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty()),
            detector_policy,
            event_retention: raw.event_retention,
            metrics_token: raw
                .metrics_token
                .filter(|t| !t.trim().is_empty())
                .map(SecretString::from),
            background_jobs: raw.background_jobs,
            api_rate_limit: raw.api_rate_limit,
            deployment,
        })
    }

    /// The key-encryption key: configured, or (SQLite only) read from — or created in — the data
    /// directory. Returns whether it was just created, so the caller can warn.
    pub fn key_encryption_key(&self) -> Result<(Kek, bool), KeyMaterialError> {
        match &self.key_encryption_key {
            Some(text) => Ok((Kek::from_base64(text.expose_secret())?, false)),
            None => Kek::load_or_create(&self.data_dir.join("key-encryption.key")),
        }
    }

    /// Plain-http development URLs cannot carry `Secure`/`__Host-` cookies or HSTS.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Creates the data folder where the SQLite database lives, owner only (an existing one is
    /// tightened).
    pub fn prepare_data_dir(&self) -> anyhow::Result<()> {
        use anyhow::Context;
        if self.is_sqlite() {
            crate::private_files::private_dir(&self.data_dir).with_context(|| {
                format!("cannot create data directory {}", self.data_dir.display())
            })?;
        }
        Ok(())
    }

    /// Where the file transport writes `.eml` files.
    pub fn mail_dir(&self) -> std::path::PathBuf {
        self.data_dir.join("mail")
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }
}

fn validate_key_policy(raw: &RawSettings) -> Result<KeyPolicy, ConfigError> {
    let algorithm = KeyAlgorithm::parse(&raw.signing_algorithm).ok_or_else(|| {
        invalid(
            "signing_algorithm",
            format!("`{}` is not EdDSA or ES256", raw.signing_algorithm),
        )
    })?;
    if raw.access_token_lifetime < Duration::from_secs(60)
        || raw.access_token_lifetime > Duration::from_secs(24 * 3600)
    {
        return Err(invalid(
            "access_token_lifetime",
            "must be between 1 minute and 24 hours",
        ));
    }
    if raw.jwks_max_age < Duration::from_secs(1)
        || raw.jwks_max_age > Duration::from_secs(24 * 3600)
    {
        return Err(invalid("jwks_max_age", "must be between 1s and 24 hours"));
    }
    let policy = KeyPolicy {
        algorithm,
        jwks_max_age: raw.jwks_max_age,
        rotation_period: raw.key_rotation_period,
        token_lifetime: raw.access_token_lifetime,
        ..KeyPolicy::default()
    };
    // A key must sign for longer than it takes to publish its successor safely.
    if raw.key_rotation_period <= policy.prepublication() {
        return Err(invalid(
            "key_rotation_period",
            "must be longer than twice jwks_max_age (the pre-publication window)",
        ));
    }
    Ok(policy)
}

fn validate_detector_policy(raw: &RawSettings) -> Result<DetectorPolicy, ConfigError> {
    for (setting, value) in [
        ("detector_account_failures", raw.detector_account_failures),
        ("detector_ip_failures", raw.detector_ip_failures),
        ("detector_spraying_accounts", raw.detector_spraying_accounts),
        ("detector_client_failures", raw.detector_client_failures),
    ] {
        if value < 2 {
            return Err(invalid(
                setting,
                "must be at least 2 (one event is not a burst)",
            ));
        }
    }
    if raw.detector_window < Duration::from_secs(60) {
        return Err(invalid("detector_window", "must be at least 1 minute"));
    }
    if raw.impossible_travel_window < Duration::from_secs(60) {
        return Err(invalid(
            "impossible_travel_window",
            "must be at least 1 minute",
        ));
    }
    Ok(DetectorPolicy {
        window: raw.detector_window,
        account_failures: raw.detector_account_failures,
        ip_failures: raw.detector_ip_failures,
        spraying_accounts: raw.detector_spraying_accounts,
        client_failures: raw.detector_client_failures,
        travel_window: raw.impossible_travel_window,
    })
}

fn nonzero_or(value: usize, fallback: usize) -> usize {
    if value == 0 { fallback } else { value }
}

fn parse_public_url(value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value)
        .map_err(|e| invalid("public_url", format!("`{value}` is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" => {}
        "http" => {
            return Err(invalid(
                "public_url",
                "must use https (plain http is allowed only for http://localhost during development)",
            ));
        }
        other => {
            return Err(invalid(
                "public_url",
                format!("scheme `{other}` is not http or https"),
            ));
        }
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "public_url",
            "must be an origin without path, query or fragment",
        ));
    }
    Ok(url)
}

fn validate_database_url(url: String) -> Result<SecretString, ConfigError> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if !supported.iter().any(|prefix| url.starts_with(prefix)) {
        // Never echo the URL: it may hold a password.
        return Err(invalid(
            "database_url",
            "must start with sqlite:, postgres:// or postgresql://",
        ));
    }
    Ok(SecretString::from(url))
}

fn default_sqlite_url(data_dir: &Path) -> Result<SecretString, ConfigError> {
    let path = data_dir.join("tokenbroker.db");
    let path = path
        .to_str()
        .ok_or_else(|| invalid("data_dir", "must be valid UTF-8"))?;
    Ok(SecretString::from(format!("sqlite://{path}?mode=rwc")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_for_anything_but_localhost() {
        assert!(parse_public_url("http://localhost:8080").is_ok());
        assert!(parse_public_url("https://console.example.com").is_ok());
        let err = parse_public_url("http://console.example.com").unwrap_err();
        assert!(err.to_string().contains("public_url"));
    }

    #[test]
    fn database_url_errors_never_echo_the_url() {
        let err = validate_database_url("mysql://root:hunter2@db/x".into()).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(err.to_string().contains("database_url"));
    }

    #[test]
    fn postgres_needs_a_key_encryption_key_and_a_bad_one_is_named_not_echoed() {
        let missing =
            Settings::for_database("postgres://h/db", Path::new("/tmp"), None).unwrap_err();
        assert!(missing.to_string().contains("key_encryption_key"));
        let bad =
            Settings::for_database("postgres://h/db", Path::new("/tmp"), Some("hunter2hunter2"))
                .unwrap_err();
        assert!(bad.to_string().contains("key_encryption_key"));
        assert!(!bad.to_string().contains("hunter2"));
        assert!(Settings::for_database("sqlite://x.db", Path::new("/tmp"), None).is_ok());
    }

    #[test]
    fn detector_thresholds_below_a_burst_are_refused_by_name() {
        let raw = RawSettings {
            detector_ip_failures: 1,
            ..RawSettings::default()
        };
        let error = Settings::validate(raw).unwrap_err();
        assert!(error.to_string().contains("detector_ip_failures"));
    }

    #[test]
    fn settings_debug_redacts_the_database_url() {
        let settings = Settings::for_database(
            "postgres://u:hunter2@h/db",
            Path::new("/tmp"),
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        )
        .unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
