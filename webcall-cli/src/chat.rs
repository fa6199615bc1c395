//! Chat text at the terminal's edge: received messages made safe to print
//! on one line, and lines typed on standard input made into messages.
//!
//! A received text is plain text from the other side. Printed as is, a
//! newline inside it would split one message over several lines, and an
//! escape sequence would drive the terminal. So [`escape`] writes a
//! backslash as `\\`, newline, carriage return and tab as `\n`, `\r`, `\t`,
//! and any other control character as `\u{..}`; everything else (any
//! script, emoji) is printed as it is. One message is always one line, and
//! the original text can be recovered from it.

/// The text on one line, control characters escaped (see the module doc).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// One line read from standard input (with or without its `\n` or
/// `\r\n`), as the text of a chat message: invalid UTF-8 is replaced,
/// and an empty line gives `None` (nothing to send).
pub fn input_line(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_is_one_printable_line() {
        assert_eq!(escape("Привет! 😀 <b>"), "Привет! 😀 <b>");
        assert_eq!(escape("a\nb\r\n\tc\\n"), "a\\nb\\r\\n\\tc\\\\n");
        assert_eq!(escape("\x1b[2J\u{7f}"), "\\u{1b}[2J\\u{7f}");
        let long = "x".repeat(4000);
        assert_eq!(escape(&long), long);
    }

    #[test]
    fn input_lines_lose_their_end_and_empty_ones_are_skipped() {
        assert_eq!(input_line(b"hello\n").as_deref(), Some("hello"));
        assert_eq!(input_line(b"hello\r\n").as_deref(), Some("hello"));
        assert_eq!(input_line(b"last").as_deref(), Some("last"));
        assert_eq!(input_line(b"\n"), None);
        assert_eq!(input_line(b""), None);
        assert_eq!(input_line(b"\xffok\n").as_deref(), Some("\u{fffd}ok"));
    }
}
