//! Shared by the server tests: their configuration, an HTTP client, and a
//! WebSocket signaling client. The server itself is the test kit's
//! [`TestServer`], and waiting is its [`webcall_testkit::wait_until`].

#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webcall_core::protocol::{
    ClientMessage, ErrorCode, ErrorMessage, IceCandidate, Joined, PROTOCOL_VERSION, ServerMessage,
};
use webcall_core::token::ResumeToken;
use webcall_server::Config;
use webcall_testkit::TestServer;

/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(30);

/// The test kit's configuration with one STUN server on loopback, so that
/// joins carry an ICE server to check.
pub fn config() -> Config {
    Config {
        ice_servers: vec![webcall_core::protocol::IceServer::new(
            "stun:127.0.0.1:3478",
        )],
        ..TestServer::test_config()
    }
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
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
pub async fn pair(server: &TestServer) -> (Peer, Peer, String) {
    let (a, b, token, _) = pair_joined(server).await;
    (a, b, token)
}

/// [`pair`], with what the second participant was told on joining (its id
/// and resume secret).
pub async fn pair_joined(server: &TestServer) -> (Peer, Peer, String, Joined) {
    let room = server.create_room().await.unwrap();
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
