//! Shared by the server tests: a real server on 127.0.0.1:0 started with
//! `webcall_server::run`, an HTTP client, and a WebSocket signaling client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webcall_core::protocol::{
    ClientMessage, CreatedRoom, ErrorCode, ErrorMessage, IceCandidate, Joined, PROTOCOL_VERSION,
    ServerMessage,
};
use webcall_core::token::ResumeToken;
use webcall_server::Config;

/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// A test configuration: no STUN off the machine, no per-client limits
/// (every test client is 127.0.0.1).
pub fn config() -> Config {
    Config {
        ice_servers: vec![webcall_core::protocol::IceServer::new(
            "stun:127.0.0.1:3478",
        )],
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

/// A server running on loopback; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), webcall_server::Error>>>,
}

impl Server {
    pub async fn start(config: Config) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(webcall_server::run(listener, config, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/ws/rooms/{token}", self.addr)
    }

    pub async fn create_room(&self) -> CreatedRoom {
        let response = http().post(self.url("/api/rooms")).send().await.unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// Asks the server to shut down and waits for `run` to return.
    pub async fn shutdown(mut self) -> Result<(), webcall_server::Error> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task.take().unwrap())
            .await
            .expect("server stops in time")
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

/// Polls `check` until it holds, for at most [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A signaling client over a real WebSocket.
pub struct Peer {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What came back instead of a server message.
#[derive(Debug)]
pub enum Ended {
    Closed,
    Error(String),
}

impl Peer {
    pub async fn connect(url: &str) -> Self {
        Self::connect_with(url, None)
            .await
            .expect("WebSocket connects")
    }

    pub async fn connect_with(url: &str, origin: Option<&str>) -> Result<Self, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        let (ws, _) = tokio::time::timeout(
            WAIT,
            // No Nagle delay: under paused time a frame the kernel holds
            // back looks like silence, and the clock jumps ahead.
            tokio_tungstenite::connect_async_with_config(request, None, true),
        )
        .await
        .expect("connects in time")?;
        Ok(Self { ws })
    }

    pub async fn send(&mut self, message: ClientMessage) {
        self.send_text(&message.encode()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn join(&mut self, resume: Option<ResumeToken>) -> Joined {
        self.send(ClientMessage::Join {
            version: PROTOCOL_VERSION,
            resume,
        })
        .await;
        match self.recv().await {
            ServerMessage::Joined(j) => j,
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// The next server message, or why there is none.
    pub async fn next(&mut self) -> Result<ServerMessage, Ended> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame arrives in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(ServerMessage::decode(text.as_str()).expect("server frames decode"));
                }
                Some(Ok(Message::Close(_))) | None => return Err(Ended::Closed),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => panic!("the server never sends binary frames"),
                Some(Err(e)) => return Err(Ended::Error(e.to_string())),
            }
        }
    }

    pub async fn recv(&mut self) -> ServerMessage {
        self.next().await.expect("a server message")
    }

    pub async fn recv_error(&mut self) -> ErrorMessage {
        match self.recv().await {
            ServerMessage::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Expects a fatal error with `code`, then the end of the connection.
    pub async fn expect_fatal(&mut self, code: ErrorCode) {
        let e = self.recv_error().await;
        assert_eq!(e.code, code, "{e:?}");
        assert!(e.fatal, "{e:?}");
        self.expect_closed().await;
    }

    /// Expects the connection to end with no further message.
    pub async fn expect_closed(&mut self) {
        match self.next().await {
            Err(_) => {}
            Ok(m) => panic!("expected the connection to close, got {m:?}"),
        }
    }

    /// Expects nothing to arrive for a short while (a negative check used
    /// only after a positive one proved delivery works).
    pub async fn expect_quiet(&mut self, for_: Duration) {
        let deadline = tokio::time::Instant::now() + for_;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected nothing, got {other:?}"),
            }
        }
    }
}

pub fn candidate(n: u16) -> ClientMessage {
    ClientMessage::Candidate {
        candidate: Some(IceCandidate {
            candidate: format!(
                "candidate:{n} 1 udp 2122260223 127.0.0.1 {} typ host",
                50000 + n
            ),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }),
    }
}

/// Two joined peers in a fresh room: (first, second).
pub async fn pair(server: &Server) -> (Peer, Peer, String) {
    let (a, b, token, _) = pair_joined(server).await;
    (a, b, token)
}

/// [`pair`], with what the second participant was told on joining (its id
/// and resume secret).
pub async fn pair_joined(server: &Server) -> (Peer, Peer, String, Joined) {
    let room = server.create_room().await;
    let token = room.token.to_string();
    let mut a = Peer::connect(&server.ws_url(&token)).await;
    a.join(None).await;
    let mut b = Peer::connect(&server.ws_url(&token)).await;
    let joined = b.join(None).await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::PeerJoined { resumed: false, .. }
    ));
    (a, b, token, joined)
}
