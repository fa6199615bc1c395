//! Negotiating the call's peer connection, as a state machine: no peer
//! connection, no sockets, no clock.
//!
//! The [`Negotiator`] follows "perfect negotiation" with the roles the
//! server assigns (PROTOCOL.md, "Roles: who offers"). Its edge, the call
//! engine, feeds it what happened — a signaling event, a change of the
//! peer connection's state, the outcome of a command it carried out, the
//! time — and carries out the [`Output`]s it polls, in order: build or
//! close the peer connection, create an offer, apply the other side's
//! descriptions, add candidates, send messages, report events, end the
//! call. A command that succeeds is answered with the fact it names
//! ([`Negotiator::peer_built`], [`Negotiator::offer_created`], ...); one
//! that fails is only logged, and what depended on it does not happen.
//!
//! The negotiator owns the rules: the polite or impolite role; glare (two
//! offers crossing: the impolite side ignores theirs, the polite side
//! rolls its own back); candidates that arrive before their description
//! (buffered, at most [`MAX_PENDING_CANDIDATES`]); telling an offer from a
//! new peer connection (a reloaded page) from a renegotiation by its DTLS
//! fingerprint; restarting ICE when the media connection stays down (the
//! impolite side, after `ice_restart_after`, not again within twice that);
//! and going on without the signaling server for at most
//! [`SERVER_LOST_MEDIA_GRACE`] of media downtime.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use webcall_core::call::ConnectionState;
//! use webcall_core::call::negotiator::{Negotiator, Output};
//! use webcall_core::client::SignalEvent;
//! use webcall_core::protocol::ClientMessage;
//!
//! let now = Instant::now();
//! let mut n = Negotiator::new(Duration::from_secs(3));
//! // The other participant arrives: get a peer connection ready for its offer.
//! let peer = "00000000000000aa".parse()?;
//! n.signal(now, SignalEvent::PeerJoined { peer, resumed: false });
//! assert!(matches!(n.poll_output(), Some(Output::Event(_))));
//! assert!(matches!(n.poll_output(), Some(Output::BuildPeer)));
//! n.peer_built();
//! // Their offer: apply it, then answer.
//! n.signal(now, SignalEvent::Offer("v=0\r\na=fingerprint:sha-256 AA\r\n".into()));
//! let Some(Output::ApplyOffer(sdp)) = n.poll_output() else { panic!() };
//! n.offer_applied(&sdp);
//! assert!(matches!(n.poll_output(), Some(Output::CreateAnswer)));
//! n.answer_created("v=0\r\na=fingerprint:sha-256 BB\r\n".into());
//! assert!(matches!(n.poll_output(), Some(Output::Send(ClientMessage::Answer { .. }))));
//! assert!(matches!(n.poll_output(), Some(Output::State(ConnectionState::Connecting))));
//! assert!(n.poll_output().is_none());
//! # Ok::<(), webcall_core::Error>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CallEvent, ConnectionState, EndReason, SERVER_LOST_MEDIA_GRACE};
use crate::client::SignalEvent;
use crate::error::Error;
use crate::protocol::{ClientMessage, ErrorCode, IceCandidate, LeaveReason};

/// Candidates of the other side kept while waiting for a remote
/// description; later ones are dropped.
pub const MAX_PENDING_CANDIDATES: usize = 200;

/// How long an offer may wait for its answer before it is made again (as
/// an ICE restart): the recovery from a signaling message lost on the way.
pub const OFFER_STALL: Duration = Duration::from_secs(8);

/// What the edge must do, in the order polled.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Send this message to the other participant (through the server).
    Send(ClientMessage),
    /// Hand this event to the application. A change of the media
    /// connection's state comes as [`Output::State`] instead.
    Event(CallEvent),
    /// The media connection's state changed: record it and tell the
    /// application ([`CallEvent::ConnectionState`]).
    State(ConnectionState),
    /// Close the current peer connection (if any) and build a fresh one;
    /// then report [`Negotiator::peer_built`].
    BuildPeer,
    /// Close the current peer connection and stop sending media.
    ClosePeer,
    /// Create an offer and apply it as the local description, after
    /// restarting ICE if `ice_restart`; then report
    /// [`Negotiator::offer_created`] with the local description.
    CreateOffer {
        /// Restart ICE first (new credentials, new candidates).
        ice_restart: bool,
    },
    /// Roll our unanswered offer back; then report
    /// [`Negotiator::rolled_back`] with whether that worked.
    Rollback,
    /// Apply this offer as the remote description; then report
    /// [`Negotiator::offer_applied`].
    ApplyOffer(String),
    /// Create an answer and apply it as the local description; then report
    /// [`Negotiator::answer_created`] with the local description.
    CreateAnswer,
    /// Apply this answer as the remote description; then report
    /// [`Negotiator::answer_applied`].
    ApplyAnswer(String),
    /// Add this candidate of the other side to the peer connection.
    AddCandidate(IceCandidate),
    /// Add these candidates of the other side, kept until the remote
    /// description was set.
    FlushCandidates(Vec<IceCandidate>),
    /// The media connection is up: send media on its tracks.
    PublishOutgoing,
    /// The call is over; nothing follows.
    End(EndReason),
}

