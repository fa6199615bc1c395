//! The `webcall-server` binary: parses flags (each with an environment
//! fallback), sets up logging, and runs the server until Ctrl-C or SIGTERM.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use webcall_core::protocol::{IceServer, IceTransportPolicy};
use webcall_core::room::RoomConfig;
use webcall_server::config::{AcmeSettings, DEFAULT_STUN, IpNet, TlsSource};
use webcall_server::turn::{TlsFiles, TurnConfig, TurnSecret, TurnTls, TurnTransport};
use webcall_server::{Config, Tls};

/// Self-hosted one-to-one video calls by link: serves the room API, the
/// signaling WebSocket and the browser client on one port.
#[derive(Debug, Parser)]
#[command(name = "webcall-server", version)]
struct Flags {
    /// Address and port to listen on.
    #[arg(long, env = "WEBCALL_LISTEN", default_value = "0.0.0.0:8000")]
    listen: SocketAddr,

    /// Base URL of room links, as users reach the server (e.g.
    /// https://call.example.org). Default: taken from each request's Host,
    /// among those the server answers for (see --allowed-hosts).
    #[arg(long, env = "PUBLIC_BASE_URL")]
    public_url: Option<String>,

    /// STUN/TURN servers handed to clients: a JSON array of RTCIceServer
    /// objects, e.g. '[{"urls":"turn:turn.example.org","username":"u","credential":"p"}]'.
    /// '[]' hands out no servers at all (calls then connect only where the
    /// two sides reach each other directly, as on one LAN). Default: a
    /// public STUN server, or with --turn only the built-in server.
    #[arg(long, env = "WEBCALL_ICE_SERVERS", value_parser = parse_ice)]
    ice_servers: Option<IceServers>,

    /// Which ICE candidates clients may use: all, or relay (TURN only;
    /// hides participants' addresses from each other).
    #[arg(long, env = "WEBCALL_ICE_TRANSPORT_POLICY", value_enum, default_value_t = Policy::All)]
    ice_transport_policy: Policy,

    /// How long a room's link works after creation (e.g. 7d, 12h, 30m).
    #[arg(long, env = "WEBCALL_ROOM_TTL", default_value = "7d", value_parser = humantime::parse_duration)]
    room_ttl: Duration,

    /// How long a link nobody has joined works (e.g. 24h); once someone
    /// joins, the link works for the whole --room-ttl.
    #[arg(long, env = "WEBCALL_UNUSED_ROOM_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    unused_room_ttl: Duration,

    /// How long a participant's seat is kept for them after their
    /// connection drops without hanging up (network change, restarted
    /// proxy); the other side sees "reconnecting" meanwhile. 0s frees the
    /// seat at once.
    #[arg(long, env = "WEBCALL_SEAT_GRACE", default_value = "20s", value_parser = humantime::parse_duration)]
    seat_grace: Duration,

    /// How long the seat is kept when the page said it was going away
    /// (closed or reloaded): a reload comes back within it, a closed tab is
    /// reported gone after it. At most --seat-grace.
    #[arg(long, env = "WEBCALL_LEAVE_GRACE", default_value = "3s", value_parser = humantime::parse_duration)]
    leave_grace: Duration,

    /// How many rooms may exist at once, from everyone together: the last
    /// resort behind --rooms-per-client and --rooms-per-network.
    #[arg(long, env = "WEBCALL_MAX_ROOMS", default_value_t = RoomConfig::default().max_rooms)]
    max_rooms: usize,

    /// Live rooms one client may hold (0 = no limit). A client is one IPv4
    /// address or one IPv6 prefix (see --client-ipv6-prefix).
    #[arg(long, env = "WEBCALL_ROOMS_PER_CLIENT", default_value_t = RoomConfig::default().rooms_per_client)]
    rooms_per_client: usize,

    /// Live rooms one network may hold (0 = no limit). A network is an IPv4
    /// /24 or an IPv6 /48.
    #[arg(long, env = "WEBCALL_ROOMS_PER_NETWORK", default_value_t = RoomConfig::default().rooms_per_network)]
    rooms_per_network: usize,

    /// Rooms one client may create per minute (0 = no limit).
    #[arg(long, env = "WEBCALL_CREATE_RATE", default_value_t = Config::default().create_rate_per_minute)]
    create_rate: u32,

    /// How many leading bits of an IPv6 address name one client in the
    /// per-client limits.
    #[arg(long, env = "WEBCALL_CLIENT_IPV6_PREFIX", default_value_t = Config::default().client_ipv6_prefix, value_parser = clap::value_parser!(u8).range(1..=128))]
    client_ipv6_prefix: u8,

