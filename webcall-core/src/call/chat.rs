//! The edge of the `webcall` data channel: a reader per peer connection's
//! channel, and one outbox pump per call. What travels is defined in
//! [`super::channel`]; which messages wait for a receipt, in
//! [`super::receipts`].
//!
//! Every chat message received is confirmed with a `chat_received`; ours
//! stay in [`Unconfirmed`] until confirmed and are sent again, in order,
//! when a new peer connection's channel opens (a reload on the other side
//! loses what was in flight on the old one). A copy received again is
//! confirmed again but not shown twice ([`Seen`]).
//!
//! Bounds: the outbox holds at most [`CHAT_OUTBOX`] messages (the
//! application gets backpressure or [`crate::Error::ChatOutboxFull`]);
//! what is handed to the channel is held back by the peer connection's
//! send buffer limit ([`SEND_BUFFER_BYTES`]); a received message waits for
//! room in the application's event queue, and the channel is not read
//! meanwhile, so a peer that sends faster than the application reads is
//! slowed down by SCTP flow control instead of growing our memory.
//! Receipts to send wait in a queue of [`RECEIPTS_WAITING`]; past that
//! one is dropped (its message then comes once more, on the next channel,
//! and is not shown twice). Readers never wait on sending.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use super::channel::{self, ChatMessage, Parsed};
use super::receipts::{Seen, Unconfirmed};
use super::stats::Counters;
use super::{CallEvent, EventSender};

/// Chat messages that may wait for the data channel to open (or drain),
/// as in the browser.
pub const CHAT_OUTBOX: usize = 100;

/// Bytes handed to the data channel and not yet acknowledged by the other
/// side, beyond which sending waits (the outbox then fills).
pub(crate) const SEND_BUFFER_BYTES: usize = 256 * 1024;

/// Receipts waiting to be sent; past this, one is dropped.
pub(crate) const RECEIPTS_WAITING: usize = 1024;

/// How long after the channel opens on our side the first message waits.
///
/// Works around a race in webrtc-rs 0.21 when both ends are webrtc-rs:
/// the side that answered is the SCTP server, and its channel opens when
/// the association's COOKIE-ECHO arrives. Messages it sends at once travel
/// with (or right behind) its COOKIE-ACK, and the other side reads them in
/// the same pass that completes its handshake, before its negotiated
/// channel is opened: they are dropped there ("data channel not existed"),
/// and SCTP does not send them again. Waiting a little lets the other side
/// open its channel first. Browsers open negotiated channels at creation.
pub(crate) const OPEN_GRACE: Duration = Duration::from_millis(100);

/// The open channel of the current peer connection, if any.
#[derive(Clone)]
pub(crate) struct OpenChannel {
    pub generation: u64,
    pub channel: Arc<dyn DataChannel>,
}

/// Where the readers say which channel is open.
pub(crate) type OpenSender = watch::Sender<Option<OpenChannel>>;

/// Our messages waiting for their receipt, and the ids received: one per
/// call, across its peer connections.
#[derive(Default)]
pub(crate) struct Ledger {
    unconfirmed: Mutex<Unconfirmed>,
    seen: Mutex<Seen>,
}

impl Ledger {
    fn unconfirmed(&self) -> std::sync::MutexGuard<'_, Unconfirmed> {
        self.unconfirmed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the engine hands each channel reader: where to say the channel is
/// open, the ledger, and the queue of receipts for the pump to send.
#[derive(Clone)]
pub(crate) struct Link {
    pub open: OpenSender,
    ledger: Arc<Ledger>,
    receipts: mpsc::Sender<String>,
}

/// The pump's ends of a [`Link`].
pub(crate) struct PumpEnds {
    open: watch::Receiver<Option<OpenChannel>>,
    ledger: Arc<Ledger>,
    receipts: mpsc::Receiver<String>,
}

/// A link for the readers and the ends for [`pump`].
pub(crate) fn link() -> (Link, PumpEnds) {
    let (open_tx, open_rx) = watch::channel(None);
    let (receipts_tx, receipts_rx) = mpsc::channel(RECEIPTS_WAITING);
    let ledger = Arc::new(Ledger::default());
    (
        Link {
            open: open_tx,
            ledger: ledger.clone(),
            receipts: receipts_tx,
        },
        PumpEnds {
            open: open_rx,
            ledger,
            receipts: receipts_rx,
        },
    )
}

/// Reads one peer connection's channel until it closes: says when it is
/// open, hands chat messages to the application (once each) and queues
/// their receipts, takes receipts of ours, ignores the rest.
pub(crate) async fn read(
    channel: Arc<dyn DataChannel>,
    generation: u64,
    link: Link,
    events: EventSender,
    counters: Arc<Counters>,
) {
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                tracing::debug!("the chat channel is open");
                tokio::time::sleep(OPEN_GRACE).await;
                link.open.send_replace(Some(OpenChannel {
                    generation,
                    channel: channel.clone(),
                }));
            }
            DataChannelEvent::OnMessage(message) => match channel::parse(&message.data) {
                Parsed::Chat(chat) => {
                    // Every copy is confirmed, so the sender stops keeping it.
                    if link.receipts.try_send(chat.id.clone()).is_err() {
                        tracing::debug!("too many receipts waiting; dropped one");
                    }
                    if link.ledger.seen().first_time(&chat.id) {
                        Counters::add(&counters.recv_chat, 1);
                        events.send_waiting(CallEvent::Chat(chat)).await;
                    } else {
                        tracing::debug!("a chat message came again; shown once");
                    }
                }
                Parsed::ChatReceived { id } => {
                    link.ledger.unconfirmed().confirmed(&id);
                }
                Parsed::Screen { sharing } => {
                    let was = counters.screen_sharing.swap(sharing, Ordering::Relaxed);
                    if was != sharing {
                        events
                            .send_waiting(CallEvent::ScreenShare { sharing })
                            .await;
                    }
                }
                Parsed::Ignored(why) => {
                    tracing::debug!("ignored a data channel message ({why:?})");
                }
            },
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    forget(&link.open, generation);
}

