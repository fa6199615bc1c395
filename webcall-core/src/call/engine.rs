//! The run loop of a call: one task that owns the current peer connection
//! and reacts to signaling, peer connection events, user commands and a
//! timer. What to negotiate and when is decided by a [`Negotiator`]; this
//! edge feeds it what happens, with the time, and carries out its outputs
//! on the webrtc peer connection. Media (the send and receive paths, key
//! frame requests, statistics), the data channel's reader and outbox, and
//! the verification code after each negotiation are wired up here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription, RTCStatsReport,
    RTCStatsReportEntry, StatsSelector,
};

use super::chat::{self, CHAT_OUTBOX};
use super::media::{self, DecodeQueue, Encoded, Handover, Outgoing, SendControl};
use super::negotiator::{Negotiator, Output};
use super::peer::{self, Peer, PeerEvent, PeerSettings, rtc_err};
use super::receive;
use super::stats::{ConnectionState, Counters, SelectedPair};
use super::{
    Call, CallEvent, CallEvents, CallOptions, Command, EVENT_QUEUE, EndReason, EventSender, Shared,
};
use crate::client::{SignalEvent, Signaling};
use crate::error::{Error, Result};
use crate::protocol::IceCandidate;

/// Key frame requests we send are at least this far apart.
const PLI_SPACING: Duration = Duration::from_millis(300);
/// Opus packets waiting for the audio decoder: a second of 20 ms packets.
/// Later ones are dropped while it is full (Opus conceals the gap).
const AUDIO_DECODE_QUEUE: usize = 50;

