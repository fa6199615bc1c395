//! The call engine: a WebRTC peer (H.264 + Opus, both directions) driven by
//! the signaling client, with pluggable media sources and sinks.
//!
//! [`join`] takes a link and [`CallOptions`] and returns a [`Call`] handle
//! and a stream of [`CallEvent`]s. The engine follows PROTOCOL.md: the
//! participant who arrives second makes the offer; the one already there
//! becomes the polite side and starts a fresh peer connection; candidates
//! that arrive early wait for their description; a dropped connection is
//! restarted (ICE restart) by the impolite side; a dropped WebSocket is
//! reopened with the resume secret, and a negotiated peer connection is
//! kept across it (and while the other side's seat is held), so a
//! signaling hiccup on either side does not stop the media.
//!
//! Each peer connection also carries the `webcall` data channel (created
//! by both sides before the first offer, PROTOCOL.md): [`Call::send_chat`]
//! sends a chat message on it, waiting in order in a bounded outbox while
//! the channel is not open; received ones come as [`CallEvent::Chat`].
//! Chat is confirmed end to end: ours that have no receipt yet go again on
//! the next connection's channel, and a copy received again comes once.
//! After every negotiation the call's verification code is worked out from
//! the two DTLS fingerprints ([`CallEvent::VerificationCode`],
//! [`CallStats::verification_code`]).
//!
//! A running call's video or audio source can be swapped for another
//! ([`Call::replace_video_source`], [`Call::replace_audio_source`]: another
//! camera or microphone) without renegotiating.
//!
//! A peer connection has two video sections: the first carries the camera,
//! the second a shared screen (PROTOCOL.md, "Screen sharing"). The engine
//! offers or accepts the second one receive-only, decodes it apart from the
//! camera into [`CallOptions::screen_sinks`], counts it in
//! [`ReceivedCounters::screen_frames_decoded`] and reports the other side's
//! `screen` messages as [`CallEvent::ScreenShare`].
//!
//! - [`sources`], [`sinks`]: synthetic and file media, counters.
//! - [`voice`]: echo cancellation and noise suppression for a microphone,
//!   with the speaker's audio as the echo reference.
//! - [`channel`]: the data channel's messages (chat, receipts, screen
//!   sharing) and their limits.
//! - [`receipts`]: which chat messages wait for their receipt (sent again
//!   on a new connection) and which were received (shown once).
//! - [`verify`]: the verification code.
//! - [`screen`]: which video section is the shared screen.
//! - [`pattern`]: the test pattern's picture code (frame number, send time).
//! - [`stats`]: [`CallStats`] and the end-of-call [`StatsReport`].
//! - [`quality`]: the call's grade (good, poor, bad) and time in each.
//! - [`probe`]: checking STUN and TURN servers before a call.
//! - [`negotiator`]: the negotiation as a state machine without IO
//!   (perfect negotiation, buffered candidates, ICE restarts, going on
//!   without the server).
//! - `engine` (private): the run loop, the edge that carries out the
//!   negotiator's outputs on the peer connection and wires up media.
//! - `peer`, `media` (private): building a peer connection; encode, send
//!   and decode.
//! - `receive` (private): the readers of incoming RTP and RTCP.
//! - `chat` (private): the data channel's readers, the outbox and the
//!   receipts.
//! - `assemble` (private): H.264 access units from RTP, within
//!   [`MAX_ACCESS_UNIT_BYTES`].
//!
//! The other side cannot make the engine hold more and more memory: every
//! queue is bounded. Signaling events wait for the run loop (backpressure
//! reaches the server's socket); incoming media that finds its decoder's
//! queue full is dropped (video then asks for a key frame); a picture that
//! grows past [`MAX_ACCESS_UNIT_BYTES`] is thrown away and a key frame asked
//! for; events for the application are dropped as [`CallEvents`] describes,
//! except chat messages, which wait for room (the data channel is not read
//! meanwhile, so SCTP slows the sender down); chat to send waits in an
//! outbox of [`CHAT_OUTBOX`] messages and a send buffer of 256 KiB.
//!
//! ```no_run
//! # async fn demo() -> webcall_core::Result<()> {
//! use webcall_core::call::{self, CallEvent, CallOptions, sources};
//! let options = CallOptions {
//!     video: Some(Box::new(sources::TestPattern::default())),
//!     audio: Some(Box::new(sources::Tone::default())),
//!     ..CallOptions::default()
//! };
//! let (call, mut events) = call::join("http://localhost:8000/r/q3V1n0cF2mXb7eYtK9aJ1w", options).await?;
//! while let Some(event) = events.recv().await {
//!     if let CallEvent::PeerLeft { .. } = event {
//!         call.hangup().await;
//!     }
//!     if let CallEvent::Ended { .. } = event {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```

