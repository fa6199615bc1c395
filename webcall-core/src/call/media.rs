//! The media paths around the peer connection: each source runs on its own
//! thread and encodes (H.264 with openh264, Opus), an async task writes the
//! encoded frames to whichever peer connection is current, and each
//! incoming kind is decoded on its own thread and handed to the sinks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, EncoderConfig, FrameRate, FrameType, Level, Profile, RateControlMode, UsageType,
};
use openh264::formats::{YUVSlices, YUVSource};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

use super::pattern;
use super::stats::Counters;
use super::{CallEvent, EventSender};
use crate::media::{
    AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, AudioSink, AudioSource, VideoFrame,
    VideoSink, VideoSource,
};

/// Switches shared between the engine and one sending thread.
#[derive(Debug, Default)]
pub(crate) struct SendControl {
    /// A peer connection is connected: encode and send.
    pub live: AtomicBool,
    /// The user has not muted this kind.
    pub enabled: AtomicBool,
    /// Encode the next picture as a key frame.
    pub key_frame: AtomicBool,
    /// The other side asks for key frames when it needs them.
    pub requests_seen: AtomicBool,
    /// The call is over.
    pub stop: AtomicBool,
}

impl SendControl {
    pub fn new() -> Arc<Self> {
        let c = Self::default();
        c.enabled.store(true, Ordering::Relaxed);
        Arc::new(c)
    }
}

/// A source waiting to take over from the one a sending thread runs
/// ([`super::Call::replace_video_source`]): the thread picks it up before
/// its next frame and drops the old one there.
pub(crate) struct Handover<S: ?Sized>(Mutex<Option<Box<S>>>);

impl<S: ?Sized> Handover<S> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(None)))
    }

    /// Hands `source` over; one not yet picked up is replaced (and dropped).
    pub fn put(&self, source: Box<S>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(source);
    }

    fn take(&self) -> Option<Box<S>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

impl<S: ?Sized> std::fmt::Debug for Handover<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handover")
    }
}

/// How often a sending thread whose source ended looks for a replacement.
const ENDED_POLL: Duration = Duration::from_millis(20);

/// One encoded frame on its way to the network.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub data: Bytes,
    pub duration: Duration,
}

/// Where encoded frames of one kind go now: the current local track.
#[derive(Clone)]
pub(crate) struct Outgoing {
    pub track: Arc<TrackLocalStaticSample>,
    pub ssrc: u32,
    pub payload_type: u8,
}

/// Key frames every this often while the far side has not shown that it
/// asks for them, and every [`SAFETY_KEY_FRAME`] once it has.
pub(crate) const PERIODIC_KEY_FRAME: Duration = Duration::from_secs(2);
const SAFETY_KEY_FRAME: Duration = Duration::from_secs(10);

fn unix_ms_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn encoder_config(bitrate_bps: u32) -> EncoderConfig {
    EncoderConfig::new()
        .bitrate(BitRate::from_bps(bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(30.0))
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Bitrate)
        .profile(Profile::Baseline)
        .level(Level::Level_3_1)
        .skip_frames(true)
}

