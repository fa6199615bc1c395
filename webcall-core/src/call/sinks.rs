//! Media sinks that need no hardware: counters (for tests and summaries), a
//! Y4M writer for received video and a WAV writer for received audio.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::media::{AUDIO_SAMPLE_RATE, AudioFrame, AudioSink, VideoFrame, VideoSink};

/// Counts frames (and, for audio, frames that are not silence). Clones share
/// the counters, so keep one to read them while the call owns the other.
#[derive(Debug, Clone, Default)]
pub struct CountingSink {
    frames: Arc<AtomicU64>,
    loud: Arc<AtomicU64>,
}

impl CountingSink {
    /// A sink with zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Audio frames louder than -50 dBFS written so far (0 for video).
    pub fn loud_frames(&self) -> u64 {
        self.loud.load(Ordering::Relaxed)
    }
}

impl VideoSink for CountingSink {
    fn write_frame(&mut self, _frame: &VideoFrame) -> Result<()> {
        self.frames.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl AudioSink for CountingSink {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<()> {
        self.frames.fetch_add(1, Ordering::Relaxed);
        if frame.rms() > 0.003 {
            self.loud.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Writes received video to a Y4M file (4:2:0, 30 fps nominal). The size
/// is taken from the first frame; frames of another size are skipped.
pub struct Y4mFileSink {
    path: PathBuf,
    encoder: Option<y4m::Encoder<BufWriter<File>>>,
    file: Option<File>,
    size: Option<(u32, u32)>,
    skipped: u64,
}

impl std::fmt::Debug for Y4mFileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mFileSink")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl Y4mFileSink {
    /// Creates (truncates) `path` now, so an unwritable path fails before the call.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| {
            Error::Media(format!("cannot create video file {}: {e}", path.display()))
        })?;
        Ok(Self {
            path,
            encoder: None,
            file: Some(file),
            size: None,
            skipped: 0,
        })
    }
}

impl VideoSink for Y4mFileSink {
    fn write_frame(&mut self, frame: &VideoFrame) -> Result<()> {
        let size = (frame.width(), frame.height());
        if self.encoder.is_none() {
            let Some(file) = self.file.take() else {
                return Ok(());
            };
            let enc = y4m::encode(size.0 as usize, size.1 as usize, y4m::Ratio::new(30, 1))
                .with_colorspace(y4m::Colorspace::C420jpeg)
                .write_header(BufWriter::new(file))
                .map_err(|e| Error::Media(format!("writing {}: {e:?}", self.path.display())))?;
            self.encoder = Some(enc);
            self.size = Some(size);
        }
        if self.size != Some(size) {
            self.skipped += 1;
            return Ok(());
        }
        let out = y4m::Frame::new([frame.y(), frame.u(), frame.v()], None);
        if let Some(enc) = self.encoder.as_mut() {
            enc.write_frame(&out)
                .map_err(|e| Error::Media(format!("writing {}: {e:?}", self.path.display())))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // Dropping the encoder flushes its buffered writer.
        self.encoder = None;
        Ok(())
    }
}

/// Writes received audio to a 48 kHz mono 16-bit WAV file.
pub struct WavFileSink {
    path: PathBuf,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
}

impl std::fmt::Debug for WavFileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavFileSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WavFileSink {
    /// Creates (truncates) `path` now, so an unwritable path fails before the call.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: AUDIO_SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&path, spec).map_err(|e| {
            Error::Media(format!("cannot create audio file {}: {e}", path.display()))
        })?;
        Ok(Self {
            path,
            writer: Some(writer),
        })
    }
}

impl AudioSink for WavFileSink {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<()> {
        if let Some(w) = self.writer.as_mut() {
            let mut i16w = w.get_i16_writer(frame.samples.len() as u32);
            for &s in &frame.samples {
                i16w.write_sample(s);
            }
            i16w.flush()
                .map_err(|e| Error::Media(format!("writing {}: {e}", self.path.display())))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(w) = self.writer.take() {
            w.finalize()
                .map_err(|e| Error::Media(format!("closing {}: {e}", self.path.display())))?;
        }
        Ok(())
    }
}

impl Drop for WavFileSink {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::AUDIO_FRAME_SAMPLES;
    use std::time::Duration;

    #[test]
    fn wav_and_y4m_files_round_trip() {
        let dir = std::env::temp_dir().join(format!("webcall-sinks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("a.wav");
        let mut s = WavFileSink::create(&wav).unwrap();
        let loud = AudioFrame {
            samples: vec![1000; AUDIO_FRAME_SAMPLES],
            timestamp: Duration::ZERO,
        };
        s.write_frame(&loud).unwrap();
        s.write_frame(&loud).unwrap();
        s.finish().unwrap();
        let r = hound::WavReader::open(&wav).unwrap();
        assert_eq!(r.duration() as usize, 2 * AUDIO_FRAME_SAMPLES);

        let y4m_path = dir.join("v.y4m");
        let mut v = Y4mFileSink::create(&y4m_path).unwrap();
        let f = VideoFrame::black(64, 48).unwrap();
        v.write_frame(&f).unwrap();
        v.write_frame(&VideoFrame::black(32, 16).unwrap()).unwrap();
        v.finish().unwrap();
        let mut src = super::super::sources::Y4mFileSource::open(&y4m_path, false).unwrap();
        use crate::media::VideoSource;
        assert_eq!(src.next_frame().unwrap().unwrap().data(), f.data());
        assert!(src.next_frame().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn counting_sinks_share_counters() {
        let c = CountingSink::new();
        let mut inside = c.clone();
        AudioSink::write_frame(&mut inside, &AudioFrame::silence(Duration::ZERO)).unwrap();
        assert_eq!((c.frames(), c.loud_frames()), (1, 0));
    }
}
