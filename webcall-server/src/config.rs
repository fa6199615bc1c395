//! The server's settings: one [`Config`] with public fields, filled by the
//! binary from flags and environment, or by tests and embedders directly.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use webcall_core::protocol::{IceServer, IceTransportPolicy};
use webcall_core::room::RoomConfig;

use crate::error::{Error, Result};
pub use crate::tls::{AcmeSettings, TlsSource};

/// The STUN server handed to clients when none is configured.
pub const DEFAULT_STUN: &str = "stun:stun.l.google.com:19302";

/// The prefix of Redis keys and channels unless configured.
pub const DEFAULT_REDIS_PREFIX: &str = "webcall:";

/// Everything the server can be told.
///
/// `Config::default()` suits tests and local use, except that it hands
/// clients a public STUN server; tests set `ice_servers: vec![]`. So do
/// embedders that set [`Config::turn`] and want clients to use the
/// built-in server only: the default public STUN server is not dropped
/// when `turn` is set (the binary's `--turn` empties the list itself
/// unless `--ice-servers` is given).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the binary listens. [`crate::run`] takes a bound listener
    /// instead, so this is informational there.
    pub listen: SocketAddr,
    /// The base of room links (`https://call.example.org`); without it,
    /// links are built from each request's `Host` header.
    pub public_url: Option<String>,
    /// STUN and TURN servers handed to every participant in `joined`,
    /// after the built-in TURN server's when [`Config::turn`] is set. The
    /// default is a public STUN server ([`DEFAULT_STUN`]), kept also with
    /// `turn` set: use `vec![]` so that no third-party server is contacted.
    pub ice_servers: Vec<IceServer>,
    /// Which ICE candidates clients may use.
    pub ice_transport_policy: IceTransportPolicy,
    /// Room lifetime, capacity and how many rooms may exist at once.
    pub room: RoomConfig,
    /// Rooms one client may create per minute (0 = no limit). A client is
    /// one IPv4 address or one IPv6 prefix of `client_ipv6_prefix` bits.
    pub create_rate_per_minute: u32,
    /// How many leading bits of an IPv6 address name one client (64: one
    /// household or host, as ISPs hand out /64s). IPv4 clients are single
    /// addresses.
    pub client_ipv6_prefix: u8,
    /// Origins allowed to open the signaling WebSocket, such as
    /// `https://call.example.org`. `None`: only the request's own host.
    /// A connection without an `Origin` header (a native client) is always
    /// allowed.
    pub allowed_origins: Option<Vec<String>>,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto`
    /// headers are believed. Empty: the headers are ignored.
    pub trusted_proxies: Vec<IpNet>,
    /// Names clients may reach the server by (`call.example.org`, or with a
    /// port, `call.example.org:8443`), besides the machine's own names and
    /// addresses and the public URL's host. A request for any other `Host`
    /// gets `421`, so that links are never built from a name an attacker
    /// chose. `["*"]` accepts any host.
    pub allowed_hosts: Vec<String>,
    /// TCP connections of every kind open at once (page loads, API calls
    /// and signaling WebSockets); [`crate::run`] refuses more at accept
    /// with `503`. A router embedded elsewhere applies it to signaling
    /// WebSockets only.
    pub max_connections: usize,
    /// TCP connections one client may hold at once (0 = no limit).
    /// Trusted proxies are exempt.
    pub max_connections_per_client: usize,
    /// How long a client may take to send a request's head or body, and how
    /// long an idle keep-alive connection stays open.
    pub request_timeout: Duration,
    /// After the shutdown signal: how long to wait for connections to close
    /// before the server stops anyway.
    pub shutdown_timeout: Duration,
    /// How long a new connection may take to send `join`.
    pub join_timeout: Duration,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// A connection that sent nothing (not even a pong) for this long is
    /// dropped.
    pub idle_timeout: Duration,
    /// How often expired rooms are removed and their participants told.
    pub sweep_interval: Duration,
    /// Sustained signaling messages per second one connection may send.
    pub message_rate_per_second: u32,
    /// Messages one connection may send in a burst above that rate.
    pub message_burst: u32,
    /// Sustained bytes per second one connection may send.
    pub message_bytes_per_second: u32,
    /// Bytes one connection may send in a burst above that rate. What the
    /// rate limits let a sender send, the receiver's queue must hold:
    /// see [`Config::queue_limits`].
    pub message_bytes_burst: u32,
    /// Bytes queued for all connections together before the slowest
    /// receivers are cut off.
    pub max_queued_bytes: usize,
    /// HTTPS on the listening port, and where its certificate comes from.
    /// `None`: plain HTTP (behind a TLS-terminating proxy, or on a LAN).
    pub tls: Option<TlsSource>,
    /// Where the self-signed certificate and the ACME account and
    /// certificates are kept. `None`: [`default_data_dir`].
    pub data_dir: Option<PathBuf>,
    /// The built-in TURN server, started by [`crate::run`] when set; its
    /// URLs, with a credential minted per join, are handed out before
    /// `ice_servers`, which is not changed by this: leave it at its
    /// default and clients also get the public STUN server (set
    /// `ice_servers: vec![]` for the built-in server alone).
    pub turn: Option<crate::turn::TurnConfig>,
    /// Where [`crate::run`] serves Prometheus metrics at `GET /metrics`
    /// (plain HTTP, nothing else on that port; keep it on loopback or a
    /// private network). `None`: no metrics listener. See
    /// [`crate::metrics`] for the names.
    pub metrics_listen: Option<SocketAddr>,
    /// Where rooms and signaling are shared between instances: a Redis
    /// URL (`redis://HOST:PORT/DB`). With it, rooms outlive this process,
    /// several instances serve the same rooms, and a shutdown asks clients
    /// to reconnect. `None`: rooms live in this process's memory.
    pub redis_url: Option<String>,
    /// The prefix of every Redis key and channel this server uses, so
    /// that several deployments can share one Redis.
    pub redis_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            public_url: None,
            ice_servers: vec![IceServer::new(DEFAULT_STUN)],
            ice_transport_policy: IceTransportPolicy::All,
            room: RoomConfig::default(),
            create_rate_per_minute: 20,
            client_ipv6_prefix: 64,
            allowed_origins: None,
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
            max_connections: 10_000,
            max_connections_per_client: 100,
            request_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(10),
            join_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            sweep_interval: Duration::from_secs(30),
            message_rate_per_second: 50,
            message_burst: 200,
            message_bytes_per_second: 64 * 1024,
            message_bytes_burst: 256 * 1024,
            max_queued_bytes: 64 * 1024 * 1024,
            tls: None,
            data_dir: None,
            turn: None,
            metrics_listen: None,
            redis_url: None,
            redis_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
        }
    }
}

