//! The end screen: when the call is over the screen is cleared and says
//! how long the call was, why it ended, in words, and how its quality
//! went, for a moment ([`END_HOLD`], or until a key is pressed) before the
//! program gives the terminal back and prints its summary.

use std::io;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};
use tokio::sync::mpsc;
use webcall_core::call::quality::Grade;
use webcall_core::call::{EndReason, StatsReport};
use webcall_core::protocol::ErrorCode;

use super::i18n::Lang;
use super::painter::Painter;
use super::quality::{grade_colour, grade_word, path_word};
use super::run::Outcome;
use super::state::ScreenState;
use super::status::clock;
use super::terminal::Input;

/// How long the end screen stays, at most; any key closes it sooner.
pub const END_HOLD: Duration = Duration::from_secs(3);

/// Why the call ended, as the end screen says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndWhy {
    /// This side hung up (a key, Ctrl-C, or the terminal went away).
    YouHungUp,
    /// The time given for the call (`--duration`) ran out.
    TimeUp,
    /// The other side hung up.
    PeerHungUp,
    /// The signaling server went away and the call could not go on.
    ServerLost,
    /// The room's link expired during the call.
    RoomExpired,
    /// This seat was taken by the same participant from another connection.
    Replaced,
    /// The call failed; the error, in words.
    ConnectionLost(String),
    /// The server closed the call without an error.
    Closed,
}

impl EndWhy {
    /// Why the screen loop ended with `outcome`.
    pub fn from_outcome(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::HungUp => Self::YouHungUp,
            Outcome::TimeUp => Self::TimeUp,
            Outcome::PeerLeft => Self::PeerHungUp,
            Outcome::Ended(EndReason::HungUp) => Self::Closed,
            Outcome::Ended(EndReason::Failed(e)) => Self::from_error(e),
            Outcome::Ended(_) => Self::Closed,
        }
    }

    fn from_error(e: &webcall_core::Error) -> Self {
        use webcall_core::Error as E;
        match e {
            E::ServerLost { .. } => Self::ServerLost,
            E::RoomNotFound
            | E::Server {
                code: Some(ErrorCode::RoomExpired | ErrorCode::RoomNotFound),
                ..
            } => Self::RoomExpired,
            E::Server {
                code: Some(ErrorCode::Replaced),
                ..
            } => Self::Replaced,
            E::SignalingClosed {
                source: Some(inner),
            } => Self::from_error(inner),
            other => Self::ConnectionLost(other.to_string()),
        }
    }

    /// The reason in `lang` (a failure's own message stays as it is).
    pub fn words(&self, lang: Lang) -> String {
        let t = lang.layout();
        match self {
            Self::YouHungUp => t.why_you_hung_up.to_owned(),
            Self::TimeUp => t.why_time_up.to_owned(),
            Self::PeerHungUp => t.why_peer_hung_up.to_owned(),
            Self::ServerLost => t.why_server_lost.to_owned(),
            Self::RoomExpired => t.why_room_expired.to_owned(),
            Self::Replaced => t.why_replaced.to_owned(),
            Self::ConnectionLost(e) => format!("{}: {e}", t.why_connection_lost),
            Self::Closed => t.why_closed.to_owned(),
        }
    }
}

/// What the end screen shows.
#[derive(Debug, Clone, PartialEq)]
pub struct EndView {
    /// Why the call ended.
    pub why: EndWhy,
    /// How long it was connected; `None`: it never connected.
    pub talked: Option<Duration>,
    /// How its quality went (`good 92 % of the time (poor 8 %, bad 0 %)`)
    /// and the grade it mostly had, when it was graded.
    pub quality: Option<(String, Option<Grade>)>,
    /// Direct or relayed, when known.
    pub path: Option<&'static str>,
}

impl EndView {
    /// The end screen of a call that ended for `why` after `talked`, with
    /// its figures from `report` when there is one, in `lang`.
    pub fn new(
        why: EndWhy,
        talked: Option<Duration>,
        report: Option<&StatsReport>,
        lang: Lang,
    ) -> Self {
        let words = report.and_then(|r| quality_words(r, lang));
        let grade = report.and_then(|r| r.quality.time_in.mostly().map(|(g, _)| g));
        Self {
            why,
            talked,
            quality: words.as_ref().map(|(q, _)| (q.clone(), grade)),
            path: words.and_then(|(_, p)| p),
        }
    }
}

