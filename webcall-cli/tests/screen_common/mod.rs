//! What the tests of the screen's loop share: a call that records what the
//! screen asked of it, and a screen on ratatui's test backend with the
//! channels that feed it events, keys and pictures.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;
use webcall_cli::screen::run::ScreenInputs;
use webcall_cli::screen::{
    CallControl, ColorMode, FrameSlot, Input, Lang, ScreenEvent, ScreenState,
};

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

/// A screen of `width` x `height` cells in English with true colour.
pub fn rig(width: u16, height: u16) -> Rig {
    let (events, event_rx) = mpsc::unbounded_channel();
    let (keys, input_rx) = mpsc::unbounded_channel();
    let remote = FrameSlot::new();
    Rig {
        terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
        state: ScreenState::new(ColorMode::TrueColor, Lang::En),
        inputs: ScreenInputs {
            events: event_rx,
            input: input_rx,
            remote: remote.clone(),
            self_view: FrameSlot::new(),
            screen: FrameSlot::new(),
            duration: None,
        },
        events,
        keys,
        remote,
    }
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
