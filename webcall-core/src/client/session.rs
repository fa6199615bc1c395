//! The signaling session as a state machine: no sockets, no clock.
//!
//! The caller (see [`super::signaling`]) reports what happened — the
//! WebSocket opened, a message arrived, the socket dropped, the user hung up
//! — with the current time, and carries out the [`Output`]s: frames to send,
//! events to hand to the call, when to reconnect, and when to stop.
//!
//! ```
//! use std::time::Instant;
//! use webcall_core::client::session::{Output, Session};
//! use webcall_core::protocol::ClientMessage;
//!
//! let mut s = Session::new("http://localhost:8000");
//! let out = s.connected(Instant::now());
//! assert!(matches!(&out[..], [Output::Send(ClientMessage::Join { resume: None, .. })]));
//! ```

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::protocol::{
    ClientMessage, ErrorCode, ErrorMessage, IceCandidate, Joined, LeaveReason, PROTOCOL_VERSION,
    ServerMessage,
};
use crate::token::{ParticipantId, ResumeToken};

/// After the WebSocket drops, how long to keep trying before giving up.
pub const RECONNECT_GIVE_UP: Duration = Duration::from_secs(30);

/// The longest wait a server's `reconnect` may ask for; longer values
/// are cut to this.
pub const MAX_SERVER_RECONNECT_DELAY: Duration = Duration::from_secs(10);