impl Config {
    /// Checks the settings that could otherwise fail later, at request time.
    pub fn validate(&self) -> Result<()> {
        if let Some(url) = &self.redis_url {
            let scheme = url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("redis" | "redis+unix" | "unix")) {
                return Err(Error::Config(format!(
                    "the store URL {url:?} is not a Redis URL: give redis://HOST:PORT/DB (or unix:///PATH)"
                )));
            }
            redis::Client::open(url.as_str())
                .map_err(|e| Error::Config(format!("the store URL {url:?} is not usable: {e}")))?;
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.len() > 64 {
            return Err(Error::Config(
                "the Redis key prefix must be 1 to 64 characters, such as webcall:".into(),
            ));
        }
        if let Some(url) = &self.public_url {
            let parsed = url::Url::parse(url).map_err(|e| {
                Error::Config(format!(
                    "public URL {url:?} is not a URL ({e}): give one such as https://call.example.org"
                ))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::Config(format!(
                    "public URL {url:?} must start with http:// or https://"
                )));
            }
            if parsed.host_str().is_none_or(str::is_empty)
                || parsed.query().is_some()
                || parsed.fragment().is_some()
                || !parsed.username().is_empty()
                || url.contains(char::is_whitespace)
            {
                return Err(Error::Config(format!(
                    "public URL {url:?} must be a base such as https://call.example.org"
                )));
            }
        }
        if self.room.capacity == 0 || self.room.max_rooms == 0 {
            return Err(Error::Config(
                "rooms need a capacity and max_rooms of at least 1".into(),
            ));
        }
        if self.ping_interval.is_zero()
            || self.idle_timeout.is_zero()
            || self.join_timeout.is_zero()
        {
            return Err(Error::Config(
                "ping interval, idle timeout and join timeout must be above zero".into(),
            ));
        }
        if self.sweep_interval.is_zero() {
            return Err(Error::Config(
                "the sweep interval must be above zero".into(),
            ));
        }
        if self.message_rate_per_second == 0 || self.message_burst == 0 {
            return Err(Error::Config(
                "the message rate and burst must be at least 1".into(),
            ));
        }
        if (self.message_bytes_burst as usize) < webcall_core::protocol::MAX_MESSAGE_BYTES
            || self.message_bytes_per_second == 0
        {
            return Err(Error::Config(format!(
                "the byte burst must be at least one largest message ({} bytes) and the byte rate above zero",
                webcall_core::protocol::MAX_MESSAGE_BYTES
            )));
        }
        if self.max_connections == 0 {
            return Err(Error::Config("max connections must be at least 1".into()));
        }
        if !(1..=128).contains(&self.client_ipv6_prefix) {
            return Err(Error::Config(
                "the client IPv6 prefix must be 1 to 128 bits".into(),
            ));
        }
        if self.request_timeout.is_zero() || self.shutdown_timeout.is_zero() {
            return Err(Error::Config(
                "the request and shutdown timeouts must be above zero".into(),
            ));
        }
        if let Some(turn) = &self.turn {
            turn.validate()?;
            if turn.tls_listen.is_some() && turn.tls.is_none() && self.tls.is_none() {
                return Err(Error::Config(
                    "TURN over TLS needs a certificate: --turn-tls-cert and --turn-tls-key, or HTTPS (--tls-cert, --tls-self-signed, --acme-domain) to share".into(),
                ));
            }
            if turn.tls_on_https_port.is_some() && self.tls.is_none() {
                return Err(Error::Config(
                    "--turn-tls-on-https needs HTTPS on this server: add --tls-cert and --tls-key, --tls-self-signed or --acme-domain".into(),
                ));
            }
        }
        for host in &self.allowed_hosts {
            if host != "*" && !crate::request::is_plausible_host(host) {
                return Err(Error::Config(format!(
                    "allowed host {host:?} must be a host name or address, optionally with :port"
                )));
            }
        }
        if let Some(TlsSource::Acme(acme)) = &self.tls {
            if acme.domains.is_empty() {
                return Err(Error::Config("ACME needs at least one domain".into()));
            }
            for domain in &acme.domains {
                if domain.contains(':') || !crate::request::is_plausible_host(domain) {
                    return Err(Error::Config(format!(
                        "ACME domain {domain:?} must be a host name such as call.example.org"
                    )));
                }
            }
            if !acme.directory.starts_with("https://") {
                return Err(Error::Config(format!(
                    "the ACME directory {:?} must be an https:// URL",
                    acme.directory
                )));
            }
        }
        Ok(())
    }