    /// TCP connections of every kind open at once: page loads, API calls
    /// and signaling WebSockets. More are answered 503 and closed at once.
    /// Lowered at start to fit the open-file limit, which is raised as far
    /// as the system allows.
    #[arg(long, env = "WEBCALL_MAX_CONNECTIONS", default_value_t = Config::default().max_connections)]
    max_connections: usize,

    /// TCP connections one client may hold open at once (0 = no limit);
    /// trusted proxies are exempt.
    #[arg(long, env = "WEBCALL_MAX_CONNECTIONS_PER_CLIENT", default_value_t = Config::default().max_connections_per_client)]
    max_connections_per_client: usize,

    /// How long a client may take to send a request (head and body), and
    /// how long an idle keep-alive connection stays open.
    #[arg(long, env = "WEBCALL_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,

    /// On SIGTERM or Ctrl-C: how long to wait for connections to be told
    /// and closed before stopping anyway.
    #[arg(long, env = "WEBCALL_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,

    /// Comma-separated host names (optionally with :port) clients may
    /// reach the server by, besides the machine's own names and addresses
    /// and the --public-url host; other Host headers get 421. '*' accepts
    /// any host.
    #[arg(long, env = "WEBCALL_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,

    /// Comma-separated origins whose pages may open signaling connections
    /// (e.g. https://call.example.org). Default: the request's own host.
    #[arg(long, env = "WEBCALL_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Option<Vec<String>>,

    /// Comma-separated addresses or ranges of reverse proxies whose
    /// X-Forwarded-For and X-Forwarded-Proto headers are believed.
    #[arg(long, env = "WEBCALL_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<IpNet>,

