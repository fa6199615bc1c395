//! Colour output: true colour or the xterm 256-colour palette, and a fast
//! RGB to palette-index mapping; or no colour at all ([`ColorMode::Mono`],
//! decided in [`super::mono`]).

use ratatui::style::Color;

/// How the terminal takes colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMode {
    /// 24-bit RGB escapes.
    TrueColor,
    /// The xterm 256-colour palette.
    Palette256,
    /// No colour: `NO_COLOR` is set or the terminal has fewer than 8
    /// colours. Pictures become a ramp of characters, emphasis is bold
    /// and reverse video ([`super::mono`]).
    Mono,
}

impl ColorMode {
    /// No colour when `NO_COLOR` is set or the terminal has none
    /// ([`super::mono::colours_off`]); else true colour when `COLORTERM`
    /// says `truecolor` or `24bit`, else 256 colours.
    pub fn from_env() -> Self {
        if super::mono::colours_off_from_env() {
            return Self::Mono;
        }
        Self::from_colorterm(std::env::var("COLORTERM").ok().as_deref())
    }

    /// The mode a given `COLORTERM` value asks for.
    pub fn from_colorterm(value: Option<&str>) -> Self {
        match value.map(str::to_ascii_lowercase).as_deref() {
            Some("truecolor" | "24bit") => Self::TrueColor,
            _ => Self::Palette256,
        }
    }

    /// The terminal colour for an RGB triple in this mode.
    #[inline]
    pub fn color(self, rgb: [u8; 3]) -> Color {
        match self {
            Self::TrueColor => Color::Rgb(rgb[0], rgb[1], rgb[2]),
            Self::Palette256 => Color::Indexed(rgb_to_xterm256(rgb)),
            Self::Mono => Color::Reset,
        }
    }
}

/// The six levels of each channel in the xterm 6x6x6 colour cube.
const CUBE_LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// For every channel value, the index (0..6) of the nearest cube level.
const CUBE_INDEX: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut v = 0;
    while v < 256 {
        let mut best = 0;
        let mut i = 1;
        while i < 6 {
            let d_best = (v as i32 - CUBE_LEVELS[best] as i32).abs();
            let d_i = (v as i32 - CUBE_LEVELS[i] as i32).abs();
            if d_i < d_best {
                best = i;
            }
            i += 1;
        }
        table[v] = best as u8;
        v += 1;
    }
    table
};

/// The nearest xterm-256 palette index (16..=255) for an RGB colour: the
/// nearer of the nearest colour-cube entry and the nearest grey-ramp entry.
/// The 16 system colours are skipped: terminals theme them freely.
#[inline]
pub fn rgb_to_xterm256([r, g, b]: [u8; 3]) -> u8 {
    let (ri, gi, bi) = (
        CUBE_INDEX[r as usize],
        CUBE_INDEX[g as usize],
        CUBE_INDEX[b as usize],
    );
    let cube = [
        CUBE_LEVELS[ri as usize],
        CUBE_LEVELS[gi as usize],
        CUBE_LEVELS[bi as usize],
    ];
    let cube_index = 16 + 36 * ri + 6 * gi + bi;
    // Grey ramp 232..=255 holds 8, 18, ..., 238.
    let avg = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let step = (avg.saturating_sub(3) / 10).min(23) as u8;
    let grey = 8 + 10 * step;
    let d_cube = dist2([r, g, b], cube);
    let d_grey = dist2([r, g, b], [grey, grey, grey]);
    if d_grey < d_cube {
        232 + step
    } else {
        cube_index
    }
}

#[inline]
fn dist2(a: [u8; 3], b: [u8; 3]) -> u32 {
    let d = |x: u8, y: u8| {
        let d = i32::from(x) - i32::from(y);
        (d * d) as u32
    };
    d(a[0], b[0]) + d(a[1], b[1]) + d(a[2], b[2])
}

/// The RGB colour of a palette index 16..=255 (for tests and previews).
pub fn xterm256_to_rgb(index: u8) -> [u8; 3] {
    if index >= 232 {
        let v = 8 + 10 * (index - 232);
        [v, v, v]
    } else {
        let i = index.saturating_sub(16);
        [
            CUBE_LEVELS[(i / 36) as usize],
            CUBE_LEVELS[(i / 6 % 6) as usize],
            CUBE_LEVELS[(i % 6) as usize],
        ]
    }
}
