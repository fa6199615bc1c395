//! Pictures inside tmux: kitty's graphics protocol in Unicode placeholder
//! mode. tmux keeps text, not images, so the picture is sent to the outer
//! terminal through tmux's passthrough ([`passthrough`]) as a virtual
//! placement (`U=1`, so many columns and rows), and the cells it covers are
//! written as text: each holds U+10EEEE ([`PLACEHOLDER`]) with two combining
//! marks from kitty's table naming its row and column ([`placeholder`]),
//! coloured with the image id ([`id_colour`]). tmux then moves, clips and
//! clears the picture as it does any text: a pane switch, a resize or a
//! clear leaves no stray image behind.
//!
//! This module also asks tmux what it allows ([`TmuxInfo::ask`]): the
//! passthrough is off unless `allow-passthrough` is `on` or `all`.
//! Everything else is a pure function from ids, cells and pictures to
//! bytes or cells.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use webcall_core::media::VideoFrame;

use super::pixels::{EncodeError, KITTY_CHUNK, kitty_delete, png};

/// The character kitty replaces with a piece of an image.
pub const PLACEHOLDER: char = '\u{10EEEE}';

/// kitty's row and column marks: the n-th combining mark stands for the
/// number n. The list is kitty's `rowcolumn-diacritics.txt` (combining
/// marks of class 230 from Unicode 6.0 without decompositions, in code
/// point order); a picture can be at most this many cells wide and high.
pub const DIACRITICS: [char; 297] = [
    '\u{0305}',
    '\u{030D}',
    '\u{030E}',
    '\u{0310}',
    '\u{0312}',
    '\u{033D}',
    '\u{033E}',
    '\u{033F}',
    '\u{0346}',
    '\u{034A}',
    '\u{034B}',
    '\u{034C}',
    '\u{0350}',
    '\u{0351}',
    '\u{0352}',
    '\u{0357}',
    '\u{035B}',
    '\u{0363}',
    '\u{0364}',
    '\u{0365}',
    '\u{0366}',
    '\u{0367}',
    '\u{0368}',
    '\u{0369}',
    '\u{036A}',
    '\u{036B}',
    '\u{036C}',
    '\u{036D}',
    '\u{036E}',
    '\u{036F}',
    '\u{0483}',
    '\u{0484}',
    '\u{0485}',
    '\u{0486}',
    '\u{0487}',
    '\u{0592}',
    '\u{0593}',
    '\u{0594}',
    '\u{0595}',
    '\u{0597}',
    '\u{0598}',
    '\u{0599}',
    '\u{059C}',
    '\u{059D}',
    '\u{059E}',
    '\u{059F}',
    '\u{05A0}',
    '\u{05A1}',
    '\u{05A8}',
    '\u{05A9}',
    '\u{05AB}',
    '\u{05AC}',
    '\u{05AF}',
    '\u{05C4}',
    '\u{0610}',
    '\u{0611}',
    '\u{0612}',
    '\u{0613}',
    '\u{0614}',
    '\u{0615}',
    '\u{0616}',
    '\u{0617}',
    '\u{0657}',
    '\u{0658}',
    '\u{0659}',
    '\u{065A}',
    '\u{065B}',
    '\u{065D}',
    '\u{065E}',
    '\u{06D6}',
    '\u{06D7}',
    '\u{06D8}',
    '\u{06D9}',
    '\u{06DA}',
    '\u{06DB}',
    '\u{06DC}',
    '\u{06DF}',
    '\u{06E0}',
    '\u{06E1}',
    '\u{06E2}',
    '\u{06E4}',
    '\u{06E7}',
    '\u{06E8}',
    '\u{06EB}',
    '\u{06EC}',
    '\u{0730}',
    '\u{0732}',
    '\u{0733}',
    '\u{0735}',
    '\u{0736}',
    '\u{073A}',
    '\u{073D}',
    '\u{073F}',
    '\u{0740}',
    '\u{0741}',
    '\u{0743}',
    '\u{0745}',
    '\u{0747}',
    '\u{0749}',
    '\u{074A}',
    '\u{07EB}',
    '\u{07EC}',
    '\u{07ED}',
    '\u{07EE}',
    '\u{07EF}',
    '\u{07F0}',
    '\u{07F1}',
    '\u{07F3}',
    '\u{0816}',
    '\u{0817}',
    '\u{0818}',
    '\u{0819}',
    '\u{081B}',
    '\u{081C}',
    '\u{081D}',
    '\u{081E}',
    '\u{081F}',
    '\u{0820}',
    '\u{0821}',
    '\u{0822}',
    '\u{0823}',
    '\u{0825}',
    '\u{0826}',
    '\u{0827}',
    '\u{0829}',
    '\u{082A}',
    '\u{082B}',
    '\u{082C}',
    '\u{082D}',
    '\u{0951}',
    '\u{0953}',
    '\u{0954}',
    '\u{0F82}',
    '\u{0F83}',
    '\u{0F86}',
    '\u{0F87}',
    '\u{135D}',
    '\u{135E}',
    '\u{135F}',
    '\u{17DD}',
    '\u{193A}',
    '\u{1A17}',
    '\u{1A75}',
    '\u{1A76}',
    '\u{1A77}',
    '\u{1A78}',
    '\u{1A79}',
    '\u{1A7A}',
    '\u{1A7B}',
    '\u{1A7C}',
    '\u{1B6B}',
    '\u{1B6D}',
    '\u{1B6E}',
    '\u{1B6F}',
    '\u{1B70}',
    '\u{1B71}',
    '\u{1B72}',
    '\u{1B73}',
    '\u{1CD0}',
    '\u{1CD1}',
    '\u{1CD2}',
    '\u{1CDA}',
    '\u{1CDB}',
    '\u{1CE0}',
    '\u{1DC0}',
    '\u{1DC1}',
    '\u{1DC3}',
    '\u{1DC4}',
    '\u{1DC5}',
    '\u{1DC6}',
    '\u{1DC7}',
    '\u{1DC8}',
    '\u{1DC9}',
    '\u{1DCB}',
    '\u{1DCC}',
    '\u{1DD1}',
    '\u{1DD2}',
    '\u{1DD3}',
    '\u{1DD4}',
    '\u{1DD5}',
    '\u{1DD6}',
    '\u{1DD7}',
    '\u{1DD8}',
    '\u{1DD9}',
    '\u{1DDA}',
    '\u{1DDB}',
    '\u{1DDC}',
    '\u{1DDD}',
    '\u{1DDE}',
    '\u{1DDF}',
    '\u{1DE0}',
    '\u{1DE1}',
    '\u{1DE2}',
    '\u{1DE3}',
    '\u{1DE4}',
    '\u{1DE5}',
    '\u{1DE6}',
    '\u{1DFE}',
    '\u{20D0}',
    '\u{20D1}',
    '\u{20D4}',
    '\u{20D5}',
    '\u{20D6}',
    '\u{20D7}',
    '\u{20DB}',
    '\u{20DC}',
    '\u{20E1}',
    '\u{20E7}',
    '\u{20E9}',
    '\u{20F0}',
    '\u{2CEF}',
    '\u{2CF0}',
    '\u{2CF1}',
    '\u{2DE0}',
    '\u{2DE1}',
    '\u{2DE2}',
    '\u{2DE3}',
    '\u{2DE4}',
    '\u{2DE5}',
    '\u{2DE6}',
    '\u{2DE7}',
    '\u{2DE8}',
    '\u{2DE9}',
    '\u{2DEA}',
    '\u{2DEB}',
    '\u{2DEC}',
    '\u{2DED}',
    '\u{2DEE}',
    '\u{2DEF}',
    '\u{2DF0}',
    '\u{2DF1}',
    '\u{2DF2}',
    '\u{2DF3}',
    '\u{2DF4}',
    '\u{2DF5}',
    '\u{2DF6}',
    '\u{2DF7}',
    '\u{2DF8}',
    '\u{2DF9}',
    '\u{2DFA}',
    '\u{2DFB}',
    '\u{2DFC}',
    '\u{2DFD}',
    '\u{2DFE}',
    '\u{2DFF}',
    '\u{A66F}',
    '\u{A67C}',
    '\u{A67D}',
    '\u{A6F0}',
    '\u{A6F1}',
    '\u{A8E0}',
    '\u{A8E1}',
    '\u{A8E2}',
    '\u{A8E3}',
    '\u{A8E4}',
    '\u{A8E5}',
    '\u{A8E6}',
    '\u{A8E7}',
    '\u{A8E8}',
    '\u{A8E9}',
    '\u{A8EA}',
    '\u{A8EB}',
    '\u{A8EC}',
    '\u{A8ED}',
    '\u{A8EE}',
    '\u{A8EF}',
    '\u{A8F0}',
    '\u{A8F1}',
    '\u{AAB0}',
    '\u{AAB2}',
    '\u{AAB3}',
    '\u{AAB7}',
    '\u{AAB8}',
    '\u{AABE}',
    '\u{AABF}',
    '\u{AAC1}',
    '\u{FE20}',
    '\u{FE21}',
    '\u{FE22}',
    '\u{FE23}',
    '\u{FE24}',
    '\u{FE25}',
    '\u{FE26}',
    '\u{10A0F}',
    '\u{10A38}',
    '\u{1D185}',
    '\u{1D186}',
    '\u{1D187}',
    '\u{1D188}',
    '\u{1D189}',
    '\u{1D1AA}',
    '\u{1D1AB}',
    '\u{1D1AC}',
    '\u{1D1AD}',
    '\u{1D242}',
    '\u{1D243}',
    '\u{1D244}',
];

