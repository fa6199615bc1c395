//! The speaker as an [`AudioSink`]: 48 kHz mono frames in, the device's rate
//! and channels out, through a jitter buffer (about 60 ms) for smooth
//! playout.

use std::sync::{Arc, Mutex};

use cpal::traits::DeviceTrait;
use cpal::{FromSample, Sample, SampleFormat, SizedSample};
use webcall_core::media::{AUDIO_SAMPLE_RATE, AudioFrame, AudioSink};

use super::DeviceError;
use super::audio::{Direction, StreamThread, device_name, find};
use super::jitter::{JitterBuffer, JitterStats};
use super::resample::i16_to_f32;

/// Playout depth the buffer fills to: 60 ms at 48 kHz.
pub const JITTER_TARGET: usize = AUDIO_SAMPLE_RATE as usize * 60 / 1000;
/// Depth above which old audio is dropped: 200 ms.
pub const JITTER_MAX: usize = AUDIO_SAMPLE_RATE as usize * 200 / 1000;

/// Pulls 48 kHz samples from the jitter buffer at the device's rate,
/// interpolating linearly.
#[derive(Debug)]
struct Playout {
    buffer: JitterBuffer,
    /// 48 kHz samples per device sample.
    step: f64,
    pos: f64,
    prev: f32,
    next: f32,
    error: Option<String>,
}

impl Playout {
    fn next_sample(&mut self) -> f32 {
        while self.pos >= 1.0 {
            self.prev = self.next;
            self.next = self.buffer.pop();
            self.pos -= 1.0;
        }
        let s = self.prev + (self.next - self.prev) * self.pos as f32;
        self.pos += self.step;
        s
    }
}

type Shared = Arc<Mutex<Playout>>;

/// A live speaker.
#[derive(Debug)]
pub struct SpeakerSink {
    name: String,
    shared: Shared,
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
        let shared: Shared = Arc::new(Mutex::new(Playout {
            buffer: JitterBuffer::new(JITTER_TARGET, JITTER_MAX),
            step: f64::from(AUDIO_SAMPLE_RATE) / f64::from(rate),
            pos: 0.0,
            prev: 0.0,
            next: 0.0,
            error: None,
        }));
        let for_stream = shared.clone();
        let stream = StreamThread::start("speaker", move || {
            build(&device, &stream_config, format, channels, for_stream)
        })
        .map_err(|e| {
            DeviceError::Speaker(format!(
                "could not open the speaker {dev_name:?}: {e}; pick another with --speaker"
            ))
        })?;
        Ok(Self {
            name: format!("speaker ({dev_name}, {rate} Hz, {channels} ch)"),
            shared,
            _stream: stream,
        })
    }

    /// A short name for logs.
    pub fn describe(&self) -> String {
        self.name.clone()
    }

    /// What the jitter buffer has done so far.
    pub fn jitter_stats(&self) -> JitterStats {
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buffer
            .stats()
    }
}

fn build(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    channels: usize,
    shared: Shared,
) -> Result<cpal::Stream, String> {
    match format {
        SampleFormat::I16 => typed::<i16>(device, config, channels, shared),
        SampleFormat::U16 => typed::<u16>(device, config, channels, shared),
        SampleFormat::I32 => typed::<i32>(device, config, channels, shared),
        SampleFormat::U8 => typed::<u8>(device, config, channels, shared),
        SampleFormat::I8 => typed::<i8>(device, config, channels, shared),
        SampleFormat::F32 => typed::<f32>(device, config, channels, shared),
        SampleFormat::F64 => typed::<f64>(device, config, channels, shared),
        other => Err(format!("the sample format {other} is not supported")),
    }
}

fn typed<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    shared: Shared,
) -> Result<cpal::Stream, String>
where
    T: SizedSample + FromSample<f32>,
{
    let on_error = shared.clone();
    device
        .build_output_stream::<T, _, _>(
            *config,
            move |data: &mut [T], _| {
                let mut p = shared.lock().unwrap_or_else(|e| e.into_inner());
                for frame in data.chunks_mut(channels) {
                    let s = p.next_sample().to_sample::<T>();
                    frame.fill(s);
                }
            },
            move |e| {
                on_error.lock().unwrap_or_else(|e| e.into_inner()).error =
                    Some(format!("the speaker failed: {e}"));
            },
            None,
        )
        .map_err(|e| e.to_string())
}

impl AudioSink for SpeakerSink {
    fn write_frame(&mut self, frame: &AudioFrame) -> webcall_core::Result<()> {
        let mut p = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = p.error.take() {
            return Err(webcall_core::Error::Media(format!("{}: {e}", self.name)));
        }
        p.buffer.push(frame.samples.iter().map(|&s| i16_to_f32(s)));
        Ok(())
    }
}
