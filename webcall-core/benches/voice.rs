//! What echo cancellation and noise suppression cost: the time to run one
//! 20 ms microphone frame (and the speaker's frame of the same 20 ms, as
//! the echo reference) through [`VoiceProcessor`], each stage alone and
//! both, on one thread. Prints the mean and the 99th percentile per frame,
//! and the share of one core that a call's microphone then takes.
//!
//! Run with: cargo bench -p webcall-core --bench voice
//! (or `cargo test --workspace --offline --bench voice`: the dev profile
//! already optimises the audio processing crate, which does the work).

use std::time::{Duration, Instant};

use webcall_core::call::voice::{VoiceProcessor, VoiceSettings};
use webcall_core::media::{
    AUDIO_FRAME_DURATION, AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame,
};

/// Frames measured per configuration: 30 s of audio, after 5 s to settle.
const WARM_UP: usize = 250;
const MEASURED: usize = 1500;

/// A voice-like far end: a gliding harmonic series under a syllable-rate
/// envelope, with a little noise.
fn far_end(n: usize) -> Vec<i16> {
    let rate = AUDIO_SAMPLE_RATE as f64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let f0 = 130.0 + 30.0 * (std::f64::consts::TAU * 0.7 * t).sin();
            phase += std::f64::consts::TAU * f0 / rate;
            let voiced: f64 = (1..=20).map(|k| (phase * k as f64).sin() / k as f64).sum();
            let syllable = (std::f64::consts::TAU * 2.5 * t).sin().max(0.0);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let noise = (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            ((0.25 * syllable * voiced + 0.002 * noise) * 32767.0) as i16
        })
        .collect()
}

fn frame(samples: &[i16], index: usize) -> AudioFrame {
    AudioFrame {
        samples: samples.to_vec(),
        timestamp: AUDIO_FRAME_DURATION * index as u32,
    }
}

/// Mean and 99th percentile of one frame's processing (far end and
/// microphone) with `settings`.
fn measure(settings: VoiceSettings, far: &[i16], mic: &[i16]) -> (Duration, Duration) {
    let processor = VoiceProcessor::new(settings);
    let mut times = Vec::with_capacity(MEASURED);
    for i in 0..WARM_UP + MEASURED {
        let span = i * AUDIO_FRAME_SAMPLES..(i + 1) * AUDIO_FRAME_SAMPLES;
        let far_frame = frame(&far[span.clone()], i);
        let mut mic_frame = frame(&mic[span], i);
        let started = Instant::now();
        processor.far_end(&far_frame);
        processor.process(&mut mic_frame).expect("a 20 ms frame");
        if i >= WARM_UP {
            times.push(started.elapsed());
        }
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    times.sort();
    (mean, times[times.len() * 99 / 100])
}

fn main() {
    let n = (WARM_UP + MEASURED) * AUDIO_FRAME_SAMPLES;
    let far = far_end(n);
    // The microphone: the far end 80 ms later at a third of its level.
    let delay = AUDIO_SAMPLE_RATE as usize * 80 / 1000;
    let mic: Vec<i16> = (0..n)
        .map(|i| if i >= delay { far[i - delay] / 3 } else { 0 })
        .collect();
    println!("audio processing, one 20 ms frame (speaker reference + microphone), one thread:");
    for (name, settings) in [
        (
            "echo cancellation + noise suppression",
            VoiceSettings::default(),
        ),
        (
            "echo cancellation alone",
            VoiceSettings {
                echo_cancellation: true,
                noise_suppression: false,
            },
        ),
        (
            "noise suppression alone",
            VoiceSettings {
                echo_cancellation: false,
                noise_suppression: true,
            },
        ),
    ] {
        let (mean, p99) = measure(settings, &far, &mic);
        let core = mean.as_secs_f64() / AUDIO_FRAME_DURATION.as_secs_f64() * 100.0;
        println!(
            "  {name:<40} mean {:>6.3} ms, p99 {:>6.3} ms: {core:.1} % of a core",
            mean.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
}
