//! [`SignalingRelay`]: a man in the middle of signaling, for tests of what
//! the verification code is for (PROTOCOL.md, "The verification code").
//!
//! The relay listens on its own loopback port in front of a real server.
//! A WebSocket that a client opens on it is answered by the relay itself,
//! which opens the same path on the server and forwards every message both
//! ways, passing the messages of one direction through a text transform
//! (such as [`rewrite_fingerprint`]). Any other connection (the page, its
//! scripts, the API) is forwarded byte for byte, so a browser can load the
//! room page from the relay and sign in through it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use webcall_testkit::{Direction, SignalingRelay, TestServer, rewrite_fingerprint};
//!
//! let server = TestServer::start().await?;
//! let room = server.create_room().await?;
//! // What the client behind the relay sends reaches the server with its
//! // DTLS fingerprint changed.
//! let relay = SignalingRelay::launch(server.addr(), Direction::ToServer, rewrite_fingerprint).await?;
//! let page = relay.room_url(&room.token.to_string()); // open this in a browser,
//! let ws = relay.ws_url(&room.token.to_string()); // or connect a native client here
//! # let _ = (page, ws);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// The longest HTTP request head the relay reads before deciding what a
/// connection is.
const MAX_HEAD: usize = 16 * 1024;

/// Which messages of a relayed WebSocket pass through the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client behind the relay to the server (its offers and answers).
    ToServer,
    /// From the server to the client behind the relay (the other side's).
    ToClient,
}

/// A text transform for relayed messages: takes a message, gives the text
/// to forward in its place.
pub type Transform = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// A loopback relay in front of a webcall server that rewrites signaling
/// messages of one [`Direction`]; see the module documentation. Dropped, it
/// stops accepting and ends every connection it carries.
pub struct SignalingRelay {
    addr: SocketAddr,
    websockets: Arc<AtomicUsize>,
    changed: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SignalingRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalingRelay")
            .field("addr", &self.addr)
            .field("websockets", &self.websockets())
            .field("changed", &self.changed())
            .finish()
    }
}

impl SignalingRelay {
    /// A relay on a free port of 127.0.0.1 in front of the plain-HTTP
    /// server at `upstream`, passing the text messages that travel in
    /// `direction` through `transform`.
    ///
    /// The relayed WebSocket is opened on the server without an `Origin`
    /// header (as a native client opens it), so a page loaded from the
    /// relay's address is accepted.
    pub async fn launch(
        upstream: SocketAddr,
        direction: Direction,
        transform: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a loopback port for the signaling relay")?;
        let addr = listener.local_addr()?;
        let websockets = Arc::new(AtomicUsize::new(0));
        let changed = Arc::new(AtomicUsize::new(0));
        let transform: Transform = Arc::new(transform);
        let task = tokio::spawn({
            let (websockets, changed) = (websockets.clone(), changed.clone());
            async move {
                let mut connections = tokio::task::JoinSet::new();
                while let Ok((client, _)) = listener.accept().await {
                    let relayed = Relayed {
                        upstream,
                        direction,
                        transform: transform.clone(),
                        websockets: websockets.clone(),
                        changed: changed.clone(),
                    };
                    connections.spawn(async move {
                        if let Err(e) = relayed.serve(client).await {
                            eprintln!("signaling relay: a connection ended: {e:#}");
                        }
                    });
                    // Forget the finished ones; aborting the relay ends the rest.
                    while connections.try_join_next().is_some() {}
                }
            }
        });
        Ok(Self {
            addr,
            websockets,
            changed,
            task,
        })
    }

    /// The relay's own address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the server's pages, through the relay.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The room page for `token` through the relay: a browser that opens it
    /// signals through the relay.
    pub fn room_url(&self, token: &str) -> String {
        format!("{}/r/{token}", self.base_url())
    }

    /// The signaling WebSocket for `token` through the relay.
    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}/ws/rooms/{token}", self.addr)
    }

    /// How many WebSockets it has relayed so far.
    pub fn websockets(&self) -> usize {
        self.websockets.load(Ordering::SeqCst)
    }

    /// How many messages the transform has changed so far.
    pub fn changed(&self) -> usize {
        self.changed.load(Ordering::SeqCst)
    }
}

impl Drop for SignalingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What one relayed connection needs.
struct Relayed {
    upstream: SocketAddr,
    direction: Direction,
    transform: Transform,
    websockets: Arc<AtomicUsize>,
    changed: Arc<AtomicUsize>,
}

impl Relayed {
    async fn serve(self, mut client: TcpStream) -> Result<()> {
        client.set_nodelay(true)?;
        let head = read_head(&mut client).await?;
        if head.is_empty() {
            return Ok(()); // connected and closed without a request
        }
        if is_websocket_upgrade(&head) {
            self.relay_websocket(Prefixed::new(head, client)).await
        } else {
            let mut server = TcpStream::connect(self.upstream)
                .await
                .with_context(|| format!("cannot reach the server at {}", self.upstream))?;
            server.set_nodelay(true)?;
            server.write_all(&head).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
            Ok(())
        }
    }

