//! A signaling relay in front of the server that reads (and can rewrite)
//! the DTLS fingerprints in the descriptions it delivers: a man in the
//! middle, as a signaling server that swaps keys would be.
//!
//! It forwards TCP both ways. Once the server's side of a connection has
//! answered `101 Switching Protocols`, it scans what the server sends
//! (WebSocket frames from a server are not masked, so the offer's JSON is
//! there as text) for `a=fingerprint:` values. Rewriting flips one hex
//! digit, which keeps every length, so no frame needs re-encoding.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PREFIX: &[u8] = b"a=fingerprint:";

/// The relay; dropped, it stops accepting.
#[derive(Debug)]
pub struct FingerprintRelay {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

/// One fingerprint delivered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// As the server sent it.
    pub original: String,
    /// As the client got it.
    pub delivered: String,
}

impl FingerprintRelay {
    /// A relay on a free port of 127.0.0.1 in front of `upstream`; with
    /// `rewrite`, every fingerprint delivered is changed.
    pub async fn launch(upstream: SocketAddr, rewrite: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    tokio::spawn(carry(client, server, rewrite, seen.clone()));
                }
            }
        });
        Self { addr, seen, task }
    }

    /// A call link with the relay in place of the server.
    pub fn link(&self, room_url: &str) -> String {
        let path = room_url
            .find("/r/")
            .map(|i| &room_url[i..])
            .expect("a room link");
        format!("http://{}{path}", self.addr)
    }

    /// The fingerprints delivered so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FingerprintRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn carry(client: TcpStream, server: TcpStream, rewrite: bool, seen: Arc<Mutex<Vec<Seen>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut upgraded = false;
    loop {
        let n = match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &mut buf[..n];
        if !upgraded {
            upgraded = chunk.starts_with(b"HTTP/1.1 101");
        } else {
            scan(chunk, rewrite, &seen);
        }
        if client_write.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = client_write.shutdown().await;
    up.abort();
}

/// Finds the fingerprint values in `chunk` (each ends at the JSON escape
/// of its line end, or a quote), records them, rewrites them if asked.
fn scan(chunk: &mut [u8], rewrite: bool, seen: &Mutex<Vec<Seen>>) {
    let mut at = 0;
    while let Some(i) = find(&chunk[at..], PREFIX) {
        let start = at + i + PREFIX.len();
        let len = chunk[start..]
            .iter()
            .position(|&b| b == b'\\' || b == b'"')
            .unwrap_or(chunk.len() - start);
        let original = String::from_utf8_lossy(&chunk[start..start + len]).into_owned();
        if rewrite && let Some(space) = chunk[start..start + len].iter().position(|&b| b == b' ') {
            let digit = &mut chunk[start + space + 1];
            *digit = if *digit == b'0' { b'1' } else { b'0' };
        }
        let delivered = String::from_utf8_lossy(&chunk[start..start + len]).into_owned();
        seen.lock().unwrap().push(Seen {
            original,
            delivered,
        });
        at = start + len;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
