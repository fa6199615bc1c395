//! Call quality: the grade shown to the user (good, poor or bad) from
//! round-trip time, packet loss and frame rate, judged over a sliding
//! window with hysteresis, and the share of the call spent in each grade.
//!
//! The rules (ARCHITECTURE.md, "Call quality"; the browser's `quality.js`
//! applies the same ones):
//!
//! - Over the last [`WINDOW`] of samples: the mean round-trip time, the
//!   fraction of packets lost (incoming, and what the other side reports
//!   for ours, whichever is worse) and the decoded video frame rate.
//! - **bad** if rtt > [`BAD_RTT_MS`] or loss > [`BAD_LOSS`] or, while video
//!   is expected, fps < [`BAD_FPS`]; **poor** if rtt > [`POOR_RTT_MS`] or
//!   loss > [`POOR_LOSS`] or, while video is expected, fps < [`POOR_FPS`];
//!   **good** otherwise. Video is expected while it arrives at
//!   [`VIDEO_EXPECTED_BPS`] or more (a camera turned off sends a trickle of
//!   black frames, which is not a bad call).
//! - Hysteresis: the shown grade becomes worse once the worse raw grade has
//!   held for [`WORSEN_AFTER`], and better once the better one has held for
//!   [`IMPROVE_AFTER`]. The first grade is shown as soon as the window spans
//!   [`MIN_SPAN`] and a packet arrived or was lost in it (a connection
//!   whose media has not started is not graded, rather than called good);
//!   until the connection has been graded for a whole
//!   [`WINDOW`], a better grade is shown at once (the first seconds of a
//!   call, while the video ramps up, are not held against it).
//!
//! [`Grader`] is a state machine without IO: the caller hands it cumulative
//! counters with the time they were read ([`Grader::sample`]), about once a
//! second, and reads the grade back.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The window the figures are judged over.
pub const WINDOW: Duration = Duration::from_secs(5);
/// The shortest window a first grade is given on.
pub const MIN_SPAN: Duration = Duration::from_millis(1500);
/// How long a worse raw grade must hold before it is shown.
pub const WORSEN_AFTER: Duration = Duration::from_secs(2);
/// How long a better raw grade must hold before it is shown.
pub const IMPROVE_AFTER: Duration = Duration::from_secs(4);
/// Round-trip time above which the call is bad, ms.
pub const BAD_RTT_MS: f64 = 400.0;
/// Round-trip time above which the call is poor, ms.
pub const POOR_RTT_MS: f64 = 200.0;
/// Fraction of packets lost above which the call is bad.
pub const BAD_LOSS: f64 = 0.10;
/// Fraction of packets lost above which the call is poor.
pub const POOR_LOSS: f64 = 0.03;
/// Video frame rate below which the call is bad (while video is expected).
pub const BAD_FPS: f64 = 5.0;
/// Video frame rate below which the call is poor (while video is expected).
pub const POOR_FPS: f64 = 15.0;
/// Incoming video at this bitrate or more counts as video being expected.
pub const VIDEO_EXPECTED_BPS: f64 = 30_000.0;

/// How good the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// Nothing to notice.
    Good,
    /// Noticeable: delay, some loss or a jerky picture.
    Poor,
    /// Hard to talk: long delay, heavy loss or a frozen picture.
    Bad,
}

impl Grade {
    /// The grade's name as in the JSON: `good`, `poor` or `bad`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Poor => "poor",
            Self::Bad => "bad",
        }
    }
}

impl std::fmt::Display for Grade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The figures a grade is given on, worked out over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Measures {
    /// Mean round-trip time, ms, if any was measured.
    pub rtt_ms: Option<f64>,
    /// Fraction of packets lost, 0.0 to 1.0.
    pub loss: f64,
    /// Video frames decoded per second.
    pub fps: f64,
    /// Whether video arrives (see [`VIDEO_EXPECTED_BPS`]); the frame rate
    /// counts only then.
    pub video_expected: bool,
}

/// The grade of one set of figures, without hysteresis: the rules in the
/// module documentation.
pub fn grade(m: &Measures) -> Grade {
    let rtt = m.rtt_ms.unwrap_or(0.0);
    let fps = |limit: f64| m.video_expected && m.fps < limit;
    if rtt > BAD_RTT_MS || m.loss > BAD_LOSS || fps(BAD_FPS) {
        Grade::Bad
    } else if rtt > POOR_RTT_MS || m.loss > POOR_LOSS || fps(POOR_FPS) {
        Grade::Poor
    } else {
        Grade::Good
    }
}

