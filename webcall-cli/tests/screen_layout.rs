//! The call screen's layout on ratatui's test backend: 80x24, 40x12 and a
//! terminal too small (30x8); without colour; the help overlay in both
//! languages; the self-view toggle; the status line by priority with the
//! call's duration; the end screen for each reason; and, in the screen's
//! loop with paused time, `?` and Esc, `s`, the clock, and the other side
//! hanging up.

use std::sync::Arc;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use tokio::sync::mpsc;
use webcall_cli::screen::end::{self, EndView, EndWhy};
use webcall_cli::screen::render::picture_areas;
use webcall_cli::screen::video::HALF_BLOCK;
use webcall_cli::screen::{
    Action, ColorMode, Connection, Input, Lang, Outcome, ScreenEvent, ScreenState, handle_help_key,
    handle_key, render, run,
};
use webcall_core::call::quality::{Grade, MediaPath, TimeInGrades};
use webcall_core::call::{CallStats, EndReason};
use webcall_core::protocol::ErrorCode;

mod screen_common;
use screen_common::{Recorder, Rig, plain, rig, screen_text};

/// A connected call with both pictures, a code, a grade and a minute gone.
fn busy(lang: Lang, color: ColorMode) -> ScreenState {
    let mut state = ScreenState::new(color, lang);
    state.connection = Connection::Connected;
    state.peer_present = true;
    state.remote = Some(plain(64, 48, [200, 40, 40]));
    state.self_view = Some(plain(64, 48, [0, 255, 0]));
    state.verification_code = Some("125 392".into());
    state.call_time = Some(Duration::from_secs(65));
    state.rtt = Some(Duration::from_millis(12));
    state.bitrate_in = Some(1_500_000);
    state.bitrate_out = Some(800_000);
    state.frame_rate = Some(30.0);
    state.packet_loss = Some(0.01);
    state.quality = Some(webcall_cli::screen::quality::QualityView {
        grade: Some(Grade::Good),
        ..Default::default()
    });
    state
}

fn draw(width: u16, height: u16, state: &ScreenState) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| render(f, state)).unwrap();
    terminal.backend().buffer().clone()
}

fn row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

fn text(buf: &Buffer) -> String {
    (0..buf.area.height).map(|y| row(buf, y) + "\n").collect()
}

/// Cells of the picture whose fg is near `rgb`.
fn cells_coloured(buf: &Buffer, rgb: [u8; 3]) -> usize {
    buf.content
        .iter()
        .filter(|c| match c.fg {
            Color::Rgb(r, g, b) => {
                [r, g, b]
                    .iter()
                    .zip(rgb)
                    .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() < 20)
                    && c.symbol() == HALF_BLOCK
            }
            _ => false,
        })
        .count()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

#[test]
fn at_80x24_everything_is_there() {
    let buf = draw(80, 24, &busy(Lang::En, ColorMode::TrueColor));
    let status = row(&buf, 22);
    for want in ["● connected", "1:05", "quality good", "code 125 392"] {
        assert!(status.contains(want), "{want:?} missing: {status:?}");
    }
    let keys = row(&buf, 23);
    assert!(keys.contains("? ") && keys.contains("help"), "{keys:?}");
    assert!(keys.contains("hang up"), "{keys:?}");
    assert!(
        cells_coloured(&buf, [200, 40, 40]) > 200,
        "the remote picture"
    );
    assert!(cells_coloured(&buf, [0, 255, 0]) > 20, "the self-view");
    // Nothing of the picture under the two text rows.
    assert!(!status.contains(HALF_BLOCK) && !keys.contains(HALF_BLOCK));
}

