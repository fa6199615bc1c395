//! A playout buffer between the network and the speaker, over a lock-free
//! single-producer single-consumer ring, so the audio callback never waits
//! for a lock.
//!
//! Frames arrive in bursts; the speaker takes samples at a steady clock. The
//! buffer fills to a target depth (about 60 ms) before playing, plays
//! silence and refills when it runs dry, and drops the oldest audio when it
//! holds far more than the target, so delay does not creep up. The network
//! side ([`JitterInput`]) only pushes; the callback side ([`JitterBuffer`])
//! makes every decision, and counts what it did in atomics either side can
//! read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rtrb::{Consumer, Producer, RingBuffer};

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

/// The counters behind [`JitterStats`], shared by both sides.
#[derive(Debug, Default)]
struct Counters {
    underruns: AtomicU64,
    silence_samples: AtomicU64,
    dropped_samples: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> JitterStats {
        JitterStats {
            underruns: self.underruns.load(Ordering::Relaxed),
            silence_samples: self.silence_samples.load(Ordering::Relaxed),
            dropped_samples: self.dropped_samples.load(Ordering::Relaxed),
        }
    }
}

/// A buffer that starts playing at `target` samples and trims back to
/// `target` when it holds more than `max`: the network side and the
/// speaker side.
pub fn jitter_buffer(target: usize, max: usize) -> (JitterInput, JitterBuffer) {
    assert!(max > target, "the maximum depth must exceed the target");
    let (producer, consumer) = RingBuffer::new(max * 2);
    let counters = Arc::new(Counters::default());
    (
        JitterInput {
            producer,
            counters: counters.clone(),
        },
        JitterBuffer {
            consumer,
            target,
            max,
            playing: false,
            counters,
        },
    )
}

/// The network side: adds samples.
#[derive(Debug)]
pub struct JitterInput {
    producer: Producer<f32>,
    counters: Arc<Counters>,
}

impl JitterInput {
    /// Adds samples from the network. Samples that do not fit (the speaker
    /// has stopped taking them) are dropped and counted.
    pub fn push(&mut self, samples: &[f32]) {
        let (_, rest) = self.producer.push_partial_slice(samples);
        if !rest.is_empty() {
            Counters::add(&self.counters.dropped_samples, rest.len() as u64);
        }
    }

    /// What the buffer has done so far.
    pub fn stats(&self) -> JitterStats {
        self.counters.snapshot()
    }
}

/// The speaker side: takes one sample at a time, never blocking.
#[derive(Debug)]
pub struct JitterBuffer {
    consumer: Consumer<f32>,
    target: usize,
    max: usize,
    playing: bool,
    counters: Arc<Counters>,
}

impl JitterBuffer {
    /// Takes the next sample for the speaker: audio when playing, silence
    /// while filling up.
    pub fn pop(&mut self) -> f32 {
        let mut waiting = self.consumer.slots();
        if waiting > self.max {
            let excess = waiting - self.target;
            if let Ok(chunk) = self.consumer.read_chunk(excess) {
                chunk.commit_all();
                Counters::add(&self.counters.dropped_samples, excess as u64);
                waiting = self.target;
            }
        }
        if !self.playing {
            if waiting < self.target {
                Counters::add(&self.counters.silence_samples, 1);
                return 0.0;
            }
            self.playing = true;
        }
        match self.consumer.pop() {
            Ok(s) => s,
            Err(_) => {
                self.playing = false;
                Counters::add(&self.counters.underruns, 1);
                Counters::add(&self.counters.silence_samples, 1);
                0.0
            }
        }
    }

    /// Samples waiting to be played.
    pub fn len(&self) -> usize {
        self.consumer.slots()
    }

    /// Whether no samples are waiting.
    pub fn is_empty(&self) -> bool {
        self.consumer.is_empty()
    }

    /// What the buffer has done so far.
    pub fn stats(&self) -> JitterStats {
        self.counters.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plays_nothing_until_the_target_is_reached_then_everything_in_order() {
        let (mut input, mut jb) = jitter_buffer(4, 10);
        input.push(&[1.0, 2.0, 3.0]);
        assert_eq!(jb.pop(), 0.0, "still filling");
        assert_eq!(jb.stats().silence_samples, 1);
        input.push(&[4.0]);
        let played: Vec<f32> = (0..4).map(|_| jb.pop()).collect();
        assert_eq!(played, [1.0, 2.0, 3.0, 4.0]);
        assert!(jb.is_empty());
    }

    #[test]
    fn underrun_plays_silence_and_refills_to_the_target() {
        let (mut input, mut jb) = jitter_buffer(2, 10);
        input.push(&[1.0, 2.0]);
        assert_eq!((jb.pop(), jb.pop()), (1.0, 2.0));
        assert_eq!(jb.pop(), 0.0);
        assert_eq!(jb.stats().underruns, 1);
        assert_eq!(input.stats().underruns, 1, "both sides see the counters");
        input.push(&[3.0]);
        assert_eq!(jb.pop(), 0.0, "refilling after the underrun");
        input.push(&[4.0]);
        assert_eq!((jb.pop(), jb.pop()), (3.0, 4.0));
    }

    #[test]
    fn overrun_drops_the_oldest_audio_back_to_the_target() {
        let (mut input, mut jb) = jitter_buffer(3, 6);
        let samples: Vec<f32> = (0..7).map(|i| i as f32).collect();
        input.push(&samples);
        assert_eq!(jb.len(), 7);
        assert_eq!(jb.pop(), 4.0, "the newest audio is kept");
        assert_eq!(jb.stats().dropped_samples, 4);
        assert_eq!(jb.len(), 2);
    }

    #[test]
    fn a_speaker_that_stopped_taking_audio_costs_only_the_newest() {
        let (mut input, mut jb) = jitter_buffer(3, 6);
        let samples: Vec<f32> = (0..15).map(|i| i as f32).collect();
        input.push(&samples);
        assert_eq!(input.stats().dropped_samples, 3, "the ring holds 12");
        assert_eq!(jb.pop(), 9.0, "then trimmed to the target on playing");
    }

    #[test]
    fn a_producer_and_a_consumer_on_two_threads_keep_order() {
        // A target of one sample: silence means the ring is empty.
        let (mut input, mut jb) = jitter_buffer(1, 4096);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let producer = std::thread::spawn(move || {
            let samples: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
            for block in samples.chunks(10) {
                input.push(block);
                std::thread::yield_now();
            }
            input
        });
        let mut played = Vec::new();
        while played.len() < 1000 {
            assert!(
                std::time::Instant::now() < deadline,
                "{} played",
                played.len()
            );
            let s = jb.pop();
            if s != 0.0 {
                played.push(s);
            } else if producer.is_finished() && jb.is_empty() {
                break;
            }
        }
        let input = producer.join().unwrap();
        assert_eq!(input.stats().dropped_samples, 0);
        let expected: Vec<f32> = (1..=1000).map(|i| i as f32).collect();
        assert_eq!(played, expected);
    }
}
