//! A playout buffer between the network and the speaker.
//!
//! Frames arrive in bursts; the speaker takes samples at a steady clock. The
//! buffer fills to a target depth (about 60 ms) before playing, plays
//! silence and refills when it runs dry, and drops the oldest audio when it
//! holds far more than the target, so delay does not creep up.

use std::collections::VecDeque;

/// Counters of what the buffer did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Times the buffer ran dry while playing.
    pub underruns: u64,
    /// Samples of silence played in place of missing audio.
    pub silence_samples: u64,
    /// Samples dropped because the buffer was too full.
    pub dropped_samples: u64,
}

/// A mono sample queue with a target depth.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    queue: VecDeque<f32>,
    target: usize,
    max: usize,
    playing: bool,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer that starts playing at `target` samples and trims back to
    /// `target` when it holds more than `max`.
    pub fn new(target: usize, max: usize) -> Self {
        assert!(max > target, "the maximum depth must exceed the target");
        Self {
            queue: VecDeque::with_capacity(max * 2),
            target,
            max,
            playing: false,
            stats: JitterStats::default(),
        }
    }

    /// Adds samples from the network.
    pub fn push(&mut self, samples: impl IntoIterator<Item = f32>) {
        self.queue.extend(samples);
        if self.queue.len() > self.max {
            let excess = self.queue.len() - self.target;
            self.queue.drain(..excess);
            self.stats.dropped_samples += excess as u64;
        }
    }

    /// Takes the next sample for the speaker: audio when playing, silence
    /// while filling up.
    pub fn pop(&mut self) -> f32 {
        if !self.playing {
            if self.queue.len() < self.target {
                self.stats.silence_samples += 1;
                return 0.0;
            }
            self.playing = true;
        }
        match self.queue.pop_front() {
            Some(s) => s,
            None => {
                self.playing = false;
                self.stats.underruns += 1;
                self.stats.silence_samples += 1;
                0.0
            }
        }
    }

    /// Samples waiting to be played.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no samples are waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// What the buffer has done so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_nothing_until_the_target_is_reached_then_everything_in_order() {
        let mut jb = JitterBuffer::new(4, 10);
        jb.push([1.0, 2.0, 3.0]);
        assert_eq!(jb.pop(), 0.0, "still filling");
        jb.push([4.0]);
        let played: Vec<f32> = (0..4).map(|_| jb.pop()).collect();
        assert_eq!(played, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn underrun_plays_silence_and_refills_to_the_target() {
        let mut jb = JitterBuffer::new(2, 10);
        jb.push([1.0, 2.0]);
        assert_eq!((jb.pop(), jb.pop()), (1.0, 2.0));
        assert_eq!(jb.pop(), 0.0);
        assert_eq!(jb.stats().underruns, 1);
        jb.push([3.0]);
        assert_eq!(jb.pop(), 0.0, "refilling after the underrun");
        jb.push([4.0]);
        assert_eq!((jb.pop(), jb.pop()), (3.0, 4.0));
    }

    #[test]
    fn overrun_drops_the_oldest_audio_back_to_the_target() {
        let mut jb = JitterBuffer::new(3, 6);
        jb.push((0..7).map(|i| i as f32));
        assert_eq!(jb.len(), 3);
        assert_eq!(jb.stats().dropped_samples, 4);
        assert_eq!(jb.pop(), 4.0, "the newest audio is kept");
    }
}