/// A short description for logs and tests, such as `send offer`,
/// `apply answer` or `state connected`; SDP and candidates are left out.
impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send(m) => f.write_str(match m {
                ClientMessage::Join { .. } => "send join",
                ClientMessage::Offer { .. } => "send offer",
                ClientMessage::Answer { .. } => "send answer",
                ClientMessage::Candidate { .. } => "send candidate",
                ClientMessage::Bye => "send bye",
                ClientMessage::Leaving => "send leaving",
            }),
            Self::Event(e) => match e {
                CallEvent::Joined { .. } => f.write_str("event joined"),
                CallEvent::PeerJoined { .. } => f.write_str("event peer joined"),
                CallEvent::PeerReconnecting { .. } => f.write_str("event peer reconnecting"),
                CallEvent::PeerLeft { .. } => f.write_str("event peer left"),
                CallEvent::ConnectionState(s) => write!(f, "event state {s}"),
                CallEvent::Reconnecting => f.write_str("event reconnecting"),
                CallEvent::ServerLost { .. } => f.write_str("event server lost"),
                other => write!(f, "event {other:?}"),
            },
            Self::State(s) => write!(f, "state {s}"),
            Self::BuildPeer => f.write_str("build peer"),
            Self::ClosePeer => f.write_str("close peer"),
            Self::CreateOffer { ice_restart: false } => f.write_str("create offer"),
            Self::CreateOffer { ice_restart: true } => f.write_str("restart ice"),
            Self::Rollback => f.write_str("rollback"),
            Self::ApplyOffer(_) => f.write_str("apply offer"),
            Self::CreateAnswer => f.write_str("create answer"),
            Self::ApplyAnswer(_) => f.write_str("apply answer"),
            Self::AddCandidate(_) => f.write_str("add candidate"),
            Self::FlushCandidates(c) => write!(f, "flush {} candidates", c.len()),
            Self::PublishOutgoing => f.write_str("publish"),
            Self::End(EndReason::HungUp) => f.write_str("end: hung up"),
            Self::End(EndReason::Failed(why)) => write!(f, "end: {why}"),
        }
    }
}

/// What to do once the peer connection being built is ready.
#[derive(Debug)]
enum AfterBuild {
    Nothing,
    MakeOffer,
    TakeOffer(String),
}

/// What the negotiator knows about the current peer connection.
#[derive(Debug, Default)]
struct PeerView {
    /// Our offer is applied and waits for its answer ("have-local-offer").
    offering: bool,
    /// Since when (as first seen by `tick`) our offer waits for an answer.
    offering_since: Option<Instant>,
    /// A remote description has been applied.
    negotiated: bool,
    /// The DTLS fingerprint the remote description names.
    remote_fingerprint: Option<String>,
}

/// The negotiation of one call's peer connection. See the module
/// documentation.
#[derive(Debug)]
pub struct Negotiator {
    ice_restart_after: Duration,
    polite: bool,
    /// `None` while there is no peer connection (or one is being built).
    peer: Option<PeerView>,
    after_build: AfterBuild,
    /// The offer waiting for our own offer's rollback.
    after_rollback: Option<String>,
    /// Candidates of the other side waiting for a remote description.
    pending: Vec<IceCandidate>,
    state: ConnectionState,
    /// Since when the media connection is down (disconnected or failed).
    down_since: Option<Instant>,
    last_restart: Option<Instant>,
    /// Set once the signaling server is gone for good: what happened, in
    /// words and as the error.
    server_lost: Option<(String, Error)>,
    ended: bool,
    out: VecDeque<Output>,
}