mod assemble;
pub mod channel;
mod chat;
mod engine;
mod media;
pub mod negotiator;
pub mod pattern;
mod peer;
pub mod probe;
pub mod quality;
pub mod receipts;
mod receive;
pub mod screen;
pub mod sinks;
pub mod sources;
pub mod stats;
pub mod verify;
pub mod voice;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

pub use assemble::MAX_ACCESS_UNIT_BYTES;
pub use channel::ChatMessage;
pub use chat::CHAT_OUTBOX;
pub use stats::{
    CallStats, ConnectionState, LatencyStats, ReceivedCounters, SelectedPair, SentCounters,
    StatsReport,
};

use crate::error::Result;
use crate::media::{AudioSink, AudioSource, VideoFrame, VideoSink, VideoSource};
use crate::protocol::{IceServer, LeaveReason};
use crate::token::ParticipantId;

/// How a call is set up: media in and out, and network choices.
pub struct CallOptions {
    /// Outgoing video; `None` sends none (and still receives).
    pub video: Option<Box<dyn VideoSource>>,
    /// Outgoing audio; `None` sends none (and still receives).
    pub audio: Option<Box<dyn AudioSource>>,
    /// Where decoded remote video goes (the other side's camera).
    pub video_sinks: Vec<Box<dyn VideoSink>>,
    /// Where the other side's shared screen goes, decoded (PROTOCOL.md,
    /// "Screen sharing"); empty: it is still decoded and counted.
    pub screen_sinks: Vec<Box<dyn VideoSink>>,
    /// Where decoded remote audio goes.
    pub audio_sinks: Vec<Box<dyn AudioSink>>,
    /// Local addresses for ICE. Empty: every interface. Naming 127.0.0.1
    /// (or ::1) also offers loopback candidates; any entry turns mDNS off.
    pub ice_addrs: Vec<IpAddr>,
    /// STUN/TURN servers to use instead of the ones the server hands out.
    pub ice_servers: Option<Vec<IceServer>>,
    /// Target H.264 bitrate in bits per second.
    pub video_bitrate_bps: u32,
    /// Emit [`CallEvent::RemoteVideoFrame`] at most this often (`None`: never;
    /// sinks get every picture regardless).
    pub remote_frame_events: Option<Duration>,
    /// How often [`CallEvent::Stats`] is emitted.
    pub stats_interval: Duration,
    /// After the media connection drops, how long to wait before the
    /// impolite side restarts ICE.
    pub ice_restart_after: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            video: None,
            audio: None,
            video_sinks: Vec::new(),
            screen_sinks: Vec::new(),
            audio_sinks: Vec::new(),
            ice_addrs: Vec::new(),
            ice_servers: None,
            video_bitrate_bps: 1_200_000,
            remote_frame_events: None,
            stats_interval: Duration::from_secs(1),
            ice_restart_after: Duration::from_secs(3),
        }
    }
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("video", &self.video.as_ref().map(|s| s.describe()))
            .field("audio", &self.audio.as_ref().map(|s| s.describe()))
            .field("video_sinks", &self.video_sinks.len())
            .field("screen_sinks", &self.screen_sinks.len())
            .field("audio_sinks", &self.audio_sinks.len())
            .field("ice_addrs", &self.ice_addrs)
            .field("ice_servers", &self.ice_servers)
            .field("video_bitrate_bps", &self.video_bitrate_bps)
            .field("remote_frame_events", &self.remote_frame_events)
            .field("stats_interval", &self.stats_interval)
            .finish()
    }
}

