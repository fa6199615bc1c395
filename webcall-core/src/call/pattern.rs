//! The test pattern's picture code: a frame number and a send time written
//! into the top rows of a picture as black and white blocks, and read back
//! after the picture has been through the encoder, the network and the
//! decoder. The far side learns which frame it sees and how old it is.
//!
//! 128 blocks in two rows of 64: a 32-bit frame number, a 48-bit send time
//! (milliseconds since the Unix epoch), a 16-bit check, and 32 bits of a
//! fixed marker. Blocks are `width / 64` pixels wide and 16 pixels tall, big
//! enough to survive H.264 at ordinary bitrates.

use crate::media::VideoFrame;

/// Height in pixels of one row of blocks; the code takes two rows.
pub const BLOCK_HEIGHT: u32 = 16;
/// Blocks per row.
const BLOCKS_PER_ROW: u32 = 64;
const MARKER: u32 = 0xC0DE_CA11;
const LUMA_ONE: u8 = 220;
const LUMA_ZERO: u8 = 30;

/// What a picture code carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PictureCode {
    /// The frame's number at the sender, from 0.
    pub frame: u32,
    /// When the sender made the frame, milliseconds since the Unix epoch.
    pub sent_unix_ms: u64,
}

fn check(frame: u32, ms: u64) -> u16 {
    let words = [
        frame as u16,
        (frame >> 16) as u16,
        ms as u16,
        (ms >> 16) as u16,
        (ms >> 32) as u16,
    ];
    words
        .iter()
        .fold(0x5A5Au16, |acc, w| acc.rotate_left(3) ^ w)
}

fn bits(code: PictureCode) -> [bool; 128] {
    let ms = code.sent_unix_ms & 0xFFFF_FFFF_FFFF;
    let mut out = [false; 128];
    let mut put = |offset: usize, value: u64, n: usize| {
        for i in 0..n {
            out[offset + i] = (value >> (n - 1 - i)) & 1 == 1;
        }
    };
    put(0, u64::from(MARKER), 32);
    put(32, u64::from(code.frame), 32);
    put(64, ms, 48);
    put(112, u64::from(check(code.frame, ms)), 16);
    out
}

/// True when the picture is big enough to carry a code.
pub fn fits(width: u32, height: u32) -> bool {
    width >= BLOCKS_PER_ROW * 2 && height >= BLOCK_HEIGHT * 4
}

/// Writes `code` into the top `2 * BLOCK_HEIGHT` rows of `frame` (luma
/// blocks, neutral chroma). Pictures too small for it are left alone.
pub fn write(frame: &mut VideoFrame, code: PictureCode) {
    let (w, h) = (frame.width(), frame.height());
    if !fits(w, h) {
        return;
    }
    let bw = w / BLOCKS_PER_ROW;
    let b = bits(code);
    let wu = w as usize;
    let data = frame.data_mut();
    for row in 0..2 * BLOCK_HEIGHT {
        let line = &mut data[row as usize * wu..(row as usize + 1) * wu];
        let block_row = row / BLOCK_HEIGHT;
        for (x, px) in line.iter_mut().enumerate() {
            let col = (x as u32 / bw).min(BLOCKS_PER_ROW - 1);
            let bit = b[(block_row * BLOCKS_PER_ROW + col) as usize];
            *px = if bit { LUMA_ONE } else { LUMA_ZERO };
        }
    }
    let (cw, luma) = (wu / 2, wu * h as usize);
    let chroma_rows = BLOCK_HEIGHT as usize; // 2 * BLOCK_HEIGHT luma rows
    let plane = (wu / 2) * (h as usize / 2);
    for p in 0..2 {
        let start = luma + p * plane;
        data[start..start + chroma_rows * cw].fill(128);
    }
}

/// Reads a code back from a (decoded) picture; `None` when there is none or
/// it does not check out.
pub fn read(frame: &VideoFrame) -> Option<PictureCode> {
    let (w, h) = (frame.width(), frame.height());
    if !fits(w, h) {
        return None;
    }
    let bw = w / BLOCKS_PER_ROW;
    let y = frame.y();
    let mut b = [false; 128];
    for (i, bit) in b.iter_mut().enumerate() {
        let (block_row, col) = (i as u32 / BLOCKS_PER_ROW, i as u32 % BLOCKS_PER_ROW);
        // Average a small window at the block's centre.
        let cy = block_row * BLOCK_HEIGHT + BLOCK_HEIGHT / 2;
        let cx = col * bw + bw / 2;
        let mut sum = 0u32;
        for dy in 0..2 {
            for dx in 0..2 {
                sum += u32::from(y[((cy + dy - 1) * w + cx + dx - 1) as usize]);
            }
        }
        *bit = sum / 4 > u32::from(LUMA_ONE / 2 + LUMA_ZERO / 2);
    }
    let get = |offset: usize, n: usize| {
        b[offset..offset + n]
            .iter()
            .fold(0u64, |acc, &x| (acc << 1) | u64::from(x))
    };
    if get(0, 32) != u64::from(MARKER) {
        return None;
    }
    let frame_no = get(32, 32) as u32;
    let ms = get(64, 48);
    if get(112, 16) as u16 != check(frame_no, ms) {
        return None;
    }
    Some(PictureCode {
        frame: frame_no,
        sent_unix_ms: ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_damaged_codes_are_refused() {
        let mut f = VideoFrame::black(640, 480).unwrap();
        let code = PictureCode {
            frame: 123_456,
            sent_unix_ms: 1_796_210_400_123,
        };
        write(&mut f, code);
        assert_eq!(read(&f), Some(code));
        // Flip one block of the send time.
        let i = 64 + 70;
        f.data_mut()[8 * 640 + (i % 64) * 10 + 5] ^= 0xFF;
        let row = 16 + 8;
        for x in 60..70 {
            f.data_mut()[row * 640 + x] = 255 - f.data()[row * 640 + x];
        }
        assert_eq!(read(&f), None);
        assert_eq!(read(&VideoFrame::black(640, 480).unwrap()), None);
        assert_eq!(read(&VideoFrame::black(64, 32).unwrap()), None);
    }
}
