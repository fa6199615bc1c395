//! The one audio resampler: streaming linear interpolation for mono audio,
//! and the one conversion between float and 16-bit samples.
//!
//! Speech at 48 kHz from a device at 44.1 or 16 kHz (or back) needs no more
//! than linear interpolation for a call; the state carried between blocks
//! keeps the output continuous across callback boundaries. A whole file is
//! one block.
//!
//! Float samples run over -1.0..1.0 with 16-bit full scale at 32768, the
//! scale cpal and WAV readers use, so a 16-bit sample survives the round
//! trip unchanged.

/// Converts a stream of mono samples from one rate to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Position of the next output sample, in input samples, relative to
    /// `last` (at -1) and the next block's first sample (at 0).
    pos: f64,
    /// The last input sample of the previous block.
    last: f32,
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz (both non-zero).
    pub fn new(from: u32, to: u32) -> Self {
        assert!(from > 0 && to > 0, "sample rates must be non-zero");
        Self {
            step: f64::from(from) / f64::from(to),
            pos: 0.0,
            last: 0.0,
        }
    }

    /// Whether input and output rates are the same.
    pub fn is_identity(&self) -> bool {
        self.step == 1.0
    }

    /// Resamples one block of input, appending the output to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) {
        if input.is_empty() {
            return;
        }
        if self.is_identity() {
            out.extend_from_slice(input);
            self.last = input[input.len() - 1];
            return;
        }
        let n = input.len() as f64;
        // Positions range over [-1, n - 1): interpolate between the sample
        // before (the previous block's last at -1) and the one after.
        while self.pos < n - 1.0 {
            let i = self.pos.floor();
            let frac = (self.pos - i) as f32;
            let i = i as isize;
            let a = if i < 0 { self.last } else { input[i as usize] };
            let b = input[(i + 1) as usize];
            out.push(a + (b - a) * frac);
            self.pos += self.step;
        }
        self.pos -= n;
        self.last = input[input.len() - 1];
    }
}

/// 16-bit full scale.
const SCALE: f32 = 32768.0;

/// Converts a float sample (-1.0..1.0) to 16 bits, rounding and clipping.
#[inline]
pub fn f32_to_i16(s: f32) -> i16 {
    (s * SCALE).round().clamp(-SCALE, SCALE - 1.0) as i16
}

/// Converts a 16-bit sample to a float in -1.0..1.0.
#[inline]
pub fn i16_to_f32(s: i16) -> f32 {
    f32::from(s) / SCALE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * freq * std::f32::consts::TAU / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn output_length_follows_the_rate_ratio() {
        for (from, to) in [
            (44_100, 48_000),
            (48_000, 44_100),
            (16_000, 48_000),
            (96_000, 48_000),
        ] {
            let mut r = Resampler::new(from, to);
            let mut out = Vec::new();
            // One second in odd-sized blocks, as devices deliver.
            let input = sine(from, 440.0, from as usize);
            for block in input.chunks(441) {
                r.process(block, &mut out);
            }
            let diff = (out.len() as i64 - i64::from(to)).abs();
            assert!(diff <= 2, "{from}->{to}: {} samples", out.len());
        }
    }

    #[test]
    fn the_same_rate_passes_samples_through() {
        let mut r = Resampler::new(48_000, 48_000);
        assert!(r.is_identity());
        let mut out = Vec::new();
        r.process(&[0.25, -0.5], &mut out);
        r.process(&[1.0], &mut out);
        assert_eq!(out, [0.25, -0.5, 1.0]);
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_level() {
        let mut r = Resampler::new(44_100, 48_000);
        let mut out = Vec::new();
        for block in sine(44_100, 1000.0, 44_100).chunks(512) {
            r.process(block, &mut out);
        }
        // Count zero crossings upwards: 1000 Hz for one second.
        let ups = out.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!((998..=1001).contains(&ups), "{ups} cycles");
        let peak = out.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!((0.48..=0.5).contains(&peak), "peak {peak}");
    }

    #[test]
    fn sample_conversions_clip_and_round_trip() {
        assert_eq!(f32_to_i16(2.0), 32767);
        assert_eq!(f32_to_i16(-2.0), -32768);
        for s in [i16::MIN, -1234, -1, 0, 1, 1234, i16::MAX] {
            assert_eq!(f32_to_i16(i16_to_f32(s)), s);
        }
        assert_eq!(f32_to_i16(0.5), 16384);
    }
}