/// Why a call ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EndReason {
    /// [`Call::hangup`] was called.
    HungUp,
    /// The call failed: the room expired, the seat was taken over, or the
    /// signaling server went away ([`crate::Error::ServerLost`]).
    Failed(Arc<crate::Error>),
}

/// Two failures are equal when they are the same error.
impl PartialEq for EndReason {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::HungUp, Self::HungUp) => true,
            (Self::Failed(a), Self::Failed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for EndReason {}

/// Something that happened in a call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CallEvent {
    /// We hold a seat in the room (again, after a reconnect).
    Joined {
        /// Our participant id.
        you: ParticipantId,
        /// The other participant, when already there.
        peer: Option<ParticipantId>,
        /// True when we make the offer.
        initiator: bool,
    },
    /// The other participant arrived (or came back after a reload).
    PeerJoined {
        /// Their id.
        peer: ParticipantId,
        /// True when the same participant came back.
        resumed: bool,
    },
    /// The other participant's connection to the server dropped; their
    /// seat is held for them and the media connection goes on.
    /// [`CallEvent::PeerJoined`] (resumed) follows if they come back,
    /// [`CallEvent::PeerLeft`] if they do not.
    PeerReconnecting {
        /// Their id.
        peer: ParticipantId,
    },
    /// The other participant left.
    PeerLeft {
        /// Their id.
        peer: ParticipantId,
        /// Hung up, or lost their connection.
        reason: LeaveReason,
    },
    /// The media connection changed state.
    ConnectionState(ConnectionState),
    /// The signaling WebSocket dropped; reconnecting.
    Reconnecting,
    /// The signaling server is gone for good (it shut down, or could not be
    /// reached again within [`crate::client::session::RECONNECT_GIVE_UP`])
    /// while media was flowing. The call goes on peer-to-peer, but nothing
    /// can be renegotiated: it ends with [`EndReason::Failed`] if the media
    /// connection then stays down for [`SERVER_LOST_MEDIA_GRACE`].
    ServerLost {
        /// What happened to the server, in words.
        reason: String,
    },
    /// Figures, every [`CallOptions::stats_interval`].
    Stats(Box<CallStats>),
    /// A decoded remote picture, rate-limited by [`CallOptions::remote_frame_events`].
    RemoteVideoFrame(VideoFrame),
    /// A media source or codec failed; the call goes on without it.
    MediaError(String),
    /// A chat message from the other participant (plain text: never show
    /// it as markup).
    Chat(ChatMessage),
    /// The other participant started or stopped sharing a screen or a
    /// window; while it runs its pictures go to
    /// [`CallOptions::screen_sinks`] and the camera goes on to
    /// [`CallOptions::video_sinks`]. Also `sharing: false` when the
    /// connection that carried a share is replaced.
    ScreenShare {
        /// True while the share runs.
        sharing: bool,
    },
    /// A negotiation finished: the verification code both sides should
    /// show (`125 392`, see [`verify`]). Comes after every negotiation,
    /// ICE restarts included; it changes with a new peer connection.
    VerificationCode(String),
    /// The call is over; no more events follow.
    Ended {
        /// Why.
        reason: EndReason,
    },
}

/// Once the signaling server is gone ([`CallEvent::ServerLost`]), how long
/// the media connection may stay down before the call ends.
pub const SERVER_LOST_MEDIA_GRACE: Duration = Duration::from_secs(10);

/// How many events [`CallEvents`] holds for an application that has not
/// read them yet.
pub const EVENT_QUEUE: usize = 256;

/// How long [`CallEvent::Ended`] waits for room in a full event queue.
const ENDED_WAIT: Duration = Duration::from_secs(5);

/// Sends events to the application without waiting for it, ignoring a
/// receiver that went away. The drop policy is described on [`CallEvents`].
#[derive(Debug, Clone)]
pub(crate) struct EventSender(mpsc::Sender<CallEvent>);

