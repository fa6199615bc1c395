//! Laying out the call screen: remote picture, self-view (toggled with
//! `s`), the latest chat messages over the picture, status (with the
//! verification code) and keys (or the chat line being typed), and the help
//! overlay on `?`. While the other side shares its screen, the screen takes
//! the picture's place and its camera goes to the top-left corner. When the
//! call is over only the end screen is drawn ([`super::end`]); a terminal
//! smaller than [`MIN_WIDTH`] x [`MIN_HEIGHT`] gets a line saying so
//! instead of a squashed screen; without colour ([`ColorMode::Mono`]) every
//! colour is taken off the cells.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::palette::ColorMode;
use super::quality;
use super::state::{Connection, ScreenState};
use webcall_core::media::VideoFrame;

use super::video::{draw_frame, fit};

/// Rows at the bottom for the status line and the key help.
const FOOTER_ROWS: u16 = 2;
/// Chat messages drawn over the picture, at most.
const CHAT_ROWS: usize = 5;
/// The narrowest terminal the call screen is drawn in.
pub const MIN_WIDTH: u16 = 32;
/// The shortest terminal the call screen is drawn in.
pub const MIN_HEIGHT: u16 = 10;

/// True when `area` is too small to draw the call screen in.
pub fn too_small(area: Rect) -> bool {
    area.width < MIN_WIDTH || area.height < MIN_HEIGHT
}

/// Draws the whole call screen for `state` into `frame`.
pub fn render(frame: &mut Frame, state: &ScreenState) {
    let area = frame.area();
    render_to_buffer(frame.buffer_mut(), area, state);
}

/// Draws the call screen into any buffer region (used by [`render`] and by
/// benchmarks that draw without a terminal).
pub fn render_to_buffer(buf: &mut Buffer, area: Rect, state: &ScreenState) {
    if let Some(view) = &state.ended {
        super::end::draw_end(buf, area, state, view);
    } else if too_small(area) {
        draw_too_small(buf, area, state);
    } else {
        draw_call(buf, area, state);
        super::help::draw_help(buf, area, state);
    }
    if state.color == ColorMode::Mono {
        super::mono::strip(buf);
    }
}

/// Says the terminal is too small, and the size it needs, in the middle.
fn draw_too_small(buf: &mut Buffer, area: Rect, state: &ScreenState) {
    let t = state.lang.layout();
    let text = vec![
        Line::styled(t.too_small, Style::default().add_modifier(Modifier::BOLD)),
        Line::raw(format!("{} {MIN_WIDTH}x{MIN_HEIGHT}", t.at_least)),
    ];
    let rows: u16 = text
        .iter()
        .map(|l| (l.width().max(1) as u16).div_ceil(area.width.max(1)))
        .sum::<u16>()
        .min(area.height);
    let paragraph = Paragraph::new(text)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true });
    // From the middle down: word wrapping may take a row more than counted.
    let top = (area.height - rows) / 2;
    let mid = Rect::new(area.x, area.y + top, area.width, area.height - top);
    paragraph.render(mid, buf);
}

/// The call itself: pictures, chat, details, status and keys.
fn draw_call(buf: &mut Buffer, area: Rect, state: &ScreenState) {
    let footer = FOOTER_ROWS.min(area.height);
    let video = Rect::new(area.x, area.y, area.width, area.height - footer);
    let status = Rect::new(area.x, video.bottom(), area.width, footer.min(1));
    let keys = Rect::new(
        area.x,
        status.bottom(),
        area.width,
        footer.saturating_sub(1),
    );

    let shared = state.shared_screen();
    match state.main_picture() {
        Some(picture)
            if shared.is_some()
                || state.peer_present
                || state.connection == Connection::Connected =>
        {
            if state.graphics.is_pixels() {
                // The painter draws the main picture; no camera corner then.
                reserve(buf, video, picture);
            } else {
                draw_frame(buf, video, picture, state.color);
                if let (Some(_), Some(camera)) = (shared, &state.remote) {
                    draw_camera_corner(buf, video, camera, state);
                }
            }
        }
        _ => {
            let text = if state.peer_present {
                state.lang.text().no_video
            } else {
                state.lang.connection(state.connection)
            };
            let mid = Rect::new(
                video.x,
                video.y + video.height / 2,
                video.width,
                1.min(video.height),
            );
            Paragraph::new(text)
                .alignment(Alignment::Center)
                .style(Style::default().fg(Color::Gray))
                .render(mid, buf);
        }
    }
    let self_view_width = draw_self_view(buf, video, state);
    draw_chat(buf, video, self_view_width, state);
    quality::draw_details(buf, video, state);
    Paragraph::new(super::status::line(state, status.width)).render(status, buf);
    let bottom = match &state.chat_input {
        Some(typed) => chat_input_line(state, typed, keys.width),
        None => keys_line(state, keys.width),
    };
    Paragraph::new(bottom).render(keys, buf);
}

