//! The help overlay (`?`): every key and what it does, in the screen's
//! language, in a box over the middle of the screen. Any key closes it
//! ([`super::keys::handle_help_key`]).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use super::state::ScreenState;

/// The help's lines: each key (in narrow boxes only its first name) and
/// what it does, cut with `…` to `inner` columns.
pub fn help_lines(state: &ScreenState, inner: u16) -> Vec<Line<'static>> {
    let t = state.lang.layout();
    let inner = usize::from(inner);
    let full = t.help_keys.iter().map(|(k, _)| k.chars().count()).max();
    let what = t.help_keys.iter().map(|(_, w)| w.chars().count()).max();
    let widest = full.unwrap_or(0) + what.unwrap_or(0) + 3;
    // Narrow: the first name of each key only (`q` for `q, Esc, Ctrl-C`).
    let short = widest > inner;
    let key_of = |k: &'static str| -> &'static str {
        if short {
            k.split(", ").next().unwrap_or(k)
        } else {
            k
        }
    };
    let key_width = if short {
        t.help_keys
            .iter()
            .map(|(k, _)| key_of(k).chars().count())
            .max()
            .unwrap_or(0)
    } else {
        full.unwrap_or(0)
    };
    let room = inner.saturating_sub(key_width + 3);
    t.help_keys
        .iter()
        .map(|(k, what)| {
            let what: String = if what.chars().count() > room {
                let mut cut: String = what.chars().take(room.saturating_sub(1)).collect();
                cut.push('…');
                cut
            } else {
                (*what).to_owned()
            };
            Line::from(vec![
                Span::raw(" "),
                Span::styled(
                    format!("{:<key_width$}", key_of(k)),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw("  "),
                Span::raw(what),
            ])
        })
        .collect()
}

/// Draws the help box in the middle of `area` when it is open.
pub fn draw_help(buf: &mut Buffer, area: Rect, state: &ScreenState) {
    if !state.show_help || area.width < 8 || area.height < 3 {
        return;
    }
    let t = state.lang.layout();
    let max_inner = area.width.saturating_sub(2);
    let lines = help_lines(state, max_inner);
    let close = format!(" {} ", t.help_close);
    let title = format!(" {} ", t.help_title);
    let content = lines
        .iter()
        .map(Line::width)
        .max()
        .unwrap_or(0)
        .max(close.chars().count())
        + 1;
    let width = (content as u16 + 2).min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let boxed = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    Clear.render(boxed, buf);
    let mut block = Block::default().borders(Borders::ALL).title(Line::styled(
        title,
        Style::default().add_modifier(Modifier::BOLD),
    ));
    if close.chars().count() + 2 <= usize::from(width) {
        block = block.title_bottom(Line::raw(close));
    }
    Paragraph::new(lines)
        .block(block)
        .style(Style::default().fg(Color::White).bg(Color::Black))
        .render(boxed, buf);
}
