//! Media sources that need no hardware: a moving test pattern that carries
//! its frame number and send time ([`super::pattern`]), a 440 Hz tone, a
//! Y4M video file and a WAV audio file. Each paces itself: `next_frame`
//! sleeps until the frame is due.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::pattern::{self, PictureCode};
use crate::error::{Error, Result};
use crate::media::{
    AUDIO_FRAME_DURATION, AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, AudioSource,
    VideoFrame, VideoSource, rgb_to_yuv,
};
use crate::resample::{Resampler, f32_to_i16};

/// Sleeps until frame `n` of a fixed-rate stream is due.
#[derive(Debug)]
pub struct Pacer {
    start: Option<Instant>,
    period: Duration,
    n: u32,
}

impl Pacer {
    /// A pacer for frames `period` apart; the first frame is due at once.
    pub fn new(period: Duration) -> Self {
        Self {
            start: None,
            period,
            n: 0,
        }
    }

    /// Waits for the next frame's slot and returns its offset from the start.
    /// After a long stall (more than five periods late) the schedule restarts
    /// rather than bursting to catch up.
    pub fn wait(&mut self) -> Duration {
        let now = Instant::now();
        let start = *self.start.get_or_insert(now);
        let due = self.period * self.n;
        let elapsed = now.duration_since(start);
        if elapsed < due {
            std::thread::sleep(due - elapsed);
        } else if elapsed > due + self.period * 5 {
            self.start = Some(now - due);
        }
        self.n = self.n.wrapping_add(1);
        due
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The colours of the test pattern's bars, left to right (RGB, video
/// range), for a receiver that checks it sees them.
pub const TEST_PATTERN_BARS: [[u8; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [40, 40, 40],
];

/// Moving colour bars with a picture code (frame number and send time) in
/// the top rows, so the far side can measure latency. Default 640x480 at 30
/// frames a second.
#[derive(Debug)]
pub struct TestPattern {
    width: u32,
    height: u32,
    pacer: Pacer,
    frame: u32,
    bars: Vec<[u8; 3]>,
}

impl Default for TestPattern {
    fn default() -> Self {
        Self::new(640, 480, 30).expect("640x480 is a valid size")
    }
}

impl TestPattern {
    /// A pattern of the given even size and frame rate.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<Self> {
        if width < 2
            || height < 2
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
            || fps == 0
            || fps > 120
        {
            return Err(Error::Media(format!(
                "a {width}x{height} test pattern at {fps} fps is not possible: use an even size and 1 to 120 fps"
            )));
        }
        Ok(Self {
            width,
            height,
            pacer: Pacer::new(Duration::from_secs(1) / fps),
            frame: 0,
            bars: TEST_PATTERN_BARS
                .iter()
                .map(|&[r, g, b]| rgb_to_yuv(r, g, b))
                .collect(),
        })
    }

    /// Draws frame `n` (without waiting).
    pub fn render(&self, n: u32, timestamp: Duration) -> VideoFrame {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut data = vec![0u8; w * h * 3 / 2];
        let bar_w = (w / self.bars.len()).max(2);
        let shift = (n as usize * 4) % w;
        let colour = |x: usize| self.bars[((x + shift) / bar_w) % self.bars.len()];
        let (luma, chroma) = data.split_at_mut(w * h);
        let first = luma.chunks_exact_mut(w).next().map(|row| {
            for (x, px) in row.iter_mut().enumerate() {
                *px = colour(x)[0];
            }
            row.to_vec()
        });
        if let Some(first) = first {
            for row in luma.chunks_exact_mut(w).skip(1) {
                row.copy_from_slice(&first);
            }
        }
        // A small square bouncing down the picture, so motion is visible
        // even where the bars look alike.
        let side = (h / 8).max(2);
        let travel = h.saturating_sub(side).max(1);
        let y0 = (n as usize * 3) % (2 * travel);
        let y0 = if y0 >= travel { 2 * travel - y0 } else { y0 };
        for row in luma.chunks_exact_mut(w).skip(y0).take(side) {
            row[w / 2 - side / 2..w / 2 + side / 2].fill(128);
        }
        let (cw, ch) = (w / 2, h / 2);
        let (u, v) = chroma.split_at_mut(cw * ch);
        for y in 0..ch {
            for x in 0..cw {
                let c = colour(x * 2);
                u[y * cw + x] = c[1];
                v[y * cw + x] = c[2];
            }
        }
        let mut f = VideoFrame::from_i420(self.width, self.height, data, timestamp)
            .expect("sizes are consistent");
        pattern::write(
            &mut f,
            PictureCode {
                frame: n,
                sent_unix_ms: unix_ms(),
            },
        );
        f
    }
}

impl VideoSource for TestPattern {
    fn next_frame(&mut self) -> Result<Option<VideoFrame>> {
        let at = self.pacer.wait();
        let f = self.render(self.frame, at);
        self.frame = self.frame.wrapping_add(1);
        Ok(Some(f))
    }

    fn describe(&self) -> String {
        format!("test pattern {}x{}", self.width, self.height)
    }
}

/// A 440 Hz sine tone at about -12 dBFS.
#[derive(Debug)]
pub struct Tone {
    frequency: f64,
    amplitude: f64,
    phase: f64,
    pacer: Pacer,
}

impl Default for Tone {
    fn default() -> Self {
        Self::new(440.0)
    }
}

impl Tone {
    /// A tone of the given frequency in Hz.
    pub fn new(frequency: f64) -> Self {
        Self {
            frequency,
            amplitude: 0.25,
            phase: 0.0,
            pacer: Pacer::new(AUDIO_FRAME_DURATION),
        }
    }

    /// The next 20 ms of the tone, without waiting.
    pub fn render(&mut self, timestamp: Duration) -> AudioFrame {
        let step = std::f64::consts::TAU * self.frequency / f64::from(AUDIO_SAMPLE_RATE);
        let samples = (0..AUDIO_FRAME_SAMPLES)
            .map(|_| {
                let s = (self.phase.sin() * self.amplitude * f64::from(i16::MAX)) as i16;
                self.phase = (self.phase + step) % std::f64::consts::TAU;
                s
            })
            .collect();
        AudioFrame { samples, timestamp }
    }
}

impl AudioSource for Tone {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>> {
        let at = self.pacer.wait();
        Ok(Some(self.render(at)))
    }

    fn describe(&self) -> String {
        format!("{} Hz tone", self.frequency)
    }
}

/// Video from a Y4M file (4:2:0, 8 bits), at the file's frame rate.
pub struct Y4mFileSource {
    path: PathBuf,
    decoder: y4m::Decoder<BufReader<File>>,
    width: u32,
    height: u32,
    pacer: Pacer,
    looping: bool,
}

impl std::fmt::Debug for Y4mFileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mFileSource")
            .field("path", &self.path)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("looping", &self.looping)
            .finish_non_exhaustive()
    }
}

