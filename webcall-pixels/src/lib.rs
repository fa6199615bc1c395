//! The loops that touch every pixel of every picture `webcall join` sends
//! or draws: camera and screen pixel formats to I420 with even dimensions,
//! and I420 pictures scaled to RGB(A) for terminal images.
//!
//! YUYV and NV12 carry YUV already and are repacked without a round trip
//! through RGB; RGB, BGR, grey and 32-bit screen pixels are converted. An
//! odd width or height loses its last column or row.
//!
//! A crate of its own so that the workspace's dev profile optimises it, as
//! it does the codecs, while the rest of webcall stays quick to build:
//! unoptimised, a 1920x1080 screen took 346 ms a picture.

use webcall_core::media::{VideoFrame, rgb_to_yuv, yuv_to_rgb};

/// The even size a frame is cut to.
fn even(width: u32, height: u32) -> (usize, usize) {
    ((width & !1) as usize, (height & !1) as usize)
}

fn frame(w: usize, h: usize, data: Vec<u8>) -> Option<VideoFrame> {
    VideoFrame::from_i420(w as u32, h as u32, data, std::time::Duration::ZERO).ok()
}

/// Packed YUYV (Y0 U Y1 V per two pixels) to I420; chroma of each 2x2 block
/// is the mean of its two rows. `None` if the buffer is too short.
pub fn yuyv_to_i420(width: u32, height: u32, src: &[u8]) -> Option<VideoFrame> {
    let (w, h) = even(width, height);
    let stride = width as usize * 2;
    if w == 0 || h == 0 || src.len() < stride * height as usize {
        return None;
    }
    let (cw, ch) = (w / 2, h / 2);
    let mut data = vec![0u8; w * h + 2 * cw * ch];
    let (y_plane, uv) = data.split_at_mut(w * h);
    let (u_plane, v_plane) = uv.split_at_mut(cw * ch);
    for row in 0..h {
        let line = &src[row * stride..row * stride + w * 2];
        for (x, px) in y_plane[row * w..(row + 1) * w].iter_mut().enumerate() {
            *px = line[x * 2];
        }
    }
    for cy in 0..ch {
        let a = &src[(2 * cy) * stride..];
        let b = &src[(2 * cy + 1) * stride..];
        for cx in 0..cw {
            let i = cx * 4;
            u_plane[cy * cw + cx] = (u16::from(a[i + 1]) + u16::from(b[i + 1])).div_ceil(2) as u8;
            v_plane[cy * cw + cx] = (u16::from(a[i + 3]) + u16::from(b[i + 3])).div_ceil(2) as u8;
        }
    }
    frame(w, h, data)
}

/// NV12 (Y plane, then interleaved U V at half resolution) to I420.
pub fn nv12_to_i420(width: u32, height: u32, src: &[u8]) -> Option<VideoFrame> {
    let (w, h) = even(width, height);
    let (sw, sh) = (width as usize, height as usize);
    let uv_stride = sw.div_ceil(2) * 2;
    if w == 0 || h == 0 || src.len() < sw * sh + uv_stride * sh.div_ceil(2) {
        return None;
    }
    let (cw, ch) = (w / 2, h / 2);
    let mut data = Vec::with_capacity(w * h + 2 * cw * ch);
    for row in 0..h {
        data.extend_from_slice(&src[row * sw..row * sw + w]);
    }
    let uv = &src[sw * sh..];
    for cy in 0..ch {
        data.extend((0..cw).map(|cx| uv[cy * uv_stride + cx * 2]));
    }
    for cy in 0..ch {
        data.extend((0..cw).map(|cx| uv[cy * uv_stride + cx * 2 + 1]));
    }
    frame(w, h, data)
}

/// A `w` x `h` I420 picture (both even) from the colour of each pixel;
/// chroma from the top-left pixel of each 2x2 block.
fn i420_from_rgb(
    w: usize,
    h: usize,
    rgb_at: impl Fn(usize, usize) -> [u8; 3],
) -> Option<VideoFrame> {
    let (cw, ch) = (w / 2, h / 2);
    let mut data = vec![0u8; w * h + 2 * cw * ch];
    let (y_plane, uv) = data.split_at_mut(w * h);
    let (u_plane, v_plane) = uv.split_at_mut(cw * ch);
    for row in 0..h {
        for x in 0..w {
            let [r, g, b] = rgb_at(x, row);
            let [y, u, v] = rgb_to_yuv(r, g, b);
            y_plane[row * w + x] = y;
            if row % 2 == 0 && x % 2 == 0 {
                let ci = (row / 2) * cw + x / 2;
                u_plane[ci] = u;
                v_plane[ci] = v;
            }
        }
    }
    frame(w, h, data)
}

