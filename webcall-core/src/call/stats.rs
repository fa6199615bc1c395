//! Call statistics: counters the media paths bump as they go, rates worked
//! out once a second, and the serialisable summary written by
//! `webcall join --stats-json`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::quality::{Grader, MediaPath, QualityReport, Sample};

/// The state of the media connection with the other participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectionState {
    /// Nobody to connect to yet, or negotiating.
    #[default]
    New,
    /// ICE and DTLS are under way.
    Connecting,
    /// Media flows.
    Connected,
    /// Connectivity was lost; it may come back (or be restarted).
    Disconnected,
    /// Connectivity failed; an ICE restart is needed.
    Failed,
    /// The peer connection was closed.
    Closed,
}

impl std::fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::New => "new",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Failed => "failed",
            Self::Closed => "closed",
        })
    }
}

/// What was sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SentCounters {
    /// Encoded video frames handed to the network.
    pub video_frames: u64,
    /// Encoded 20 ms audio frames handed to the network.
    pub audio_frames: u64,
    /// Video payload bytes.
    pub video_bytes: u64,
    /// Audio payload bytes.
    pub audio_bytes: u64,
    /// Key frames sent.
    pub key_frames: u64,
    /// Key frame requests (PLI/FIR) received from the other side.
    pub key_frame_requests: u64,
    /// Chat messages handed to the data channel.
    pub chat_messages: u64,
}

/// What was received.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReceivedCounters {
    /// Video frames decoded.
    pub video_frames_decoded: u64,
    /// 20 ms audio frames decoded.
    pub audio_frames_decoded: u64,
    /// Decoded audio frames louder than -50 dBFS.
    pub audio_frames_loud: u64,
    /// Video RTP payload bytes.
    pub video_bytes: u64,
    /// Audio RTP payload bytes.
    pub audio_bytes: u64,
    /// Video RTP packets.
    pub video_packets: u64,
    /// Audio RTP packets.
    pub audio_packets: u64,
    /// Width of the last decoded picture (0 before the first).
    pub video_width: u32,
    /// Height of the last decoded picture (0 before the first).
    pub video_height: u32,
    /// Frames the decoder refused.
    pub decode_errors: u64,
    /// Key frame requests (PLI) sent.
    pub key_frame_requests: u64,
    /// Incoming pictures thrown away for growing past
    /// [`super::MAX_ACCESS_UNIT_BYTES`] (a sender that never ends them).
    pub video_frames_oversized: u64,
    /// Complete pictures skipped because the decoder was behind.
    pub video_frames_skipped: u64,
    /// Chat messages received (within the limits; others are ignored).
    pub chat_messages: u64,
    /// Pictures decoded from the other side's shared screen (the second
    /// video section, PROTOCOL.md "Screen sharing").
    pub screen_frames_decoded: u64,
    /// Size of the last shared-screen picture.
    pub screen_width: u32,
    /// Size of the last shared-screen picture.
    pub screen_height: u32,
    /// True while the other side says it shares its screen.
    pub screen_sharing: bool,
}

/// The candidate pair the media flows over, as the ICE agent selected it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SelectedPair {
    /// Our candidate's type: `host`, `srflx`, `prflx` or `relay`.
    pub local_type: String,
    /// The other side's candidate type, as above.
    pub remote_type: String,
    /// The transport between the two candidates: `udp` or `tcp`.
    pub protocol: String,
}

impl SelectedPair {
    /// True when either end is a TURN relay: the media goes through it.
    pub fn is_relayed(&self) -> bool {
        self.local_type == "relay" || self.remote_type == "relay"
    }

    /// Direct or relayed, from [`is_relayed`](Self::is_relayed).
    pub fn path(&self) -> MediaPath {
        if self.is_relayed() {
            MediaPath::Relayed
        } else {
            MediaPath::Direct
        }
    }
}