impl EventSender {
    pub fn send(&self, event: CallEvent) {
        let frequent = matches!(event, CallEvent::Stats(_) | CallEvent::RemoteVideoFrame(_));
        if frequent && self.0.capacity() < self.0.max_capacity() / 2 {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(ev)) = self.0.try_send(event) {
            tracing::warn!("the application is not reading call events; dropped {ev:?}");
        }
    }

    /// Sends an event that must not be lost, waiting for room as long as
    /// it takes (a receiver that went away takes anything).
    pub async fn send_waiting(&self, event: CallEvent) {
        let _ = self.0.send(event).await;
    }

    /// Sends the last event of a call, waiting a little for room.
    pub async fn send_last(&self, event: CallEvent) {
        let _ = tokio::time::timeout(ENDED_WAIT, self.0.send(event)).await;
    }
}

/// The stream of a call's events. Ends after [`CallEvent::Ended`].
///
/// It holds at most [`EVENT_QUEUE`] unread events; the call never waits
/// for the application. While the application is behind, the newest
/// [`CallEvent::Stats`] and [`CallEvent::RemoteVideoFrame`] are dropped
/// once half the queue is taken (they are superseded by the next ones),
/// which keeps room for the events that change the call's state; those are
/// dropped only when the queue is full. [`CallEvent::Chat`] and a
/// [`CallEvent::ScreenShare`] the other side announced are never dropped:
/// they wait for room, and the data channel is not read until there is. [`CallEvent::Ended`] waits up to
/// five seconds for room. An application that reads promptly loses nothing.
#[derive(Debug)]
pub struct CallEvents {
    rx: mpsc::Receiver<CallEvent>,
}

impl CallEvents {
    /// The next event; `None` once the call has ended and all were read.
    pub async fn recv(&mut self) -> Option<CallEvent> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<CallEvent> {
        self.rx.try_recv().ok()
    }
}

#[derive(Debug)]
pub(crate) enum Command {
    Hangup,
}

#[derive(Debug)]
struct Shared {
    commands: mpsc::Sender<Command>,
    outbox: mpsc::Sender<ChatMessage>,
    counters: Arc<stats::Counters>,
    video: Arc<media::SendControl>,
    audio: Arc<media::SendControl>,
    /// Where a replacement source goes; `None` when the call sends no such media.
    video_source: Option<Arc<media::Handover<dyn VideoSource>>>,
    audio_source: Option<Arc<media::Handover<dyn AudioSource>>>,
    done: watch::Receiver<bool>,
}

/// A handle on a running call. Clones control the same call.
#[derive(Debug, Clone)]
pub struct Call {
    shared: Arc<Shared>,
}

