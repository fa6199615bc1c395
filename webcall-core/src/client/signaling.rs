//! The WebSocket edge of the signaling session: opens the room's socket,
//! feeds what happens into a [`Session`] and carries out its outputs. A
//! dropped socket is reopened with the resume secret until the session
//! gives up.
//!
//! Both queues are bounded. Events wait for the reader: while the
//! application (the call engine) is busy, this edge stops reading the
//! socket, and the server, whose queues are bounded too, deals with a slow
//! reader. Outgoing messages are queued without waiting, up to
//! [`SEND_QUEUE`]; past that they are dropped, since a socket that far
//! behind is as good as gone (a reconnect renegotiates anyway).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

use super::link::Link;
pub use super::session::SignalEvent;
use super::session::{Output, Session};
use crate::error::{Error, Result};
use crate::protocol::{ClientMessage, ServerMessage};

/// How long opening the socket and getting `joined` may take.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Signaling events read from the socket and not yet taken by the
/// application; when full, reading the socket waits.
pub const EVENT_QUEUE: usize = 64;

/// Messages to the server not yet written to the socket; more are dropped.
pub const SEND_QUEUE: usize = 256;

#[derive(Debug)]
enum Command {
    Send(ClientMessage),
    Hangup(oneshot::Sender<()>),
}

/// A handle on a running signaling session. Cloneable; the session ends on
/// [`Signaling::hangup`] or a fatal error, reported as
/// [`SignalEvent::Closed`] on the event receiver.
#[derive(Debug, Clone)]
pub struct Signaling {
    commands: mpsc::Sender<Command>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Signaling {
    /// Joins the room named by `link`: checks the room over HTTP, opens the
    /// WebSocket and waits for `joined`. The first event on the receiver is
    /// that [`SignalEvent::Joined`].
    ///
    /// Fails with [`Error::RoomNotFound`], [`Error::RoomFull`],
    /// [`Error::Unreachable`] or [`Error::NotWebcall`] when the call cannot
    /// happen.
    /// The receiver holds at most [`EVENT_QUEUE`] events; read it promptly
    /// (the session waits for room).
    pub async fn connect(link: &Link) -> Result<(Self, mpsc::Receiver<SignalEvent>)> {
        super::install_crypto_provider();
        // A plain HTTP look-up first: it tells "server down", "not a webcall
        // server" and "unknown room" apart far better than a failed upgrade.
        super::http::room_info(&link.server(), link.token()).await?;

        let (commands, command_rx) = mpsc::channel(SEND_QUEUE);
        let (events_tx, mut events_rx) = mpsc::channel(EVENT_QUEUE);
        let (first_tx, first_rx) = oneshot::channel();
        tokio::spawn(run(link.clone(), command_rx, events_tx, first_tx));
        let this = Self { commands };
        match tokio::time::timeout(JOIN_TIMEOUT, first_rx).await {
            Ok(Ok(Ok(()))) => Ok((this, events_rx)),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(Error::SignalingClosed { source: None }),
            Err(_) => {
                let _ = this.hangup().await;
                events_rx.close();
                Err(Error::Unreachable {
                    server: link.server(),
                    detail: format!("no answer to join within {} s", JOIN_TIMEOUT.as_secs()),
                    source: None,
                })
            }
        }
    }

    /// Sends a message to the other participant (through the server).
    /// Dropped silently while reconnecting, and when [`SEND_QUEUE`]
    /// messages are already waiting for the socket.
    pub fn send(&self, message: ClientMessage) {
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.commands.try_send(Command::Send(message))
        {
            tracing::warn!("the signaling socket is behind; a message was dropped");
        }
    }

    /// Says `bye` and closes the socket; waits at most a second for that.
    pub async fn hangup(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            if self.commands.send(Command::Hangup(tx)).await.is_ok() {
                let _ = rx.await;
            }
        })
        .await;
        Ok(())
    }
}

struct Runner {
    session: Session,
    /// The server's base URL, for error messages.
    server: String,
    events: mpsc::Sender<SignalEvent>,
    first: Option<oneshot::Sender<Result<()>>>,
}

impl Runner {
    /// Carries out outputs; returns a reconnect delay if one was asked for.
    async fn apply(&mut self, ws: Option<&mut Ws>, outputs: Vec<Output>) -> Option<Duration> {
        let mut ws = ws;
        let mut reconnect = None;
        for out in outputs {
            match out {
                Output::Send(msg) => {
                    if let Some(ws) = ws.as_deref_mut() {
                        let _ = ws.send(Message::text(msg.encode())).await;
                    }
                }
                Output::Event(SignalEvent::Joined(j)) => {
                    if let Some(first) = self.first.take() {
                        let _ = first.send(Ok(()));
                    }
                    let _ = self.events.send(SignalEvent::Joined(j)).await;
                }
                Output::Event(SignalEvent::Closed(err)) => match (self.first.take(), err) {
                    (Some(first), Some(e)) => {
                        let _ = first.send(Err(e));
                    }
                    (_, err) => {
                        let _ = self.events.send(SignalEvent::Closed(err)).await;
                    }
                },
                Output::Event(e) => {
                    let _ = self.events.send(e).await;
                }
                Output::Reconnect { after } => reconnect = Some(after),
            }
        }
        reconnect
    }

