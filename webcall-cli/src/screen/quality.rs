//! The call's quality on the screen: the grade on the status line (a
//! coloured mark and a word, so it reads without colour too) and, toggled
//! with `i`, a box of details (codec, resolution, bitrates, round-trip
//! time, loss, direct or relayed). The grade itself comes from
//! [`webcall_core::call::quality`]; this module only shows it, in English
//! and Russian.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};
use webcall_core::call::CallStats;
use webcall_core::call::quality::{Grade, MediaPath};

use super::i18n::Lang;
use super::state::ScreenState;

/// What the screen shows of the call's quality, from the latest stats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityView {
    /// The grade shown; `None` before the first.
    pub grade: Option<Grade>,
    /// The incoming video's codec (`H264`).
    pub codec: Option<String>,
    /// The incoming picture's size, once decoded.
    pub resolution: Option<(u32, u32)>,
    /// Bits per second received.
    pub bitrate_in: u64,
    /// Bits per second sent.
    pub bitrate_out: u64,
    /// Round-trip time over the quality window, ms.
    pub rtt_ms: Option<f64>,
    /// Fraction of packets lost over the quality window.
    pub loss: f64,
    /// Direct or relayed, once a candidate pair is selected.
    pub path: Option<MediaPath>,
}

impl QualityView {
    /// The view of one stats snapshot.
    pub fn from_stats(s: &CallStats) -> Self {
        let r = &s.received;
        Self {
            grade: s.quality.grade,
            codec: s.video_codec.clone(),
            resolution: (r.video_width > 0).then_some((r.video_width, r.video_height)),
            bitrate_in: s.receive_bitrate_bps,
            bitrate_out: s.send_bitrate_bps,
            rtt_ms: s.quality.measures.rtt_ms.or(s.rtt_ms),
            loss: s.quality.measures.loss,
            path: s.path,
        }
    }
}

/// The grade's word in `lang`.
pub fn grade_word(lang: Lang, grade: Grade) -> &'static str {
    match (lang, grade) {
        (Lang::En, Grade::Good) => "good",
        (Lang::En, Grade::Poor) => "poor",
        (Lang::En, Grade::Bad) => "bad",
        (Lang::Ru, Grade::Good) => "хорошее",
        (Lang::Ru, Grade::Poor) => "слабое",
        (Lang::Ru, Grade::Bad) => "плохое",
    }
}

/// The path's word in `lang`.
pub fn path_word(lang: Lang, path: MediaPath) -> &'static str {
    match (lang, path) {
        (Lang::En, MediaPath::Direct) => "direct",
        (Lang::En, MediaPath::Relayed) => "relayed (TURN)",
        (Lang::Ru, MediaPath::Direct) => "напрямую",
        (Lang::Ru, MediaPath::Relayed) => "через ретранслятор (TURN)",
    }
}

/// The colour of a grade.
pub fn grade_colour(grade: Grade) -> Color {
    match grade {
        Grade::Good => Color::Green,
        Grade::Poor => Color::Yellow,
        Grade::Bad => Color::Red,
    }
}

/// Label words of one language.
struct Words {
    quality: &'static str,
    details: &'static str,
    codec: &'static str,
    resolution: &'static str,
    bitrate: &'static str,
    rtt: &'static str,
    loss: &'static str,
    path: &'static str,
    dropped: &'static str,
    unknown: &'static str,
}

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::En => &Words {
            quality: "quality",
            details: "details",
            codec: "codec",
            resolution: "resolution",
            bitrate: "bitrate ↓/↑",
            rtt: "round trip",
            loss: "loss",
            path: "path",
            dropped: "pictures skipped",
            unknown: "-",
        },
        Lang::Ru => &Words {
            quality: "качество",
            details: "подробности",
            codec: "кодек",
            resolution: "разрешение",
            bitrate: "битрейт ↓/↑",
            rtt: "задержка (туда-обратно)",
            loss: "потери",
            path: "путь",
            dropped: "кадров пропущено",
            unknown: "-",
        },
    }
}

/// The key help's word for the details toggle.
pub fn key_details(lang: Lang) -> &'static str {
    words(lang).details
}

/// The status line's quality field: `▮▮▮ quality good`, coloured by grade;
/// empty before the first grade.
pub fn status_spans(state: &ScreenState) -> Vec<Span<'static>> {
    let Some(grade) = state.quality.as_ref().and_then(|q| q.grade) else {
        return Vec::new();
    };
    let bars = match grade {
        Grade::Good => "▮▮▮",
        Grade::Poor => "▮▮▯",
        Grade::Bad => "▮▯▯",
    };
    let style = Style::default().fg(grade_colour(grade));
    vec![
        Span::raw("  "),
        Span::styled(format!("{bars} "), style),
        Span::styled(
            format!(
                "{} {}",
                words(state.lang).quality,
                grade_word(state.lang, grade)
            ),
            style.add_modifier(Modifier::BOLD),
        ),
    ]
}

