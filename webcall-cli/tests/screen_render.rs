//! The call screen drawn into ratatui's test backend: picture colours, aspect
//! fit, resizes, status text, languages, keys and the 256-colour palette.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::Color;
use webcall_cli::screen::video::{HALF_BLOCK, fit};
use webcall_cli::screen::{
    Action, ColorMode, Connection, Lang, ScreenState, Typing, handle_key, handle_typing_key,
    render, rgb_to_xterm256,
};
use webcall_core::media::{VideoFrame, rgb_to_yuv};

/// An I420 frame whose pixel colours come from `paint(x, y)`.
fn frame_from(width: u32, height: u32, paint: impl Fn(u32, u32) -> [u8; 3]) -> VideoFrame {
    let (w, h) = (width as usize, height as usize);
    let mut data = vec![0u8; w * h * 3 / 2];
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = paint(x as u32, y as u32);
            data[y * w + x] = rgb_to_yuv(r, g, b)[0];
        }
    }
    for cy in 0..h / 2 {
        for cx in 0..w / 2 {
            let [r, g, b] = paint(cx as u32 * 2, cy as u32 * 2);
            let [_, u, v] = rgb_to_yuv(r, g, b);
            data[w * h + cy * (w / 2) + cx] = u;
            data[w * h + w * h / 4 + cy * (w / 2) + cx] = v;
        }
    }
    VideoFrame::from_i420(width, height, data, Duration::ZERO).unwrap()
}

fn red_blue(width: u32, height: u32) -> VideoFrame {
    frame_from(width, height, |x, _| {
        if x < width / 2 {
            [255, 0, 0]
        } else {
            [0, 0, 255]
        }
    })
}

fn draw(width: u16, height: u16, state: &ScreenState) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| render(f, state)).unwrap();
    terminal.backend().buffer().clone()
}

fn connected(color: ColorMode) -> ScreenState {
    let mut state = ScreenState::new(color, Lang::En);
    state.connection = Connection::Connected;
    state.peer_present = true;
    state
}

fn rgb(c: Color) -> [u8; 3] {
    match c {
        Color::Rgb(r, g, b) => [r, g, b],
        other => panic!("expected a true colour, got {other:?}"),
    }
}

fn near(a: [u8; 3], b: [u8; 3]) -> bool {
    (0..3).all(|i| (i32::from(a[i]) - i32::from(b[i])).abs() <= 6)
}

/// The cells that show picture pixels, as a rectangle (min/max of their positions).
fn picture_cells(buf: &Buffer) -> Rect {
    let mut cells = Vec::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            if buf[(x, y)].symbol() == HALF_BLOCK {
                cells.push((x, y));
            }
        }
    }
    assert!(!cells.is_empty(), "no picture cells drawn");
    let x0 = cells.iter().map(|c| c.0).min().unwrap();
    let x1 = cells.iter().map(|c| c.0).max().unwrap();
    let y0 = cells.iter().map(|c| c.1).min().unwrap();
    let y1 = cells.iter().map(|c| c.1).max().unwrap();
    Rect::new(x0, y0, x1 - x0 + 1, y1 - y0 + 1)
}

