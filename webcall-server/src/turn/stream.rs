//! TURN over TCP and TLS (RFC 5766 §2.1, RFC 6062 framing of the client
//! connection): the TURN crate's server reads datagrams from one
//! [`Conn`], so every stream client is multiplexed into one virtual
//! [`StreamConn`], addressed by the client's socket address. Each stream
//! is cut into STUN messages (20-byte header, length in bytes 2-3) and
//! ChannelData messages (4-byte header, length padded to 4 over streams,
//! RFC 5766 §11.5).
//!
//! The stream type is generic: [`listen`] takes an accept function from
//! `TcpStream` to any `AsyncRead + AsyncWrite` stream, the identity for
//! TCP and a TLS handshake for TLS. [`intake`] makes a virtual connection
//! with no listener: the HTTPS server hands it the TLS connections on its
//! port that turn out to carry TURN (`turns:` on 443).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use webrtc_util::Conn;

/// The largest message accepted on a stream. Media packets fit an MTU;
/// anything much larger is not a TURN client.
const MAX_FRAME: usize = 4096;
/// Messages queued toward one slow client before more are dropped, as UDP
/// would drop them.
const OUT_QUEUE: usize = 512;
/// Messages from all clients queued for the server loop.
const IN_QUEUE: usize = 4096;
/// A client that sends nothing for this long is disconnected (clients
/// refresh allocations every few minutes).
const IDLE: Duration = Duration::from_secs(600);
/// How long a TLS handshake may take, and then the first message.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Stream clients one address may have connected at once.
const PER_ADDRESS: usize = 32;

/// Limits of one stream listener.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Stream clients connected at once; more are closed at accept.
    pub max_connections: usize,
}

/// All stream clients of one listener as one datagram-like [`Conn`].
#[derive(Debug)]
pub struct StreamConn {
    local: SocketAddr,
    inbound: tokio::sync::Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    peers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
    stop: CancellationToken,
}

/// The stream clients of one virtual connection: how a new one is let in
/// (limits, bookkeeping, serving it, saying when it has gone).
#[derive(Clone)]
struct Clients {
    in_tx: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    gone_tx: mpsc::UnboundedSender<SocketAddr>,
    peers: Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>,
    limits: StreamLimits,
    stop: CancellationToken,
}

/// A virtual connection with no listener of its own, the channel naming
/// clients that have gone, and the [`Clients`] that feed it.
fn virtual_conn(
    local: SocketAddr,
    limits: StreamLimits,
    stop: CancellationToken,
) -> (
    Arc<StreamConn>,
    mpsc::UnboundedReceiver<SocketAddr>,
    Clients,
) {
    let (in_tx, in_rx) = mpsc::channel(IN_QUEUE);
    let (gone_tx, gone_rx) = mpsc::unbounded_channel();
    let conn = Arc::new(StreamConn {
        local,
        inbound: tokio::sync::Mutex::new(in_rx),
        peers: Arc::new(Mutex::new(HashMap::new())),
        stop: stop.clone(),
    });
    let clients = Clients {
        in_tx,
        gone_tx,
        peers: conn.peers.clone(),
        limits,
        stop,
    };
    (conn, gone_rx, clients)
}

impl Clients {
    /// Lets in the client at `peer` whose stream `handshake` yields (within
    /// [`HANDSHAKE`]), unless a limit is reached; serves it until it goes.
    fn admit<S, Fut>(&self, peer: SocketAddr, handshake: Fut)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        Fut: Future<Output = std::io::Result<S>> + Send + 'static,
    {
        let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
        {
            let mut map = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            let from_address = map.keys().filter(|a| a.ip() == peer.ip()).count();
            if map.len() >= self.limits.max_connections || from_address >= PER_ADDRESS {
                tracing::debug!(%peer, "TURN stream client refused: connection limit");
                return;
            }
            map.insert(peer, out_tx);
        }
        let clients = self.clone();
        tokio::spawn(async move {
            let served = async {
                let stream = tokio::time::timeout(HANDSHAKE, handshake)
                    .await
                    .map_err(|_| std::io::Error::other("handshake timed out"))??;
                serve(stream, peer, clients.in_tx.clone(), out_rx).await
            };
            tokio::select! {
                () = clients.stop.cancelled() => {}
                result = served => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, "TURN stream client gone: {e}");
                    }
                }
            }
            clients
                .peers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&peer);
            let _ = clients.gone_tx.send(peer);
        });
    }
}

/// Starts accepting stream clients on `listener`, turning each TCP
/// connection into a stream with `accept` (a TLS handshake, say). Returns
/// the virtual connection and a channel naming each client that has gone,
/// so that its allocation can be removed at once.
pub fn listen<S, F, Fut>(
    listener: TcpListener,
    accept: F,
    limits: StreamLimits,
    stop: CancellationToken,
) -> std::io::Result<(Arc<StreamConn>, mpsc::UnboundedReceiver<SocketAddr>)>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::io::Result<S>> + Send + 'static,
{
    let (conn, gone_rx, clients) = virtual_conn(listener.local_addr()?, limits, stop.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::debug!("TURN stream accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            clients.admit(peer, accept(tcp));
        }
    });
    Ok((conn, gone_rx))
}

/// A stream whose TLS another server already terminated, handed over whole.
pub trait HandedStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> HandedStream for T {}