/// Counters read from the connection at one moment. Packet and frame
/// counts are totals since the connection started; a total that goes down
/// (a new connection) starts the window again.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Round-trip time now, ms (candidate pair or RTCP), if known.
    pub rtt_ms: Option<f64>,
    /// Incoming RTP packets received, audio and video.
    pub packets_received: u64,
    /// Incoming RTP packets lost, audio and video.
    pub packets_lost: u64,
    /// Fraction of our packets the other side reports lost (RTCP receiver
    /// reports), if it reports any.
    pub remote_loss: Option<f64>,
    /// Video frames decoded.
    pub frames_decoded: u64,
    /// Incoming video payload bytes.
    pub video_bytes: u64,
}

/// Share of the graded time spent in each grade, 0.0 to 1.0 each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TimeInGrades {
    /// Share of the time the call was good.
    pub good: f64,
    /// Share of the time the call was poor.
    pub poor: f64,
    /// Share of the time the call was bad.
    pub bad: f64,
}

impl TimeInGrades {
    /// The grade the call spent most time in (the better one on a tie),
    /// with its share; `None` when nothing was graded.
    pub fn mostly(&self) -> Option<(Grade, f64)> {
        let all = [
            (Grade::Good, self.good),
            (Grade::Poor, self.poor),
            (Grade::Bad, self.bad),
        ];
        if all.iter().all(|(_, s)| *s <= 0.0) {
            return None;
        }
        all.into_iter()
            .reduce(|best, x| if x.1 > best.1 { x } else { best })
    }
}

/// The quality part of the stats: the grade shown now and the call so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct QualityReport {
    /// The grade shown now; `None` before the first grade.
    pub grade: Option<Grade>,
    /// The figures of the current window.
    pub measures: Measures,
    /// Share of the graded time in each grade.
    pub time_in: TimeInGrades,
    /// The grade the call spent most of its graded time in.
    pub average: Option<Grade>,
    /// How long the call was graded, ms.
    pub graded_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Point {
    at: Instant,
    sample: Sample,
}

/// Turns samples into the grade shown, with hysteresis, and counts the time
/// spent in each grade. No IO: the caller says when each sample was taken.
#[derive(Debug, Clone, Default)]
pub struct Grader {
    window: VecDeque<Point>,
    shown: Option<Grade>,
    /// A raw grade different from the one shown, and since when it holds.
    pending: Option<(Grade, Instant)>,
    measures: Measures,
    time_in: [Duration; 3],
    last_at: Option<Instant>,
    /// The first sample of this connection.
    since: Option<Instant>,
}