/// What the signaling channel tells the call.
#[derive(Debug)]
#[non_exhaustive]
pub enum SignalEvent {
    /// We hold a seat (first join, or again after a reconnect).
    Joined(Joined),
    /// The other participant arrived, or came back (`resumed`).
    PeerJoined {
        /// Their id.
        peer: ParticipantId,
        /// True when it is the same participant coming back.
        resumed: bool,
    },
    /// The other participant's connection dropped; their seat is held for
    /// them. The media connection, if up, goes on.
    PeerReconnecting {
        /// Their id.
        peer: ParticipantId,
        /// Their page said it was going away: their peer connection is gone.
        leaving: bool,
    },
    /// The other participant left.
    PeerLeft {
        /// Their id.
        peer: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// A session description offer from the other participant.
    Offer(String),
    /// A session description answer from the other participant.
    Answer(String),
    /// A trickled candidate (`None`: end of candidates).
    Candidate(Option<IceCandidate>),
    /// The WebSocket dropped; reconnecting with the resume secret.
    Reconnecting,
    /// A non-fatal error from the server (logged, the session goes on).
    ServerError(ErrorMessage),
    /// The session is over: `None` after a hangup, otherwise why it failed.
    Closed(Option<Error>),
}

/// What the caller must do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Output {
    /// Send this frame on the WebSocket.
    Send(ClientMessage),
    /// Hand this event to the call.
    Event(SignalEvent),
    /// Close the socket (if any) and open a new one after this delay.
    Reconnect {
        /// How long to wait first.
        after: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Joining,
    Joined,
    Down,
    Closed,
}

/// One participant's signaling session, across reconnects.
#[derive(Debug)]
pub struct Session {
    /// The server's base URL, for errors.
    server: String,
    phase: Phase,
    resume: Option<ResumeToken>,
    retries: u32,
    down_since: Option<Instant>,
}

/// Maps a fatal server error to the crate's error.
pub fn fatal_error(e: &ErrorMessage) -> Error {
    match e.code {
        ErrorCode::RoomNotFound => Error::RoomNotFound,
        ErrorCode::RoomFull => Error::RoomFull,
        code => Error::Server {
            code: Some(code),
            message: e.message.clone(),
        },
    }
}

impl Session {
    /// A session with the server at `server` (its base URL, named in
    /// errors) that has not connected yet.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            phase: Phase::Connecting,
            resume: None,
            retries: 0,
            down_since: None,
        }
    }

    /// A session that takes back the seat `resume` names, as a reloaded
    /// page does with the secret it kept: its first `join` carries it.
    pub fn resuming(server: impl Into<String>, resume: ResumeToken) -> Self {
        Self {
            resume: Some(resume),
            ..Self::new(server)
        }
    }

    /// True once the session has ended (hangup or fatal error).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// True while the session holds a seat on a live connection.
    pub fn is_joined(&self) -> bool {
        self.phase == Phase::Joined
    }

    /// The resume secret from the last `joined`, if any.
    pub fn resume_token(&self) -> Option<&ResumeToken> {
        self.resume.as_ref()
    }

    /// The WebSocket is open: send `join` (with the resume secret once we have one).
    pub fn connected(&mut self, _now: Instant) -> Vec<Output> {
        if self.phase == Phase::Closed {
            return vec![];
        }
        self.phase = Phase::Joining;
        vec![Output::Send(ClientMessage::Join {
            version: PROTOCOL_VERSION,
            resume: self.resume.clone(),
        })]
    }

    /// A frame arrived from the server.
    pub fn message(&mut self, now: Instant, message: ServerMessage) -> Vec<Output> {
        if self.phase == Phase::Closed {
            return vec![];
        }
        let event = match message {
            ServerMessage::Reconnect { after_ms } => return self.moved(now, after_ms),
            ServerMessage::Joined(j) => {
                self.phase = Phase::Joined;
                self.resume = Some(j.resume.clone());
                self.retries = 0;
                self.down_since = None;
                SignalEvent::Joined(j)
            }
            ServerMessage::Error(e) if e.fatal => {
                self.phase = Phase::Closed;
                SignalEvent::Closed(Some(fatal_error(&e)))
            }
            ServerMessage::Error(e) => SignalEvent::ServerError(e),
            ServerMessage::PeerJoined { peer, resumed } => {
                SignalEvent::PeerJoined { peer, resumed }
            }
            ServerMessage::PeerReconnecting { peer, leaving } => {
                SignalEvent::PeerReconnecting { peer, leaving }
            }
            ServerMessage::PeerLeft { peer, reason } => SignalEvent::PeerLeft { peer, reason },
            ServerMessage::Offer { sdp, .. } => SignalEvent::Offer(sdp),
            ServerMessage::Answer { sdp, .. } => SignalEvent::Answer(sdp),
            ServerMessage::Candidate { candidate, .. } => SignalEvent::Candidate(candidate),
        };
        vec![Output::Event(event)]
    }

    /// The server asked us to reconnect (it is restarting and the room
    /// outlives it): a planned reconnect, without backoff, that keeps the
    /// seat. The give-up clock starts as for a dropped socket.
    fn moved(&mut self, now: Instant, after_ms: u64) -> Vec<Output> {
        let after = Duration::from_millis(after_ms).min(MAX_SERVER_RECONNECT_DELAY);
        self.retries = 0;
        self.down_since.get_or_insert(now);
        let mut out = Vec::new();
        if self.resume.is_none() {
            // Not joined yet: join afresh on the new connection.
            self.phase = Phase::Connecting;
        } else {
            if self.phase != Phase::Down {
                out.push(Output::Event(SignalEvent::Reconnecting));
            }
            self.phase = Phase::Down;
        }
        out.push(Output::Reconnect { after });
        out
    }

    /// The WebSocket closed or could not be opened; `cause` says how.
    pub fn disconnected(&mut self, now: Instant, cause: Error) -> Vec<Output> {
        match self.phase {
            Phase::Closed => vec![],
            _ if self.resume.is_none() => {
                // Never joined: there is no seat to come back to.
                self.phase = Phase::Closed;
                vec![Output::Event(SignalEvent::Closed(Some(
                    Error::SignalingClosed {
                        source: Some(Box::new(cause)),
                    },
                )))]
            }
            _ => {
                let since = *self.down_since.get_or_insert(now);
                if now.duration_since(since) >= RECONNECT_GIVE_UP {
                    self.phase = Phase::Closed;
                    return vec![Output::Event(SignalEvent::Closed(Some(
                        Error::Unreachable {
                            server: self.server.clone(),
                            detail: format!("no connection for {} s", RECONNECT_GIVE_UP.as_secs()),
                            source: Some(Box::new(cause)),
                        },
                    )))];
                }
                let first = self.phase != Phase::Down;
                self.phase = Phase::Down;
                let after = Duration::from_millis(200u64 << self.retries.min(3));
                self.retries += 1;
                let mut out = Vec::new();
                if first {
                    out.push(Output::Event(SignalEvent::Reconnecting));
                }
                out.push(Output::Reconnect { after });
                out
            }
        }
    }

    /// The call wants to send a frame. Frames sent while not joined are
    /// dropped: after a reconnect the call renegotiates from scratch.
    pub fn send(&mut self, message: ClientMessage) -> Vec<Output> {
        if self.phase == Phase::Joined {
            vec![Output::Send(message)]
        } else {
            vec![]
        }
    }

    /// The user hangs up: say `bye` if we can, then stop.
    pub fn hangup(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        if self.phase == Phase::Joined {
            out.push(Output::Send(ClientMessage::Bye));
        }
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            out.push(Output::Event(SignalEvent::Closed(None)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::IceTransportPolicy;
    use crate::time::Timestamp;

    /// The edge's report of a socket that went away.
    fn dropped() -> Error {
        Error::WebSocket {
            server: "http://127.0.0.1:8000".into(),
            source: None,
        }
    }

    fn joined() -> Joined {
        Joined {
            version: 1,
            you: ParticipantId::generate().unwrap(),
            resume: ResumeToken::generate().unwrap(),
            resumed: false,
            peer: None,
            initiator: false,
            polite: true,
            ice_servers: vec![],
            ice_transport_policy: IceTransportPolicy::All,
            capacity: 2,
            expires_at: Timestamp::from_unix_millis(0),
        }
    }

    #[test]
    fn reconnect_resumes_with_the_secret_and_backs_off() {
        let t0 = Instant::now();
        let mut s = Session::new("http://127.0.0.1:8000");
        s.connected(t0);
        let j = joined();
        let out = s.message(t0, ServerMessage::Joined(j.clone()));
        assert!(matches!(&out[..], [Output::Event(SignalEvent::Joined(_))]));
        assert!(s.is_joined());

        let out = s.disconnected(t0, dropped());
        assert!(
            matches!(&out[..], [Output::Event(SignalEvent::Reconnecting), Output::Reconnect { after }] if after.as_millis() == 200)
        );
        let out = s.disconnected(t0 + Duration::from_secs(1), dropped());
        assert!(matches!(&out[..], [Output::Reconnect { after }] if after.as_millis() == 400));
        assert!(
            s.send(ClientMessage::Bye).is_empty(),
            "nothing is sent while down"
        );

        let out = s.connected(t0 + Duration::from_secs(2));
        match &out[..] {
            [
                Output::Send(ClientMessage::Join {
                    resume: Some(r),
                    version: 1,
                }),
            ] => assert_eq!(r, &j.resume),
            other => panic!("{other:?}"),
        }
        s.message(t0, ServerMessage::Joined(j));
        assert!(s.is_joined());
    }

    #[test]
    fn a_servers_reconnect_is_a_planned_resume_without_backoff() {
        let t0 = Instant::now();
        let mut s = Session::new("http://127.0.0.1:8000");
        s.connected(t0);
        let j = joined();
        s.message(t0, ServerMessage::Joined(j.clone()));
        // Earlier drops grew the backoff; the server's delay replaces it.
        s.disconnected(t0, dropped());
        s.disconnected(t0, dropped());
        s.connected(t0);
        s.message(t0, ServerMessage::Joined(j.clone()));

        let out = s.message(t0, ServerMessage::Reconnect { after_ms: 730 });
        assert!(
            matches!(&out[..], [Output::Event(SignalEvent::Reconnecting), Output::Reconnect { after }] if after.as_millis() == 730),
            "{out:?}"
        );
        assert!(!s.is_joined() && !s.is_closed());
        let out = s.connected(t0 + Duration::from_secs(1));
        assert!(
            matches!(&out[..], [Output::Send(ClientMessage::Join { resume: Some(r), .. })] if r == &j.resume),
            "the seat is taken back: {out:?}"
        );

        // A server cannot park its clients for long.
        s.message(t0, ServerMessage::Joined(j));
        let out = s.message(t0, ServerMessage::Reconnect { after_ms: u64::MAX });
        assert!(
            matches!(&out[..], [_, Output::Reconnect { after }] if *after == MAX_SERVER_RECONNECT_DELAY)
        );
    }

    #[test]
    fn gives_up_after_thirty_seconds_down() {
        let t0 = Instant::now();
        let mut s = Session::new("http://127.0.0.1:8000");
        s.connected(t0);
        s.message(t0, ServerMessage::Joined(joined()));
        s.disconnected(t0, dropped());
        let out = s.disconnected(t0 + RECONNECT_GIVE_UP, dropped());
        // The error names the server and keeps the last failure as its cause.
        assert!(matches!(
            &out[..],
            [Output::Event(SignalEvent::Closed(Some(
                Error::Unreachable { server, source: Some(cause), .. }
            )))] if server == "http://127.0.0.1:8000" && matches!(**cause, Error::WebSocket { .. })
        ));
        assert!(s.is_closed());
    }

    #[test]
    fn fatal_errors_end_the_session_with_clear_errors() {
        let t0 = Instant::now();
        for (code, text) in [
            (
                ErrorCode::RoomNotFound,
                "this link is unknown or has expired",
            ),
            (ErrorCode::RoomFull, "this call already has two people"),
        ] {
            let mut s = Session::new("http://127.0.0.1:8000");
            s.connected(t0);
            let out = s.message(t0, ServerMessage::error(code));
            match &out[..] {
                [Output::Event(SignalEvent::Closed(Some(e)))] => {
                    assert!(e.to_string().contains(text), "{e}")
                }
                other => panic!("{other:?}"),
            }
            assert!(s.is_closed());
            assert!(s.disconnected(t0, dropped()).is_empty());
        }
    }

    #[test]
    fn a_peer_reconnecting_is_reported_and_the_session_goes_on() {
        let t0 = Instant::now();
        let mut s = Session::new("http://127.0.0.1:8000");
        s.connected(t0);
        s.message(t0, ServerMessage::Joined(joined()));
        let peer = ParticipantId::generate().unwrap();
        let out = s.message(
            t0,
            ServerMessage::PeerReconnecting {
                peer: peer.clone(),
                leaving: true,
            },
        );
        assert!(matches!(
            &out[..],
            [Output::Event(SignalEvent::PeerReconnecting { peer: p, leaving: true })] if *p == peer
        ));
        assert!(s.is_joined());
    }

    #[test]
    fn hangup_says_bye_once() {
        let t0 = Instant::now();
        let mut s = Session::new("http://127.0.0.1:8000");
        s.connected(t0);
        s.message(t0, ServerMessage::Joined(joined()));
        let out = s.hangup();
        assert!(matches!(
            &out[..],
            [
                Output::Send(ClientMessage::Bye),
                Output::Event(SignalEvent::Closed(None))
            ]
        ));
        assert!(s.hangup().is_empty());
    }
}
