//! Serving connections: the accept loop with its limits (all connections,
//! connections per client), on an HTTPS port a TLS handshake within the
//! request time limit (plain HTTP there is redirected, never served; TURN
//! over TLS is handed to the TURN server when it shares the port),
//! HTTP/1.1 with time limits on request heads and idle keep-alive, and a
//! shutdown that tells every connection, signaling
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
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tower::Service;

use crate::app::AppState;
use crate::config::canonical;
use crate::request::{OverTls, client_key, is_plausible_host};
use crate::tls::{ALPN_ACME_TLS, Tls};
use crate::turn::stream::StreamIntake;

/// Largest request head accepted (hyper's minimum is 8 KiB). The API's
/// requests are a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The ALPN name of TURN over TLS (RFC 7443).
const ALPN_STUN_TURN: &[u8] = b"stun.turn";

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
/// With `tls`, every admitted connection goes through a TLS handshake (or
/// a redirect, for plain HTTP) before HTTP.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
    tls: Option<Tls>,
    turn: Option<StreamIntake>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // On an HTTPS port every routed request came over TLS (plain HTTP is
    // only ever redirected), so every answer carries HSTS.
    let router = if tls.is_some() {
        router.layer(crate::headers::hsts())
    } else {
        router
    };
    let mut http = Http::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.config.request_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    // `tls` lives until the end: it keeps the certificate current.
    let acceptor = tls.as_ref().map(|tls| {
        if turn.is_none() {
            return TlsAcceptor::from(tls.server_config());
        }
        // TURN clients that name their protocol (RFC 7443) are let in too.
        let mut config = (*tls.server_config()).clone();
        config.alpn_protocols.push(ALPN_STUN_TURN.to_vec());
        TlsAcceptor::from(Arc::new(config))
    });
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
            refuse(stream, peer, gate.open(), acceptor.is_none());
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            peer,
            router: router.clone(),
            state: state.clone(),
            http: http.clone(),
            ticket,
            turn: turn.clone(),
        };
        match &acceptor {
            None => gate
                .tracker
                .spawn(connection.serve_http(TokioIo::new(stream), false)),
            Some(acceptor) => gate
                .tracker
                .spawn(connection.serve_tls(stream, acceptor.clone())),
        };
    }
    drop(listener);
    let deadline = Instant::now() + state.config.shutdown_timeout;
    tracing::info!(
        connections = gate.open(),
        "shutting down: telling every connection, waiting up to {:?}",
        state.config.shutdown_timeout
    );
    state.begin_shutdown(deadline);
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
    drop(tls);
}

type Http = hyper::server::conn::http1::Builder;

/// One admitted connection, counted by its ticket until it closes.
struct Connection {
    peer: SocketAddr,
    router: Router,
    state: Arc<AppState>,
    http: Http,
    ticket: ConnectionTicket,
    /// Where TURN-over-TLS connections go when the HTTPS port takes them.
    turn: Option<StreamIntake>,
}

impl Connection {
    /// An HTTPS port: a TLS handshake, within the request time limit, then
    /// HTTP over it. Plain HTTP (a first byte that does not open a TLS
    /// handshake) is answered with a redirect to `https://` and closed.
    async fn serve_tls(self, stream: TcpStream, acceptor: TlsAcceptor) {
        let deadline = Instant::now() + self.state.config.request_timeout;
        let mut stopping = self.state.shutdown.subscribe();
        let mut first = [0u8; 1];
        match within(deadline, &mut stopping, stream.peek(&mut first)).await {
            Some(Ok(1..)) if first[0] == TLS_HANDSHAKE => {}
            Some(Ok(1..)) => {
                let mut http = self.http.clone();
                http.keep_alive(false);
                let state = self.state.clone();
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                        let response = redirect_to_https(&state, &request);
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                let answer = http.serve_connection(TokioIo::new(stream), service);
                let _ = within(deadline, &mut stopping, answer).await;
                return;
            }
            // Closed, failed, too slow, or shutting down.
            _ => return,
        }
        let tls = match within(deadline, &mut stopping, acceptor.accept(stream)).await {
            Some(Ok(tls)) => tls,
            Some(Err(e)) => {
                tracing::debug!(peer = %self.peer, "TLS handshake failed: {e}");
                return;
            }
            None => {
                tracing::debug!(peer = %self.peer, "TLS handshake not done in time");
                return;
            }
        };
        if tls.get_ref().1.alpn_protocol() == Some(ALPN_ACME_TLS) {
            // The CA checked the challenge certificate: nothing to serve.
            tracing::info!(peer = %self.peer, "answered an ACME TLS-ALPN-01 validation");
            let mut tls = tls;
            let _ = within(deadline, &mut stopping, tls.shutdown()).await;
            return;
        }
        let Some(turn) = self.turn.clone() else {
            self.serve_http(TokioIo::new(tls), true).await;
            return;
        };
        // The port also takes TURN over TLS: the first decrypted byte
        // tells (a TURN client opens with a STUN request, whose first two
        // bits are zero; an HTTP request opens with a letter).
        let mut tls = tls;
        let mut first = [0u8; 1];
        match within(deadline, &mut stopping, tls.read(&mut first)).await {
            Some(Ok(1)) => {}
            _ => return,
        }
        let (reader, writer) = tokio::io::split(tls);
        let stream = tokio::io::join(std::io::Cursor::new(first).chain(reader), writer);
        if first[0] < 0x40 {
            tracing::debug!(peer = %self.peer, "TURN over TLS on the HTTPS port");
            // From here the TURN server's stream limits count it.
            turn.hand_over(self.peer, Box::new(stream));
            return;
        }
        self.serve_http(TokioIo::new(stream), true).await;
    }

