//! What the terminal can draw: asked where a protocol has a query (kitty's
//! graphics query, sixel in the Primary Device Attributes), read from the
//! environment otherwise (`TERM`, `TERM_PROGRAM`, `KITTY_WINDOW_ID`), and
//! overridden by `--render` / `WEBCALL_RENDER`. Inside tmux, tmux is asked
//! too ([`TmuxInfo`]): kitty images pass only with `allow-passthrough` on.
//!
//! The decision ([`choose`]) and the parsing of answers ([`parse_answer`])
//! are pure functions; only [`query_terminal`] talks to the terminal.

use std::time::Duration;

use super::i18n::Lang;
use super::pixels::Graphics;
use super::tmux::TmuxInfo;

/// The queries written to the terminal: kitty's graphics query (a 1x1 RGB
/// image id 31, `a=q`: checked, never stored), the cell size in pixels
/// (`CSI 16 t`, for terminals whose window size leaves it out), and then
/// the Primary Device Attributes request, which every terminal answers:
/// once its answer is in, the others would have come before it.
pub const QUERY: &[u8] = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\\x1b[16t\x1b[c";

/// What the terminal said to [`QUERY`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answer {
    /// The kitty graphics query was answered `OK`.
    pub kitty: bool,
    /// The device attributes list 4 (sixel graphics).
    pub sixel: bool,
    /// The device attributes arrived (the answer is complete).
    pub complete: bool,
    /// The cell size in pixels, width and height, when the terminal said.
    pub cell: Option<(u16, u16)>,
}

/// Reads the terminal's answer to [`QUERY`] from the bytes received so far.
pub fn parse_answer(bytes: &[u8]) -> Answer {
    let mut answer = Answer::default();
    let text = String::from_utf8_lossy(bytes);
    // kitty: ESC _ G i=31 ; OK ESC \  (an error answer names the problem instead).
    for apc in text.split("\x1b_G").skip(1) {
        let body = apc.split("\x1b\\").next().unwrap_or("");
        if let Some((keys, message)) = body.split_once(';')
            && keys.split(',').any(|k| k == "i=31")
            && message == "OK"
        {
            answer.kitty = true;
        }
    }
    // Cell size: ESC [ 6 ; height ; width t
    if let Some(start) = text.find("\x1b[6;")
        && let Some(len) = text[start + 4..].find('t')
        && let Some((h, w)) = text[start + 4..start + 4 + len].split_once(';')
        && let (Ok(h), Ok(w)) = (h.parse::<u16>(), w.parse::<u16>())
        && h > 0
        && w > 0
    {
        answer.cell = Some((w, h));
    }
    // Primary DA: ESC [ ? 6 2 ; 4 ; 2 2 c
    if let Some(start) = text.find("\x1b[?")
        && let Some(len) = text[start + 3..].find('c')
    {
        let params = &text[start + 3..start + 3 + len];
        if params.chars().all(|c| c.is_ascii_digit() || c == ';') {
            answer.complete = true;
            answer.sixel = params.split(';').skip(1).any(|p| p == "4");
        }
    }
    answer
}

/// What the environment says the terminal draws, if it says anything.
pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Option<Graphics> {
    let term = env("TERM").unwrap_or_default();
    let program = env("TERM_PROGRAM").unwrap_or_default();
    match program.as_str() {
        "iTerm.app" | "WezTerm" => return Some(Graphics::Iterm2),
        "ghostty" => return Some(Graphics::Kitty),
        _ => {}
    }
    if term == "xterm-kitty" || term == "xterm-ghostty" || env("KITTY_WINDOW_ID").is_some() {
        return Some(Graphics::Kitty);
    }
    if term.contains("foot") || term.contains("mlterm") {
        return Some(Graphics::Sixel);
    }
    None
}

/// True inside tmux, which passes no kitty images through without
/// unicode placeholders and answers device attributes itself.
pub fn in_tmux(env: impl Fn(&str) -> Option<String>) -> bool {
    env("TMUX").is_some_and(|v| !v.is_empty())
}

/// Inside tmux: whether the terminal tmux runs in speaks kitty's graphics
/// protocol, as far as can be told from inside. tmux sets its own `TERM`
/// and `TERM_PROGRAM`, so what is left is the environment the tmux server
/// was started with (`KITTY_WINDOW_ID` from kitty, `GHOSTTY_RESOURCES_DIR`
/// from ghostty), the terminal name the attached client gave tmux
/// (`xterm-kitty`, `xterm-ghostty`) and the terminal's own answer if one
/// came through.
pub fn outer_is_kitty(
    env: impl Fn(&str) -> Option<String> + Copy,
    tmux: &TmuxInfo,
    answer: Option<Answer>,
) -> bool {
    answer.is_some_and(|a| a.kitty)
        || from_env(env) == Some(Graphics::Kitty)
        || env("GHOSTTY_RESOURCES_DIR").is_some_and(|v| !v.is_empty())
        || tmux
            .outer_term
            .as_deref()
            .is_some_and(|t| t == "xterm-kitty" || t == "xterm-ghostty")
}

/// Why the screen draws half blocks instead of what was asked for or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// iTerm2 images were asked for inside tmux, which cannot carry them.
    NotThroughTmux,
    /// kitty images were asked for (or the outer terminal is kitty) inside
    /// tmux, but tmux's `allow-passthrough` is off.
    PassthroughOff,
}