pub(super) fn start(
    start: Instant,
    signaling: Signaling,
    signal_events: mpsc::Receiver<SignalEvent>,
    mut options: CallOptions,
) -> Result<(Call, CallEvents)> {
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    let events = EventSender(event_tx);
    let counters = Arc::new(Counters::new(start));
    let video_ctl = SendControl::new();
    let audio_ctl = SendControl::new();
    let (video_out_tx, video_out_rx) = watch::channel::<Option<Outgoing>>(None);
    let (audio_out_tx, audio_out_rx) = watch::channel::<Option<Outgoing>>(None);
    let spawn_err = |e: std::io::Error| Error::Media(format!("cannot start a media thread: {e}"));

    let send_video = options.video.is_some();
    let send_audio = options.audio.is_some();
    let mut video_source = None;
    let mut audio_source = None;
    if let Some(source) = options.video.take() {
        let (tx, rx) = mpsc::channel::<Encoded>(4);
        let next = Handover::new();
        video_source = Some(next.clone());
        media::spawn_video_sender(
            source,
            next,
            video_ctl.clone(),
            tx,
            counters.clone(),
            options.video_bitrate_bps,
            events.clone(),
        )
        .map_err(spawn_err)?;
        tokio::spawn(media::write_loop(rx, video_out_rx, counters.clone(), true));
    }
    if let Some(source) = options.audio.take() {
        let (tx, rx) = mpsc::channel::<Encoded>(8);
        let next = Handover::new();
        audio_source = Some(next.clone());
        media::spawn_audio_sender(source, next, audio_ctl.clone(), tx, events.clone())
            .map_err(spawn_err)?;
        tokio::spawn(media::write_loop(rx, audio_out_rx, counters.clone(), false));
    }

    // One pending key frame request stands for any number of them.
    let (pli_tx, pli_rx) = mpsc::channel(1);
    let (video_in_tx, video_in_rx) = DecodeQueue::new();
    let (audio_in_tx, audio_in_rx) = std_mpsc::sync_channel::<Vec<u8>>(AUDIO_DECODE_QUEUE);
    let video_thread = media::spawn_video_receiver(
        false,
        video_in_rx,
        std::mem::take(&mut options.video_sinks),
        counters.clone(),
        options
            .remote_frame_events
            .map(|every| (events.clone(), every)),
        pli_tx.clone(),
    )
    .map_err(spawn_err)?;
    // The shared screen has a decoder, a queue and key frame requests of
    // its own, so a share never holds up the camera.
    let (screen_pli_tx, screen_pli_rx) = mpsc::channel(1);
    let (screen_in_tx, screen_in_rx) = DecodeQueue::new();
    let screen_thread = media::spawn_video_receiver(
        true,
        screen_in_rx,
        std::mem::take(&mut options.screen_sinks),
        counters.clone(),
        None,
        screen_pli_tx.clone(),
    )
    .map_err(spawn_err)?;
    let audio_thread = media::spawn_audio_receiver(
        audio_in_rx,
        std::mem::take(&mut options.audio_sinks),
        counters.clone(),
    )
    .map_err(spawn_err)?;

    let (outbox_tx, outbox_rx) = mpsc::channel(CHAT_OUTBOX);
    let (chat_link, pump_ends) = chat::link();
    tokio::spawn(chat::pump(outbox_rx, pump_ends, counters.clone()));

    // Hang-up is the only command; a second one queued adds nothing.
    let (commands_tx, commands_rx) = mpsc::channel(1);
    let (done_tx, done_rx) = watch::channel(false);
    let (peer_tx, peer_rx) = mpsc::unbounded_channel();
    let settings = PeerSettings {
        ice_servers: options.ice_servers.clone().unwrap_or_default(),
        policy: Default::default(),
        ice_addrs: options.ice_addrs.clone(),
        send_video,
        send_audio,
    };
    let engine = Engine {
        signaling,
        settings,
        ice_servers_override: options.ice_servers.is_some(),
        events: events.clone(),
        counters: counters.clone(),
        video_ctl: video_ctl.clone(),
        audio_ctl: audio_ctl.clone(),
        video_out: video_out_tx,
        audio_out: audio_out_tx,
        video_in: video_in_tx,
        screen_in: screen_in_tx,
        audio_in: audio_in_tx,
        pli_tx,
        screen_pli_tx,
        peer_tx,
        peer: None,
        chat: chat_link,
        chat_reader: None,
        generation: 0,
        negotiator: Negotiator::new(options.ice_restart_after),
        remote_video: None,
        remote_screen: None,
        last_pli: None,
        last_screen_pli: None,
        stats_interval: options.stats_interval,
    };
    tokio::spawn(async move {
        let reason = engine
            .run(signal_events, peer_rx, commands_rx, pli_rx, screen_pli_rx)
            .await;
        // The decoders end when their inputs close (the engine dropped
        // them); wait for them so files are complete before "ended".
        let _ = tokio::task::spawn_blocking(move || {
            let _ = video_thread.join();
            let _ = screen_thread.join();
            let _ = audio_thread.join();
        })
        .await;
        events.send_last(CallEvent::Ended { reason }).await;
        let _ = done_tx.send(true);
    });
    let call = Call {
        shared: Arc::new(Shared {
            commands: commands_tx,
            outbox: outbox_tx,
            counters,
            video: video_ctl,
            audio: audio_ctl,
            video_source,
            audio_source,
            done: done_rx,
        }),
    };
    Ok((call, CallEvents { rx: event_rx }))
}

struct Engine {
    signaling: Signaling,
    settings: PeerSettings,
    ice_servers_override: bool,
    events: EventSender,
    counters: Arc<Counters>,
    video_ctl: Arc<SendControl>,
    audio_ctl: Arc<SendControl>,
    video_out: watch::Sender<Option<Outgoing>>,
    audio_out: watch::Sender<Option<Outgoing>>,
    video_in: DecodeQueue,
    screen_in: DecodeQueue,
    audio_in: std_mpsc::SyncSender<Vec<u8>>,
    pli_tx: mpsc::Sender<()>,
    screen_pli_tx: mpsc::Sender<()>,
    peer_tx: mpsc::UnboundedSender<(u64, PeerEvent)>,
    peer: Option<Peer>,
    /// What the data channel readers share with the outbox pump.
    chat: chat::Link,
    /// The current peer connection's data channel reader.
    chat_reader: Option<tokio::task::AbortHandle>,
    generation: u64,
    negotiator: Negotiator,
    remote_video: Option<(Arc<dyn TrackRemote>, u32)>,
    /// The track of the second video section: the other side's screen.
    remote_screen: Option<(Arc<dyn TrackRemote>, u32)>,
    last_pli: Option<Instant>,
    last_screen_pli: Option<Instant>,
    stats_interval: Duration,
}

