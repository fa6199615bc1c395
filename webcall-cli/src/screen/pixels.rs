//! Pictures at pixel resolution: the escape sequences of the terminal
//! graphics protocols (kitty's graphics protocol, sixel, iTerm2 inline
//! images), the scaling of an I420 picture to the pixels a cell area holds,
//! and the synchronized-output wrap that keeps a terminal from showing half
//! a frame.
//!
//! Everything here is a pure function from a picture and a size to bytes:
//! [`super::painter`] decides when to encode and where the bytes go. The
//! encoders are crates: `quantette` picks a sixel palette, `icy_sixel`
//! maps the picture to it and writes sixel, `base64` and `png` make the
//! kitty and iTerm2 payloads.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use quantette::deps::palette::Srgb;
use quantette::{PaletteBuf, PaletteSize, Pipeline, QuantizeMethod};
use ratatui::layout::Rect;
use webcall_core::media::VideoFrame;
/// Pictures scaled to RGB(A) for the terminal images: optimised even in
/// the dev profile, with the other per-pixel loops, in webcall-pixels.
pub use webcall_pixels::scale;

/// How pictures are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Graphics {
    /// Half blocks: two pixels a cell, in any terminal.
    #[default]
    Blocks,
    /// Sixel images (xterm -ti vt340, foot, WezTerm, mlterm, Windows Terminal).
    Sixel,
    /// kitty's graphics protocol (kitty, ghostty, WezTerm, Konsole).
    Kitty,
    /// iTerm2 inline images (iTerm2, WezTerm).
    Iterm2,
    /// kitty's graphics protocol inside tmux: images sent through tmux's
    /// passthrough, drawn where the screen writes Unicode placeholder
    /// cells ([`super::tmux`]).
    KittyTmux,
}

impl Graphics {
    /// True for the protocols that draw pixels rather than cells.
    pub fn is_pixels(self) -> bool {
        self != Self::Blocks
    }

    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blocks => "blocks",
            Self::Sixel => "sixel",
            Self::Kitty => "kitty",
            Self::Iterm2 => "iterm2",
            Self::KittyTmux => "kitty (tmux)",
        }
    }
}

/// Begin synchronized update (mode 2026): the terminal holds its screen
/// until [`SYNC_END`].
pub const SYNC_BEGIN: &[u8] = b"\x1b[?2026h";
/// End synchronized update: the terminal shows everything since [`SYNC_BEGIN`].
pub const SYNC_END: &[u8] = b"\x1b[?2026l";

/// `body` between [`SYNC_BEGIN`] and [`SYNC_END`].
pub fn sync_wrap(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + SYNC_BEGIN.len() + SYNC_END.len());
    out.extend_from_slice(SYNC_BEGIN);
    out.extend_from_slice(body);
    out.extend_from_slice(SYNC_END);
    out
}

/// The size of one terminal cell in pixels; a guess of 10x20 when the
/// terminal does not say (a pseudo-terminal with no pixel size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSize {
    /// Width of a cell in pixels.
    pub width: u16,
    /// Height of a cell in pixels.
    pub height: u16,
}

impl Default for CellSize {
    fn default() -> Self {
        Self {
            width: 10,
            height: 20,
        }
    }
}

impl CellSize {
    /// From the terminal's window size: columns and rows, and the pixel
    /// size when the terminal reports one (zero when it does not).
    pub fn from_window(columns: u16, rows: u16, width_px: u16, height_px: u16) -> Self {
        if columns == 0 || rows == 0 || width_px < columns || height_px < rows {
            return Self::default();
        }
        Self {
            width: width_px / columns,
            height: height_px / rows,
        }
    }

    /// The terminal's cell size now (the default guess when unknown).
    pub fn query() -> Self {
        Self::reported().unwrap_or_default()
    }