/// `seq` wrapped for tmux to hand on to the outer terminal unchanged:
/// `ESC P tmux ;`, the sequence with every ESC doubled, `ESC \`. tmux
/// passes it on only when `allow-passthrough` is on.
pub fn passthrough(seq: &[u8]) -> Vec<u8> {
    let escapes = seq.iter().filter(|&&b| b == 0x1b).count();
    let mut out = Vec::with_capacity(seq.len() + escapes + 10);
    out.extend_from_slice(b"\x1bPtmux;");
    for &b in seq {
        if b == 0x1b {
            out.push(0x1b);
        }
        out.push(b);
    }
    out.extend_from_slice(b"\x1b\\");
    out
}

/// The text of the placeholder cell at `row`, `column` of a placement:
/// U+10EEEE and the marks for the row and the column. `None` past the end
/// of [`DIACRITICS`].
pub fn placeholder(row: u16, column: u16) -> Option<String> {
    let r = *DIACRITICS.get(usize::from(row))?;
    let c = *DIACRITICS.get(usize::from(column))?;
    Some([PLACEHOLDER, r, c].iter().collect())
}

/// The image ids (remote picture, self-view) of the process `pid` inside
/// tmux: one terminal may show several panes, each perhaps a call, and
/// images with the same id would replace each other. Two ids from 16 to
/// 255, so a 256-colour index names them ([`id_colour`]), and different
/// for processes whose ids differ by less than 120.
pub fn image_ids(pid: u32) -> [u32; 2] {
    let base = 16 + (pid % 120) * 2;
    [base, base + 1]
}

