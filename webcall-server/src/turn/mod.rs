//! The built-in TURN server (`--turn`): relays media for participants who
//! cannot reach each other directly, over UDP, TCP and TLS, with
//! short-lived credentials minted per join.
//!
//! | module | owns |
//! |---|---|
//! | [`credentials`] | the TURN REST credential scheme: minting and checking |
//! | [`peers`] | the deny list of relay peers and its exceptions |
//! | [`relay`] | relay ports, the per-allocation rules, quotas and counters |
//! | [`stream`] | TCP and TLS clients multiplexed into one listener |
//! | `server` | the receive loop: rate limits, 401/403/486/508, the TURN crate |
//! | [`ice`] | [`ice::TurnIce`], the ICE servers and credentials per join |
//!
//! STUN and TURN message handling (allocations, permissions, channels,
//! relaying) is the webrtc-rs `turn` crate's; this module adds what a
//! server on the open internet needs around it.

pub mod credentials;
pub mod ice;
pub mod peers;
pub mod relay;
mod server;
pub mod stream;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use turn::allocation::allocation_manager::{Manager, ManagerConfig};
use webrtc_util::Conn;

pub use credentials::{Credential, RestAuth, TurnSecret};
pub use relay::TurnStats;
pub use tokio_rustls::rustls;

use crate::config::IpNet;
use crate::error::{Error, Result};
use peers::PeerPolicy;
use relay::{PendingReservation, Quotas, RelayGenerator, RelaySettings};
use stream::{StreamIntake, StreamLimits};

/// Names the stream clients that have gone.
type Gone = tokio::sync::mpsc::UnboundedReceiver<SocketAddr>;

/// The default TURN port (RFC 5766), for UDP and TCP.
pub const DEFAULT_TURN_PORT: u16 = 3478;

/// The receive buffer asked for on the TURN UDP port. Every client's
/// packets arrive on that one socket, and calls' packets come in bursts
/// (each side sends a picture's packets at once): with Linux's default
/// (208 KiB, about 90 full-size datagrams) 50 relayed calls lost 2-14 % of
/// their packets to a full buffer although the server used a third of a
/// core. The kernel caps it at `net.core.rmem_max`.
const TURN_UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// A transport of the built-in server that clients may be handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnTransport {
    /// `turn:HOST:PORT?transport=udp` (and `stun:HOST:PORT`).
    Udp,
    /// `turn:HOST:PORT?transport=tcp`.
    Tcp,
    /// `turns:HOST:PORT?transport=tcp`.
    Tls,
    /// `stun:HOST:PORT` alone: clients learn their public address from
    /// the built-in server but get no relay (given with `Udp` too).
    Stun,
}

impl std::str::FromStr for TurnTransport {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(Self::Udp),
            "tcp" => Ok(Self::Tcp),
            "tls" => Ok(Self::Tls),
            "stun" => Ok(Self::Stun),
            other => Err(Error::Config(format!(
                "TURN transport {other:?} is not one of udp, tcp, tls, stun"
            ))),
        }
    }
}

