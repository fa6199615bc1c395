//! Which `Host` values the server answers to. Links and QR codes are built
//! from the request's host when no public URL is set, and the origin check
//! compares against it, so a host an attacker chose (a forged header, or a
//! DNS name rebound to this machine) must never get that far.
//!
//! Allowed: the public URL's host, `--allowed-hosts`, and the machine
//! itself: `localhost`, its host name, and the addresses of its interfaces
//! (only the listening address when that is not a wildcard). The machine's
//! own names are answered on any port: a rebinding attack needs a name the
//! attacker controls, and a port forward (a container's `-p 8080:8000`, an
//! SSH tunnel, a local relay) changes the port the browser writes.

use std::net::{IpAddr, SocketAddr};

use crate::config::Config;

/// One allowed name, with the port it must come with (`None`: any port).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: String,
    port: Option<u16>,
}

/// The set of `Host` values the server answers to.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    any: bool,
    allowed: Vec<Allowed>,
}

impl AllowedHosts {
    /// The hosts for a server configured with `config` and listening on
    /// `listen`.
    pub fn new(config: &Config, listen: SocketAddr) -> Self {
        let mut allowed = Vec::new();
        let mut any = false;
        for entry in &config.allowed_hosts {
            if entry == "*" {
                any = true;
            } else if let Some((host, port)) = split_host(entry) {
                allowed.push(Allowed { host, port });
            }
        }
        if let Some((host, _)) = config.public_host().and_then(|h| split_host(&h)) {
            // Behind a proxy the port clients used is not ours to know.
            allowed.push(Allowed { host, port: None });
        }
        if let Some(crate::config::TlsSource::Acme(acme)) = &config.tls {
            // The names the certificate is for are the names users type.
            for domain in &acme.domains {
                if let Some((host, _)) = split_host(domain) {
                    allowed.push(Allowed { host, port: None });
                }
            }
        }
        let mut own = |host: String| allowed.push(Allowed { host, port: None });
        let ip = listen.ip();
        if ip.is_unspecified() || ip.is_loopback() {
            for name in ["localhost", "127.0.0.1", "[::1]"] {
                own(name.to_owned());
            }
        }
        if ip.is_unspecified() {
            if let Some(name) = gethostname::gethostname()
                .to_str()
                .map(str::to_ascii_lowercase)
                && !name.is_empty()
                && crate::request::is_plausible_host(&name)
            {
                own(format!("{name}.local"));
                own(name);
            }
            for interface in if_addrs::get_if_addrs().unwrap_or_default() {
                own(host_of(interface.ip()));
            }
        } else {
            own(host_of(ip));
        }
        let mut seen = Vec::with_capacity(allowed.len());
        allowed.retain(|a| {
            let new = !seen.contains(a);
            if new {
                seen.push(a.clone());
            }
            new
        });
        Self { any, allowed }
    }

    /// True when a request for `host` (a `Host` header value) is answered.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let Some((name, port)) = split_host(host) else {
            return false;
        };
        self.allowed
            .iter()
            .any(|a| a.host == name && (a.port.is_none() || a.port == port))
    }

    /// The allowed hosts, for the log at start.
    pub fn describe(&self) -> String {
        if self.any {
            return "any host".to_owned();
        }
        let list: Vec<String> = self
            .allowed
            .iter()
            .map(|a| match a.port {
                Some(port) => format!("{}:{port}", a.host),
                None => a.host.clone(),
            })
            .collect();
        list.join(", ")
    }
}

/// An address as it appears in a `Host` header.
fn host_of(ip: IpAddr) -> String {
    match crate::config::canonical(ip) {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// `host[:port]` in lower case without a trailing dot; `None` when it is
/// not a plausible host.
fn split_host(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim().to_ascii_lowercase();
    if !crate::request::is_plausible_host(&value) {
        return None;
    }
    // A scheme without default ports, so that an explicit `:80` or `:443`
    // is kept as written.
    let url = url::Url::parse(&format!("host://{value}")).ok()?;
    let host = url.host_str()?.trim_end_matches('.');
    (!host.is_empty()).then(|| (host.to_owned(), url.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(config: &Config, listen: &str) -> AllowedHosts {
        AllowedHosts::new(config, listen.parse().unwrap())
    }

    #[test]
    fn the_machine_on_any_port_is_allowed_and_nothing_else() {
        let h = hosts(&Config::default(), "127.0.0.1:8000");
        assert_eq!(
            h.describe(),
            "localhost, 127.0.0.1, [::1]",
            "each name once"
        );
        for ok in [
            "127.0.0.1:8000",
            "localhost:8000",
            "LOCALHOST:8000",
            "[::1]:8000",
            "127.0.0.1:8001",
            "localhost",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8000",
            "",
            "0.0.0.0:8000",
            "localhost:8000/x",
            "localhost:99999",
            "::1",
            "[::1",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }

    #[test]
    fn a_wildcard_listener_allows_the_machines_names_and_addresses() {
        let h = hosts(&Config::default(), "0.0.0.0:8000");
        assert!(h.allows("localhost:8000"));
        assert!(h.allows("127.0.0.1:8000"), "loopback is an interface");
        let name = gethostname::gethostname()
            .to_string_lossy()
            .to_ascii_lowercase();
        if !name.is_empty() {
            assert!(h.allows(&format!("{name}:8000")), "{name}");
        }
        assert!(!h.allows("evil.example:8000"));
    }

    #[test]
    fn configured_names_are_allowed_on_any_port_unless_one_is_given() {
        let config = Config {
            public_url: Some("https://call.example.org".into()),
            allowed_hosts: vec!["alias.example.org".into(), "pinned.example.org:9000".into()],
            ..Config::default()
        };
        let h = hosts(&config, "127.0.0.1:8000");
        assert!(h.allows("call.example.org"));
        assert!(h.allows("Call.Example.org.:443"));
        assert!(h.allows("alias.example.org:8443"));
        assert!(h.allows("pinned.example.org:9000"));
        assert!(!h.allows("pinned.example.org:9001"));
        assert!(!h.allows("evil.example"));
        let any = Config {
            allowed_hosts: vec!["*".into()],
            ..Config::default()
        };
        assert!(hosts(&any, "127.0.0.1:8000").allows("evil.example"));
    }
}
