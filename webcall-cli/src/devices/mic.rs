//! The microphone as an [`AudioSource`]: any rate and channel count in,
//! 20 ms frames of 48 kHz mono out.
//!
//! The device callback mixes to mono and queues samples at the device rate;
//! [`MicSource::next_frame`] waits for them, resamples to 48 kHz and cuts
//! 960-sample frames. The device's clock paces the call; a device without
//! one (ALSA's null device delivers as fast as it is read) is held to real
//! time, so it cannot flood the call.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cpal::traits::DeviceTrait;
use cpal::{FromSample, SampleFormat, SizedSample};
use webcall_core::media::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, AudioSource};

use super::DeviceError;
use super::audio::{Direction, StreamThread, device_name, find};
use super::resample::{Resampler, f32_to_i16};

/// How long the microphone may stay silent (no callbacks) before the
/// source gives up.
const STALL: Duration = Duration::from_secs(3);

/// How far the frames handed out may run ahead of the wall clock before
/// [`MicSource::next_frame`] waits. A clocked device never gets there.
const MAX_AHEAD: Duration = Duration::from_millis(200);

#[derive(Debug, Default)]
struct Captured {
    samples: VecDeque<f32>,
    error: Option<String>,
    dropped: u64,
}

type Shared = Arc<(Mutex<Captured>, Condvar)>;

/// A live microphone.
#[derive(Debug)]
pub struct MicSource {
    name: String,
    shared: Shared,
    resampler: Resampler,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    sent: u64,
    /// When the first frame was handed out.
    first: Option<Instant>,
    ended: bool,
    _stream: StreamThread,
}

impl MicSource {
    /// Opens the microphone named `name` (a case-insensitive part of its
    /// name), or the default one.
    pub fn open(name: Option<&str>) -> Result<Self, DeviceError> {
        let (device, config) = find(Direction::Input, name)?;
        let dev_name = device_name(&device);
        let rate = config.sample_rate();
        let channels = usize::from(config.channels().max(1));
        let format = config.sample_format();
        let stream_config: cpal::StreamConfig = config.config();
        // A second of device audio at most; older audio is dropped.
        let cap = rate as usize;
        let shared: Shared = Arc::default();
        let for_stream = shared.clone();
        let stream = StreamThread::start("microphone", move || {
            build(&device, &stream_config, format, channels, cap, for_stream)
        })
        .map_err(|e| {
            DeviceError::Microphone(format!(
                "could not open the microphone {dev_name:?}: {e}; pick another with --mic or join with --audio tone"
            ))
        })?;
        Ok(Self {
            name: format!("microphone ({dev_name}, {rate} Hz, {channels} ch)"),
            shared,
            resampler: Resampler::new(rate, AUDIO_SAMPLE_RATE),
            pending: Vec::with_capacity(AUDIO_FRAME_SAMPLES * 4),
            scratch: Vec::new(),
            sent: 0,
            first: None,
            ended: false,
            _stream: stream,
        })
    }
}

fn build(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    format: SampleFormat,
    channels: usize,
    cap: usize,
    shared: Shared,
) -> Result<cpal::Stream, String> {
    match format {
        SampleFormat::I16 => typed::<i16>(device, config, channels, cap, shared),
        SampleFormat::U16 => typed::<u16>(device, config, channels, cap, shared),
        SampleFormat::I32 => typed::<i32>(device, config, channels, cap, shared),
        SampleFormat::U8 => typed::<u8>(device, config, channels, cap, shared),
        SampleFormat::I8 => typed::<i8>(device, config, channels, cap, shared),
        SampleFormat::F32 => typed::<f32>(device, config, channels, cap, shared),
        SampleFormat::F64 => typed::<f64>(device, config, channels, cap, shared),
        other => Err(format!("the sample format {other} is not supported")),
    }
}

fn typed<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    cap: usize,
    shared: Shared,
) -> Result<cpal::Stream, String>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let on_error = shared.clone();
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _| {
                let (lock, ready) = &*shared;
                let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
                for frame in data.chunks(channels) {
                    let sum: f32 = frame.iter().map(|&s| s.to_sample::<f32>()).sum();
                    c.samples.push_back(sum / frame.len() as f32);
                }
                if c.samples.len() > cap {
                    let excess = c.samples.len() - cap;
                    c.samples.drain(..excess);
                    c.dropped += excess as u64;
                }
                ready.notify_one();
            },
            move |e| {
                let (lock, ready) = &*on_error;
                lock.lock().unwrap_or_else(|e| e.into_inner()).error =
                    Some(format!("the microphone failed: {e}"));
                ready.notify_one();
            },
            None,
        )
        .map_err(|e| e.to_string())
}

impl AudioSource for MicSource {
    fn next_frame(&mut self) -> webcall_core::Result<Option<AudioFrame>> {
        if self.ended {
            return Ok(None);
        }
        while self.pending.len() < AUDIO_FRAME_SAMPLES {
            let (lock, ready) = &*self.shared;
            let deadline = Instant::now() + STALL;
            let mut c = lock.lock().unwrap_or_else(|e| e.into_inner());
            while c.samples.is_empty() && c.error.is_none() {
                let now = Instant::now();
                if now >= deadline {
                    self.ended = true;
                    return Err(webcall_core::Error::Media(format!(
                        "{} delivered no sound for {} s: sending stops, the call goes on",
                        self.name,
                        STALL.as_secs()
                    )));
                }
                c = ready
                    .wait_timeout(c, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if let Some(e) = c.error.take() {
                self.ended = true;
                return Err(webcall_core::Error::Media(e));
            }
            self.scratch.clear();
            self.scratch.extend(c.samples.drain(..));
            drop(c);
            self.resampler.process(&self.scratch, &mut self.pending);
        }
        let samples: Vec<i16> = self
            .pending
            .drain(..AUDIO_FRAME_SAMPLES)
            .map(f32_to_i16)
            .collect();
        let timestamp = Duration::from_millis(20 * self.sent);
        self.sent += 1;
        let first = *self.first.get_or_insert_with(Instant::now);
        if let Some(ahead) = timestamp.checked_sub(first.elapsed())
            && ahead > MAX_AHEAD
        {
            std::thread::sleep(ahead - MAX_AHEAD);
        }
        Ok(Some(AudioFrame { samples, timestamp }))
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