fn open_y4m(path: &Path) -> Result<(y4m::Decoder<BufReader<File>>, u32, u32, Duration)> {
    let shown = path.display();
    let file = File::open(path)
        .map_err(|e| Error::Media(format!("cannot open video file {shown}: {e}")))?;
    let decoder = y4m::decode(BufReader::new(file)).map_err(|e| {
        Error::Media(format!(
            "{shown} is not a readable Y4M file ({e:?}); give a .y4m video"
        ))
    })?;
    let cs = decoder.get_colorspace();
    if !matches!(
        cs,
        y4m::Colorspace::C420
            | y4m::Colorspace::C420jpeg
            | y4m::Colorspace::C420paldv
            | y4m::Colorspace::C420mpeg2
    ) {
        return Err(Error::Media(format!(
            "{shown} uses colour format {cs:?}; only 8-bit 4:2:0 Y4M is supported (convert with: ffmpeg -i IN -pix_fmt yuv420p OUT.y4m)"
        )));
    }
    let (w, h) = (decoder.get_width() as u32, decoder.get_height() as u32);
    if w == 0 || h == 0 || !w.is_multiple_of(2) || !h.is_multiple_of(2) {
        return Err(Error::Media(format!(
            "{shown} is {w}x{h}; width and height must be even"
        )));
    }
    let rate = decoder.get_framerate();
    let period = if rate.num > 0 && rate.den > 0 && rate.num / rate.den <= 120 {
        Duration::from_secs_f64(rate.den as f64 / rate.num as f64)
    } else {
        Duration::from_secs(1) / 30
    };
    Ok((decoder, w, h, period))
}

impl Y4mFileSource {
    /// Opens `path`; fails clearly when it is not 8-bit 4:2:0 Y4M. With
    /// `looping`, playback starts over at the end instead of ending.
    pub fn open(path: impl AsRef<Path>, looping: bool) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (decoder, width, height, period) = open_y4m(&path)?;
        Ok(Self {
            path,
            decoder,
            width,
            height,
            pacer: Pacer::new(period),
            looping,
        })
    }

    /// The picture size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}

impl VideoSource for Y4mFileSource {
    fn next_frame(&mut self) -> Result<Option<VideoFrame>> {
        let mut rewound = false;
        loop {
            match self.decoder.read_frame() {
                Ok(frame) => {
                    let mut data =
                        Vec::with_capacity(crate::media::i420_len(self.width, self.height));
                    data.extend_from_slice(frame.get_y_plane());
                    data.extend_from_slice(frame.get_u_plane());
                    data.extend_from_slice(frame.get_v_plane());
                    let at = self.pacer.wait();
                    return VideoFrame::from_i420(self.width, self.height, data, at).map(Some);
                }
                Err(y4m::Error::EOF) if self.looping && !rewound => {
                    self.decoder = open_y4m(&self.path)?.0;
                    rewound = true;
                }
                Err(y4m::Error::EOF) => return Ok(None),
                Err(e) => {
                    return Err(Error::Media(format!(
                        "reading {}: {e:?}",
                        self.path.display()
                    )));
                }
            }
        }
    }