/// The latest chat messages, one line each (control characters escaped,
/// cut at the edge), at the bottom left of the picture beside the
/// self-view.
fn draw_chat(buf: &mut Buffer, video: Rect, self_view_width: u16, state: &ScreenState) {
    let rows = CHAT_ROWS.min(usize::from(video.height / 3));
    let width = video.width.saturating_sub(self_view_width + 2);
    if rows == 0 || width < 8 {
        return;
    }
    let text = state.lang.text();
    let shown = state.chat.len().min(rows);
    let first_row = video.bottom() - shown as u16;
    for (i, line) in state.chat.iter().skip(state.chat.len() - shown).enumerate() {
        let (who, colour) = if line.mine {
            (text.you, Color::Cyan)
        } else {
            (text.them, Color::Yellow)
        };
        let row = Rect::new(video.x, first_row + i as u16, width, 1);
        Paragraph::new(Line::from(vec![
            Span::styled(format!("{who}: "), Style::default().fg(colour)),
            Span::raw(crate::chat::escape(&line.text)),
        ]))
        .style(Style::default().fg(Color::White).bg(Color::Black))
        .render(row, buf);
    }
}

/// The chat line being typed, its end kept in view, and its keys.
fn chat_input_line(state: &ScreenState, typed: &str, width: u16) -> Line<'static> {
    let t = state.lang.text();
    let key = |k: &'static str| Span::styled(k, Style::default().add_modifier(Modifier::REVERSED));
    let help = format!("   {}   {}", t.key_send, t.key_cancel);
    let room = usize::from(width)
        .saturating_sub(help.chars().count() + 20)
        .max(8);
    let escaped = crate::chat::escape(typed);
    let count = escaped.chars().count();
    let visible: String = escaped.chars().skip(count.saturating_sub(room)).collect();
    Line::from(vec![
        Span::styled(
            format!("{}> ", t.key_chat),
            Style::default().fg(Color::Cyan),
        ),
        Span::raw(visible),
        Span::styled("▏", Style::default().fg(Color::Cyan)),
        Span::raw("   "),
        key(" Enter "),
        Span::raw(format!(" {}   ", t.key_send)),
        key(" Esc "),
        Span::raw(format!(" {}", t.key_cancel)),
    ])
}

/// The cells where pictures go when a graphics protocol draws them
/// ([`ScreenState::graphics`]): the same places half blocks would fill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PictureAreas {
    /// The remote picture, when shown.
    pub remote: Option<Rect>,
    /// The self-view, when shown.
    pub self_view: Option<Rect>,
}

/// Where [`render_to_buffer`] puts the pictures of `state` in `area`.
pub fn picture_areas(area: Rect, state: &ScreenState) -> PictureAreas {
    if state.ended.is_some() || state.show_help || too_small(area) {
        // Only text then: the end screen, the help box, the size notice.
        return PictureAreas::default();
    }
    let footer = FOOTER_ROWS.min(area.height);
    let video = Rect::new(area.x, area.y, area.width, area.height - footer);
    let remote = match state.main_picture() {
        Some(f)
            if state.shared_screen().is_some()
                || state.peer_present
                || state.connection == Connection::Connected =>
        {
            Some(fit(video, f.width(), f.height())).filter(|r| !r.is_empty())
        }
        _ => None,
    };
    let self_view = match (&state.self_view, state.camera_off, self_view_corner(video)) {
        (Some(f), false, Some(corner)) if state.show_self_view => {
            Some(fit(corner, f.width(), f.height())).filter(|r| !r.is_empty())
        }
        _ => None,
    };
    PictureAreas { remote, self_view }
}