fn bitrate(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{:.1} Mbit/s", bps as f64 / 1e6)
    } else {
        format!("{} kbit/s", bps / 1000)
    }
}

/// The details' lines: label and value.
pub fn detail_lines(lang: Lang, q: &QualityView) -> Vec<(&'static str, String)> {
    let w = words(lang);
    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| w.unknown.to_owned());
    vec![
        (
            w.quality,
            or_unknown(q.grade.map(|g| grade_word(lang, g).to_owned())),
        ),
        (w.codec, or_unknown(q.codec.clone())),
        (
            w.resolution,
            or_unknown(q.resolution.map(|(x, y)| format!("{x}x{y}"))),
        ),
        (
            w.bitrate,
            format!("{} / {}", bitrate(q.bitrate_in), bitrate(q.bitrate_out)),
        ),
        (w.rtt, or_unknown(q.rtt_ms.map(|ms| format!("{ms:.0} ms")))),
        (w.loss, format!("{:.1} %", q.loss * 100.0)),
        (
            w.path,
            or_unknown(q.path.map(|p| path_word(lang, p).to_owned())),
        ),
    ]
}

/// Draws the details box in the top-left corner of `video` when the user
/// asked for it.
pub fn draw_details(buf: &mut Buffer, video: Rect, state: &ScreenState) {
    if !state.show_details {
        return;
    }
    let q = state.quality.clone().unwrap_or_default();
    let mut lines = detail_lines(state.lang, &q);
    if state.graphics.is_pixels() {
        // Pictures the terminal was too slow to draw (terminal images only).
        lines.push((
            words(state.lang).dropped,
            state.dropped_frames().to_string(),
        ));
    }
    let label_width = lines
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0);
    let text: Vec<Line> = lines
        .into_iter()
        .map(|(label, value)| {
            Line::from(vec![
                Span::styled(
                    format!("{label:<label_width$}  "),
                    Style::default().fg(Color::Gray),
                ),
                Span::raw(value),
            ])
        })
        .collect();
    let width = text
        .iter()
        .map(Line::width)
        .max()
        .unwrap_or(0)
        .saturating_add(4) as u16;
    let height = text.len() as u16 + 2;
    let area = Rect::new(
        video.x,
        video.y,
        width.min(video.width),
        height.min(video.height),
    );
    if area.width < 10 || area.height < 3 {
        return;
    }
    Clear.render(area, buf);
    Paragraph::new(text)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", words(state.lang).details)),
        )
        .style(Style::default().fg(Color::White).bg(Color::Black))
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_stats_reach_the_screen_as_a_quality_view() {
        use webcall_core::call::quality::QualityReport;
        use webcall_core::call::{CallEvent, SelectedPair};

        use crate::screen::ScreenEvent;
        use crate::screen::engine::screen_events;

        let mut s = CallStats::default();
        s.quality = QualityReport {
            grade: Some(Grade::Good),
            ..QualityReport::default()
        };
        s.rtt_ms = Some(12.0);
        s.received.video_width = 640;
        s.received.video_height = 480;
        s.video_codec = Some("H264".into());
        let pair = SelectedPair {
            local_type: "relay".into(),
            remote_type: "host".into(),
            protocol: "udp".into(),
        };
        s.path = Some(pair.path());
        let events = screen_events(CallEvent::Stats(Box::new(s)));
        let Some(ScreenEvent::Quality(q)) = events.last() else {
            panic!("no quality view in {events:?}");
        };
        assert_eq!(q.grade, Some(Grade::Good));
        assert_eq!(
            q.rtt_ms,
            Some(12.0),
            "the last rtt until the window has one"
        );
        assert_eq!(q.resolution, Some((640, 480)));
        assert_eq!(q.codec.as_deref(), Some("H264"));
        assert_eq!(q.path, Some(MediaPath::Relayed));
    }

    #[test]
    fn details_name_every_figure_in_both_languages() {
        let q = QualityView {
            grade: Some(Grade::Poor),
            codec: Some("H264".into()),
            resolution: Some((640, 480)),
            bitrate_in: 1_500_000,
            bitrate_out: 300_000,
            rtt_ms: Some(250.4),
            loss: 0.042,
            path: Some(MediaPath::Relayed),
        };
        let en: Vec<String> = detail_lines(Lang::En, &q)
            .into_iter()
            .map(|(l, v)| format!("{l}: {v}"))
            .collect();
        assert_eq!(
            en,
            [
                "quality: poor",
                "codec: H264",
                "resolution: 640x480",
                "bitrate ↓/↑: 1.5 Mbit/s / 300 kbit/s",
                "round trip: 250 ms",
                "loss: 4.2 %",
                "path: relayed (TURN)",
            ]
        );
        let ru = detail_lines(Lang::Ru, &QualityView::default());
        assert_eq!(ru[0], ("качество", "-".to_owned()));
        assert_eq!(ru[6], ("путь", "-".to_owned()));
    }
}
