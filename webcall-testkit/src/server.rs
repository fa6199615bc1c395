//! [`TestServer`]: the real webcall server on a free loopback port, for the
//! duration of one test.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use webcall_core::protocol::CreatedRoom;
use webcall_server::Config;
use webcall_server::turn::{TurnConfig, TurnSecret};

use crate::http;

/// A webcall server listening on `127.0.0.1:<free port>`, stopped on drop.
/// With [`Config::tls`] set it speaks HTTPS, and its URLs and requests
/// follow (requests trust whatever certificate it shows).
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<webcall_server::Result<()>>>,
}

/// How long [`TestServer::shutdown`] may take.
const STOP_BOUND: Duration = Duration::from_secs(60);

impl TestServer {
    /// The configuration tests use: no ICE servers (nothing leaves the
    /// machine) and no per-client limits (every test client is 127.0.0.1).
    pub fn test_config() -> Config {
        Config {
            ice_servers: vec![],
            create_rate_per_minute: 0,
            max_connections_per_client: 0,
            room: webcall_core::room::RoomConfig {
                rooms_per_client: 0,
                rooms_per_network: 0,
                ..Default::default()
            },
            ..Config::default()
        }
    }

    /// A built-in TURN server for tests: UDP and TCP on a free port of
    /// 127.0.0.1, relay ports on 127.0.0.1, a fixed secret. With
    /// `allow_loopback`, the relay may reach 127.0.0.0/8 (the peers of a
    /// test); without it, loopback peers are refused as on a real server.
    pub fn turn_config(allow_loopback: bool) -> TurnConfig {
        let mut turn = TurnConfig::new(
            TurnSecret::new("webcall test secret, not for production")
                .expect("a valid test secret"),
        );
        turn.listen = "127.0.0.1:0".parse().expect("an address");
        turn.relay_ports = (41000, 44999);
        if allow_loopback {
            turn.allow_peers = vec!["127.0.0.0/8".parse().expect("a range")];
        }
        turn
    }

    /// Starts a server with [`TestServer::test_config`].
    pub async fn start() -> Result<Self> {
        Self::start_with(Self::test_config()).await
    }

    /// Starts a server with `config` (its `listen` is replaced by the bound
    /// loopback address). With TLS it waits until `/healthz` answers (the
    /// certificate may come first); plain HTTP is answered at once, as the
    /// port is listening before this returns.
    pub async fn start_with(config: Config) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a loopback port for the test server")?;
        Self::serve(listener, config).await
    }

    /// Starts a server with `config` on `addr`, as an instance restarted
    /// on the address its clients know: waits (a bounded time) for the
    /// address to be free again.
    pub async fn start_at(addr: SocketAddr, config: Config) -> Result<Self> {
        let started = std::time::Instant::now();
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    return Err(e).with_context(|| format!("cannot bind {addr} again"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Self::serve(listener, config).await
    }

    async fn serve(listener: tokio::net::TcpListener, mut config: Config) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let addr = listener.local_addr()?;
        config.listen = addr;
        let tls = config.tls.is_some();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            let result = webcall_server::run(listener, config, shutdown).await;
            if let Err(err) = &result {
                eprintln!("test server on {addr} stopped with an error: {err}");
            }
            result
        });
        let server = Self {
            addr,
            tls,
            shutdown: Some(tx),
            task: Some(task),
        };
        if tls {
            // Generous: an HTTPS server may first obtain its certificate.
            crate::wait_until(
                "the test server answers /healthz",
                Duration::from_secs(60),
                || server.healthy(),
            )
            .await?;
        }
        Ok(server)
    }

    async fn healthy(&self) -> Result<bool> {
        Ok(self.request("GET", "/healthz", None).await?.status == 200)
    }

    /// Asks the server to stop and waits (a bounded time) for what
    /// `webcall_server::run` returned.
    pub async fn shutdown(mut self) -> webcall_server::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("a running server");
        tokio::time::timeout(STOP_BOUND, task)
            .await
            .expect("the test server stops in time")
            .expect("the test server task did not panic")
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), without a trailing
    /// slash.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// `path` on the server: `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// The room page for `token`: `http://127.0.0.1:PORT/r/{token}`.
    pub fn room_url(&self, token: &str) -> String {
        format!("{}/r/{token}", self.base_url())
    }

    /// The signaling WebSocket for `token`: `ws://127.0.0.1:PORT/ws/rooms/{token}`
    /// (`wss://` with TLS).
    pub fn ws_url(&self, token: &str) -> String {
        format!(
            "{}://{}/ws/rooms/{token}",
            if self.tls { "wss" } else { "ws" },
            self.addr
        )
    }

    /// Sends one HTTP request to the server (see [`http::request`]; over
    /// TLS, [`http::request_tls`]).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<http::Response> {
        if self.tls {
            http::request_tls(self.addr, method, path, body).await
        } else {
            http::request(self.addr, method, path, body).await
        }
    }

    /// Creates a room with `POST /api/rooms`.
    pub async fn create_room(&self) -> Result<CreatedRoom> {
        let response = self.request("POST", "/api/rooms", None).await?;
        if response.status != 201 {
            bail!(
                "POST /api/rooms answered {} {}",
                response.status,
                response.text()
            );
        }
        serde_json::from_slice(&response.body).with_context(|| {
            format!(
                "POST /api/rooms answered an unexpected body: {}",
                response.text()
            )
        })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Open WebSockets could hold a graceful shutdown open; a test is over.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