    // The callback's error type is tungstenite's, whatever its size.
    #[allow(clippy::result_large_err)]
    async fn relay_websocket(self, client: Prefixed) -> Result<()> {
        let mut path = String::from("/");
        let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
            path = request.uri().to_string();
            Ok(response)
        };
        let client = tokio_tungstenite::accept_hdr_async(client, callback)
            .await
            .context("the client's WebSocket handshake failed")?;
        let url = format!("ws://{}{path}", self.upstream);
        let (server, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
            .await
            .with_context(|| format!("cannot open {url} on the server"))?;
        self.websockets.fetch_add(1, Ordering::SeqCst);

        let (mut client_tx, mut client_rx) = client.split();
        let (mut server_tx, mut server_rx) = server.split();
        let to_server = async {
            while let Some(message) = client_rx.next().await {
                let message = self.pass(message?, Direction::ToServer);
                let close = message.is_close();
                if let Some(message) = message.forwarded() {
                    server_tx.send(message).await?;
                }
                if close {
                    break;
                }
            }
            anyhow::Ok(())
        };
        let to_client = async {
            while let Some(message) = server_rx.next().await {
                let message = self.pass(message?, Direction::ToClient);
                let close = message.is_close();
                if let Some(message) = message.forwarded() {
                    client_tx.send(message).await?;
                }
                if close {
                    break;
                }
            }
            anyhow::Ok(())
        };
        // When either side ends, both are dropped: the other sees the close.
        tokio::select! {
            r = to_server => r,
            r = to_client => r,
        }
    }

    /// A message going `towards`, transformed when that is the relay's direction.
    fn pass(&self, message: Message, towards: Direction) -> Passed {
        match message {
            Message::Text(text) if towards == self.direction => {
                let out = (self.transform)(text.as_str());
                if out != text.as_str() {
                    self.changed.fetch_add(1, Ordering::SeqCst);
                }
                Passed(Message::text(out))
            }
            other => Passed(other),
        }
    }
}

/// A relayed message on its way.
struct Passed(Message);

impl Passed {
    fn is_close(&self) -> bool {
        self.0.is_close()
    }

    /// The message to send on, if any: each leg answers its own pings.
    fn forwarded(self) -> Option<Message> {
        match self.0 {
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
            other => Some(other),
        }
    }
}

/// Reads the connection's first bytes up to the end of the HTTP request
/// head (or the connection's end); they are replayed afterwards.
async fn read_head(client: &mut TcpStream) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            bail!("a request head longer than {MAX_HEAD} bytes");
        }
        let n = client.read(&mut buf).await?;
        if n == 0 {
            return Ok(head);
        }
        head.extend_from_slice(&buf[..n]);
    }
}

/// True when the request head asks for a WebSocket.
fn is_websocket_upgrade(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("upgrade")
                && value.trim().eq_ignore_ascii_case("websocket")
        })
    })
}