/// Runs a video source: pulls frames, encodes them while live, passes them
/// on. A source handed over through `next` takes the running one's place
/// (the next picture is a key frame); after a source ends or fails, the
/// thread waits for one until the call is over.
pub(crate) fn spawn_video_sender(
    mut source: Box<dyn VideoSource>,
    next: Arc<Handover<dyn VideoSource>>,
    ctl: Arc<SendControl>,
    out: mpsc::Sender<Encoded>,
    counters: Arc<Counters>,
    bitrate_bps: u32,
    events: EventSender,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("webcall-video-out".into())
        .spawn(move || {
            let mut encoder: Option<(openh264::encoder::Encoder, (u32, u32))> = None;
            let mut last_key = Instant::now();
            let mut prev_ts: Option<Duration> = None;
            let mut black: Option<VideoFrame> = None;
            let mut ended = false;
            while !ctl.stop.load(Ordering::Relaxed) {
                if let Some(replacement) = next.take() {
                    tracing::info!(
                        "video source {} replaced by {}",
                        source.describe(),
                        replacement.describe()
                    );
                    source = replacement;
                    ended = false;
                    prev_ts = None;
                    ctl.key_frame.store(true, Ordering::Relaxed);
                }
                if ended {
                    std::thread::sleep(ENDED_POLL);
                    continue;
                }
                let frame = match source.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => {
                        tracing::info!("video source {} ended", source.describe());
                        ended = true;
                        continue;
                    }
                    Err(e) => {
                        events.send(CallEvent::MediaError(format!("video source: {e}")));
                        ended = true;
                        continue;
                    }
                };
                let duration = prev_ts
                    .and_then(|p| frame.timestamp.checked_sub(p))
                    .filter(|d| !d.is_zero() && *d < Duration::from_secs(1))
                    .unwrap_or(Duration::from_millis(33));
                prev_ts = Some(frame.timestamp);
                if !ctl.live.load(Ordering::Relaxed) {
                    continue;
                }
                let size = (frame.width(), frame.height());
                let picture = if ctl.enabled.load(Ordering::Relaxed) {
                    &frame
                } else {
                    if black
                        .as_ref()
                        .is_none_or(|b| (b.width(), b.height()) != size)
                    {
                        black = VideoFrame::black(size.0, size.1).ok();
                    }
                    black.as_ref().unwrap_or(&frame)
                };
                if encoder.as_ref().is_none_or(|(_, s)| *s != size) {
                    match openh264::encoder::Encoder::with_api_config(
                        OpenH264API::from_source(),
                        encoder_config(bitrate_bps),
                    ) {
                        Ok(e) => encoder = Some((e, size)),
                        Err(e) => {
                            events.send(CallEvent::MediaError(format!("H.264 encoder: {e}")));
                            break;
                        }
                    }
                }
                let Some((enc, _)) = encoder.as_mut() else {
                    break;
                };
                let every = if ctl.requests_seen.load(Ordering::Relaxed) {
                    SAFETY_KEY_FRAME
                } else {
                    PERIODIC_KEY_FRAME
                };
                if ctl.key_frame.swap(false, Ordering::Relaxed) || last_key.elapsed() >= every {
                    enc.force_intra_frame();
                }
                let (w, h) = (size.0 as usize, size.1 as usize);
                let yuv = YUVSlices::new(
                    (picture.y(), picture.u(), picture.v()),
                    (w, h),
                    (w, w / 2, w / 2),
                );
                let bitstream = match enc.encode(&yuv) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!("H.264 encoding failed: {e}");
                        continue;
                    }
                };
                let key = matches!(bitstream.frame_type(), FrameType::IDR | FrameType::I);
                let data = bitstream.to_vec();
                if data.is_empty() {
                    continue;
                }
                if key {
                    last_key = Instant::now();
                    Counters::add(&counters.sent_key_frames, 1);
                }
                if out
                    .try_send(Encoded {
                        data: Bytes::from(data),
                        duration,
                    })
                    .is_err()
                {
                    // The network side is behind: drop this one, and make the
                    // next picture decodable on its own.
                    ctl.key_frame.store(true, Ordering::Relaxed);
                }
            }
        })
}

