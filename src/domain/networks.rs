//! Network allowlists (IPv4/IPv6 CIDR), as automation keys and client credentials carry them:
//! parsed once at the edge, stored as a comma-separated list, checked against the caller's address.

use std::net::IpAddr;

use ipnet::IpNet;

/// More would be a firewall's job, not a credential's.
pub const MAX_NETWORKS: usize = 32;

/// A non-empty list of networks; "from anywhere" is the absence of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// Parses what a person or script typed: CIDRs or bare addresses, blanks ignored. Nothing
    /// left means no restriction (`None`). The error names the entry that is not a network.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Option<Self>, String> {
        let mut parsed: Vec<IpNet> = Vec::new();
        for raw in entries
            .iter()
            .flat_map(|e| e.as_ref().split([',', '\n']))
            .map(str::trim)
            .filter(|raw| !raw.is_empty())
        {
            let net = raw
                .parse::<IpNet>()
                .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{raw:?} is not a network (CIDR such as 203.0.113.0/24)."))?
                .trunc();
            if !parsed.contains(&net) {
                parsed.push(net);
            }
        }
        if parsed.len() > MAX_NETWORKS {
            return Err(format!("List at most {MAX_NETWORKS} networks."));
        }
        Ok((!parsed.is_empty()).then_some(Self(parsed)))
    }

    /// Reads the stored form back; entries that no longer parse are dropped (they allow nothing).
    pub fn from_stored(stored: &str) -> Option<Self> {
        let parsed: Vec<IpNet> = stored
            .split(',')
            .filter_map(|n| n.trim().parse::<IpNet>().ok())
            .collect();
        (!parsed.is_empty()).then_some(Self(parsed))
    }

    /// A list that allows no address (what a stored list that no longer parses means).
    pub fn nowhere() -> Self {
        Self(Vec::new())
    }

    pub fn to_stored(&self) -> String {
        self.entries().join(",")
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Does the list allow `ip`? An unknown address is never inside an allowlist.
    pub fn allow(&self, ip: Option<&str>) -> bool {
        ip.and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| self.contains(ip))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cidrs_and_addresses_and_normalises_them() {
        let networks = Networks::parse(&["10.1.2.3/8, 2001:db8::1", "", "192.0.2.7"])
            .unwrap()
            .unwrap();
        assert_eq!(
            networks.entries(),
            ["10.0.0.0/8", "2001:db8::1/128", "192.0.2.7/32"]
        );
        assert!(networks.allow(Some("10.200.0.1")));
        assert!(!networks.allow(Some("11.0.0.1")));
        assert!(!networks.allow(None));
        assert_eq!(Networks::from_stored(&networks.to_stored()), Some(networks));
    }

    #[test]
    fn nothing_listed_means_anywhere_and_garbage_is_named() {
        assert_eq!(Networks::parse(&[" ", ""]).unwrap(), None);
        let error = Networks::parse(&["10.0.0.0/33"]).unwrap_err();
        assert!(error.contains("10.0.0.0/33"));
    }
}