/// One-way latency measured from the test pattern's picture code.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Pictures measured.
    pub samples: u64,
    /// The last measurement, ms.
    pub last_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Smallest, ms.
    pub min_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// A snapshot of a call's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CallStats {
    /// Time since `join` started, ms.
    pub elapsed_ms: u64,
    /// The media connection's state.
    pub connection: ConnectionState,
    /// From the start of the join to the first `connected`, ms.
    pub connected_ms: Option<u64>,
    /// From the start of the join to the first decoded remote picture, ms.
    pub first_remote_video_ms: Option<u64>,
    /// Round-trip time on the selected candidate pair, ms.
    pub rtt_ms: Option<f64>,
    /// The candidate pair the media flows over, once one is selected.
    pub selected_pair: Option<SelectedPair>,
    /// Outgoing media bitrate over the last second, bits per second.
    pub send_bitrate_bps: u64,
    /// Incoming media bitrate over the last second, bits per second.
    pub receive_bitrate_bps: u64,
    /// Video frames sent per second, over the last second.
    pub send_frame_rate: f64,
    /// Video frames decoded per second, over the last second.
    pub receive_frame_rate: f64,
    /// Incoming packets lost, as the receiver counts them.
    pub packets_lost: i64,
    /// Incoming packets lost as a fraction of those expected.
    pub packet_loss: f64,
    /// Sent counters.
    pub sent: SentCounters,
    /// Received counters.
    pub received: ReceivedCounters,
    /// Latency from the test pattern, when the other side sends one.
    pub latency: Option<LatencyStats>,
    /// The verification code of the last negotiation, as shown
    /// (`125 392`; see [`super::verify`]).
    pub verification_code: Option<String>,
    /// The call's quality grade and the time spent in each
    /// ([`super::quality`]).
    pub quality: QualityReport,
    /// Whether media goes direct or through a TURN relay, once a candidate
    /// pair is selected.
    pub path: Option<MediaPath>,
    /// The incoming video's codec (`H264`), once video arrives.
    pub video_codec: Option<String>,
}

impl CallStats {
    /// The summary written as JSON by `webcall join --stats-json`.
    pub fn report(&self) -> StatsReport {
        StatsReport {
            duration_ms: self.elapsed_ms,
            connected_ms: self.connected_ms,
            first_remote_video_ms: self.first_remote_video_ms,
            latency_ms: self.latency.as_ref().map(|l| l.mean_ms),
            latency: self.latency.clone(),
            rtt_ms: self.rtt_ms,
            selected_pair: self.selected_pair.clone(),
            packets_lost: self.packets_lost,
            sent: self.sent.clone(),
            received: self.received.clone(),
            verification_code: self.verification_code.as_deref().map(super::verify::digits),
            quality: self.quality,
            path: self.path,
            video_codec: self.video_codec.clone(),
            audio_processing: None,
        }
    }
}

/// The end-of-call summary, serialised for scripts and tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsReport {
    /// How long the call ran, ms from the start of the join.
    pub duration_ms: u64,
    /// From the start of the join to the first `connected`, ms.
    pub connected_ms: Option<u64>,
    /// From the start of the join to the first decoded remote picture, ms.
    pub first_remote_video_ms: Option<u64>,
    /// Mean one-way latency from the test pattern, ms.
    pub latency_ms: Option<f64>,
    /// Latency details.
    pub latency: Option<LatencyStats>,
    /// Last round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// The last candidate pair selected: shows whether the call went
    /// through a TURN relay.
    pub selected_pair: Option<SelectedPair>,
    /// Incoming packets lost.
    pub packets_lost: i64,
    /// Sent counters.
    pub sent: SentCounters,
    /// Received counters.
    pub received: ReceivedCounters,
    /// The verification code of the last negotiation as six digits
    /// (`125392`), without the space it is shown with.
    pub verification_code: Option<String>,
    /// The grade at the end and the share of the call in each grade.
    pub quality: QualityReport,
    /// `direct` or `relayed` (through TURN), from the last selected pair.
    pub path: Option<MediaPath>,
    /// The incoming video's codec (`H264`), if video arrived.
    pub video_codec: Option<String>,
    /// What the sent audio went through: echo cancellation and noise
    /// suppression, each on or off ([`voice`](super::voice)). The engine
    /// does not know (it leaves `None`); the program that chose the audio
    /// source fills it in.
    pub audio_processing: Option<super::voice::VoiceSettings>,
}

/// Live counters shared by the media paths.
#[derive(Debug)]
pub(crate) struct Counters {
    pub start: Instant,
    pub sent_video_frames: AtomicU64,
    pub sent_audio_frames: AtomicU64,
    pub sent_video_bytes: AtomicU64,
    pub sent_audio_bytes: AtomicU64,
    pub sent_key_frames: AtomicU64,
    pub key_frame_requests_in: AtomicU64,
    pub recv_video_frames: AtomicU64,
    pub recv_audio_frames: AtomicU64,
    pub recv_audio_loud: AtomicU64,
    pub recv_video_bytes: AtomicU64,
    pub recv_audio_bytes: AtomicU64,
    pub recv_video_packets: AtomicU64,
    pub recv_audio_packets: AtomicU64,
    pub video_size: AtomicU64,
    pub decode_errors: AtomicU64,
    pub plis_sent: AtomicU64,
    pub oversized_frames: AtomicU64,
    pub frames_skipped: AtomicU64,
    pub sent_chat: AtomicU64,
    pub recv_chat: AtomicU64,
    pub connected_ms: AtomicU64,
    pub first_video_ms: AtomicU64,
    pub recv_screen_frames: AtomicU64,
    pub screen_size: AtomicU64,
    pub screen_sharing: AtomicBool,
    pub live: Mutex<Live>,
}