/// Runs an audio source: pulls 20 ms frames, Opus-encodes them while live.
/// A source handed over through `next` takes the running one's place, as
/// for video.
pub(crate) fn spawn_audio_sender(
    mut source: Box<dyn AudioSource>,
    next: Arc<Handover<dyn AudioSource>>,
    ctl: Arc<SendControl>,
    out: mpsc::Sender<Encoded>,
    events: EventSender,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("webcall-audio-out".into())
        .spawn(move || {
            let mut encoder = match opus::Encoder::new(
                AUDIO_SAMPLE_RATE,
                opus::Channels::Mono,
                opus::Application::Voip,
            ) {
                Ok(e) => e,
                Err(e) => {
                    events.send(CallEvent::MediaError(format!("Opus encoder: {e}")));
                    return;
                }
            };
            let _ = encoder.set_inband_fec(true);
            let silence = vec![0i16; AUDIO_FRAME_SAMPLES];
            let mut buf = vec![0u8; 1500];
            let mut ended = false;
            while !ctl.stop.load(Ordering::Relaxed) {
                if let Some(replacement) = next.take() {
                    tracing::info!(
                        "audio source {} replaced by {}",
                        source.describe(),
                        replacement.describe()
                    );
                    source = replacement;
                    ended = false;
                }
                if ended {
                    std::thread::sleep(ENDED_POLL);
                    continue;
                }
                let frame = match source.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => {
                        tracing::info!("audio source {} ended", source.describe());
                        ended = true;
                        continue;
                    }
                    Err(e) => {
                        events.send(CallEvent::MediaError(format!("audio source: {e}")));
                        ended = true;
                        continue;
                    }
                };
                if !ctl.live.load(Ordering::Relaxed) {
                    continue;
                }
                let pcm = if ctl.enabled.load(Ordering::Relaxed)
                    && frame.samples.len() == AUDIO_FRAME_SAMPLES
                {
                    &frame.samples
                } else {
                    &silence
                };
                match encoder.encode(pcm, &mut buf) {
                    Ok(n) => {
                        let _ = out.try_send(Encoded {
                            data: Bytes::copy_from_slice(&buf[..n]),
                            duration: Duration::from_millis(20),
                        });
                    }
                    Err(e) => tracing::warn!("Opus encoding failed: {e}"),
                }
            }
        })
}

/// Writes encoded frames to the current local track, counting what went out.
pub(crate) async fn write_loop(
    mut rx: mpsc::Receiver<Encoded>,
    current: watch::Receiver<Option<Outgoing>>,
    counters: Arc<Counters>,
    video: bool,
) {
    while let Some(enc) = rx.recv().await {
        let Some(out) = current.borrow().clone() else {
            continue;
        };
        let len = enc.data.len() as u64;
        let sample = rtc::media::Sample {
            data: enc.data,
            duration: enc.duration,
            ..rtc::media::Sample::new(Instant::now())
        };
        match out
            .track
            .sample_writer(out.ssrc, out.payload_type)
            .write_sample(&sample)
            .await
        {
            Ok(()) => {
                if video {
                    Counters::add(&counters.sent_video_frames, 1);
                    Counters::add(&counters.sent_video_bytes, len);
                } else {
                    Counters::add(&counters.sent_audio_frames, 1);
                    Counters::add(&counters.sent_audio_bytes, len);
                }
            }
            Err(e) => tracing::debug!("writing a sample: {e}"),
        }
    }
}

/// Pictures that may wait for the video decoder: a second at 30 fps, so a
/// burst after a network hiccup fits.
const VIDEO_DECODE_QUEUE: usize = 30;
/// Bytes that may wait for the video decoder, whatever the count.
const VIDEO_DECODE_BYTES: usize = 8 * 1024 * 1024;

/// Why a picture was not queued for the decoder.
pub(crate) enum NotQueued {
    /// The decoder is behind ([`VIDEO_DECODE_QUEUE`] pictures or
    /// [`VIDEO_DECODE_BYTES`] bytes wait): the picture is dropped.
    Full,
    /// The decoder has stopped.
    Closed,
}

/// The way from reassembly to the video decoder, bounded in pictures and
/// in bytes.
#[derive(Debug, Clone)]
pub(crate) struct DecodeQueue {
    tx: std_mpsc::SyncSender<Vec<u8>>,
    bytes: Arc<AtomicUsize>,
}

/// The decoder's end of a [`DecodeQueue`].
#[derive(Debug)]
pub(crate) struct DecodeQueueRx {
    rx: std_mpsc::Receiver<Vec<u8>>,
    bytes: Arc<AtomicUsize>,
}