#[test]
fn at_40x12_the_screen_is_still_usable_in_both_languages() {
    for (lang, state_word, help) in [
        (Lang::En, "connected", "help"),
        (Lang::Ru, "соединено", "справка"),
    ] {
        let mut state = busy(lang, ColorMode::TrueColor);
        state.notice = Some("a long notice that cannot fit in forty columns".into());
        let buf = draw(40, 12, &state);
        let all = text(&buf);
        assert!(
            cells_coloured(&buf, [200, 40, 40]) > 50,
            "{lang:?}: the picture:\n{all}"
        );
        let status = row(&buf, 10);
        assert!(status.contains(state_word), "{lang:?}: {status:?}");
        assert!(status.contains("1:05"), "{lang:?}: {status:?}");
        assert!(status.contains("▮▮▮"), "{lang:?}: the grade {status:?}");
        assert!(status.contains("125 392"), "{lang:?}: the code {status:?}");
        // What does not fit goes whole, never half a figure: no `Mbit/`.
        assert!(!status.contains("Mbit"), "{lang:?}: {status:?}");
        let keys = row(&buf, 11);
        assert!(
            keys.contains(" ? ") && keys.contains(help),
            "{lang:?}: {keys:?}"
        );
        assert!(!status.contains(HALF_BLOCK) && !keys.contains(HALF_BLOCK));
        // The self-view still sits over the picture's corner.
        assert!(
            cells_coloured(&buf, [0, 255, 0]) > 10,
            "{lang:?}: self-view:\n{all}"
        );
    }
}

#[test]
fn the_status_line_drops_the_least_important_first() {
    let mut state = busy(Lang::En, ColorMode::TrueColor);
    state.mic_muted = true;
    let wide = row(&draw(160, 20, &state), 18);
    for want in [
        "connected",
        "1:05",
        "quality good",
        "rtt 12 ms",
        "↓1.5 Mbit/s",
        "30 fps",
        "loss 1.0%",
        "mic off",
        "code 125 392",
    ] {
        assert!(wide.contains(want), "{want:?}: {wide:?}");
    }
    // 50 columns: the figures go, the grade keeps its bars, the state,
    // time, muted mic and code stay.
    let narrow = row(&draw(50, 20, &state), 18);
    assert_eq!(
        narrow.trim_end(),
        "● connected  1:05  ▮▮▮  mic off  code 125 392",
        "{narrow:?}"
    );
    // 30 columns: what matters most.
    let narrow = row(&draw(32, 20, &state), 18);
    assert_eq!(
        narrow.trim_end(),
        "● connected  1:05  mic off",
        "{narrow:?}"
    );
    // An hour in: h:mm:ss.
    state.call_time = Some(Duration::from_secs(3600 + 2 * 60 + 3));
    assert!(row(&draw(80, 20, &state), 18).contains("1:02:03"));
}

#[test]
fn a_terminal_too_small_says_so_in_both_languages() {
    for (lang, want) in [
        (Lang::En, "terminal too small"),
        (Lang::Ru, "окно терминала слишком маленькое"),
    ] {
        let buf = draw(30, 8, &busy(lang, ColorMode::TrueColor));
        let all = text(&buf);
        // Wrapped at word boundaries, so look for the words.
        let words: String = all.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(want), "{lang:?}:\n{all}");
        assert!(words.contains("32x10"), "{lang:?}:\n{all}");
        assert!(!all.contains(HALF_BLOCK), "no picture:\n{all}");
        let areas = picture_areas(Rect::new(0, 0, 30, 8), &busy(lang, ColorMode::TrueColor));
        assert_eq!(areas, Default::default(), "no terminal images either");
    }
    // Even a tiny window gets no panic and no garbage.
    for (w, h) in [(1, 1), (5, 2), (31, 40), (200, 9)] {
        let all = text(&draw(w, h, &busy(Lang::En, ColorMode::TrueColor)));
        assert!(!all.contains(HALF_BLOCK), "{w}x{h}:\n{all}");
    }
}

