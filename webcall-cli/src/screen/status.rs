//! The status line: a list of [`Part`]s, each with a priority, laid out on
//! one row. Where they do not all fit, the least important go first (the
//! notice is cut short before it goes), so a narrow terminal keeps the
//! call's state, its duration, the muted microphone and the verification
//! code, and never wraps. A new part is one entry in [`parts`].

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use super::quality;
use super::state::{Connection, ScreenState};

/// How important each part is: the higher, the longer it stays.
pub mod priority {
    /// The call's state (`● connected`): always shown.
    pub const STATE: u8 = 100;
    /// How long the call has been connected.
    pub const DURATION: u8 = 90;
    /// The microphone is muted.
    pub const MIC_OFF: u8 = 85;
    /// The camera is off.
    pub const CAMERA_OFF: u8 = 84;
    /// The verification code.
    pub const CODE: u8 = 80;
    /// The other side shares its screen.
    pub const SHARING: u8 = 75;
    /// The quality grade.
    pub const QUALITY: u8 = 70;
    /// A one-line message (cut short before it is dropped).
    pub const NOTICE: u8 = 60;
    /// A level meter or similar live gauge.
    pub const METER: u8 = 50;
    /// Packet loss.
    pub const LOSS: u8 = 35;
    /// Round-trip time.
    pub const RTT: u8 = 30;
    /// Frame rate.
    pub const FPS: u8 = 25;
    /// Bitrates.
    pub const BITRATE: u8 = 20;
}

/// The columns between two parts.
const GAP: usize = 2;
/// A part that can be cut short keeps at least this many columns, or goes.
const MIN_SHRUNK: usize = 12;

/// One piece of the status line.
#[derive(Debug, Clone)]
pub struct Part {
    /// How important it is ([`priority`]).
    pub priority: u8,
    /// What it shows.
    pub spans: Vec<Span<'static>>,
    /// It may be cut short (with `…`) rather than dropped.
    pub shrink: bool,
    /// A shorter form, put in its place before it is dropped.
    pub short: Option<Vec<Span<'static>>>,
}

impl Part {
    /// A part of one span.
    pub fn new(priority: u8, span: Span<'static>) -> Self {
        Self {
            priority,
            spans: vec![span],
            shrink: false,
            short: None,
        }
    }

    fn width(&self) -> usize {
        self.spans.iter().map(Span::width).sum()
    }
}

/// A duration as `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The parts of the status line for `state`, in the order they are shown.
pub fn parts(state: &ScreenState) -> Vec<Part> {
    let text = state.lang.text();
    let colour = match state.connection {
        Connection::Connected => Color::Green,
        Connection::Failed | Connection::PeerLeft | Connection::Ended => Color::Red,
        _ => Color::Yellow,
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut parts = vec![Part {
        priority: priority::STATE,
        spans: vec![
            Span::styled("● ", Style::default().fg(colour)),
            Span::styled(state.lang.connection(state.connection), bold),
        ],
        shrink: false,
        short: None,
    }];
    if let Some(t) = state.call_time {
        parts.push(Part::new(priority::DURATION, Span::raw(clock(t))));
    }
    if state.screen_sharing {
        parts.push(Part::new(
            priority::SHARING,
            Span::styled(text.sharing_screen, bold.fg(Color::Cyan)),
        ));
    }
    let grade: Vec<Span<'static>> = quality::status_spans(state)
        .into_iter()
        .skip_while(|s| s.content.trim().is_empty())
        .collect();
    if !grade.is_empty() {
        // Narrow: the bars alone (they differ without colour too).
        let bars = grade[..1]
            .iter()
            .map(|s| Span::styled(s.content.trim().to_owned(), s.style))
            .collect();
        parts.push(Part {
            priority: priority::QUALITY,
            spans: grade,
            shrink: false,
            short: Some(bars),
        });
    }
    if let Some(rtt) = state.rtt {
        let s = format!("rtt {} ms", rtt.as_millis());
        parts.push(Part::new(priority::RTT, Span::raw(s)));
    }
    if state.bitrate_in.is_some() || state.bitrate_out.is_some() {
        let s = format!(
            "↓{} ↑{}",
            bitrate(state.bitrate_in),
            bitrate(state.bitrate_out)
        );
        parts.push(Part::new(priority::BITRATE, Span::raw(s)));
    }
    if let Some(fps) = state.frame_rate {
        parts.push(Part::new(priority::FPS, Span::raw(format!("{fps:.0} fps"))));
    }
    if let Some(loss) = state.packet_loss {
        let s = format!("{} {:.1}%", text.loss, loss * 100.0);
        parts.push(Part::new(priority::LOSS, Span::raw(s)));
    }
    let meter = super::meter::status_spans(state);
    if !meter.is_empty() {
        parts.push(Part {
            priority: priority::METER,
            spans: meter,
            shrink: false,
            short: None,
        });
    }
    let alarm = Style::default().fg(Color::Red).add_modifier(Modifier::BOLD);
    if state.mic_muted {
        parts.push(Part::new(
            priority::MIC_OFF,
            Span::styled(text.mic_off, alarm),
        ));
    }
    if state.camera_off {
        parts.push(Part::new(
            priority::CAMERA_OFF,
            Span::styled(text.camera_off, alarm),
        ));
    }
    if let Some(code) = &state.verification_code {
        parts.push(Part::new(
            priority::CODE,
            Span::styled(format!("{} {code}", text.code), bold),
        ));
    }
    if let Some(notice) = &state.notice {
        parts.push(Part {
            priority: priority::NOTICE,
            spans: vec![Span::styled(
                notice.clone(),
                Style::default().fg(Color::Yellow),
            )],
            shrink: true,
            short: None,
        });
    }
    parts
}

fn bitrate(bps: Option<u64>) -> String {
    match bps {
        None => "-".into(),
        Some(b) if b >= 1_000_000 => format!("{:.1} Mbit/s", b as f64 / 1e6),
        Some(b) => format!("{} kbit/s", b / 1000),
    }
}

/// The status line of `state` in `width` columns.
pub fn line(state: &ScreenState, width: u16) -> Line<'static> {
    fit(parts(state), width)
}