/// Everything the built-in TURN server can be told.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// UDP and TCP listening address (the same port for both).
    pub listen: SocketAddr,
    /// TLS listening address (`turns:`), if any; needs [`TurnConfig::tls`]
    /// or, in [`crate::run`], HTTPS ([`crate::Config::tls`]), whose
    /// certificate it then serves.
    pub tls_listen: Option<SocketAddr>,
    /// The certificate for TLS.
    pub tls: Option<TurnTls>,
    /// The HTTPS port's public number when it also takes TURN over TLS
    /// (`--turn-tls-on-https`): the HTTPS server hands over connections
    /// whose first bytes are STUN ([`TurnServer::https_intake`]), and
    /// clients get `turns:<host>:<port>`, which passes networks that let
    /// only HTTPS out. Needs HTTPS on that port, served by [`crate::run`].
    pub tls_on_https_port: Option<u16>,
    /// The address written into relayed addresses and handed-out URLs.
    /// Default: the listening address if it is specific, else the first
    /// address of this machine that is not loopback.
    pub public_ip: Option<IpAddr>,
    /// The host name in handed-out URLs when no public IP is configured
    /// (the public URL's host, say).
    pub public_host: Option<String>,
    /// UDP ports for relayed allocations, inclusive.
    pub relay_ports: (u16, u16),
    /// Which of the built-in server's URLs clients get; `None`: every
    /// transport that listens.
    pub transports: Option<Vec<TurnTransport>>,
    /// Exceptions to the relay's deny list.
    pub allow_peers: Vec<IpNet>,
    /// The credential secret, shared with external servers.
    pub secret: TurnSecret,
    /// How long a minted credential works.
    pub credential_ttl: Duration,
    /// External `turn:`/`turns:` URLs handed out with the same minted
    /// credentials (a coturn with `use-auth-secret`).
    pub external: Vec<String>,
    /// The realm in TURN authentication.
    pub realm: String,
    /// Allocations open at once, in total.
    pub max_allocations: usize,
    /// Allocations one credential may hold at once (a browser opens one
    /// per TURN URL and network interface, and more on ICE restarts).
    pub max_allocations_per_user: usize,
    /// The longest an allocation lives, refreshes included.
    pub max_allocation_lifetime: Duration,
    /// Relayed bytes per second per allocation, both directions together
    /// (0 = no limit). A 720p call needs about 300 KB/s each way.
    pub relay_bytes_per_second: u64,
    /// Unauthenticated requests per second per source address (0 = no
    /// limit).
    pub unauthenticated_per_second: u32,
    /// Nonces remembered at once; the oldest are evicted beyond it.
    pub max_nonces: usize,
    /// TCP and TLS clients connected at once, per listener.
    pub max_stream_clients: usize,
    /// Counters the server writes; keep a clone to read them.
    pub stats: Arc<TurnStats>,
}

/// Where TURN over TLS gets its certificate.
#[derive(Debug, Clone)]
pub enum TurnTls {
    /// PEM files, read at start.
    Files(TlsFiles),
    /// A rustls configuration made elsewhere, such as the HTTPS server's
    /// (whose certificate resolver may reload certificates): `turns:`
    /// then serves the same certificate as HTTPS.
    Config(Arc<tokio_rustls::rustls::ServerConfig>),
}

/// PEM files for TURN over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

impl TurnConfig {
    /// The defaults with `secret`: UDP and TCP on `0.0.0.0:3478`, relay
    /// ports 49152-65535, credentials for 24 hours.
    pub fn new(secret: TurnSecret) -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_TURN_PORT)),
            tls_listen: None,
            tls: None,
            tls_on_https_port: None,
            public_ip: None,
            public_host: None,
            relay_ports: (49152, 65535),
            transports: None,
            allow_peers: Vec::new(),
            secret,
            credential_ttl: Duration::from_secs(24 * 3600),
            external: Vec::new(),
            realm: "webcall".into(),
            max_allocations: 1000,
            max_allocations_per_user: 16,
            max_allocation_lifetime: Duration::from_secs(24 * 3600),
            relay_bytes_per_second: 2 * 1024 * 1024,
            unauthenticated_per_second: 20,
            max_nonces: 10_000,
            max_stream_clients: 2000,
            stats: Arc::default(),
        }
    }

    /// Checks what could otherwise fail at start.
    pub fn validate(&self) -> Result<()> {
        let (low, high) = self.relay_ports;
        if low == 0 || high < low {
            return Err(Error::Config(format!(
                "TURN relay ports {low}-{high} must be a range such as 49152-65535"
            )));
        }
        if self.tls.is_some() && self.tls_listen.is_none() {
            return Err(Error::Config(
                "a TURN certificate (--turn-tls-cert, --turn-tls-key) needs --turn-tls-listen"
                    .into(),
            ));
        }
        if self.credential_ttl.is_zero() || self.max_allocation_lifetime.is_zero() {
            return Err(Error::Config(
                "the TURN credential TTL and allocation lifetime must be above zero".into(),
            ));
        }
        if self.max_allocations == 0 || self.max_allocations_per_user == 0 || self.max_nonces == 0 {
            return Err(Error::Config(
                "TURN allocation and nonce limits must be at least 1".into(),
            ));
        }
        for url in &self.external {
            if !(url.starts_with("turn:") || url.starts_with("turns:")) {
                return Err(Error::Config(format!(
                    "external TURN URL {url:?} must start with turn: or turns:"
                )));
            }
        }
        Ok(())
    }

    /// The IP written into relayed addresses.
    fn relay_ip(&self) -> IpAddr {
        self.public_ip
            .or_else(|| (!self.listen.ip().is_unspecified()).then_some(self.listen.ip()))
            .or_else(first_public_address)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// The host in handed-out URLs.
    fn url_host(&self) -> String {
        let ip = self
            .public_ip
            .or_else(|| (!self.listen.ip().is_unspecified()).then_some(self.listen.ip()));
        match (ip, &self.public_host) {
            (Some(ip), _) => host_of(ip),
            (None, Some(host)) => host.clone(),
            (None, None) => host_of(self.relay_ip()),
        }
    }
}

