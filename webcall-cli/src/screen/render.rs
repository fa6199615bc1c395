//! Laying out the call screen: remote picture, self-view, status and keys.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::state::{Connection, ScreenState};
use super::video::draw_frame;

/// Rows at the bottom for the status line and the key help.
const FOOTER_ROWS: u16 = 2;

/// Draws the whole call screen for `state` into `frame`.
pub fn render(frame: &mut Frame, state: &ScreenState) {
    let area = frame.area();
    render_to_buffer(frame.buffer_mut(), area, state);
}

/// Draws the call screen into any buffer region (used by [`render`] and by
/// benchmarks that draw without a terminal).
pub fn render_to_buffer(buf: &mut Buffer, area: Rect, state: &ScreenState) {
    let footer = FOOTER_ROWS.min(area.height);
    let video = Rect::new(area.x, area.y, area.width, area.height - footer);
    let status = Rect::new(area.x, video.bottom(), area.width, footer.min(1));
    let keys = Rect::new(
        area.x,
        status.bottom(),
        area.width,
        footer.saturating_sub(1),
    );

    match &state.remote {
        Some(remote) if state.peer_present || state.connection == Connection::Connected => {
            draw_frame(buf, video, remote, state.color);
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
    draw_self_view(buf, video, state);
    Paragraph::new(status_line(state)).render(status, buf);
    Paragraph::new(keys_line(state)).render(keys, buf);
}

/// The self-view: a small picture in the bottom-right corner of the video area.
fn draw_self_view(buf: &mut Buffer, video: Rect, state: &ScreenState) {
    if video.width < 24 || video.height < 8 {
        return;
    }
    let width = (video.width / 5).clamp(16, 48);
    let height = (video.height / 4).clamp(4, 16);
    let corner = Rect::new(
        video.right() - width - 1,
        video.bottom() - height,
        width,
        height,
    );
    let text = state.lang.text();
    match (&state.self_view, state.camera_off) {
        (Some(own), false) => {
            let drawn = draw_frame(buf, corner, own, state.color);
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
}

fn status_line(state: &ScreenState) -> Line<'static> {
    let text = state.lang.text();
    let colour = match state.connection {
        Connection::Connected => Color::Green,
        Connection::Failed | Connection::PeerLeft | Connection::Ended => Color::Red,
        _ => Color::Yellow,
    };
    let mut spans = vec![
        Span::styled("● ", Style::default().fg(colour)),
        Span::styled(
            state.lang.connection(state.connection),
            Style::default().add_modifier(Modifier::BOLD),
        ),
    ];
    let mut field = |s: String| {
        spans.push(Span::raw("  "));
        spans.push(Span::raw(s));
    };
    if let Some(rtt) = state.rtt {
        field(format!("rtt {} ms", rtt.as_millis()));
    }
    if state.bitrate_in.is_some() || state.bitrate_out.is_some() {
        field(format!(
            "↓{} ↑{}",
            bitrate(state.bitrate_in),
            bitrate(state.bitrate_out)
        ));
    }
    if let Some(fps) = state.frame_rate {
        field(format!("{fps:.0} fps"));
    }
    if let Some(loss) = state.packet_loss {
        field(format!("{} {:.1}%", text.loss, loss * 100.0));
    }
    if state.mic_muted {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(text.mic_off, Style::default().fg(Color::Red)));
    }
    if state.camera_off {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            text.camera_off,
            Style::default().fg(Color::Red),
        ));
    }
    if let Some(notice) = &state.notice {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(
            notice.clone(),
            Style::default().fg(Color::Yellow),
        ));
    }
    Line::from(spans)
}

fn bitrate(bps: Option<u64>) -> String {
    match bps {
        None => "-".into(),
        Some(b) if b >= 1_000_000 => format!("{:.1} Mbit/s", b as f64 / 1e6),
        Some(b) => format!("{} kbit/s", b / 1000),
    }
}

fn keys_line(state: &ScreenState) -> Line<'static> {
    let t = state.lang.text();
    let key = |k: &'static str| Span::styled(k, Style::default().add_modifier(Modifier::REVERSED));
    Line::from(vec![
        key(" m "),
        Span::raw(format!(" {}   ", t.key_mute)),
        key(" v "),
        Span::raw(format!(" {}   ", t.key_camera)),
        key(" q "),
        Span::raw(" / "),
        key(" Ctrl-C "),
        Span::raw(format!(" {}", t.key_hangup)),
    ])
}
