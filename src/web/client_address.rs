//! Who is calling: the client's address behind load balancers and proxies.
//!
//! The TCP peer is the client unless the peer is a configured trusted proxy. Then the proxy's
//! forwarding header is read from the right (each proxy appends the address it saw): the first
//! address that is not itself a trusted proxy is the client. Anything left of it was written by
//! someone we do not trust, so it is never read. Everything that uses an address — throttles,
//! allowlists, events, GeoIP, the sessions' device list, "last used from" — gets this one value.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::HeaderMap;

use crate::domain::networks::Networks;

/// Which header the trusted proxies write. Only one is read: a client can send either, and only
/// the one the proxy appends to says where the request came from (Keycloak asks the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardingHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, cloud load balancers).
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl ForwardingHeader {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Some(Self::XForwardedFor),
            "forwarded" => Some(Self::Forwarded),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "X-Forwarded-For",
            Self::Forwarded => "Forwarded",
        }
    }
}

/// A forwarding chain longer than this is not read further: the client is then the left-most
/// trusted hop read (no proxy chain is this long; a forged one gains nothing).
const MAX_HOPS: usize = 32;

/// The proxies whose forwarding header is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTrust {
    /// `None`: no proxy is trusted; the client is the TCP peer and headers are ignored.
    proxies: Option<Networks>,
    header: ForwardingHeader,
}

impl Default for ProxyTrust {
    fn default() -> Self {
        Self::new(None, ForwardingHeader::XForwardedFor)
    }
}

impl ProxyTrust {
    pub fn new(proxies: Option<Networks>, header: ForwardingHeader) -> Self {
        Self { proxies, header }
    }

    /// Whether any proxy is trusted (then headers only they may set, such as a country header, are
    /// believed only from them).
    pub fn is_configured(&self) -> bool {
        self.proxies.is_some()
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.proxies
            .as_ref()
            .is_some_and(|proxies| proxies.contains(ip.to_canonical()))
    }

    /// One line for the start-up log: which mode is in effect.
    pub fn describe(&self) -> String {
        match &self.proxies {
            None => "the TCP peer (no trusted proxies; forwarding headers are ignored)".to_owned(),
            Some(proxies) => format!(
                "the right-most untrusted address in {} when the peer is a trusted proxy ({})",
                self.header.name(),
                proxies.entries().join(", ")
            ),
        }
    }

    /// The client behind `peer`. A dual-stack socket's `::ffff:a.b.c.d` is reported as IPv4.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in self.hops_right_to_left(headers).take(MAX_HOPS) {
            let Some(hop) = hop else {
                // Unreadable or hidden: nothing further left can be attributed; the proxy that
                // handed it to us is the best we know.
                return client;
            };
            client = hop.to_canonical();
            if !self.is_trusted(client) {
                return client;
            }
        }
        client
    }

    /// The header's addresses from the right; `None` for an entry without a readable address.
    fn hops_right_to_left<'h>(
        &self,
        headers: &'h HeaderMap,
    ) -> impl Iterator<Item = Option<IpAddr>> + 'h {
        let name = self.header.name();
        let header = self.header;
        // Several header lines are one list, in order (RFC 9110 §5.3); lines are read last first.
        let lines: Vec<&'h str> = headers
            .get_all(name)
            .map(|value| value.to_str().unwrap_or(","))
            .collect();
        lines.into_iter().rev().flat_map(move |line| {
            let entries: Vec<Option<IpAddr>> = match header {
                ForwardingHeader::XForwardedFor => line.split(',').map(x_forwarded_for).collect(),
                ForwardingHeader::Forwarded => rfc7239::parse(line).map(forwarded_for).collect(),
            };
            entries.into_iter().rev()
        })
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`203.0.113.7:41000`,
/// `[2001:db8::1]:41000`).
fn x_forwarded_for(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

/// One `Forwarded` element's `for=` address (`unknown` and obfuscated names say nothing).
fn forwarded_for(element: Result<rfc7239::Forwarded<'_>, rfc7239::RfcError>) -> Option<IpAddr> {
    match element.ok()?.forwarded_for?.name {
        rfc7239::NodeName::Ip(ip) => Some(ip),
        rfc7239::NodeName::Unknown | rfc7239::NodeName::Obfuscated(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn trust(proxies: &[&str], header: ForwardingHeader) -> ProxyTrust {
        ProxyTrust::new(Networks::parse(proxies).unwrap(), header)
    }

    fn headers(lines: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trust = trust(&["10.0.0.0/8"], ForwardingHeader::XForwardedFor);
        let forged = headers(&[("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(
            trust.client_of(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
        let nobody = ProxyTrust::default();
        assert_eq!(nobody.client_of(ip("10.0.0.1"), &forged), ip("10.0.0.1"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
        let trust = trust(&["10.0.0.0/8"], ForwardingHeader::XForwardedFor);
        // The client forged the first entry; our two proxies appended the rest.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(trust.client_of(ip("10.0.0.1"), &chain), ip("203.0.113.7"));
        let split = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.7:41000, 10.0.0.2"),
        ]);
        assert_eq!(trust.client_of(ip("10.0.0.1"), &split), ip("203.0.113.7"));
    }

    #[test]
    fn a_request_from_the_proxy_itself_is_the_proxy() {
        let trust = trust(&["10.0.0.0/8"], ForwardingHeader::XForwardedFor);
        assert_eq!(
            trust.client_of(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        let all_ours = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(trust.client_of(ip("10.0.0.1"), &all_ours), ip("10.0.0.3"));
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_last_trusted_one() {
        let trust = trust(&["10.0.0.0/8"], ForwardingHeader::XForwardedFor);
        let garbage = headers(&[("x-forwarded-for", "203.0.113.7, unknown, 10.0.0.2")]);
        assert_eq!(trust.client_of(ip("10.0.0.1"), &garbage), ip("10.0.0.2"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let trust = trust(&["10.0.0.0/8"], ForwardingHeader::Forwarded);
        let both = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                r#"for=1.2.3.4, for="[2001:db8::7]:4711";proto=https, for=10.0.0.2"#,
            ),
        ]);
        assert_eq!(trust.client_of(ip("10.0.0.1"), &both), ip("2001:db8::7"));
        let hidden = headers(&[("forwarded", "for=_hidden, for=10.0.0.2")]);
        assert_eq!(trust.client_of(ip("10.0.0.1"), &hidden), ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_peers_and_hops_are_ipv4() {
        let trust = trust(&["10.0.0.1/32"], ForwardingHeader::XForwardedFor);
        let chain = headers(&[("x-forwarded-for", "::ffff:203.0.113.7")]);
        assert_eq!(
            trust.client_of(ip("::ffff:10.0.0.1"), &chain),
            ip("203.0.113.7")
        );
    }
}
