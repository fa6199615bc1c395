//! What a run counts while it goes ([`Counters`], a latency [`Histogram`],
//! server memory samples) and what it reports at the end ([`Report`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters shared by every participant of a run.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub rooms_up: AtomicU64,
    pub rooms_failed: AtomicU64,
    pub sent_to_present: AtomicU64,
    pub sent_to_away: AtomicU64,
    pub delivered: AtomicU64,
    pub delivered_to_away: AtomicU64,
    pub duplicated: AtomicU64,
    pub misrouted: AtomicU64,
    pub out_of_order: AtomicU64,
    pub leave_rejoin: AtomicU64,
    pub reload_resume: AtomicU64,
    pub resume_missed: AtomicU64,
    pub drain_timeouts: AtomicU64,
    pub owed_at_leave: AtomicU64,
    pub close_timeouts: AtomicU64,
    pub unexpected_closes: AtomicU64,
    pub server_reconnects: AtomicU64,
    pub connect_failures: AtomicU64,
    /// `error` messages from the server, by code.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// The first reason a room could not be opened.
    pub first_failure: Mutex<Option<String>>,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn error(&self, code: &str) {
        *lock(&self.errors).entry(code.to_owned()).or_default() += 1;
    }

    pub fn failure(&self, what: String) {
        lock(&self.first_failure).get_or_insert(what);
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Latencies in microseconds: exact below 1,024 µs, then 64 buckets per
/// doubling (within 1.6 %).
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

const EXACT: u64 = 1024;
const SUB_BITS: u32 = 6;

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            buckets: vec![0; Self::index(u64::MAX) + 1],
            count: 0,
            max: 0,
        }
    }

    fn index(us: u64) -> usize {
        if us < EXACT {
            return us as usize;
        }
        let exp = 63 - us.leading_zeros(); // 10 and up
        let top = us >> (exp - SUB_BITS); // 64..=127
        (EXACT + u64::from(exp - 10) * (1 << SUB_BITS) + (top - (1 << SUB_BITS))) as usize
    }

    /// The largest value that falls in bucket `i`.
    fn upper(i: usize) -> u64 {
        let i = i as u64;
        if i < EXACT {
            return i;
        }
        let exp = (i - EXACT) / (1 << SUB_BITS) + 10;
        let top = (i - EXACT) % (1 << SUB_BITS) + (1 << SUB_BITS);
        let shift = exp as u32 - SUB_BITS;
        let end = u128::from(top + 1) << shift;
        u64::try_from(end - 1).unwrap_or(u64::MAX)
    }

    /// Counts one latency.
    pub fn record(&mut self, us: u64) {
        self.buckets[Self::index(us)] += 1;
        self.count += 1;
        self.max = self.max.max(us);
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The latency `q` (0 to 1) of the samples are at or below, rounded up
    /// to its bucket's top; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }

    /// The summary reported.
    pub(crate) fn summary(&self) -> Latency {
        Latency {
            count: self.count,
            p50_us: self.quantile(0.50),
            p90_us: self.quantile(0.90),
            p99_us: self.quantile(0.99),
            p999_us: self.quantile(0.999),
            max_us: self.max,
        }
    }
}

/// Relay latency: from the sender's write to the receiver's read, both in
/// this process, over every relayed message received.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Messages measured.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Largest, µs.
    pub max_us: u64,
}

/// One server process's resident memory over the run, in KiB.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rss {
    /// The process.
    pub pid: u32,
    /// Before the first room was opened.
    pub before_kib: Option<u64>,
    /// When every room was open.
    pub after_ramp_kib: Option<u64>,
    /// A minute into the load (a fifth of it when shorter): the baseline
    /// of the drift, once queues, buffers and the allocator have warmed
    /// up.
    pub warm_kib: Option<u64>,
    /// The last sample, taken at the end of the run (before the rooms
    /// were left).
    pub last_kib: Option<u64>,
    /// The largest sample.
    pub max_kib: Option<u64>,
    /// Samples taken (one a second).
    pub samples: u64,
    /// `last` against `warm` (`after_ramp` until then), in percent: how
    /// much memory grew (or shrank) while the load stayed the same.
    pub drift_percent: Option<f64>,
}