    /// The cell size the terminal's window size reports now, if it reports
    /// pixels (a font change alters it without a word otherwise).
    pub fn reported() -> Option<Self> {
        let w = ratatui::crossterm::terminal::window_size().ok()?;
        let cell = Self::from_window(w.columns, w.rows, w.width, w.height);
        (w.width >= w.columns && w.height >= w.rows && w.columns > 0 && w.rows > 0).then_some(cell)
    }
}

/// The pixel size a picture of `width` x `height` is drawn at in the cells
/// of `area`: as large as fits with its aspect ratio kept, never larger
/// than the picture itself (the terminal or the cells' spare room take up
/// the rest), at least 1x1. Sixel heights are whole bands of six pixels, so
/// the height is rounded down to a multiple of six where it can be.
pub fn pixel_size(area: Rect, cell: CellSize, width: u32, height: u32) -> (u32, u32) {
    let aw = u64::from(area.width) * u64::from(cell.width);
    let ah = u64::from(area.height) * u64::from(cell.height);
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let (mut pw, mut ph) = if aw * h <= ah * w {
        (aw, aw * h / w)
    } else {
        (ah * w / h, ah)
    };
    if pw > w {
        (pw, ph) = (w, h);
    }
    if ph >= 6 {
        ph -= ph % 6;
    }
    (pw.max(1) as u32, ph.max(1) as u32)
}

/// Moves the cursor to the top-left cell of `area` (CUP is 1-based).
fn cursor_to(out: &mut Vec<u8>, area: Rect) {
    let _ = write!(Cursor(out), "\x1b[{};{}H", area.y + 1, area.x + 1);
}

/// `fmt::Write` into a byte vector.
struct Cursor<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// What went wrong making a picture's escape sequence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The sixel encoder refused the picture.
    #[error("could not encode the picture as sixel: {0}")]
    Sixel(String),
    /// The PNG encoder refused the picture.
    #[error("could not encode the picture as PNG: {0}")]
    Png(String),
}

/// Colours in a sixel image's palette.
const SIXEL_COLOURS: u16 = 256;

/// Pixels apart, each way, in the sample a sixel palette is made from.
const PALETTE_STRIDE: usize = 3;

/// The palette for a sixel image: Wu's quantiser over every third pixel of
/// every third row (a ninth of the picture; what a video picture's colours
/// are is clear from far fewer pixels than it has). Mapping every pixel to
/// it is left to the encoder. `None` for a picture too small to sample.
fn sixel_palette(rgba: &[u8], width: usize) -> Option<PaletteBuf<Srgb<u8>>> {
    let sample: Vec<Srgb<u8>> = webcall_pixels::sample_rgba(rgba, width, PALETTE_STRIDE)
        .into_iter()
        .map(|[r, g, b]| Srgb::new(r, g, b))
        .collect();
    if sample.len() < 2 {
        return None;
    }
    let size = PaletteSize::try_from(SIXEL_COLOURS).unwrap_or(PaletteSize::MAX);
    Some(
        Pipeline::new()
            .palette_size(size)
            .quantize_method(QuantizeMethod::Wu)
            .input_slice(&sample)
            .ok()?
            .output_srgb8_palette(),
    )
}

/// Pictures at least this tall are encoded as two sixel images, top and
/// bottom, on two threads.
const SPLIT_MIN_HEIGHT: u32 = 120;

/// Where a sixel picture of `height` pixels is cut in two: a whole number
/// of cells (the bottom image starts at a cell) and of six-pixel bands (no
/// band of the top image reaches into the bottom one), as near the middle
/// as that allows. `None` when no such row is inside the picture.
pub fn sixel_split(height: u32, cell_height: u16) -> Option<u32> {
    let ch = u32::from(cell_height.max(1));
    let gcd = |mut a: u32, mut b: u32| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let unit = 6 * ch / gcd(6, ch);
    let split = (height / 2 + unit / 2) / unit * unit;
    (height >= SPLIT_MIN_HEIGHT && split > 0 && split < height).then_some(split)
}