#[test]
fn without_colour_no_cell_has_one() {
    let mut state = busy(Lang::En, ColorMode::Mono);
    state.mic_muted = true;
    state.show_details = true;
    state.push_chat(false, "hello".into());
    for (w, h) in [(80, 24), (40, 12), (30, 8)] {
        let buf = draw(w, h, &state);
        for (i, cell) in buf.content.iter().enumerate() {
            assert_eq!(
                (cell.fg, cell.bg),
                (Color::Reset, Color::Reset),
                "{w}x{h}: cell {i} ({:?}) has a colour",
                cell.symbol()
            );
            assert_ne!(cell.symbol(), HALF_BLOCK, "{w}x{h}: a half block");
        }
    }
    let buf = draw(80, 24, &state);
    let all = text(&buf);
    // The picture as a ramp of characters; keys in reverse video; the
    // state and the muted microphone in bold.
    let ramp = all.chars().filter(|c| ":-=+*#%@".contains(*c)).count();
    assert!(ramp > 300, "{ramp} ramp characters:\n{all}");
    assert!(
        buf.content
            .iter()
            .any(|c| c.modifier.contains(Modifier::REVERSED)),
        "keys in reverse"
    );
    let status_y = 22;
    let bold: String = (0..80)
        .filter(|&x| buf[(x, status_y)].modifier.contains(Modifier::BOLD))
        .map(|x| buf[(x, status_y)].symbol())
        .collect();
    assert!(
        bold.contains("connected") && bold.contains("mic off"),
        "{bold:?}"
    );
    // The help and the end screen are colourless too.
    state.show_help = true;
    assert!(
        draw(80, 24, &state)
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
    state.ended = Some(EndView {
        why: EndWhy::YouHungUp,
        talked: Some(Duration::from_secs(5)),
        quality: Some(("good".into(), Some(Grade::Good))),
        path: Some("direct"),
    });
    assert!(
        draw(80, 24, &state)
            .content
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
}

#[test]
fn the_help_lists_every_key_in_both_languages() {
    let en = [
        "mute or unmute the microphone",
        "turn the camera off or on",
        "switch to the next camera",
        "switch to the next microphone",
        "show or hide your own picture",
        "type a chat message",
        "show or hide the quality details",
        "this help",
        "hang up",
        "q, Esc, Ctrl-C",
        "c, Enter",
        "any key closes this help",
    ];
    let ru = [
        "выключить или включить микрофон",
        "выключить или включить камеру",
        "следующая камера",
        "следующий микрофон",
        "показать или скрыть своё видео",
        "написать в чат",
        "подробности о качестве",
        "эта справка",
        "завершить звонок",
        "s (ы)",
        "? (,)",
        "любая клавиша закрывает справку",
    ];
    for (lang, words) in [(Lang::En, &en), (Lang::Ru, &ru)] {
        let mut state = busy(lang, ColorMode::TrueColor);
        state.show_help = true;
        let all = text(&draw(80, 24, &state));
        for want in words.iter() {
            assert!(all.contains(want), "{lang:?}: {want:?} missing:\n{all}");
        }
        // Pictures stay away while the help is open (terminal images too).
        assert_eq!(
            picture_areas(Rect::new(0, 0, 80, 24), &state),
            Default::default()
        );
        // 40x12: every key is still there, by its first name.
        let small = text(&draw(40, 12, &state));
        for (k, _) in lang.layout().help_keys {
            let first = k.split(',').next().unwrap();
            assert!(small.contains(first), "{lang:?} 40x12: {first:?}:\n{small}");
        }
    }
}

#[test]
fn keys_open_the_help_and_toggle_the_self_view() {
    for c in ['?', ','] {
        assert_eq!(handle_key(key(c)), Some(Action::ToggleHelp), "{c:?}");
    }
    assert_eq!(
        handle_key(KeyEvent::new(KeyCode::F(1), KeyModifiers::NONE)),
        Some(Action::ToggleHelp)
    );
    for c in ['s', 'S', 'ы', 'Ы'] {
        assert_eq!(handle_key(key(c)), Some(Action::ToggleSelfView), "{c:?}");
    }
    // With the help open any key closes it; Esc and q do not hang up.
    let esc = KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE);
    for k in [esc, key('q'), key('?'), key(','), key('m')] {
        assert_eq!(handle_help_key(k), Some(Action::ToggleHelp), "{k:?}");
    }
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(handle_help_key(ctrl_c), Some(Action::HangUp));
}

#[test]
fn the_self_view_can_be_hidden_and_shown_again() {
    let mut state = busy(Lang::En, ColorMode::TrueColor);
    let size = Rect::new(0, 0, 80, 24);
    assert!(picture_areas(size, &state).self_view.is_some());
    state.show_self_view = false;
    let buf = draw(80, 24, &state);
    assert_eq!(cells_coloured(&buf, [0, 255, 0]), 0, "no self-view");
    assert!(!text(&buf).contains("you "), "nor its label");
    assert_eq!(
        picture_areas(size, &state).self_view,
        None,
        "the pixel painter draws none either"
    );
    assert!(picture_areas(size, &state).remote.is_some());
    state.show_self_view = true;
    assert!(cells_coloured(&draw(80, 24, &state), [0, 255, 0]) > 20);
}

fn failed(e: webcall_core::Error) -> Outcome {
    Outcome::Ended(EndReason::Failed(Arc::new(e)))
}

#[test]
fn the_end_screen_says_why_for_each_reason() {
    let server_lost = webcall_core::Error::ServerLost {
        reason: "the server shut down".into(),
        media: None,
        source: Box::new(webcall_core::Error::CallEnded),
    };
    let cases = [
        (Outcome::HungUp, "you hung up", "вы завершили звонок"),
        (
            Outcome::TimeUp,
            "the time given for the call ran out",
            "время звонка истекло",
        ),
        (
            Outcome::PeerLeft,
            "the other side hung up",
            "собеседник завершил звонок",
        ),
        (
            failed(server_lost),
            "lost the webcall server",
            "связь с сервером webcall потеряна",
        ),
        (
            failed(webcall_core::Error::Server {
                code: Some(ErrorCode::RoomExpired),
                message: "this link has expired".into(),
            }),
            "the link expired",
            "срок действия ссылки истёк",
        ),
        (
            failed(webcall_core::Error::Server {
                code: Some(ErrorCode::Replaced),
                message: "replaced".into(),
            }),
            "you joined this call from another place",
            "вы подключились к звонку в другом месте",
        ),
        (
            failed(webcall_core::Error::WebRtc("ICE failed".into())),
            "the connection was lost",
            "соединение потеряно",
        ),
        (
            Outcome::Ended(EndReason::HungUp),
            "the server closed the call",
            "сервер закрыл звонок",
        ),
    ];
    let mut report = CallStats::default().report();
    report.path = Some(MediaPath::Direct);
    report.quality.time_in = TimeInGrades {
        good: 0.92,
        poor: 0.08,
        bad: 0.0,
    };
    for (outcome, en, ru) in cases {
        for (lang, why, ended, duration, quality, path) in [
            (
                Lang::En,
                en,
                "call ended",
                "duration 1:05",
                "good 92 %",
                "direct",
            ),
            (
                Lang::Ru,
                ru,
                "звонок завершён",
                "длительность 1:05",
                "хорошее 92 %",
                "напрямую",
            ),
        ] {
            let mut state = busy(lang, ColorMode::TrueColor);
            state.ended = Some(EndView::new(
                EndWhy::from_outcome(&outcome),
                state.call_time,
                Some(&report),
                lang,
            ));
            for (w, h) in [(80, 24), (40, 12)] {
                let buf = draw(w, h, &state);
                let all = text(&buf);
                let words: String = all.split_whitespace().collect::<Vec<_>>().join(" ");
                for want in [why, ended, duration, quality, path] {
                    assert!(
                        words.contains(want),
                        "{outcome:?} {lang:?} {w}x{h}: {want:?} missing:\n{all}"
                    );
                }
                assert!(!all.contains(HALF_BLOCK), "the screen was cleared:\n{all}");
                assert!(!all.contains("code 125"), "no status line:\n{all}");
            }
            assert_eq!(
                picture_areas(Rect::new(0, 0, 80, 24), &state),
                Default::default()
            );
        }
    }
    // A call that never connected says so, and has no quality to tell.
    let mut state = ScreenState::new(ColorMode::TrueColor, Lang::En);
    state.ended = Some(EndView::new(EndWhy::YouHungUp, None, None, Lang::En));
    let all = text(&draw(80, 24, &state));
    assert!(all.contains("duration never connected"), "{all}");
    assert!(!all.contains("quality"), "{all}");
}

#[test]
fn resizing_redraws_cleanly() {
    let state = busy(Lang::En, ColorMode::TrueColor);
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    for (w, h) in [(80, 24), (40, 12), (30, 8), (120, 40), (80, 24)] {
        terminal.backend_mut().resize(w, h);
        terminal.autoresize().unwrap();
        terminal.draw(|f| render(f, &state)).unwrap();
        let now = terminal.backend().buffer().clone();
        assert_eq!(now, draw(w, h, &state), "{w}x{h}: the same as a fresh draw");
    }
}

#[tokio::test(start_paused = true)]
async fn the_loop_counts_the_call_and_the_help_closes_without_hanging_up() {
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        ..
    } = rig(80, 24);
    let self_view = inputs.self_view.clone();
    let call = Recorder::default();
    let driver = async {
        events.send(ScreenEvent::PeerPresent(true)).unwrap();
        events
            .send(ScreenEvent::Connection(Connection::Connected))
            .unwrap();
        self_view.put(plain(64, 48, [0, 255, 0]));
        tokio::time::sleep(Duration::from_secs(65)).await;
        keys.send(Input::Key(key('?'))).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys.send(Input::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys.send(Input::Key(key('s'))).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys.send(Input::Key(key('q'))).unwrap();
    };
    let (outcome, ()) = tokio::join!(run(&mut terminal, &mut state, &mut inputs, &call), driver);
    assert_eq!(outcome.unwrap(), Outcome::HungUp);
    assert_eq!(
        *call.0.lock().unwrap(),
        ["hang up"],
        "Esc closed the help and did not hang up"
    );
    assert!(!state.show_help);
    assert!(!state.show_self_view, "s hid the self-view");
    let talked = state.call_time.expect("counted since connected");
    assert!(
        talked >= Duration::from_secs(65) && talked < Duration::from_secs(67),
        "{talked:?}"
    );
    let all = screen_text(&terminal);
    assert!(all.contains("1:05"), "{all}");
    assert_eq!(
        cells_coloured(terminal.backend().buffer(), [0, 255, 0]),
        0,
        "{all}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_help_is_drawn_while_open() {
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        ..
    } = rig(80, 24);
    state.lang = Lang::Ru;
    let call = Recorder::default();
    events
        .send(ScreenEvent::Connection(Connection::Connected))
        .unwrap();
    // `,` is where `?` is on a Russian layout.
    keys.send(Input::Key(key(','))).unwrap();
    let outcome = tokio::select! {
        o = run(&mut terminal, &mut state, &mut inputs, &call) => Some(o),
        () = tokio::time::sleep(Duration::from_secs(1)) => None,
    };
    assert!(outcome.is_none(), "the loop goes on");
    assert!(state.show_help);
    let all = screen_text(&terminal);
    assert!(all.contains("эта справка"), "{all}");
    drop((events, keys));
}

#[tokio::test(start_paused = true)]
async fn the_other_side_hanging_up_ends_the_call_unless_a_duration_was_given() {
    // No duration: their bye ends the call, and this side says bye too.
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        ..
    } = rig(80, 24);
    let call = Recorder::default();
    events
        .send(ScreenEvent::Connection(Connection::Connected))
        .unwrap();
    events
        .send(ScreenEvent::Connection(Connection::PeerLeft))
        .unwrap();
    events.send(ScreenEvent::PeerHungUp).unwrap();
    let outcome = run(&mut terminal, &mut state, &mut inputs, &call)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::PeerLeft);
    assert_eq!(*call.0.lock().unwrap(), ["hang up"]);
    assert_eq!(
        EndWhy::from_outcome(&outcome).words(Lang::En),
        "the other side hung up"
    );
    drop((events, keys));

    // With a duration the screen waits for the time.
    let Rig {
        mut terminal,
        mut state,
        mut inputs,
        events,
        keys,
        ..
    } = rig(80, 24);
    inputs.duration = Some(Duration::from_secs(5));
    let call = Recorder::default();
    events.send(ScreenEvent::PeerHungUp).unwrap();
    let start = tokio::time::Instant::now();
    let outcome = run(&mut terminal, &mut state, &mut inputs, &call)
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::TimeUp);
    assert!(start.elapsed() >= Duration::from_secs(5));
    drop((events, keys));
}

