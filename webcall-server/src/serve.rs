//! Serving connections: the accept loop with its limits (all connections,
//! connections per client), HTTP/1.1 with time limits on request heads and
//! idle keep-alive, and a shutdown that tells every connection, signaling
//! WebSockets included, and ends within a bounded time.
//!
//! Each accepted connection holds a [`ConnectionTicket`] for as long as its
//! socket is open; a signaling WebSocket takes the ticket over from the
//! HTTP connection it was upgraded from. The tickets count connections
//! (overall and per client) and are what shutdown waits for.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tower::Service;

use crate::app::AppState;
use crate::config::canonical;
use crate::request::client_key;

/// Largest request head accepted (hyper's minimum is 8 KiB). The API's
/// requests are a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Open files kept back from connections for the listener, logs and the
/// runtime.
const RESERVED_FILES: u64 = 64;

/// Counts open connections, overall and per client, and lets shutdown wait
/// for them.
#[derive(Debug)]
pub(crate) struct Gate {
    max: usize,
    per_client_max: usize,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
    tracker: TaskTracker,
}

impl Gate {
    pub(crate) fn new(max: usize, per_client_max: usize) -> Self {
        Self {
            max,
            per_client_max,
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
            tracker: TaskTracker::new(),
        }
    }

    /// How many connections are open.
    pub(crate) fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// A ticket for a new connection from `client` (`None`: exempt from the
    /// per-client limit), or `None` when a limit is reached.
    fn admit(self: &Arc<Self>, client: Option<IpAddr>) -> Option<ConnectionTicket> {
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        if let Some(client) = client.filter(|_| self.per_client_max > 0) {
            let mut map = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(client).or_default();
            if *n >= self.per_client_max {
                drop(map);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return None;
            }
            *n += 1;
        }
        Some(ConnectionTicket(Arc::new(Ticket {
            gate: self.clone(),
            client: client.filter(|_| self.per_client_max > 0),
            _token: self.tracker.token(),
        })))
    }
}

/// One open connection, counted until the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionTicket(#[allow(dead_code)] Arc<Ticket>);

#[derive(Debug)]
struct Ticket {
    gate: Arc<Gate>,
    client: Option<IpAddr>,
    _token: TaskTrackerToken,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gate.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(client) = self.client {
            let mut map = self
                .gate
                .per_client
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&client) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&client);
                }
            }
        }
    }
}

/// Raises the soft limit on open files to the hard limit where the system
/// allows it, and returns the limit in force (`None` where there is none
/// to read).
pub fn raise_open_file_limit() -> Option<u64> {
    if !rlimit::Resource::NOFILE.is_supported() {
        return None;
    }
    let (before, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) if now > before => {
            tracing::info!(from = before, to = now, "raised the open-file limit");
            Some(now)
        }
        Ok(now) => Some(now),
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit ({before}): {e}");
            Some(before)
        }
    }
}

/// The connection limit that fits the open-file limit: a server that runs
/// out of file descriptors stops accepting anyone, so refuse early instead.
pub(crate) fn connection_limit(wanted: usize) -> usize {
    let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return wanted;
    };
    let room = soft.saturating_sub(RESERVED_FILES).max(1);
    if (wanted as u64) > room {
        tracing::warn!(
            wanted,
            open_file_limit = soft,
            "max connections lowered to {room} to fit the open-file limit; raise it (ulimit -n) to allow more"
        );
        room as usize
    } else {
        wanted
    }
}

/// Accepts connections until `shutdown` completes, then drains them.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.config.request_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let gate = state.gate.clone();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection that died in
                    // the backlog: wait a moment rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let ip = canonical(peer.ip());
        let trusted = state.config.trusted_proxies.iter().any(|n| n.contains(ip));
        let client = (!trusted).then(|| client_key(ip, state.config.client_ipv6_prefix));
        let Some(ticket) = gate.admit(client) else {
            refuse(stream, peer, gate.open());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let state = state.clone();
        let http = http.clone();
        gate.tracker.spawn(async move {
            let service_ticket = ticket.clone();
            // Requests being answered on this connection: at shutdown, one
            // with none (idle, or a request head still arriving) closes at
            // once instead of holding the exit until the deadline.
            let busy = Arc::new(AtomicUsize::new(0));
            let service_busy = busy.clone();
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(service_ticket.clone());
                    let answer = router.clone().call(request);
                    let busy = service_busy.clone();
                    busy.fetch_add(1, Ordering::SeqCst);
                    async move {
                        let response = answer.await;
                        busy.fetch_sub(1, Ordering::SeqCst);
                        response
                    }
                });
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let mut stopping = state.shutdown.subscribe();
            let deadline = tokio::select! {
                _ = connection.as_mut() => None,
                deadline = stopping.wait_for(Option::is_some) => deadline.ok().and_then(|d| *d),
            };
            if let Some(deadline) = deadline
                && busy.load(Ordering::SeqCst) > 0
            {
                // A request in flight may finish until the deadline.
                connection.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout_at(deadline, connection).await;
            }
            // Otherwise (idle, or a request head not yet complete) the
            // connection is dropped here, which closes it.
            drop(ticket);
        });
    }
    drop(listener);
    let deadline = Instant::now() + state.config.shutdown_timeout;
    tracing::info!(
        connections = gate.open(),
        "shutting down: telling every connection, waiting up to {:?}",
        state.config.shutdown_timeout
    );
    state.shutdown.send_replace(Some(deadline));
    gate.tracker.close();
    // Every task stops by the deadline; a moment more for their last writes.
    if tokio::time::timeout_at(deadline + Duration::from_millis(500), gate.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = gate.open(),
            "connections still open at the shutdown deadline; stopping anyway"
        );
    }
}

/// Answers a connection over a limit with `503` and closes it, without a
/// task: the answer fits in the socket's buffer.
fn refuse(stream: TcpStream, peer: SocketAddr, open: usize) {
    const BODY: &str = r#"{"error":{"code":"unavailable","message":"the server is unavailable; try again shortly: too many connections"}}"#;
    tracing::debug!(%peer, open, "connection refused: connection limit");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
}