impl Grader {
    /// A grader with no samples and no grade.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the counters read at `now` and returns the grade shown now.
    /// The time since the previous sample is counted to the grade shown
    /// before this one.
    pub fn sample(&mut self, now: Instant, sample: Sample) -> Option<Grade> {
        if let (Some(last), Some(shown)) = (self.last_at, self.shown) {
            self.time_in[shown as usize] += now.saturating_duration_since(last);
        }
        self.last_at = Some(now);
        let restarted = self.window.back().is_some_and(|p| {
            sample.packets_received < p.sample.packets_received
                || sample.frames_decoded < p.sample.frames_decoded
                || sample.video_bytes < p.sample.video_bytes
        });
        if restarted {
            self.window.clear();
            self.since = None;
        }
        let connected_at = *self.since.get_or_insert(now);
        self.window.push_back(Point { at: now, sample });
        while self
            .window
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.at) > WINDOW)
        {
            self.window.pop_front();
        }
        let (first, last) = (self.window.front().copied(), self.window.back().copied());
        let (Some(first), Some(last)) = (first, last) else {
            return self.shown;
        };
        let span = last.at.saturating_duration_since(first.at);
        let packets = |p: Point| p.sample.packets_received + p.sample.packets_lost;
        if span < MIN_SPAN || packets(last) == packets(first) {
            return self.shown;
        }
        self.measures = measures(&self.window, first, last, span);
        let raw = grade(&self.measures);
        match self.shown {
            None => {
                self.shown = Some(raw);
                self.pending = None;
            }
            Some(shown) if shown == raw => self.pending = None,
            Some(shown) => {
                let since = match self.pending {
                    Some((g, t)) if g == raw => t,
                    _ => {
                        self.pending = Some((raw, now));
                        now
                    }
                };
                let settled = now.saturating_duration_since(connected_at) >= WINDOW;
                let hold = if raw > shown {
                    WORSEN_AFTER
                } else if settled {
                    IMPROVE_AFTER
                } else {
                    Duration::ZERO
                };
                if now.saturating_duration_since(since) >= hold {
                    self.shown = Some(raw);
                    self.pending = None;
                }
            }
        }
        self.shown
    }

    /// There is no connection to grade (the other side left, or none yet):
    /// the time until the next sample counts to no grade.
    pub fn pause(&mut self) {
        self.last_at = None;
    }

    /// The grade shown now; `None` before the first.
    pub fn grade(&self) -> Option<Grade> {
        self.shown
    }

    /// The figures of the current window.
    pub fn measures(&self) -> Measures {
        self.measures
    }

    /// Share of the graded time in each grade.
    pub fn time_in(&self) -> TimeInGrades {
        let total: Duration = self.time_in.iter().sum();
        if total.is_zero() {
            return TimeInGrades::default();
        }
        let share = |i: usize| self.time_in[i].as_secs_f64() / total.as_secs_f64();
        TimeInGrades {
            good: share(0),
            poor: share(1),
            bad: share(2),
        }
    }

    /// The quality part of the stats.
    pub fn report(&self) -> QualityReport {
        let time_in = self.time_in();
        QualityReport {
            grade: self.shown,
            measures: self.measures,
            time_in,
            average: time_in.mostly().map(|(g, _)| g),
            graded_ms: self.time_in.iter().sum::<Duration>().as_millis() as u64,
        }
    }
}

fn measures(window: &VecDeque<Point>, first: Point, last: Point, span: Duration) -> Measures {
    let secs = span.as_secs_f64();
    let (a, b) = (first.sample, last.sample);
    let received = b.packets_received.saturating_sub(a.packets_received);
    let lost = b.packets_lost.saturating_sub(a.packets_lost);
    let incoming_loss = if received + lost > 0 {
        lost as f64 / (received + lost) as f64
    } else {
        0.0
    };
    let remote_losses: Vec<f64> = window.iter().filter_map(|p| p.sample.remote_loss).collect();
    let remote_loss = if remote_losses.is_empty() {
        0.0
    } else {
        remote_losses.iter().sum::<f64>() / remote_losses.len() as f64
    };
    let rtts: Vec<f64> = window.iter().filter_map(|p| p.sample.rtt_ms).collect();
    let video_bps = b.video_bytes.saturating_sub(a.video_bytes) as f64 * 8.0 / secs;
    Measures {
        rtt_ms: (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64),
        loss: incoming_loss.max(remote_loss),
        fps: b.frames_decoded.saturating_sub(a.frames_decoded) as f64 / secs,
        video_expected: video_bps >= VIDEO_EXPECTED_BPS,
    }
}

/// Whether media goes straight between the two sides or through a TURN
/// relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaPath {
    /// Straight between the two sides (host, server- or peer-reflexive).
    Direct,
    /// Through a TURN relay on either side.
    Relayed,
}

impl MediaPath {
    /// `direct` or `relayed`, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Relayed => "relayed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    /// A steady call: `fps` frames a second, `lost` of every 100 packets
    /// lost, `rtt` ms, video at 500 kbit/s.
    fn steady(n: u64, rtt: f64, lost: u64, fps: u64) -> Sample {
        Sample {
            rtt_ms: Some(rtt),
            packets_received: n * (100 - lost),
            packets_lost: n * lost,
            remote_loss: None,
            frames_decoded: n * fps,
            video_bytes: n * 62_500,
        }
    }

    fn m(rtt: f64, loss: f64, fps: f64) -> Measures {
        Measures {
            rtt_ms: Some(rtt),
            loss,
            fps,
            video_expected: true,
        }
    }