impl Refusal {
    /// The status-line notice saying why, and what to do.
    pub fn notice(self, lang: Lang) -> &'static str {
        match self {
            Self::NotThroughTmux => lang.text().tmux_no_iterm2,
            Self::PassthroughOff => lang.text().tmux_passthrough_off,
        }
    }
}

/// The drawing to use: `asked` (`None` for auto) against what the
/// environment and the terminal's `answer` say, and inside tmux what tmux
/// allows (`tmux`, asked only there). Inside tmux kitty images are drawn
/// as Unicode placeholders ([`Graphics::KittyTmux`]) when the outer
/// terminal speaks kitty ([`outer_is_kitty`]) or kitty is asked for by
/// name, and the passthrough is allowed; sixel only when asked for by name
/// (tmux 3.4 can pass sixel); half blocks otherwise. Returns the choice and
/// why half blocks replaced what was asked for or found, if they did.
pub fn choose(
    asked: Option<Graphics>,
    env: impl Fn(&str) -> Option<String> + Copy,
    answer: Option<Answer>,
    tmux: Option<&TmuxInfo>,
) -> (Graphics, Option<Refusal>) {
    let in_tmux = in_tmux(env);
    let no_tmux = TmuxInfo::default();
    let info = tmux.unwrap_or(&no_tmux);
    let through_tmux = || {
        if info.passthrough {
            (Graphics::KittyTmux, None)
        } else {
            (Graphics::Blocks, Some(Refusal::PassthroughOff))
        }
    };
    match asked {
        Some(Graphics::Kitty | Graphics::KittyTmux) if in_tmux => through_tmux(),
        Some(Graphics::Iterm2) if in_tmux => (Graphics::Blocks, Some(Refusal::NotThroughTmux)),
        Some(g) => (g, None),
        None if in_tmux && outer_is_kitty(env, info, answer) => through_tmux(),
        None if in_tmux => (Graphics::Blocks, None),
        None => {
            let answer = answer.unwrap_or_default();
            let g = if answer.kitty {
                Graphics::Kitty
            } else if let Some(g) = from_env(env) {
                g
            } else if answer.sixel {
                Graphics::Sixel
            } else {
                Graphics::Blocks
            };
            (g, None)
        }
    }
}

/// Writes [`QUERY`] to the terminal (in raw mode) and reads the answer
/// until the device attributes arrive or `timeout` passes. Must run before
/// anything else reads the terminal's input.
#[cfg(unix)]
pub fn query_terminal(timeout: Duration) -> std::io::Result<Answer> {
    use std::io::Write;
    use std::time::Instant;

    use rustix::event::{PollFd, PollFlags, Timespec, poll};

    let mut out = std::io::stdout();
    out.write_all(QUERY)?;
    out.flush()?;
    let stdin = rustix::stdio::stdin();
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let wait = Timespec::try_from(left).map_err(std::io::Error::other)?;
        let mut fds = [PollFd::new(&stdin, PollFlags::IN)];
        if poll(&mut fds, Some(&wait))? == 0 {
            break;
        }
        let n = rustix::io::read(stdin, &mut buf)?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if parse_answer(&got).complete {
            break;
        }
    }
    Ok(parse_answer(&got))
}

