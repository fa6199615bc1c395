//! Echo cancellation measured without hardware: a speech-like far end
//! goes to the speaker path (`VoiceProcessor::echo_reference`); the
//! microphone path (`VoiceProcessor::process_source`) gets the same signal
//! back, delayed by 96 ms (also 40 and 240 ms in one test) and attenuated
//! through a small room's response, plus a near end speaking (a second,
//! different speech-like voice) and a faint noise floor.
//!
//! The timeline, in seconds:
//!
//! | 0-12 | 12-16 | 16-20 | 20-24 |
//! |---|---|---|---|
//! | far end only | near end only | both (double talk) | far end only |
//!
//! Checked: the echo is reduced by at least 20 dB (ERLE) over 4-12 s, after
//! the canceller has had 4 s to converge, and again over 21-24 s after the
//! double talk; the near end alone (12-16 s) comes out within 3 dB of its
//! level and closely correlated with it (its level envelope: the filters
//! shift phases). With processing off, or noise suppression alone, the
//! same measure must fail: that shows the test can. Each run prints what
//! it measured (`--nocapture`).

use std::time::Duration;

use webcall_core::call::voice::{VoiceProcessor, VoiceSettings};
use webcall_core::media::{
    AUDIO_FRAME_DURATION, AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, AudioSink,
    AudioSource,
};

const RATE: usize = AUDIO_SAMPLE_RATE as usize;
const SECONDS: usize = 24;
/// The speaker-to-microphone delay: playout buffer, air and capture.
const ECHO_DELAY_MS: usize = 96;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// A speech-like voice for `len` samples, active only where `active`
/// says (by second): words of two to four syllables with pauses between;
/// most syllables voiced (a harmonic series on a gliding pitch around
/// `pitch` Hz, shaped by two moving formants), some unvoiced (a noise
/// burst, like a fricative), each under a rise-and-fall envelope. Peaks
/// near half of full scale.
fn voice(seed: u64, pitch: f64, len: usize, active: impl Fn(usize) -> bool) -> Vec<f64> {
    let mut rng = Rng(seed);
    let mut out = vec![0.0; len];
    let mut t = 0usize;
    while t < len {
        let syllables = 2 + (rng.next_u64() % 3) as usize;
        for _ in 0..syllables {
            let n = (rng.range(0.12, 0.26) * RATE as f64) as usize;
            if active(t / RATE) && t + n < len {
                if rng.unit() < 0.8 {
                    voiced(&mut rng, pitch, &mut out[t..t + n]);
                } else {
                    unvoiced(&mut rng, &mut out[t..t + n]);
                }
            }
            t += n + (rng.range(0.02, 0.06) * RATE as f64) as usize;
        }
        t += (rng.range(0.15, 0.45) * RATE as f64) as usize;
    }
    out
}

fn envelope(i: usize, n: usize) -> f64 {
    (std::f64::consts::PI * i as f64 / n as f64).sin().powf(0.7)
}

fn voiced(rng: &mut Rng, pitch: f64, out: &mut [f64]) {
    let n = out.len();
    let f0_start = pitch * rng.range(0.85, 1.2);
    let f0_end = pitch * rng.range(0.8, 1.15);
    let (f1a, f1b) = (rng.range(350.0, 800.0), rng.range(350.0, 800.0));
    let (f2a, f2b) = (rng.range(900.0, 2300.0), rng.range(900.0, 2300.0));
    let gain = rng.range(0.25, 0.5);
    let mut phases = [0.0f64; 64];
    let tau = std::f64::consts::TAU;
    for (i, s) in out.iter_mut().enumerate() {
        let x = i as f64 / n as f64;
        let f0 =
            f0_start + (f0_end - f0_start) * x + 3.0 * (tau * 5.0 * i as f64 / RATE as f64).sin();
        let (f1, f2) = (f1a + (f1b - f1a) * x, f2a + (f2b - f2a) * x);
        let mut v = 0.0;
        for (k, phase) in phases.iter_mut().enumerate() {
            let f = f0 * (k + 1) as f64;
            if f > 5000.0 {
                break;
            }
            *phase = (*phase + tau * f / RATE as f64) % tau;
            let formants = (-((f - f1) / 150.0).powi(2)).exp()
                + 0.6 * (-((f - f2) / 250.0).powi(2)).exp()
                + 0.05;
            v += phase.sin() * formants / (k + 1) as f64;
        }
        *s += gain * envelope(i, n) * v;
    }
}