/// Figures updated once a second or per measurement.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub connection: ConnectionState,
    pub rtt_ms: Option<f64>,
    pub selected_pair: Option<SelectedPair>,
    pub packets_lost: i64,
    pub packet_loss: f64,
    pub send_bitrate_bps: u64,
    pub receive_bitrate_bps: u64,
    pub send_frame_rate: f64,
    pub receive_frame_rate: f64,
    pub latency: Option<LatencyStats>,
    pub verification_code: Option<String>,
    pub grader: Grader,
    pub video_codec: Option<String>,
    last: Option<(Instant, [u64; 4])>,
}

const UNSET: u64 = u64::MAX;

impl Counters {
    pub fn new(start: Instant) -> Self {
        let z = || AtomicU64::new(0);
        Self {
            start,
            sent_video_frames: z(),
            sent_audio_frames: z(),
            sent_video_bytes: z(),
            sent_audio_bytes: z(),
            sent_key_frames: z(),
            key_frame_requests_in: z(),
            recv_video_frames: z(),
            recv_audio_frames: z(),
            recv_audio_loud: z(),
            recv_video_bytes: z(),
            recv_audio_bytes: z(),
            recv_video_packets: z(),
            recv_audio_packets: z(),
            video_size: z(),
            decode_errors: z(),
            plis_sent: z(),
            oversized_frames: z(),
            frames_skipped: z(),
            sent_chat: z(),
            recv_chat: z(),
            connected_ms: AtomicU64::new(UNSET),
            first_video_ms: AtomicU64::new(UNSET),
            recv_screen_frames: z(),
            screen_size: z(),
            screen_sharing: AtomicBool::new(false),
            live: Mutex::new(Live::default()),
        }
    }

