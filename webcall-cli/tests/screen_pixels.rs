//! The screen's loop drawing pictures as sixel images on ratatui's test
//! backend, with the painter's output captured: pictures that arrive in
//! their slots go through the encoder thread and come out as sixel images,
//! each inside one synchronized update; a resize draws them again; the
//! cells under them stay blank; `q` still hangs up.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use webcall_cli::screen::painter::Painter;
use webcall_cli::screen::pixels::CellSize;
use webcall_cli::screen::render::picture_areas;
use webcall_cli::screen::run::run_with;
use webcall_cli::screen::{
    CallControl, ColorMode, Connection, Graphics, Input, Lang, Outcome, ScreenEvent, ScreenState,
};
use webcall_core::call::sources::TestPattern;

mod screen_common;
use screen_common::{Feeds, feeds};

const WAIT: Duration = Duration::from_secs(30);

struct Quiet;

impl CallControl for Quiet {
    fn set_audio_enabled(&self, _: bool) {}
    fn set_video_enabled(&self, _: bool) {}
    async fn hang_up(&self) {}
}

/// What the painter wrote to "the terminal".
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Sixel images written, each checked to lie inside one synchronized update.
fn sixel_images(out: &str) -> usize {
    let mut images = 0;
    for update in out.split("\x1b[?2026h").skip(1) {
        let (inside, _) = update
            .split_once("\x1b[?2026l")
            .expect("every update is ended");
        images += inside.matches("\x1bP").count();
    }
    assert_eq!(
        images,
        out.matches("\x1bP").count(),
        "an image outside a synchronized update"
    );
    images
}

async fn wait_for(out: &Shared, what: &str, done: impl Fn(&str) -> bool) {
    let start = Instant::now();
    while !done(&out.text()) {
        assert!(start.elapsed() < WAIT, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_become_sixel_images_inside_synchronized_updates() {
    let out = Shared::default();
    let cell = CellSize {
        width: 8,
        height: 16,
    };
    let mut painter = Painter::new(Graphics::Sixel, Box::new(out.clone()), cell);
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let mut state = ScreenState::new(ColorMode::TrueColor, Lang::En);
    state.graphics = Graphics::Sixel;
    let Feeds {
        mut inputs,
        events,
        keys,
        remote,
        self_view,
    } = feeds();
    events.send(ScreenEvent::PeerPresent(true)).unwrap();
    events
        .send(ScreenEvent::Connection(Connection::Connected))
        .unwrap();
    let pattern = TestPattern::default();
    remote.put(pattern.render(0, Duration::ZERO));
    self_view.put(pattern.render(1, Duration::ZERO));

    let script = async {
        wait_for(&out, "the remote picture and the self-view", |o| {
            sixel_images(o) >= 2
        })
        .await;
        let before = sixel_images(&out.text());
        keys.send(Input::Resize).unwrap();
        wait_for(&out, "the pictures drawn again after a resize", |o| {
            sixel_images(o) >= before + 2
        })
        .await;
        keys.send(Input::Key(KeyEvent::new(
            KeyCode::Char('q'),
            KeyModifiers::NONE,
        )))
        .unwrap();
    };
    let (outcome, ()) = tokio::join!(
        run_with(
            &mut terminal,
            &mut state,
            &mut inputs,
            &Quiet,
            Some(&mut painter)
        ),
        script
    );
    assert_eq!(outcome.unwrap(), Outcome::HungUp);
    let text = out.text();
    // The remote image first, then the self-view over it.
    let first = text.find("\x1bP").unwrap();
    let area = picture_areas(terminal.backend().buffer().area, &state)
        .remote
        .unwrap();
    assert!(
        text[..first].ends_with(&format!("\x1b[{};{}H", area.y + 1, area.x + 1)),
        "the image starts at its cells"
    );
    // Under the picture the cells are blank (the image shows there).
    let buf = terminal.backend().buffer();
    assert_eq!(buf[(area.x + area.width / 2, area.y + 1)].symbol(), " ");
    assert!(!format!("{buf:?}").contains('▀'), "no half blocks");
}
