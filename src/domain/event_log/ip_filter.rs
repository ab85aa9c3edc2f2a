//! The log's address filter. Addresses are stored as text, as `IpAddr` prints them, so a network
//! is searched as a few text ranges the address index can walk: `10.2.` is 10.2.0.0/16 and
//! `2001:db8:` is 2001:db8::/32. A network between octet boundaries becomes the prefixes of the
//! next boundary (a /20 is sixteen /24s), at most 128 of them.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{FilterError, bad};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpFilter {
    /// Exact addresses: one typed, or each address of a /25 … /31.
    Addresses(Vec<String>),
    /// Text prefixes, each ending in its separator (`.` or `:`).
    Prefixes {
        prefixes: Vec<String>,
        /// The network covers a large share of all addresses (/16 or wider, an IPv6 /48 or wider):
        /// walking the log by time finds a page of matches sooner than the address index.
        broad: bool,
    },
}

const PROBLEM: &str = "is not an address or a network like 203.0.113.0/24";

impl IpFilter {
    pub fn parse(raw: &str) -> Result<Self, FilterError> {
        if !raw.contains('/') {
            let ip: IpAddr = raw.parse().map_err(|_| bad("ip", PROBLEM))?;
            return Ok(Self::Addresses(vec![ip.to_canonical().to_string()]));
        }
        let network: IpNet = raw.parse().map_err(|_| bad("ip", PROBLEM))?;
        if network.network() != network.addr() {
            return Err(bad(
                "ip",
                "the network has host bits set (use its first address)",
            ));
        }
        if network.prefix_len() == 0 {
            return Err(bad(
                "ip",
                "a /0 network is every address: leave the field empty",
            ));
        }
        match network {
            IpNet::V4(v4) => Ok(Self::v4(v4)),
            IpNet::V6(v6) => Self::v6(v6),
        }
    }

    fn v4(network: Ipv4Net) -> Self {
        let bits = network.prefix_len();
        let boundary = bits.div_ceil(8) * 8;
        let first = u32::from(network.network());
        // Within the network, so no sum passes its last address.
        let step = 1u32 << (32 - boundary);
        let starts = (0..1u32 << (boundary - bits)).map(|i| Ipv4Addr::from(first + i * step));
        if boundary == 32 {
            return Self::Addresses(starts.map(|a| a.to_string()).collect());
        }
        let octets = usize::from(boundary / 8);
        let prefixes = starts
            .map(|a| {
                a.octets()
                    .iter()
                    .take(octets)
                    .map(|o| format!("{o}."))
                    .collect()
            })
            .collect();
        Self::Prefixes {
            prefixes,
            broad: bits <= 16,
        }
    }

    /// IPv6 text is compressed (`::`), so only whole 16-bit groups that are not zero print the
    /// same in every address of the network.
    fn v6(network: Ipv6Net) -> Result<Self, FilterError> {
        let bits = network.prefix_len();
        if bits == 128 {
            return Ok(Self::Addresses(vec![
                IpAddr::V6(network.addr()).to_canonical().to_string(),
            ]));
        }
        let segments = network.network().segments();
        let groups = segments.get(..usize::from(bits / 16)).unwrap_or_default();
        if bits % 16 != 0 || groups.contains(&0) {
            return Err(bad(
                "ip",
                "IPv6 networks are searched in 16-bit steps whose groups are not zero (like 2001:db8:5::/48)",
            ));
        }
        let prefix = groups.iter().map(|g| format!("{g:x}:")).collect();
        Ok(Self::Prefixes {
            prefixes: vec![prefix],
            broad: bits <= 48,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(raw: &str) -> Vec<String> {
        match IpFilter::parse(raw) {
            Ok(IpFilter::Prefixes { prefixes, .. }) => prefixes,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn addresses_are_matched_as_the_log_writes_them() {
        assert_eq!(
            IpFilter::parse("203.0.113.7"),
            Ok(IpFilter::Addresses(vec!["203.0.113.7".into()]))
        );
        assert_eq!(
            IpFilter::parse("2001:DB8:0:0::1"),
            Ok(IpFilter::Addresses(vec!["2001:db8::1".into()]))
        );
        assert_eq!(
            IpFilter::parse("::ffff:192.0.2.1"),
            Ok(IpFilter::Addresses(vec!["192.0.2.1".into()]))
        );
        assert_eq!(
            IpFilter::parse("10.0.0.9/32"),
            Ok(IpFilter::Addresses(vec!["10.0.0.9".into()]))
        );
    }

    #[test]
    fn ipv4_networks_become_prefixes_of_the_next_octet_boundary() {
        assert_eq!(prefixes("10.1.0.0/16"), ["10.1."]);
        assert_eq!(prefixes("10.0.0.0/8"), ["10."]);
        assert_eq!(prefixes("10.1.2.0/23"), ["10.1.2.", "10.1.3."]);
        let slash20 = prefixes("10.1.16.0/20");
        assert_eq!(slash20.len(), 16);
        assert_eq!(
            (slash20[0].as_str(), slash20[15].as_str()),
            ("10.1.16.", "10.1.31.")
        );
        assert_eq!(prefixes("128.0.0.0/1").len(), 128);
        assert_eq!(
            IpFilter::parse("10.1.3.4/30"),
            Ok(IpFilter::Addresses(
                ["10.1.3.4", "10.1.3.5", "10.1.3.6", "10.1.3.7"]
                    .map(String::from)
                    .into()
            ))
        );
    }

    #[test]
    fn ipv6_networks_on_nonzero_group_boundaries_become_prefixes() {
        assert_eq!(prefixes("2001:db8::/32"), ["2001:db8:"]);
        assert_eq!(prefixes("2001:db8:5:a::/64"), ["2001:db8:5:a:"]);
        for refused in ["2001:db8::/33", "2001:0:5::/48", "::ffff:0:0/96"] {
            assert!(IpFilter::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn malformed_or_whole_internet_networks_are_refused() {
        for refused in [
            "10.1.2.3/24",
            "10.1.2.0/33",
            "0.0.0.0/0",
            "' OR 1=1 --",
            "10.1.2",
        ] {
            assert!(IpFilter::parse(refused).is_err(), "{refused}");
        }
    }
}