/// A sixel image of `frame` scaled to `width` x `height`, drawn with its
/// top-left corner at the top-left cell of `area`. The sequence is
/// `ESC P q`, raster attributes `"1;1;W;H`, a palette of up to 256
/// colours, the bands, and `ESC \`. A tall picture is two such images,
/// top and bottom (see [`sixel_split`]), encoded on two threads with one
/// palette.
pub fn sixel(
    frame: &VideoFrame,
    area: Rect,
    cell: CellSize,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, EncodeError> {
    let rgba = scale(frame, width, height, 4);
    let palette = sixel_palette(&rgba, width as usize);
    let encode_part = |pixels: &[u8], rows: u32| {
        let options = icy_sixel::EncodeOptions {
            max_colors: SIXEL_COLOURS,
            // No dithering: video is noisy enough, and dithered noise costs
            // bytes and time; edges stay sharp.
            diffusion: 0.0,
            quantize_method: palette
                .clone()
                .map_or(icy_sixel::QuantizeMethod::Wu, Into::into),
        };
        icy_sixel::sixel_encode(pixels, width as usize, rows as usize, &options)
            .map_err(|e| EncodeError::Sixel(e.to_string()))
    };
    let mut out = Vec::new();
    match sixel_split(height, cell.height) {
        Some(split) => {
            let (top, bottom) = rgba.split_at(split as usize * width as usize * 4);
            let (first, second) = std::thread::scope(|s| {
                let first = s.spawn(|| encode_part(top, split));
                let second = encode_part(bottom, height - split);
                (first.join(), second)
            });
            let first =
                first.map_err(|_| EncodeError::Sixel("the encoder thread failed".into()))??;
            let second = second?;
            out.reserve(first.len() + second.len() + 32);
            cursor_to(&mut out, area);
            out.extend_from_slice(first.as_bytes());
            let below = (split / u32::from(cell.height.max(1))) as u16;
            cursor_to(&mut out, Rect::new(area.x, area.y + below, area.width, 1));
            out.extend_from_slice(second.as_bytes());
        }
        None => {
            let image = encode_part(&rgba, height)?;
            out.reserve(image.len() + 16);
            cursor_to(&mut out, area);
            out.extend_from_slice(image.as_bytes());
        }
    }
    Ok(out)
}

/// Base64 bytes per kitty graphics chunk: the protocol's limit.
pub const KITTY_CHUNK: usize = 4096;

/// One kitty image placement: which image, where, and how high it stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KittyPlacement {
    /// The image id (one per picture: remote, self-view).
    pub id: u32,
    /// The cells the picture covers; the terminal scales it to their width.
    pub area: Rect,
    /// Stacking order. Negative draws under text, below `i32::MIN / 2`
    /// also under cells with a background colour; higher is on top.
    pub z: i32,
}

/// A kitty graphics command that transmits `frame` scaled to `width` x
/// `height` as raw RGB (`f=24`) and places it at `place.area` (`a=T`),
/// replacing the image with the same id. The payload is split into chunks
/// of [`KITTY_CHUNK`] base64 bytes (`m=1` on all but the last). The cursor
/// does not move (`C=1`) and the terminal answers nothing (`q=2`).
pub fn kitty(frame: &VideoFrame, place: KittyPlacement, width: u32, height: u32) -> Vec<u8> {
    let rgb = scale(frame, width, height, 3);
    let payload = BASE64.encode(&rgb);
    let mut out = Vec::with_capacity(payload.len() + payload.len() / KITTY_CHUNK * 16 + 96);
    cursor_to(&mut out, place.area);
    let chunks: Vec<&[u8]> = payload.as_bytes().chunks(KITTY_CHUNK).collect();
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i != last);
        if i == 0 {
            let _ = write!(
                Cursor(&mut out),
                "\x1b_Ga=T,f=24,s={width},v={height},i={},p=1,c={},r={},z={},C=1,q=2,m={more};",
                place.id,
                place.area.width,
                place.area.height,
                place.z,
            );
        } else {
            let _ = write!(Cursor(&mut out), "\x1b_Gm={more};");
        }
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\x1b\\");
    }
    out
}