fn host_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// The first address of this machine that is neither loopback nor link-local.
fn first_public_address() -> Option<IpAddr> {
    let addrs = if_addrs::get_if_addrs().ok()?;
    let usable = |a: &&if_addrs::Interface| {
        let ip = a.ip();
        !ip.is_loopback()
            && match ip {
                IpAddr::V4(v4) => !v4.is_link_local(),
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            }
    };
    addrs
        .iter()
        .filter(usable)
        .find(|a| a.ip().is_ipv4())
        .or_else(|| addrs.iter().find(usable))
        .map(|a| a.ip())
}

/// The URLs of a running built-in server, per transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnUrls {
    /// `stun:` and `turn:` URLs of the built-in server clients get.
    pub builtin: Vec<String>,
    /// External URLs that get the same credentials.
    pub external: Vec<String>,
}

/// A running built-in TURN server; stopped by [`TurnServer::stop`] or on drop.
#[derive(Debug)]
pub struct TurnServer {
    udp: SocketAddr,
    tcp: SocketAddr,
    tls: Option<SocketAddr>,
    https_intake: Option<StreamIntake>,
    urls: TurnUrls,
    stats: Arc<TurnStats>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl TurnServer {
    /// Binds the listeners and starts serving.
    pub async fn start(config: &TurnConfig) -> Result<Self> {
        config.validate()?;
        let (udp, tcp) = bind_udp_and_tcp(config.listen).await?;
        let tls_listener = match config.tls_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                Error::Config(format!("cannot listen for TURN over TLS on {addr}: {e}"))
            })?),
            None => None,
        };
        let tls_acceptor = match &config.tls {
            Some(TurnTls::Files(files)) if tls_listener.is_some() => Some(tls::acceptor(files)?),
            Some(TurnTls::Config(config)) if tls_listener.is_some() => {
                Some(tokio_rustls::TlsAcceptor::from(config.clone()))
            }
            _ => None,
        };
        let stats = config.stats.clone();
        let policy = PeerPolicy::new(config.allow_peers.clone());
        let denials = Arc::<relay::Denials>::default();
        let shared = Arc::new(server::Shared {
            auth: Arc::new(RestAuth::new(config.secret.clone(), config.realm.clone())),
            realm: config.realm.clone(),
            nonces: Arc::default(),
            max_nonces: config.max_nonces,
            quotas: Quotas::new(
                config.max_allocations,
                config.max_allocations_per_user,
                stats.clone(),
            ),
            policy: policy.clone(),
            stats: stats.clone(),
            unauthenticated_per_second: config.unauthenticated_per_second,
            sources: Mutex::new(HashMap::new()),
            denials: denials.clone(),
            channel_bind_timeout: Duration::from_secs(600),
        });
        let relay = RelaySettings {
            bind_ip: config.listen.ip(),
            public_ip: config.relay_ip(),
            ports: config.relay_ports,
            policy,
            bytes_per_second: config.relay_bytes_per_second,
            max_lifetime: config.max_allocation_lifetime,
            stats: stats.clone(),
            denials,
        };
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let udp_addr = udp.local_addr()?;
        let tcp_addr = tcp.local_addr()?;
        let limits = StreamLimits {
            max_connections: config.max_stream_clients,
        };

        let mut listeners: Vec<(Arc<dyn Conn + Send + Sync>, Option<Gone>)> = Vec::new();
        let udp_conn: Arc<dyn Conn + Send + Sync> = Arc::new(udp);
        listeners.push((udp_conn, None));
        let (tcp_conn, tcp_gone) = stream::listen(
            tcp,
            |s: TcpStream| async move { Ok::<_, std::io::Error>(s) },
            limits,
            stop.clone(),
        )?;
        let tcp_conn: Arc<dyn Conn + Send + Sync> = tcp_conn;
        listeners.push((tcp_conn, Some(tcp_gone)));
        let mut tls_addr = None;
        if let (Some(listener), Some(acceptor)) = (tls_listener, tls_acceptor) {
            tls_addr = Some(listener.local_addr()?);
            let (conn, gone) = stream::listen(
                listener,
                move |s: TcpStream| {
                    let acceptor = acceptor.clone();
                    async move { acceptor.accept(s).await }
                },
                limits,
                stop.clone(),
            )?;
            let conn: Arc<dyn Conn + Send + Sync> = conn;
            listeners.push((conn, Some(gone)));
        }
        let https_intake = config.tls_on_https_port.map(|port| {
            let local = SocketAddr::new(config.listen.ip(), port);
            let (conn, gone, intake) = stream::intake(local, limits, stop.clone());
            let conn: Arc<dyn Conn + Send + Sync> = conn;
            listeners.push((conn, Some(gone)));
            intake
        });
        for (conn, gone) in listeners {
            let pending = PendingReservation::default();
            let manager = Arc::new(Manager::new(ManagerConfig {
                relay_addr_generator: Box::new(RelayGenerator::new(relay.clone(), pending.clone())),
                alloc_close_notify: None,
            }));
            tasks.spawn(server::read_loop(
                shared.clone(),
                server::Listener {
                    conn,
                    manager,
                    pending,
                    gone,
                },
                stop.clone(),
            ));
        }
        tasks.close();

        let host = config.url_host();
        let wanted = |t: TurnTransport| {
            config
                .transports
                .as_ref()
                .is_none_or(|list| list.contains(&t))
        };
        let mut builtin = Vec::new();
        if wanted(TurnTransport::Udp) || wanted(TurnTransport::Stun) {
            builtin.push(format!("stun:{host}:{}", udp_addr.port()));
        }
        if wanted(TurnTransport::Udp) {
            builtin.push(format!("turn:{host}:{}?transport=udp", udp_addr.port()));
        }
        if wanted(TurnTransport::Tcp) {
            builtin.push(format!("turn:{host}:{}?transport=tcp", tcp_addr.port()));
        }
        if let Some(tls) = tls_addr.filter(|_| wanted(TurnTransport::Tls)) {
            builtin.push(format!("turns:{host}:{}?transport=tcp", tls.port()));
        }
        if let Some(port) = config
            .tls_on_https_port
            .filter(|_| wanted(TurnTransport::Tls))
        {
            builtin.push(format!("turns:{host}:{port}?transport=tcp"));
        }
        tracing::info!(
            udp = %udp_addr,
            tcp = %tcp_addr,
            tls = ?tls_addr,
            tls_on_https_port = ?config.tls_on_https_port,
            relay_ip = %relay.public_ip,
            relay_ports = %format!("{}-{}", relay.ports.0, relay.ports.1),
            "TURN server started; clients get {}",
            builtin.iter().chain(&config.external).cloned().collect::<Vec<_>>().join(" ")
        );
        Ok(Self {
            udp: udp_addr,
            tcp: tcp_addr,
            tls: tls_addr,
            https_intake,
            urls: TurnUrls {
                builtin,
                external: config.external.clone(),
            },
            stats,
            stop,
            tasks,
        })
    }

    /// The UDP listening address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The TCP listening address (the UDP port).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }

    /// The TLS listening address, if TLS listens.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls
    }

    /// Where the HTTPS server hands TURN-over-TLS connections, when
    /// [`TurnConfig::tls_on_https_port`] is set.
    pub fn https_intake(&self) -> Option<StreamIntake> {
        self.https_intake.clone()
    }

    /// The URLs clients are handed.
    pub fn urls(&self) -> &TurnUrls {
        &self.urls
    }

    /// The server's counters.
    pub fn stats(&self) -> &Arc<TurnStats> {
        &self.stats
    }

    /// Stops listening, closes every allocation and waits for the loops.
    pub async fn stop(self) {
        self.stop.cancel();
        self.tasks.wait().await;
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Binds UDP and TCP on one port; with port 0, retries until a port free
/// for both is found.
async fn bind_udp_and_tcp(addr: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    let tries = if addr.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| Error::Config(format!("cannot listen for TURN on UDP {addr}: {e}")))?;
        widen_receive_buffer(&udp);
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Config(format!(
        "cannot listen for TURN on TCP {addr}: {}",
        last.map_or_else(String::new, |e| e.to_string())
    )))
}

