//! Raw media as the call engine sees it, and the traits that plug media in.
//!
//! Video travels as I420 frames ([`VideoFrame`]), audio as 20 ms frames of
//! 48 kHz mono 16-bit samples ([`AudioFrame`]), the unit Opus encodes. A
//! camera, a test pattern and a file are all a [`VideoSource`]; a terminal
//! screen, a Y4M writer and a counter are all a [`VideoSink`]. The engine
//! never knows which one it has: the program embedding it chooses.
//!
//! Sources pace themselves: [`VideoSource::next_frame`] and
//! [`AudioSource::next_frame`] block until the next frame is due (a camera
//! because capture blocks, a file or synthetic source by sleeping), so the
//! engine runs each source on its own thread and sends what it returns.
//! Sinks are called on the engine's receive path and must return quickly.

use std::time::Duration;

use crate::error::{Error, Result};

/// The sample rate of every [`AudioFrame`]: Opus's native 48 kHz.
pub const AUDIO_SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms mono [`AudioFrame`] at [`AUDIO_SAMPLE_RATE`].
pub const AUDIO_FRAME_SAMPLES: usize = 960;
/// The duration of one [`AudioFrame`].
pub const AUDIO_FRAME_DURATION: Duration = Duration::from_millis(20);

/// One picture in planar I420 (YUV 4:2:0): the Y plane, then U, then V.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    width: u32,
    height: u32,
    data: Vec<u8>,
    /// When the frame was captured or decoded, relative to its source's start.
    pub timestamp: Duration,
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoFrame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl VideoFrame {
    /// Wraps I420 data. Width and height must be even and non-zero, and
    /// `data` exactly `width * height * 3 / 2` bytes long.
    pub fn from_i420(width: u32, height: u32, data: Vec<u8>, timestamp: Duration) -> Result<Self> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(Error::Media(format!(
                "a {width}x{height} picture cannot be I420: width and height must be even and non-zero"
            )));
        }
        let expected = i420_len(width, height);
        if data.len() != expected {
            return Err(Error::Media(format!(
                "a {width}x{height} I420 picture takes {expected} bytes, got {}",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            data,
            timestamp,
        })
    }

    /// A black picture of the given (even) size.
    pub fn black(width: u32, height: u32) -> Result<Self> {
        let luma = (width as usize) * (height as usize);
        let mut data = vec![16u8; luma];
        data.resize(i420_len(width, height), 128);
        Self::from_i420(width, height, data, Duration::ZERO)
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// All three planes, Y then U then V.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// All three planes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The luma plane: `width * height` bytes, row by row.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    /// The blue-difference plane: `(width / 2) * (height / 2)` bytes.
    pub fn u(&self) -> &[u8] {
        let (l, c) = (self.luma_len(), self.chroma_len());
        &self.data[l..l + c]
    }

    /// The red-difference plane: `(width / 2) * (height / 2)` bytes.
    pub fn v(&self) -> &[u8] {
        let (l, c) = (self.luma_len(), self.chroma_len());
        &self.data[l + c..]
    }

    /// The colour of one pixel as 8-bit RGB (BT.601, limited range).
    pub fn rgb_at(&self, x: u32, y: u32) -> [u8; 3] {
        let w = self.width as usize;
        let (x, y) = (
            x.min(self.width - 1) as usize,
            y.min(self.height - 1) as usize,
        );
        let luma = self.y()[y * w + x];
        let ci = (y / 2) * (w / 2) + x / 2;
        yuv_to_rgb(luma, self.u()[ci], self.v()[ci])
    }

    fn luma_len(&self) -> usize {
        (self.width as usize) * (self.height as usize)
    }

    fn chroma_len(&self) -> usize {
        (self.width as usize / 2) * (self.height as usize / 2)
    }
}

/// Bytes in an I420 picture of this (even) size.
pub fn i420_len(width: u32, height: u32) -> usize {
    let luma = (width as usize) * (height as usize);
    luma + luma / 2
}

/// BT.601 limited-range YUV to 8-bit RGB. Inline: the screen calls it for
/// every pixel of every picture from another crate, where an out-of-line
/// call (and, in the dev profile, this crate's unoptimised code) costs
/// several times the conversion itself.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = i32::from(y) - 16;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(298 * c + 409 * e),
        clamp(298 * c - 100 * d - 208 * e),
        clamp(298 * c + 516 * d),
    ]
}

