//! The microphone's level meter on the status line, in the screen's loop
//! on ratatui's test backend with virtual time: the meter follows the level
//! within a redraw, and the mute key is drawn the moment it is pressed, not
//! a redraw later.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Position, Size};
use tokio::time::Instant;
use webcall_cli::screen::meter::{MeterView, MicLevel};
use webcall_cli::screen::{CallControl, ColorMode, Input, Lang, Outcome, ScreenState, run};

mod screen_common;
use screen_common::{Feeds, feeds};

/// A call that accepts everything.
struct Quiet;

impl CallControl for Quiet {
    fn set_audio_enabled(&self, _: bool) {}
    fn set_video_enabled(&self, _: bool) {}
    async fn hang_up(&self) {}
}

/// The test backend, keeping the status line of every frame drawn with
/// the (virtual) time it was drawn.
struct Recording {
    inner: TestBackend,
    frames: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Backend for Recording {
    type Error = std::convert::Infallible;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.inner.get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, p: P) -> Result<(), Self::Error> {
        self.inner.set_cursor_position(p)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.inner.size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        let buf = self.inner.buffer();
        // The status line is the second row from the bottom.
        let y = buf.area.height - 2;
        let status: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect();
        self.frames.lock().unwrap().push((Instant::now(), status));
        self.inner.flush()
    }
}

fn key(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

#[tokio::test(start_paused = true)]
async fn the_meter_follows_the_level_and_mute_shows_at_once() {
    let frames = Arc::new(Mutex::new(Vec::new()));
    let mut terminal = Terminal::new(Recording {
        inner: TestBackend::new(100, 20),
        frames: frames.clone(),
    })
    .unwrap();
    let level = MicLevel::new();
    let mut state = ScreenState::new(ColorMode::TrueColor, Lang::En);
    state.mic_level = Some(MeterView::new(level.clone()));
    let Feeds {
        mut inputs,
        events: _events,
        keys,
        ..
    } = feeds();
    let shown = |text: &str| {
        let frames = frames.lock().unwrap();
        frames
            .iter()
            .find(|(_, status)| status.contains(text))
            .map(|(at, _)| *at)
    };
    let driver = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        level.set_dbfs(-20.0);
        let loud = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        level.set_dbfs(-50.0);
        let quiet = Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pressed = Instant::now();
        keys.send(key('m')).unwrap();
        // Less than a redraw's interval: only the key can have drawn.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let muted = shown("mic off");
        keys.send(key('q')).unwrap();
        (loud, quiet, pressed, muted)
    };
    let (outcome, (loud, quiet, pressed, muted)) =
        tokio::join!(run(&mut terminal, &mut state, &mut inputs, &Quiet), driver);
    assert_eq!(outcome.unwrap(), Outcome::HungUp);

    let tick = Duration::from_millis(40);
    let at = shown("mic ▮▮▮▮▮▮▯▯").expect("the loud level was drawn");
    assert!(at >= loud && at <= loud + tick, "drawn within a redraw");
    let at = shown("mic ▮▮▯▯▯▯▯▯").expect("the quiet level was drawn");
    assert!(at >= quiet && at <= quiet + tick, "drawn within a redraw");
    assert_eq!(
        muted,
        Some(pressed),
        "muted was drawn as the key was pressed"
    );
    let frames = frames.lock().unwrap();
    let (_, last) = frames.last().unwrap();
    assert!(last.contains("mic off") && !last.contains('▮'), "{last}");
}