    #[test]
    fn the_thresholds_grade_each_figure() {
        assert_eq!(grade(&m(50.0, 0.0, 30.0)), Grade::Good);
        assert_eq!(grade(&m(200.0, 0.03, 15.0)), Grade::Good, "limits are good");
        assert_eq!(grade(&m(201.0, 0.0, 30.0)), Grade::Poor);
        assert_eq!(grade(&m(50.0, 0.031, 30.0)), Grade::Poor);
        assert_eq!(grade(&m(50.0, 0.0, 14.0)), Grade::Poor);
        assert_eq!(grade(&m(401.0, 0.0, 30.0)), Grade::Bad);
        assert_eq!(grade(&m(50.0, 0.11, 30.0)), Grade::Bad);
        assert_eq!(grade(&m(50.0, 0.0, 4.0)), Grade::Bad);
        let no_video = Measures {
            video_expected: false,
            fps: 0.0,
            ..m(50.0, 0.0, 0.0)
        };
        assert_eq!(grade(&no_video), Grade::Good, "audio only is not bad");
        let no_rtt = Measures {
            rtt_ms: None,
            ..m(0.0, 0.0, 30.0)
        };
        assert_eq!(grade(&no_rtt), Grade::Good);
    }

    #[test]
    fn a_steady_good_call_is_good_once_the_window_spans_enough() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        assert_eq!(g.sample(t0, steady(0, 20.0, 0, 30)), None);
        assert_eq!(g.sample(t0 + S, steady(1, 20.0, 0, 30)), None);
        assert_eq!(
            g.sample(t0 + 2 * S, steady(2, 20.0, 0, 30)),
            Some(Grade::Good)
        );
        let ms = g.measures();
        assert_eq!(ms.rtt_ms, Some(20.0));
        assert!((ms.fps - 30.0).abs() < 1e-9 && ms.loss == 0.0 && ms.video_expected);
    }

    #[test]
    fn a_connection_whose_media_has_not_started_is_not_graded() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        // Connected, but nothing arrives for three seconds: no grade, and no
        // time counted as good.
        for s in 0..3 {
            assert_eq!(g.sample(t0 + s * S, Sample::default()), None);
        }
        assert_eq!(g.report().graded_ms, 0);
        // Then a quarter of the packets are lost: the first grade is bad.
        let lossy = |n: u64| Sample {
            packets_received: n * 75,
            packets_lost: n * 25,
            ..steady(n, 20.0, 25, 0)
        };
        g.sample(t0 + 3 * S, lossy(1));
        assert_eq!(g.sample(t0 + 5 * S, lossy(3)), Some(Grade::Bad));
    }

    #[test]
    fn loss_is_judged_over_the_window_not_the_whole_call() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        // Ten clean seconds, then 20 % loss.
        for i in 0..=10 {
            g.sample(t0 + i * S, steady(u64::from(i), 20.0, 0, 30));
        }
        assert_eq!(g.grade(), Some(Grade::Good));
        let mut base = steady(10, 20.0, 0, 30);
        let mut seen_bad_at = None;
        for i in 11..=20u32 {
            base.packets_received += 80;
            base.packets_lost += 20;
            base.frames_decoded += 30;
            base.video_bytes += 62_500;
            if g.sample(t0 + i * S, base) == Some(Grade::Bad) && seen_bad_at.is_none() {
                seen_bad_at = Some(i);
            }
        }
        // The window needs a little to pass 10 %, then WORSEN_AFTER holds.
        let at = seen_bad_at.expect("heavy loss turns bad");
        assert!((12..=15).contains(&at), "bad after {at} s");
    }

    #[test]
    fn hysteresis_keeps_a_blip_from_flickering_the_grade() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        let mut n = 0;
        let mut at = |g: &mut Grader, secs: u32, rtt: f64| {
            n += 1;
            g.sample(t0 + secs * S, steady(n, rtt, 0, 30))
        };
        for i in 0..5 {
            at(&mut g, i, 20.0);
        }
        // One slow second: the window's mean rtt goes above 200 ms, but not
        // for long enough to show.
        assert_eq!(at(&mut g, 5, 1200.0), Some(Grade::Good));
        assert_eq!(at(&mut g, 6, 20.0), Some(Grade::Good));
        // Slow for good: poor after WORSEN_AFTER.
        let mut shown = Vec::new();
        for i in 12..20 {
            shown.push(at(&mut g, i, 300.0));
        }
        assert_eq!(shown.last(), Some(&Some(Grade::Poor)));
        // Fast again: good comes back only after IMPROVE_AFTER.
        let back: Vec<_> = (20..32).map(|i| at(&mut g, i, 20.0)).collect();
        let first_good = back.iter().position(|g| *g == Some(Grade::Good)).unwrap();
        assert!(first_good >= 4, "improved after {first_good} s: too soon");
    }

    #[test]
    fn a_slow_start_is_not_held_against_the_call() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        // Two seconds at 5 fps while the video ramps up, then 30.
        let mut s = steady(0, 20.0, 0, 0);
        let mut shown = Vec::new();
        for i in 0..6u32 {
            shown.push(g.sample(t0 + i * S, s));
            s = steady(u64::from(i + 1), 20.0, 0, 30);
            s.frames_decoded = if i < 2 {
                u64::from(i + 1) * 5
            } else {
                10 + u64::from(i - 1) * 30
            };
        }
        assert_eq!(shown[2], Some(Grade::Poor), "{shown:?}");
        assert_eq!(
            shown[4],
            Some(Grade::Good),
            "better at once while settling: {shown:?}"
        );
    }

    #[test]
    fn a_frozen_picture_is_bad_but_no_video_is_not() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        // Video arrives (bytes) but hardly any frame is decoded.
        for i in 0..4u32 {
            let mut s = steady(u64::from(i), 20.0, 0, 0);
            s.frames_decoded = u64::from(i);
            g.sample(t0 + i * S, s);
        }
        assert_eq!(g.grade(), Some(Grade::Bad));
        // Audio only: no video bytes, no frames.
        let mut g = Grader::new();
        for i in 0..4u32 {
            let mut s = steady(u64::from(i), 20.0, 0, 0);
            s.video_bytes = 0;
            g.sample(t0 + i * S, s);
        }
        assert_eq!(g.grade(), Some(Grade::Good));
    }

    #[test]
    fn the_other_sides_loss_report_counts_too() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        for i in 0..4u32 {
            let mut s = steady(u64::from(i), 20.0, 0, 30);
            s.remote_loss = Some(0.05);
            g.sample(t0 + i * S, s);
        }
        assert_eq!(g.grade(), Some(Grade::Poor));
        assert!((g.measures().loss - 0.05).abs() < 1e-9);
    }

    #[test]
    fn time_in_each_grade_adds_up() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        assert_eq!(g.report().average, None);
        for i in 0..=10u32 {
            g.sample(t0 + i * S, steady(u64::from(i), 20.0, 0, 30));
        }
        for i in 11..=20u32 {
            g.sample(t0 + i * S, steady(u64::from(i), 300.0, 0, 30));
        }
        let r = g.report();
        assert!((r.time_in.good + r.time_in.poor + r.time_in.bad - 1.0).abs() < 1e-9);
        assert!(r.time_in.good > r.time_in.poor && r.time_in.poor > 0.0);
        assert_eq!(r.average, Some(Grade::Good));
        assert_eq!(r.grade, Some(Grade::Poor));
        assert_eq!(r.graded_ms, 18_000, "graded from the first grade at 2 s");
        let json = serde_json::to_value(r).unwrap();
        assert_eq!(json["grade"], "poor");
        assert_eq!(json["average"], "good");
    }

    #[test]
    fn time_without_a_connection_counts_to_no_grade() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        for i in 0..=4u32 {
            g.sample(t0 + i * S, steady(u64::from(i), 20.0, 0, 30));
        }
        assert_eq!(g.report().graded_ms, 2_000);
        g.pause();
        g.sample(t0 + 60 * S, steady(5, 20.0, 0, 30));
        assert_eq!(
            g.report().graded_ms,
            2_000,
            "the minute alone is not graded"
        );
        g.sample(t0 + 61 * S, steady(6, 20.0, 0, 30));
        assert_eq!(g.report().graded_ms, 3_000);
    }

    #[test]
    fn a_new_connection_starts_the_window_again() {
        let t0 = Instant::now();
        let mut g = Grader::new();
        for i in 0..4u32 {
            g.sample(t0 + i * S, steady(u64::from(10 + i), 20.0, 0, 30));
        }
        assert_eq!(g.grade(), Some(Grade::Good));
        // Counters from a fresh peer connection start at 0: no negative
        // deltas, the grade holds until the new window spans enough.
        assert_eq!(
            g.sample(t0 + 4 * S, steady(0, 20.0, 0, 30)),
            Some(Grade::Good)
        );
        assert_eq!(g.window.len(), 1);
    }
}