    /// Serve HTTPS with this certificate chain (PEM, leaf first, such as
    /// certbot's fullchain.pem). Both files are read again when they
    /// change: a renewal needs no restart.
    #[arg(long, env = "WEBCALL_TLS_CERT", value_name = "PATH", requires = "tls_key",
          conflicts_with_all = ["tls_self_signed", "acme_domain"])]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(
        long,
        env = "WEBCALL_TLS_KEY",
        value_name = "PATH",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for localhost, this
    /// machine's name and its addresses, made once and kept in --data-dir
    /// (the fingerprint printed at start stays the same). Browsers warn
    /// once; for phones on the same network.
    #[arg(long, env = "WEBCALL_TLS_SELF_SIGNED", conflicts_with = "acme_domain",
          value_parser = clap::builder::BoolishValueParser::new())]
    tls_self_signed: bool,

    /// Serve HTTPS with a certificate obtained automatically for this
    /// domain (repeatable, or comma-separated) from an ACME CA, through the
    /// TLS-ALPN-01 challenge: the domain must point here and the CA must
    /// reach this port as 443. Kept in --data-dir and renewed.
    #[arg(
        long,
        env = "WEBCALL_ACME_DOMAIN",
        value_name = "NAME",
        value_delimiter = ','
    )]
    acme_domain: Vec<String>,

    /// Contact address for the ACME account (expiry warnings).
    #[arg(
        long,
        env = "WEBCALL_ACME_EMAIL",
        value_name = "ADDRESS",
        requires = "acme_domain"
    )]
    acme_email: Option<String>,

    /// The ACME CA's directory URL.
    #[arg(long, env = "WEBCALL_ACME_DIRECTORY", value_name = "URL", default_value = webcall_server::tls::LETS_ENCRYPT)]
    acme_directory: String,

    /// Trust this CA (PEM) for the ACME directory's own HTTPS instead of
    /// the public roots: for a private or test CA.
    #[arg(
        long,
        env = "WEBCALL_ACME_DIRECTORY_CA",
        value_name = "PATH",
        requires = "acme_domain"
    )]
    acme_directory_ca: Option<PathBuf>,

    /// Where certificates and the ACME account are kept. Default:
    /// /var/lib/webcall where writable, else $XDG_DATA_HOME/webcall or
    /// ~/.local/share/webcall.
    #[arg(long, env = "WEBCALL_DATA_DIR", value_name = "PATH")]
    data_dir: Option<PathBuf>,

    /// Run the built-in TURN server: relays calls between networks that
    /// cannot reach each other directly. Each participant gets its own
    /// short-lived credential when joining.
    #[arg(long, env = "WEBCALL_TURN")]
    turn: bool,

    /// UDP and TCP address of the built-in TURN server (one port for both).
    #[arg(long, env = "WEBCALL_TURN_LISTEN", default_value = "0.0.0.0:3478")]
    turn_listen: SocketAddr,

    /// Address for TURN over TLS (turns:), e.g. 0.0.0.0:5349. Its
    /// certificate is --turn-tls-cert and --turn-tls-key, or else the
    /// HTTPS one (--tls-cert, --tls-self-signed or --acme-domain).
    #[arg(long, env = "WEBCALL_TURN_TLS_LISTEN")]
    turn_tls_listen: Option<SocketAddr>,

    /// Also take TURN over TLS on the HTTPS port (443 on a VPS), told
    /// apart from HTTPS by its first bytes, and hand clients that turns:
    /// URL: calls then connect from networks that let only HTTPS out.
    /// Needs HTTPS on this server (--tls-cert, --tls-self-signed or
    /// --acme-domain).
    #[arg(long, env = "WEBCALL_TURN_TLS_ON_HTTPS")]
    turn_tls_on_https: bool,

    /// Certificate chain (PEM) for TURN over TLS.
    #[arg(long, env = "WEBCALL_TURN_TLS_CERT")]
    turn_tls_cert: Option<PathBuf>,

    /// Private key (PEM) for TURN over TLS.
    #[arg(long, env = "WEBCALL_TURN_TLS_KEY")]
    turn_tls_key: Option<PathBuf>,

    /// The server's public address, written into relay candidates and the
    /// TURN URLs clients get. Set it behind NAT (a cloud VM's public IP).
    /// Default: the --turn-listen address if specific, else the first
    /// non-loopback address of this machine.
    #[arg(long, env = "WEBCALL_TURN_PUBLIC_IP")]
    turn_public_ip: Option<IpAddr>,

    /// UDP port range for relayed allocations (open it in the firewall).
    #[arg(long, env = "WEBCALL_TURN_RELAY_PORTS", default_value = "49152-65535", value_parser = parse_ports)]
    turn_relay_ports: PortRange,

    /// Comma-separated transports of the built-in server clients are
    /// given: udp, tcp, tls; or stun for its STUN URL alone (no relay).
    /// Default: every one that listens.
    #[arg(long, env = "WEBCALL_TURN_TRANSPORTS", value_delimiter = ',')]
    turn_transports: Option<Vec<TurnTransport>>,

    /// Address range the relay may reach although it is on the deny list
    /// (loopback, private, link-local, ...); repeatable or comma-separated.
    /// For tests and private deployments.
    #[arg(long, env = "WEBCALL_TURN_ALLOW_PEER", value_delimiter = ',')]
    turn_allow_peer: Vec<IpNet>,

    /// Secret TURN credentials are minted with (at least 16 characters);
    /// share it with an external coturn (static-auth-secret). Default: a
    /// random secret made at the first start and kept in --data-dir
    /// (turn-secret), so credentials outlive a restart.
    #[arg(long, env = "WEBCALL_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,

    /// How long a participant's TURN credential works after joining.
    #[arg(long, env = "WEBCALL_TURN_CREDENTIAL_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    turn_credential_ttl: Duration,

    /// External TURN URL (turn: or turns:) of a server sharing
    /// --turn-secret, handed out with the same credentials; repeatable.
    #[arg(long, env = "WEBCALL_TURN_EXTERNAL", value_delimiter = ',')]
    turn_external: Vec<String>,

    /// Relay allocations open at once on the built-in TURN server.
    #[arg(long, env = "WEBCALL_TURN_MAX_ALLOCATIONS", default_value_t = 1000)]
    turn_max_allocations: usize,

    /// Serve Prometheus metrics at http://ADDR/metrics, e.g.
    /// 127.0.0.1:9100: a second listener, plain HTTP, with nothing else on
    /// it (the public port has no /metrics). Keep it on loopback or a
    /// private network. Default: no metrics.
    #[arg(long, env = "WEBCALL_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,

    /// Where rooms live: `memory` (this process only; a restart forgets
    /// them) or a Redis URL, redis://HOST:PORT/DB, shared by every
    /// instance behind the same link: rooms survive restarts, instances
    /// relay signaling to each other, and a shutdown asks clients to
    /// reconnect to another instance.
    #[arg(
        long,
        env = "WEBCALL_REDIS_URL",
        value_name = "memory|URL",
        default_value = "memory"
    )]
    store: String,

    /// Prefix of every Redis key and channel, for several deployments on
    /// one Redis.
    #[arg(long, env = "WEBCALL_REDIS_PREFIX", default_value = webcall_server::config::DEFAULT_REDIS_PREFIX)]
    redis_prefix: String,
}

/// An inclusive UDP port range.
#[derive(Debug, Clone, Copy)]
struct PortRange(u16, u16);

fn parse_ports(s: &str) -> Result<PortRange, String> {
    let (low, high) = s
        .split_once('-')
        .ok_or_else(|| "expected LOW-HIGH, e.g. 49152-65535".to_owned())?;
    let low: u16 = low.trim().parse().map_err(|e| format!("{low}: {e}"))?;
    let high: u16 = high.trim().parse().map_err(|e| format!("{high}: {e}"))?;
    if low == 0 || high < low {
        return Err(format!("{s} is not a port range such as 49152-65535"));
    }
    Ok(PortRange(low, high))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Policy {
    All,
    Relay,
}

/// The parsed `--ice-servers` value (a newtype so clap treats it as one value).
#[derive(Debug, Clone)]
struct IceServers(Vec<IceServer>);

impl std::fmt::Display for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(&self.0).map_err(|_| std::fmt::Error)?)
    }
}

