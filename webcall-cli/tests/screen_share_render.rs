//! The call screen while the other side shares its screen, drawn into
//! ratatui's test backend: the shared screen fills the picture, the other
//! side's camera sits small in the top-left corner, the status line says
//! "sharing screen" (in Russian "показывает экран"), and when the share
//! stops the camera fills the picture again. With terminal images the
//! screen is the picture the painter draws.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use webcall_cli::screen::run::{ScreenEvent, apply};
use webcall_cli::screen::{ColorMode, Connection, Lang, ScreenState, render};

mod screen_common;
use screen_common::plain;

fn draw(state: &ScreenState) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(100, 40)).unwrap();
    terminal.draw(|f| render(f, state)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The dominant channel of a cell's top pixel: 'r', 'g' or 'b'.
fn hue(buf: &Buffer, x: u16, y: u16) -> char {
    let Color::Rgb(r, g, b) = buf[(x, y)].fg else {
        panic!("no picture at {x},{y}: {:?}", buf[(x, y)]);
    };
    if r > g && r > b {
        'r'
    } else if g > b {
        'g'
    } else {
        'b'
    }
}

fn sharing(lang: Lang) -> ScreenState {
    let mut state = ScreenState::new(ColorMode::TrueColor, lang);
    state.connection = Connection::Connected;
    state.peer_present = true;
    // The camera is red, the shared screen blue.
    state.remote = Some(plain(64, 48, [255, 0, 0]));
    state.remote_screen = Some(plain(160, 60, [0, 0, 255]));
    apply(&mut state, ScreenEvent::ScreenShare(true));
    state
}

#[test]
fn the_shared_screen_fills_the_picture_and_the_camera_sits_in_a_corner() {
    let mut state = sharing(Lang::En);
    let buf = draw(&state);
    // The middle is the screen; the top-left corner the camera.
    assert_eq!(hue(&buf, 50, 19), 'b');
    assert_eq!(hue(&buf, 5, 2), 'r');
    assert!(text(&buf).contains("sharing screen"), "{}", text(&buf));

    // The share stops: the camera fills the picture again.
    apply(&mut state, ScreenEvent::ScreenShare(false));
    assert!(state.remote_screen.is_none());
    let buf = draw(&state);
    assert_eq!(hue(&buf, 50, 19), 'r');
    assert!(!text(&buf).contains("sharing screen"));
}

#[test]
fn the_status_says_so_in_russian() {
    let buf = draw(&sharing(Lang::Ru));
    assert!(text(&buf).contains("показывает экран"), "{}", text(&buf));
}

#[test]
fn a_share_announced_before_its_first_picture_leaves_the_camera_in_place() {
    let mut state = sharing(Lang::En);
    state.remote_screen = None;
    let buf = draw(&state);
    assert_eq!(hue(&buf, 50, 19), 'r');
    assert!(text(&buf).contains("sharing screen"));
}

#[test]
fn with_terminal_images_the_shared_screen_is_the_picture_the_painter_draws() {
    use ratatui::layout::Rect;
    use webcall_cli::screen::Graphics;
    use webcall_cli::screen::render::picture_areas;
    use webcall_cli::screen::video::fit;

    let mut state = sharing(Lang::En);
    state.graphics = Graphics::Sixel;
    let area = Rect::new(0, 0, 100, 40);
    let video = Rect::new(0, 0, 100, 38);
    // The screen is 160x60 (wide), the camera 64x48: their fits differ.
    assert_eq!(
        picture_areas(area, &state).remote,
        Some(fit(video, 160, 60))
    );
    assert_eq!(state.main_picture().map(|f| f.width()), Some(160));
    // The cells under the image are left blank for it.
    let buf = draw(&state);
    assert_eq!(buf[(50, 19)].symbol(), " ");
    apply(&mut state, ScreenEvent::ScreenShare(false));
    assert_eq!(picture_areas(area, &state).remote, Some(fit(video, 64, 48)));
}