/// Lays `parts` out in `width` columns: while they do not fit, the least
/// important part (the rightmost of equals) is cut short if it may and
/// keeps [`MIN_SHRUNK`] columns, else put in its short form if it has one,
/// else dropped. One part left that is still
/// too wide is clipped at the edge.
pub fn fit(mut parts: Vec<Part>, width: u16) -> Line<'static> {
    let width = usize::from(width);
    loop {
        let total: usize =
            parts.iter().map(Part::width).sum::<usize>() + GAP * parts.len().saturating_sub(1);
        if total <= width || parts.len() <= 1 {
            break;
        }
        let (i, _) = parts
            .iter()
            .enumerate()
            .rev()
            .min_by_key(|(_, p)| p.priority)
            .expect("two parts or more");
        let over = total - width;
        let own = parts[i].width();
        if parts[i].shrink && own >= over + MIN_SHRUNK {
            let part = &mut parts[i];
            part.spans = cut(std::mem::take(&mut part.spans), own - over);
            break;
        }
        if let Some(short) = parts[i].short.take() {
            parts[i].spans = short;
            continue;
        }
        parts.remove(i);
    }
    let mut spans = Vec::new();
    for (n, part) in parts.into_iter().enumerate() {
        if n > 0 {
            spans.push(Span::raw(" ".repeat(GAP)));
        }
        spans.extend(part.spans);
    }
    Line::from(spans)
}

/// `spans` cut to `width` columns, the last of them `…`.
fn cut(spans: Vec<Span<'static>>, width: usize) -> Vec<Span<'static>> {
    let mut left = width.saturating_sub(1);
    let mut out = Vec::new();
    let mut last_style = Style::default();
    for span in spans {
        last_style = span.style;
        let mut kept = String::new();
        for ch in span.content.chars() {
            let w = Span::raw(ch.to_string()).width();
            if w > left {
                left = 0;
                break;
            }
            left -= w;
            kept.push(ch);
        }
        out.push(Span::styled(kept, span.style));
        if left == 0 {
            break;
        }
    }
    out.push(Span::styled("…", last_style));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn clocks_read_minutes_then_hours() {
        use std::time::Duration;
        assert_eq!(clock(Duration::from_secs(0)), "0:00");
        assert_eq!(clock(Duration::from_secs(65)), "1:05");
        assert_eq!(clock(Duration::from_secs(3599)), "59:59");
        assert_eq!(clock(Duration::from_secs(3600 + 62)), "1:01:02");
    }

    #[test]
    fn the_least_important_parts_go_first_and_a_notice_is_cut_short() {
        let parts = || {
            vec![
                Part::new(100, Span::raw("state")),
                Part::new(20, Span::raw("bitrate")),
                Part::new(90, Span::raw("1:05")),
                Part {
                    priority: 60,
                    spans: vec![Span::raw("a long notice about something")],
                    shrink: true,
                    short: None,
                },
            ]
        };
        assert_eq!(
            text(&fit(parts(), 200)),
            "state  bitrate  1:05  a long notice about something"
        );
        // Without the bitrate it fits in 43; in 30 the notice is cut short.
        assert_eq!(
            text(&fit(parts(), 43)),
            "state  1:05  a long notice about something"
        );
        let cut = text(&fit(parts(), 30));
        assert_eq!(cut, "state  1:05  a long notice ab…");
        // Too narrow for a readable notice: it goes.
        assert_eq!(text(&fit(parts(), 20)), "state  1:05");
        assert_eq!(text(&fit(parts(), 3)), "state", "clipped at the edge");
    }
}