/// Says that the channel of peer connection `generation` is no longer open.
pub(crate) fn forget(open: &OpenSender, generation: u64) {
    open.send_if_modified(|current| {
        if current.as_ref().is_some_and(|c| c.generation == generation) {
            *current = None;
            true
        } else {
            false
        }
    });
}

/// Sends, on whichever channel is open: first, on each new channel, our
/// messages still waiting for their receipt; then receipts and the
/// outbox's messages in order. A message the channel refuses because it
/// closed stays unconfirmed and goes on the next channel; one it refuses
/// for another reason (too long for the other side) is dropped with a
/// warning. Ends when the call does.
pub(crate) async fn pump(
    mut outbox: mpsc::Receiver<ChatMessage>,
    ends: PumpEnds,
    counters: Arc<Counters>,
) {
    let PumpEnds {
        mut open,
        ledger,
        mut receipts,
    } = ends;
    // The channel our unconfirmed messages were last sent on.
    let mut caught_up: Option<u64> = None;
    loop {
        // A message leaves the outbox only once a channel is open: until
        // then all [`CHAT_OUTBOX`] of them wait there, and no more.
        let current = match open.wait_for(Option::is_some).await {
            Ok(current) => current.clone().expect("waited for an open channel"),
            // The engine is gone: the call is over.
            Err(_) => return,
        };
        if caught_up != Some(current.generation) {
            let again = ledger.unconfirmed().to_send_again();
            if !again.is_empty() {
                tracing::debug!(
                    count = again.len(),
                    "sending again the chat messages not yet confirmed"
                );
            }
            if !send_all(&current, again.iter().map(ChatMessage::encode)).await {
                // Closed already: wait for the next channel.
                let _ = open.changed().await;
                continue;
            }
            caught_up = Some(current.generation);
        }
        tokio::select! {
            biased;
            changed = open.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some(id) = receipts.recv() => {
                // A receipt lost with a closing channel costs only a copy
                // of the message, on the next channel.
                let _ = current
                    .channel
                    .send_text(&channel::encode_chat_received(&id))
                    .await;
            }
            message = outbox.recv() => {
                let Some(message) = message else { return };
                Counters::add(&counters.sent_chat, 1);
                if let Some(old) = ledger.unconfirmed().sent(message.clone()) {
                    tracing::debug!(id = %old.id, "too many chat messages unconfirmed; forgot the oldest");
                }
                match current.channel.send_text(&message.encode()).await {
                    Ok(()) => {}
                    Err(webrtc::error::Error::ErrDataChannelClosed) => {
                        tracing::debug!("the chat channel closed under a message; it goes on the next one");
                        let _ = open.changed().await;
                    }
                    Err(e) => {
                        // Only a message over the other side's size limit
                        // gets here; trying again would block every later
                        // message.
                        tracing::warn!("the chat channel refused a message for good ({e}); dropped it");
                        ledger.unconfirmed().confirmed(&message.id);
                    }
                }
            }
        }
    }
}

/// Sends `texts` in order on `current`; false when the channel closed
/// under them.
async fn send_all(current: &OpenChannel, texts: impl Iterator<Item = String>) -> bool {
    for text in texts {
        match current.channel.send_text(&text).await {
            Ok(()) => {}
            Err(webrtc::error::Error::ErrDataChannelClosed) => return false,
            Err(e) => tracing::warn!("the chat channel refused a message sent again ({e})"),
        }
    }
    true
}