/// Deletes kitty image `id` and frees its data (`a=d,d=I`).
pub fn kitty_delete(id: u32) -> Vec<u8> {
    format!("\x1b_Ga=d,d=I,i={id},q=2\x1b\\").into_bytes()
}

/// The kitty image ids the screen uses: the remote picture and the self-view.
pub const KITTY_IDS: [u32; 2] = [
    super::painter::REMOTE_IMAGE_ID,
    super::painter::SELF_IMAGE_ID,
];

/// Deletes every image the screen may have placed: for the way out.
pub fn kitty_cleanup() -> Vec<u8> {
    KITTY_IDS.iter().flat_map(|&id| kitty_delete(id)).collect()
}

/// [`kitty_cleanup`] for kitty inside tmux: this process's images
/// ([`super::tmux::image_ids`]), each delete through tmux's passthrough.
pub fn kitty_tmux_cleanup() -> Vec<u8> {
    super::tmux::image_ids(std::process::id())
        .iter()
        .flat_map(|&id| super::tmux::delete(id))
        .collect()
}

/// `frame` scaled to `width` x `height` as an RGB PNG, compressed the
/// fastest way (video changes every frame; the bytes still shrink several
/// times over raw RGB, and base64 of fewer bytes is quicker too).
pub fn png(frame: &VideoFrame, width: u32, height: u32) -> Result<Vec<u8>, EncodeError> {
    let rgb = scale(frame, width, height, 3);
    let mut png_bytes = Vec::with_capacity(rgb.len() / 2);
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fastest);
        let mut writer = encoder
            .write_header()
            .map_err(|e| EncodeError::Png(e.to_string()))?;
        writer
            .write_image_data(&rgb)
            .map_err(|e| EncodeError::Png(e.to_string()))?;
    }
    Ok(png_bytes)
}