    fn since_start(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Records the first time something happened (ms since start).
    pub fn mark_once(&self, which: &AtomicU64) {
        let _ = which.compare_exchange(
            UNSET,
            self.since_start(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    pub fn add(which: &AtomicU64, n: u64) {
        which.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_latency(&self, ms: f64) {
        let mut live = self.live.lock().expect("stats lock");
        let l = live.latency.get_or_insert(LatencyStats {
            min_ms: f64::MAX,
            ..LatencyStats::default()
        });
        l.samples += 1;
        l.last_ms = ms;
        l.mean_ms += (ms - l.mean_ms) / l.samples as f64;
        l.min_ms = l.min_ms.min(ms);
        l.max_ms = l.max_ms.max(ms);
    }

    pub fn set_connection(&self, state: ConnectionState) {
        self.live.lock().expect("stats lock").connection = state;
    }

    /// Works out the per-second rates; call about once a second.
    pub fn tick(&self, now: Instant) {
        let totals = [
            self.sent_video_bytes.load(Ordering::Relaxed)
                + self.sent_audio_bytes.load(Ordering::Relaxed),
            self.recv_video_bytes.load(Ordering::Relaxed)
                + self.recv_audio_bytes.load(Ordering::Relaxed),
            self.sent_video_frames.load(Ordering::Relaxed),
            self.recv_video_frames.load(Ordering::Relaxed),
        ];
        let mut live = self.live.lock().expect("stats lock");
        if let Some((then, before)) = live.last {
            let secs = now.duration_since(then).as_secs_f64().max(1e-3);
            let rate = |i: usize| totals[i].saturating_sub(before[i]) as f64 / secs;
            live.send_bitrate_bps = (rate(0) * 8.0) as u64;
            live.receive_bitrate_bps = (rate(1) * 8.0) as u64;
            live.send_frame_rate = rate(2);
            live.receive_frame_rate = rate(3);
        }
        live.last = Some((now, totals));
    }

    /// Feeds the quality grader the counters as they are at `now`, with
    /// the figures only the peer connection knows (round-trip time, packets
    /// lost, the loss the other side reports).
    pub fn grade(&self, now: Instant, rtt_ms: Option<f64>, lost: u64, remote_loss: Option<f64>) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sample = Sample {
            rtt_ms,
            packets_received: get(&self.recv_video_packets) + get(&self.recv_audio_packets),
            packets_lost: lost,
            remote_loss,
            frames_decoded: get(&self.recv_video_frames),
            video_bytes: get(&self.recv_video_bytes),
        };
        self.live
            .lock()
            .expect("stats lock")
            .grader
            .sample(now, sample);
    }

    /// No connection to grade now (see [`Grader::pause`]).
    pub fn pause_grading(&self) {
        self.live.lock().expect("stats lock").grader.pause();
    }

    pub fn snapshot(&self) -> CallStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let opt = |a: &AtomicU64| Some(get(a)).filter(|&v| v != UNSET);
        let size = get(&self.video_size);
        let screen_size = get(&self.screen_size);
        let live = self.live.lock().expect("stats lock");
        CallStats {
            elapsed_ms: self.since_start(),
            connection: live.connection,
            connected_ms: opt(&self.connected_ms),
            first_remote_video_ms: opt(&self.first_video_ms),
            rtt_ms: live.rtt_ms,
            selected_pair: live.selected_pair.clone(),
            send_bitrate_bps: live.send_bitrate_bps,
            receive_bitrate_bps: live.receive_bitrate_bps,
            send_frame_rate: live.send_frame_rate,
            receive_frame_rate: live.receive_frame_rate,
            packets_lost: live.packets_lost,
            packet_loss: live.packet_loss,
            sent: SentCounters {
                video_frames: get(&self.sent_video_frames),
                audio_frames: get(&self.sent_audio_frames),
                video_bytes: get(&self.sent_video_bytes),
                audio_bytes: get(&self.sent_audio_bytes),
                key_frames: get(&self.sent_key_frames),
                key_frame_requests: get(&self.key_frame_requests_in),
                chat_messages: get(&self.sent_chat),
            },
            received: ReceivedCounters {
                video_frames_decoded: get(&self.recv_video_frames),
                audio_frames_decoded: get(&self.recv_audio_frames),
                audio_frames_loud: get(&self.recv_audio_loud),
                video_bytes: get(&self.recv_video_bytes),
                audio_bytes: get(&self.recv_audio_bytes),
                video_packets: get(&self.recv_video_packets),
                audio_packets: get(&self.recv_audio_packets),
                video_width: (size >> 32) as u32,
                video_height: size as u32,
                decode_errors: get(&self.decode_errors),
                key_frame_requests: get(&self.plis_sent),
                video_frames_oversized: get(&self.oversized_frames),
                video_frames_skipped: get(&self.frames_skipped),
                chat_messages: get(&self.recv_chat),
                screen_frames_decoded: get(&self.recv_screen_frames),
                screen_width: (screen_size >> 32) as u32,
                screen_height: screen_size as u32,
                screen_sharing: self.screen_sharing.load(Ordering::Relaxed),
            },
            latency: live.latency.clone(),
            verification_code: live.verification_code.clone(),
            quality: live.grader.report(),
            path: live.selected_pair.as_ref().map(SelectedPair::path),
            video_codec: live.video_codec.clone(),
        }
    }
}

/// How long a duration is in whole milliseconds, for reports.
pub fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_latency_are_worked_out() {
        let t0 = Instant::now();
        let c = Counters::new(t0);
        c.tick(t0);
        Counters::add(&c.sent_video_bytes, 125_000);
        Counters::add(&c.recv_video_frames, 30);
        c.tick(t0 + Duration::from_secs(1));
        c.record_latency(40.0);
        c.record_latency(60.0);
        c.mark_once(&c.connected_ms);
        let s = c.snapshot();
        assert_eq!(s.send_bitrate_bps, 1_000_000);
        assert!((s.receive_frame_rate - 30.0).abs() < 1e-9);
        let l = s.latency.clone().unwrap();
        assert_eq!(
            (l.samples, l.mean_ms, l.min_ms, l.max_ms),
            (2, 50.0, 40.0, 60.0)
        );
        assert!(s.connected_ms.is_some() && s.first_remote_video_ms.is_none());
        let json = serde_json::to_value(s.report()).unwrap();
        assert_eq!(json["sent"]["video_frames"], 0);
        assert_eq!(json["selected_pair"], serde_json::Value::Null);
        assert_eq!(json["latency_ms"], 50.0);
        assert_eq!(json["verification_code"], serde_json::Value::Null);
        c.live.lock().unwrap().verification_code = Some("012 345".into());
        Counters::add(&c.sent_chat, 2);
        let json = serde_json::to_value(c.snapshot().report()).unwrap();
        assert_eq!(json["verification_code"], "012345");
        assert_eq!(json["sent"]["chat_messages"], 2);
        assert_eq!(json["received"]["chat_messages"], 0);
    }
}