fn text(buf: &Buffer) -> String {
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
fn red_left_blue_right_frame_renders_to_red_and_blue_cells() {
    let mut state = connected(ColorMode::TrueColor);
    state.remote = Some(red_blue(64, 48));
    // 40 columns, 20 rows of video = 40 x 40 square pixels; 4:3 fits as 40 x 30.
    let buf = draw(40, 22, &state);
    let pic = picture_cells(&buf);
    assert_eq!((pic.width, pic.height), (40, 15), "picture cells {pic:?}");
    for y in pic.top()..pic.bottom() {
        for x in pic.left()..pic.right() {
            let cell = &buf[(x, y)];
            let want = if x < pic.x + pic.width / 2 {
                [255, 0, 0]
            } else {
                [0, 0, 255]
            };
            assert!(
                near(rgb(cell.fg), want),
                "cell ({x},{y}) fg {:?} want {want:?}",
                cell.fg
            );
            assert!(
                near(rgb(cell.bg), want),
                "cell ({x},{y}) bg {:?} want {want:?}",
                cell.bg
            );
        }
    }
}

#[test]
fn top_and_bottom_pixels_of_a_cell_are_fg_and_bg() {
    let mut state = connected(ColorMode::TrueColor);
    // Alternate rows white and black: every cell's top pixel is white, bottom black.
    let frame = frame_from(40, 40, |_, y| {
        if y % 2 == 0 {
            [255, 255, 255]
        } else {
            [0, 0, 0]
        }
    });
    state.remote = Some(frame);
    let buf = draw(40, 22, &state);
    let pic = picture_cells(&buf);
    assert_eq!((pic.width, pic.height), (40, 20));
    let cell = &buf[(pic.x + 5, pic.y + 3)];
    assert!(near(rgb(cell.fg), [255, 255, 255]), "fg {:?}", cell.fg);
    assert!(near(rgb(cell.bg), [0, 0, 0]), "bg {:?}", cell.bg);
}

#[test]
fn the_picture_keeps_its_aspect_ratio_and_follows_resizes() {
    let mut state = connected(ColorMode::TrueColor);
    state.remote = Some(red_blue(640, 480));
    // Wide terminal: height-limited. 58 video rows = 116 pixels; 4:3 -> 155 x 116.
    let wide = picture_cells(&draw(200, 60, &state));
    assert_eq!((wide.width, wide.height), (155, 58));
    assert_eq!(wide.x, (200 - 155) / 2, "centred horizontally");
    // Tall terminal: width-limited. 60 columns -> 60 x 45 pixels -> 23 rows.
    let tall = picture_cells(&draw(60, 60, &state));
    assert_eq!((tall.width, tall.height), (60, 23));
    // The same terminal resized: the picture follows.
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    terminal.draw(|f| render(f, &state)).unwrap();
    terminal.backend_mut().resize(80, 30);
    terminal.autoresize().unwrap();
    terminal.draw(|f| render(f, &state)).unwrap();
    let resized = picture_cells(terminal.backend().buffer());
    // 28 rows = 56 pixels high; 4:3 -> 75 x 56 (75 <= 80).
    assert_eq!((resized.width, resized.height), (75, 28));
}

#[test]
fn fit_handles_degenerate_sizes() {
    assert!(fit(Rect::new(0, 0, 0, 10), 640, 480).is_empty());
    assert!(fit(Rect::new(0, 0, 10, 10), 0, 480).is_empty());
    // A very wide picture in a small area still gets one row.
    let r = fit(Rect::new(0, 0, 10, 10), 1000, 2);
    assert_eq!((r.width, r.height), (10, 1));
}

#[test]
fn status_line_shows_state_and_figures() {
    let mut state = connected(ColorMode::TrueColor);
    state.rtt = Some(Duration::from_millis(12));
    state.bitrate_in = Some(1_500_000);
    state.bitrate_out = Some(800_000);
    state.frame_rate = Some(30.0);
    state.packet_loss = Some(0.015);
    state.mic_muted = true;
    state.notice = Some("camera stopped".into());
    let s = text(&draw(140, 20, &state));
    for want in [
        "connected",
        "rtt 12 ms",
        "↓1.5 Mbit/s ↑800 kbit/s",
        "30 fps",
        "loss 1.5%",
        "mic off",
        "camera stopped",
        " m  mute",
        " v  camera",
        " q ",
        "Ctrl-C",
        "hang up",
    ] {
        assert!(s.contains(want), "{want:?} missing from screen:\n{s}");
    }
}

#[test]
fn before_the_peer_comes_the_screen_says_so() {
    let mut state = ScreenState::new(ColorMode::TrueColor, Lang::En);
    state.connection = Connection::Waiting;
    let s = text(&draw(80, 20, &state));
    assert!(s.contains("waiting for the other side"), "{s}");
    assert!(!s.contains(HALF_BLOCK));
}

#[test]
fn russian_locale_gives_russian_text() {
    assert_eq!(Lang::from_locale(Some("ru_RU.UTF-8")), Lang::Ru);
    assert_eq!(Lang::from_locale(Some("en_US.UTF-8")), Lang::En);
    assert_eq!(Lang::from_locale(Some("C")), Lang::En);
    assert_eq!(Lang::from_locale(None), Lang::En);
    let mut state = connected(ColorMode::TrueColor);
    state.lang = Lang::Ru;
    state.camera_off = true;
    let s = text(&draw(120, 20, &state));
    for want in ["соединено", "микрофон", "камера выкл.", "завершить"]
    {
        assert!(s.contains(want), "{want:?} missing:\n{s}");
    }
}

#[test]
fn self_view_sits_in_the_bottom_right_corner() {
    let mut state = connected(ColorMode::TrueColor);
    state.self_view = Some(frame_from(64, 48, |_, _| [0, 255, 0]));
    let buf = draw(100, 40, &state);
    let pic = picture_cells(&buf);
    assert!(pic.x > 50 && pic.y > 20, "self-view at {pic:?}");
    assert!(pic.right() <= 100 && pic.bottom() <= 38);
    let cell = &buf[(pic.x + pic.width / 2, pic.y + pic.height / 2)];
    assert!(near(rgb(cell.fg), [0, 255, 0]), "{:?}", cell.fg);
    assert!(text(&buf).contains("you"));
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, modifiers)
}

