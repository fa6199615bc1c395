//! The `webcall-server` binary: parses flags (each with an environment
//! fallback), sets up logging, and runs the server until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use webcall_core::protocol::{IceServer, IceTransportPolicy};
use webcall_core::room::RoomConfig;
use webcall_server::Config;
use webcall_server::config::{DEFAULT_STUN, IpNet};

/// Self-hosted one-to-one video calls by link: serves the room API, the
/// signaling WebSocket and the browser client on one port.
#[derive(Debug, Parser)]
#[command(name = "webcall-server", version)]
struct Flags {
    /// Address and port to listen on.
    #[arg(long, env = "WEBCALL_LISTEN", default_value = "0.0.0.0:8000")]
    listen: SocketAddr,

    /// Base URL of room links, as users reach the server (e.g.
    /// https://call.example.org). Default: taken from each request's Host.
    #[arg(long, env = "PUBLIC_BASE_URL")]
    public_url: Option<String>,

    /// STUN/TURN servers handed to clients: a JSON array of RTCIceServer
    /// objects, e.g. '[{"urls":"turn:turn.example.org","username":"u","credential":"p"}]'.
    #[arg(long, env = "WEBCALL_ICE_SERVERS", default_value_t = default_ice(), value_parser = parse_ice)]
    ice_servers: IceServers,

    /// Which ICE candidates clients may use: all, or relay (TURN only;
    /// hides participants' addresses from each other).
    #[arg(long, env = "WEBCALL_ICE_TRANSPORT_POLICY", value_enum, default_value_t = Policy::All)]
    ice_transport_policy: Policy,

    /// How long a room's link works after creation (e.g. 7d, 12h, 30m).
    #[arg(long, env = "WEBCALL_ROOM_TTL", default_value = "7d", value_parser = humantime::parse_duration)]
    room_ttl: Duration,

    /// How many rooms may exist at once.
    #[arg(long, env = "WEBCALL_MAX_ROOMS", default_value_t = RoomConfig::default().max_rooms)]
    max_rooms: usize,

    /// Rooms one client address may create per minute (0 = no limit).
    #[arg(long, env = "WEBCALL_CREATE_RATE", default_value_t = Config::default().create_rate_per_minute)]
    create_rate: u32,

    /// How many signaling WebSocket connections may be open at once.
    #[arg(long, env = "WEBCALL_MAX_CONNECTIONS", default_value_t = Config::default().max_connections)]
    max_connections: usize,

    /// Comma-separated origins whose pages may open signaling connections
    /// (e.g. https://call.example.org). Default: the request's own host.
    #[arg(long, env = "WEBCALL_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Option<Vec<String>>,

    /// Comma-separated addresses or ranges of reverse proxies whose
    /// X-Forwarded-For and X-Forwarded-Proto headers are believed.
    #[arg(long, env = "WEBCALL_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<IpNet>,
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

fn default_ice() -> IceServers {
    IceServers(vec![IceServer::new(DEFAULT_STUN)])
}

fn parse_ice(s: &str) -> Result<IceServers, String> {
    serde_json::from_str(s)
        .map(IceServers)
        .map_err(|e| format!("expected a JSON array of {{\"urls\": ..., \"username\"?, \"credential\"?}} objects: {e}"))
}

fn config(flags: Flags) -> Config {
    let defaults = Config::default();
    Config {
        listen: flags.listen,
        public_url: flags.public_url.filter(|u| !u.is_empty()),
        ice_servers: flags.ice_servers.0,
        ice_transport_policy: match flags.ice_transport_policy {
            Policy::All => IceTransportPolicy::All,
            Policy::Relay => IceTransportPolicy::Relay,
        },
        room: RoomConfig {
            ttl: flags.room_ttl,
            max_rooms: flags.max_rooms,
            ..RoomConfig::default()
        },
        create_rate_per_minute: flags.create_rate,
        allowed_origins: flags.allowed_origins.map(|list| {
            list.into_iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        }),
        trusted_proxies: flags.trusted_proxies,
        max_connections: flags.max_connections,
        ..defaults
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = config(Flags::parse());
    config.validate()?;

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
    tracing::info!(%addr, "listening");
    println!("webcall-server listening on http://{shown}");
    if let Some(url) = &config.public_url {
        println!("room links start with {}", url.trim_end_matches('/'));
    }
    webcall_server::run(listener, config, shutdown_signal()).await?;
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
        ])
        .unwrap();
        let c = config(flags);
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
    }

    #[test]
    fn defaults_and_bad_values() {
        let c = config(Flags::try_parse_from(["webcall-server"]).unwrap());
        assert_eq!(c.room.ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(c.ice_servers, vec![IceServer::new(DEFAULT_STUN)]);
        for bad in [
            &["--ice-servers", "stun:x"][..],
            &["--room-ttl", "forever"],
            &["--ice-transport-policy", "some"],
            &["--trusted-proxies", "proxy.example.org"],
            &["--listen", "8000"],
        ] {
            let args = std::iter::once("webcall-server").chain(bad.iter().copied());
            assert!(Flags::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
