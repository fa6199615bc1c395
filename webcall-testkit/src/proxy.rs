//! [`TcpProxy`]: a TCP proxy on loopback in front of the server that can be
//! stopped and started again, as a reverse proxy or load balancer that
//! restarts mid-call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards every TCP connection on its own loopback port to `upstream`.
///
/// [`stop`](TcpProxy::stop) closes both sides of every connection it
/// carries (so the server sees them close) and refuses new ones until
/// [`start`](TcpProxy::start). Dropped, it stops accepting.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    kill: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream`.
    pub async fn launch(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a loopback port for the proxy")?;
        let addr = listener.local_addr()?;
        let accepted = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (kill, _) = watch::channel(0u64);
        let task = tokio::spawn({
            let (accepted, down, kill) = (accepted.clone(), down.clone(), kill.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        // Refused, as by a proxy that is not running.
                        drop(client);
                        continue;
                    }
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let mut kill_rx = kill.subscribe();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            // Both sides are dropped: each end sees the close.
                            _ = kill_rx.changed() => {}
                        }
                    });
                }
            }
        });
        Ok(Self {
            addr,
            accepted,
            down,
            kill,
            task,
        })
    }

    /// The proxy's own address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it has forwarded so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Goes down: closes every connection carried, refuses new ones.
    pub fn stop(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.kill.send_modify(|n| *n += 1);
    }

    /// Comes back: accepts connections again.
    pub fn start(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
