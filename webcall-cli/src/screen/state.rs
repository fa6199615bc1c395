//! What the call screen shows: plain data, updated from the call's events.

use std::collections::VecDeque;
use std::time::Duration;

use webcall_core::media::VideoFrame;

use super::i18n::Lang;
use super::palette::ColorMode;
use super::pixels::Graphics;
use super::quality::QualityView;

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

/// Chat messages kept for the screen; older ones are forgotten.
pub const CHAT_HISTORY: usize = 50;

/// One chat message on the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// True for a message this side sent.
    pub mine: bool,
    /// The text, as sent (escaped when drawn).
    pub text: String,
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
    /// The level meter of the audio sent; `None`: no audio is sent.
    pub mic_level: Option<super::meter::MeterView>,
    /// The camera is off.
    pub camera_off: bool,
    /// A one-line message (a device failed, a key did something).
    pub notice: Option<String>,
    /// How to write colours.
    pub color: ColorMode,
    /// The language of the text.
    pub lang: Lang,
    /// The call's verification code (`125 392`), once negotiated.
    pub verification_code: Option<String>,
    /// The latest chat messages, oldest first, at most [`CHAT_HISTORY`].
    pub chat: VecDeque<ChatLine>,
    /// The chat message being typed, while the input line is open.
    pub chat_input: Option<String>,
    /// The latest picture of the other side's shared screen.
    pub remote_screen: Option<VideoFrame>,
    /// True while the other side shares its screen: the screen is drawn
    /// large and the camera small.
    pub screen_sharing: bool,
    /// The call's quality grade and details, once stats arrive.
    pub quality: Option<QualityView>,
    /// The quality details box is open (key `i`).
    pub show_details: bool,
    /// How pictures are drawn: half blocks into cells, or images by a
    /// terminal graphics protocol (then the cells under them stay blank).
    pub graphics: Graphics,
    /// The self-view is shown in its corner (key `s`); kept for the call.
    pub show_self_view: bool,
    /// The help overlay listing every key is open (key `?`).
    pub show_help: bool,
    /// How long the call has been connected (since it first connected);
    /// `None` before that. The screen's loop keeps it current.
    pub call_time: Option<Duration>,
    /// Set when the call is over: the screen shows only the end screen.
    pub ended: Option<super::end::EndView>,
    /// Pictures not drawn because the terminal was slower than the video.
    dropped_frames: u64,
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
            mic_level: None,
            camera_off: false,
            notice: None,
            color,
            lang,
            verification_code: None,
            chat: VecDeque::new(),
            chat_input: None,
            remote_screen: None,
            screen_sharing: false,
            quality: None,
            show_details: false,
            graphics: Graphics::Blocks,
            show_self_view: true,
            show_help: false,
            call_time: None,
            ended: None,
            dropped_frames: 0,
        }
    }

    /// Pictures not drawn because the terminal (or the image encoder) was
    /// slower than the video: newer pictures replaced them.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }

    /// Counts `n` more dropped pictures.
    pub fn count_dropped(&mut self, n: u64) {
        self.dropped_frames += n;
    }

    /// The other side's shared screen, while it shares and a picture of it
    /// has come on a connected call.
    pub fn shared_screen(&self) -> Option<&VideoFrame> {
        self.remote_screen
            .as_ref()
            .filter(|_| self.screen_sharing && self.connection == Connection::Connected)
    }

    /// The picture that fills the video area: the shared screen while
    /// there is one, else the other side's camera.
    pub fn main_picture(&self) -> Option<&VideoFrame> {
        self.shared_screen().or(self.remote.as_ref())
    }

    /// Adds a chat message to the history, forgetting the oldest past
    /// [`CHAT_HISTORY`].
    pub fn push_chat(&mut self, mine: bool, text: String) {
        if self.chat.len() == CHAT_HISTORY {
            self.chat.pop_front();
        }
        self.chat.push_back(ChatLine { mine, text });
    }

    /// A fresh state with colours from `COLORTERM` and language from the locale.
    pub fn from_env() -> Self {
        Self::new(ColorMode::from_env(), Lang::from_env())
    }
}