/// How a call's quality went and its path, in `lang`: (`good 92 % of the
/// time (poor 8 %, bad 0 %)` or `not graded`, `direct`); `None` when it
/// never connected.
pub fn quality_words(r: &StatsReport, lang: Lang) -> Option<(String, Option<&'static str>)> {
    let path = r.path.map(|p| path_word(lang, p));
    let graded = r.quality.time_in.mostly();
    if path.is_none() && graded.is_none() {
        return None;
    }
    let pct = |v: f64| format!("{:.0} %", v * 100.0);
    let quality = match graded {
        None => match lang {
            Lang::En => "not graded".to_owned(),
            Lang::Ru => "не оценено".to_owned(),
        },
        Some((grade, share)) => {
            let others: Vec<String> = [
                (Grade::Good, r.quality.time_in.good),
                (Grade::Poor, r.quality.time_in.poor),
                (Grade::Bad, r.quality.time_in.bad),
            ]
            .into_iter()
            .filter(|(g, _)| *g != grade)
            .map(|(g, v)| format!("{} {}", grade_word(lang, g), pct(v)))
            .collect();
            let of_the_time = match lang {
                Lang::En => "of the time",
                Lang::Ru => "времени",
            };
            format!(
                "{} {} {of_the_time} ({})",
                grade_word(lang, grade),
                pct(share),
                others.join(", ")
            )
        }
    };
    Some((quality, path))
}

/// Draws the end screen of `view` over the whole of `area` (cleared).
pub fn draw_end(buf: &mut Buffer, area: Rect, state: &ScreenState, view: &EndView) {
    Clear.render(area, buf);
    let lang = state.lang;
    let t = lang.layout();
    let label = Style::default().fg(Color::Gray);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = vec![
        Line::styled(lang.connection(super::state::Connection::Ended), bold),
        Line::raw(""),
        Line::styled(view.why.words(lang), bold),
        Line::raw(""),
        Line::from(vec![
            Span::styled(format!("{} ", t.duration), label),
            Span::styled(
                view.talked
                    .map_or_else(|| t.never_connected.to_owned(), clock),
                bold,
            ),
        ]),
    ];
    if let Some((quality, grade)) = &view.quality {
        let style = grade.map_or(Style::default(), |g| Style::default().fg(grade_colour(g)));
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t.quality), label),
            Span::styled(quality.clone(), style),
        ]));
    }
    if let Some(path) = view.path {
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", t.path), label),
            Span::raw(path),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(t.end_close, label));
    // Centred as a block; long lines wrap rather than run off the edge.
    let width = area.width.saturating_sub(2);
    let rows: u16 = lines
        .iter()
        .map(|l| (l.width().max(1) as u16).div_ceil(width.max(1)))
        .sum();
    let top = area.y + area.height.saturating_sub(rows) / 2;
    let body = Rect::new(
        area.x + 1.min(area.width),
        top,
        width,
        area.bottom().saturating_sub(top),
    );
    Paragraph::new(lines)
        .alignment(Alignment::Center)
        .wrap(Wrap { trim: true })
        .render(body, buf);
}

/// Shows the end screen of `view` on `terminal` until `hold` has passed, a
/// key is pressed or the terminal is gone; a resize draws it again.
pub async fn show<B>(
    terminal: &mut Terminal<B>,
    state: &mut ScreenState,
    view: EndView,
    input: &mut mpsc::UnboundedReceiver<Input>,
    mut painter: Option<&mut Painter>,
    hold: Duration,
) -> io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    state.ended = Some(view);
    state.show_help = false;
    super::run::redraw(terminal, state, painter.as_deref_mut())?;
    let until = tokio::time::sleep(hold);
    tokio::pin!(until);
    loop {
        tokio::select! {
            () = &mut until => return Ok(()),
            got = input.recv() => match got {
                Some(Input::Key(k)) if k.kind == ratatui::crossterm::event::KeyEventKind::Press => {
                    return Ok(());
                }
                Some(Input::Key(_)) => {}
                Some(Input::Resize) => {
                    terminal.autoresize().map_err(io::Error::other)?;
                    if let Some(p) = painter.as_deref_mut() {
                        p.invalidate()?;
                    }
                    super::run::redraw(terminal, state, painter.as_deref_mut())?;
                }
                None => return Ok(()),
            },
        }
    }
}
