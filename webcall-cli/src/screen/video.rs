//! Drawing an I420 picture into terminal cells with half blocks.
//!
//! Each cell shows two pixels stacked: the upper half block `▀` in the
//! foreground colour of the top pixel over the background colour of the
//! bottom one. A cell is about twice as tall as wide, so a half-block pixel
//! is square. The picture is scaled straight from I420 to cells with a
//! small box filter (four luma taps spread over the source pixels each cell
//! pixel covers, chroma from its middle), and only the pixels drawn are
//! converted to RGB: the whole frame never is.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use webcall_core::media::{VideoFrame, yuv_to_rgb};

use super::palette::ColorMode;

/// The upper half block: foreground = top pixel, background = bottom pixel.
pub const HALF_BLOCK: &str = "▀";

/// The largest part of `area` that shows a `width` x `height` picture with
/// its aspect ratio kept, centred. Cells count as two square pixels tall.
pub fn fit(area: Rect, width: u32, height: u32) -> Rect {
    if width == 0 || height == 0 || area.width == 0 || area.height == 0 {
        return Rect::new(area.x, area.y, 0, 0);
    }
    let (aw, ah) = (u64::from(area.width), u64::from(area.height) * 2);
    let (w, h) = (u64::from(width), u64::from(height));
    // Pixel size of the fitted picture: limited by width or by height.
    let (pw, ph) = if aw * h <= ah * w {
        (aw, (aw * h + w / 2) / w)
    } else {
        ((ah * w + h / 2) / h, ah)
    };
    let cols = pw.clamp(1, aw) as u16;
    let rows = ph.div_ceil(2).clamp(1, u64::from(area.height)) as u16;
    Rect::new(
        area.x + (area.width - cols) / 2,
        area.y + (area.height - rows) / 2,
        cols,
        rows,
    )
}

/// Where one output pixel reads the source along one axis: two luma taps
/// at a quarter and three quarters of the source span it covers (the same
/// tap twice when the span is one pixel), and the chroma sample at its middle.
#[derive(Debug, Clone, Copy)]
struct Taps {
    a: usize,
    b: usize,
    chroma: usize,
}

/// Taps for each of `out` output pixels over `src` source pixels.
fn taps(out: usize, src: usize) -> Vec<Taps> {
    (0..out)
        .map(|i| {
            let start = i * src / out;
            let end = ((i + 1) * src / out).max(start + 1).min(src);
            let span = end - start;
            Taps {
                a: start + span / 4,
                b: start + (3 * span) / 4,
                chroma: (start + span / 2) / 2,
            }
        })
        .collect()
}

/// The colour of one output pixel: the mean of four luma taps (a 2x2
/// sample of its source box) with the chroma at the box's middle.
#[inline]
fn sample(planes: &Planes<'_>, xs: Taps, ys: Taps) -> [u8; 3] {
    let (ra, rb) = (ys.a * planes.width, ys.b * planes.width);
    let y = planes.y;
    let luma = (u32::from(y[ra + xs.a])
        + u32::from(y[ra + xs.b])
        + u32::from(y[rb + xs.a])
        + u32::from(y[rb + xs.b])
        + 2)
        / 4;
    let ci = ys.chroma * planes.chroma_width + xs.chroma;
    yuv_to_rgb(luma as u8, planes.u[ci], planes.v[ci])
}

struct Planes<'a> {
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    width: usize,
    chroma_width: usize,
}

/// Draws `frame` into `buf`, fitted into `area` with its aspect ratio kept.
/// Returns the cells it covered. Cells of `area` outside the picture are
/// left as they are.
pub fn draw_frame(buf: &mut Buffer, area: Rect, frame: &VideoFrame, mode: ColorMode) -> Rect {
    let area = area.intersection(buf.area);
    let target = fit(area, frame.width(), frame.height());
    if target.is_empty() {
        return target;
    }
    let (cols, rows) = (usize::from(target.width), usize::from(target.height));
    let planes = Planes {
        y: frame.y(),
        u: frame.u(),
        v: frame.v(),
        width: frame.width() as usize,
        chroma_width: frame.width() as usize / 2,
    };
    let xtaps = taps(cols, frame.width() as usize);
    let ytaps = taps(rows * 2, frame.height() as usize);
    if mode == ColorMode::Mono {
        // No colours: one character of a grey ramp per cell.
        for (row, pair) in ytaps.chunks(2).enumerate() {
            let y = target.y + row as u16;
            for (col, &xs) in xtaps.iter().enumerate() {
                let top = sample(&planes, xs, pair[0]);
                let bottom = pair.get(1).map_or(top, |&ys| sample(&planes, xs, ys));
                let cell = &mut buf[(target.x + col as u16, y)];
                cell.set_symbol(super::mono::ramp(top, bottom));
                cell.fg = ratatui::style::Color::Reset;
                cell.bg = ratatui::style::Color::Reset;
            }
        }
        return target;
    }
    for (row, pair) in ytaps.chunks(2).enumerate() {
        let top_taps = pair[0];
        let bottom_taps = pair.get(1).copied();
        let y = target.y + row as u16;
        for (col, &xs) in xtaps.iter().enumerate() {
            let top = sample(&planes, xs, top_taps);
            let bottom = match bottom_taps {
                Some(ys) => mode.color(sample(&planes, xs, ys)),
                None => ratatui::style::Color::Reset,
            };
            let cell = &mut buf[(target.x + col as u16, y)];
            cell.set_symbol(HALF_BLOCK);
            cell.fg = mode.color(top);
            cell.bg = bottom;
        }
    }
    target
}