impl DecodeQueue {
    pub fn new() -> (Self, DecodeQueueRx) {
        let (tx, rx) = std_mpsc::sync_channel(VIDEO_DECODE_QUEUE);
        let bytes = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                bytes: bytes.clone(),
            },
            DecodeQueueRx { rx, bytes },
        )
    }

    /// Queues a picture unless the decoder is that far behind.
    pub fn offer(&self, picture: Vec<u8>) -> Result<(), NotQueued> {
        let len = picture.len();
        if self.bytes.load(Ordering::Relaxed) + len > VIDEO_DECODE_BYTES {
            return Err(NotQueued::Full);
        }
        self.bytes.fetch_add(len, Ordering::Relaxed);
        match self.tx.try_send(picture) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.bytes.fetch_sub(len, Ordering::Relaxed);
                Err(match e {
                    std_mpsc::TrySendError::Full(_) => NotQueued::Full,
                    std_mpsc::TrySendError::Disconnected(_) => NotQueued::Closed,
                })
            }
        }
    }
}

impl DecodeQueueRx {
    fn recv(&self) -> Option<Vec<u8>> {
        let picture = self.rx.recv().ok()?;
        self.bytes.fetch_sub(picture.len(), Ordering::Relaxed);
        Some(picture)
    }
}

/// Copies a decoded picture (with strides) into a packed I420 frame.
fn to_video_frame(yuv: &impl YUVSource, timestamp: Duration) -> Option<VideoFrame> {
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    let (cw, ch) = (w / 2, h / 2);
    let mut data = Vec::with_capacity(w * h * 3 / 2);
    for row in 0..h {
        data.extend_from_slice(&yuv.y()[row * sy..row * sy + w]);
    }
    for row in 0..ch {
        data.extend_from_slice(&yuv.u()[row * su..row * su + cw]);
    }
    for row in 0..ch {
        data.extend_from_slice(&yuv.v()[row * sv..row * sv + cw]);
    }
    VideoFrame::from_i420(w as u32, h as u32, data, timestamp).ok()
}

/// Decodes incoming H.264 frames (Annex-B) and hands pictures to the sinks.
/// A frame the decoder refuses triggers a key frame request on `pli`.
pub(crate) fn spawn_video_receiver(
    screen: bool,
    rx: DecodeQueueRx,
    mut sinks: Vec<Box<dyn VideoSink>>,
    counters: Arc<Counters>,
    frame_events: Option<(EventSender, Duration)>,
    pli: mpsc::Sender<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(
            if screen {
                "webcall-screen-in"
            } else {
                "webcall-video-in"
            }
            .into(),
        )
        .spawn(move || {
            let mut decoder = match openh264::decoder::Decoder::new() {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!("H.264 decoder: {e}");
                    None
                }
            };
            let mut last_event: Option<Instant> = None;
            while let Some(au) = rx.recv() {
                let Some(dec) = decoder.as_mut() else {
                    continue;
                };
                let frame = match dec.decode(&au) {
                    Ok(Some(yuv)) => to_video_frame(&yuv, counters.start.elapsed()),
                    Ok(None) => None,
                    Err(e) => {
                        tracing::debug!("H.264 decoding failed: {e}");
                        Counters::add(&counters.decode_errors, 1);
                        let _ = pli.try_send(());
                        None
                    }
                };
                let Some(frame) = frame else { continue };
                if screen {
                    // The shared screen: counted apart, no latency code, no events.
                    Counters::add(&counters.recv_screen_frames, 1);
                    counters.screen_size.store(
                        (u64::from(frame.width()) << 32) | u64::from(frame.height()),
                        Ordering::Relaxed,
                    );
                    for sink in &mut sinks {
                        if let Err(e) = sink.write_frame(&frame) {
                            tracing::warn!("screen sink: {e}");
                        }
                    }
                    continue;
                }
                counters.mark_once(&counters.first_video_ms);
                Counters::add(&counters.recv_video_frames, 1);
                counters.video_size.store(
                    (u64::from(frame.width()) << 32) | u64::from(frame.height()),
                    Ordering::Relaxed,
                );
                if let Some(code) = pattern::read(&frame) {
                    let latency = unix_ms_f64() - code.sent_unix_ms as f64;
                    if (0.0..60_000.0).contains(&latency) {
                        counters.record_latency(latency);
                    }
                }
                for sink in &mut sinks {
                    if let Err(e) = sink.write_frame(&frame) {
                        tracing::warn!("video sink: {e}");
                    }
                }
                if let Some((events, every)) = &frame_events
                    && last_event.is_none_or(|t| t.elapsed() >= *every)
                {
                    last_event = Some(Instant::now());
                    events.send(CallEvent::RemoteVideoFrame(frame));
                }
            }
            for sink in &mut sinks {
                if let Err(e) = sink.finish() {
                    tracing::warn!("closing a video sink: {e}");
                }
            }
        })
}