impl Engine {
    async fn run(
        mut self,
        mut signal: mpsc::Receiver<SignalEvent>,
        // Unbounded on purpose: the producer is our own peer connection,
        // whose callbacks must not wait for this loop (candidates fire
        // while this loop awaits `set_local_description`).
        mut peer_events: mpsc::UnboundedReceiver<(u64, PeerEvent)>,
        mut commands: mpsc::Receiver<Command>,
        mut plis: mpsc::Receiver<()>,
        mut screen_plis: mpsc::Receiver<()>,
    ) -> EndReason {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_stats = Instant::now();
        let reason = loop {
            tokio::select! {
                // Once the server is gone for good, nothing more comes here.
                ev = signal.recv(), if self.negotiator.listens_to_signaling() => {
                    let ev = ev.unwrap_or(SignalEvent::Closed(None));
                    if let SignalEvent::Joined(j) = &ev {
                        if !self.ice_servers_override {
                            self.settings.ice_servers = j.ice_servers.clone();
                        }
                        self.settings.policy = j.ice_transport_policy;
                    }
                    self.negotiator.signal(Instant::now(), ev);
                },
                Some((generation, ev)) = peer_events.recv() => {
                    if generation == self.generation {
                        self.on_peer_event(ev).await;
                    }
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Hangup) | None => {
                        let _ = self.signaling.hangup().await;
                        self.negotiator.hang_up();
                    }
                },
                Some(()) = plis.recv() => self.request_key_frame(false).await,
                Some(()) = screen_plis.recv() => self.request_key_frame(true).await,
                _ = tick.tick() => {
                    self.negotiator.tick(Instant::now());
                    if let Some(reason) = self.carry_out().await {
                        break reason;
                    }
                    if last_stats.elapsed() >= self.stats_interval {
                        last_stats = Instant::now();
                        self.update_stats().await;
                        self.events.send(CallEvent::Stats(Box::new(self.counters.snapshot())));
                    }
                }
            }
            if let Some(reason) = self.carry_out().await {
                break reason;
            }
        };
        self.close_peer().await;
        self.counters.set_connection(ConnectionState::Closed);
        self.video_ctl.stop.store(true, Ordering::Relaxed);
        self.audio_ctl.stop.store(true, Ordering::Relaxed);
        reason
    }

    /// Carries out what the negotiator asks for, reporting back what it
    /// needs to know, until it has nothing more. Returns why the call
    /// ended, if it did.
    async fn carry_out(&mut self) -> Option<EndReason> {
        while let Some(output) = self.negotiator.poll_output() {
            if let Output::End(reason) = output {
                return Some(reason);
            }
            // Without a peer connection the negotiator would wait for one
            // for ever: the call ends, saying why.
            if matches!(output, Output::BuildPeer)
                && let Err(e) = self.reset_peer().await
            {
                let detail = match e {
                    crate::Error::WebRtc(detail) => detail,
                    other => other.to_string(),
                };
                return Some(EndReason::Failed(Arc::new(
                    crate::Error::NoPeerConnection { detail },
                )));
            }
            if let Err(e) = self.perform(output).await {
                tracing::warn!("{e}");
            }
        }
        None
    }

    async fn perform(&mut self, output: Output) -> Result<()> {
        match output {
            Output::Send(message) => self.signaling.send(message),
            Output::Event(event) => self.events.send(event),
            Output::State(state) => {
                self.counters.set_connection(state);
                self.events.send(CallEvent::ConnectionState(state));
            }
            // Built in `carry_out`, which ends the call when it cannot.
            Output::BuildPeer => self.negotiator.peer_built(),
            Output::ClosePeer => self.close_peer().await,
            Output::CreateOffer { ice_restart } => {
                let Some(p) = &mut self.peer else {
                    return Ok(());
                };
                peer::add_screen_section(p).await?;
                if ice_restart {
                    p.pc.restart_ice().await.map_err(rtc_err("ICE restart"))?;
                }
                let offer =
                    p.pc.create_offer(None)
                        .await
                        .map_err(rtc_err("creating an offer"))?;
                p.pc.set_local_description(offer)
                    .await
                    .map_err(rtc_err("applying our offer"))?;
                if let Some(local) = p.pc.local_description().await {
                    self.negotiator.offer_created(local.sdp);
                }
            }
            Output::Rollback => {
                let Some(p) = &self.peer else { return Ok(()) };
                let rollback =
                    RTCSessionDescription::rollback(None).map_err(rtc_err("rollback"))?;
                let ok = p.pc.set_local_description(rollback).await.is_ok();
                self.negotiator.rolled_back(ok);
            }
            Output::ApplyOffer(sdp) => {
                let Some(p) = &self.peer else { return Ok(()) };
                let offer = RTCSessionDescription::offer(sdp.clone())
                    .map_err(rtc_err("reading the offer"))?;
                p.pc.set_remote_description(offer)
                    .await
                    .map_err(rtc_err("applying the offer"))?;
                self.negotiator.offer_applied(&sdp);
            }
            Output::CreateAnswer => {
                let Some(p) = &self.peer else { return Ok(()) };
                let answer =
                    p.pc.create_answer(None)
                        .await
                        .map_err(rtc_err("creating an answer"))?;
                p.pc.set_local_description(answer)
                    .await
                    .map_err(rtc_err("applying our answer"))?;
                if let Some(local) = p.pc.local_description().await {
                    self.negotiator.answer_created(local.sdp);
                }
                self.update_verification_code().await;
            }
            Output::ApplyAnswer(sdp) => {
                let Some(p) = &self.peer else { return Ok(()) };
                let answer = RTCSessionDescription::answer(sdp.clone())
                    .map_err(rtc_err("reading the answer"))?;
                p.pc.set_remote_description(answer)
                    .await
                    .map_err(rtc_err("applying the answer"))?;
                self.negotiator.answer_applied(&sdp);
                self.update_verification_code().await;
            }
            Output::AddCandidate(c) => {
                let Some(p) = &self.peer else { return Ok(()) };
                if let Err(e) = p.pc.add_ice_candidate(candidate_init(c)).await {
                    tracing::debug!("a remote candidate was refused: {e}");
                }
            }
            Output::FlushCandidates(candidates) => {
                let Some(p) = &self.peer else { return Ok(()) };
                for c in candidates {
                    if let Err(e) = p.pc.add_ice_candidate(candidate_init(c)).await {
                        tracing::debug!("a buffered candidate was refused: {e}");
                    }
                }
            }
            Output::PublishOutgoing => {
                self.counters.mark_once(&self.counters.connected_ms);
                self.publish_outgoing().await;
            }
            // Handled by `carry_out`.
            Output::End(_) => {}
        }
        Ok(())
    }

    async fn close_peer(&mut self) {
        self.video_out.send_replace(None);
        self.audio_out.send_replace(None);
        self.video_ctl.live.store(false, Ordering::Relaxed);
        self.audio_ctl.live.store(false, Ordering::Relaxed);
        self.remote_video = None;
        self.remote_screen = None;
        // A share belongs to its connection: a new one starts without.
        if self.counters.screen_sharing.swap(false, Ordering::Relaxed) {
            self.events.send(CallEvent::ScreenShare { sharing: false });
        }
        if let Some(reader) = self.chat_reader.take() {
            reader.abort();
        }
        chat::forget(&self.chat.open, self.generation);
        if let Some(p) = self.peer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), p.pc.close()).await;
        }
    }

    /// Drops the current peer connection and builds a fresh one.
    async fn reset_peer(&mut self) -> Result<()> {
        self.close_peer().await;
        self.generation += 1;
        let p = peer::build(&self.settings, self.generation, self.peer_tx.clone()).await?;
        let reader = tokio::spawn(chat::read(
            p.chat.clone(),
            self.generation,
            self.chat.clone(),
            self.events.clone(),
            self.counters.clone(),
        ));
        self.chat_reader = Some(reader.abort_handle());
        self.peer = Some(p);
        Ok(())
    }

    /// Works out the verification code from the descriptions just
    /// negotiated, records it and tells the application.
    async fn update_verification_code(&mut self) {
        let Some(p) = &self.peer else { return };
        let (Some(local), Some(remote)) = (
            p.pc.current_local_description().await,
            p.pc.current_remote_description().await,
        ) else {
            return;
        };
        let Some(code) = super::verify::verification_code(&local.sdp, &remote.sdp) else {
            tracing::warn!("a description names no DTLS fingerprint: no verification code");
            return;
        };
        self.counters
            .live
            .lock()
            .expect("stats lock")
            .verification_code = Some(code.clone());
        self.events.send(CallEvent::VerificationCode(code));
    }

    async fn on_peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Candidate(c) => self.negotiator.local_candidate(c),
            PeerEvent::State(s) => {
                let state = match s {
                    RTCPeerConnectionState::Connected => ConnectionState::Connected,
                    RTCPeerConnectionState::Connecting => ConnectionState::Connecting,
                    RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
                    RTCPeerConnectionState::Failed => ConnectionState::Failed,
                    RTCPeerConnectionState::Closed => ConnectionState::Closed,
                    _ => return,
                };
                self.negotiator.peer_state(Instant::now(), state);
            }
            PeerEvent::Track(track) => self.on_track(track).await,
        }
    }

    /// Points the media writers at the current peer's tracks.
    async fn publish_outgoing(&mut self) {
        let Some(p) = &self.peer else { return };
        for (local, out, ctl) in [
            (&p.video, &self.video_out, &self.video_ctl),
            (&p.audio, &self.audio_out, &self.audio_ctl),
        ] {
            let Some(local) = local else { continue };
            let Some(payload_type) = peer::negotiated_payload_type(&local.sender).await else {
                tracing::warn!("no codec was negotiated for a local track");
                continue;
            };
            out.send_replace(Some(Outgoing {
                track: local.track.clone(),
                ssrc: local.ssrc,
                payload_type,
            }));
            ctl.key_frame.store(true, Ordering::Relaxed);
            ctl.live.store(true, Ordering::Relaxed);
        }
        if let Some(v) = &p.video {
            tokio::spawn(receive::watch_key_frame_requests(
                v.track.clone(),
                self.video_ctl.clone(),
                self.counters.clone(),
            ));
        }
    }

    async fn on_track(&mut self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        let ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
        if kind == RtpCodecKind::Video {
            let screen = self.is_screen_track(&track).await;
            tracing::debug!(
                "remote video track {ssrc} ({})",
                if screen { "screen" } else { "camera" }
            );
            let (queue, pli) = if screen {
                self.remote_screen = Some((track.clone(), ssrc));
                self.last_screen_pli = None;
                (self.screen_in.clone(), self.screen_pli_tx.clone())
            } else {
                self.remote_video = Some((track.clone(), ssrc));
                self.last_pli = None;
                (self.video_in.clone(), self.pli_tx.clone())
            };
            tokio::spawn(receive::read_video(
                track,
                queue,
                pli,
                self.counters.clone(),
            ));
            // Ask for a picture we can start decoding from.
            self.request_key_frame(screen).await;
        } else {
            tokio::spawn(receive::read_audio(
                track,
                self.audio_in.clone(),
                self.counters.clone(),
            ));
        }
    }

    /// True when `track` came on the second video section of the remote
    /// description: the screen (PROTOCOL.md, "Screen sharing").
    async fn is_screen_track(&self, track: &Arc<dyn TrackRemote>) -> bool {
        let Some(p) = &self.peer else { return false };
        let mut mid = None;
        for t in p.pc.get_transceivers().await {
            let Ok(Some(receiver)) = t.receiver().await else {
                continue;
            };
            if std::ptr::addr_eq(Arc::as_ptr(receiver.track()), Arc::as_ptr(track)) {
                mid = t.mid().await.ok().flatten();
                break;
            }
        }
        let Some(mid) = mid else { return false };
        let Some(remote) = p.pc.remote_description().await else {
            return false;
        };
        super::screen::video_section_index(&remote.sdp, &mid) == Some(1)
    }

    async fn request_key_frame(&mut self, screen: bool) {
        let (last, remote) = if screen {
            (&mut self.last_screen_pli, &self.remote_screen)
        } else {
            (&mut self.last_pli, &self.remote_video)
        };
        if last.is_some_and(|t| t.elapsed() < PLI_SPACING) {
            return;
        }
        let Some((track, ssrc)) = remote else {
            return;
        };
        *last = Some(Instant::now());
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: *ssrc,
        };
        if track.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
            Counters::add(&self.counters.plis_sent, 1);
        }
    }

    async fn update_stats(&mut self) {
        self.counters.tick(Instant::now());
        let Some(p) = &self.peer else {
            self.counters.pause_grading();
            return;
        };
        let report = p.pc.get_stats(Instant::now(), StatsSelector::None).await;
        let rtt = report
            .candidate_pairs()
            .filter(|c| c.nominated && c.current_round_trip_time > 0.0)
            .map(|c| c.current_round_trip_time * 1000.0)
            .next();
        let (mut lost, mut received) = (0i64, 0u64);
        for s in report.inbound_rtp_streams() {
            lost += s.received_rtp_stream_stats.packets_lost;
            received += s.received_rtp_stream_stats.packets_received;
        }
        let pair = selected_pair(&report);
        // What the other side's receiver reports say of our packets.
        let remote_loss = report
            .iter()
            .filter_map(|e| match e {
                RTCStatsReportEntry::RemoteInboundRtp(r) => Some(r.fraction_lost),
                _ => None,
            })
            .reduce(f64::max);
        let codec = report
            .inbound_rtp_streams()
            .map(|s| &s.received_rtp_stream_stats.rtp_stream_stats)
            .filter(|s| s.kind == RtpCodecKind::Video)
            .find_map(|s| match report.get(&s.codec_id) {
                Some(RTCStatsReportEntry::Codec(c)) => Some(codec_name(&c.mime_type)),
                _ => None,
            });
        self.counters
            .grade(Instant::now(), rtt, lost.max(0) as u64, remote_loss);
        let mut live = self.counters.live.lock().expect("stats lock");
        if rtt.is_some() {
            live.rtt_ms = rtt;
        }
        if pair.is_some() {
            live.selected_pair = pair;
        }
        if codec.is_some() {
            live.video_codec = codec;
        }
        live.packets_lost = lost;
        let expected = received as i64 + lost.max(0);
        live.packet_loss = if expected > 0 {
            lost.max(0) as f64 / expected as f64
        } else {
            0.0
        };
    }
}