/// A stream that first yields bytes already read from it.
struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl Prefixed {
    fn new(prefix: Vec<u8>, inner: TcpStream) -> Self {
        Self {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = (self.prefix.len() - self.at).min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Rewrites the DTLS fingerprints of an `offer` or `answer` signaling
/// message (JSON with a string `sdp`), as a man in the middle who put his
/// own certificate in: every hex digit of every `a=fingerprint:` line
/// (the first, which the verification code reads, and any repeated per
/// media section) becomes the next one (`0`→`1`, …, `9`→`A`, …, `F`→`0`, in the case the line uses),
/// the same way each time, so one connection keeps one forged fingerprint.
/// The hash name is kept. Any other message comes back unchanged.
pub fn rewrite_fingerprint(message: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(message) else {
        return message.to_owned();
    };
    if !matches!(value["type"].as_str(), Some("offer" | "answer")) {
        return message.to_owned();
    }
    let Some(sdp) = value["sdp"].as_str() else {
        return message.to_owned();
    };
    if !sdp.contains("a=fingerprint:") {
        return message.to_owned();
    }
    let rewritten: String = sdp
        .split_inclusive('\n')
        .map(|line| match line.strip_prefix("a=fingerprint:") {
            Some(rest) => {
                let (hash, hex) = rest.split_once(' ').unwrap_or(("", rest));
                format!("a=fingerprint:{hash} {}", next_hex_digits(hex))
            }
            None => line.to_owned(),
        })
        .collect();
    value["sdp"] = serde_json::Value::String(rewritten);
    value.to_string()
}

/// Each hex digit of `text` replaced by the next one, in the case `text`
/// writes its letters in (upper case unless it has lower-case letters);
/// other characters kept.
fn next_hex_digits(text: &str) -> String {
    let lower = text.chars().any(|c| c.is_ascii_lowercase());
    text.chars()
        .map(|c| match c.to_digit(16) {
            Some(d) => {
                let next = std::char::from_digit((d + 1) % 16, 16).expect("a hex digit");
                if lower {
                    next
                } else {
                    next.to_ascii_uppercase()
                }
            }
            None => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER_SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n\
        a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
        a=fingerprint:sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n\
        a=setup:actpass\r\n";

    fn fingerprints(sdp: &str) -> Vec<&str> {
        sdp.lines()
            .filter_map(|l| l.strip_prefix("a=fingerprint:"))
            .collect()
    }

    #[test]
    fn offers_and_answers_get_another_fingerprint_in_every_line() {
        for kind in ["offer", "answer"] {
            let message = serde_json::json!({ "type": kind, "sdp": OFFER_SDP }).to_string();
            let out = rewrite_fingerprint(&message);
            let value: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(value["type"], kind);
            let sdp = value["sdp"].as_str().unwrap();
            let forged = fingerprints(sdp);
            assert_eq!(
                forged,
                vec![
                    "sha-256 7C:9C:01:76:60:89:F3:62:4C:BD:70:04:40:57:2C:46:ED:C9:60:75:2B:35:D3:54:01:B2:69:E1:B2:3D:2A:19";
                    2
                ]
            );
            // Everything else is as it was, line ends included.
            assert_eq!(sdp.len(), OFFER_SDP.len());
            assert_eq!(
                sdp.lines()
                    .filter(|l| !l.starts_with("a=fingerprint:"))
                    .collect::<Vec<_>>(),
                OFFER_SDP
                    .lines()
                    .filter(|l| !l.starts_with("a=fingerprint:"))
                    .collect::<Vec<_>>()
            );
            // The same each time.
            assert_eq!(rewrite_fingerprint(&message), out);
        }
    }

    #[test]
    fn other_messages_pass_unchanged() {
        for message in [
            r#"{"type":"candidate","candidate":null}"#,
            r#"{"type":"join","version":1}"#,
            r#"{"type":"offer","sdp":"v=0\r\n"}"#,
            r#"{"type":"offer"}"#,
            "not json",
        ] {
            assert_eq!(rewrite_fingerprint(message), message);
        }
    }

    #[test]
    fn upgrades_are_told_from_page_loads() {
        assert!(is_websocket_upgrade(
            b"GET /ws/rooms/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        ));
        assert!(is_websocket_upgrade(
            b"GET /ws HTTP/1.1\r\nupgrade:WebSocket\r\n\r\n"
        ));
        assert!(!is_websocket_upgrade(
            b"GET /r/x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"
        ));
    }

    type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

    /// The next text message, as JSON.
    async fn next_text(ws: &mut Ws) -> Result<serde_json::Value> {
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
                .await?
                .context("closed")??;
            if let Message::Text(t) = m {
                return Ok(serde_json::from_str(&t)?);
            }
        }
    }

    /// A real round trip: a message sent through the relay reaches a real
    /// server changed, and the answer comes back.
    #[tokio::test]
    async fn a_relayed_websocket_carries_both_ways_and_rewrites_one() -> Result<()> {
        let server = crate::TestServer::start().await?;
        let room = server.create_room().await?;
        let token = room.token.to_string();
        let relay =
            SignalingRelay::launch(server.addr(), Direction::ToServer, rewrite_fingerprint).await?;

        // The page itself loads through the relay.
        let page = crate::http::request(relay.addr(), "GET", &format!("/r/{token}"), None).await?;
        assert_eq!(page.status, 200);
        assert!(page.text().contains("/assets/"), "{}", page.text());

        let join = r#"{"type":"join","version":1}"#;
        let (mut behind, _) = tokio_tungstenite::connect_async(relay.ws_url(&token)).await?;
        behind.send(Message::text(join)).await?;
        let (mut direct, _) = tokio_tungstenite::connect_async(server.ws_url(&token)).await?;
        direct.send(Message::text(join)).await?;

        // Both joined; whoever came first hears of the other.
        let joined = next_text(&mut behind).await?;
        assert_eq!(joined["type"], "joined", "{joined}");
        assert_eq!(next_text(&mut direct).await?["type"], "joined");
        assert_eq!(next_text(&mut behind).await?["type"], "peer_joined");

        let offer = serde_json::json!({ "type": "offer", "sdp": OFFER_SDP }).to_string();
        behind.send(Message::text(offer.as_str())).await?;
        let got = next_text(&mut direct).await?;
        assert_eq!(got["type"], "offer");
        assert_ne!(
            fingerprints(got["sdp"].as_str().unwrap()),
            fingerprints(OFFER_SDP)
        );
        assert_eq!(relay.changed(), 1);

        // The other way is untouched.
        direct.send(Message::text(offer.as_str())).await?;
        let got = next_text(&mut behind).await?;
        assert_eq!(got["sdp"].as_str(), Some(OFFER_SDP));
        assert_eq!(relay.changed(), 1);
        assert_eq!(relay.websockets(), 1);
        Ok(())
    }
}