#[test]
fn keys_map_to_actions() {
    let none = KeyModifiers::NONE;
    assert_eq!(
        handle_key(key(KeyCode::Char('m'), none)),
        Some(Action::ToggleMute)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('v'), none)),
        Some(Action::ToggleCamera)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('q'), none)),
        Some(Action::HangUp)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::HangUp)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('c'), none)),
        Some(Action::OpenChat)
    );
    assert_eq!(
        handle_key(key(KeyCode::Enter, none)),
        Some(Action::OpenChat)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('с'), none)),
        Some(Action::OpenChat),
        "Russian layout"
    );
    assert_eq!(handle_key(key(KeyCode::Char('x'), none)), None);
    assert_eq!(
        handle_key(key(KeyCode::Char('m'), KeyModifiers::CONTROL)),
        None
    );
    // Russian layout, same physical keys.
    assert_eq!(
        handle_key(key(KeyCode::Char('ь'), none)),
        Some(Action::ToggleMute)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('м'), none)),
        Some(Action::ToggleCamera)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('й'), none)),
        Some(Action::HangUp)
    );
    // Releases do nothing.
    let mut release = key(KeyCode::Char('m'), none);
    release.kind = KeyEventKind::Release;
    assert_eq!(handle_key(release), None);
}

#[test]
fn chat_and_the_code_are_drawn_over_the_picture_and_on_the_status_line() {
    let mut state = connected(ColorMode::TrueColor);
    state.verification_code = Some("125 392".into());
    for i in 0..60 {
        state.push_chat(i % 2 == 0, format!("message {i}"));
    }
    state.push_chat(false, "two\nlines \x1b[2J".into());
    assert_eq!(state.chat.len(), 50, "the history is bounded");
    let s = text(&draw(120, 40, &state));
    assert!(s.contains("code 125 392"), "{s}");
    assert!(s.contains(" c  chat"), "{s}");
    // The latest few, one line each, escaped.
    assert!(s.contains("them: two\\nlines \\u{1b}[2J"), "{s}");
    assert!(s.contains("you: message 58"), "{s}");
    assert!(!s.contains("message 54"), "only the latest five:\n{s}");
    assert!(!s.contains('\x1b'));

    // Typing: the line replaces the key help.
    state.chat_input = Some("hello there".into());
    let s = text(&draw(120, 40, &state));
    assert!(s.contains("chat> hello there"), "{s}");
    assert!(s.contains("Enter") && s.contains("cancel"), "{s}");
}

#[test]
fn typing_keys_edit_send_and_cancel() {
    let none = KeyModifiers::NONE;
    assert_eq!(
        handle_typing_key(key(KeyCode::Char('q'), none)),
        Some(Typing::Insert('q')),
        "letters are text while typing"
    );
    assert_eq!(
        handle_typing_key(key(KeyCode::Enter, none)),
        Some(Typing::Send)
    );
    assert_eq!(
        handle_typing_key(key(KeyCode::Esc, none)),
        Some(Typing::Cancel)
    );
    assert_eq!(
        handle_typing_key(key(KeyCode::Backspace, none)),
        Some(Typing::Backspace)
    );
    assert_eq!(
        handle_typing_key(key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Typing::HangUp)
    );
}