#[tokio::test(start_paused = true)]
async fn the_end_screen_stays_until_a_key_or_its_time() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut state = busy(Lang::En, ColorMode::TrueColor);
    let view = EndView::new(EndWhy::YouHungUp, state.call_time, None, Lang::En);
    let (keys, mut input) = mpsc::unbounded_channel();

    // Its time: END_HOLD, not longer.
    let start = tokio::time::Instant::now();
    end::show(
        &mut terminal,
        &mut state,
        view.clone(),
        &mut input,
        None,
        end::END_HOLD,
    )
    .await
    .unwrap();
    assert_eq!(start.elapsed(), end::END_HOLD);
    assert!(end::END_HOLD <= Duration::from_secs(3));
    let all = screen_text(&terminal);
    assert!(all.contains("you hung up") && all.contains("1:05"), "{all}");
    assert!(!all.contains(HALF_BLOCK), "{all}");

    // A key closes it at once; a resize draws it again at the new size.
    terminal.backend_mut().resize(40, 12);
    keys.send(Input::Resize).unwrap();
    keys.send(Input::Key(key('x'))).unwrap();
    let start = tokio::time::Instant::now();
    end::show(
        &mut terminal,
        &mut state,
        view,
        &mut input,
        None,
        end::END_HOLD,
    )
    .await
    .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    let all = screen_text(&terminal);
    assert_eq!(terminal.backend().buffer().area.width, 40);
    assert!(all.contains("you hung up"), "{all}");
}

