//! The screen without colour: when to go without it, and how.
//!
//! Colour is off when `NO_COLOR` is set to anything but the empty string
//! (<https://no-color.org>), when `TERM` is `dumb`, or when the terminal's
//! terminfo entry says it has fewer than 8 colours (`vt100`, `vt220`...).
//! Then [`ColorMode::Mono`](super::ColorMode::Mono) holds: pictures are drawn
//! as a ramp of characters from dark to light ([`ramp`]), the keys stay in
//! reverse video and the important words in bold, and [`strip`] takes every
//! colour off the cells before they reach the terminal.

use std::path::PathBuf;

use ratatui::buffer::Buffer;
use ratatui::style::Color;

/// Characters from dark to light, one per cell of a picture without colour.
pub const RAMP: [&str; 10] = [" ", ".", ":", "-", "=", "+", "*", "#", "%", "@"];

/// The ramp character for a cell whose top and bottom pixels are `top` and
/// `bottom` (RGB): the brighter the pair, the denser the character.
pub fn ramp(top: [u8; 3], bottom: [u8; 3]) -> &'static str {
    let luma = |[r, g, b]: [u8; 3]| u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114;
    // 0 ..= 2 * 255_000
    let both = luma(top) + luma(bottom);
    let i = (both * RAMP.len() as u32 / (2 * 255_000 + 1)) as usize;
    RAMP[i.min(RAMP.len() - 1)]
}

/// Takes every colour off every cell of `buf` (modifiers such as bold and
/// reverse stay).
pub fn strip(buf: &mut Buffer) {
    for cell in &mut buf.content {
        cell.fg = Color::Reset;
        cell.bg = Color::Reset;
    }
}

/// Whether the screen goes without colour, from the environment: `NO_COLOR`
/// and `TERM`, and the terminfo entry `TERM` names.
pub fn colours_off_from_env() -> bool {
    let no_color = std::env::var("NO_COLOR").ok();
    let term = std::env::var("TERM").ok();
    let colours = term.as_deref().and_then(terminfo_colours);
    colours_off(no_color.as_deref(), term.as_deref(), colours)
}

/// Whether the screen goes without colour: `NO_COLOR` set and not empty,
/// `TERM=dumb`, or a terminfo entry with fewer than 8 colours (`colours`:
/// `None` when no entry was found, which leaves colour on).
pub fn colours_off(no_color: Option<&str>, term: Option<&str>, colours: Option<i32>) -> bool {
    no_color.is_some_and(|v| !v.is_empty())
        || term == Some("dumb")
        || colours.is_some_and(|c| c < 8)
}

/// The `colors` capability of `term`'s compiled terminfo entry: `Some(0)`
/// for an entry without it, `None` when no entry is found or it cannot be
/// read.
pub fn terminfo_colours(term: &str) -> Option<i32> {
    let first = term.chars().next()?;
    if term.contains('/') || term.starts_with('.') {
        return None;
    }
    terminfo_dirs().into_iter().find_map(|dir| {
        // Linux names the subfolder by the first letter, macOS by its hex code.
        [
            dir.join(first.to_string()).join(term),
            dir.join(format!("{:x}", first as u32)).join(term),
        ]
        .into_iter()
        .find_map(|path| std::fs::read(path).ok())
        .and_then(|bytes| colours_in_entry(&bytes))
    })
}

/// The folders terminfo looks in, in its order.
fn terminfo_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("TERMINFO") {
        dirs.push(PathBuf::from(d));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".terminfo"));
    }
    let defaults = ["/etc/terminfo", "/lib/terminfo", "/usr/share/terminfo"];
    match std::env::var("TERMINFO_DIRS") {
        Ok(list) => {
            for d in list.split(':') {
                if d.is_empty() {
                    dirs.extend(defaults.iter().map(PathBuf::from));
                } else {
                    dirs.push(PathBuf::from(d));
                }
            }
        }
        Err(_) => dirs.extend(defaults.iter().map(PathBuf::from)),
    }
    dirs
}

/// The index of `colors` among terminfo's numeric capabilities.
const COLORS_INDEX: usize = 13;

/// The `colors` number of a compiled terminfo entry (legacy 16-bit or
/// extended 32-bit numbers); `Some(0)` when the entry lacks it.
pub fn colours_in_entry(bytes: &[u8]) -> Option<i32> {
    let word = |i: usize| -> Option<usize> {
        let b = bytes.get(2 * i..2 * i + 2)?;
        Some(usize::from(u16::from_le_bytes([b[0], b[1]])))
    };
    let number_size = match word(0)? {
        0o432 => 2,
        0o1036 => 4,
        _ => return None,
    };
    let (names, bools, numbers) = (word(1)?, word(2)?, word(3)?);
    if numbers <= COLORS_INDEX {
        return Some(0);
    }
    let mut at = 12 + names + bools;
    at += at % 2;
    let at = at + COLORS_INDEX * number_size;
    let raw = bytes.get(at..at + number_size)?;
    let value = if number_size == 2 {
        i32::from(i16::from_le_bytes([raw[0], raw[1]]))
    } else {
        i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])
    };
    Some(value.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_dumb_and_few_colours_turn_colour_off() {
        assert!(colours_off(Some("1"), Some("xterm-256color"), Some(256)));
        assert!(
            !colours_off(Some(""), Some("xterm"), Some(8)),
            "an empty NO_COLOR does not count"
        );
        assert!(colours_off(None, Some("dumb"), None));
        assert!(colours_off(None, Some("vt100"), Some(0)));
        assert!(!colours_off(None, Some("linux"), Some(8)));
        assert!(
            !colours_off(None, Some("unknown-term"), None),
            "no entry: colour stays"
        );
    }

    #[test]
    fn the_ramp_goes_from_blank_to_dense() {
        assert_eq!(ramp([0, 0, 0], [0, 0, 0]), " ");
        assert_eq!(ramp([255, 255, 255], [255, 255, 255]), "@");
        assert_eq!(ramp([128, 128, 128], [128, 128, 128]), "+");
    }

    #[test]
    fn terminfo_entries_are_read_where_the_machine_has_them() {
        // Entries this machine may have; an entry that is there must read right.
        for (term, want) in [("vt100", 0), ("xterm", 8), ("xterm-256color", 256)] {
            if let Some(c) = terminfo_colours(term) {
                assert_eq!(c, want, "{term}");
            }
        }
        assert_eq!(terminfo_colours("no-such-terminal-here"), None);
        assert_eq!(terminfo_colours("../etc/passwd"), None);
    }

    #[test]
    fn a_compiled_entry_gives_its_colours() {
        // Header, names "t|x\0" (4), no booleans, 14 numbers (colors = 16).
        let mut e: Vec<u8> = Vec::new();
        for w in [0o432u16, 4, 0, 14, 0, 0] {
            e.extend_from_slice(&w.to_le_bytes());
        }
        e.extend_from_slice(b"t|x\0");
        for i in 0..14i16 {
            let v: i16 = if i == 13 { 16 } else { -1 };
            e.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(colours_in_entry(&e), Some(16));
        assert_eq!(colours_in_entry(b"garbage"), None);
    }
}