fn unvoiced(rng: &mut Rng, out: &mut [f64]) {
    let n = out.len();
    let gain = rng.range(0.05, 0.12);
    let mut previous = 0.0;
    for (i, s) in out.iter_mut().enumerate() {
        let white = rng.range(-1.0, 1.0);
        // A first difference tilts the noise towards high frequencies.
        *s += gain * envelope(i, n) * (white - previous);
        previous = white;
    }
}

/// The far end as heard at the microphone: a direct path and a dozen
/// reflections within 40 ms, decaying; about 10 dB quieter overall.
fn room_echo(far: &[f64], delay_ms: usize) -> Vec<f64> {
    let mut rng = Rng(0x005E_ED0F_EC40);
    let delay = delay_ms * RATE / 1000;
    let mut taps = vec![(delay, 0.4)];
    for _ in 0..12 {
        let extra = rng.range(0.001, 0.040);
        let sign = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
        let gain = 0.12 * (-extra / 0.015).exp() * sign;
        taps.push((delay + (extra * RATE as f64) as usize, gain));
    }
    let mut out = vec![0.0; far.len()];
    for (lag, gain) in taps {
        for i in lag..far.len() {
            out[i] += gain * far[i - lag];
        }
    }
    out
}

fn to_i16(x: f64) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Plays a prepared list of frames, then ends.
struct Frames(std::vec::IntoIter<AudioFrame>);

impl AudioSource for Frames {
    fn next_frame(&mut self) -> webcall_core::Result<Option<AudioFrame>> {
        Ok(self.0.next())
    }

    fn describe(&self) -> String {
        "test microphone".into()
    }
}

/// A speaker that plays nothing.
struct Discard;

impl AudioSink for Discard {
    fn write_frame(&mut self, _: &AudioFrame) -> webcall_core::Result<()> {
        Ok(())
    }
}

fn frames(signal: &[f64]) -> Vec<AudioFrame> {
    signal
        .chunks_exact(AUDIO_FRAME_SAMPLES)
        .enumerate()
        .map(|(i, chunk)| AudioFrame {
            samples: chunk.iter().map(|&x| to_i16(x)).collect(),
            timestamp: AUDIO_FRAME_DURATION * i as u32,
        })
        .collect()
}

/// The timeline's signals.
struct Signals {
    /// The far end, as sent to the speaker.
    far: Vec<AudioFrame>,
    /// The far end's echo at the microphone.
    echo: Vec<f64>,
    /// The near end's voice at the microphone.
    near: Vec<f64>,
    /// What the microphone hears: echo, near end and a noise floor.
    mic: Vec<AudioFrame>,
}

/// The timeline with the echo [`ECHO_DELAY_MS`] late, made once for the
/// tests that share it.
fn signals() -> &'static Signals {
    static SIGNALS: std::sync::OnceLock<Signals> = std::sync::OnceLock::new();
    SIGNALS.get_or_init(|| make_signals(ECHO_DELAY_MS))
}

fn make_signals(delay_ms: usize) -> Signals {
    let len = SECONDS * RATE;
    let far = voice(0xFA4_E4D, 120.0, len, |s| !(12..16).contains(&s));
    let near = voice(0x04EA_4E4D, 210.0, len, |s| (12..20).contains(&s));
    let echo = room_echo(&far, delay_ms);
    let mut noise = Rng(0x0004_015E);
    // A noise floor near -70 dBFS, as a quiet room and a microphone give.
    let mic: Vec<f64> = (0..len)
        .map(|i| echo[i] + near[i] + 0.0005 * noise.range(-1.0, 1.0))
        .collect();
    Signals {
        far: frames(&far),
        echo,
        near,
        mic: frames(&mic),
    }
}

/// The signals of one run, as the microphone path saw them.
struct Run {
    /// The far end's echo at the microphone.
    echo: &'static [f64],
    /// The near end's voice at the microphone.
    near: &'static [f64],
    /// What the microphone path sent.
    out: Vec<f64>,
}

