//! The speaker as an [`AudioSink`]: 48 kHz mono frames in, the device's rate
//! and channels out, through a jitter buffer (about 60 ms) for smooth
//! playout.
//!
//! [`AudioSink::write_frame`] resamples to the device's rate and pushes into
//! the jitter buffer's lock-free ring; the device callback only pops from
//! it, so it never waits for a lock.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cpal::traits::DeviceTrait;
use cpal::{FromSample, Sample, SizedSample};
use webcall_core::media::{AUDIO_SAMPLE_RATE, AudioFrame, AudioSink};
use webcall_core::resample::{Resampler, i16_to_f32};

use super::DeviceError;
use super::audio::{Direction, StreamThread, device_name, find, with_sample_type};
use super::jitter::{JitterBuffer, JitterInput, JitterStats, jitter_buffer};

/// Playout depth the buffer fills to.
pub const JITTER_TARGET: Duration = Duration::from_millis(60);
/// Depth above which old audio is dropped.
pub const JITTER_MAX: Duration = Duration::from_millis(200);

/// `depth` of audio at `rate` Hz, in samples.
fn samples_in(depth: Duration, rate: u32) -> usize {
    (u128::from(rate) * depth.as_millis() / 1000) as usize
}

/// What the device callback reports when it fails.
type Failure = Arc<OnceLock<String>>;

/// A live speaker.
#[derive(Debug)]
pub struct SpeakerSink {
    name: String,
    input: JitterInput,
    resampler: Resampler,
    scratch: Vec<f32>,
    resampled: Vec<f32>,
    failure: Failure,
    failure_reported: bool,
    _stream: StreamThread,
}

impl SpeakerSink {
    /// Opens the speaker named `name` (a case-insensitive part of its name),
    /// or the default one.
    pub fn open(name: Option<&str>) -> Result<Self, DeviceError> {
        let (device, config) = find(Direction::Output, name)?;
        let dev_name = device_name(&device);
        let rate = config.sample_rate();
        let channels = usize::from(config.channels().max(1));
        let format = config.sample_format();
        let stream_config: cpal::StreamConfig = config.config();
        let (input, output) = jitter_buffer(
            samples_in(JITTER_TARGET, rate),
            samples_in(JITTER_MAX, rate),
        );
        let failure = Failure::default();
        let for_stream = failure.clone();
        let stream = StreamThread::start("speaker", move || {
            let args = (output, for_stream);
            with_sample_type!(format, typed(&device, &stream_config, channels, args))
        })
        .map_err(|e| {
            DeviceError::Speaker(format!(
                "could not open the speaker {dev_name:?}: {e}; pick another with --speaker"
            ))
        })?;
        Ok(Self {
            name: format!("speaker ({dev_name}, {rate} Hz, {channels} ch)"),
            input,
            resampler: Resampler::new(AUDIO_SAMPLE_RATE, rate),
            scratch: Vec::new(),
            resampled: Vec::new(),
            failure,
            failure_reported: false,
            _stream: stream,
        })
    }

    /// A short name for logs.
    pub fn describe(&self) -> String {
        self.name.clone()
    }

    /// What the jitter buffer has done so far (counted in samples at the
    /// device's rate).
    pub fn jitter_stats(&self) -> JitterStats {
        self.input.stats()
    }
}

fn typed<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    (mut output, failure): (JitterBuffer, Failure),
) -> Result<cpal::Stream, String>
where
    T: SizedSample + FromSample<f32>,
{
    device
        .build_output_stream::<T, _, _>(
            *config,
            move |data: &mut [T], _| {
                for frame in data.chunks_mut(channels) {
                    frame.fill(output.pop().to_sample::<T>());
                }
            },
            move |e| {
                let _ = failure.set(format!("the speaker failed: {e}"));
            },
            None,
        )
        .map_err(|e| e.to_string())
}

impl AudioSink for SpeakerSink {
    fn write_frame(&mut self, frame: &AudioFrame) -> webcall_core::Result<()> {
        if !self.failure_reported
            && let Some(e) = self.failure.get()
        {
            self.failure_reported = true;
            return Err(webcall_core::Error::Media(format!("{}: {e}", self.name)));
        }
        self.scratch.clear();
        self.scratch
            .extend(frame.samples.iter().map(|&s| i16_to_f32(s)));
        self.resampled.clear();
        self.resampler.process(&self.scratch, &mut self.resampled);
        self.input.push(&self.resampled);
        Ok(())
    }
}
