//! The edge of the `webcall` data channel: a reader per peer connection's
//! channel, and one outbox pump per call. What travels is defined in
//! [`super::channel`].
//!
//! Bounds: the outbox holds at most [`CHAT_OUTBOX`] messages (the
//! application gets backpressure or [`crate::Error::ChatOutboxFull`]);
//! what is handed to the channel is held back by the peer connection's
//! send buffer limit ([`SEND_BUFFER_BYTES`]); a received message waits for
//! room in the application's event queue, and the channel is not read
//! meanwhile, so a peer that sends faster than the application reads is
//! slowed down by SCTP flow control instead of growing our memory.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use super::channel::{self, ChatMessage, Parsed};
use super::stats::Counters;
use super::{CallEvent, EventSender};

/// Chat messages that may wait for the data channel to open (or drain),
/// as in the browser.
pub const CHAT_OUTBOX: usize = 100;

/// Bytes handed to the data channel and not yet acknowledged by the other
/// side, beyond which sending waits (the outbox then fills).
pub(crate) const SEND_BUFFER_BYTES: usize = 256 * 1024;

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

/// Reads one peer connection's channel until it closes: says when it is
/// open, hands chat messages to the application, ignores the rest.
pub(crate) async fn read(
    channel: Arc<dyn DataChannel>,
    generation: u64,
    open: OpenSender,
    events: EventSender,
    counters: Arc<Counters>,
) {
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnOpen => {
                tracing::debug!("the chat channel is open");
                tokio::time::sleep(OPEN_GRACE).await;
                open.send_replace(Some(OpenChannel {
                    generation,
                    channel: channel.clone(),
                }));
            }
            DataChannelEvent::OnMessage(message) => match channel::parse(&message.data) {
                Parsed::Chat(chat) => {
                    Counters::add(&counters.recv_chat, 1);
                    events.send_waiting(CallEvent::Chat(chat)).await;
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
    forget(&open, generation);
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

/// Sends the outbox's messages in order, each once a channel is open. A
/// message the channel refuses (it closed under it) waits for the next
/// one; one it refuses for another reason (too long for the other side)
/// is dropped with a warning. Ends when the call does.
pub(crate) async fn pump(
    mut outbox: mpsc::Receiver<ChatMessage>,
    mut open: watch::Receiver<Option<OpenChannel>>,
    counters: Arc<Counters>,
) {
    loop {
        // A message leaves the outbox only once a channel is open: until
        // then all [`CHAT_OUTBOX`] of them wait there, and no more.
        if open.wait_for(Option::is_some).await.is_err() {
            return;
        }
        let Some(message) = outbox.recv().await else {
            return;
        };
        let wire = message.encode();
        loop {
            let channel = match open.wait_for(Option::is_some).await {
                Ok(current) => current.clone().expect("waited for an open channel"),
                // The engine is gone: the call is over.
                Err(_) => return,
            };
            match channel.channel.send_text(&wire).await {
                Ok(()) => {
                    Counters::add(&counters.sent_chat, 1);
                    break;
                }
                Err(e) if !matches!(e, webrtc::error::Error::ErrDataChannelClosed) => {
                    // Only a message over the other side's size limit gets
                    // here; trying again would block every later message.
                    tracing::warn!("the chat channel refused a message for good ({e}); dropped it");
                    break;
                }
                Err(e) => {
                    tracing::debug!("the chat channel refused a message ({e}); waiting for it");
                    if open.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
