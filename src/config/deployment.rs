//! Settings for running behind a load balancer, on a database that may stall, under an
//! orchestrator that stops instances: who the client is, how long a request may wait on the
//! database, how long a stopping instance may take.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};
use crate::domain::networks::Networks;
use crate::web::client_address::{ForwardingHeader, ProxyTrust};

/// A list setting: a TOML array, or one string of comma-separated entries (`TB_*` variables).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum ListSetting {
    Text(String),
    Entries(Vec<String>),
}

impl Default for ListSetting {
    fn default() -> Self {
        Self::Entries(Vec::new())
    }
}

impl ListSetting {
    fn entries(&self) -> Vec<&str> {
        match self {
            Self::Text(text) => vec![text.as_str()],
            Self::Entries(entries) => entries.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RawDeployment {
    /// Proxies (CIDRs or addresses) whose forwarding header names the client.
    #[serde(default)]
    trusted_proxies: ListSetting,
    /// The header they write: `X-Forwarded-For` or `Forwarded`.
    proxy_header: String,
    /// The longest a request waits on the database (pool, each statement, a token's batch).
    #[serde(with = "humantime_serde")]
    database_timeout: Duration,
    /// The longest a stopping instance takes to drain and exit.
    #[serde(with = "humantime_serde")]
    shutdown_timeout: Duration,
}

impl Default for RawDeployment {
    fn default() -> Self {
        Self {
            trusted_proxies: ListSetting::default(),
            proxy_header: ForwardingHeader::XForwardedFor.name().to_owned(),
            database_timeout: Duration::from_secs(3),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub proxies: ProxyTrust,
    pub database_timeout: Duration,
    pub shutdown_timeout: Duration,
}

impl RawDeployment {
    pub(super) fn validate(&self) -> Result<Deployment, ConfigError> {
        let proxies = Networks::parse(&self.trusted_proxies.entries())
            .map_err(|problem| invalid("trusted_proxies", problem))?;
        let header = ForwardingHeader::parse(&self.proxy_header).ok_or_else(|| {
            invalid(
                "proxy_header",
                format!(
                    "`{}` is not X-Forwarded-For or Forwarded",
                    self.proxy_header
                ),
            )
        })?;
        if self.database_timeout < Duration::from_millis(100)
            || self.database_timeout > Duration::from_secs(60)
        {
            return Err(invalid("database_timeout", "must be between 100ms and 60s"));
        }
        if self.shutdown_timeout < Duration::from_secs(2)
            || self.shutdown_timeout > Duration::from_secs(300)
        {
            return Err(invalid(
                "shutdown_timeout",
                "must be between 2s and 300s (1 s of it is for background jobs)",
            ));
        }
        Ok(Deployment {
            proxies: ProxyTrust::new(proxies, header),
            database_timeout: self.database_timeout,
            shutdown_timeout: self.shutdown_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};

    use super::*;

    fn read(toml: &str) -> Result<Deployment, String> {
        let raw: RawDeployment = Figment::from(Serialized::defaults(RawDeployment::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(|e| e.to_string())?;
        raw.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn trusted_proxies_are_a_list_or_one_comma_separated_string() {
        let list = read(r#"trusted_proxies = ["10.0.0.0/8", "192.0.2.7"]"#).unwrap();
        let text = read(r#"trusted_proxies = "10.0.0.0/8, 192.0.2.7""#).unwrap();
        assert_eq!(list.proxies, text.proxies);
        assert!(list.proxies.is_trusted("10.1.2.3".parse().unwrap()));
        assert!(list.proxies.is_trusted("192.0.2.7".parse().unwrap()));
        assert!(!list.proxies.is_trusted("192.0.2.8".parse().unwrap()));
        assert!(
            !read("")
                .unwrap()
                .proxies
                .is_trusted("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn bad_deployment_settings_are_named() {
        let proxies = read(r#"trusted_proxies = "10.0.0.0/33""#).unwrap_err();
        assert!(proxies.contains("trusted_proxies") && proxies.contains("10.0.0.0/33"));
        assert!(
            read(r#"proxy_header = "X-Real-IP""#)
                .unwrap_err()
                .contains("proxy_header")
        );
        assert!(
            read(r#"database_timeout = "10ms""#)
                .unwrap_err()
                .contains("database_timeout")
        );
        assert!(
            read(r#"shutdown_timeout = "1h""#)
                .unwrap_err()
                .contains("shutdown_timeout")
        );
        assert_eq!(
            read(r#"database_timeout = "2s""#).unwrap().database_timeout,
            Duration::from_secs(2)
        );
    }
}
