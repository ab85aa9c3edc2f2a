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

    /// Settings for tests and embedding: defaults with a given database and data directory.
    pub fn for_database(database_url: &str, data_dir: &Path) -> Result<Self, ConfigError> {
        let raw = RawSettings {
            database_url: Some(database_url.to_owned()),
            data_dir: data_dir.to_path_buf(),
            ..RawSettings::default()
        };
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> Result<Self, ConfigError> {
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{}` is not an address like 127.0.0.1:8080", raw.listen),
            )
        })?;
        let public_url = parse_public_url(&raw.public_url)?;
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
        })
    }

    /// Plain-http development URLs cannot carry `Secure`/`__Host-` cookies or HSTS.
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// Where the file transport writes `.eml` files.
    pub fn mail_dir(&self) -> std::path::PathBuf {
        self.data_dir.join("mail")
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }
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
    fn settings_debug_redacts_the_database_url() {
        let settings =
            Settings::for_database("postgres://u:hunter2@h/db", Path::new("/tmp")).unwrap();
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
