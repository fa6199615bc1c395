//! What the server believes about a request: the client's address, the
//! scheme and host it used, and whether its page may open a WebSocket.
//!
//! `X-Forwarded-For` and `X-Forwarded-Proto` are believed only from the
//! configured trusted proxies; otherwise the TCP peer address is the client
//! and the scheme is the listener's: `https` when the server terminates TLS
//! itself, plain `http` otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use ipnet::{Ipv4Net, Ipv6Net};

use webcall_core::room::Creator;

use crate::app::AppState;
use crate::config::{Config, IpNet, canonical};

/// Marks a request that arrived over this server's own TLS (set by the
/// accept loop): its scheme is `https` and its answer carries HSTS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls;

/// The facts about one request, as an extractor.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    /// The client's address (the TCP peer, or what a trusted proxy says).
    pub client: IpAddr,
    /// `http` or `https`, as the client sees the server.
    pub scheme: &'static str,
    /// The `Host` the client asked for, when it is a plausible host name.
    pub host: Option<String>,
}

impl RequestFacts {
    /// Works the facts out from the peer address and headers; `over_tls`
    /// when the request came over this server's own TLS.
    pub fn new(
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
        uri_host: Option<&str>,
        trusted: &[IpNet],
        over_tls: bool,
    ) -> Self {
        let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| canonical(p.ip()));
        let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
        let from_proxy = is_trusted(peer);

        let client = if from_proxy {
            // The rightmost address a trusted proxy did not add is the one
            // the client connected from; anything left of it is hearsay.
            let hops: Vec<IpAddr> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok().map(canonical))
                .collect();
            hops.iter()
                .rev()
                .copied()
                .find(|ip| !is_trusted(*ip))
                .or(hops.first().copied())
                .unwrap_or(peer)
        } else {
            peer
        };

        let forwarded_https = from_proxy
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));

        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or(uri_host)
            .filter(|h| is_plausible_host(h))
            .map(str::to_ascii_lowercase);

        Self {
            client,
            scheme: if over_tls || forwarded_https {
                "https"
            } else {
                "http"
            },
            host,
        }
    }

    /// The base of links for this request: the public URL, or
    /// `scheme://host` from the request, or the listen address.
    pub fn base_url(&self, config: &Config) -> String {
        match (config.public_base(), &self.host) {
            (Some(base), _) => base.to_owned(),
            (None, Some(host)) => format!("{}://{host}", self.scheme),
            (None, None) => format!("{}://{}", self.scheme, config.listen),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for RequestFacts {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let uri_host = parts.uri.authority().map(|a| a.as_str().to_owned());
        Ok(Self::new(
            peer,
            &parts.headers,
            uri_host.as_deref(),
            &state.config.trusted_proxies,
            parts.extensions.get::<OverTls>().is_some(),
        ))
    }
}

/// The address that stands for one client in per-client limits: an IPv4
/// address as it is, an IPv6 address cut to its first `v6_prefix` bits
/// (one household or host usually holds a whole /64).
pub fn client_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6, v6_prefix)),
        v4 => v4,
    }
}

/// The keys room-creation limits count by: the client (as
/// [`client_key`]) and its network (an IPv4 /24 or an IPv6 /48).
pub fn creator(ip: IpAddr, v6_prefix: u8) -> Creator {
    match canonical(ip) {
        IpAddr::V4(v4) => Creator {
            client: v4.to_string(),
            network: Ipv4Net::new_assert(v4, 24).trunc().to_string(),
        },
        IpAddr::V6(v6) => {
            let network_bits = v6_prefix.min(48);
            Creator {
                client: format!("{}/{v6_prefix}", mask_v6(v6, v6_prefix)),
                network: format!("{}/{network_bits}", mask_v6(v6, network_bits)),
            }
        }
    }
}

fn mask_v6(ip: std::net::Ipv6Addr, prefix: u8) -> std::net::Ipv6Addr {
    Ipv6Net::new_assert(ip, prefix.min(128)).network()
}

/// A host name or address with an optional port, and nothing else.
pub fn is_plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// True when a page from `origin` may open a WebSocket to this server.
///
/// No `Origin` header (a native client) is allowed. With an allow-list,
/// the origin must be on it; otherwise it must be the public URL's origin,
/// or name the request's own scheme, host and port (the host having passed
/// the allowed-hosts check, so a rebound DNS name does not get here).
pub fn origin_allowed(origin: Option<&HeaderValue>, facts: &RequestFacts, config: &Config) -> bool {
    let Some(origin) = origin else { return true };
    let Some(origin) = origin.to_str().ok().and_then(normalise_origin) else {
        return false;
    };
    if let Some(allowed) = &config.allowed_origins {
        return allowed
            .iter()
            .filter_map(|a| normalise_origin(a))
            .any(|a| a == origin);
    }
    if config
        .public_base()
        .and_then(normalise_origin)
        .is_some_and(|p| p == origin)
    {
        return true;
    }
    let Some(host) = facts.host.as_deref() else {
        return false;
    };
    normalise_origin(&format!("{}://{host}", facts.scheme)).is_some_and(|own| own == origin)
}