/// Where the HTTPS server hands TURN clients that reached its port: a
/// connection whose first decrypted bytes are STUN rather than HTTP.
#[derive(Clone)]
pub struct StreamIntake {
    clients: Clients,
}

impl std::fmt::Debug for StreamIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIntake").finish_non_exhaustive()
    }
}

impl StreamIntake {
    /// Serves `stream` from the client at `peer` as TURN over TLS, within
    /// the listener's limits (over them, it is closed).
    pub fn hand_over(&self, peer: SocketAddr, stream: Box<dyn HandedStream>) {
        self.clients
            .admit(peer, async move { Ok::<_, std::io::Error>(stream) });
    }
}

/// A virtual connection fed by [`StreamIntake::hand_over`] instead of a
/// listener of its own; `local` is the address it is reached at.
pub fn intake(
    local: SocketAddr,
    limits: StreamLimits,
    stop: CancellationToken,
) -> (
    Arc<StreamConn>,
    mpsc::UnboundedReceiver<SocketAddr>,
    StreamIntake,
) {
    let (conn, gone_rx, clients) = virtual_conn(local, limits, stop);
    (conn, gone_rx, StreamIntake { clients })
}

/// Reads framed messages from one client and writes what is queued for it.
async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    in_tx: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    mut out_rx: mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async move {
        while let Some(frame) = out_rx.recv().await {
            writer.write_all(&frame).await?;
            let pad = padding(&frame);
            if pad > 0 {
                writer.write_all(&[0u8; 3][..pad]).await?;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    let read = async move {
        // A client that connects and says nothing is dropped soon.
        let mut wait = HANDSHAKE;
        loop {
            let frame = tokio::time::timeout(wait, read_frame(&mut reader))
                .await
                .map_err(|_| std::io::Error::other("idle"))??;
            wait = IDLE;
            if in_tx.send((frame, peer)).await.is_err() {
                return Ok::<_, std::io::Error>(());
            }
        }
    };
    tokio::select! {
        r = write => r,
        r = read => r,
    }
}

/// Bytes of padding a ChannelData frame needs on a stream.
fn padding(frame: &[u8]) -> usize {
    if is_channel_data(frame) && !frame.len().is_multiple_of(4) {
        4 - frame.len() % 4
    } else {
        0
    }
}

fn is_channel_data(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b >> 6 == 0b01)
}

/// One STUN or ChannelData message, without a ChannelData frame's padding.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 4];
    reader.read_exact(&mut head).await?;
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let (total, padded) = match head[0] >> 6 {
        0b00 => (20 + length, 20 + length),
        0b01 => (4 + length, 4 + length.div_ceil(4) * 4),
        _ => return Err(std::io::Error::other("neither STUN nor ChannelData")),
    };
    if padded > MAX_FRAME {
        return Err(std::io::Error::other("message too large"));
    }
    let mut frame = vec![0u8; padded];
    frame[..4].copy_from_slice(&head);
    reader.read_exact(&mut frame[4..]).await?;
    frame.truncate(total);
    Ok(frame)
}

impl StreamConn {
    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.peers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[async_trait]
impl Conn for StreamConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other(
            "a listener is not connected".into(),
        ))
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other(
            "use recv_from on a listener".into(),
        ))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut inbound = self.inbound.lock().await;
        let next = tokio::select! {
            () = self.stop.cancelled() => None,
            next = inbound.recv() => next,
        };
        let (frame, from) = next.ok_or(webrtc_util::Error::ErrAlreadyClosed)?;
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((n, from))
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other(
            "use send_to on a listener".into(),
        ))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let sender = self
            .peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&target)
            .cloned();
        match sender {
            // A full queue drops the message, as a congested UDP path would.
            Some(sender) => {
                let _ = sender.try_send(buf.to_vec());
                Ok(buf.len())
            }
            None => Err(webrtc_util::Error::Other(format!(
                "no TURN stream client at {target}"
            ))),
        }
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        // Nothing: the TURN crate calls this on the listener's connection
        // whenever one allocation closes. The listener stops with the
        // server's stop token.
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_cut_at_message_boundaries() {
        // A STUN binding request (20-byte header, 4 bytes of attributes),
        // then ChannelData with 5 bytes of data padded to 8, then another.
        let mut bytes = vec![0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42];
        bytes.extend_from_slice(&[7u8; 12]);
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        bytes.extend_from_slice(&[0x40, 0x00, 0x00, 0x05, 9, 9, 9, 9, 9, 0, 0, 0]);
        bytes.extend_from_slice(&[0x40, 0x01, 0x00, 0x04, 8, 8, 8, 8]);
        let mut reader = &bytes[..];
        assert_eq!(read_frame(&mut reader).await.unwrap().len(), 24);
        let channel = read_frame(&mut reader).await.unwrap();
        assert_eq!(channel, vec![0x40, 0x00, 0x00, 0x05, 9, 9, 9, 9, 9]);
        assert_eq!(padding(&channel), 3);
        assert_eq!(read_frame(&mut reader).await.unwrap().len(), 8);
        assert!(read_frame(&mut reader).await.is_err(), "end of stream");
        let mut junk = &[0xff, 0, 0, 0][..];
        assert!(read_frame(&mut junk).await.is_err());
        let mut huge = &[0x40, 0, 0xff, 0xff][..];
        assert!(read_frame(&mut huge).await.is_err());
    }
}
