//! Camera pixel formats to I420 with even dimensions.
//!
//! YUYV and NV12 carry YUV already and are repacked without a round trip
//! through RGB; RGB, BGR and grey frames are converted. An odd width or
//! height loses its last column or row.

use webcall_core::media::{VideoFrame, rgb_to_yuv};

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

/// Packed 8-bit RGB (or BGR when `bgr`) to I420; chroma from the top-left
/// pixel of each 2x2 block.
pub fn rgb_to_i420(width: u32, height: u32, src: &[u8], bgr: bool) -> Option<VideoFrame> {
    let (w, h) = even(width, height);
    let stride = width as usize * 3;
    if w == 0 || h == 0 || src.len() < stride * height as usize {
        return None;
    }
    let (cw, ch) = (w / 2, h / 2);
    let mut data = vec![0u8; w * h + 2 * cw * ch];
    let (y_plane, uv) = data.split_at_mut(w * h);
    let (u_plane, v_plane) = uv.split_at_mut(cw * ch);
    for row in 0..h {
        for x in 0..w {
            let p = &src[row * stride + x * 3..row * stride + x * 3 + 3];
            let (r, b) = if bgr { (p[2], p[0]) } else { (p[0], p[2]) };
            let [y, u, v] = rgb_to_yuv(r, p[1], b);
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
    fn grey_maps_to_limited_range_luma() {
        let f = gray_to_i420(2, 2, &[0, 255, 128, 128]).unwrap();
        assert_eq!(&f.y()[..2], &[16, 235]);
        assert_eq!(f.u(), &[128]);
    }
}