impl Call {
    /// Mutes (`false`: sends silence) or unmutes the microphone.
    pub fn set_audio_enabled(&self, enabled: bool) {
        self.shared.audio.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Turns outgoing video off (`false`: sends black) or on.
    pub fn set_video_enabled(&self, enabled: bool) {
        self.shared.video.enabled.store(enabled, Ordering::Relaxed);
        self.shared.video.key_frame.store(true, Ordering::Relaxed);
    }

    /// Sends video from `source` from now on, in place of the current one
    /// (another camera, say). The connection and its negotiated codec stay
    /// as they are: nothing is renegotiated, and the other side sees the
    /// new pictures within a frame or two (the first is a key frame; a
    /// new picture size is fine). The old source is dropped on the sending
    /// thread once the new one takes over, which closes a camera. Also
    /// brings video back after the previous source ended or failed. The
    /// camera switch ([`Call::set_video_enabled`]) applies to the new
    /// source too.
    ///
    /// Fails with [`crate::Error::NotSending`] when the call was started
    /// without video ([`CallOptions::video`] was `None`: there is nothing
    /// negotiated to send it on), and with [`crate::Error::CallEnded`]
    /// once the call is over.
    pub fn replace_video_source(&self, source: Box<dyn VideoSource>) -> Result<()> {
        if self.is_ended() {
            return Err(crate::Error::CallEnded);
        }
        let slot = self
            .shared
            .video_source
            .as_ref()
            .ok_or(crate::Error::NotSending { kind: "video" })?;
        slot.put(source);
        Ok(())
    }

    /// Sends audio from `source` from now on, in place of the current one
    /// (another microphone), without renegotiating; as
    /// [`Call::replace_video_source`]. Muting ([`Call::set_audio_enabled`])
    /// applies to the new source too.
    pub fn replace_audio_source(&self, source: Box<dyn AudioSource>) -> Result<()> {
        if self.is_ended() {
            return Err(crate::Error::CallEnded);
        }
        let slot = self
            .shared
            .audio_source
            .as_ref()
            .ok_or(crate::Error::NotSending { kind: "audio" })?;
        slot.put(source);
        Ok(())
    }

    /// A snapshot of the call's figures.
    pub fn stats(&self) -> CallStats {
        self.shared.counters.snapshot()
    }

    /// Queues a chat message for the other participant and returns it as
    /// sent (with its id and time). Messages go out in the order queued;
    /// while the data channel is not open (before the call connects, or
    /// after the other side reloads) they wait, and when [`CHAT_OUTBOX`]
    /// are waiting this waits for room.
    ///
    /// Fails with [`crate::Error::ChatEmpty`] or
    /// [`crate::Error::ChatTooLong`] for a text outside the limits
    /// ([`channel::MAX_CHAT_CHARS`] characters), and with
    /// [`crate::Error::CallEnded`] once the call is over.
    pub async fn send_chat(&self, text: impl Into<String>) -> Result<ChatMessage> {
        let message = self.new_chat(text)?;
        self.shared
            .outbox
            .send(message.clone())
            .await
            .map_err(|_| crate::Error::CallEnded)?;
        Ok(message)
    }

    /// As [`Call::send_chat`], but fails with
    /// [`crate::Error::ChatOutboxFull`] at once instead of waiting when
    /// [`CHAT_OUTBOX`] messages are already waiting.
    pub fn try_send_chat(&self, text: impl Into<String>) -> Result<ChatMessage> {
        let message = self.new_chat(text)?;
        match self.shared.outbox.try_send(message.clone()) {
            Ok(()) => Ok(message),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Err(crate::Error::ChatOutboxFull { limit: CHAT_OUTBOX })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(crate::Error::CallEnded),
        }
    }

    fn new_chat(&self, text: impl Into<String>) -> Result<ChatMessage> {
        if self.is_ended() {
            return Err(crate::Error::CallEnded);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        ChatMessage::new(text, now)
    }

    /// The verification code of the last negotiation (`125 392`), once
    /// there was one.
    pub fn verification_code(&self) -> Option<String> {
        self.shared
            .counters
            .live
            .lock()
            .expect("stats lock")
            .verification_code
            .clone()
    }

    /// True once the call has ended.
    pub fn is_ended(&self) -> bool {
        *self.shared.done.borrow()
    }

    /// Hangs up: says `bye` to the other side, closes the connection,
    /// flushes the sinks. Returns when that is done (at most a few seconds).
    pub async fn hangup(&self) {
        // Full means a hang-up is already on its way.
        let _ = self.shared.commands.try_send(Command::Hangup);
        self.ended().await;
    }

    /// Waits until the call has ended, however it ends.
    pub async fn ended(&self) {
        let mut done = self.shared.done.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), done.wait_for(|d| *d)).await;
    }
}

/// Joins the call at `link` and starts media. Returns once the seat is
/// taken; connecting to the other participant happens in the background
/// and is reported as events.
///
/// Fails with a clear [`crate::Error`] when the call cannot happen: a
/// malformed link, an unknown or expired room, a full room, a server that
/// cannot be reached or is not a webcall server.
pub async fn join(link: &str, options: CallOptions) -> Result<(Call, CallEvents)> {
    let start = Instant::now();
    let link = crate::client::Link::parse(link)?;
    let (signaling, signal_events) = crate::client::Signaling::connect(&link).await?;
    engine::start(start, signaling, signal_events, options)
}
