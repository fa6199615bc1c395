//! The run loop of a call: one task that owns the current peer connection
//! and reacts to signaling, peer connection events, user commands and a
//! timer. Negotiation follows "perfect negotiation" with the roles the
//! server assigns (see PROTOCOL.md, "Roles: who offers").

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    RTCIceCandidateInit, RTCPeerConnectionState, RTCSessionDescription, RTCStatsReport,
    RTCStatsReportEntry, StatsSelector,
};

use super::assemble::{Assembler, MAX_ACCESS_UNIT_BYTES};
use super::media::{self, DecodeQueue, Encoded, NotQueued, Outgoing, SendControl};
use super::peer::{self, Peer, PeerEvent, PeerSettings, rtc_err};
use super::stats::{ConnectionState, Counters, SelectedPair};
use super::{
    Call, CallEvent, CallEvents, CallOptions, Command, EVENT_QUEUE, EndReason, EventSender,
    SERVER_LOST_MEDIA_GRACE, Shared,
};
use crate::client::{SignalEvent, Signaling};
use crate::error::{Error, Result};
use crate::protocol::{ClientMessage, ErrorCode, IceCandidate, LeaveReason};

/// Candidates kept while waiting for a remote description.
const MAX_PENDING_CANDIDATES: usize = 200;
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
    if let Some(source) = options.video.take() {
        let (tx, rx) = mpsc::channel::<Encoded>(4);
        media::spawn_video_sender(
            source,
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
        media::spawn_audio_sender(source, audio_ctl.clone(), tx, events.clone())
            .map_err(spawn_err)?;
        tokio::spawn(media::write_loop(rx, audio_out_rx, counters.clone(), false));
    }

    // One pending key frame request stands for any number of them.
    let (pli_tx, pli_rx) = mpsc::channel(1);
    let (video_in_tx, video_in_rx) = DecodeQueue::new();
    let (audio_in_tx, audio_in_rx) = std_mpsc::sync_channel::<Vec<u8>>(AUDIO_DECODE_QUEUE);
    let video_thread = media::spawn_video_receiver(
        video_in_rx,
        std::mem::take(&mut options.video_sinks),
        counters.clone(),
        options
            .remote_frame_events
            .map(|every| (events.clone(), every)),
        pli_tx.clone(),
    )
    .map_err(spawn_err)?;
    let audio_thread = media::spawn_audio_receiver(
        audio_in_rx,
        std::mem::take(&mut options.audio_sinks),
        counters.clone(),
    )
    .map_err(spawn_err)?;

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
        audio_in: audio_in_tx,
        pli_tx,
        peer_tx,
        peer: None,
        generation: 0,
        polite: true,
        pending: Vec::new(),
        remote_video: None,
        last_pli: None,
        down_since: None,
        last_restart: None,
        state: ConnectionState::New,
        ice_restart_after: options.ice_restart_after,
        stats_interval: options.stats_interval,
        server_lost: None,
    };
    tokio::spawn(async move {
        let reason = engine
            .run(signal_events, peer_rx, commands_rx, pli_rx)
            .await;
        // The decoders end when their inputs close (the engine dropped
        // them); wait for them so files are complete before "ended".
        let _ = tokio::task::spawn_blocking(move || {
            let _ = video_thread.join();
            let _ = audio_thread.join();
        })
        .await;
        events.send_last(CallEvent::Ended { reason }).await;
        let _ = done_tx.send(true);
    });
    let call = Call {
        shared: Arc::new(Shared {
            commands: commands_tx,
            counters,
            video: video_ctl,
            audio: audio_ctl,
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
    audio_in: std_mpsc::SyncSender<Vec<u8>>,
    pli_tx: mpsc::Sender<()>,
    peer_tx: mpsc::UnboundedSender<(u64, PeerEvent)>,
    peer: Option<Peer>,
    generation: u64,
    polite: bool,
    pending: Vec<RTCIceCandidateInit>,
    remote_video: Option<(Arc<dyn TrackRemote>, u32)>,
    last_pli: Option<Instant>,
    down_since: Option<Instant>,
    last_restart: Option<Instant>,
    state: ConnectionState,
    ice_restart_after: Duration,
    stats_interval: Duration,
    /// Set once the signaling server is gone for good: what happened.
    server_lost: Option<String>,
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
    ) -> EndReason {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_stats = Instant::now();
        let reason = loop {
            tokio::select! {
                // Once the server is gone for good, nothing more comes here.
                ev = signal.recv(), if self.server_lost.is_none() => match ev {
                    Some(SignalEvent::Closed(None)) | None => break EndReason::HungUp,
                    Some(SignalEvent::Closed(Some(e))) => {
                        let Some(reason) = server_gone(&e) else {
                            break EndReason::Failed(e.to_string());
                        };
                        if self.state != ConnectionState::Connected {
                            break EndReason::Failed(format!("lost the webcall server ({reason})"));
                        }
                        // Media does not pass through the server: a
                        // one-to-one call can go on without it.
                        tracing::warn!("lost the webcall server ({reason}); the call goes on without it");
                        self.events.send(CallEvent::ServerLost { reason: reason.clone() });
                        self.server_lost = Some(reason);
                    }
                    Some(ev) => {
                        if let Err(e) = self.on_signal(ev).await {
                            tracing::warn!("{e}");
                        }
                    }
                },
                Some((generation, ev)) = peer_events.recv() => {
                    if generation == self.generation {
                        self.on_peer_event(ev).await;
                    }
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Hangup) | None => {
                        let _ = self.signaling.hangup().await;
                        break EndReason::HungUp;
                    }
                },
                Some(()) = plis.recv() => self.request_key_frame().await,
                _ = tick.tick() => {
                    if let Some(reason) = self.media_gone_without_server() {
                        break EndReason::Failed(reason);
                    }
                    self.on_tick().await;
                    if last_stats.elapsed() >= self.stats_interval {
                        last_stats = Instant::now();
                        self.update_stats().await;
                        self.events.send(CallEvent::Stats(Box::new(self.counters.snapshot())));
                    }
                }
            }
        };
        self.close_peer().await;
        self.counters.set_connection(ConnectionState::Closed);
        self.video_ctl.stop.store(true, Ordering::Relaxed);
        self.audio_ctl.stop.store(true, Ordering::Relaxed);
        reason
    }

    /// Without the server nothing can be renegotiated: once the media
    /// connection has been down for [`SERVER_LOST_MEDIA_GRACE`] (or is
    /// closed), the call is over. Returns why.
    fn media_gone_without_server(&self) -> Option<String> {
        let reason = self.server_lost.as_ref()?;
        let down_for = self.down_since.map(|t| t.elapsed()).unwrap_or_default();
        let gone = matches!(self.state, ConnectionState::Closed | ConnectionState::New)
            || down_for >= SERVER_LOST_MEDIA_GRACE;
        gone.then(|| {
            format!(
                "lost the webcall server ({reason}), then the media connection ({})",
                self.state
            )
        })
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.counters.set_connection(state);
            self.events.send(CallEvent::ConnectionState(state));
        }
    }

    async fn close_peer(&mut self) {
        self.video_out.send_replace(None);
        self.audio_out.send_replace(None);
        self.video_ctl.live.store(false, Ordering::Relaxed);
        self.audio_ctl.live.store(false, Ordering::Relaxed);
        self.remote_video = None;
        self.pending.clear();
        self.down_since = None;
        if let Some(p) = self.peer.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), p.pc.close()).await;
        }
    }

    /// Drops the current peer connection and builds a fresh one.
    async fn reset_peer(&mut self) -> Result<()> {
        self.close_peer().await;
        self.generation += 1;
        let p = peer::build(&self.settings, self.generation, self.peer_tx.clone()).await?;
        self.peer = Some(p);
        Ok(())
    }

    async fn ensure_peer(&mut self) -> Result<()> {
        if self.peer.is_none() {
            self.reset_peer().await?;
        }
        Ok(())
    }

    async fn make_offer(&mut self) -> Result<()> {
        let Some(p) = &self.peer else { return Ok(()) };
        let offer =
            p.pc.create_offer(None)
                .await
                .map_err(rtc_err("creating an offer"))?;
        p.pc.set_local_description(offer)
            .await
            .map_err(rtc_err("applying our offer"))?;
        if let Some(local) = p.pc.local_description().await {
            self.signaling.send(ClientMessage::Offer { sdp: local.sdp });
        }
        if self.state == ConnectionState::New {
            self.set_state(ConnectionState::Connecting);
        }
        Ok(())
    }

    async fn on_signal(&mut self, ev: SignalEvent) -> Result<()> {
        match ev {
            SignalEvent::Joined(j) => {
                self.polite = j.polite;
                if !self.ice_servers_override {
                    self.settings.ice_servers = j.ice_servers.clone();
                }
                self.settings.policy = j.ice_transport_policy;
                self.events.send(CallEvent::Joined {
                    you: j.you.clone(),
                    peer: j.peer.clone(),
                    initiator: j.initiator,
                });
                if j.resumed && j.peer.is_some() && self.has_negotiated_peer().await {
                    // Back in our own seat after a signaling hiccup, with the
                    // peer connection still ours: keep it. Restart ICE only
                    // if it is not up (we are the impolite side now).
                    self.events.send(CallEvent::ConnectionState(self.state));
                    if self.state != ConnectionState::Connected {
                        self.restart_ice_now().await;
                    }
                } else if j.initiator {
                    // Whatever we had belongs to an earlier negotiation.
                    self.reset_peer().await?;
                    self.make_offer().await?;
                } else {
                    // Ready before the offer arrives: building takes a while.
                    self.ensure_peer().await?;
                }
            }
            SignalEvent::PeerJoined { peer, resumed } => {
                self.polite = true;
                self.events.send(CallEvent::PeerJoined { peer, resumed });
                if resumed && self.has_negotiated_peer().await {
                    // They came back to their seat. If they kept their peer
                    // connection, media goes on (they restart ICE if it is
                    // down); if they start afresh (a reloaded page), their
                    // offer names a new connection and `on_offer` replaces ours.
                    self.events.send(CallEvent::ConnectionState(self.state));
                    return Ok(());
                }
                self.set_state(ConnectionState::New);
                // A fresh connection, built now so the offer finds it ready.
                self.reset_peer().await?;
            }
            SignalEvent::PeerLeft { peer, reason } => {
                self.events.send(CallEvent::PeerLeft { peer, reason });
                if reason == LeaveReason::Disconnected && self.state == ConnectionState::Connected {
                    // They lost the server (or the server is going away),
                    // not necessarily the call: media is peer-to-peer and
                    // may go on. If they come back, `peer_joined` starts
                    // afresh.
                    return Ok(());
                }
                self.close_peer().await;
                self.set_state(ConnectionState::New);
            }
            SignalEvent::Offer(sdp) => self.on_offer(sdp).await?,
            SignalEvent::Answer(sdp) => {
                let Some(p) = &self.peer else { return Ok(()) };
                if p.pc.pending_local_description().await.is_none() {
                    tracing::debug!("ignoring an answer without an offer of ours");
                    return Ok(());
                }
                let desc =
                    RTCSessionDescription::answer(sdp).map_err(rtc_err("reading the answer"))?;
                p.pc.set_remote_description(desc)
                    .await
                    .map_err(rtc_err("applying the answer"))?;
                self.flush_candidates().await;
            }
            SignalEvent::Candidate(Some(c)) => {
                let init = RTCIceCandidateInit {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_m_line_index,
                    username_fragment: c.username_fragment,
                    ..Default::default()
                };
                match &self.peer {
                    Some(p) if p.pc.remote_description().await.is_some() => {
                        if let Err(e) = p.pc.add_ice_candidate(init).await {
                            tracing::debug!("a remote candidate was refused: {e}");
                        }
                    }
                    _ if self.pending.len() < MAX_PENDING_CANDIDATES => self.pending.push(init),
                    _ => {}
                }
            }
            SignalEvent::Candidate(None) => {}
            SignalEvent::Reconnecting => self.events.send(CallEvent::Reconnecting),
            SignalEvent::PeerReconnecting { peer, leaving } => {
                // Their seat is held: keep the connection and its media,
                // unless they said they are going away (a page closing or
                // reloading takes its connection with it): then their return
                // starts a fresh one without tearing ours down first.
                self.events.send(CallEvent::PeerReconnecting { peer });
                if leaving {
                    self.close_peer().await;
                    self.set_state(ConnectionState::New);
                }
            }
            SignalEvent::ServerError(e) => tracing::debug!("server: {} ({})", e.message, e.code),
            SignalEvent::Closed(_) => {}
        }
        Ok(())
    }

    async fn on_offer(&mut self, sdp: String) -> Result<()> {
        if let Some(p) = &self.peer
            && let Some(current) = p.pc.remote_description().await
            && fingerprint(&current.sdp) != fingerprint(&sdp)
        {
            // An offer from a new peer connection (the other side reloaded
            // and came back to its seat): ours belongs to the old one.
            tracing::info!("the other side started a new connection; replacing ours");
            self.set_state(ConnectionState::New);
            self.reset_peer().await?;
        }
        self.ensure_peer().await?;
        let Some(p) = &self.peer else { return Ok(()) };
        let collision = p.pc.pending_local_description().await.is_some();
        if collision && !self.polite {
            tracing::debug!("ignoring a colliding offer (we are the impolite side)");
            return Ok(());
        }
        let offer = RTCSessionDescription::offer(sdp).map_err(rtc_err("reading the offer"))?;
        if collision {
            let rollback = RTCSessionDescription::rollback(None).map_err(rtc_err("rollback"))?;
            if p.pc.set_local_description(rollback).await.is_err() {
                // No rollback: start over with a fresh connection.
                self.reset_peer().await?;
            }
        }
        let Some(p) = &self.peer else { return Ok(()) };
        p.pc.set_remote_description(offer)
            .await
            .map_err(rtc_err("applying the offer"))?;
        let answer =
            p.pc.create_answer(None)
                .await
                .map_err(rtc_err("creating an answer"))?;
        p.pc.set_local_description(answer)
            .await
            .map_err(rtc_err("applying our answer"))?;
        if let Some(local) = p.pc.local_description().await {
            self.signaling
                .send(ClientMessage::Answer { sdp: local.sdp });
        }
        if self.state == ConnectionState::New {
            self.set_state(ConnectionState::Connecting);
        }
        self.flush_candidates().await;
        Ok(())
    }

    /// True when a peer connection exists and has been negotiated (it has
    /// a remote description): one worth keeping across a reconnect.
    async fn has_negotiated_peer(&self) -> bool {
        match &self.peer {
            Some(p) => p.pc.remote_description().await.is_some(),
            None => false,
        }
    }

    /// Restarts ICE on the current connection and offers.
    async fn restart_ice_now(&mut self) {
        self.last_restart = Some(Instant::now());
        let Some(p) = &self.peer else { return };
        if let Err(e) = p.pc.restart_ice().await {
            tracing::warn!("ICE restart: {e}");
            return;
        }
        if let Err(e) = self.make_offer().await {
            tracing::warn!("ICE restart offer: {e}");
        }
    }

    async fn flush_candidates(&mut self) {
        let Some(p) = &self.peer else { return };
        for c in std::mem::take(&mut self.pending) {
            if let Err(e) = p.pc.add_ice_candidate(c).await {
                tracing::debug!("a buffered candidate was refused: {e}");
            }
        }
    }

    async fn on_peer_event(&mut self, ev: PeerEvent) {
        match ev {
            PeerEvent::Candidate(c) => self.signaling.send(ClientMessage::Candidate {
                candidate: Some(IceCandidate { ..c }),
            }),
            PeerEvent::State(s) => self.on_state(s).await,
            PeerEvent::Track(track) => self.on_track(track).await,
        }
    }

    async fn on_state(&mut self, s: RTCPeerConnectionState) {
        let state = match s {
            RTCPeerConnectionState::Connected => ConnectionState::Connected,
            RTCPeerConnectionState::Connecting => ConnectionState::Connecting,
            RTCPeerConnectionState::Disconnected => ConnectionState::Disconnected,
            RTCPeerConnectionState::Failed => ConnectionState::Failed,
            RTCPeerConnectionState::Closed => ConnectionState::Closed,
            _ => return,
        };
        self.set_state(state);
        match state {
            ConnectionState::Connected => {
                self.down_since = None;
                self.counters.mark_once(&self.counters.connected_ms);
                self.publish_outgoing().await;
            }
            ConnectionState::Disconnected | ConnectionState::Failed => {
                self.down_since.get_or_insert_with(Instant::now);
            }
            _ => {}
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
            tokio::spawn(watch_key_frame_requests(
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
            self.remote_video = Some((track.clone(), ssrc));
            tokio::spawn(read_video(
                track,
                self.video_in.clone(),
                self.pli_tx.clone(),
                self.counters.clone(),
            ));
            // Ask for a picture we can start decoding from.
            self.last_pli = None;
            self.request_key_frame().await;
        } else {
            tokio::spawn(read_audio(
                track,
                self.audio_in.clone(),
                self.counters.clone(),
            ));
        }
    }

    async fn request_key_frame(&mut self) {
        if self.last_pli.is_some_and(|t| t.elapsed() < PLI_SPACING) {
            return;
        }
        let Some((track, ssrc)) = &self.remote_video else {
            return;
        };
        self.last_pli = Some(Instant::now());
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: *ssrc,
        };
        if track.write_rtcp(vec![Box::new(pli)]).await.is_ok() {
            Counters::add(&self.counters.plis_sent, 1);
        }
    }

    async fn on_tick(&mut self) {
        // The impolite side restarts ICE when the connection stays down.
        let Some(since) = self.down_since else { return };
        if self.polite || since.elapsed() < self.ice_restart_after {
            return;
        }
        if self
            .last_restart
            .is_some_and(|t| t.elapsed() < self.ice_restart_after * 2)
        {
            return;
        }
        tracing::info!(
            "media connection down for {:?}: restarting ICE",
            since.elapsed()
        );
        self.restart_ice_now().await;
    }

    async fn update_stats(&mut self) {
        self.counters.tick(Instant::now());
        let Some(p) = &self.peer else { return };
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
        let mut live = self.counters.live.lock().expect("stats lock");
        if rtt.is_some() {
            live.rtt_ms = rtt;
        }
        if pair.is_some() {
            live.selected_pair = pair;
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

/// The DTLS certificate fingerprint an SDP names: the same for every offer
/// of one peer connection, different for a new one.
fn fingerprint(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=fingerprint:"))
}

/// When `e` means the signaling server itself went away (it shut down, or
/// stayed unreachable), what happened in words. Other fatal errors (the
/// room expired, the seat was taken over) end the call.
fn server_gone(e: &Error) -> Option<String> {
    match e {
        Error::Server {
            code: Some(ErrorCode::Unavailable),
            ..
        } => Some("the server shut down".to_owned()),
        Error::Unreachable { .. } => Some(e.to_string()),
        _ => None,
    }
}

/// Marks a key frame as wanted whenever the far side asks for one.
async fn watch_key_frame_requests(
    track: Arc<webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample>,
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
async fn read_video(
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
async fn read_audio(
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

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_tell_a_new_connection_from_a_renegotiation() {
        let first = "v=0\r\na=ice-ufrag:aaaa\r\na=fingerprint:sha-256 AB:CD\r\nm=audio 9\r\na=fingerprint:sha-256 AB:CD\r\n";
        let restart = "v=0\r\na=ice-ufrag:bbbb\r\na=fingerprint:sha-256 AB:CD\r\n";
        let fresh = "v=0\r\na=ice-ufrag:cccc\r\na=fingerprint:sha-256 EF:01\r\n";
        assert_eq!(fingerprint(first), Some("sha-256 AB:CD"));
        assert_eq!(fingerprint(first), fingerprint(restart));
        assert_ne!(fingerprint(first), fingerprint(fresh));
        assert_eq!(fingerprint("v=0\r\n"), None);
    }
}