#[test]
fn palette_mode_picks_expected_xterm_indices() {
    assert_eq!(rgb_to_xterm256([255, 0, 0]), 196);
    assert_eq!(rgb_to_xterm256([0, 0, 255]), 21);
    assert_eq!(rgb_to_xterm256([0, 255, 0]), 46);
    assert_eq!(rgb_to_xterm256([255, 255, 255]), 231);
    assert_eq!(rgb_to_xterm256([0, 0, 0]), 16);
    assert_eq!(
        rgb_to_xterm256([128, 128, 128]),
        244,
        "mid grey is on the grey ramp"
    );
    assert_eq!(rgb_to_xterm256([95, 135, 175]), 16 + 36 + 2 * 6 + 3);
    assert_eq!(rgb_to_xterm256([250, 130, 10]), 16 + 36 * 5 + 6 * 2);

    let mut state = connected(ColorMode::Palette256);
    state.remote = Some(red_blue(64, 48));
    let buf = draw(40, 22, &state);
    let pic = picture_cells(&buf);
    let left = &buf[(pic.x + 2, pic.y + 2)];
    let right = &buf[(pic.right() - 3, pic.y + 2)];
    assert_eq!(
        (left.fg, left.bg),
        (Color::Indexed(196), Color::Indexed(196))
    );
    assert_eq!(
        (right.fg, right.bg),
        (Color::Indexed(21), Color::Indexed(21))
    );
}

#[test]
fn colour_mode_comes_from_colorterm() {
    assert_eq!(
        ColorMode::from_colorterm(Some("truecolor")),
        ColorMode::TrueColor
    );
    assert_eq!(
        ColorMode::from_colorterm(Some("24bit")),
        ColorMode::TrueColor
    );
    assert_eq!(ColorMode::from_colorterm(Some("")), ColorMode::Palette256);
    assert_eq!(ColorMode::from_colorterm(None), ColorMode::Palette256);
}

#[test]
fn the_quality_grade_is_on_the_status_line_and_i_opens_the_details() {
    use webcall_cli::screen::quality::QualityView;
    use webcall_core::call::quality::{Grade, MediaPath};
    let mut state = connected(ColorMode::TrueColor);
    assert!(!text(&draw(140, 24, &state)).contains("quality"));
    state.quality = Some(QualityView {
        grade: Some(Grade::Poor),
        codec: Some("H264".into()),
        resolution: Some((640, 480)),
        bitrate_in: 900_000,
        bitrate_out: 1_200_000,
        rtt_ms: Some(230.0),
        loss: 0.04,
        path: Some(MediaPath::Relayed),
    });
    let buf = draw(140, 24, &state);
    let s = text(&buf);
    assert!(s.contains("▮▮▯ quality poor"), "{s}");
    assert!(s.contains(" i  details"), "{s}");
    assert!(
        !s.contains("H264"),
        "details stay closed until asked for:\n{s}"
    );
    // The grade's colour: yellow for poor.
    let row = buf.area.height - 2;
    let mark = (0..buf.area.width)
        .find(|&x| buf[(x, row)].symbol() == "▮")
        .expect("the grade's bars");
    assert_eq!(buf[(mark, row)].fg, Color::Yellow);

    assert_eq!(
        handle_key(key(KeyCode::Char('i'), KeyModifiers::NONE)),
        Some(Action::ToggleDetails)
    );
    assert_eq!(
        handle_key(key(KeyCode::Char('ш'), KeyModifiers::NONE)),
        Some(Action::ToggleDetails)
    );
    state.show_details = true;
    let s = text(&draw(140, 24, &state));
    for want in [
        "codec",
        "H264",
        "640x480",
        "900 kbit/s / 1.2 Mbit/s",
        "230 ms",
        "4.0 %",
        "relayed (TURN)",
    ] {
        assert!(s.contains(want), "{want:?} missing from the details:\n{s}");
    }
    assert!(
        !s.contains("pictures skipped"),
        "half blocks skip no pictures:\n{s}"
    );
    // With terminal images, the pictures the terminal was too slow for.
    state.graphics = webcall_cli::screen::pixels::Graphics::Sixel;
    state.count_dropped(3);
    let s = text(&draw(140, 24, &state));
    assert!(s.contains("pictures skipped  3"), "{s}");
    state.lang = Lang::Ru;
    let s = text(&draw(140, 24, &state));
    for want in [
        "качество слабое",
        "кодек",
        "через ретранслятор",
        "подробности",
        "кадров пропущено",
    ] {
        assert!(s.contains(want), "{want:?} missing:\n{s}");
    }
}