impl Rss {
    /// Resident memory of `pid` now, in KiB, from `/proc/PID/status`.
    pub fn read(pid: u32) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub(crate) fn sample(&mut self) -> Option<u64> {
        let now = Self::read(self.pid)?;
        self.samples += 1;
        self.last_kib = Some(now);
        self.max_kib = Some(self.max_kib.map_or(now, |m| m.max(now)));
        self.drift_percent = self.warm_kib.or(self.after_ramp_kib).map(|base| {
            let pct = (now as f64 - base as f64) * 100.0 / (base as f64).max(1.0);
            (pct * 10.0).round() / 10.0
        });
        Some(now)
    }
}

/// Everything a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server URLs.
    pub urls: Vec<String>,
    /// Rooms asked for.
    pub rooms: u64,
    /// Rooms whose two participants both joined.
    pub rooms_up: u64,
    /// Rooms that could not be opened (creation or a first join failed).
    pub rooms_failed: u64,
    /// Seconds from the first room to the last one open.
    pub ramp_seconds: f64,
    /// Seconds of load after the ramp.
    pub run_seconds: f64,
    /// Messages sent in all (offers, answers, candidates).
    pub sent: u64,
    /// Of those, sent while the other participant was present: each must
    /// arrive exactly once.
    pub sent_to_present: u64,
    /// Sent while the other participant was known to be away (leaving,
    /// reloading, rejoining): the server may drop them.
    pub sent_to_away: u64,
    /// Messages sent to a present participant that arrived (once counted).
    pub delivered: u64,
    /// Messages sent to an away participant that arrived all the same.
    pub delivered_to_away: u64,
    /// Sent to a present participant, never arrived (after the drain).
    pub lost: u64,
    /// Arrived more than once (every copy after the first).
    pub duplicated: u64,
    /// Arrived at the wrong participant, from the wrong `from`, or without
    /// a stamp of this run.
    pub misrouted: u64,
    /// Arrived after a later message from the same sender.
    pub out_of_order: u64,
    /// Relay latency of every message received.
    pub latency: Latency,
    /// Participants that left with `bye` and joined afresh.
    pub leave_rejoin: u64,
    /// Participants that sent `leaving`, closed and joined again with the
    /// resume secret (a page reload).
    pub reload_resume: u64,
    /// Resumes that did not get the seat back (`resumed: false`).
    pub resume_missed: u64,
    /// Leaves that went ahead before everything sent to the leaver had
    /// arrived (bounded wait of 5 s).
    pub drain_timeouts: u64,
    /// Messages still on their way to a participant when it left after a
    /// drain timeout: some of the `lost` may be these, dropped because
    /// their receiver had gone (an overloaded run), not by a server fault.
    pub owed_at_leave: u64,
    /// Leaves whose connection the server had not closed within 5 s.
    pub close_timeouts: u64,
    /// Connections the server closed or lost that the participant did not
    /// end; each rejoined with its resume secret.
    pub unexpected_closes: u64,
    /// `reconnect` messages (the server going away with rooms that
    /// outlive it).
    pub server_reconnects: u64,
    /// Connection attempts that failed (each retried).
    pub connect_failures: u64,
    /// `error` messages from the server, by code (`no_peer` is expected
    /// while a participant is away after `bye`).
    pub errors: BTreeMap<String, u64>,
    /// The first reason a room could not be opened, if any.
    pub first_failure: Option<String>,
    /// Server memory, per `--server-pid`.
    pub rss: Vec<Rss>,
}

