//! Drawing an I420 picture into terminal cells with half blocks.
//!
//! Each cell shows two pixels stacked: the upper half block `▀` in the
//! foreground colour of the top pixel over the background colour of the
//! bottom one. A cell is about twice as tall as wide, so a half-block pixel
//! is square. The picture is scaled straight from I420 to cells with a box
//! filter (the average of the source pixels each cell pixel covers), and only
//! the pixels drawn are converted to RGB: the whole frame never is.

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

/// Source spans for each output pixel along one axis: `[start, end)` in
/// source pixels, at least one pixel wide.
fn spans(out: usize, src: usize) -> Vec<(u32, u32)> {
    (0..out)
        .map(|i| {
            let start = i * src / out;
            let end = ((i + 1) * src / out).max(start + 1).min(src);
            (start as u32, end as u32)
        })
        .collect()
}

/// Samples the picture for one output pixel: the mean luma of its source box
/// and the mean chroma of the matching chroma box, converted to RGB.
#[inline]
fn sample(frame: &VideoFrame, xs: (u32, u32), ys: (u32, u32)) -> [u8; 3] {
    let w = frame.width() as usize;
    let cw = w / 2;
    let (y_plane, u_plane, v_plane) = (frame.y(), frame.u(), frame.v());
    let (x0, x1) = (xs.0 as usize, xs.1 as usize);
    let (y0, y1) = (ys.0 as usize, ys.1 as usize);
    let mut sum = 0u32;
    for row in y0..y1 {
        let line = &y_plane[row * w + x0..row * w + x1];
        for &l in line {
            sum += u32::from(l);
        }
    }
    let count = ((x1 - x0) * (y1 - y0)) as u32;
    let luma = (sum / count) as u8;
    let (cx0, cx1) = (x0 / 2, (x1 - 1) / 2 + 1);
    let (cy0, cy1) = (y0 / 2, (y1 - 1) / 2 + 1);
    let (mut su, mut sv) = (0u32, 0u32);
    for row in cy0..cy1 {
        let start = row * cw;
        for i in start + cx0..start + cx1 {
            su += u32::from(u_plane[i]);
            sv += u32::from(v_plane[i]);
        }
    }
    let ccount = ((cx1 - cx0) * (cy1 - cy0)) as u32;
    yuv_to_rgb(luma, (su / ccount) as u8, (sv / ccount) as u8)
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
    let xspans = spans(cols, frame.width() as usize);
    let yspans = spans(rows * 2, frame.height() as usize);
    for (row, pair) in yspans.chunks(2).enumerate() {
        let top_span = pair[0];
        let bottom_span = pair.get(1).copied();
        let y = target.y + row as u16;
        for (col, &xs) in xspans.iter().enumerate() {
            let top = sample(frame, xs, top_span);
            let bottom = match bottom_span {
                Some(span) => mode.color(sample(frame, xs, span)),
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