/// Asks for [`TURN_UDP_RECEIVE_BUFFER`] on the TURN UDP port, and says
/// how to allow it when the kernel grants less.
fn widen_receive_buffer(udp: &UdpSocket) {
    let socket = socket2::SockRef::from(udp);
    if let Err(e) = socket.set_recv_buffer_size(TURN_UDP_RECEIVE_BUFFER) {
        tracing::warn!(error = %e, "cannot enlarge the TURN port's receive buffer");
        return;
    }
    // Linux reports twice the size it grants (the other half is its own
    // bookkeeping).
    let granted = socket.recv_buffer_size().unwrap_or(0) / 2;
    if granted < TURN_UDP_RECEIVE_BUFFER {
        tracing::info!(
            granted_bytes = granted,
            wanted_bytes = TURN_UDP_RECEIVE_BUFFER,
            "the TURN port's receive buffer is smaller than wanted: with many relayed calls, \
             raise it with `sysctl -w net.core.rmem_max={TURN_UDP_RECEIVE_BUFFER}`"
        );
    }
}

mod tls {
    //! The TLS acceptor for `turns:`, from PEM files.

    use std::sync::Arc;

    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::TlsFiles;
    use crate::error::{Error, Result};

    /// An acceptor serving the certificate in `files`.
    pub(super) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
        let certs = CertificateDer::pem_file_iter(&files.cert)
            .and_then(|i| i.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                Error::Config(format!(
                    "cannot read the TURN TLS certificate {}: {e}",
                    files.cert.display()
                ))
            })?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
            Error::Config(format!(
                "cannot read the TURN TLS key {}: {e}",
                files.key.display()
            ))
        })?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| Error::Config(format!("unusable TURN TLS certificate or key: {e}")))?;
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_turn_port_gets_the_receive_buffer_the_kernel_allows() {
        let (udp, _tcp) = bind_udp_and_tcp("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let allowed: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(TURN_UDP_RECEIVE_BUFFER);
        let granted = socket2::SockRef::from(&udp).recv_buffer_size().unwrap() / 2;
        assert!(
            granted >= TURN_UDP_RECEIVE_BUFFER.min(allowed),
            "granted {granted} bytes, the kernel allows {allowed}"
        );
    }
}
