//! The signaling WebSocket, `GET /ws/rooms/{token}`: the upgrade checks
//! (origin, connection limit), and one task per connection that feeds the
//! room store what the client sends and writes out what the hub delivers.
//!
//! Per connection: small buffers (4 KiB), frames of at most
//! [`MAX_CLIENT_MESSAGE_BYTES`], a join deadline, pings and an idle limit,
//! a message rate limit, and a bounded outgoing queue. Nothing a client
//! sends reaches any room but its own.
//!
//! The room answers everything about seats (`not_joined`,
//! `already_joined`, ...); this task only answers what the socket shows
//! (frame size, rate, silence). Every message to the client, its own
//! errors included, goes through its queue in the hub, so the client sees
//! them in the order they were made.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use webcall_core::protocol::{
    ClientMessage, ErrorCode, ErrorMessage, MAX_CLIENT_MESSAGE_BYTES, MAX_MESSAGE_BYTES,
    ProtocolError, ServerMessage,
};
use webcall_core::room::ConnectionId;
use webcall_core::time::Timestamp;
use webcall_core::token::RoomToken;

use crate::api::api_error;
use crate::app::AppState;
use crate::hub::Outbox;
use crate::limits::TokenBucket;
use crate::request::{RequestFacts, origin_allowed};
use crate::serve::ConnectionTicket;
use crate::store::Join;
use crate::upgrade::{Handshake, Socket};

/// Socket read and write buffer sizes. Signaling frames are small; the
/// library default (128 KiB each) would cost over a gigabyte at 10,000
/// idle connections.
const BUFFER_BYTES: usize = 4 * 1024;

/// How long one write may take before the client is deemed gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the client's close after the server closed.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// After refusing an oversized frame: how much of the rest of it is read
/// and thrown away, and how long a pause ends that.
const MAX_DRAIN_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_QUIET: Duration = Duration::from_millis(300);

/// The widest spread of the delays a shutdown hands out in `reconnect`.
const RECONNECT_SPREAD_MAX_MS: u64 = 5_000;

/// Longest error detail echoed back to a client.
const MAX_DETAIL: usize = 200;

/// `GET /ws/rooms/{token}`.
///
/// A page from another origin gets `403`; over `max_connections`, `503`.
/// Otherwise the upgrade succeeds even for an unknown token, so that a
/// browser can read the `room_not_found` error that follows.
pub(crate) async fn upgrade(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    facts: RequestFacts,
    headers: HeaderMap,
    ticket: Option<Extension<ConnectionTicket>>,
    ws: Handshake,
) -> Response {
    if !origin_allowed(headers.get(header::ORIGIN), &facts, &state.config) {
        tracing::info!(origin = ?headers.get(header::ORIGIN), "cross-origin WebSocket refused");
        crate::metrics::refused("origin");
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not open signaling connections to this server\n",
        )
            .into_response();
    }
    if state.shutdown.borrow().is_some() {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable);
    }
    let Some(slot) = ConnectionSlot::take(&state) else {
        tracing::warn!(
            limit = state.config.max_connections,
            "connection limit reached"
        );
        crate::metrics::refused("connection_limit");
        return api_error(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable);
    };
    let room = match token.parse::<RoomToken>() {
        Ok(token) => match state.rooms.info(&token, state.clock.now()).await {
            Ok(info) => info.map(|_| token),
            Err(e) => return crate::api::store_failed(e),
        },
        Err(_) => None,
    };
    let limits = WebSocketConfig::default()
        .read_buffer_size(BUFFER_BYTES)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_MESSAGE_BYTES * 4)
        // The one check of a client frame's size: longer ones end in
        // tungstenite's capacity error, answered `message_too_large`.
        .max_message_size(Some(MAX_CLIENT_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE_BYTES));
    let task = state.signaling.token();
    ws.accept(limits, move |socket| async move {
        // The socket stays counted (and shutdown waits for it) until
        // this task ends.
        let _ticket = ticket;
        let _task = task;
        match room {
            Some(room) => Connection::new(socket, state, room, slot).run().await,
            None => refuse(socket, ErrorCode::RoomNotFound).await,
        }
    })
}

