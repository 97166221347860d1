//! The webhook target policy, as pure functions shared by rule validation (on write) and the
//! executor (before every request, and again on every DNS answer).
//!
//! A webhook is a request our servers make to an address a user typed, so it is the classic SSRF
//! vector: cloud metadata (169.254.169.254), the database on 127.0.0.1, the office network. The
//! policy refuses every address that is not public unicast, in every spelling: URL parsing follows
//! WHATWG (the `url` crate), which normalizes `2130706433`, `0x7f.1` and `127.1` to 127.0.0.1,
//! and IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the address they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Settings of the policy (from `config.execute`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    /// Exact host names or `*.suffix` patterns; empty allows any host with public addresses.
    pub allowed_domains: Vec<String>,
    /// Development only: allow `http://127.0.0.1[:port]` (the literal address, nothing else).
    pub allow_http_loopback: bool,
}

/// Why a webhook target is refused. [`UrlRefusal::reason`] is a stable category for logs,
/// `actions_log.error` and metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("not a valid absolute URL: {0}")]
    Invalid(String),
    #[error("scheme {0:?} is not allowed: webhooks must use https")]
    Scheme(String),
    #[error("user name or password in the URL are not allowed")]
    Credentials,
    #[error("host {0:?} is not in the webhook domain allowlist")]
    DomainNotAllowed(String),
    #[error("address {addr} is refused ({class})")]
    Address { addr: IpAddr, class: &'static str },
    #[error("host {0:?} did not resolve to any address")]
    NoAddress(String),
}

impl UrlRefusal {
    /// A short, stable category.
    pub fn reason(&self) -> &'static str {
        match self {
            UrlRefusal::Invalid(_) => "invalid_url",
            UrlRefusal::Scheme(_) => "scheme_not_allowed",
            UrlRefusal::Credentials => "credentials_in_url",
            UrlRefusal::DomainNotAllowed(_) => "domain_not_allowed",
            UrlRefusal::Address { .. } => "address_refused",
            UrlRefusal::NoAddress(_) => "no_address",
        }
    }
}

/// A URL that passed every check that needs no DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    pub url: Url,
    pub host: CheckedHost,
}

/// The host of a [`CheckedUrl`]: an address already vetted, or a name whose addresses must be
/// vetted after resolution ([`check_resolved`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckedHost {
    Ip(IpAddr),
    Name(String),
}

/// Checks scheme, credentials, allowlist and (for IP literals) the address.
pub fn check_url(raw: &str, policy: &WebhookPolicy) -> Result<CheckedUrl, UrlRefusal> {
    let url = Url::parse(raw).map_err(|e| UrlRefusal::Invalid(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let host = match url.host() {
        Some(Host::Ipv4(ip)) => CheckedHost::Ip(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => CheckedHost::Ip(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            // A trailing dot names the same host; strip it so the allowlist cannot be dodged.
            CheckedHost::Name(name.trim_end_matches('.').to_ascii_lowercase())
        }
        None => return Err(UrlRefusal::Invalid("the URL has no host".into())),
    };
    let dev_loopback =
        policy.allow_http_loopback && host == CheckedHost::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    match url.scheme() {
        "https" => {}
        "http" if dev_loopback => {}
        other => return Err(UrlRefusal::Scheme(other.to_owned())),
    }
    if dev_loopback {
        return Ok(CheckedUrl { url, host });
    }
    match &host {
        CheckedHost::Ip(ip) => {
            check_ip(*ip)?;
            if !policy.allowed_domains.is_empty()
                && !policy.allowed_domains.iter().any(|d| d == &ip.to_string())
            {
                return Err(UrlRefusal::DomainNotAllowed(ip.to_string()));
            }
        }
        CheckedHost::Name(name) => {
            if !domain_allowed(name, &policy.allowed_domains) {
                return Err(UrlRefusal::DomainNotAllowed(name.clone()));
            }
        }
    }
    Ok(CheckedUrl { url, host })
}

/// Every resolved address must be public: one private answer among public ones is refused too,
/// so a rebinding name cannot slip a private address in next to a public one.
pub fn check_resolved(host: &str, addrs: &[IpAddr]) -> Result<(), UrlRefusal> {
    if addrs.is_empty() {
        return Err(UrlRefusal::NoAddress(host.to_owned()));
    }
    addrs.iter().try_for_each(|ip| check_ip(*ip))
}

/// `Ok` for a public unicast address, else the refusal naming its class.
pub fn check_ip(ip: IpAddr) -> Result<(), UrlRefusal> {
    match refused_class(ip) {
        Some(class) => Err(UrlRefusal::Address { addr: ip, class }),
        None => Ok(()),
    }
}

/// The class of a non-public address, `None` for a public unicast one.
pub fn refused_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) => "private",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared address space",
        (192, 0, 0) => "protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let seg = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // ::ffff:a.b.c.d (mapped) is judged as the IPv4 address it carries.
    if seg[..6] == [0, 0, 0, 0, 0, 0xffff] {
        return refused_v4(embedded(seg[6], seg[7]));
    }
    // ::a.b.c.d (the deprecated "compatible" form) is never a legitimate target.
    if seg[..6] == [0; 6] {
        return Some(refused_v4(embedded(seg[6], seg[7])).unwrap_or("ipv4-compatible"));
    }
    // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(embedded(seg[6], seg[7]));
    }
    // 6to4 2002:AABB:CCDD::/48 tunnels to IPv4 AA.BB.CC.DD.
    if seg[0] == 0x2002 {
        return refused_v4(embedded(seg[1], seg[2]));
    }
    Some(match seg[0] {
        s if s & 0xfe00 == 0xfc00 => "unique local",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xffc0 == 0xfec0 => "site-local",
        s if s & 0xff00 == 0xff00 => "multicast",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x2001 if seg[1] == 0 => "teredo",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    })
}