/// An iTerm2 inline image (`OSC 1337 ; File=...`) of `frame` scaled to
/// `width` x `height` as PNG, stretched by the terminal over `area`.
pub fn iterm2(
    frame: &VideoFrame,
    area: Rect,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, EncodeError> {
    let png_bytes = png(frame, width, height)?;
    let payload = BASE64.encode(&png_bytes);
    let mut out = Vec::with_capacity(payload.len() + 96);
    cursor_to(&mut out, area);
    let _ = write!(
        Cursor(&mut out),
        "\x1b]1337;File=inline=1;size={};width={};height={};preserveAspectRatio=0;doNotMoveCursor=1:",
        png_bytes.len(),
        area.width,
        area.height,
    );
    out.extend_from_slice(payload.as_bytes());
    out.push(0x07);
    Ok(out)
}

/// The cells a picture of `width` x `height` pixels covers, from the
/// top-left cell of `area`, rounded up and clipped to `area`.
pub fn cells_for(area: Rect, cell: CellSize, width: u32, height: u32) -> Rect {
    let cols = width.div_ceil(u32::from(cell.width.max(1))) as u16;
    let rows = height.div_ceil(u32::from(cell.height.max(1))) as u16;
    Rect::new(area.x, area.y, cols.min(area.width), rows.min(area.height))
}

/// Encodes `frame` for `graphics` into the cells of `area`; `z` orders
/// kitty images (the self-view over the remote picture). `None` for
/// [`Graphics::Blocks`], which draws into cells instead.
pub fn encode(
    graphics: Graphics,
    frame: &VideoFrame,
    area: Rect,
    cell: CellSize,
    id: u32,
    z: i32,
) -> Result<Option<Vec<u8>>, EncodeError> {
    if area.is_empty() {
        return Ok(None);
    }
    let (w, h) = pixel_size(area, cell, frame.width(), frame.height());
    Ok(match graphics {
        Graphics::Blocks => None,
        Graphics::Sixel => Some(sixel(frame, area, cell, w, h)?),
        Graphics::Kitty => Some(kitty(frame, KittyPlacement { id, area, z }, w, h)),
        Graphics::Iterm2 => Some(iterm2(frame, area, w, h)?),
        Graphics::KittyTmux => Some(super::tmux::transmit(frame, id, area, w, h)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use webcall_core::media::yuv_to_rgb;

    fn grey(width: u32, height: u32) -> VideoFrame {
        let n = (width * height) as usize;
        let mut data = vec![128u8; n];
        data.resize(n * 3 / 2, 128);
        VideoFrame::from_i420(width, height, data, Duration::ZERO).unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[test]
    fn sixel_starts_with_dcs_q_has_raster_attributes_and_ends_with_st() {
        let out = sixel(
            &grey(64, 48),
            Rect::new(3, 2, 10, 5),
            CellSize::default(),
            60,
            42,
        )
        .unwrap();
        let s = text(&out);
        assert!(
            s.starts_with("\x1b[3;4H"),
            "cursor to the area first: {s:?}"
        );
        let dcs = s.find("\x1bP").expect("a DCS");
        let q = s[dcs..].find('q').unwrap() + dcs;
        assert!(
            s[dcs + 2..q]
                .chars()
                .all(|c| c.is_ascii_digit() || c == ';'),
            "ESC P <params> q: {:?}",
            &s[dcs..q + 1]
        );
        assert!(
            s[q + 1..].starts_with("\"1;1;60;42"),
            "raster attributes after q: {:?}",
            &s[q..q + 16]
        );
        assert!(s.ends_with("\x1b\\"), "ends with ST");
        assert!(s.contains("#0;2;"), "a palette entry in RGB percent");
    }

    #[test]
    fn a_tall_sixel_picture_is_two_images_cut_on_a_cell_and_a_band() {
        // Cells 16 high: cuts fall on multiples of 48 (16 and 6 both divide it).
        assert_eq!(sixel_split(348, 16), Some(192));
        assert_eq!(sixel_split(480, 20), Some(240));
        // Cells 13 high: multiples of 78.
        assert_eq!(sixel_split(438, 13), Some(234));
        assert_eq!(sixel_split(60, 16), None, "small pictures stay whole");
        let cell = CellSize {
            width: 8,
            height: 16,
        };
        let out = text(&sixel(&grey(160, 120), Rect::new(2, 4, 20, 8), cell, 160, 120).unwrap());
        let split = sixel_split(120, 16).unwrap();
        assert_eq!(split, 48);
        let images: Vec<&str> = out.split("\x1bP").skip(1).collect();
        assert_eq!(images.len(), 2, "{out:?}");
        assert!(out.starts_with("\x1b[5;3H\x1bP"));
        assert!(images[0].contains("\"1;1;160;48"));
        assert!(
            images[0].ends_with("\x1b\\\x1b[8;3H"),
            "the bottom starts 3 cells down"
        );
        assert!(images[1].contains("\"1;1;160;72"));
        assert!(images[1].ends_with("\x1b\\"));
    }

    #[test]
    fn kitty_header_keys_and_4096_byte_chunks() {
        let place = KittyPlacement {
            id: 7,
            area: Rect::new(0, 1, 40, 15),
            z: -3,
        };
        // 100x50 RGB = 15000 bytes = 20000 base64 bytes = 5 chunks.
        let out = text(&kitty(&grey(100, 50), place, 100, 50));
        assert!(out.starts_with("\x1b[2;1H\x1b_G"));
        let commands: Vec<&str> = out[6..].split("\x1b\\").filter(|c| !c.is_empty()).collect();
        assert_eq!(commands.len(), 5);
        let (head, first) = commands[0]
            .trim_start_matches("\x1b_G")
            .split_once(';')
            .unwrap();
        for key in [
            "a=T", "f=24", "s=100", "v=50", "i=7", "p=1", "c=40", "r=15", "z=-3", "C=1", "q=2",
            "m=1",
        ] {
            assert!(head.split(',').any(|k| k == key), "{key} in {head}");
        }
        assert_eq!(first.len(), KITTY_CHUNK);
        for (i, c) in commands.iter().enumerate().skip(1) {
            let (keys, data) = c.trim_start_matches("\x1b_G").split_once(';').unwrap();
            let last = i == commands.len() - 1;
            assert_eq!(keys, if last { "m=0" } else { "m=1" });
            assert!(data.len() <= KITTY_CHUNK);
            if !last {
                assert_eq!(data.len(), KITTY_CHUNK);
            }
        }
        let payload: String = commands
            .iter()
            .map(|c| c.split_once(';').unwrap().1)
            .collect();
        let rgb = BASE64.decode(payload).unwrap();
        assert_eq!(rgb.len(), 100 * 50 * 3);
        assert_eq!(&rgb[..3], &yuv_to_rgb(128, 128, 128));
    }

    #[test]
    fn kitty_deletes_name_the_image_and_free_it() {
        assert_eq!(text(&kitty_delete(5)), "\x1b_Ga=d,d=I,i=5,q=2\x1b\\");
        let all = text(&kitty_cleanup());
        for id in KITTY_IDS {
            assert!(all.contains(&format!("a=d,d=I,i={id},")));
        }
    }

    #[test]
    fn sync_wrap_brackets_the_frame() {
        assert_eq!(sync_wrap(b"x"), b"\x1b[?2026hx\x1b[?2026l");
    }

    #[test]
    fn iterm2_is_an_osc_1337_png() {
        let out = iterm2(&grey(32, 24), Rect::new(1, 1, 8, 4), 32, 24).unwrap();
        let s = text(&out);
        assert!(s.starts_with("\x1b[2;2H\x1b]1337;File=inline=1;size="));
        assert!(s.contains(";width=8;height=4;"));
        assert!(s.ends_with('\x07'));
        let (_, data) = s.trim_end_matches('\x07').split_once(':').unwrap();
        let png = BASE64.decode(data).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn pixel_sizes_keep_the_aspect_ratio_and_never_upscale() {
        let cell = CellSize {
            width: 10,
            height: 20,
        };
        // 40x15 cells = 400x300 pixels: a 4:3 picture fills it.
        assert_eq!(
            pixel_size(Rect::new(0, 0, 40, 15), cell, 640, 480),
            (400, 300)
        );
        // Wide area: height limits, rounded down to whole sixel bands.
        assert_eq!(
            pixel_size(Rect::new(0, 0, 200, 10), cell, 640, 480),
            (266, 198)
        );
        // Huge area: the picture's own size.
        assert_eq!(
            pixel_size(Rect::new(0, 0, 300, 100), cell, 640, 480),
            (640, 480)
        );
        assert_eq!(
            cells_for(Rect::new(5, 5, 40, 15), cell, 266, 198),
            Rect::new(5, 5, 27, 10)
        );
        assert_eq!(CellSize::from_window(80, 24, 0, 0), CellSize::default());
        assert_eq!(
            CellSize::from_window(80, 24, 480, 312),
            CellSize {
                width: 6,
                height: 13
            }
        );
    }

    #[test]
    fn scaling_keeps_colours_where_they_were() {
        // Left half red, right half blue, 8x4.
        let (w, h) = (8usize, 4usize);
        let red = webcall_core::media::rgb_to_yuv(255, 0, 0);
        let blue = webcall_core::media::rgb_to_yuv(0, 0, 255);
        let mut data = vec![0u8; w * h * 3 / 2];
        for y in 0..h {
            for x in 0..w {
                data[y * w + x] = if x < w / 2 { red[0] } else { blue[0] };
            }
        }
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                let c = if x < w / 4 { red } else { blue };
                data[w * h + y * w / 2 + x] = c[1];
                data[w * h + w * h / 4 + y * w / 2 + x] = c[2];
            }
        }
        let f = VideoFrame::from_i420(8, 4, data, Duration::ZERO).unwrap();
        let out = scale(&f, 4, 2, 3);
        assert!(out[0] > 200 && out[2] < 60, "left is red: {:?}", &out[..3]);
        assert!(
            out[9] < 60 && out[11] > 200,
            "right is blue: {:?}",
            &out[9..12]
        );
    }
}