/// Runs the timeline through the two wrappers of one processor: each far
/// frame goes to the speaker path just before the microphone frame of the
/// same 20 ms is read.
fn run(settings: VoiceSettings) -> Run {
    run_on(signals(), settings)
}

fn run_on(signals: &'static Signals, settings: VoiceSettings) -> Run {
    let Signals {
        far,
        echo,
        near,
        mic,
    } = signals;
    let len = SECONDS * RATE;
    let processor = VoiceProcessor::new(settings);
    let mut speaker = processor.echo_reference(Box::new(Discard));
    let mut microphone = processor.process_source(Box::new(Frames(mic.clone().into_iter())));
    let mut out = Vec::with_capacity(len);
    for far_frame in far {
        speaker.write_frame(far_frame).unwrap();
        let sent = microphone
            .next_frame()
            .unwrap()
            .expect("a frame each 20 ms");
        assert_eq!(sent.samples.len(), AUDIO_FRAME_SAMPLES);
        out.extend(sent.samples.iter().map(|&s| f64::from(s) / 32767.0));
    }
    assert!(microphone.next_frame().unwrap().is_none());
    Run { echo, near, out }
}

fn power(x: &[f64]) -> f64 {
    x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

fn seconds(x: &[f64], from: f64, to: f64) -> &[f64] {
    &x[(from * RATE as f64) as usize..(to * RATE as f64) as usize]
}

/// Echo return loss enhancement over `from..to` s (far end only there):
/// the echo's power at the microphone over the power sent.
fn erle(run: &Run, from: f64, to: f64) -> f64 {
    db(power(seconds(run.echo, from, to)) / power(seconds(&run.out, from, to)))
}

/// Samples in one step of a level envelope: 5 ms.
const STEP: usize = RATE / 200;

/// The RMS level of each 5 ms of `x`.
fn levels(x: &[f64]) -> Vec<f64> {
    x.chunks_exact(STEP).map(|c| power(c).sqrt()).collect()
}

/// The normalised correlation of `b`, `lag` steps late, with `a`.
fn correlation_at(a: &[f64], b: &[f64], lag: usize) -> f64 {
    let n = a.len() - lag;
    let (a, b) = (&a[..n], &b[lag..lag + n]);
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (power(a) * power(b)).sqrt() / n as f64
}

/// How well what was sent (`out`) keeps a voice: the correlation of
/// their level envelopes, with `out` up to 40 ms late (the pipeline delays
/// a little), and the share of the voice's 5 ms steps louder than
/// -45 dBFS that were sent within 3 dB of their level. Envelopes rather
/// than waveforms: the filters shift phases, which the ear does not hear
/// but a waveform correlation counts.
fn kept(voice: &[f64], out: &[f64]) -> (f64, f64, usize) {
    let (v, o) = (levels(voice), levels(out));
    let (r, lag) = (0..8)
        .map(|lag| (correlation_at(&v, &o, lag), lag))
        .fold((f64::MIN, 0), |best, c| if c.0 > best.0 { c } else { best });
    let active: Vec<(f64, f64)> = v
        .iter()
        .zip(&o[lag..])
        .filter(|(v, _)| 20.0 * v.log10() > -45.0)
        .map(|(&v, &o)| (v, o))
        .collect();
    let within = active
        .iter()
        .filter(|(v, o)| (20.0 * (o / v).log10()).abs() <= 3.0)
        .count();
    (r, within as f64 / active.len() as f64, lag * STEP)
}

#[test]
fn the_echo_is_reduced_by_20_db_and_the_near_end_is_kept() {
    let run = run(VoiceSettings::default());
    for s in 0..SECONDS {
        let (s, e) = (s as f64, s as f64 + 1.0);
        println!(
            "{s:>4.0}-{e:<3.0} s: echo {:6.1} dBFS, near {:6.1} dBFS, sent {:6.1} dBFS",
            db(power(seconds(run.echo, s, e))),
            db(power(seconds(run.near, s, e))),
            db(power(seconds(&run.out, s, e))),
        );
    }
    let converged = erle(&run, 4.0, 12.0);
    let after_double_talk = erle(&run, 21.0, 24.0);
    println!(
        "ERLE 4-12 s: {converged:.1} dB; 21-24 s (after double talk): {after_double_talk:.1} dB"
    );
    assert!(converged >= 20.0, "ERLE 4-12 s {converged:.1} dB < 20 dB");
    assert!(
        after_double_talk >= 20.0,
        "ERLE 21-24 s {after_double_talk:.1} dB < 20 dB"
    );

    let near = seconds(run.near, 12.0, 16.0);
    let sent = seconds(&run.out, 12.0, 16.0);
    let level = db(power(sent) / power(near));
    let (r, within, lag) = kept(near, sent);
    println!(
        "near end alone, 12-16 s: sent {level:+.1} dB against the voice; level envelopes \
         correlate {r:.3} ({lag} samples later); {:.0} % of its loud steps within 3 dB",
        within * 100.0
    );
    assert!(
        level.abs() <= 3.0,
        "the near end came out {level:+.1} dB off"
    );
    assert!(
        r >= 0.95,
        "the near end came out changed (correlation {r:.3})"
    );
    assert!(
        within >= 0.8,
        "the near end came out changed ({within:.2} within 3 dB)"
    );

    let near = seconds(run.near, 16.0, 20.0);
    let sent = seconds(&run.out, 16.0, 20.0);
    let (r, within, _) = kept(near, sent);
    println!(
        "double talk, 16-20 s: sent {:+.1} dB against the near voice; envelopes correlate \
         {r:.3}; {:.0} % of its loud steps within 3 dB",
        db(power(sent) / power(near)),
        within * 100.0
    );
}

#[test]
fn echo_cancellation_alone_reduces_the_echo_by_20_db() {
    let run = run(VoiceSettings {
        echo_cancellation: true,
        noise_suppression: false,
    });
    let converged = erle(&run, 4.0, 12.0);
    println!("echo cancellation without noise suppression: ERLE 4-12 s {converged:.1} dB");
    let (r, within, _) = kept(seconds(run.near, 12.0, 16.0), seconds(&run.out, 12.0, 16.0));
    assert!(
        r >= 0.95 && within >= 0.8,
        "near end changed: {r:.3}, {within:.2}"
    );
    assert!(converged >= 20.0, "ERLE 4-12 s {converged:.1} dB < 20 dB");
}

#[test]
fn without_processing_the_echo_goes_out_and_the_check_fails() {
    let off = run(VoiceSettings::OFF);
    let erle_off = erle(&off, 4.0, 12.0);
    println!("processing off: ERLE 4-12 s {erle_off:.1} dB");
    assert!(erle_off < 20.0 && erle_off.abs() < 1.0, "{erle_off:.1} dB");
    // Noise suppression alone does not remove an echo either: it is speech.
    let ns = run(VoiceSettings {
        echo_cancellation: false,
        noise_suppression: true,
    });
    let erle_ns = erle(&ns, 4.0, 12.0);
    println!("noise suppression alone: ERLE 4-12 s {erle_ns:.1} dB");
    assert!(erle_ns < 20.0, "{erle_ns:.1} dB");
}

#[test]
fn timestamps_pass_through() {
    let processor = VoiceProcessor::new(VoiceSettings::default());
    let frame = AudioFrame {
        samples: vec![0; AUDIO_FRAME_SAMPLES],
        timestamp: Duration::from_millis(340),
    };
    let mut source = processor.process_source(Box::new(Frames(vec![frame].into_iter())));
    assert_eq!(source.describe(), "test microphone");
    let sent = source.next_frame().unwrap().unwrap();
    assert_eq!(sent.timestamp, Duration::from_millis(340));
}

#[test]
fn echo_cancellation_finds_shorter_and_longer_delays() {
    for delay_ms in [40, 240] {
        // Leaked: a test's worth of samples, so the run can borrow them.
        let signals = Box::leak(Box::new(make_signals(delay_ms)));
        let run = run_on(signals, VoiceSettings::default());
        let converged = erle(&run, 4.0, 12.0);
        println!("echo {delay_ms} ms late: ERLE 4-12 s {converged:.1} dB");
        assert!(
            converged >= 20.0,
            "{delay_ms} ms: ERLE {converged:.1} dB < 20 dB"
        );
    }
}