/// Exact match or `*.suffix` (which matches subdomains, not the bare suffix). Empty allows all.
pub fn domain_allowed(host: &str, allowed: &[String]) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|pattern| {
            let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(suffix) => {
                    host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}"))
                }
                None => host == pattern,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> WebhookPolicy {
        WebhookPolicy::default()
    }

    #[test]
    fn refuses_every_spelling_of_internal_targets() {
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[::ffff:7f00:1]/hook",
            "https://2130706433/hook",
            "https://0x7f.1/hook",
            "https://127.1/hook",
            "https://0177.0.0.1/hook",
            "https://0.0.0.0/hook",
            "https://[::]/hook",
            "https://192.168.1.10/hook",
            "https://172.20.0.1/hook",
            "https://100.64.0.1/hook",
            "https://224.0.0.1/hook",
            "https://[fe80::1]/hook",
            "https://[fd00::1]/hook",
            "https://[ff02::1]/hook",
            "https://[64:ff9b::a9fe:a9fe]/hook",
            "https://[2002:7f00:1::]/hook",
            "https://[::127.0.0.1]/hook",
        ] {
            let err = check_url(url, &strict()).expect_err(url);
            assert_eq!(err.reason(), "address_refused", "{url}: {err}");
        }
    }

    #[test]
    fn accepts_public_targets() {
        for url in [
            "https://hooks.example.com/x",
            "https://93.184.216.34/x",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/x",
            "https://[::ffff:93.184.216.34]/x",
        ] {
            check_url(url, &strict()).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
    }

    #[test]
    fn scheme_credentials_and_allowlist() {
        assert_eq!(
            check_url("http://hooks.example.com/", &strict()).unwrap_err().reason(),
            "scheme_not_allowed"
        );
        assert_eq!(
            check_url("ftp://hooks.example.com/", &strict()).unwrap_err().reason(),
            "scheme_not_allowed"
        );
        assert_eq!(
            check_url("https://u:p@hooks.example.com/", &strict()).unwrap_err().reason(),
            "credentials_in_url"
        );
        assert_eq!(check_url("not a url", &strict()).unwrap_err().reason(), "invalid_url");
        let listed = WebhookPolicy {
            allowed_domains: vec!["*.example.com".into(), "api.partner.io".into()],
            ..strict()
        };
        check_url("https://hooks.example.com/", &listed).expect("suffix match");
        check_url("https://API.partner.io./", &listed).expect("exact match, case and trailing dot");
        assert_eq!(
            check_url("https://example.com.evil.io/", &listed).unwrap_err().reason(),
            "domain_not_allowed"
        );
        assert_eq!(
            check_url("https://example.com/", &listed).unwrap_err().reason(),
            "domain_not_allowed"
        );
        assert_eq!(
            check_url("https://93.184.216.34/", &listed).unwrap_err().reason(),
            "domain_not_allowed"
        );
    }

    #[test]
    fn dev_flag_allows_http_to_the_literal_loopback_only() {
        let dev = WebhookPolicy { allow_http_loopback: true, ..strict() };
        check_url("http://127.0.0.1:8080/hook", &dev).expect("dev loopback");
        assert_eq!(
            check_url("http://localhost:8080/", &dev).unwrap_err().reason(),
            "scheme_not_allowed"
        );
        assert_eq!(check_url("http://10.0.0.1/", &dev).unwrap_err().reason(), "scheme_not_allowed");
        assert_eq!(check_url("https://[::1]/", &dev).unwrap_err().reason(), "address_refused");
        assert_eq!(
            check_url("http://127.0.0.1/", &strict()).unwrap_err().reason(),
            "scheme_not_allowed"
        );
    }

    #[test]
    fn resolved_answers_are_all_checked() {
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let private: IpAddr = "10.1.2.3".parse().unwrap();
        check_resolved("a.example", &[public]).expect("public");
        assert_eq!(
            check_resolved("a.example", &[public, private]).unwrap_err().reason(),
            "address_refused"
        );
        assert_eq!(check_resolved("a.example", &[]).unwrap_err().reason(), "no_address");
    }
}