/// The foreground colour that names image `id` in a placeholder cell: a
/// 256-colour index for ids below 256 (tmux passes those on unchanged to
/// any terminal with 256 colours; a 24-bit colour may be rounded to the
/// palette on the way), the low 24 bits as an RGB colour otherwise.
pub fn id_colour(id: u32) -> Color {
    match u8::try_from(id) {
        Ok(index) => Color::Indexed(index),
        Err(_) => Color::Rgb((id >> 16) as u8, (id >> 8) as u8, id as u8),
    }
}

/// Writes the placeholder cells of image `id` into the blank cells of
/// `area` in `buf` (blank: a space on the default background, as the
/// screen leaves a picture's cells). Cells with text over the picture
/// (chat lines, labels) keep their text; kitty draws the rest of the image
/// around them. The id colour is the protocol's, not decoration: it stays
/// on a screen without colour too.
pub fn fill(buf: &mut Buffer, area: Rect, id: u32) {
    let area = area.intersection(buf.area);
    let colour = id_colour(id);
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            if cell.symbol() != " " || cell.bg != Color::Reset {
                continue;
            }
            if let Some(text) = placeholder(y - area.y, x - area.x) {
                cell.set_symbol(&text);
                cell.set_fg(colour);
            }
        }
    }
}

/// A kitty graphics command, through tmux's passthrough, that transmits
/// `frame` scaled to `width` x `height` as PNG (`f=100`: every byte
/// passes through tmux, and a PNG is several times smaller than raw RGB)
/// as image `id`, replacing any image with that id, and makes a virtual
/// placement of it (`U=1`) over the columns and rows of `area` (at most
/// [`DIACRITICS`]`.len()` each), drawn wherever its placeholder cells are.
/// Each chunk of [`KITTY_CHUNK`] base64 bytes is a passthrough of its own
/// (tmux bounds what one may hold); the terminal answers nothing (`q=2`).
pub fn transmit(
    frame: &VideoFrame,
    id: u32,
    area: Rect,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, EncodeError> {
    let payload = BASE64.encode(png(frame, width, height)?);
    let max = DIACRITICS.len() as u16;
    let (columns, rows) = (area.width.min(max), area.height.min(max));
    let mut out = Vec::with_capacity(payload.len() + payload.len() / KITTY_CHUNK * 24 + 128);
    let chunks: Vec<&[u8]> = payload.as_bytes().chunks(KITTY_CHUNK).collect();
    let last = chunks.len().saturating_sub(1);
    let mut command = Vec::with_capacity(KITTY_CHUNK + 96);
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i != last);
        command.clear();
        let mut head = String::new();
        if i == 0 {
            let _ = write!(
                head,
                "\x1b_Ga=T,U=1,f=100,i={id},c={columns},r={rows},q=2,m={more};"
            );
        } else {
            let _ = write!(head, "\x1b_Gm={more},q=2;");
        }
        command.extend_from_slice(head.as_bytes());
        command.extend_from_slice(chunk);
        command.extend_from_slice(b"\x1b\\");
        out.extend_from_slice(&passthrough(&command));
    }
    Ok(out)
}