fn parse_ice(s: &str) -> Result<IceServers, String> {
    serde_json::from_str(s)
        .map(IceServers)
        .map_err(|e| format!("expected a JSON array of {{\"urls\": ..., \"username\"?, \"credential\"?}} objects: {e}"))
}

fn turn_config(flags: &Flags) -> anyhow::Result<Option<TurnConfig>> {
    if !flags.turn {
        return Ok(None);
    }
    let secret = match flags.turn_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => TurnSecret::new(secret)?,
        None => TurnSecret::load_or_create(
            &flags
                .data_dir
                .clone()
                .unwrap_or_else(webcall_server::config::default_data_dir)
                .join("turn-secret"),
        )?,
    };
    let mut turn = TurnConfig::new(secret);
    turn.listen = flags.turn_listen;
    turn.tls_listen = flags.turn_tls_listen;
    turn.tls = match (&flags.turn_tls_cert, &flags.turn_tls_key) {
        (Some(cert), Some(key)) => Some(TurnTls::Files(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (None, None) => None,
        _ => anyhow::bail!("--turn-tls-cert and --turn-tls-key go together"),
    };
    if flags.turn_tls_on_https {
        // The port clients reach HTTPS on: the public URL's, else ours.
        let public_port = flags
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.port_or_known_default());
        turn.tls_on_https_port = Some(public_port.unwrap_or(flags.listen.port()));
    }
    turn.public_ip = flags.turn_public_ip;
    turn.relay_ports = (flags.turn_relay_ports.0, flags.turn_relay_ports.1);
    turn.transports = flags.turn_transports.clone();
    turn.allow_peers = flags.turn_allow_peer.clone();
    turn.credential_ttl = flags.turn_credential_ttl;
    turn.external = flags
        .turn_external
        .iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    turn.max_allocations = flags.turn_max_allocations;
    Ok(Some(turn))
}

fn config(flags: Flags) -> anyhow::Result<Config> {
    let defaults = Config::default();
    let turn = turn_config(&flags)?;
    // With the built-in TURN server, no third-party STUN server by default.
    let ice_servers = match flags.ice_servers {
        Some(servers) => servers.0,
        None if turn.is_some() => Vec::new(),
        None => vec![IceServer::new(DEFAULT_STUN)],
    };
    Ok(Config {
        listen: flags.listen,
        public_url: flags.public_url.filter(|u| !u.is_empty()),
        ice_servers,
        turn,
        ice_transport_policy: match flags.ice_transport_policy {
            Policy::All => IceTransportPolicy::All,
            Policy::Relay => IceTransportPolicy::Relay,
        },
        room: RoomConfig {
            ttl: flags.room_ttl,
            unused_ttl: flags.unused_room_ttl,
            seat_grace: flags.seat_grace,
            leave_grace: flags.leave_grace,
            max_rooms: flags.max_rooms,
            rooms_per_client: flags.rooms_per_client,
            rooms_per_network: flags.rooms_per_network,
            ..RoomConfig::default()
        },
        create_rate_per_minute: flags.create_rate,
        client_ipv6_prefix: flags.client_ipv6_prefix,
        max_connections_per_client: flags.max_connections_per_client,
        request_timeout: flags.request_timeout,
        shutdown_timeout: flags.shutdown_timeout,
        allowed_hosts: flags
            .allowed_hosts
            .into_iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
        allowed_origins: flags.allowed_origins.map(|list| {
            list.into_iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        }),
        trusted_proxies: flags.trusted_proxies,
        max_connections: flags.max_connections,
        tls: match (flags.tls_cert, flags.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
            _ if flags.tls_self_signed => Some(TlsSource::SelfSigned),
            _ => {
                let domains: Vec<String> = flags
                    .acme_domain
                    .into_iter()
                    .map(|d| d.trim().to_ascii_lowercase())
                    .filter(|d| !d.is_empty())
                    .collect();
                (!domains.is_empty()).then(|| {
                    TlsSource::Acme(AcmeSettings {
                        domains,
                        email: flags.acme_email.filter(|e| !e.is_empty()),
                        directory: flags.acme_directory,
                        directory_ca: flags.acme_directory_ca,
                    })
                })
            }
        },
        data_dir: flags.data_dir,
        metrics_listen: flags.metrics_listen,
        redis_url: (flags.store != "memory").then_some(flags.store),
        redis_prefix: flags.redis_prefix,
        ..defaults
    })
}