/// Decodes incoming Opus packets into 20 ms mono frames for the sinks.
pub(crate) fn spawn_audio_receiver(
    rx: std_mpsc::Receiver<Vec<u8>>,
    mut sinks: Vec<Box<dyn AudioSink>>,
    counters: Arc<Counters>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("webcall-audio-in".into())
        .spawn(move || {
            let mut decoder = match opus::Decoder::new(AUDIO_SAMPLE_RATE, opus::Channels::Mono) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!("Opus decoder: {e}");
                    None
                }
            };
            // Up to 120 ms per packet.
            let mut pcm = vec![0i16; AUDIO_SAMPLE_RATE as usize * 120 / 1000];
            let mut pending: Vec<i16> = Vec::with_capacity(AUDIO_FRAME_SAMPLES * 2);
            while let Ok(packet) = rx.recv() {
                let Some(dec) = decoder.as_mut() else {
                    continue;
                };
                let n = match dec.decode(&packet, &mut pcm, false) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!("Opus decoding failed: {e}");
                        continue;
                    }
                };
                pending.extend_from_slice(&pcm[..n]);
                while pending.len() >= AUDIO_FRAME_SAMPLES {
                    let samples: Vec<i16> = pending.drain(..AUDIO_FRAME_SAMPLES).collect();
                    let frame = AudioFrame {
                        samples,
                        timestamp: counters.start.elapsed(),
                    };
                    Counters::add(&counters.recv_audio_frames, 1);
                    if frame.rms() > 0.003 {
                        Counters::add(&counters.recv_audio_loud, 1);
                    }
                    for sink in &mut sinks {
                        if let Err(e) = sink.write_frame(&frame) {
                            tracing::warn!("audio sink: {e}");
                        }
                    }
                }
            }
            for sink in &mut sinks {
                if let Err(e) = sink.finish() {
                    tracing::warn!("closing an audio sink: {e}");
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decode_queue_is_bounded_in_pictures_and_bytes() {
        let (q, rx) = DecodeQueue::new();
        for _ in 0..VIDEO_DECODE_QUEUE {
            assert!(q.offer(vec![0; 10]).is_ok());
        }
        assert!(matches!(q.offer(vec![0; 10]), Err(NotQueued::Full)));
        while rx.bytes.load(Ordering::Relaxed) > 0 {
            rx.recv().unwrap();
        }
        let big = VIDEO_DECODE_BYTES / 2 + 1;
        assert!(q.offer(vec![0; big]).is_ok());
        assert!(matches!(q.offer(vec![0; big]), Err(NotQueued::Full)));
        assert_eq!(rx.recv().map(|p| p.len()), Some(big));
        assert!(q.offer(vec![0; big]).is_ok(), "room again once decoded");
        drop(rx);
        assert!(matches!(q.offer(vec![0; 1]), Err(NotQueued::Closed)));
    }
}