/// One counted place under `max_connections`, given back on drop.
#[derive(Debug)]
struct ConnectionSlot(Arc<AppState>);

impl ConnectionSlot {
    fn take(state: &Arc<AppState>) -> Option<Self> {
        let max = state.config.max_connections;
        state
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(state.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn refuse(mut socket: Socket, code: ErrorCode) {
    crate::metrics::refused_with(code);
    let frame = ServerMessage::error(code).encode();
    if send(&mut socket, Message::text(frame)).await {
        close(socket, CloseCode::Normal).await;
    }
}

/// Sends one frame; false when the client is gone or too slow.
async fn send(socket: &mut Socket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Sends a close frame and waits briefly for the client's, so that frames
/// sent just before reach it rather than being cut by a reset.
///
/// After an oversized frame the stream is mid-frame and cannot be read as
/// WebSocket any more: the rest is read raw and discarded (bounded in bytes
/// and time) before the socket is shut, for the same reason.
async fn close(mut socket: Socket, code: CloseCode) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    if !send(&mut socket, Message::Close(Some(frame))).await {
        return;
    }
    let deadline = Instant::now() + CLOSE_LINGER;
    if code == CloseCode::Size {
        let io = socket.get_mut();
        let mut scratch = vec![0u8; 8 * 1024];
        let mut drained = 0;
        while drained < MAX_DRAIN_BYTES {
            let pause = deadline.min(Instant::now() + DRAIN_QUIET);
            match tokio::time::timeout_at(pause, io.read(&mut scratch)).await {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => break,
            }
        }
        let _ = tokio::time::timeout_at(deadline, io.shutdown()).await;
        return;
    }
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await {
        if matches!(message, Message::Close(_)) {
            break;
        }
    }
}

/// What the loop does after handling an event.
enum Flow {
    Continue,
    /// Close the socket with this close code (after the frames already sent).
    Close(CloseCode),
    /// The same, by a deadline (the server is shutting down).
    Closing(CloseCode, Instant),
    /// The socket is unusable: just drop it.
    Drop,
}

/// One signaling connection.
struct Connection {
    socket: Socket,
    state: Arc<AppState>,
    room: RoomToken,
    id: ConnectionId,
    outbox: Outbox,
    _slot: ConnectionSlot,
    started: Instant,
    last_seen: Instant,
    /// When to check that the client has taken a seat; `None` once it had.
    join_by: Option<Instant>,
    /// Set once a fatal error is queued: the close code to end with when
    /// the queue has drained. Nothing more is read meanwhile.
    closing: Option<CloseCode>,
    /// An error made after the queue was closed (by the room): sent once
    /// what was queued before has gone out.
    last_words: Option<ErrorMessage>,
    bucket: TokenBucket,
    /// Bytes the client may send: what it sends, the other side's queue
    /// must hold.
    byte_bucket: TokenBucket,
    /// Frames refused in a row by the rate limit.
    refused: u32,
}

impl Connection {
    fn new(socket: Socket, state: Arc<AppState>, room: RoomToken, slot: ConnectionSlot) -> Self {
        let (id, outbox) = state.hub.register();
        let now = Instant::now();
        let join_by = now + state.config.join_timeout;
        let bucket = TokenBucket::new(
            f64::from(state.config.message_rate_per_second),
            state.config.message_burst,
            now.into_std(),
        );
        let byte_bucket = TokenBucket::new(
            f64::from(state.config.message_bytes_per_second),
            state.config.message_bytes_burst,
            now.into_std(),
        );
        Self {
            socket,
            state,
            room,
            id,
            outbox,
            _slot: slot,
            started: now,
            last_seen: now,
            join_by: Some(join_by),
            closing: None,
            last_words: None,
            bucket,
            byte_bucket,
            refused: 0,
        }
    }

    async fn run(mut self) {
        tracing::debug!(conn = self.id.0, room = ?self.room, "connected");
        let config = &self.state.config;
        let (ping_every, join_timeout) = (config.ping_interval, config.join_timeout);
        let mut ping = tokio::time::interval_at(self.started + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Never later than the earliest limit; rechecked when it fires.
        let deadline = sleep_until(self.started + join_timeout.min(config.idle_timeout));
        tokio::pin!(deadline);
        let shutdown = shutting_down(self.state.shutdown.subscribe());
        tokio::pin!(shutdown);

        let flow = loop {
            let open = self.closing.is_none();
            let flow = tokio::select! {
                incoming = self.socket.next(), if open => self.on_incoming(incoming).await,
                outgoing = self.outbox.recv() => self.on_outgoing(outgoing).await,
                _ = ping.tick() => self.send(Message::Ping(Default::default())).await,
                _ = &mut deadline, if open => match self.next_deadline().await {
                    Some(next) => {
                        deadline.as_mut().reset(next);
                        Flow::Continue
                    }
                    None => self.answer(ErrorMessage::new(ErrorCode::Timeout)),
                },
                deadline = &mut shutdown => {
                    // Told and closed by the shutdown deadline, whatever the
                    // client does: come back (the room outlives this
                    // process), or the server is gone.
                    if self.state.rooms.outlives_process() {
                        self.ask_to_reconnect();
                    } else {
                        self.answer(ErrorMessage::new(ErrorCode::Unavailable));
                    }
                    match tokio::time::timeout_at(deadline, self.drain()).await {
                        Ok(Flow::Close(code)) => Flow::Closing(code, deadline),
                        _ => Flow::Drop,
                    }
                }
            };
            if !matches!(flow, Flow::Continue) {
                break flow;
            }
        };

        self.state.hub.remove(self.id);
        // On shutdown with rooms in memory every participant is told
        // `unavailable`; telling the other one that this peer left as well
        // would be untrue (both still hold a working media connection) and
        // races with their own notice. With rooms that outlive this process
        // the other one may sit on another instance that goes on: it hears
        // `peer_reconnecting`, as for any dropped connection, and the seat's
        // grace is kept by the shared store's deadlines.
        let shutting_down = self.state.shutdown.borrow().is_some();
        let quietly = shutting_down && !self.state.rooms.outlives_process();
        let now = self.state.clock.now();
        match self
            .state
            .rooms
            .disconnect(&self.room, now, self.id, quietly)
            .await
        {
            Ok(Some(deadline)) if !shutting_down => {
                tokio::spawn(free_held_seats(
                    Arc::downgrade(&self.state),
                    self.room.clone(),
                    deadline,
                ));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(conn = self.id.0, "room store failed: {e}"),
        }
        tracing::debug!(conn = self.id.0, "disconnected");
        match flow {
            Flow::Close(code) => close(self.socket, code).await,
            Flow::Closing(code, deadline) => {
                let _ = tokio::time::timeout_at(deadline, close(self.socket, code)).await;
            }
            Flow::Continue | Flow::Drop => {}
        }
    }

    /// When to look again at the join and idle limits; `None` when one
    /// has passed. Whether the client took a seat in time, the room says.
    async fn next_deadline(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let idle_until = self.last_seen + self.state.config.idle_timeout;
        if now >= idle_until {
            return None;
        }
        if let Some(join_by) = self.join_by {
            if now < join_by {
                return Some(idle_until.min(join_by));
            }
            match self.state.rooms.holds_seat(&self.room, self.id).await {
                Ok(false) => return None,
                Ok(true) => {}
                // Not the client's fault: let it be.
                Err(e) => tracing::warn!(conn = self.id.0, "room store failed: {e}"),
            }
            self.join_by = None;
        }
        Some(idle_until)
    }

    async fn on_outgoing(&mut self, outgoing: Option<String>) -> Flow {
        match outgoing {
            Some(frame) => self.send(Message::text(frame)).await,
            // Cut off by the hub: it stopped reading. Its queue is
            // drained, so this goes straight to the socket.
            None if self.outbox.cut_off() => {
                crate::metrics::refused_with(ErrorCode::TooSlow);
                let error = ErrorMessage::new(ErrorCode::TooSlow);
                match self.send_now(error).await {
                    Flow::Continue => Flow::Close(close_code(ErrorCode::TooSlow)),
                    other => other,
                }
            }
            // Removed from the hub: a fatal error of ours, or the room
            // closed this connection.
            None => {
                if let Some(error) = self.last_words.take()
                    && let Flow::Drop = self.send_now(error).await
                {
                    return Flow::Drop;
                }
                Flow::Close(self.closing.unwrap_or(CloseCode::Normal))
            }
        }
    }

    /// Sends what is queued until the queue ends.
    async fn drain(&mut self) -> Flow {
        loop {
            let outgoing = self.outbox.recv().await;
            let last = outgoing.is_none();
            match self.on_outgoing(outgoing).await {
                Flow::Continue if !last => {}
                flow => return flow,
            }
        }
    }

    async fn on_incoming(&mut self, incoming: Option<Result<Message, WsError>>) -> Flow {
        let message = match incoming {
            None | Some(Ok(Message::Close(_))) => return Flow::Drop,
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                return self.answer(ErrorMessage::new(ErrorCode::MessageTooLarge));
            }
            Some(Err(e)) => {
                tracing::debug!(conn = self.id.0, "connection failed: {e}");
                return Flow::Drop;
            }
            Some(Ok(message)) => message,
        };
        self.last_seen = Instant::now();

        let now = self.last_seen.into_std();
        let bytes = match &message {
            Message::Text(text) => text.len(),
            Message::Binary(data) => data.len(),
            _ => 0,
        };
        if !(self.bucket.try_take(now) && self.byte_bucket.try_take_n(bytes as f64, now)) {
            self.refused += 1;
            if self.refused == 1 {
                return self.answer(ErrorMessage::new(ErrorCode::RateLimited));
            }
            if self.refused > self.state.config.message_burst {
                tracing::info!(
                    conn = self.id.0,
                    "closing a connection that ignores the rate limit"
                );
                return self.answer(ErrorMessage::fatal(ErrorCode::RateLimited));
            }
            return Flow::Continue;
        }
        self.refused = 0;

        match message {
            Message::Text(text) => self.on_text(text.as_str()).await,
            Message::Binary(_) => self.answer(ErrorMessage::with_detail(
                ErrorCode::BadMessage,
                "binary frames are not used; send JSON text",
            )),
            // Pings are answered by the library; both only show liveness.
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => {
                Flow::Continue
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let message = match ClientMessage::decode(text) {
            Ok(message) => message,
            Err(ProtocolError::Malformed(detail)) => {
                let detail: String = detail.chars().take(MAX_DETAIL).collect();
                return self.answer(ErrorMessage::with_detail(ErrorCode::BadMessage, detail));
            }
            Err(e) => return self.answer(ErrorMessage::new(e.code())),
        };
        let now = self.state.clock.now();
        let (state, room, id) = (&self.state, &self.room, self.id);
        let fed = match message {
            ClientMessage::Join { version, resume } => {
                let ice = state.ice.ice_config(room, id);
                let join = Join {
                    conn: id,
                    version,
                    resume,
                    ice,
                };
                state.rooms.join(room, now, join).await
            }
            message => state.rooms.handle(room, now, id, message).await,
        };
        match fed {
            Ok(()) => Flow::Continue,
            Err(e) => {
                tracing::warn!(conn = id.0, "room store failed: {e}");
                if self.state.rooms.outlives_process() {
                    // The store keeps the seat through its blip: the client
                    // comes back with its resume secret (refused with 503
                    // until the store answers) and the other side sees at
                    // most `peer_reconnecting`.
                    crate::metrics::refused_with(ErrorCode::Unavailable);
                    self.ask_to_reconnect();
                    Flow::Continue
                } else {
                    self.answer(ErrorMessage::new(ErrorCode::Unavailable))
                }
            }
        }
    }

    async fn send(&mut self, message: Message) -> Flow {
        if send(&mut self.socket, message).await {
            Flow::Continue
        } else {
            Flow::Drop
        }
    }

    /// Queues an error for the client behind what is already queued; a
    /// fatal one also ends the queue, and the connection closes once the
    /// client has it.
    ///
    /// When the queue is closed already (the room closed the connection),
    /// the connection is ending: nothing more is read, and only a fatal
    /// error is still said, after what is left in the queue.
    fn answer(&mut self, error: ErrorMessage) -> Flow {
        crate::metrics::refused_with(error.code);
        let close = error.fatal.then(|| close_code(error.code));
        let frame = ServerMessage::Error(error.clone()).encode();
        if self.state.hub.send(self.id, frame) {
            if let Some(code) = close {
                self.closing = Some(code);
                self.state.hub.remove(self.id);
            }
        } else if let Some(code) = close {
            self.closing = Some(code);
            self.last_words.get_or_insert(error);
        } else {
            self.closing.get_or_insert(CloseCode::Normal);
        }
        Flow::Continue
    }

    /// Queues `reconnect` behind what is already queued and ends the
    /// queue; the socket then closes with 1012 (service restart). Each
    /// connection waits its own random delay, spread wider the more
    /// connections this process holds (1 ms each, from 250 ms up to 5 s),
    /// so that they do not all arrive at the next instance at once.
    fn ask_to_reconnect(&mut self) {
        let open = self.state.connections.load(Ordering::Relaxed) as u64;
        let spread = (250 + open).min(RECONNECT_SPREAD_MAX_MS);
        let after_ms = getrandom::u64().unwrap_or(0) % (spread + 1);
        let frame = ServerMessage::Reconnect { after_ms }.encode();
        self.state.hub.send(self.id, frame);
        self.closing = Some(CloseCode::Restart);
        self.state.hub.remove(self.id);
    }

    /// Sends an error past the queue, for when the queue is gone.
    async fn send_now(&mut self, error: ErrorMessage) -> Flow {
        self.send(Message::text(ServerMessage::Error(error).encode()))
            .await
    }
}

/// The close code that follows a fatal error.
fn close_code(code: ErrorCode) -> CloseCode {
    match code {
        ErrorCode::MessageTooLarge => CloseCode::Size,
        ErrorCode::Unavailable => CloseCode::Away,
        ErrorCode::RateLimited | ErrorCode::TooSlow => CloseCode::Policy,
        _ => CloseCode::Normal,
    }
}

/// Frees the room's held seats as their grace periods end (the room says
/// when), telling the other participant; ends once none is held. A seat
/// taken back meanwhile simply is not due any more.
async fn free_held_seats(state: Weak<AppState>, room: RoomToken, mut deadline: Timestamp) {
    loop {
        let Some(wait) = state.upgrade().map(|s| s.clock.until(deadline)) else {
            return;
        };
        tokio::time::sleep(wait).await;
        let Some(state) = state.upgrade() else { return };
        if state.shutdown.borrow().is_some() {
            return;
        }
        match state.rooms.tick(&room, state.clock.now()).await {
            Ok(Some(next)) => deadline = next,
            Ok(None) => return,
            Err(e) => {
                // Try again shortly rather than hold the seat for ever.
                tracing::warn!("room store failed: {e}");
                deadline = state.clock.now().saturating_add(Duration::from_secs(1));
            }
        }
    }
}

/// Completes with the shutdown deadline when the server starts shutting
/// down.
async fn shutting_down(mut down: tokio::sync::watch::Receiver<Option<Instant>>) -> Instant {
    match down.wait_for(Option::is_some).await {
        Ok(deadline) => deadline.unwrap_or_else(Instant::now),
        // The state is gone, which is a shutdown too.
        Err(_) => Instant::now(),
    }
}
