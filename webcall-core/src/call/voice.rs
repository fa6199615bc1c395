//! Echo cancellation and noise suppression on the microphone path.
//!
//! A [`VoiceProcessor`] owns one audio processing pipeline (high-pass
//! filter, WebRTC's echo canceller AEC3, then its noise suppressor: the
//! `sonora` crate, a pure-Rust port of WebRTC's audio processing module,
//! the same processing a browser applies to its microphone). Two
//! wrappers share it:
//!
//! - [`EchoReference`], an [`AudioSink`] around the speaker: every frame
//!   sent to the speaker is also handed to the processor as the echo
//!   reference (the far end), then passed on unchanged;
//! - [`ProcessedSource`], an [`AudioSource`] around the microphone: each
//!   frame runs through echo cancellation, then noise suppression, before
//!   the call sends it.
//!
//! The speaker is called on the call's receive path, which must not wait
//! for signal processing: far-end frames wait in a short queue
//! ([`MAX_PENDING_FAR_END`] frames, the oldest dropped past it) and the
//! microphone's thread analyses them just before the next microphone frame.
//! A frame reaches the speaker before its echo reaches the microphone, so
//! every echo finds its reference analysed. The echo canceller finds the
//! delay between the two itself (up to about half a second).
//!
//! Each stage can be switched off ([`VoiceSettings`]); with both off the
//! wrappers pass frames through untouched. Frames are 20 ms
//! ([`AudioFrame`]); the pipeline works on 10 ms halves of them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sonora::config::{EchoCanceller, HighPassFilter, NoiseSuppression};
use sonora::{AudioProcessing, Config, StreamConfig};

use crate::error::{Error, Result};
use crate::media::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, AudioSink, AudioSource};

/// Far-end frames (20 ms each) that wait for the microphone's thread; past
/// this the oldest is dropped. 500 ms: more than a speaker's jitter buffer
/// holds, so nothing is dropped while the microphone runs, and a bounded
/// queue while it does not (no microphone, or one that stalls).
pub const MAX_PENDING_FAR_END: usize = 25;

/// Samples in the pipeline's 10 ms unit.
const CHUNK: usize = AUDIO_FRAME_SAMPLES / 2;

/// Which stages of the microphone's processing are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceSettings {
    /// Remove the far end's voice, played by the speaker and picked up
    /// again by the microphone.
    pub echo_cancellation: bool,
    /// Lower steady background noise (fans, hum, hiss).
    pub noise_suppression: bool,
}

impl Default for VoiceSettings {
    /// Both on: what a call from a real microphone uses.
    fn default() -> Self {
        Self {
            echo_cancellation: true,
            noise_suppression: true,
        }
    }
}

impl VoiceSettings {
    /// Both stages off: frames pass through untouched.
    pub const OFF: Self = Self {
        echo_cancellation: false,
        noise_suppression: false,
    };

    /// True when any stage is on.
    pub fn any(self) -> bool {
        self.echo_cancellation || self.noise_suppression
    }
}

/// The audio processing shared by the speaker path ([`EchoReference`]) and
/// the microphone path ([`ProcessedSource`]). Cloning gives another handle
/// to the same pipeline.
#[derive(Clone)]
pub struct VoiceProcessor {
    shared: Arc<Shared>,
}

struct Shared {
    settings: VoiceSettings,
    /// Far-end frames not yet analysed, oldest first.
    far_end: Mutex<VecDeque<Vec<i16>>>,
    /// The pipeline; `None` with every stage off.
    pipeline: Mutex<Option<AudioProcessing>>,
}

