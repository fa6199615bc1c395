//! What the tests of the screen share: a call that records what the
//! screen asked of it, the channels and slots that feed the screen's loop
//! events, keys and pictures, a screen on ratatui's test backend, and
//! pictures of one colour.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use webcall_cli::screen::run::ScreenInputs;
use webcall_cli::screen::{
    CallControl, ColorMode, FrameSlot, Input, Lang, ScreenEvent, ScreenState,
};
use webcall_core::media::{VideoFrame, rgb_to_yuv};

/// Records what the screen asked of the call.
#[derive(Debug, Default, Clone)]
pub struct Recorder(pub Arc<Mutex<Vec<String>>>);

impl CallControl for Recorder {
    fn set_audio_enabled(&self, enabled: bool) {
        self.0.lock().unwrap().push(format!("audio {enabled}"));
    }
    fn set_video_enabled(&self, enabled: bool) {
        self.0.lock().unwrap().push(format!("video {enabled}"));
    }
    async fn hang_up(&self) {
        self.0.lock().unwrap().push("hang up".into());
    }
    fn send_chat(&self, text: &str) -> Result<(), String> {
        if text.chars().count() > 4000 {
            return Err("too long".into());
        }
        self.0.lock().unwrap().push(format!("chat {text}"));
        Ok(())
    }
}

/// A screen of `width` x `height` cells and what feeds its loop.
pub struct Rig {
    pub terminal: Terminal<TestBackend>,
    pub state: ScreenState,
    pub inputs: ScreenInputs,
    pub events: mpsc::UnboundedSender<ScreenEvent>,
    pub keys: mpsc::UnboundedSender<Input>,
    /// The slot the other side's pictures go into.
    pub remote: FrameSlot,
}

/// What feeds a screen's loop, and the ends a test drives it through.
pub struct Feeds {
    pub inputs: ScreenInputs,
    pub events: mpsc::UnboundedSender<ScreenEvent>,
    pub keys: mpsc::UnboundedSender<Input>,
    /// The slot the other side's pictures go into.
    pub remote: FrameSlot,
    /// The slot this side's own pictures go into.
    pub self_view: FrameSlot,
}

/// Fresh channels and picture slots for a screen's loop, with no duration.
pub fn feeds() -> Feeds {
    let (events, event_rx) = mpsc::unbounded_channel();
    let (keys, input_rx) = mpsc::unbounded_channel();
    let (remote, self_view) = (FrameSlot::new(), FrameSlot::new());
    Feeds {
        inputs: ScreenInputs {
            events: event_rx,
            input: input_rx,
            remote: remote.clone(),
            self_view: self_view.clone(),
            screen: FrameSlot::new(),
            duration: None,
        },
        events,
        keys,
        remote,
        self_view,
    }
}

/// A screen of `width` x `height` cells in English with true colour.
pub fn rig(width: u16, height: u16) -> Rig {
    let Feeds {
        inputs,
        events,
        keys,
        remote,
        ..
    } = feeds();
    Rig {
        terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
        state: ScreenState::new(ColorMode::TrueColor, Lang::En),
        inputs,
        events,
        keys,
        remote,
    }
}

/// A picture of one colour.
pub fn plain(width: u32, height: u32, [r, g, b]: [u8; 3]) -> VideoFrame {
    let (w, h) = (width as usize, height as usize);
    let [y, u, v] = rgb_to_yuv(r, g, b);
    let mut data = vec![y; w * h];
    data.extend(std::iter::repeat_n(u, w * h / 4));
    data.extend(std::iter::repeat_n(v, w * h / 4));
    VideoFrame::from_i420(width, height, data, Duration::ZERO).unwrap()
}

/// The screen's text, row by row.
pub fn screen_text(terminal: &Terminal<TestBackend>) -> String {
    let buf = terminal.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}