/// The candidate pair the transport selected (or, before it reports one,
/// the nominated pair), with both candidates' types.
fn selected_pair(report: &RTCStatsReport) -> Option<SelectedPair> {
    let by_id = report
        .transport()
        .map(|t| t.selected_candidate_pair_id.as_str())
        .filter(|id| !id.is_empty())
        .and_then(|id| report.candidate_pairs().find(|p| p.stats.id == id));
    let pair = by_id.or_else(|| report.candidate_pairs().find(|p| p.nominated))?;
    // rtc 0.21 names a pair's candidates by their ICE ids but files the
    // candidates' own entries under "RTC{Local,Remote}IceCandidate_<id>":
    // accept either.
    let candidate = |prefix: &str, id: &str| {
        [id.to_owned(), format!("{prefix}{id}")]
            .iter()
            .find_map(|id| match report.get(id) {
                Some(
                    RTCStatsReportEntry::LocalCandidate(c)
                    | RTCStatsReportEntry::RemoteCandidate(c),
                ) => Some(c),
                _ => None,
            })
    };
    let local = candidate("RTCLocalIceCandidate_", &pair.local_candidate_id)?;
    // Every candidate the other side signalled is in the report; one that
    // is not was learned from its checks: peer-reflexive.
    let remote_type = candidate("RTCRemoteIceCandidate_", &pair.remote_candidate_id)
        .map_or_else(|| "prflx".to_owned(), |c| c.candidate_type.to_string());
    Some(SelectedPair {
        local_type: local.candidate_type.to_string(),
        remote_type,
        protocol: local.protocol.clone(),
    })
}

/// `H264` from `video/H264`: the codec's name without its media type.
fn codec_name(mime_type: &str) -> String {
    mime_type
        .rsplit_once('/')
        .map_or(mime_type, |(_, name)| name)
        .to_owned()
}

/// A candidate of the other side as the peer connection takes it.
fn candidate_init(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_m_line_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}