impl Report {
    /// True when nothing sent to a present participant was lost,
    /// duplicated, misrouted or reordered.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.misrouted == 0 && self.out_of_order == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.latency;
        writeln!(f, "servers        {}", self.urls.join(" "))?;
        writeln!(
            f,
            "rooms          {} up of {} ({} failed), ramp {:.1} s, then {:.1} s of load",
            self.rooms_up, self.rooms, self.rooms_failed, self.ramp_seconds, self.run_seconds
        )?;
        writeln!(
            f,
            "sent           {} ({} to a present peer, {} while the peer was away)",
            self.sent, self.sent_to_present, self.sent_to_away
        )?;
        writeln!(
            f,
            "delivered      {} (+{} of those sent while away)",
            self.delivered, self.delivered_to_away
        )?;
        writeln!(
            f,
            "lost {}  duplicated {}  misrouted {}  out of order {}",
            self.lost, self.duplicated, self.misrouted, self.out_of_order
        )?;
        if self.owed_at_leave > 0 {
            writeln!(
                f,
                "               ({} messages were still owed to participants that left after a drain timeout)",
                self.owed_at_leave
            )?;
        }
        writeln!(
            f,
            "relay latency  p50 {} µs  p90 {} µs  p99 {} µs  p99.9 {} µs  max {} µs  ({} messages)",
            l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.count
        )?;
        writeln!(
            f,
            "churn          {} leave+rejoin, {} reload+resume ({} resumes missed the seat), {} drain timeouts, {} close timeouts",
            self.leave_rejoin,
            self.reload_resume,
            self.resume_missed,
            self.drain_timeouts,
            self.close_timeouts
        )?;
        writeln!(
            f,
            "connections    {} closed unexpectedly, {} reconnect requests, {} failed attempts",
            self.unexpected_closes, self.server_reconnects, self.connect_failures
        )?;
        if !self.errors.is_empty() {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(f, "server errors  {}", errors.join(", "))?;
        }
        if let Some(first) = &self.first_failure {
            writeln!(f, "first failure  {first}")?;
        }
        for r in &self.rss {
            let kib = |v: Option<u64>| {
                v.map_or("?".to_owned(), |v| format!("{:.1} MiB", v as f64 / 1024.0))
            };
            writeln!(
                f,
                "server {} RSS  before {}, after ramp {}, warm {}, last {}, max {}; drift {} ({} samples)",
                r.pid,
                kib(r.before_kib),
                kib(r.after_ramp_kib),
                kib(r.warm_kib),
                kib(r.last_kib),
                kib(r.max_kib),
                r.drift_percent
                    .map_or("?".to_owned(), |d| format!("{d:+.1} %")),
                r.samples
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for us in (0..5_000).chain([1 << 20, (1 << 20) + 1, u64::MAX / 2, u64::MAX]) {
            let i = Histogram::index(us);
            assert!(i >= last, "{us}");
            last = i;
            assert!(Histogram::upper(i) >= us, "{us}");
            if us >= EXACT {
                // Within 1/64 of the value.
                assert!(Histogram::upper(i) - us <= us / 64 + 1, "{us}");
            }
        }
    }

    #[test]
    fn quantiles_of_known_samples() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for us in 1..=1000 {
            h.record(us);
        }
        assert_eq!(h.quantile(0.5), 500);
        assert_eq!(h.quantile(0.99), 990);
        assert_eq!(h.quantile(1.0), 1000);
        h.record(100_000);
        assert_eq!(h.summary().max_us, 100_000);
        let p = h.quantile(1.0);
        assert!((98_000..=100_000).contains(&p), "{p}");
    }

    #[test]
    fn own_memory_is_readable() {
        let mut rss = Rss {
            pid: std::process::id(),
            ..Rss::default()
        };
        assert!(rss.sample().is_some_and(|kib| kib > 0));
        rss.after_ramp_kib = rss.last_kib;
        rss.sample();
        assert!(rss.drift_percent.is_some());
    }
}