/// Blanks the cells a picture drawn by a graphics protocol covers, so the
/// image shows through; returns them.
fn reserve(buf: &mut Buffer, area: Rect, frame: &VideoFrame) -> Rect {
    let target = fit(area.intersection(buf.area), frame.width(), frame.height());
    for y in target.top()..target.bottom() {
        for x in target.left()..target.right() {
            buf[(x, y)].reset();
        }
    }
    target
}

/// The self-view's corner of the video area, when it is big enough for one.
fn self_view_corner(video: Rect) -> Option<Rect> {
    if video.width < 24 || video.height < 8 {
        return None;
    }
    let width = (video.width / 5).clamp(16, 48);
    let height = (video.height / 4).clamp(4, 16);
    Some(Rect::new(
        video.right() - width - 1,
        video.bottom() - height,
        width,
        height,
    ))
}

/// The self-view: a small picture in the bottom-right corner of the video
/// area. Returns the width it takes (0 when the area is too small).
fn draw_self_view(buf: &mut Buffer, video: Rect, state: &ScreenState) -> u16 {
    let Some(corner) = self_view_corner(video).filter(|_| state.show_self_view) else {
        return 0;
    };
    let width = corner.width;
    let text = state.lang.text();
    match (&state.self_view, state.camera_off) {
        (Some(own), false) => {
            let drawn = if state.graphics.is_pixels() {
                reserve(buf, corner, own)
            } else {
                draw_frame(buf, corner, own, state.color)
            };
            let label = Rect::new(drawn.x, drawn.y, drawn.width.min(6), 1);
            Paragraph::new(text.you)
                .style(Style::default().fg(Color::White).bg(Color::Black))
                .render(label, buf);
        }
        (_, true) => {
            let mid = Rect::new(corner.x, corner.y + corner.height / 2, corner.width, 1);
            Paragraph::new(text.camera_off)
                .alignment(Alignment::Center)
                .style(Style::default().fg(Color::White).bg(Color::DarkGray))
                .render(mid, buf);
        }
        (None, false) => {}
    }
    width
}

/// The other side's camera, small, in the top-left corner of the video
/// area, while its shared screen fills the rest.
fn draw_camera_corner(
    buf: &mut Buffer,
    video: Rect,
    remote: &webcall_core::media::VideoFrame,
    state: &ScreenState,
) {
    if video.width < 24 || video.height < 8 {
        return;
    }
    let width = (video.width / 5).clamp(16, 48);
    let height = (video.height / 4).clamp(4, 16);
    let corner = Rect::new(video.x + 1, video.y, width, height);
    draw_frame(buf, corner, remote, state.color);
}

/// The key help: every key with three spaces between; where that does not
/// fit `width`, one space between and without the Ctrl-C alias, then
/// without `s`, `i`, `d/a`, `c`, `v` and `m` in turn (the help lists them
/// all), keeping `?` and `q`; narrower still, only `?`.
fn keys_line(state: &ScreenState, width: u16) -> Line<'static> {
    let t = state.lang.text();
    let l = state.lang.layout();
    let switch = super::switch::key_help(state.lang);
    let key = |k: &'static str| Span::styled(k, Style::default().add_modifier(Modifier::REVERSED));
    let mut entries = vec![
        (" m ", t.key_mute),
        (" v ", t.key_camera),
        (" d/a ", switch),
        (" c ", t.key_chat),
        (" i ", quality::key_details(state.lang)),
        (" s ", l.key_self_view),
        (" ? ", l.key_help),
    ];
    let build = |entries: &[(&'static str, &'static str)], gap: &str, ctrl_c: bool, q: bool| {
        let mut spans = Vec::new();
        for (k, word) in entries {
            spans.push(key(k));
            spans.push(Span::raw(format!(" {word}{gap}")));
        }
        if q {
            spans.push(key(" q "));
            if ctrl_c {
                spans.push(Span::raw(" / "));
                spans.push(key(" Ctrl-C "));
            }
            spans.push(Span::raw(format!(" {}", t.key_hangup)));
        }
        Line::from(spans)
    };
    let fits = |line: &Line| line.width() <= usize::from(width);
    let full = build(&entries, "   ", true, true);
    if fits(&full) {
        return full;
    }
    for drop in ["", " s ", " i ", " d/a ", " c ", " v ", " m "] {
        entries.retain(|(k, _)| *k != drop);
        let gap = if entries.len() == 1 { "   " } else { " " };
        let line = build(&entries, gap, false, true);
        if fits(&line) {
            return line;
        }
    }
    build(&entries, "", false, false)
}