    /// HTTP/1.1 on `io` until the client closes it, it idles out, or
    /// shutdown ends it.
    async fn serve_http<I>(self, io: I, over_tls: bool)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let Self {
            peer,
            router,
            state,
            http,
            ticket,
            turn: _,
        } = self;
        let service_ticket = ticket.clone();
        // Requests being answered on this connection: at shutdown, one
        // with none (idle, or a request head still arriving) closes at
        // once instead of holding the exit until the deadline.
        let busy = Arc::new(AtomicUsize::new(0));
        let service_busy = busy.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(service_ticket.clone());
            if over_tls {
                request.extensions_mut().insert(OverTls);
            }
            let answer = router.clone().call(request);
            let busy = service_busy.clone();
            busy.fetch_add(1, Ordering::SeqCst);
            async move {
                let response = answer.await;
                busy.fetch_sub(1, Ordering::SeqCst);
                response
            }
        });
        let connection = http.serve_connection(io, service).with_upgrades();
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
    }
}

/// The first byte of a TLS record carrying a handshake (a ClientHello).
const TLS_HANDSHAKE: u8 = 0x16;

/// `work`, unless `deadline` passes or the server starts shutting down
/// first (`None`).
async fn within<T>(
    deadline: Instant,
    stopping: &mut watch::Receiver<Option<Instant>>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        done = tokio::time::timeout_at(deadline, work) => done.ok(),
        _ = stopping.wait_for(Option::is_some) => None,
    }
}

/// The answer to plain HTTP on an HTTPS port: a permanent redirect to the
/// same path over `https://` on an allowed host (the port is the same:
/// this one), `421` for a host the server does not answer to, `400`
/// without a usable `Host`. Nothing is served in plain text.
fn redirect_to_https<B>(state: &AppState, request: &hyper::Request<B>) -> Response<Body> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok().filter(|h| is_plausible_host(h)),
        _ => None,
    };
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .filter(|p| p.starts_with('/'))
        .unwrap_or("/");
    let (status, location, body) = match host {
        Some(host) if state.hosts.allows(host) => {
            let url = format!("https://{host}{path}");
            (
                StatusCode::PERMANENT_REDIRECT,
                HeaderValue::try_from(url.as_str()).ok(),
                format!("this port speaks HTTPS: {url}\n"),
            )
        }
        Some(_) => (
            StatusCode::MISDIRECTED_REQUEST,
            None,
            "this server does not answer to that host name\n".to_owned(),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            None,
            "this port speaks HTTPS; use https:// with a host name\n".to_owned(),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Answers a connection over a limit with `503` and closes it, without a
/// task: the answer fits in the socket's buffer. On an HTTPS port the
/// connection is only closed: a TLS client cannot read a plain answer.
fn refuse(stream: TcpStream, peer: SocketAddr, open: usize, plain: bool) {
    const BODY: &str = r#"{"error":{"code":"unavailable","message":"the server is unavailable; try again shortly: too many connections"}}"#;
    tracing::debug!(%peer, open, "connection refused: connection limit");
    crate::metrics::refused("connection_limit");
    if !plain {
        return;
    }
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
}