/// The https:// URLs other devices on the network reach the server by:
/// each non-loopback address (IPv4 first) with the port, or the listening
/// address itself when it is not a wildcard.
fn lan_urls(addr: SocketAddr) -> Vec<String> {
    let port = if addr.port() == 443 {
        String::new()
    } else {
        format!(":{}", addr.port())
    };
    let mut ips: Vec<IpAddr> = if addr.ip().is_unspecified() {
        if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.ip())
            .filter(|ip| !ip.is_loopback() && !is_link_local(ip))
            .filter(|ip| addr.is_ipv6() || ip.is_ipv4())
            .collect()
    } else {
        vec![addr.ip()]
    };
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    ips.into_iter()
        .map(|ip| match ip {
            IpAddr::V6(v6) => format!("https://[{v6}]{port}"),
            v4 => format!("https://{v4}{port}"),
        })
        .collect()
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// What a person starting the server needs to reach it over HTTPS: the
/// addresses, the certificate's fingerprint (to compare with what a
/// phone's browser shows) and a QR code of the first LAN address.
fn print_https_start(addr: SocketAddr, tls: &Tls, config: &Config) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Some(TlsSource::Acme(acme)) = &config.tls {
        let port = if addr.port() == 443 {
            String::new()
        } else {
            format!(":{}", addr.port())
        };
        for domain in &acme.domains {
            let _ = writeln!(out, "  https://{domain}{port}");
        }
        let _ = writeln!(
            out,
            "certificates from {} (kept in {})",
            acme.directory,
            config.resolved_data_dir().display()
        );
        return;
    }
    let urls = lan_urls(addr);
    for url in &urls {
        let _ = writeln!(out, "  {url}");
    }
    if let Some(print) = tls.fingerprint() {
        let _ = writeln!(out, "certificate SHA-256 fingerprint: {print}");
    }
    if matches!(config.tls, Some(TlsSource::SelfSigned)) {
        let _ = writeln!(
            out,
            "the certificate is self-signed: browsers warn once; compare the fingerprint, then continue"
        );
        if let Some(code) = urls
            .first()
            .and_then(|url| qrcode::QrCode::new(url.as_bytes()).ok())
        {
            let text = code
                .render::<qrcode::render::unicode::Dense1x2>()
                .dark_color(qrcode::render::unicode::Dense1x2::Light)
                .light_color(qrcode::render::unicode::Dense1x2::Dark)
                .quiet_zone(true)
                .build();
            let _ = writeln!(out, "{text}");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The TURN crate logs each unpermitted packet at info:
                // anyone can send those to a relay port.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,turn=warn")),
        )
        .init();
    let config = config(Flags::parse())?;
    config.validate()?;
    if let Some(limit) = webcall_server::raise_open_file_limit() {
        tracing::info!(open_file_limit = limit, "open files");
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another server using that port?",
                config.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let shown = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    let tls = match &config.tls {
        Some(source) => {
            let dir = config.resolved_data_dir();
            let tls = Tls::start(source, &dir).await.with_context(|| {
                format!("cannot set up HTTPS (data directory {})", dir.display())
            })?;
            Some(tls)
        }
        None => None,
    };
    tracing::info!(%addr, "listening");
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("webcall-server listening on {scheme}://{shown}");
    if let Some(tls) = &tls {
        print_https_start(addr, tls, &config);
    }
    if let Some(url) = &config.public_url {
        println!("room links start with {}", url.trim_end_matches('/'));
    }
    webcall_server::run_with_tls(listener, config, tls, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_fill_the_config() {
        let flags = Flags::try_parse_from([
            "webcall-server",
            "--listen",
            "127.0.0.1:9000",
            "--public-url",
            "https://call.example.org",
            "--ice-servers",
            r#"[{"urls":"turn:turn.example.org","username":"u","credential":"p"}]"#,
            "--ice-transport-policy",
            "relay",
            "--room-ttl",
            "12h",
            "--max-rooms",
            "50",
            "--create-rate",
            "0",
            "--max-connections",
            "7",
            "--allowed-origins",
            "https://a.example.org, https://b.example.org",
            "--trusted-proxies",
            "10.0.0.0/8,127.0.0.1",
            "--unused-room-ttl",
            "2h",
            "--rooms-per-client",
            "5",
            "--rooms-per-network",
            "0",
            "--client-ipv6-prefix",
            "56",
            "--max-connections-per-client",
            "9",
            "--request-timeout",
            "3s",
            "--shutdown-timeout",
            "4s",
            "--allowed-hosts",
            "call.example.org,alias.example.org:8443",
            "--seat-grace",
            "30s",
            "--leave-grace",
            "1500ms",
            "--acme-domain",
            "call.example.org",
            "--acme-domain",
            "Alias.example.org",
            "--acme-email",
            "ops@example.org",
            "--acme-directory",
            "https://127.0.0.1:14000/dir",
            "--acme-directory-ca",
            "/etc/pebble/ca.pem",
            "--data-dir",
            "/srv/webcall",
            "--metrics-listen",
            "127.0.0.1:9100",
        ])
        .unwrap();
        let c = config(flags).unwrap();
        c.validate().unwrap();
        assert_eq!(c.listen, "127.0.0.1:9000".parse::<SocketAddr>().unwrap());
        assert_eq!(
            c.ice_servers[0].urls,
            vec!["turn:turn.example.org".to_owned()]
        );
        assert_eq!(c.ice_servers[0].credential.as_deref(), Some("p"));
        assert_eq!(c.ice_transport_policy, IceTransportPolicy::Relay);
        assert_eq!(c.room.ttl, Duration::from_secs(12 * 3600));
        assert_eq!(
            (
                c.room.max_rooms,
                c.create_rate_per_minute,
                c.max_connections
            ),
            (50, 0, 7)
        );
        assert_eq!(
            c.allowed_origins,
            Some(vec![
                "https://a.example.org".to_owned(),
                "https://b.example.org".to_owned()
            ])
        );
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.room.unused_ttl, Duration::from_secs(2 * 3600));
        assert_eq!(
            (c.room.seat_grace, c.room.leave_grace),
            (Duration::from_secs(30), Duration::from_millis(1500))
        );
        assert_eq!((c.room.rooms_per_client, c.room.rooms_per_network), (5, 0));
        assert_eq!(
            (c.client_ipv6_prefix, c.max_connections_per_client),
            (56, 9)
        );
        assert_eq!(
            (c.request_timeout, c.shutdown_timeout),
            (Duration::from_secs(3), Duration::from_secs(4))
        );
        assert_eq!(
            c.allowed_hosts,
            vec![
                "call.example.org".to_owned(),
                "alias.example.org:8443".to_owned()
            ]
        );
        assert_eq!(
            c.tls,
            Some(TlsSource::Acme(AcmeSettings {
                domains: vec!["call.example.org".into(), "alias.example.org".into()],
                email: Some("ops@example.org".into()),
                directory: "https://127.0.0.1:14000/dir".into(),
                directory_ca: Some("/etc/pebble/ca.pem".into()),
            }))
        );
        assert_eq!(c.resolved_data_dir(), PathBuf::from("/srv/webcall"));
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
    }

    #[test]
    fn tls_flags_choose_one_certificate_source() {
        let parse = |args: &[&str]| {
            Flags::try_parse_from(std::iter::once("webcall-server").chain(args.iter().copied()))
        };
        let files = config(parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap()).unwrap();
        assert_eq!(
            files.tls,
            Some(TlsSource::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        let own = config(parse(&["--tls-self-signed", "--data-dir", "/tmp/w"]).unwrap()).unwrap();
        assert_eq!(own.tls, Some(TlsSource::SelfSigned));
        let acme =
            config(parse(&["--acme-domain", "a.example.org,b.example.org"]).unwrap()).unwrap();
        match acme.tls {
            Some(TlsSource::Acme(a)) => {
                assert_eq!(a.domains, vec!["a.example.org", "b.example.org"]);
                assert_eq!(a.directory, webcall_server::tls::LETS_ENCRYPT);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(config(parse(&[]).unwrap()).unwrap().tls, None);
        for bad in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--tls-self-signed", "--acme-domain", "a.example.org"],
            &[
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--tls-self-signed",
            ],
            &["--acme-email", "ops@example.org"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let bad_domain =
            config(parse(&["--acme-domain", "call.example.org:443"]).unwrap()).unwrap();
        assert!(bad_domain.validate().is_err());
    }

    /// Every flag's long name and environment variable (help and version
    /// have none).
    fn flag_envs() -> Vec<(String, Option<String>)> {
        use clap::CommandFactory;
        Flags::command()
            .get_arguments()
            .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
            .map(|a| {
                let long = a
                    .get_long()
                    .unwrap_or_else(|| panic!("{} has no --name", a.get_id()));
                let env = a.get_env().and_then(|e| e.to_str()).map(str::to_owned);
                (long.to_owned(), env)
            })
            .collect()
    }

    #[test]
    fn every_flag_has_an_environment_variable_listed_in_the_readme() {
        let readme = include_str!("../../README.md");
        let flags = flag_envs();
        assert!(flags.len() > 30, "the flags were found: {flags:?}");
        let mut seen = std::collections::HashSet::new();
        for (flag, env) in flags {
            let env = env.unwrap_or_else(|| panic!("--{flag} has no environment variable"));
            assert!(seen.insert(env.clone()), "{env} is used twice");
            assert!(
                env.starts_with("WEBCALL_") || env == "PUBLIC_BASE_URL",
                "{env}: environment variables start with WEBCALL_"
            );
            assert!(
                readme.lines().any(|row| row.starts_with("| `--")
                    && row.contains(&format!("`--{flag}`"))
                    && row.contains(&format!("`{env}`"))),
                "README's flag table lacks a row naming --{flag} and {env}"
            );
        }
    }

    /// The `environment:` of one service in compose.yaml, as (name, value).
    fn compose_environment(compose: &str, service: &str) -> Vec<(String, String)> {
        let mut lines = compose
            .lines()
            .skip_while(|l| *l != format!("  {service}:"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("   ") || l.starts_with("  #"))
            .skip_while(|l| l.trim() != "environment:")
            .skip(1);
        let mut env = Vec::new();
        for line in lines.by_ref() {
            if line.trim_start().starts_with('#') {
                continue;
            }
            if !line.starts_with("      ") {
                break;
            }
            let (name, value) = line.trim().split_once(": ").expect("NAME: value");
            env.push((name.to_owned(), value.to_owned()));
        }
        env
    }

    #[test]
    fn compose_gives_the_server_known_variables_and_the_coturn_profile_its_secret() {
        let compose = include_str!("../../compose.yaml");
        let known: Vec<String> = flag_envs().into_iter().filter_map(|(_, e)| e).collect();
        let webcall = compose_environment(compose, "webcall");
        assert!(!webcall.is_empty(), "compose.yaml has a webcall service");
        for (name, _) in &webcall {
            assert!(
                known.contains(name),
                "compose.yaml sets {name}, which no flag reads"
            );
        }
        // The coturn profile shares webcall's secret and is handed out as
        // an external URL: webcall must be given both, empty when unset.
        let coturn = compose
            .split("\n  coturn:")
            .nth(1)
            .expect("a coturn service");
        assert!(coturn.contains("${WEBCALL_TURN_SECRET"));
        for name in ["WEBCALL_TURN_SECRET", "WEBCALL_TURN_EXTERNAL"] {
            let value = webcall
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str());
            assert_eq!(
                value,
                Some(format!("${{{name}:-}}").as_str()),
                "compose.yaml passes {name} to webcall"
            );
        }
    }

    #[test]
    fn lan_urls_are_https_and_skip_loopback() {
        let urls = lan_urls("0.0.0.0:8443".parse().unwrap());
        assert!(
            urls.iter()
                .all(|u| u.starts_with("https://") && u.ends_with(":8443")),
            "{urls:?}"
        );
        assert!(!urls.iter().any(|u| u.contains("127.0.0.1")), "{urls:?}");
        assert_eq!(
            lan_urls("192.0.2.5:443".parse().unwrap()),
            vec!["https://192.0.2.5".to_owned()]
        );
    }

    #[test]
    fn turn_over_tls_on_the_https_port_takes_the_public_port() {
        let parse = |args: &[&str]| {
            let mut all = vec![
                "webcall-server",
                "--turn",
                "--turn-secret",
                "a shared secret of length",
            ];
            all.extend_from_slice(args);
            config(Flags::try_parse_from(all).unwrap()).unwrap()
        };
        let https = ["--tls-cert", "/c.pem", "--tls-key", "/k.pem"];
        let c = parse(
            &[
                &[
                    "--turn-tls-on-https",
                    "--public-url",
                    "https://call.example.org",
                ],
                &https[..],
            ]
            .concat(),
        );
        assert_eq!(c.turn.as_ref().unwrap().tls_on_https_port, Some(443));
        c.validate().unwrap();
        let c = parse(
            &[
                &["--turn-tls-on-https", "--listen", "0.0.0.0:8443"],
                &https[..],
            ]
            .concat(),
        );
        assert_eq!(c.turn.as_ref().unwrap().tls_on_https_port, Some(8443));
        let c = parse(&[]);
        assert_eq!(c.turn.as_ref().unwrap().tls_on_https_port, None);
        let err = parse(&["--turn-tls-on-https"]).validate().unwrap_err();
        assert!(err.to_string().contains("needs HTTPS"), "{err}");
    }

    #[test]
    fn turn_flags_fill_the_turn_config() {
        let flags = Flags::try_parse_from([
            "webcall-server",
            "--turn",
            "--turn-listen",
            "127.0.0.1:3479",
            "--turn-public-ip",
            "203.0.113.9",
            "--turn-relay-ports",
            "40000-40100",
            "--turn-transports",
            "udp,tcp",
            "--turn-allow-peer",
            "127.0.0.0/8",
            "--turn-allow-peer",
            "10.0.0.0/8,fd00::/8",
            "--turn-secret",
            "a shared secret of length",
            "--turn-credential-ttl",
            "2h",
            "--turn-external",
            "turns:turn.example.org:5349?transport=tcp",
            "--turn-max-allocations",
            "50",
        ])
        .unwrap();
        let c = config(flags).unwrap();
        c.validate().unwrap();
        assert!(c.ice_servers.is_empty(), "no third-party STUN with --turn");
        let t = c.turn.unwrap();
        assert_eq!(t.listen, "127.0.0.1:3479".parse::<SocketAddr>().unwrap());
        assert_eq!(t.public_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(t.relay_ports, (40000, 40100));
        assert_eq!(
            t.transports,
            Some(vec![TurnTransport::Udp, TurnTransport::Tcp])
        );
        assert_eq!(t.allow_peers.len(), 3);
        assert_eq!(t.secret.expose(), "a shared secret of length");
        assert_eq!(t.credential_ttl, Duration::from_secs(2 * 3600));
        assert_eq!(
            t.external,
            vec!["turns:turn.example.org:5349?transport=tcp".to_owned()]
        );
        assert_eq!(t.max_allocations, 50);

        // Defaults: a random secret kept in the data directory, all
        // transports, the usual port; an explicit --ice-servers is kept
        // beside the built-in server.
        let data = std::env::temp_dir().join(format!("webcall-flags-{}", std::process::id()));
        let data = data.to_str().unwrap();
        let c = config(
            Flags::try_parse_from([
                "webcall-server",
                "--turn",
                "--ice-servers",
                "[]",
                "--data-dir",
                data,
            ])
            .unwrap(),
        )
        .unwrap();
        let t = c.turn.unwrap();
        assert_eq!(t.listen.port(), 3478);
        assert_eq!(t.transports, None);
        assert!(t.secret.expose().len() >= 32);
        assert_eq!(
            std::fs::read_to_string(std::path::Path::new(data).join("turn-secret")).unwrap(),
            t.secret.expose()
        );
        assert_eq!(t.credential_ttl, Duration::from_secs(24 * 3600));
        let c = config(
            Flags::try_parse_from([
                "webcall-server",
                "--turn",
                "--ice-servers",
                r#"[{"urls":"stun:stun.example.org"}]"#,
                "--data-dir",
                data,
            ])
            .unwrap(),
        )
        .unwrap();
        assert_eq!(c.ice_servers.len(), 1);
        for bad in [
            &["--turn", "--turn-secret", "short"][..],
            &["--turn", "--turn-tls-cert", "c.pem"],
        ] {
            let args = std::iter::once("webcall-server")
                .chain(bad.iter().copied())
                .chain(["--data-dir", data]);
            assert!(
                config(Flags::try_parse_from(args).unwrap()).is_err(),
                "{bad:?}"
            );
        }
        let _ = std::fs::remove_dir_all(data);
    }

    #[test]
    fn defaults_and_bad_values() {
        let c = config(Flags::try_parse_from(["webcall-server"]).unwrap()).unwrap();
        assert!(c.turn.is_none());
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.redis_url, None, "rooms in memory by default");
        assert_eq!(c.room.ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(c.ice_servers, vec![IceServer::new(DEFAULT_STUN)]);
        assert_eq!(
            (c.room.seat_grace, c.room.leave_grace),
            (Duration::from_secs(20), Duration::from_secs(3))
        );
        for bad in [
            &["--ice-servers", "stun:x"][..],
            &["--room-ttl", "forever"],
            &["--ice-transport-policy", "some"],
            &["--trusted-proxies", "proxy.example.org"],
            &["--listen", "8000"],
            &["--client-ipv6-prefix", "129"],
            &["--unused-room-ttl", "soon"],
            &["--seat-grace", "a while"],
            &["--turn-relay-ports", "5000"],
            &["--turn-relay-ports", "6000-5000"],
            &["--turn-transports", "sctp"],
            &["--turn-allow-peer", "loopback"],
            &["--turn-public-ip", "turn.example.org"],
            &["--metrics-listen", "9100"],
        ] {
            let args = std::iter::once("webcall-server").chain(bad.iter().copied());
            assert!(Flags::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_store_flag_takes_memory_or_a_redis_url() {
        let parse = |args: &[&str]| {
            config(
                Flags::try_parse_from(
                    std::iter::once("webcall-server").chain(args.iter().copied()),
                )
                .unwrap(),
            )
            .unwrap()
        };
        let c = parse(&[
            "--store",
            "redis://127.0.0.1:6379/2",
            "--redis-prefix",
            "call:",
        ]);
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379/2"));
        assert_eq!(c.redis_prefix, "call:");
        c.validate().unwrap();
        assert_eq!(parse(&["--store", "memory"]).redis_url, None);
        for bad in ["postgres://db/1", "127.0.0.1:6379", "redis://"] {
            let c = parse(&["--store", bad]);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("store URL"), "{bad}: {e}");
        }
    }
}
