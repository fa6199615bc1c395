//! Switching cameras and microphones from the call screen: `d` (Russian
//! layout `в`) asks the call for the next camera and `a` (`ф`) for the next
//! microphone; the status line says what came of it (the device's name,
//! "only one camera", no device) for a few seconds, then clears. On
//! ratatui's test backend with virtual time, against a call that answers
//! from a script (this machine has no camera or sound card; the cycling
//! over a device list is unit-tested in `screen::switch`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use webcall_cli::screen::switch::FLASH_FOR;
use webcall_cli::screen::{
    Action, CallControl, ColorMode, Connection, DeviceKind, Input, Lang, Outcome, ScreenEvent,
    ScreenState, Switched, handle_key, run,
};

mod screen_common;
use screen_common::{Feeds, feeds};

/// Answers device switches from a script and records what was asked.
#[derive(Debug, Default, Clone)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Switched>>>,
    asked: Arc<Mutex<Vec<DeviceKind>>>,
}

impl CallControl for Scripted {
    fn set_audio_enabled(&self, _: bool) {}
    fn set_video_enabled(&self, _: bool) {}
    async fn hang_up(&self) {}
    async fn next_device(&self, kind: DeviceKind) -> Switched {
        self.asked.lock().unwrap().push(kind);
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Switched::NoDevice)
    }
}

fn key(c: char) -> Input {
    Input::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn screen_text(terminal: &Terminal<TestBackend>) -> String {
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

#[test]
fn d_and_a_switch_camera_and_microphone_on_both_layouts() {
    let press = |c: char| handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    for c in ['d', 'D', 'в', 'В'] {
        assert_eq!(press(c), Some(Action::NextCamera), "{c}");
    }
    for c in ['a', 'A', 'ф', 'Ф'] {
        assert_eq!(press(c), Some(Action::NextMicrophone), "{c}");
    }
    // With Ctrl, or on release, nothing.
    assert_eq!(
        handle_key(KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)),
        None
    );
    let mut release = KeyEvent::new(KeyCode::Char('a'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(handle_key(release), None);
}

/// Runs the screen: a connected call, then each key with the virtual time
/// to wait after it, then `q`. Returns the last screen and what the call
/// was asked.
async fn session(
    lang: Lang,
    answers: Vec<Switched>,
    script: &[(char, Duration)],
) -> (String, Vec<DeviceKind>) {
    let Feeds {
        mut inputs,
        events,
        keys,
        ..
    } = feeds();
    let mut terminal = Terminal::new(TestBackend::new(150, 30)).unwrap();
    let mut state = ScreenState::new(ColorMode::TrueColor, lang);
    let call = Scripted {
        answers: Arc::new(Mutex::new(answers.into())),
        ..Scripted::default()
    };
    let driver = async {
        events.send(ScreenEvent::PeerPresent(true)).unwrap();
        events
            .send(ScreenEvent::Connection(Connection::Connected))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for &(c, wait) in script {
            keys.send(key(c)).unwrap();
            tokio::time::sleep(wait).await;
        }
        keys.send(key('q')).unwrap();
    };
    let (outcome, ()) = tokio::join!(run(&mut terminal, &mut state, &mut inputs, &call), driver);
    assert_eq!(outcome.unwrap(), Outcome::HungUp);
    let asked = call.asked.lock().unwrap().clone();
    (screen_text(&terminal), asked)
}

const SHORT: Duration = Duration::from_millis(200);

#[tokio::test(start_paused = true)]
async fn the_status_line_names_the_new_camera() {
    let (text, asked) = session(
        Lang::En,
        vec![Switched::To("USB Camera".into())],
        &[('d', SHORT)],
    )
    .await;
    assert!(text.contains("camera: USB Camera"), "{text}");
    assert_eq!(asked, [DeviceKind::Camera]);
}

#[tokio::test(start_paused = true)]
async fn the_name_shows_only_briefly() {
    let (text, _) = session(
        Lang::En,
        vec![Switched::To("USB Camera".into())],
        &[('d', FLASH_FOR + Duration::from_secs(1))],
    )
    .await;
    assert!(!text.contains("USB Camera"), "still shown: {text}");
}

#[tokio::test(start_paused = true)]
async fn one_or_no_device_is_said_so_in_russian_too() {
    let (text, asked) = session(
        Lang::Ru,
        vec![Switched::OnlyOne, Switched::NoDevice],
        &[('в', SHORT), ('ф', SHORT)],
    )
    .await;
    // The later message replaced the earlier one.
    assert!(text.contains("микрофон не найден"), "{text}");
    assert_eq!(asked, [DeviceKind::Camera, DeviceKind::Microphone]);
    let (text, _) = session(Lang::En, vec![Switched::OnlyOne], &[('d', SHORT)]).await;
    assert!(text.contains("only one camera"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn the_key_help_names_the_switch_keys() {
    let (text, _) = session(Lang::En, vec![], &[]).await;
    assert!(text.contains(" d/a  next cam/mic"), "{text}");
}

#[test]
fn the_key_line_fits_eighty_columns_in_both_languages() {
    for (lang, hang_up) in [(Lang::En, "hang up"), (Lang::Ru, "завершить")] {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let state = ScreenState::new(ColorMode::TrueColor, lang);
        terminal
            .draw(|f| webcall_cli::screen::render(f, &state))
            .unwrap();
        let text = screen_text(&terminal);
        assert!(text.contains(hang_up), "{lang:?}: {text}");
        assert!(text.contains("d/a"), "{lang:?}: {text}");
    }
}