    fn describe(&self) -> String {
        format!("{} ({}x{})", self.path.display(), self.width, self.height)
    }
}

/// Audio from a WAV file, mixed down to mono and resampled to 48 kHz.
pub struct WavFileSource {
    path: PathBuf,
    samples: std::vec::IntoIter<i16>,
    pacer: Pacer,
}

impl std::fmt::Debug for WavFileSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFileSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// At most this much audio is read from a file (an hour at 48 kHz mono).
const MAX_WAV_SECONDS: u64 = 3600;

impl WavFileSource {
    /// Reads `path` (8/16/24/32-bit integer or 32-bit float PCM, any rate,
    /// any channel count) and converts it to 48 kHz mono.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let shown = path.display().to_string();
        let reader = hound::WavReader::open(&path).map_err(|e| {
            Error::Media(format!(
                "{shown} is not a readable WAV file ({e}); give a PCM .wav file"
            ))
        })?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate < 1000 || spec.sample_rate > 384_000 {
            return Err(Error::Media(format!(
                "{shown}: {} channels at {} Hz is not usable audio",
                spec.channels, spec.sample_rate
            )));
        }
        if reader.duration() as u64 / u64::from(spec.sample_rate) > MAX_WAV_SECONDS {
            return Err(Error::Media(format!(
                "{shown} is longer than an hour; cut it shorter"
            )));
        }
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float if spec.bits_per_sample == 32 => {
                reader.into_samples::<f32>().collect::<Result<_, _>>()
            }
            hound::SampleFormat::Int if (8..=32).contains(&spec.bits_per_sample) => {
                let scale = (1u64 << (spec.bits_per_sample - 1)) as f32;
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|s| s as f32 / scale))
                    .collect::<Result<_, _>>()
            }
            _ => {
                return Err(Error::Media(format!(
                    "{shown}: {}-bit {:?} samples are not supported; use 16-bit PCM",
                    spec.bits_per_sample, spec.sample_format
                )));
            }
        }
        .map_err(|e| Error::Media(format!("reading {shown}: {e}")))?;
        let ch = usize::from(spec.channels);
        let mono: Vec<f32> = interleaved
            .chunks_exact(ch)
            .map(|c| c.iter().sum::<f32>() / ch as f32)
            .collect();
        let mut resampled = Vec::with_capacity(
            (mono.len() as u64 * u64::from(AUDIO_SAMPLE_RATE) / u64::from(spec.sample_rate))
                as usize
                + 1,
        );
        Resampler::new(spec.sample_rate, AUDIO_SAMPLE_RATE).process(&mono, &mut resampled);
        let samples: Vec<i16> = resampled.into_iter().map(f32_to_i16).collect();
        Ok(Self {
            path,
            samples: samples.into_iter(),
            pacer: Pacer::new(AUDIO_FRAME_DURATION),
        })
    }
}

impl AudioSource for WavFileSource {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>> {
        let mut samples: Vec<i16> = self.samples.by_ref().take(AUDIO_FRAME_SAMPLES).collect();
        if samples.is_empty() {
            return Ok(None);
        }
        samples.resize(AUDIO_FRAME_SAMPLES, 0);
        let at = self.pacer.wait();
        Ok(Some(AudioFrame {
            samples,
            timestamp: at,
        }))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_moves_and_carries_its_frame_number() {
        let p = TestPattern::new(640, 480, 30).unwrap();
        let a = p.render(0, Duration::ZERO);
        let b = p.render(10, Duration::ZERO);
        assert_ne!(a.y()[40 * 640..], b.y()[40 * 640..]);
        assert_eq!(pattern::read(&b).unwrap().frame, 10);
        assert!(TestPattern::new(641, 480, 30).is_err());
    }

    #[test]
    fn the_tone_is_audible_but_not_loud() {
        let mut t = Tone::default();
        let f = t.render(Duration::ZERO);
        assert_eq!(f.samples.len(), AUDIO_FRAME_SAMPLES);
        let rms = f.rms();
        assert!(rms > 0.1 && rms < 0.3, "{rms}");
    }

    #[test]
    fn pacing_holds_the_rate() {
        let mut t = Tone::default();
        let start = Instant::now();
        for _ in 0..6 {
            t.next_frame().unwrap();
        }
        // Five periods of 20 ms between six frames.
        assert!(start.elapsed() >= Duration::from_millis(100));
    }
}