/// Without a Unix terminal to poll, nothing is asked.
#[cfg(not(unix))]
pub fn query_terminal(_timeout: Duration) -> std::io::Result<Answer> {
    Ok(Answer::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + Copy + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn kitty_ok_and_sixel_attributes_are_read_from_the_answer() {
        let kitty = parse_answer(b"\x1b_Gi=31;OK\x1b\\\x1b[?62;22c");
        assert_eq!(
            kitty,
            Answer {
                kitty: true,
                sixel: false,
                complete: true,
                cell: None,
            }
        );
        let xterm = parse_answer(b"\x1b[6;13;6t\x1b[?63;1;2;4;6;9;15;16;22;28c");
        assert!(xterm.sixel && !xterm.kitty && xterm.complete);
        assert_eq!(xterm.cell, Some((6, 13)));
        let error = parse_answer(b"\x1b_Gi=31;EINVAL:bad\x1b\\\x1b[?1;2c");
        assert!(!error.kitty && !error.sixel && error.complete);
        // 4 as the class (first parameter) is not the sixel feature.
        assert!(!parse_answer(b"\x1b[?4;2c").sixel);
        assert!(!parse_answer(b"\x1b_Gi=31;OK\x1b\\").complete);
    }

    #[test]
    fn the_environment_names_the_terminal() {
        assert_eq!(
            from_env(env(&[("TERM", "xterm-kitty")])),
            Some(Graphics::Kitty)
        );
        assert_eq!(
            from_env(env(&[("KITTY_WINDOW_ID", "1"), ("TERM", "xterm-256color")])),
            Some(Graphics::Kitty)
        );
        assert_eq!(
            from_env(env(&[("TERM_PROGRAM", "ghostty")])),
            Some(Graphics::Kitty)
        );
        assert_eq!(
            from_env(env(&[("TERM_PROGRAM", "iTerm.app")])),
            Some(Graphics::Iterm2)
        );
        assert_eq!(
            from_env(env(&[("TERM_PROGRAM", "WezTerm")])),
            Some(Graphics::Iterm2)
        );
        assert_eq!(from_env(env(&[("TERM", "xterm-256color")])), None);
    }

    #[test]
    fn auto_prefers_the_answer_then_the_environment_then_sixel() {
        let sixel = Answer {
            sixel: true,
            complete: true,
            ..Answer::default()
        };
        let kitty = Answer {
            kitty: true,
            complete: true,
            ..Answer::default()
        };
        let plain = env(&[("TERM", "xterm")]);
        assert_eq!(choose(None, plain, Some(sixel), None).0, Graphics::Sixel);
        assert_eq!(choose(None, plain, Some(kitty), None).0, Graphics::Kitty);
        assert_eq!(choose(None, plain, None, None).0, Graphics::Blocks);
        assert_eq!(
            choose(None, env(&[("TERM_PROGRAM", "WezTerm")]), Some(sixel), None).0,
            Graphics::Iterm2
        );
        assert_eq!(
            choose(Some(Graphics::Blocks), plain, Some(kitty), None).0,
            Graphics::Blocks
        );
        assert_eq!(
            choose(Some(Graphics::Sixel), plain, None, None),
            (Graphics::Sixel, None)
        );
    }

    #[test]
    fn tmux_gets_kitty_placeholders_only_with_passthrough_and_a_kitty_outside() {
        let allowed = TmuxInfo {
            passthrough: true,
            outer_term: None,
        };
        let closed = TmuxInfo::default();
        let plain = env(&[
            ("TMUX", "/tmp/tmux-0/default,1,0"),
            ("TERM", "tmux-256color"),
        ]);
        let kitty = env(&[
            ("TMUX", "/tmp/tmux-0/default,1,0"),
            ("TERM", "tmux-256color"),
            ("TERM_PROGRAM", "tmux"),
            ("KITTY_WINDOW_ID", "3"),
        ]);
        let sixel = Answer {
            sixel: true,
            complete: true,
            ..Answer::default()
        };
        // Auto: the outer kitty from the environment, or from tmux's client.
        assert_eq!(
            choose(None, kitty, None, Some(&allowed)),
            (Graphics::KittyTmux, None)
        );
        assert_eq!(
            choose(None, kitty, None, Some(&closed)),
            (Graphics::Blocks, Some(Refusal::PassthroughOff))
        );
        let client_kitty = TmuxInfo {
            passthrough: true,
            outer_term: Some("xterm-kitty".into()),
        };
        assert_eq!(
            choose(None, plain, None, Some(&client_kitty)).0,
            Graphics::KittyTmux
        );
        assert_eq!(
            choose(None, plain, Some(sixel), Some(&allowed)),
            (Graphics::Blocks, None),
            "no kitty outside: half blocks, nothing to say"
        );
        // By name.
        assert_eq!(
            choose(Some(Graphics::Kitty), plain, None, Some(&allowed)),
            (Graphics::KittyTmux, None)
        );
        assert_eq!(
            choose(Some(Graphics::Kitty), plain, None, Some(&closed)),
            (Graphics::Blocks, Some(Refusal::PassthroughOff))
        );
        assert_eq!(
            choose(Some(Graphics::Iterm2), kitty, None, Some(&allowed)),
            (Graphics::Blocks, Some(Refusal::NotThroughTmux))
        );
        assert_eq!(
            choose(Some(Graphics::Sixel), plain, None, Some(&closed)).0,
            Graphics::Sixel
        );
        for refusal in [Refusal::NotThroughTmux, Refusal::PassthroughOff] {
            assert!(refusal.notice(Lang::Ru).contains("tmux"));
            assert!(refusal.notice(Lang::En).contains("tmux"));
        }
        assert!(
            Refusal::PassthroughOff
                .notice(Lang::En)
                .contains("allow-passthrough on")
        );
    }
}
