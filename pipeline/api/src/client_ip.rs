//! Which address a request comes from, for the per-IP rate limit.
//!
//! Behind a load balancer every request arrives from the balancer's address, so one limit would
//! throttle everybody together. `X-Forwarded-For` names the real client, but anyone can send that
//! header: it is believed only when the peer is one of `http.trusted_proxies`, and then only up to
//! the first hop that is not trusted (read from the right, the way each proxy appends), so a
//! client cannot escape its limit by inventing addresses.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use poem::http::HeaderMap;

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.7`, `::1`) and networks (`10.0.0.0/8`).
    pub(crate) fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("http.trusted_proxies: {entry:?} is not an IP address or network")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with `headers`.
    pub(crate) fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return canonical(peer);
        }
        // Several headers count as one comma-separated list, in order.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = canonical(peer);
        for hop in hops.iter().rev() {
            // An unreadable entry is where trust ends: the last address we could vouch for stays.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip())).ok().map(canonical)
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack listener reports) as plain IPv4, so one
/// client has one key and one limit.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().expect("header value"));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("valid")
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("10.0.0.5"), &headers(&["1.1.1.1"])), ip("10.0.0.5"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_a_spoofed_prefix_does_not_count() {
        let t = trusted(&["10.0.0.0/8", "192.168.1.1"]);
        // The client sent a fake "6.6.6.6"; the balancer appended the address it saw.
        let h = headers(&["6.6.6.6, 203.0.113.9"]);
        assert_eq!(t.client_ip(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // Two trusted hops, split over two headers.
        let h = headers(&["6.6.6.6, 203.0.113.9", "192.168.1.1"]);
        assert_eq!(t.client_ip(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        // From an untrusted peer, nothing in the header matters.
        assert_eq!(t.client_ip(ip("198.51.100.7"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn odd_entries_ports_and_mapped_addresses() {
        let t = trusted(&["127.0.0.1", "::1"]);
        assert_eq!(
            t.client_ip(ip("::ffff:127.0.0.1"), &headers(&["203.0.113.9:443"])),
            ip("203.0.113.9")
        );
        assert_eq!(t.client_ip(ip("::1"), &headers(&["[2001:db8::1]:80"])), ip("2001:db8::1"));
        // Garbage ends the walk at the last address we could read.
        assert_eq!(t.client_ip(ip("127.0.0.1"), &headers(&["unknown"])), ip("127.0.0.1"));
        assert_eq!(t.client_ip(ip("127.0.0.1"), &headers(&[])), ip("127.0.0.1"));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.internal".into()]).is_err());
    }
}