/// Deletes kitty image `id`, its virtual placement and its data, through
/// tmux's passthrough.
pub fn delete(id: u32) -> Vec<u8> {
    passthrough(&kitty_delete(id))
}

/// What tmux allows the pane this program runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TmuxInfo {
    /// `allow-passthrough` is `on` or `all`: escape sequences wrapped by
    /// [`passthrough`] reach the outer terminal.
    pub passthrough: bool,
    /// The outer terminal's `TERM`, as the attached client told tmux
    /// (`xterm-kitty` from kitty), when a client is attached.
    pub outer_term: Option<String>,
}

impl TmuxInfo {
    /// Asks the tmux this program runs in (the `tmux` command, which
    /// finds the server from `TMUX`, about the pane in `TMUX_PANE`).
    /// Nothing is allowed when tmux cannot be asked.
    pub fn ask() -> Self {
        Self::ask_at(None, std::env::var("TMUX_PANE").ok().as_deref())
    }

    /// Asks the tmux server on `socket` (`tmux -L`; `None`: the one `TMUX`
    /// names) about `pane` (`None`: its current pane).
    pub fn ask_at(socket: Option<&str>, pane: Option<&str>) -> Self {
        let tmux = |args: &[&str]| {
            let mut command = std::process::Command::new("tmux");
            if let Some(s) = socket {
                command.args(["-L", s]);
            }
            command
                .args(args)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        let mut show = vec!["show-options", "-Apv"];
        let mut display = vec!["display-message", "-p"];
        if let Some(p) = pane {
            show.extend(["-t", p]);
            display.extend(["-t", p]);
        }
        show.push("allow-passthrough");
        display.push("#{client_termname}");
        // -A (the value the pane inherits) is tmux 3.3 and newer; the
        // global value otherwise.
        let allowed = tmux(&show)
            .filter(|v| !v.is_empty())
            .or_else(|| tmux(&["show-options", "-gv", "allow-passthrough"]));
        Self {
            passthrough: allowed.as_deref().is_some_and(passthrough_allowed),
            outer_term: tmux(&display).filter(|t| !t.is_empty()),
        }
    }
}

/// True when tmux's `allow-passthrough` value lets passthrough through.
pub fn passthrough_allowed(value: &str) -> bool {
    matches!(value.trim(), "on" | "all")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn passthrough_doubles_every_escape_and_is_terminated() {
        let wrapped = passthrough(b"\x1b_Ga=d,d=I,i=1,q=2\x1b\\");
        assert_eq!(
            wrapped,
            b"\x1bPtmux;\x1b\x1b_Ga=d,d=I,i=1,q=2\x1b\x1b\\\x1b\\"
        );
        assert_eq!(passthrough(b"x"), b"\x1bPtmux;x\x1b\\");
        // Inside, no ESC stands alone: tmux would take it as the end.
        let inner = &wrapped[7..wrapped.len() - 2];
        let mut i = 0;
        while i < inner.len() {
            if inner[i] == 0x1b {
                assert_eq!(inner.get(i + 1), Some(&0x1b), "a lone ESC at {i}");
                i += 2;
            } else {
                i += 1;
            }
        }
    }

    #[test]
    fn the_diacritics_table_is_kittys() {
        assert_eq!(DIACRITICS.len(), 297);
        assert_eq!(DIACRITICS[0], '\u{0305}');
        assert_eq!(DIACRITICS[1], '\u{030D}');
        assert_eq!(DIACRITICS[29], '\u{036F}');
        assert_eq!(DIACRITICS[30], '\u{0483}');
        assert_eq!(DIACRITICS[296], '\u{1D244}');
        assert!(
            DIACRITICS.windows(2).all(|w| w[0] < w[1]),
            "in code point order, no repeats"
        );
    }

    #[test]
    fn placeholder_cells_carry_row_then_column() {
        assert_eq!(
            placeholder(0, 0).unwrap(),
            "\u{10EEEE}\u{0305}\u{0305}".to_string()
        );
        assert_eq!(
            placeholder(2, 1).unwrap(),
            "\u{10EEEE}\u{030E}\u{030D}".to_string()
        );
        assert_eq!(
            placeholder(296, 30).unwrap(),
            "\u{10EEEE}\u{1D244}\u{0483}".to_string()
        );
        assert_eq!(placeholder(297, 0), None);
        assert_eq!(id_colour(1), Color::Indexed(1));
        assert_eq!(id_colour(0x0012_3456), Color::Rgb(0x12, 0x34, 0x56));
    }

    #[test]
    fn fill_writes_placeholders_into_blank_cells_only() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 5));
        buf[(3, 2)].set_symbol("x");
        fill(&mut buf, Rect::new(2, 1, 4, 3), 7);
        assert_eq!(buf[(2, 1)].symbol(), "\u{10EEEE}\u{0305}\u{0305}");
        assert_eq!(buf[(2, 1)].fg, Color::Indexed(7));
        // Row 2, column 3 of the placement: marks 2 and 3.
        assert_eq!(buf[(5, 3)].symbol(), "\u{10EEEE}\u{030E}\u{0310}");
        assert_eq!(buf[(3, 2)].symbol(), "x", "text over the picture stays");
        assert_eq!(buf[(1, 1)].symbol(), " ", "outside the area");
        assert_eq!(buf[(6, 1)].symbol(), " ", "outside the area");
        let placeholders = buf
            .content()
            .iter()
            .filter(|c| c.symbol().starts_with(PLACEHOLDER))
            .count();
        assert_eq!(placeholders, 11);
    }

    #[test]
    fn transmit_is_a_virtual_placement_of_a_png_in_wrapped_chunks() {
        // Noise compresses badly: enough bytes for several chunks.
        let (w, h) = (160u32, 120u32);
        let n = (w * h) as usize;
        let data: Vec<u8> = (0..n * 3 / 2)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
            .collect();
        let frame = VideoFrame::from_i420(w, h, data, Duration::ZERO).unwrap();
        let out = transmit(&frame, 42, Rect::new(4, 3, 40, 15), w, h).unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        let wrapped: Vec<&str> = text
            .split("\x1bPtmux;")
            .skip(1)
            .map(|w| w.strip_suffix("\x1b\\").expect("each ends with ST"))
            .collect();
        assert!(wrapped.len() >= 3, "{} chunks", wrapped.len());
        let inner = wrapped[0].replace("\x1b\x1b", "\x1b");
        let (head, _) = inner.trim_start_matches("\x1b_G").split_once(';').unwrap();
        for key in ["a=T", "U=1", "f=100", "i=42", "c=40", "r=15", "q=2", "m=1"] {
            assert!(head.split(',').any(|k| k == key), "{key} in {head}");
        }
        assert!(
            !text.contains("\x1b["),
            "no cursor moves: tmux places nothing"
        );
        let last = wrapped[wrapped.len() - 1].replace("\x1b\x1b", "\x1b");
        assert!(last.starts_with("\x1b_Gm=0,q=2;"), "{last:.20}");
        let payload: String = wrapped
            .iter()
            .map(|w| {
                let inner = w.replace("\x1b\x1b", "\x1b");
                let body = inner.strip_suffix("\x1b\\").unwrap().to_owned();
                let data = body.split_once(';').unwrap().1.to_owned();
                assert!(data.len() <= KITTY_CHUNK);
                data
            })
            .collect();
        let png = BASE64.decode(payload).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // The IHDR chunk: width and height.
        assert_eq!(&png[16..24], &[0, 0, 0, 160, 0, 0, 0, 120]);
    }

    #[test]
    fn image_ids_are_256_colour_indexes_apart_for_each_process() {
        for pid in [0, 1, 119, 120, 4_194_303] {
            let [remote, own] = image_ids(pid);
            assert!((16..=255).contains(&remote) && (16..=255).contains(&own));
            assert_ne!(remote, own);
            assert!(matches!(id_colour(remote), Color::Indexed(_)));
        }
        assert_ne!(image_ids(1000), image_ids(1001));
        assert!(!image_ids(1000).contains(&image_ids(1001)[0]));
    }

    #[test]
    fn delete_is_wrapped_for_tmux() {
        assert_eq!(
            delete(2),
            b"\x1bPtmux;\x1b\x1b_Ga=d,d=I,i=2,q=2\x1b\x1b\\\x1b\\"
        );
        assert!(passthrough_allowed("on\n") && passthrough_allowed("all"));
        assert!(!passthrough_allowed("off") && !passthrough_allowed(""));
    }
}