    /// Waits `after` before reconnecting; a hang-up meanwhile ends the
    /// session. False when the handle is gone.
    async fn pause(
        &mut self,
        after: Duration,
        commands: &mut mpsc::Receiver<Command>,
        hangup_ack: &mut Option<oneshot::Sender<()>>,
    ) -> bool {
        let sleep = tokio::time::sleep(after);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return true,
                cmd = commands.recv() => match cmd {
                    Some(Command::Hangup(ack)) => {
                        let out = self.session.hangup();
                        self.apply(None, out).await;
                        *hangup_ack = Some(ack);
                        return true;
                    }
                    // Nothing is sent while down (the call renegotiates).
                    Some(Command::Send(_)) => {}
                    None => return false,
                },
            }
        }
    }
}

/// Why a connected socket's loop ended.
enum Exit {
    /// The session is over (hang-up or a fatal error).
    Done,
    /// The socket dropped.
    Dropped(Error),
    /// The server asked for a reconnect after this delay.
    Reconnect(Duration),
}

async fn open(link: &Link) -> Result<Ws> {
    let connect = tokio_tungstenite::connect_async(link.ws_url());
    match tokio::time::timeout(Duration::from_secs(10), connect).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(Error::WebSocket {
            server: link.server(),
            source: Some(e),
        }),
        Err(_) => Err(Error::Unreachable {
            server: link.server(),
            detail: "timed out opening the WebSocket".into(),
            source: None,
        }),
    }
}

async fn run(
    link: Link,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<SignalEvent>,
    first: oneshot::Sender<Result<()>>,
) {
    let mut r = Runner {
        session: Session::new(link.server()),
        server: link.server(),
        events,
        first: Some(first),
    };
    let mut hangup_ack: Option<oneshot::Sender<()>> = None;
    'outer: while !r.session.is_closed() {
        let mut ws = match open(&link).await {
            Ok(ws) => ws,
            Err(cause) => {
                let out = r.session.disconnected(Instant::now(), cause);
                match r.apply(None, out).await {
                    Some(after) => {
                        if !r.pause(after, &mut commands, &mut hangup_ack).await {
                            break 'outer;
                        }
                        continue;
                    }
                    None => break,
                }
            }
        };
        let out = r.session.connected(Instant::now());
        r.apply(Some(&mut ws), out).await;
        let exit = loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Text(text))) => match ServerMessage::decode(text.as_str()) {
                        Ok(msg) => {
                            let out = r.session.message(Instant::now(), msg);
                            let moved = r.apply(Some(&mut ws), out).await;
                            if r.session.is_closed() {
                                let _ = ws.close(None).await;
                                break Exit::Done;
                            }
                            if let Some(after) = moved {
                                // The server is going away and asked us back.
                                let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
                                break Exit::Reconnect(after);
                            }
                        }
                        Err(e) => tracing::debug!("ignoring a frame from the server: {e}"),
                    },
                    Some(Ok(Message::Close(_))) | None => break Exit::Dropped(Error::WebSocket {
                        server: r.server.clone(),
                        source: None,
                    }),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Exit::Dropped(Error::WebSocket {
                        server: r.server.clone(),
                        source: Some(e),
                    }),
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Send(msg)) => {
                        let out = r.session.send(msg);
                        r.apply(Some(&mut ws), out).await;
                    }
                    Some(Command::Hangup(ack)) => {
                        let out = r.session.hangup();
                        r.apply(Some(&mut ws), out).await;
                        let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
                        hangup_ack = Some(ack);
                        break Exit::Done;
                    }
                    None => {
                        let out = r.session.hangup();
                        r.apply(Some(&mut ws), out).await;
                        let _ = tokio::time::timeout(Duration::from_millis(500), ws.close(None)).await;
                        break Exit::Done;
                    }
                },
            }
        };
        let after = match exit {
            Exit::Done => None,
            Exit::Reconnect(after) => Some(after),
            Exit::Dropped(cause) => {
                let out = r.session.disconnected(Instant::now(), cause);
                r.apply(None, out).await
            }
        };
        if let Some(after) = after
            && !r.pause(after, &mut commands, &mut hangup_ack).await
        {
            break;
        }
    }
    if let Some(ack) = hangup_ack {
        let _ = ack.send(());
    }
}