impl std::fmt::Debug for VoiceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceProcessor")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl VoiceProcessor {
    /// A pipeline with the stages `settings` turns on, for 48 kHz mono.
    pub fn new(settings: VoiceSettings) -> Self {
        let pipeline = settings.any().then(|| {
            let config = Config {
                high_pass_filter: Some(HighPassFilter::default()),
                echo_canceller: settings.echo_cancellation.then(EchoCanceller::default),
                noise_suppression: settings.noise_suppression.then(NoiseSuppression::default),
                ..Config::default()
            };
            let stream = StreamConfig::new(AUDIO_SAMPLE_RATE, 1);
            AudioProcessing::builder()
                .config(config)
                .capture_config(stream)
                .render_config(stream)
                .build()
        });
        Self {
            shared: Arc::new(Shared {
                settings,
                far_end: Mutex::new(VecDeque::with_capacity(MAX_PENDING_FAR_END)),
                pipeline: Mutex::new(pipeline),
            }),
        }
    }

    /// The stages that are on.
    pub fn settings(&self) -> VoiceSettings {
        self.shared.settings
    }

    /// Wraps the speaker (or any sink of the far end's audio): what it is
    /// given becomes the echo reference.
    pub fn echo_reference(&self, sink: Box<dyn AudioSink>) -> EchoReference {
        EchoReference {
            processor: self.clone(),
            inner: sink,
        }
    }

    /// Wraps the microphone: what it yields is processed.
    pub fn process_source(&self, source: Box<dyn AudioSource>) -> ProcessedSource {
        ProcessedSource {
            processor: self.clone(),
            inner: source,
        }
    }

    /// Hands one far-end frame (what the speaker is about to play) to the
    /// echo canceller. Cheap: the frame waits for the microphone's thread.
    /// Ignored with echo cancellation off, and for frames that are not 20 ms.
    pub fn far_end(&self, frame: &AudioFrame) {
        if !self.shared.settings.echo_cancellation || frame.samples.len() != AUDIO_FRAME_SAMPLES {
            return;
        }
        let mut queue = lock(&self.shared.far_end);
        if queue.len() == MAX_PENDING_FAR_END {
            queue.pop_front();
        }
        queue.push_back(frame.samples.clone());
    }

    /// Runs one microphone frame through the stages that are on, in place,
    /// after analysing the far-end frames that came before it. A frame
    /// that is not 20 ms is refused.
    pub fn process(&self, frame: &mut AudioFrame) -> Result<()> {
        if frame.samples.len() != AUDIO_FRAME_SAMPLES {
            return Err(Error::Media(format!(
                "echo cancellation takes 20 ms frames of {AUDIO_FRAME_SAMPLES} samples, got {}",
                frame.samples.len()
            )));
        }
        let mut pipeline = lock(&self.shared.pipeline);
        let Some(pipeline) = pipeline.as_mut() else {
            return Ok(());
        };
        let far_end: Vec<Vec<i16>> = lock(&self.shared.far_end).drain(..).collect();
        let mut scratch = [0i16; CHUNK];
        for reference in &far_end {
            for chunk in reference.chunks_exact(CHUNK) {
                pipeline
                    .process_render_i16(chunk, &mut scratch)
                    .map_err(pipeline_error)?;
            }
        }
        for chunk in frame.samples.chunks_exact_mut(CHUNK) {
            scratch.copy_from_slice(chunk);
            pipeline
                .process_capture_i16(&scratch, chunk)
                .map_err(pipeline_error)?;
        }
        Ok(())
    }

    /// The echo canceller's own estimate of its echo return loss
    /// enhancement in dB, once it has one.
    pub fn erle_estimate_db(&self) -> Option<f64> {
        lock(&self.shared.pipeline)
            .as_ref()
            .and_then(|p| p.statistics().echo_return_loss_enhancement)
    }
}

fn pipeline_error(e: sonora::Error) -> Error {
    Error::Media(format!("audio processing refused a frame: {e}"))
}

/// An [`AudioSink`] that hands every frame to a [`VoiceProcessor`] as the
/// echo reference, then to the sink it wraps.
pub struct EchoReference {
    processor: VoiceProcessor,
    inner: Box<dyn AudioSink>,
}

impl std::fmt::Debug for EchoReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoReference")
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}

impl AudioSink for EchoReference {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<()> {
        self.processor.far_end(frame);
        self.inner.write_frame(frame)
    }

    fn finish(&mut self) -> Result<()> {
        self.inner.finish()
    }
}

/// An [`AudioSource`] whose frames run through a [`VoiceProcessor`]: echo
/// cancellation, then noise suppression.
pub struct ProcessedSource {
    processor: VoiceProcessor,
    inner: Box<dyn AudioSource>,
}

impl std::fmt::Debug for ProcessedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessedSource")
            .field("inner", &self.inner.describe())
            .field("processor", &self.processor)
            .finish()
    }
}

impl AudioSource for ProcessedSource {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>> {
        let Some(mut frame) = self.inner.next_frame()? else {
            return Ok(None);
        };
        self.processor.process(&mut frame)?;
        Ok(Some(frame))
    }

    /// The wrapped source's name: the screen and device switching go by it.
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn frame(value: i16) -> AudioFrame {
        AudioFrame {
            samples: vec![value; AUDIO_FRAME_SAMPLES],
            timestamp: Duration::ZERO,
        }
    }

    #[test]
    fn with_every_stage_off_frames_pass_untouched() {
        let p = VoiceProcessor::new(VoiceSettings::OFF);
        p.far_end(&frame(1000));
        let mut f = frame(1234);
        p.process(&mut f).unwrap();
        assert_eq!(f, frame(1234));
    }

    #[test]
    fn the_far_end_queue_is_bounded() {
        let p = VoiceProcessor::new(VoiceSettings::default());
        for i in 0..(MAX_PENDING_FAR_END + 10) {
            p.far_end(&frame(i as i16));
        }
        let queue = lock(&p.shared.far_end);
        assert_eq!(queue.len(), MAX_PENDING_FAR_END);
        assert_eq!(queue.front().unwrap()[0], 10, "the oldest were dropped");
    }

    #[test]
    fn frames_of_the_wrong_length_are_refused() {
        let p = VoiceProcessor::new(VoiceSettings::default());
        let mut short = AudioFrame {
            samples: vec![0; 100],
            timestamp: Duration::ZERO,
        };
        let e = p.process(&mut short).unwrap_err();
        assert!(e.to_string().contains("960"), "{e}");
    }
}
