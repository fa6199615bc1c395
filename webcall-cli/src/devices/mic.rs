//! The microphone as an [`AudioSource`]: any rate and channel count in,
//! 20 ms frames of 48 kHz mono out.
//!
//! The device callback mixes to mono and pushes samples at the device rate
//! into a lock-free ring (it never waits for a lock);
//! [`MicSource::next_frame`] takes them, resamples to 48 kHz and cuts
//! 960-sample frames. The device's clock paces the call; a device without
//! one (ALSA's null device delivers as fast as it is read) is held to real
//! time, so it cannot flood the call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cpal::traits::DeviceTrait;
use cpal::{FromSample, SizedSample};
use rtrb::{Consumer, Producer, RingBuffer};
use webcall_core::media::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, AudioSource};
use webcall_core::resample::{Resampler, f32_to_i16};

use super::DeviceError;
use super::audio::{Direction, StreamThread, device_name, find, with_sample_type};

/// How long the microphone may stay silent (no callbacks) before the
/// source gives up.
const STALL: Duration = Duration::from_secs(3);

/// How far the frames handed out may run ahead of the wall clock before
/// [`MicSource::next_frame`] waits. A clocked device never gets there.
const MAX_AHEAD: Duration = Duration::from_millis(200);

/// How often [`MicSource::next_frame`] looks for new samples while it waits
/// (a quarter of a frame).
const POLL: Duration = Duration::from_millis(5);

/// What the device callback shares besides the samples: its failure, and
/// how many samples it dropped because the reader fell a second behind.
#[derive(Debug, Default)]
struct Shared {
    failure: OnceLock<String>,
    dropped: AtomicU64,
}

/// The callback's side: mixes device frames to mono and pushes them.
#[derive(Debug)]
struct Capture {
    producer: Producer<f32>,
    shared: Arc<Shared>,
}

impl Capture {
    /// Pushes one block of interleaved samples with `channels` channels,
    /// mixed to mono; what does not fit is dropped and counted.
    fn push<T>(&mut self, data: &[T], channels: usize)
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let mut dropped = 0;
        for frame in data.chunks(channels) {
            let sum: f32 = frame.iter().map(|&s| s.to_sample::<f32>()).sum();
            if self.producer.push(sum / frame.len() as f32).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.shared.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

/// A live microphone.
#[derive(Debug)]
pub struct MicSource {
    name: String,
    samples: Consumer<f32>,
    shared: Arc<Shared>,
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
        // A second of device audio at most: while the reader is that far
        // behind, new audio is dropped.
        let (producer, samples) = RingBuffer::new(rate as usize);
        let shared = Arc::new(Shared::default());
        let capture = Capture {
            producer,
            shared: shared.clone(),
        };
        let stream = StreamThread::start("microphone", move || {
            with_sample_type!(format, typed(&device, &stream_config, channels, capture))
        })
        .map_err(|e| {
            DeviceError::Microphone(format!(
                "could not open the microphone {dev_name:?}: {e}; pick another with --mic or join with --audio tone"
            ))
        })?;
        Ok(Self {
            name: format!("microphone ({dev_name}, {rate} Hz, {channels} ch)"),
            samples,
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

fn typed<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    mut capture: Capture,
) -> Result<cpal::Stream, String>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let shared = capture.shared.clone();
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _| capture.push(data, channels),
            move |e| {
                let _ = shared.failure.set(format!("the microphone failed: {e}"));
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
        let deadline = Instant::now() + STALL;
        while self.pending.len() < AUDIO_FRAME_SAMPLES {
            if let Some(e) = self.shared.failure.get() {
                self.ended = true;
                return Err(webcall_core::Error::Media(e.clone()));
            }
            let waiting = self.samples.slots();
            if waiting == 0 {
                if Instant::now() >= deadline {
                    self.ended = true;
                    return Err(webcall_core::Error::Media(format!(
                        "{} delivered no sound for {} s: sending stops, the call goes on",
                        self.name,
                        STALL.as_secs()
                    )));
                }
                std::thread::sleep(POLL);
                continue;
            }
            self.scratch.clear();
            if let Ok(chunk) = self.samples.read_chunk(waiting) {
                self.scratch.extend(chunk);
            }
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

impl Drop for MicSource {
    fn drop(&mut self) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            tracing::debug!(
                dropped,
                "{}: samples dropped while the call fell behind",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(capacity: usize) -> (Capture, Consumer<f32>) {
        let (producer, consumer) = RingBuffer::new(capacity);
        let capture = Capture {
            producer,
            shared: Arc::default(),
        };
        (capture, consumer)
    }

    fn drain(consumer: &mut Consumer<f32>) -> Vec<f32> {
        std::iter::from_fn(|| consumer.pop().ok()).collect()
    }

    #[test]
    fn device_frames_are_mixed_to_mono_in_order() {
        let (mut c, mut out) = capture(8);
        c.push(&[0.5f32, -0.5, 1.0, 0.0], 2);
        c.push(&[i16::MIN, 0], 2);
        assert_eq!(drain(&mut out), [0.0, 0.5, -0.5]);
        c.push(&[0.25f32], 1);
        assert_eq!(drain(&mut out), [0.25]);
    }

    #[test]
    fn a_reader_a_ring_behind_costs_the_newest_samples_and_they_are_counted() {
        let (mut c, mut out) = capture(3);
        c.push(&[0.1f32, 0.2, 0.3, 0.4, 0.5], 1);
        assert_eq!(c.shared.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(drain(&mut out), [0.1, 0.2, 0.3]);
        c.push(&[0.6f32], 1);
        assert_eq!(drain(&mut out), [0.6], "room again once read");
    }
}