/// 8-bit RGB to BT.601 limited-range YUV. Inline, as [`yuv_to_rgb`]: the
/// camera's pictures are converted pixel by pixel in another crate.
#[inline]
pub fn rgb_to_yuv(r: u8, g: u8, b: u8) -> [u8; 3] {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    [
        y.clamp(0, 255) as u8,
        u.clamp(0, 255) as u8,
        v.clamp(0, 255) as u8,
    ]
}

/// 20 ms of 48 kHz mono audio: [`AUDIO_FRAME_SAMPLES`] signed 16-bit samples.
#[derive(Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// The samples, [`AUDIO_FRAME_SAMPLES`] of them.
    pub samples: Vec<i16>,
    /// When the frame was captured or decoded, relative to its source's start.
    pub timestamp: Duration,
}

impl std::fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioFrame")
            .field("samples", &self.samples.len())
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl AudioFrame {
    /// A frame of silence.
    pub fn silence(timestamp: Duration) -> Self {
        Self {
            samples: vec![0; AUDIO_FRAME_SAMPLES],
            timestamp,
        }
    }

    /// The root-mean-square level of the frame, 0.0 (silence) to 1.0.
    pub fn rms(&self) -> f32 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = self
            .samples
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum();
        ((sum / self.samples.len() as f64).sqrt() / f64::from(i16::MAX)) as f32
    }
}

/// Where outgoing video comes from: a camera, a test pattern, a file.
pub trait VideoSource: Send {
    /// Blocks until the next frame is due and returns it; `Ok(None)` when the
    /// source has ended (the engine then stops sending video).
    fn next_frame(&mut self) -> Result<Option<VideoFrame>>;

    /// A short human name for logs and the screen ("test pattern", "camera 0").
    fn describe(&self) -> String;
}

/// Where outgoing audio comes from: a microphone, a tone, a file.
pub trait AudioSource: Send {
    /// Blocks until the next 20 ms frame is due and returns it; `Ok(None)`
    /// when the source has ended.
    fn next_frame(&mut self) -> Result<Option<AudioFrame>>;

    /// A short human name for logs and the screen.
    fn describe(&self) -> String;
}

/// Where decoded remote video goes: a screen, a file, a counter.
pub trait VideoSink: Send {
    /// Takes one decoded frame. Called on the receive path: return quickly.
    fn write_frame(&mut self, frame: &VideoFrame) -> Result<()>;

    /// Flushes and closes; called once when the call ends.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Where decoded remote audio goes: a speaker, a file, a counter.
pub trait AudioSink: Send {
    /// Takes one decoded 20 ms frame. Called on the receive path: return quickly.
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<()>;

    /// Flushes and closes; called once when the call ends.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i420_planes_have_the_right_sizes() {
        let f = VideoFrame::black(4, 2).unwrap();
        assert_eq!((f.y().len(), f.u().len(), f.v().len()), (8, 2, 2));
        assert_eq!(f.rgb_at(0, 0), [0, 0, 0]);
    }

    #[test]
    fn odd_or_short_frames_are_refused() {
        assert!(VideoFrame::from_i420(3, 2, vec![0; 9], Duration::ZERO).is_err());
        assert!(VideoFrame::from_i420(4, 2, vec![0; 11], Duration::ZERO).is_err());
    }

    #[test]
    fn colour_conversion_round_trips_closely() {
        for rgb in [
            [255u8, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [200, 120, 40],
            [255, 255, 255],
        ] {
            let [y, u, v] = rgb_to_yuv(rgb[0], rgb[1], rgb[2]);
            let back = yuv_to_rgb(y, u, v);
            for i in 0..3 {
                assert!(
                    (i32::from(back[i]) - i32::from(rgb[i])).abs() <= 4,
                    "{rgb:?} -> {back:?}"
                );
            }
        }
    }

    #[test]
    fn rms_of_silence_is_zero_and_of_full_scale_is_one() {
        assert_eq!(AudioFrame::silence(Duration::ZERO).rms(), 0.0);
        let loud = AudioFrame {
            samples: vec![i16::MAX; AUDIO_FRAME_SAMPLES],
            timestamp: Duration::ZERO,
        };
        assert!((loud.rms() - 1.0).abs() < 1e-3);
    }
}