    /// The data directory: the configured one or [`default_data_dir`].
    pub fn resolved_data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    /// What one connection's outgoing queue must hold: every message and
    /// byte the rate limits let the other participant send in a burst, plus
    /// room for the server's own messages. A receiver over either bound is
    /// not reading and is cut off.
    pub fn queue_limits(&self) -> crate::hub::QueueLimits {
        crate::hub::QueueLimits {
            messages: self.message_burst as usize + 64,
            bytes: self.message_bytes_burst as usize + webcall_core::protocol::MAX_MESSAGE_BYTES,
            total_bytes: self.max_queued_bytes,
        }
    }

    /// The host name of the public URL, without scheme or port (an IPv6
    /// address in brackets).
    pub(crate) fn public_host(&self) -> Option<String> {
        let url = url::Url::parse(self.public_base()?).ok()?;
        url.host_str().filter(|h| !h.is_empty()).map(str::to_owned)
    }

    /// The public URL without a trailing slash.
    pub(crate) fn public_base(&self) -> Option<&str> {
        self.public_url.as_deref().map(|u| u.trim_end_matches('/'))
    }
}

/// Where state that outlives a restart is kept when no directory is
/// configured: `/var/lib/webcall` where this process may write there (as
/// root, or a service user given that directory), otherwise
/// `$XDG_DATA_HOME/webcall` or `~/.local/share/webcall`. The binary's
/// `--data-dir` and `WEBCALL_DATA_DIR` come first.
///
/// Finding out whether `/var/lib/webcall` is writable creates it.
pub fn default_data_dir() -> PathBuf {
    let system = Path::new("/var/lib/webcall");
    if cfg!(unix) && writable(system) {
        return system.to_owned();
    }
    let xdg = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    match (xdg, home) {
        (Some(xdg), _) => xdg.join("webcall"),
        (None, Some(home)) => home.join(".local/share/webcall"),
        (None, None) => PathBuf::from("webcall-data"),
    }
}

/// True when `dir` exists (or can be made) and a file can be made in it.
fn writable(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(format!(".write-test-{}", std::process::id()));
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// An address range such as `10.0.0.0/8` or a single address. IPv4-mapped
/// IPv6 addresses (`::ffff:1.2.3.4`) count as the IPv4 address they carry,
/// both in the range and in what it is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet(ipnet::IpNet);

impl IpNet {
    /// True when `ip` lies inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) as plain IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl std::str::FromStr for IpNet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let net = match s.parse::<ipnet::IpNet>() {
            Ok(net) => net,
            Err(_) => s.parse::<IpAddr>().map(ipnet::IpNet::from).map_err(|_| {
                Error::Config(format!(
                    "{s:?} is not an IP address or range such as 10.0.0.0/8"
                ))
            })?,
        };
        Ok(Self(match net {
            ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
                Some(v4) => ipnet::IpNet::V4(
                    ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                        .map_err(|e| Error::Config(format!("{s:?}: {e}")))?,
                ),
                None => net,
            },
            _ => net,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_match_what_they_cover() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let mapped: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("11.0.0.1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "example.org", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn public_url_must_be_a_base() {
        let ok = Config {
            public_url: Some("https://call.example.org/".into()),
            ..Config::default()
        };
        ok.validate().unwrap();
        assert_eq!(ok.public_base(), Some("https://call.example.org"));
        assert_eq!(ok.public_host().as_deref(), Some("call.example.org"));
        let v6 = Config {
            public_url: Some("https://[2001:db8::1]:8443/".into()),
            ..Config::default()
        };
        assert_eq!(v6.public_host().as_deref(), Some("[2001:db8::1]"));
        for bad in [
            "call.example.org",
            "https://",
            "https://x/?a",
            "https://x/#a",
            "ftp://x",
            "https://u@x",
        ] {
            let c = Config {
                public_url: Some(bad.into()),
                ..Config::default()
            };
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