/// `scheme://host[:port]` in lower case without a default port (the URL
/// standard's serialisation of an origin), for an `http` or `https` URL with
/// nothing after its authority but a `/`; `None` for anything else
/// (including the opaque origin `null`).
fn normalise_origin(origin: &str) -> Option<String> {
    let url = url::Url::parse(origin.trim()).ok()?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    bare.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let peer: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("host", "Call.Example.org"),
        ]);
        let untrusted = RequestFacts::new(Some(peer), &h, None, &[], false);
        assert_eq!(untrusted.client, peer.ip());
        assert_eq!(untrusted.scheme, "http");
        assert_eq!(untrusted.host.as_deref(), Some("call.example.org"));

        let trusted = RequestFacts::new(
            Some(peer),
            &h,
            None,
            &["10.0.0.0/8".parse().unwrap()],
            false,
        );
        assert_eq!(
            trusted.client,
            "1.2.3.4".parse::<IpAddr>().unwrap(),
            "rightmost untrusted hop"
        );
        assert_eq!(trusted.scheme, "https");
        assert_eq!(
            trusted.base_url(&Config::default()),
            "https://call.example.org"
        );
    }

    #[test]
    fn the_servers_own_tls_makes_links_https() {
        let peer: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let h = headers(&[("host", "call.example.org:8443")]);
        let facts = RequestFacts::new(Some(peer), &h, None, &[], true);
        assert_eq!(facts.scheme, "https");
        assert_eq!(
            facts.base_url(&Config::default()),
            "https://call.example.org:8443"
        );
    }

    #[test]
    fn hosts_with_odd_characters_are_ignored() {
        let h = headers(&[("host", "evil.org/<script>")]);
        let facts = RequestFacts::new(None, &h, None, &[], false);
        assert_eq!(facts.host, None);
    }

    fn facts(scheme: &'static str, host: &str) -> RequestFacts {
        RequestFacts {
            client: IpAddr::V4(Ipv4Addr::LOCALHOST),
            scheme,
            host: Some(host.to_owned()),
        }
    }

    #[test]
    fn origins_must_match_scheme_host_and_port_or_the_allow_list() {
        let c = Config::default();
        let o = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(origin_allowed(None, &facts("http", "x.org"), &c));
        assert!(origin_allowed(
            Some(&o("http://127.0.0.1:8000")),
            &facts("http", "127.0.0.1:8000"),
            &c
        ));
        assert!(origin_allowed(
            Some(&o("https://x.org")),
            &facts("https", "x.org:443"),
            &c
        ));
        assert!(
            !origin_allowed(
                Some(&o("https://127.0.0.1:8000")),
                &facts("http", "127.0.0.1:8000"),
                &c
            ),
            "the scheme counts"
        );
        assert!(
            !origin_allowed(Some(&o("http://x.org")), &facts("https", "x.org"), &c),
            "a plain-http page may not talk to the https site"
        );
        assert!(!origin_allowed(
            Some(&o("http://evil.org")),
            &facts("http", "127.0.0.1:8000"),
            &c
        ));
        assert!(!origin_allowed(
            Some(&o("null")),
            &facts("http", "127.0.0.1:8000"),
            &c
        ));
        assert!(!origin_allowed(
            Some(&o("http://127.0.0.1:8001")),
            &facts("http", "127.0.0.1:8000"),
            &c
        ));

        let listed = Config {
            allowed_origins: Some(vec!["https://app.example.org/".into()]),
            ..Config::default()
        };
        assert!(origin_allowed(
            Some(&o("https://app.example.org")),
            &facts("http", "x"),
            &listed
        ));
        assert!(!origin_allowed(
            Some(&o("http://x")),
            &facts("http", "x"),
            &listed
        ));
        assert!(!origin_allowed(
            Some(&o("https://app.example.org/path")),
            &facts("http", "x"),
            &listed
        ));
        assert!(origin_allowed(
            Some(&o("HTTPS://App.Example.org:443")),
            &facts("http", "x"),
            &listed
        ));

        let public = Config {
            public_url: Some("https://call.example.org".into()),
            ..Config::default()
        };
        assert!(origin_allowed(
            Some(&o("https://call.example.org")),
            &facts("http", "10.0.0.1:8000"),
            &public
        ));
    }

    #[test]
    fn clients_are_addresses_or_ipv6_prefixes() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_key(ip("192.0.2.7"), 64), ip("192.0.2.7"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7"), 64), ip("192.0.2.7"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa::1"), 64),
            client_key(ip("2001:db8:1:2:bbbb::9"), 64),
            "one /64 is one client"
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1"), 64),
            client_key(ip("2001:db8:1:3::1"), 64)
        );
        let c = creator(ip("2001:db8:1:2:aaaa::1"), 64);
        assert_eq!(c.client, "2001:db8:1:2::/64");
        assert_eq!(c.network, "2001:db8:1::/48");
        let c = creator(ip("198.51.100.7"), 64);
        assert_eq!(
            (c.client.as_str(), c.network.as_str()),
            ("198.51.100.7", "198.51.100.0/24")
        );
    }
}