/// Packed 8-bit RGB (or BGR when `bgr`) to I420; chroma from the top-left
/// pixel of each 2x2 block.
pub fn rgb_to_i420(width: u32, height: u32, src: &[u8], bgr: bool) -> Option<VideoFrame> {
    let (w, h) = even(width, height);
    let stride = width as usize * 3;
    if w == 0 || h == 0 || src.len() < stride * height as usize {
        return None;
    }
    i420_from_rgb(w, h, |x, row| {
        let p = &src[row * stride + x * 3..row * stride + x * 3 + 3];
        if bgr {
            [p[2], p[1], p[0]]
        } else {
            [p[0], p[1], p[2]]
        }
    })
}

/// Where red, green and blue sit in a 4-byte pixel (as an X server's
/// 24-bit colour images lay them out: B G R X in least-significant-byte
/// order, X R G B in most-significant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pixel32 {
    /// The byte index of red, green and blue within each 4 bytes.
    pub rgb: [usize; 3],
}

/// 4-byte pixels (rows of `width * 4` bytes) to I420, shrunk by `shrink`
/// in each direction: each output pixel is the mean of a `shrink` by
/// `shrink` block (text on a shared screen stays readable, where dropping
/// pixels would break its strokes); chroma from the top-left pixel of each
/// 2x2 output block. `None` if the buffer is too short or the picture
/// smaller than two pixels either way after shrinking.
pub fn pixel32_to_i420(
    width: u32,
    height: u32,
    src: &[u8],
    layout: Pixel32,
    shrink: u32,
) -> Option<VideoFrame> {
    let k = shrink.max(1) as usize;
    let stride = width as usize * 4;
    if src.len() < stride * height as usize {
        return None;
    }
    let (w, h) = even(width / k as u32, height / k as u32);
    if w == 0 || h == 0 {
        return None;
    }
    let area = (k * k) as u32;
    let [ri, gi, bi] = layout.rgb;
    i420_from_rgb(w, h, |x, row| {
        let mut sum = [0u32; 3];
        for sy in row * k..row * k + k {
            let line = &src[sy * stride + x * k * 4..sy * stride + (x + 1) * k * 4];
            for p in line.chunks_exact(4) {
                sum[0] += u32::from(p[ri]);
                sum[1] += u32::from(p[gi]);
                sum[2] += u32::from(p[bi]);
            }
        }
        sum.map(|c| (c / area) as u8)
    })
}

/// `frame` scaled to `width` x `height` pixels (nearest source pixel, the
/// source's chroma), as RGB with `channels` bytes a pixel: 3 for RGB, 4 for
/// RGBA with an opaque alpha.
pub fn scale(frame: &VideoFrame, width: u32, height: u32, channels: usize) -> Vec<u8> {
    let (sw, sh) = (frame.width() as usize, frame.height() as usize);
    let (w, h) = (width.max(1) as usize, height.max(1) as usize);
    let (ys, us, vs) = (frame.y(), frame.u(), frame.v());
    let xs: Vec<usize> = (0..w).map(|x| (x * sw + sw / (2 * w)) / w).collect();
    let mut out = vec![255u8; w * h * channels];
    for (y, row) in out.chunks_exact_mut(w * channels).enumerate() {
        let sy = ((y * sh + sh / (2 * h)) / h).min(sh - 1);
        let luma = &ys[sy * sw..(sy + 1) * sw];
        let crow = (sy / 2) * (sw / 2);
        for (px, &sx) in row.chunks_exact_mut(channels).zip(&xs) {
            let ci = crow + sx / 2;
            let rgb = yuv_to_rgb(luma[sx], us[ci], vs[ci]);
            px[..3].copy_from_slice(&rgb);
        }
    }
    out
}

/// Every `stride`-th pixel of every `stride`-th row of RGBA pixels in
/// rows of `width`, as RGB: the sample a palette is made from.
pub fn sample_rgba(rgba: &[u8], width: usize, stride: usize) -> Vec<[u8; 3]> {
    let stride = stride.max(1);
    if width == 0 {
        return Vec::new();
    }
    rgba.chunks_exact(width * 4)
        .step_by(stride)
        .flat_map(|row| {
            row.chunks_exact(4)
                .step_by(stride)
                .map(|p| [p[0], p[1], p[2]])
        })
        .collect()
}

