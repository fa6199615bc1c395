//! The readers of what arrives on a peer connection's tracks: incoming
//! H.264 reassembled into pictures for the video decoder, incoming Opus
//! handed to the audio decoder, and the other side's key frame requests
//! on our outgoing video. Each runs as a task per track and ends with it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use super::assemble::{Assembler, MAX_ACCESS_UNIT_BYTES};
use super::media::{DecodeQueue, NotQueued, SendControl};
use super::peer;
use super::stats::Counters;

/// Marks a key frame as wanted whenever the far side asks for one.
pub(crate) async fn watch_key_frame_requests(
    track: Arc<TrackLocalStaticSample>,
    ctl: Arc<SendControl>,
    counters: Arc<Counters>,
) {
    while let Some(ev) = track.poll().await {
        let TrackLocalEvent::OnRtcpPacket(packets) = ev else {
            continue;
        };
        if packets
            .iter()
            .any(|p| peer::is_key_frame_request(p.as_ref()))
        {
            ctl.requests_seen.store(true, Ordering::Relaxed);
            ctl.key_frame.store(true, Ordering::Relaxed);
            Counters::add(&counters.key_frame_requests_in, 1);
        }
    }
}

/// Reassembles H.264 access units from RTP and hands them to the decoder.
/// A picture that is lost, too big ([`MAX_ACCESS_UNIT_BYTES`]) or finds the
/// decoder's queue full is dropped, and a key frame is asked for.
pub(crate) async fn read_video(
    track: Arc<dyn TrackRemote>,
    out: DecodeQueue,
    pli: mpsc::Sender<()>,
    counters: Arc<Counters>,
) {
    let mut assembler = Assembler::default();
    while let Some(ev) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(pkt) = ev else {
            continue;
        };
        Counters::add(&counters.recv_video_packets, 1);
        Counters::add(&counters.recv_video_bytes, pkt.payload.len() as u64);
        let pushed = assembler.push(pkt.header.sequence_number, pkt.header.marker, &pkt.payload);
        let mut want_key_frame = pushed.request_key_frame;
        if pushed.dropped_oversized {
            Counters::add(&counters.oversized_frames, 1);
            tracing::debug!("an incoming picture grew past {MAX_ACCESS_UNIT_BYTES} bytes: dropped");
        }
        if let Some(au) = pushed.access_unit {
            match out.offer(au) {
                Ok(()) => {}
                Err(NotQueued::Full) => {
                    // The decoder is behind: skip this picture; the ones
                    // after it need a fresh key frame.
                    Counters::add(&counters.frames_skipped, 1);
                    want_key_frame = true;
                }
                Err(NotQueued::Closed) => break,
            }
        }
        if want_key_frame {
            // One request waiting is as good as many.
            let _ = pli.try_send(());
        }
    }
}

/// Hands Opus packets to the decoder; drops them while its queue is full.
pub(crate) async fn read_audio(
    track: Arc<dyn TrackRemote>,
    out: std_mpsc::SyncSender<Vec<u8>>,
    counters: Arc<Counters>,
) {
    while let Some(ev) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(pkt) = ev else {
            continue;
        };
        Counters::add(&counters.recv_audio_packets, 1);
        Counters::add(&counters.recv_audio_bytes, pkt.payload.len() as u64);
        if pkt.payload.is_empty() {
            continue;
        }
        match out.try_send(pkt.payload.to_vec()) {
            Ok(()) | Err(std_mpsc::TrySendError::Full(_)) => {}
            Err(std_mpsc::TrySendError::Disconnected(_)) => break,
        }
    }
}