impl Negotiator {
    /// A negotiator with no peer connection yet. `ice_restart_after`: how
    /// long the media connection may stay down before the impolite side
    /// restarts ICE.
    pub fn new(ice_restart_after: Duration) -> Self {
        Self {
            ice_restart_after,
            polite: true,
            peer: None,
            after_build: AfterBuild::Nothing,
            after_rollback: None,
            pending: Vec::new(),
            state: ConnectionState::New,
            down_since: None,
            last_restart: None,
            server_lost: None,
            ended: false,
            out: VecDeque::new(),
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The media connection's state as last reported.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// True while we are the polite side (we yield when offers cross).
    pub fn is_polite(&self) -> bool {
        self.polite
    }

    /// How many candidates of the other side wait for a remote description.
    pub fn pending_candidates(&self) -> usize {
        self.pending.len()
    }

    /// True once [`Output::End`] has been emitted.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// False once the signaling server is gone for good (or the call
    /// ended): no more signaling events are expected.
    pub fn listens_to_signaling(&self) -> bool {
        !self.ended && self.server_lost.is_none()
    }

    /// Something came from the signaling session.
    pub fn signal(&mut self, now: Instant, event: SignalEvent) {
        if !self.listens_to_signaling() {
            return;
        }
        match event {
            SignalEvent::Joined(j) => {
                self.polite = j.polite;
                self.emit(Output::Event(CallEvent::Joined {
                    you: j.you,
                    peer: j.peer.clone(),
                    initiator: j.initiator,
                }));
                if j.resumed && j.peer.is_some() && self.has_negotiated_peer() {
                    // Back in our own seat after a signaling hiccup, with the
                    // peer connection still ours: keep it. Restart ICE only
                    // if it is not up (we are the impolite side now).
                    self.emit(Output::Event(CallEvent::ConnectionState(self.state)));
                    if self.state != ConnectionState::Connected {
                        self.restart_ice(now);
                    }
                } else if j.initiator {
                    // Whatever we had belongs to an earlier negotiation.
                    self.build_peer(AfterBuild::MakeOffer);
                } else if self.peer.is_none() {
                    // Ready before the offer arrives: building takes a while.
                    self.build_peer(AfterBuild::Nothing);
                }
            }
            SignalEvent::PeerJoined { peer, resumed } => {
                self.polite = true;
                self.emit(Output::Event(CallEvent::PeerJoined { peer, resumed }));
                if resumed && self.has_negotiated_peer() {
                    // They came back to their seat. If they kept their peer
                    // connection, media goes on (they restart ICE if it is
                    // down); if they start afresh (a reloaded page), their
                    // offer names a new connection and replaces ours.
                    self.emit(Output::Event(CallEvent::ConnectionState(self.state)));
                    return;
                }
                self.set_state(ConnectionState::New);
                // A fresh connection, built now so the offer finds it ready.
                self.build_peer(AfterBuild::Nothing);
            }
            SignalEvent::PeerLeft { peer, reason } => {
                self.emit(Output::Event(CallEvent::PeerLeft { peer, reason }));
                if reason == LeaveReason::Disconnected && self.state == ConnectionState::Connected {
                    // They lost the server (or the server is going away),
                    // not necessarily the call: media is peer-to-peer and
                    // may go on. If they come back, `peer_joined` starts
                    // afresh.
                    return;
                }
                self.close_peer();
                self.set_state(ConnectionState::New);
            }
            SignalEvent::PeerReconnecting { peer, leaving } => {
                // Their seat is held: keep the connection and its media,
                // unless they said they are going away (a page closing or
                // reloading takes its connection with it): then their return
                // starts a fresh one without tearing ours down first.
                self.emit(Output::Event(CallEvent::PeerReconnecting { peer }));
                if leaving {
                    self.close_peer();
                    self.set_state(ConnectionState::New);
                }
            }
            SignalEvent::Offer(sdp) => self.on_offer(sdp),
            SignalEvent::Answer(sdp) => match &self.peer {
                Some(p) if p.offering => self.emit(Output::ApplyAnswer(sdp)),
                Some(_) => tracing::debug!("ignoring an answer without an offer of ours"),
                None => {}
            },
            SignalEvent::Candidate(Some(c)) => match &self.peer {
                Some(p) if p.negotiated => self.emit(Output::AddCandidate(c)),
                _ if self.pending.len() < MAX_PENDING_CANDIDATES => self.pending.push(c),
                _ => {}
            },
            SignalEvent::Candidate(None) => {}
            SignalEvent::Reconnecting => self.emit(Output::Event(CallEvent::Reconnecting)),
            SignalEvent::ServerError(e) => tracing::debug!("server: {} ({})", e.message, e.code),
            SignalEvent::Closed(None) => self.end(EndReason::HungUp),
            SignalEvent::Closed(Some(e)) => {
                let Some(reason) = server_gone(&e) else {
                    return self.end(EndReason::Failed(Arc::new(e)));
                };
                if self.state != ConnectionState::Connected {
                    return self.end(EndReason::Failed(Arc::new(Error::ServerLost {
                        reason,
                        media: None,
                        source: Box::new(e),
                    })));
                }
                // Media does not pass through the server: a one-to-one
                // call can go on without it.
                tracing::warn!("lost the webcall server ({reason}); the call goes on without it");
                self.emit(Output::Event(CallEvent::ServerLost {
                    reason: reason.clone(),
                }));
                self.server_lost = Some((reason, e));
            }
        }
    }

    /// The peer connection reported a new state (its own states `new` and
    /// `unspecified` are not reported).
    pub fn peer_state(&mut self, now: Instant, state: ConnectionState) {
        if self.ended {
            return;
        }
        self.set_state(state);
        match state {
            ConnectionState::Connected => {
                self.down_since = None;
                self.emit(Output::PublishOutgoing);
            }
            ConnectionState::Disconnected | ConnectionState::Failed => {
                self.down_since.get_or_insert(now);
            }
            _ => {}
        }
    }

    /// The peer connection gathered a candidate: the other side needs it.
    pub fn local_candidate(&mut self, candidate: IceCandidate) {
        if !self.ended {
            self.emit(Output::Send(ClientMessage::Candidate {
                candidate: Some(candidate),
            }));
        }
    }

    /// The user hung up (the edge has said `bye`).
    pub fn hang_up(&mut self) {
        if !self.ended {
            self.end(EndReason::HungUp);
        }
    }

    /// The time is `now`: ends a call that lost both the server and its
    /// media connection, and restarts ICE on a connection that stays down.
    /// Call it a few times a second.
    pub fn tick(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        if self.server_lost.is_some() {
            // Without the server nothing can be renegotiated: once the media
            // connection has been down for the grace period (or is closed),
            // the call is over.
            let down_for = self
                .down_since
                .map(|t| now.saturating_duration_since(t))
                .unwrap_or_default();
            if matches!(self.state, ConnectionState::Closed | ConnectionState::New)
                || down_for >= SERVER_LOST_MEDIA_GRACE
            {
                let (reason, e) = self.server_lost.take().expect("checked above");
                let why = Error::ServerLost {
                    reason,
                    media: Some(self.state.to_string()),
                    source: Box::new(e),
                };
                return self.end(EndReason::Failed(Arc::new(why)));
            }
        }
        // Signaling is at most once (a message can be lost when a server
        // restarts or its store reconnects): an offer that waits this long
        // for its answer is made again, as an ICE restart.
        if self.server_lost.is_none()
            && let Some(p) = &mut self.peer
        {
            if !p.offering {
                p.offering_since = None;
            } else if now.saturating_duration_since(*p.offering_since.get_or_insert(now))
                >= OFFER_STALL
            {
                p.offering_since = Some(now);
                tracing::info!("no answer to our offer for {OFFER_STALL:?}: offering again");
                return self.restart_ice(now);
            }
        }
        // The impolite side restarts ICE when the connection stays down.
        let Some(since) = self.down_since else { return };
        let down_for = now.saturating_duration_since(since);
        if self.polite || down_for < self.ice_restart_after {
            return;
        }
        if self
            .last_restart
            .is_some_and(|t| now.saturating_duration_since(t) < self.ice_restart_after * 2)
        {
            return;
        }
        tracing::info!("media connection down for {down_for:?}: restarting ICE");
        self.restart_ice(now);
    }

    /// Fact: the peer connection asked for by [`Output::BuildPeer`] is ready.
    pub fn peer_built(&mut self) {
        self.peer = Some(PeerView::default());
        match std::mem::replace(&mut self.after_build, AfterBuild::Nothing) {
            AfterBuild::Nothing => {}
            AfterBuild::MakeOffer => self.emit(Output::CreateOffer { ice_restart: false }),
            AfterBuild::TakeOffer(sdp) => self.take_offer(sdp),
        }
    }

    /// Fact: our offer (`sdp`, the local description) is applied.
    pub fn offer_created(&mut self, sdp: String) {
        let Some(p) = &mut self.peer else { return };
        p.offering = true;
        self.emit(Output::Send(ClientMessage::Offer { sdp }));
        if self.state == ConnectionState::New {
            self.set_state(ConnectionState::Connecting);
        }
    }

    /// Fact: the rollback asked for by [`Output::Rollback`] worked (`ok`)
    /// or not; without one, the offer is taken on a fresh connection.
    pub fn rolled_back(&mut self, ok: bool) {
        let Some(sdp) = self.after_rollback.take() else {
            return;
        };
        if !ok {
            return self.build_peer(AfterBuild::TakeOffer(sdp));
        }
        if let Some(p) = &mut self.peer {
            p.offering = false;
        }
        self.emit(Output::ApplyOffer(sdp));
    }

    /// Fact: their offer `sdp` is the remote description now.
    pub fn offer_applied(&mut self, sdp: &str) {
        self.remote_applied(sdp);
        self.emit(Output::CreateAnswer);
    }

    /// Fact: our answer (`sdp`, the local description) is applied.
    pub fn answer_created(&mut self, sdp: String) {
        self.emit(Output::Send(ClientMessage::Answer { sdp }));
        if self.state == ConnectionState::New {
            self.set_state(ConnectionState::Connecting);
        }
        self.flush_candidates();
    }

    /// Fact: their answer `sdp` is the remote description now.
    pub fn answer_applied(&mut self, sdp: &str) {
        if let Some(p) = &mut self.peer {
            p.offering = false;
        }
        self.remote_applied(sdp);
        self.flush_candidates();
    }

    fn remote_applied(&mut self, sdp: &str) {
        if let Some(p) = &mut self.peer {
            p.negotiated = true;
            p.remote_fingerprint = fingerprint(sdp).map(str::to_owned);
        }
    }

    fn on_offer(&mut self, sdp: String) {
        if let Some(p) = &self.peer
            && p.negotiated
            && p.remote_fingerprint.as_deref() != fingerprint(&sdp)
        {
            // An offer from a new peer connection (the other side reloaded
            // and came back to its seat): ours belongs to the old one.
            tracing::info!("the other side started a new connection; replacing ours");
            self.set_state(ConnectionState::New);
            return self.build_peer(AfterBuild::TakeOffer(sdp));
        }
        if self.peer.is_none() {
            return self.build_peer(AfterBuild::TakeOffer(sdp));
        }
        self.take_offer(sdp);
    }

    /// Their offer, with a peer connection ready: perfect negotiation.
    fn take_offer(&mut self, sdp: String) {
        let Some(p) = &self.peer else { return };
        if !p.offering {
            return self.emit(Output::ApplyOffer(sdp));
        }
        if !self.polite {
            tracing::debug!("ignoring a colliding offer (we are the impolite side)");
            return;
        }
        self.after_rollback = Some(sdp);
        self.emit(Output::Rollback);
    }

    fn has_negotiated_peer(&self) -> bool {
        self.peer.as_ref().is_some_and(|p| p.negotiated)
    }

    fn restart_ice(&mut self, now: Instant) {
        self.last_restart = Some(now);
        if self.peer.is_some() {
            self.emit(Output::CreateOffer { ice_restart: true });
        }
    }

    fn build_peer(&mut self, then: AfterBuild) {
        self.forget_peer();
        self.after_build = then;
        self.emit(Output::BuildPeer);
    }

    fn close_peer(&mut self) {
        self.forget_peer();
        self.emit(Output::ClosePeer);
    }

    /// What belonged to the current peer connection goes with it.
    fn forget_peer(&mut self) {
        self.peer = None;
        self.after_rollback = None;
        self.pending.clear();
        self.down_since = None;
    }

    fn flush_candidates(&mut self) {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.emit(Output::FlushCandidates(pending));
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.emit(Output::State(state));
        }
    }

    fn end(&mut self, reason: EndReason) {
        self.emit(Output::End(reason));
        self.ended = true;
    }

    /// Queues an output; nothing follows [`Output::End`].
    fn emit(&mut self, output: Output) {
        if !self.ended {
            self.out.push_back(output);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{IceTransportPolicy, Joined};
    use crate::time::Timestamp;
    use crate::token::{ParticipantId, ResumeToken};

    const RESTART: Duration = Duration::from_secs(3);

    /// The outputs waiting, described.
    fn drain(n: &mut Negotiator) -> Vec<String> {
        std::iter::from_fn(|| n.poll_output())
            .map(|o| o.to_string())
            .collect()
    }

    /// A description naming a peer connection by its fingerprint.
    fn sdp(fingerprint: &str) -> String {
        format!("v=0\r\na=ice-ufrag:u\r\na=fingerprint:sha-256 {fingerprint}\r\n")
    }

    fn them() -> ParticipantId {
        "00000000000000bb".parse().unwrap()
    }

    fn candidate(n: usize) -> IceCandidate {
        IceCandidate {
            candidate: format!("candidate:{n} 1 udp 1 127.0.0.1 {n} typ host"),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }
    }

    /// `joined` as the room sends it: the second to arrive offers and is
    /// the impolite side.
    fn joined(second: bool, resumed: bool) -> SignalEvent {
        SignalEvent::Joined(Joined {
            version: 1,
            you: "00000000000000aa".parse().unwrap(),
            resume: ResumeToken::generate().unwrap(),
            resumed,
            peer: second.then(them),
            initiator: second,
            polite: !second,
            ice_servers: vec![],
            ice_transport_policy: IceTransportPolicy::All,
            capacity: 2,
            expires_at: Timestamp::from_unix_millis(0),
        })
    }

    /// The second to arrive, its offer answered and the connection up.
    fn connected_offerer(t0: Instant) -> Negotiator {
        let mut n = Negotiator::new(RESTART);
        n.signal(t0, joined(true, false));
        n.peer_built();
        n.offer_created(sdp("OURS"));
        n.signal(t0, SignalEvent::Answer(sdp("THEIRS")));
        n.answer_applied(&sdp("THEIRS"));
        n.peer_state(t0, ConnectionState::Connected);
        drain(&mut n);
        n
    }

    /// The first to arrive, the offer of the second answered and the
    /// connection up.
    fn connected_answerer(t0: Instant) -> Negotiator {
        let mut n = Negotiator::new(RESTART);
        n.signal(t0, joined(false, false));
        n.peer_built();
        n.signal(
            t0,
            SignalEvent::PeerJoined {
                peer: them(),
                resumed: false,
            },
        );
        n.peer_built();
        n.signal(t0, SignalEvent::Offer(sdp("THEIRS")));
        n.offer_applied(&sdp("THEIRS"));
        n.answer_created(sdp("OURS"));
        n.peer_state(t0, ConnectionState::Connected);
        drain(&mut n);
        n
    }

    #[test]
    fn the_second_to_arrive_offers_and_the_first_answers() {
        let t0 = Instant::now();
        let mut a = Negotiator::new(RESTART);
        a.signal(t0, joined(false, false));
        assert_eq!(drain(&mut a), ["event joined", "build peer"]);
        assert!(a.is_polite());

        let mut b = Negotiator::new(RESTART);
        b.signal(t0, joined(true, false));
        assert_eq!(drain(&mut b), ["event joined", "build peer"]);
        b.peer_built();
        assert_eq!(drain(&mut b), ["create offer"]);
        b.offer_created(sdp("B"));
        assert_eq!(drain(&mut b), ["send offer", "state connecting"]);
        assert!(!b.is_polite());

        a.peer_built();
        a.signal(
            t0,
            SignalEvent::PeerJoined {
                peer: them(),
                resumed: false,
            },
        );
        assert_eq!(drain(&mut a), ["event peer joined", "build peer"]);
        a.peer_built();
        a.signal(t0, SignalEvent::Offer(sdp("B")));
        assert_eq!(drain(&mut a), ["apply offer"]);
        a.offer_applied(&sdp("B"));
        assert_eq!(drain(&mut a), ["create answer"]);
        a.answer_created(sdp("A"));
        assert_eq!(drain(&mut a), ["send answer", "state connecting"]);

        b.signal(t0, SignalEvent::Answer(sdp("A")));
        assert_eq!(drain(&mut b), ["apply answer"]);
        b.answer_applied(&sdp("A"));
        b.peer_state(t0, ConnectionState::Connected);
        assert_eq!(drain(&mut b), ["state connected", "publish"]);
        // A second answer, with no offer of ours waiting, is ignored.
        b.signal(t0, SignalEvent::Answer(sdp("A")));
        assert!(drain(&mut b).is_empty());
    }

    #[test]
    fn glare_the_impolite_side_ignores_the_colliding_offer() {
        let t0 = Instant::now();
        let mut b = Negotiator::new(RESTART);
        b.signal(t0, joined(true, false));
        b.peer_built();
        b.offer_created(sdp("B"));
        drain(&mut b);
        b.signal(t0, SignalEvent::Offer(sdp("A")));
        assert!(drain(&mut b).is_empty(), "our offer stands");
        // Their answer to our offer then completes the negotiation.
        b.signal(t0, SignalEvent::Answer(sdp("A")));
        assert_eq!(drain(&mut b), ["apply answer"]);
    }

    /// The polite side offering: it restarted ICE while impolite, then the
    /// other side came back to its seat (and became the impolite one).
    fn polite_with_an_offer_out(t0: Instant) -> Negotiator {
        let mut b = connected_offerer(t0);
        b.peer_state(t0, ConnectionState::Disconnected);
        b.tick(t0 + RESTART);
        assert_eq!(drain(&mut b), ["state disconnected", "restart ice"]);
        b.offer_created(sdp("OURS"));
        b.signal(
            t0,
            SignalEvent::PeerJoined {
                peer: them(),
                resumed: true,
            },
        );
        assert_eq!(
            drain(&mut b),
            [
                "send offer",
                "event peer joined",
                "event state disconnected"
            ]
        );
        assert!(b.is_polite());
        b
    }

    #[test]
    fn glare_the_polite_side_rolls_its_offer_back() {
        let t0 = Instant::now();
        let mut b = polite_with_an_offer_out(t0);
        b.signal(t0, SignalEvent::Offer(sdp("THEIRS")));
        assert_eq!(drain(&mut b), ["rollback"]);
        b.rolled_back(true);
        assert_eq!(drain(&mut b), ["apply offer"]);
        b.offer_applied(&sdp("THEIRS"));
        b.answer_created(sdp("OURS"));
        assert_eq!(drain(&mut b), ["create answer", "send answer"]);
        // The answer to our rolled-back offer no longer applies.
        b.signal(t0, SignalEvent::Answer(sdp("THEIRS")));
        assert!(drain(&mut b).is_empty());
    }

    #[test]
    fn glare_without_a_rollback_takes_the_offer_on_a_fresh_connection() {
        let t0 = Instant::now();
        let mut b = polite_with_an_offer_out(t0);
        b.signal(t0, SignalEvent::Offer(sdp("THEIRS")));
        assert_eq!(drain(&mut b), ["rollback"]);
        b.rolled_back(false);
        assert_eq!(drain(&mut b), ["build peer"]);
        b.peer_built();
        assert_eq!(drain(&mut b), ["apply offer"]);
    }

    #[test]
    fn candidates_before_the_offer_wait_up_to_the_cap_and_are_flushed() {
        let t0 = Instant::now();
        let mut a = Negotiator::new(RESTART);
        a.signal(t0, joined(false, false));
        a.peer_built();
        drain(&mut a);
        for i in 0..MAX_PENDING_CANDIDATES + 5 {
            a.signal(t0, SignalEvent::Candidate(Some(candidate(i))));
        }
        a.signal(t0, SignalEvent::Candidate(None));
        assert!(drain(&mut a).is_empty());
        assert_eq!(a.pending_candidates(), MAX_PENDING_CANDIDATES);

        a.signal(t0, SignalEvent::Offer(sdp("B")));
        a.offer_applied(&sdp("B"));
        a.answer_created(sdp("A"));
        assert_eq!(
            drain(&mut a),
            [
                "apply offer",
                "create answer",
                "send answer",
                "state connecting",
                "flush 200 candidates"
            ]
        );
        assert_eq!(a.pending_candidates(), 0);
        // With the remote description set, candidates go straight in.
        a.signal(t0, SignalEvent::Candidate(Some(candidate(1))));
        assert_eq!(drain(&mut a), ["add candidate"]);
    }

    #[test]
    fn candidates_before_the_answer_are_flushed_when_it_is_applied() {
        let t0 = Instant::now();
        let mut b = Negotiator::new(RESTART);
        b.signal(t0, joined(true, false));
        b.peer_built();
        b.offer_created(sdp("B"));
        drain(&mut b);
        b.signal(t0, SignalEvent::Candidate(Some(candidate(1))));
        b.signal(t0, SignalEvent::Candidate(Some(candidate(2))));
        assert!(drain(&mut b).is_empty());
        b.signal(t0, SignalEvent::Answer(sdp("A")));
        b.answer_applied(&sdp("A"));
        assert_eq!(drain(&mut b), ["apply answer", "flush 2 candidates"]);
    }

    #[test]
    fn a_new_connection_drops_the_buffered_candidates() {
        let t0 = Instant::now();
        let mut a = Negotiator::new(RESTART);
        a.signal(t0, SignalEvent::Candidate(Some(candidate(1))));
        assert_eq!(a.pending_candidates(), 1);
        a.signal(t0, joined(false, false));
        assert_eq!(a.pending_candidates(), 0);
    }

    #[test]
    fn an_offer_without_an_answer_is_made_again_after_the_stall_time() {
        // The first offer of a call, whose answer is lost on the way.
        let t0 = Instant::now();
        let mut b = Negotiator::new(RESTART);
        b.signal(t0, joined(true, false));
        b.peer_built();
        b.offer_created(sdp("OURS"));
        drain(&mut b);
        // The first tick that sees the offer waiting starts its clock.
        b.tick(t0);
        b.tick(t0 + OFFER_STALL - Duration::from_millis(1));
        assert!(drain(&mut b).is_empty(), "not yet");
        b.tick(t0 + OFFER_STALL);
        assert_eq!(drain(&mut b), ["restart ice"]);
        b.offer_created(sdp("OURS"));
        b.answer_applied(&sdp("THEIRS"));
        b.peer_state(t0 + OFFER_STALL, ConnectionState::Connected);
        drain(&mut b);
        b.tick(t0 + OFFER_STALL * 3);
        assert!(drain(&mut b).is_empty(), "answered: no more offers");
    }

    #[test]
    fn only_the_impolite_side_restarts_ice_and_not_again_too_soon() {
        let t0 = Instant::now();
        let mut b = connected_offerer(t0);
        b.peer_state(t0, ConnectionState::Disconnected);
        assert_eq!(drain(&mut b), ["state disconnected"]);
        b.tick(t0 + RESTART - Duration::from_millis(1));
        assert!(drain(&mut b).is_empty(), "not yet");
        b.tick(t0 + RESTART);
        assert_eq!(drain(&mut b), ["restart ice"]);
        b.offer_created(sdp("OURS"));
        assert_eq!(drain(&mut b), ["send offer"]);
        // Still down: the next restart waits twice as long.
        b.tick(t0 + RESTART * 2);
        b.tick(t0 + RESTART * 3 - Duration::from_millis(1));
        assert!(drain(&mut b).is_empty());
        b.tick(t0 + RESTART * 3);
        assert_eq!(drain(&mut b), ["restart ice"]);
        // Answered and back up: no more restarts.
        b.answer_applied(&sdp("THEIRS"));
        b.peer_state(t0 + RESTART * 3, ConnectionState::Connected);
        b.tick(t0 + RESTART * 10);
        assert_eq!(drain(&mut b), ["state connected", "publish"]);

        let mut a = connected_answerer(t0);
        a.peer_state(t0, ConnectionState::Failed);
        a.tick(t0 + RESTART * 10);
        assert_eq!(drain(&mut a), ["state failed"], "the polite side waits");
    }

    #[test]
    fn losing_the_server_while_connected_goes_on_until_media_stays_down() {
        let t0 = Instant::now();
        let mut a = connected_answerer(t0);
        let shut_down = Error::Server {
            code: Some(ErrorCode::Unavailable),
            message: "the server is shutting down".into(),
        };
        a.signal(t0, SignalEvent::Closed(Some(shut_down)));
        assert_eq!(drain(&mut a), ["event server lost"]);
        assert!(!a.listens_to_signaling());
        a.tick(t0 + SERVER_LOST_MEDIA_GRACE * 10);
        assert!(drain(&mut a).is_empty(), "media flows: the call goes on");

        let t1 = t0 + SERVER_LOST_MEDIA_GRACE * 10;
        a.peer_state(t1, ConnectionState::Disconnected);
        a.tick(t1 + SERVER_LOST_MEDIA_GRACE - Duration::from_millis(1));
        assert_eq!(drain(&mut a), ["state disconnected"]);
        a.tick(t1 + SERVER_LOST_MEDIA_GRACE);
        assert_eq!(
            drain(&mut a),
            [
                "end: lost the webcall server (the server shut down), then the media connection (disconnected)"
            ]
        );
        assert!(a.is_ended());
    }

    #[test]
    fn losing_the_server_before_media_is_up_ends_the_call() {
        let t0 = Instant::now();
        let mut b = Negotiator::new(RESTART);
        b.signal(t0, joined(true, false));
        drain(&mut b);
        let unreachable = Error::Unreachable {
            server: "http://127.0.0.1:1".into(),
            detail: "no connection for 30 s".into(),
            source: None,
        };
        let text = unreachable.to_string();
        b.signal(t0, SignalEvent::Closed(Some(unreachable)));
        assert_eq!(
            drain(&mut b),
            [format!("end: lost the webcall server ({text})")]
        );
        // Once ended, nothing more happens.
        b.peer_built();
        b.tick(t0 + RESTART * 10);
        assert!(drain(&mut b).is_empty());
    }

    #[test]
    fn other_fatal_errors_end_the_call_even_while_connected() {
        let t0 = Instant::now();
        let mut a = connected_answerer(t0);
        a.signal(t0, SignalEvent::Closed(Some(Error::RoomNotFound)));
        assert_eq!(drain(&mut a), [format!("end: {}", Error::RoomNotFound)]);
        let mut b = connected_offerer(t0);
        b.signal(t0, SignalEvent::Closed(None));
        assert_eq!(drain(&mut b), ["end: hung up"]);
    }

    #[test]
    fn a_resumed_join_keeps_a_negotiated_connection() {
        let t0 = Instant::now();
        // Up: nothing to do but say so.
        let mut a = connected_answerer(t0);
        a.signal(t0, SignalEvent::Reconnecting);
        a.signal(t0, joined(true, true));
        assert_eq!(
            drain(&mut a),
            [
                "event reconnecting",
                "event joined",
                "event state connected"
            ]
        );
        assert!(!a.is_polite(), "back as the impolite side");

        // Down: restart ICE at once.
        let mut a = connected_answerer(t0);
        a.peer_state(t0, ConnectionState::Disconnected);
        a.signal(t0, joined(true, true));
        assert_eq!(
            drain(&mut a),
            [
                "state disconnected",
                "event joined",
                "event state disconnected",
                "restart ice"
            ]
        );

        // Nothing negotiated yet: start afresh and offer.
        let mut a = Negotiator::new(RESTART);
        a.signal(t0, joined(false, false));
        a.peer_built();
        drain(&mut a);
        a.signal(t0, joined(true, true));
        a.peer_built();
        assert_eq!(
            drain(&mut a),
            ["event joined", "build peer", "create offer"]
        );
    }

    #[test]
    fn a_peer_reconnecting_keeps_the_connection_unless_it_is_leaving() {
        let t0 = Instant::now();
        let mut b = connected_offerer(t0);
        b.signal(
            t0,
            SignalEvent::PeerReconnecting {
                peer: them(),
                leaving: false,
            },
        );
        assert_eq!(drain(&mut b), ["event peer reconnecting"]);
        b.signal(
            t0,
            SignalEvent::PeerJoined {
                peer: them(),
                resumed: true,
            },
        );
        assert_eq!(
            drain(&mut b),
            ["event peer joined", "event state connected"],
            "back with their connection: media goes on"
        );

        b.signal(
            t0,
            SignalEvent::PeerReconnecting {
                peer: them(),
                leaving: true,
            },
        );
        assert_eq!(
            drain(&mut b),
            ["event peer reconnecting", "close peer", "state new"]
        );
        b.signal(
            t0,
            SignalEvent::PeerJoined {
                peer: them(),
                resumed: true,
            },
        );
        assert_eq!(drain(&mut b), ["event peer joined", "build peer"]);
        assert!(b.is_polite());
    }

    #[test]
    fn a_peer_that_drops_keeps_the_media_but_one_that_says_bye_ends_it() {
        let t0 = Instant::now();
        let mut a = connected_answerer(t0);
        a.signal(
            t0,
            SignalEvent::PeerLeft {
                peer: them(),
                reason: LeaveReason::Disconnected,
            },
        );
        assert_eq!(drain(&mut a), ["event peer left"]);
        a.signal(
            t0,
            SignalEvent::PeerLeft {
                peer: them(),
                reason: LeaveReason::Bye,
            },
        );
        assert_eq!(
            drain(&mut a),
            ["event peer left", "close peer", "state new"]
        );
    }

    #[test]
    fn an_offer_from_a_new_connection_replaces_ours() {
        let t0 = Instant::now();
        let mut a = connected_answerer(t0);
        // The same connection renegotiating (an ICE restart): answered on ours.
        a.signal(t0, SignalEvent::Offer(sdp("THEIRS")));
        assert_eq!(drain(&mut a), ["apply offer"]);
        a.offer_applied(&sdp("THEIRS"));
        a.answer_created(sdp("OURS"));
        drain(&mut a);

        // A reloaded page: a new certificate, so a new connection.
        a.signal(t0, SignalEvent::Offer(sdp("RELOADED")));
        assert_eq!(drain(&mut a), ["state new", "build peer"]);
        a.peer_built();
        assert_eq!(drain(&mut a), ["apply offer"]);
        a.offer_applied(&sdp("RELOADED"));
        a.answer_created(sdp("OURS2"));
        assert_eq!(
            drain(&mut a),
            ["create answer", "send answer", "state connecting"]
        );
    }

    #[test]
    fn hanging_up_ends_once() {
        let mut a = Negotiator::new(RESTART);
        a.hang_up();
        a.hang_up();
        assert_eq!(drain(&mut a), ["end: hung up"]);
    }

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