/// 8-bit grey to I420 (neutral chroma). Grey values are full range and
/// are scaled to limited-range luma.
pub fn gray_to_i420(width: u32, height: u32, src: &[u8]) -> Option<VideoFrame> {
    let (w, h) = even(width, height);
    let sw = width as usize;
    if w == 0 || h == 0 || src.len() < sw * height as usize {
        return None;
    }
    let mut data = Vec::with_capacity(w * h * 3 / 2);
    for row in 0..h {
        data.extend(
            src[row * sw..row * sw + w]
                .iter()
                .map(|&g| (16 + u32::from(g) * 219 / 255) as u8),
        );
    }
    data.resize(w * h * 3 / 2, 128);
    frame(w, h, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_repacks_luma_and_averages_chroma() {
        // 4x2: row 0 U=100 V=200, row 1 U=110 V=210.
        let row0 = [10, 100, 20, 200, 30, 100, 40, 200];
        let row1 = [50, 110, 60, 210, 70, 110, 80, 210];
        let src: Vec<u8> = row0.iter().chain(row1.iter()).copied().collect();
        let f = yuyv_to_i420(4, 2, &src).unwrap();
        assert_eq!(f.y(), &[10, 20, 30, 40, 50, 60, 70, 80]);
        assert_eq!(f.u(), &[105, 105]);
        assert_eq!(f.v(), &[205, 205]);
    }

    #[test]
    fn odd_sizes_are_cut_to_even_and_short_buffers_refused() {
        let f = rgb_to_i420(5, 3, &[255; 5 * 3 * 3], false).unwrap();
        assert_eq!((f.width(), f.height()), (4, 2));
        assert!(rgb_to_i420(4, 4, &[0; 10], false).is_none());
        assert!(yuyv_to_i420(4, 4, &[0; 10]).is_none());
        assert!(nv12_to_i420(4, 4, &[0; 10]).is_none());
    }

    #[test]
    fn rgb_and_bgr_give_the_same_colours() {
        let red_rgb = [255u8, 0, 0].repeat(4);
        let red_bgr = [0u8, 0, 255].repeat(4);
        let a = rgb_to_i420(2, 2, &red_rgb, false).unwrap();
        let b = rgb_to_i420(2, 2, &red_bgr, true).unwrap();
        assert_eq!(a, b);
        let [r, g, bl] = a.rgb_at(0, 0);
        assert!(r > 240 && g < 10 && bl < 10);
    }

    #[test]
    fn nv12_splits_chroma_planes() {
        let mut src = vec![16u8; 4 * 2];
        src.extend_from_slice(&[1, 2, 3, 4]);
        let f = nv12_to_i420(4, 2, &src).unwrap();
        assert_eq!(f.u(), &[1, 3]);
        assert_eq!(f.v(), &[2, 4]);
    }

    #[test]
    fn screen_pixels_keep_their_colours_in_either_byte_order() {
        // 4x2: left half red, right half blue, as B G R X and as X R G B.
        let bgrx: Vec<u8> = [
            [0, 0, 255, 0],
            [0, 0, 255, 0],
            [255, 0, 0, 0],
            [255, 0, 0, 0],
        ]
        .repeat(2)
        .concat();
        let xrgb: Vec<u8> = [
            [0, 255, 0, 0],
            [0, 255, 0, 0],
            [0, 0, 0, 255],
            [0, 0, 0, 255],
        ]
        .repeat(2)
        .concat();
        let lsb = pixel32_to_i420(4, 2, &bgrx, Pixel32 { rgb: [2, 1, 0] }, 1).unwrap();
        let msb = pixel32_to_i420(4, 2, &xrgb, Pixel32 { rgb: [1, 2, 3] }, 1).unwrap();
        assert_eq!(lsb, msb);
        let [r, g, b] = lsb.rgb_at(0, 0);
        assert!(r > 240 && g < 10 && b < 10, "{:?}", lsb.rgb_at(0, 0));
        let [r, g, b] = lsb.rgb_at(2, 1);
        assert!(r < 10 && g < 10 && b > 240, "{:?}", lsb.rgb_at(2, 1));
    }

    #[test]
    fn screen_pixels_shrink_to_block_means() {
        // 4x4 shrunk by 2: each 2x2 block one output pixel, its mean.
        let mut src = Vec::new();
        for row in 0..4 {
            for x in 0..4 {
                let v = if (row + x) % 2 == 0 { 200u8 } else { 100 };
                src.extend_from_slice(&[v, v, v, 0]);
            }
        }
        let layout = Pixel32 { rgb: [2, 1, 0] };
        let f = pixel32_to_i420(4, 4, &src, layout, 2).unwrap();
        assert_eq!((f.width(), f.height()), (2, 2));
        let [r, g, b] = f.rgb_at(1, 1);
        assert!(
            [r, g, b].iter().all(|c| c.abs_diff(150) <= 2),
            "{r} {g} {b}"
        );
        assert!(pixel32_to_i420(4, 4, &src[..20], layout, 1).is_none());
        assert!(pixel32_to_i420(4, 4, &src, layout, 4).is_none());
    }

    #[test]
    fn palette_samples_take_every_nth_pixel_of_every_nth_row() {
        // 4x4 RGBA, each pixel's red its index.
        let rgba: Vec<u8> = (0..16u8).flat_map(|i| [i, 0, 0, 255]).collect();
        let reds: Vec<u8> = sample_rgba(&rgba, 4, 2).iter().map(|p| p[0]).collect();
        assert_eq!(reds, [0, 2, 8, 10]);
        assert!(sample_rgba(&rgba, 0, 2).is_empty());
    }

    #[test]
    fn grey_maps_to_limited_range_luma() {
        let f = gray_to_i420(2, 2, &[0, 255, 128, 128]).unwrap();
        assert_eq!(&f.y()[..2], &[16, 235]);
        assert_eq!(f.u(), &[128]);
    }
}
