//! What the call screen shows: plain data, updated from the call's events.

use std::time::Duration;

use webcall_core::media::VideoFrame;

use super::i18n::Lang;
use super::palette::ColorMode;

/// Where the call stands, as the screen names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Talking to the server, not yet in the room.
    Joining,
    /// In the room, alone.
    Waiting,
    /// The other side is there; media is being set up.
    Connecting,
    /// Media flows.
    Connected,
    /// The link dropped; trying again.
    Reconnecting,
    /// The other side hung up or went away.
    PeerLeft,
    /// This side hung up, or the call is over.
    Ended,
    /// The call could not be set up or was lost.
    Failed,
}

/// Everything the screen draws. Rendering reads it and nothing else.
#[derive(Debug, Clone)]
pub struct ScreenState {
    /// The latest picture from the other side.
    pub remote: Option<VideoFrame>,
    /// The latest picture this side sends.
    pub self_view: Option<VideoFrame>,
    /// Where the call stands.
    pub connection: Connection,
    /// Whether the other side is in the room.
    pub peer_present: bool,
    /// Round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// Bitrate received, in bits per second.
    pub bitrate_in: Option<u64>,
    /// Bitrate sent, in bits per second.
    pub bitrate_out: Option<u64>,
    /// Frames per second of the remote video.
    pub frame_rate: Option<f64>,
    /// Fraction of packets lost, 0.0 to 1.0.
    pub packet_loss: Option<f64>,
    /// The microphone is muted.
    pub mic_muted: bool,
    /// The camera is off.
    pub camera_off: bool,
    /// A one-line message (a device failed, a key did something).
    pub notice: Option<String>,
    /// How to write colours.
    pub color: ColorMode,
    /// The language of the text.
    pub lang: Lang,
}

impl ScreenState {
    /// A fresh state: joining, nothing measured, colours and language from the
    /// given settings.
    pub fn new(color: ColorMode, lang: Lang) -> Self {
        Self {
            remote: None,
            self_view: None,
            connection: Connection::Joining,
            peer_present: false,
            rtt: None,
            bitrate_in: None,
            bitrate_out: None,
            frame_rate: None,
            packet_loss: None,
            mic_muted: false,
            camera_off: false,
            notice: None,
            color,
            lang,
        }
    }

    /// A fresh state with colours from `COLORTERM` and language from the locale.
    pub fn from_env() -> Self {
        Self::new(ColorMode::from_env(), Lang::from_env())
    }
}