/// Prints the screens for a person to look at:
/// `cargo test --test screen_layout -- --ignored --nocapture show`.
#[test]
#[ignore]
fn show() {
    let mut state = busy(Lang::En, ColorMode::Mono);
    state.mic_muted = true;
    state.push_chat(false, "hello there".into());
    println!("{}", text(&draw(80, 24, &state)));
    for lang in [Lang::En, Lang::Ru] {
        let mut state = busy(lang, ColorMode::TrueColor);
        state.notice = Some("no camera found: joining without video".into());
        println!("{}", text(&draw(40, 12, &state)));
        state.show_help = true;
        println!("{}", text(&draw(80, 24, &state)));
        println!("{}", text(&draw(40, 12, &state)));
        state.show_help = false;
        let mut report = CallStats::default().report();
        report.path = Some(MediaPath::Direct);
        report.quality.time_in = TimeInGrades {
            good: 0.92,
            poor: 0.08,
            bad: 0.0,
        };
        state.ended = Some(EndView::new(
            EndWhy::PeerHungUp,
            state.call_time,
            Some(&report),
            lang,
        ));
        println!("{}", text(&draw(80, 24, &state)));
        println!("{}", text(&draw(40, 12, &state)));
        state.ended = None;
        println!("{}", text(&draw(30, 8, &state)));
    }
}
