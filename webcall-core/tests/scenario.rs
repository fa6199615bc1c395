//! Whole calls in memory: the first test to read to understand the protocol.
//!
//! Two clients, A and B, each a signaling [`Session`] and a [`Negotiator`]
//! (the parts of the call engine with the rules in them), and a [`Room`]
//! (the part of the server with the rules in it). [`World::progress`]
//! moves messages between them until nothing moves: no sockets, no
//! threads, and a clock that only moves when a test says so.
//!
//! The peer connections are played by the test: each client's `carry_out`
//! answers the negotiator's commands with the facts a real peer connection
//! reports ("offer applied", "answer created"), and [`World::media_up`]
//! and [`World::media_down`] say when the media connection is up. A fake
//! description names its peer connection by a fingerprint such as `A1`
//! (A's first peer connection); like webrtc, a fake peer connection
//! gathers its candidate while applying its local description, before
//! that description is sent.
//!
//! Each client keeps a log of what its negotiator asked for, described as
//! in [`Output`]'s `Display` (`send offer`, `state connected`, ...), so
//! the tests below read as transcripts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use webcall_core::Error;
use webcall_core::call::negotiator::{Negotiator, OFFER_STALL, Output};
use webcall_core::call::{ConnectionState, EndReason, SERVER_LOST_MEDIA_GRACE};
use webcall_core::client::session::{self, RECONNECT_GIVE_UP, Session};
use webcall_core::protocol::{ClientMessage, ErrorCode, IceCandidate, ServerMessage};
use webcall_core::room::{self, ConnectionId, IceConfig, Room, RoomConfig};
use webcall_core::time::Timestamp;
use webcall_core::token::IdSource;

/// The impolite side restarts ICE after the media connection has been
/// down this long (the call engine's default).
const ICE_RESTART_AFTER: Duration = Duration::from_secs(3);
const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);
const SERVER: &str = "http://webcall.test";

/// One participant: its signaling session, its negotiator and the fake
/// peer connection they drive.
struct Client {
    name: &'static str,
    session: Session,
    negotiator: Negotiator,
    /// The socket to the server, while there is one.
    conn: Option<ConnectionId>,
    /// When the session asked to reconnect.
    reconnect_at: Option<Instant>,
    /// The process is gone: it never reconnects.
    gone: bool,
    /// Peer connections built so far; the current one is `peer`.
    built: u32,
    peer: Option<FakePeer>,
    /// What the negotiator asked for, described, since the last `take_log`.
    log: Vec<String>,
    ended: Option<EndReason>,
}

/// What a test needs to know of a peer connection.
#[derive(Debug, Default)]
struct FakePeer {
    /// Its fingerprint, such as `A1`.
    name: String,
    /// ICE restarts so far (each gives new credentials).
    ice_generation: u32,
    local: Option<String>,
    remote: Option<String>,
    candidates_added: usize,
}

impl Client {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            session: Session::new(SERVER),
            negotiator: Negotiator::new(ICE_RESTART_AFTER),
            conn: None,
            reconnect_at: None,
            gone: false,
            built: 0,
            peer: None,
            log: Vec::new(),
            ended: None,
        }
    }

    fn peer(&self) -> &FakePeer {
        self.peer.as_ref().expect("a peer connection")
    }

    fn state(&self) -> ConnectionState {
        self.negotiator.state()
    }

    fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// A description of our current peer connection.
    fn describe(&self) -> String {
        let p = self.peer();
        format!(
            "v=0\r\na=ice-ufrag:{}{}\r\na=fingerprint:sha-256 {}\r\n",
            p.name, p.ice_generation, p.name
        )
    }

    /// Plays the peer connection and the signaling edge: carries out what
    /// the negotiator asks for, reporting back what a real peer connection
    /// would. Returns the messages for the server.
    fn carry_out(&mut self) -> Vec<ClientMessage> {
        let mut to_server = Vec::new();
        while let Some(output) = self.negotiator.poll_output() {
            self.log.push(output.to_string());
            match output {
                Output::Send(message) => {
                    for out in self.session.send(message) {
                        if let session::Output::Send(m) = out {
                            to_server.push(m);
                        }
                    }
                }
                Output::BuildPeer => {
                    self.built += 1;
                    self.peer = Some(FakePeer {
                        name: format!("{}{}", self.name, self.built),
                        ..FakePeer::default()
                    });
                    self.negotiator.peer_built();
                }
                Output::ClosePeer => self.peer = None,
                Output::CreateOffer { ice_restart } => {
                    if ice_restart {
                        self.peer.as_mut().unwrap().ice_generation += 1;
                    }
                    let sdp = self.describe();
                    self.peer.as_mut().unwrap().local = Some(sdp.clone());
                    self.gather_candidate();
                    self.negotiator.offer_created(sdp);
                }
                Output::Rollback => {
                    self.peer.as_mut().unwrap().local = None;
                    self.negotiator.rolled_back(true);
                }
                Output::ApplyOffer(sdp) => {
                    self.peer.as_mut().unwrap().remote = Some(sdp.clone());
                    self.negotiator.offer_applied(&sdp);
                }
                Output::CreateAnswer => {
                    let sdp = self.describe();
                    self.peer.as_mut().unwrap().local = Some(sdp.clone());
                    self.gather_candidate();
                    self.negotiator.answer_created(sdp);
                }
                Output::ApplyAnswer(sdp) => {
                    self.peer.as_mut().unwrap().remote = Some(sdp.clone());
                    self.negotiator.answer_applied(&sdp);
                }
                Output::AddCandidate(_) => self.peer.as_mut().unwrap().candidates_added += 1,
                Output::FlushCandidates(c) => {
                    self.peer.as_mut().unwrap().candidates_added += c.len();
                }
                Output::End(reason) => self.ended = Some(reason),
                _ => {}
            }
        }
        to_server
    }

    /// Like webrtc, the peer connection gathers a candidate while applying
    /// its local description: it goes out before the description does.
    fn gather_candidate(&mut self) {
        let p = self.peer();
        self.negotiator.local_candidate(IceCandidate {
            candidate: format!("candidate:1 1 udp 1 127.0.0.1 9 typ host ({})", p.name),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some(format!("{}{}", p.name, p.ice_generation)),
        });
    }
}

/// What the signaling edge reports when its socket is closed.
fn closed() -> Error {
    Error::WebSocket {
        server: SERVER.into(),
        source: None,
    }
}

/// What the signaling edge reports when no socket can be opened.
fn refused() -> Error {
    Error::Unreachable {
        server: SERVER.into(),
        detail: "connection refused".into(),
        source: None,
    }
}

/// True when `m` is the message `lose_next` names (which it then forgets).
fn lost(lose_next: &mut Option<&'static str>, m: &ServerMessage) -> bool {
    let kind = match m {
        ServerMessage::Offer { .. } => "offer",
        ServerMessage::Answer { .. } => "answer",
        _ => return false,
    };
    if *lose_next == Some(kind) {
        *lose_next = None;
        return true;
    }
    false
}

/// What travels from the room to a client's socket.
enum Delivery {
    Message(ServerMessage),
    Close,
}

/// Two clients, a room and a clock.
struct World {
    room: Room,
    a: Client,
    b: Client,
    /// The server is reachable.
    server_up: bool,
    start: Instant,
    elapsed: Duration,
    next_conn: u64,
    to_server: VecDeque<(ConnectionId, ClientMessage)>,
    to_clients: VecDeque<(ConnectionId, Delivery)>,
    /// The next relayed message of this type (`"offer"`, `"answer"`) is
    /// lost on its way to the client, as a pub/sub message can be.
    lose_next: Option<&'static str>,
}

impl World {
    fn new() -> Self {
        Self::with_room(RoomConfig::default())
    }

    fn with_room(config: RoomConfig) -> Self {
        let token = "q3V1n0cF2mXb7eYtK9aJ1w".parse().unwrap();
        Self {
            room: Room::new(token, T0, &config).with_ids(IdSource::sequential(1)),
            a: Client::new("A"),
            b: Client::new("B"),
            server_up: true,
            start: Instant::now(),
            elapsed: Duration::ZERO,
            next_conn: 1,
            to_server: VecDeque::new(),
            to_clients: VecDeque::new(),
            lose_next: None,
        }
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    fn timestamp(&self) -> Timestamp {
        T0.saturating_add(self.elapsed)
    }

    fn client(&mut self, name: &str) -> &mut Client {
        match name {
            "A" => &mut self.a,
            "B" => &mut self.b,
            _ => panic!("no client {name}"),
        }
    }

    /// Both clients, whose socket is `conn`.
    fn on_conn(&mut self, conn: ConnectionId) -> Option<&mut Client> {
        [&mut self.a, &mut self.b]
            .into_iter()
            .find(|c| c.conn == Some(conn))
    }

    /// `name` opens a socket to the server (its session then says `join`).
    fn connect(&mut self, name: &str) {
        let now = self.now();
        let up = self.server_up;
        let conn = ConnectionId(self.next_conn);
        self.next_conn += 1;
        let client = self.client(name);
        client.reconnect_at = None;
        let out = if up {
            client.conn = Some(conn);
            client.session.connected(now)
        } else {
            client.session.disconnected(now, refused())
        };
        self.session_outputs(name, out);
    }

    /// `name`'s socket drops (a network change, a proxy restart).
    fn drop_socket(&mut self, name: &str) {
        let (now, ts) = (self.now(), self.timestamp());
        let client = self.client(name);
        let Some(conn) = client.conn.take() else {
            return;
        };
        let out = client.session.disconnected(now, closed());
        self.session_outputs(name, out);
        let room_out = self.room.disconnect(ts, conn);
        self.room_outputs(room_out);
        self.progress();
    }

    /// `name`'s page reloads: it says `leaving`, its socket closes, and a
    /// new page (a fresh session with the kept resume secret, a fresh
    /// negotiator) connects. `says_leaving: false` is a crash and restart.
    fn reload(&mut self, name: &str, says_leaving: bool) {
        if says_leaving {
            let out = self.client(name).session.send(ClientMessage::Leaving);
            self.session_outputs(name, out);
            self.progress();
        }
        self.drop_socket(name);
        let client = self.client(name);
        let resume = client.session.resume_token().unwrap().clone();
        client.session = Session::resuming(SERVER, resume);
        client.negotiator = Negotiator::new(ICE_RESTART_AFTER);
        client.peer = None;
        self.connect(name);
    }

    /// `name` hangs up.
    fn hang_up(&mut self, name: &str) {
        let out = self.client(name).session.hangup();
        self.session_outputs(name, out);
    }

    /// The server goes away (`unavailable` to each socket, then closed)
    /// and stays away.
    fn shut_down_server(&mut self) {
        self.server_up = false;
        for conn in [self.a.conn, self.b.conn].into_iter().flatten() {
            let bye = ServerMessage::error(ErrorCode::Unavailable);
            self.to_clients.push_back((conn, Delivery::Message(bye)));
            self.to_clients.push_back((conn, Delivery::Close));
        }
    }

    /// The server restarts with the room kept (a shared store): each
    /// socket is told `reconnect` and closed; the server is back at once.
    fn restart_server(&mut self, after_ms: u64) {
        for conn in [self.a.conn, self.b.conn].into_iter().flatten() {
            let moved = ServerMessage::Reconnect { after_ms };
            self.to_clients.push_back((conn, Delivery::Message(moved)));
            self.to_clients.push_back((conn, Delivery::Close));
        }
        self.progress();
    }

    /// Both peer connections report "connected": checks first that each
    /// holds the other's current description.
    fn media_up(&mut self) {
        for (me, other) in [(&self.a, &self.b), (&self.b, &self.a)] {
            let (mine, theirs) = (me.peer(), other.peer());
            assert_eq!(
                mine.remote, theirs.local,
                "{} has {}'s description",
                me.name, other.name
            );
        }
        let now = self.now();
        for c in [&mut self.a, &mut self.b] {
            c.negotiator.peer_state(now, ConnectionState::Connected);
        }
        self.progress();
    }

    /// Both peer connections report "disconnected" (the path broke).
    fn media_down(&mut self) {
        let now = self.now();
        for c in [&mut self.a, &mut self.b] {
            c.negotiator.peer_state(now, ConnectionState::Disconnected);
        }
        self.progress();
    }

    /// Moves the clock on, in steps of at most a quarter second as the
    /// engine's timer does, running every timer that falls due.
    fn advance(&mut self, by: Duration) {
        let end = self.elapsed + by;
        while self.elapsed < end {
            self.elapsed = (self.elapsed + Duration::from_millis(250)).min(end);
            let (now, ts) = (self.now(), self.timestamp());
            // The server's timers: held seats, then the room's lifetime.
            let mut out = self.room.tick(ts);
            if self.room.is_expired(ts) {
                out.extend(self.room.expire());
            }
            self.room_outputs(out);
            for name in ["A", "B"] {
                let c = self.client(name);
                if !c.gone && c.reconnect_at.is_some_and(|t| t <= now) {
                    self.connect(name);
                }
                self.client(name).negotiator.tick(now);
            }
            self.progress();
        }
    }

    /// Moves messages until nothing moves.
    fn progress(&mut self) {
        loop {
            for name in ["A", "B"] {
                let c = self.client(name);
                let sent = c.carry_out();
                let conn = c.conn;
                if let Some(conn) = conn {
                    self.to_server.extend(sent.into_iter().map(|m| (conn, m)));
                }
            }
            if let Some((conn, message)) = self.to_server.pop_front() {
                let ts = self.timestamp();
                let out = match message {
                    ClientMessage::Join { version, resume } => {
                        self.room
                            .join(ts, conn, version, resume.as_ref(), IceConfig::default())
                    }
                    other => self.room.handle(ts, conn, other),
                };
                self.room_outputs(out);
            } else if let Some((conn, delivery)) = self.to_clients.pop_front() {
                if let Delivery::Message(m) = &delivery
                    && lost(&mut self.lose_next, m)
                {
                    continue;
                }
                let (now, ts) = (self.now(), self.timestamp());
                let Some(client) = self.on_conn(conn) else {
                    continue;
                };
                let name = client.name;
                let out = match delivery {
                    Delivery::Message(m) => client.session.message(now, m),
                    Delivery::Close => {
                        client.conn = None;
                        client.session.disconnected(now, closed())
                    }
                };
                self.session_outputs(name, out);
                if self.client(name).conn.is_none() {
                    // The server notices its end of the socket closing.
                    let room_out = self.room.disconnect(ts, conn);
                    self.room_outputs(room_out);
                }
            } else {
                break;
            }
        }
    }

    fn room_outputs(&mut self, outputs: Vec<room::Output>) {
        for out in outputs {
            match out {
                room::Output::Send { to, message } => {
                    self.to_clients.push_back((to, Delivery::Message(message)));
                }
                room::Output::Close(to) => self.to_clients.push_back((to, Delivery::Close)),
            }
        }
    }

    fn session_outputs(&mut self, name: &str, outputs: Vec<session::Output>) {
        let now = self.now();
        let c = match name {
            "A" => &mut self.a,
            _ => &mut self.b,
        };
        for out in outputs {
            match out {
                session::Output::Send(m) => {
                    if let Some(conn) = c.conn {
                        self.to_server.push_back((conn, m));
                    }
                }
                session::Output::Event(e) => c.negotiator.signal(now, e),
                session::Output::Reconnect { after } => c.reconnect_at = Some(now + after),
                _ => {}
            }
        }
    }

    /// A joins, then B; both negotiate and the media connection comes up.
    fn call_up() -> Self {
        let mut w = World::new();
        w.connect("A");
        w.progress();
        w.connect("B");
        w.progress();
        w.media_up();
        w.a.take_log();
        w.b.take_log();
        w
    }
}

#[test]
fn join_the_second_to_arrive_offers() {
    let mut w = World::new();
    w.connect("A");
    w.progress();
    // Alone in the room: the polite side, with a peer connection ready.
    assert_eq!(w.a.take_log(), ["event joined", "build peer"]);
    assert!(w.a.negotiator.is_polite());
    // The room's ids come from a counter here: the same on every run.
    assert_eq!(
        w.room.participant_on(ConnectionId(1)).unwrap().as_str(),
        "0000000000000001"
    );

    w.connect("B");
    w.progress();
    // B arrives second: it offers. Its candidate leaves before its offer,
    // as A's leaves before its answer: each waits for its description.
    assert_eq!(
        w.b.take_log(),
        [
            "event joined",
            "build peer",
            "create offer",
            "send candidate",
            "send offer",
            "state connecting",
            "apply answer",
            "flush 1 candidates",
        ]
    );
    assert!(!w.b.negotiator.is_polite());
    // A learns B is there and starts a fresh connection for B's offer.
    assert_eq!(
        w.a.take_log(),
        [
            "event peer joined",
            "build peer",
            "apply offer",
            "create answer",
            "send candidate",
            "send answer",
            "state connecting",
            "flush 1 candidates",
        ]
    );

    w.media_up();
    assert_eq!(w.a.take_log(), ["state connected", "publish"]);
    assert_eq!(w.b.take_log(), ["state connected", "publish"]);
    assert_eq!(w.a.peer().candidates_added, 1);
    assert_eq!(w.b.peer().candidates_added, 1);
}

#[test]
fn ice_restart_by_the_impolite_side_keeps_the_connection() {
    let mut w = World::call_up();
    w.media_down();
    w.advance(ICE_RESTART_AFTER - Duration::from_millis(250));
    assert_eq!(w.b.take_log(), ["state disconnected"], "not yet");

    w.advance(Duration::from_millis(250));
    // B restarts ICE on the same connection; A answers on its own.
    assert_eq!(
        w.b.take_log(),
        [
            "restart ice",
            "send candidate",
            "send offer",
            "add candidate",
            "apply answer"
        ]
    );
    assert_eq!(
        w.a.take_log(),
        [
            "state disconnected",
            "add candidate",
            "apply offer",
            "create answer",
            "send candidate",
            "send answer"
        ]
    );
    assert_eq!(w.b.peer().name, "B1", "no new connection");
    assert!(w.b.peer().local.as_ref().unwrap().contains("ice-ufrag:B11"));
    w.media_up();
    assert_eq!(w.a.state(), ConnectionState::Connected);
    assert_eq!(w.b.state(), ConnectionState::Connected);
    // Up again: no more restarts.
    w.b.take_log();
    w.advance(ICE_RESTART_AFTER * 4);
    assert!(w.b.take_log().is_empty());
}

#[test]
fn glare_offers_that_cross_are_settled_by_the_roles() {
    let mut w = World::call_up();
    w.media_down();
    // A's socket drops just before B's restart is due; A is back in time
    // to restart ICE too (it comes back as the impolite side), and the
    // two offers cross in the room.
    w.advance(ICE_RESTART_AFTER - Duration::from_millis(250));
    w.drop_socket("A");
    w.a.take_log();
    w.b.take_log();
    w.advance(Duration::from_millis(250));

    // A, impolite now, ignores B's offer; B, polite now, rolls its own
    // back and answers A's.
    let a = w.a.take_log();
    let b = w.b.take_log();
    assert!(a.contains(&"restart ice".to_owned()), "{a:?}");
    assert!(!a.contains(&"apply offer".to_owned()), "{a:?}");
    assert!(a.contains(&"apply answer".to_owned()), "{a:?}");
    assert!(b.contains(&"restart ice".to_owned()), "{b:?}");
    assert!(b.contains(&"rollback".to_owned()), "{b:?}");
    assert!(b.contains(&"send answer".to_owned()), "{b:?}");
    assert!(!w.a.negotiator.is_polite());
    assert!(w.b.negotiator.is_polite());
    w.media_up();
    assert_eq!(w.a.peer().name, "A2", "the same connections as before");
    assert_eq!(w.b.peer().name, "B1");
}

#[test]
fn a_signaling_drop_keeps_the_media_connection() {
    let mut w = World::call_up();
    w.drop_socket("A");
    assert_eq!(w.b.take_log(), ["event peer reconnecting"]);
    assert_eq!(w.a.take_log(), ["event reconnecting"]);
    w.advance(Duration::from_millis(250));
    // Back in its seat with its connection up: nothing to renegotiate.
    assert_eq!(w.a.take_log(), ["event joined", "event state connected"]);
    assert_eq!(
        w.b.take_log(),
        ["event peer joined", "event state connected"]
    );
    assert_eq!(w.a.peer().name, "A2");
    assert_eq!(w.b.peer().name, "B1");
}

#[test]
fn reload_resume_starts_a_fresh_connection_in_the_same_seat() {
    let mut w = World::call_up();
    w.reload("A", true);
    w.progress();
    // B saw A's page go and dropped the connection with it; the new page
    // took A's seat back and offers from a new connection.
    assert_eq!(
        w.b.take_log(),
        [
            "event peer reconnecting",
            "close peer",
            "state new",
            "event peer joined",
            "build peer",
            "apply offer",
            "create answer",
            "send candidate",
            "send answer",
            "state connecting",
            "flush 1 candidates",
        ]
    );
    assert_eq!(w.a.peer().name, "A3");
    assert_eq!(w.room.participants(), 2);
    w.media_up();
}

#[test]
fn reload_without_leaving_the_new_connection_replaces_the_old() {
    let mut w = World::call_up();
    w.reload("A", false);
    w.progress();
    // B kept its connection through the drop; the offer's new fingerprint
    // tells it that connection is gone. (The candidate that came before
    // the offer went to the old connection; the new one learns the
    // address from the other side's connectivity checks.)
    assert_eq!(
        w.b.take_log(),
        [
            "event peer reconnecting",
            "event peer joined",
            "event state connected",
            "add candidate",
            "state new",
            "build peer",
            "apply offer",
            "create answer",
            "send candidate",
            "send answer",
            "state connecting",
        ]
    );
    assert_eq!(w.b.peer().name, "B2");
    w.media_up();
}

#[test]
fn the_other_side_hangs_up() {
    let mut w = World::call_up();
    w.hang_up("A");
    w.progress();
    assert_eq!(w.a.take_log(), ["end: hung up"]);
    assert_eq!(
        w.b.take_log(),
        ["event peer left", "close peer", "state new"]
    );
    assert_eq!(w.room.participants(), 1);
    assert!(w.b.ended.is_none(), "B waits in the room");
}

#[test]
fn the_other_side_vanishes_and_its_seat_is_freed_after_the_grace() {
    let mut w = World::call_up();
    w.a.gone = true;
    w.drop_socket("A");
    assert_eq!(w.b.take_log(), ["event peer reconnecting"]);
    w.advance(room::DEFAULT_SEAT_GRACE);
    // The seat is freed; media was still up, so B keeps it (A may only
    // have lost the server).
    assert_eq!(w.b.take_log(), ["event peer left"]);
    assert_eq!(w.room.participants(), 1);
    assert_eq!(w.b.state(), ConnectionState::Connected);
}

#[test]
fn the_server_going_away_leaves_the_media_for_a_grace_period() {
    let mut w = World::call_up();
    w.shut_down_server();
    w.progress();
    assert_eq!(w.a.take_log(), ["event server lost"]);
    assert_eq!(w.b.take_log(), ["event server lost"]);
    w.advance(SERVER_LOST_MEDIA_GRACE * 2);
    assert!(w.a.ended.is_none() && w.b.ended.is_none(), "media flows");

    w.media_down();
    w.advance(SERVER_LOST_MEDIA_GRACE);
    for c in [&w.a, &w.b] {
        let Some(EndReason::Failed(why)) = &c.ended else {
            panic!("{} did not end: {:?}", c.name, c.ended)
        };
        assert_eq!(
            why.to_string(),
            "lost the webcall server (the server shut down), then the media connection (disconnected)"
        );
        // The error keeps its cause: the server's `unavailable`.
        let Error::ServerLost { source, .. } = why.as_ref() else {
            panic!("{why:?}")
        };
        assert!(matches!(
            **source,
            Error::Server {
                code: Some(ErrorCode::Unavailable),
                ..
            }
        ));
    }
}

#[test]
fn an_unreachable_server_is_given_up_on_after_thirty_seconds() {
    let mut w = World::call_up();
    w.server_up = false;
    w.drop_socket("A");
    w.drop_socket("B");
    assert_eq!(w.a.take_log(), ["event reconnecting"]);
    assert_eq!(
        w.b.take_log(),
        ["event peer reconnecting", "event reconnecting"]
    );
    // Both keep trying, backing off, until the session gives up; media
    // still flows, so the call goes on without the server.
    w.advance(RECONNECT_GIVE_UP + Duration::from_secs(2));
    for c in [&mut w.a, &mut w.b] {
        assert_eq!(c.take_log(), ["event server lost"]);
        assert!(c.ended.is_none());
    }
}

#[test]
fn a_call_before_media_is_up_ends_when_the_server_goes() {
    let mut w = World::new();
    w.connect("A");
    w.progress();
    w.shut_down_server();
    w.progress();
    assert!(
        matches!(&w.a.ended, Some(EndReason::Failed(why)) if why.to_string() == "lost the webcall server (the server shut down)")
    );
}

#[test]
fn expiry_ends_the_call_even_with_media_up() {
    let config = RoomConfig {
        ttl: Duration::from_secs(3600),
        ..RoomConfig::default()
    };
    let mut w = World::with_room(config);
    w.connect("A");
    w.progress();
    w.connect("B");
    w.progress();
    w.media_up();
    w.advance(Duration::from_secs(3600));
    for c in [&w.a, &w.b] {
        let Some(EndReason::Failed(why)) = &c.ended else {
            panic!("{} did not end: {:?}", c.name, c.ended)
        };
        assert!(why.to_string().contains("expired"), "{why}");
    }
    assert_eq!(w.room.participants(), 0);
}

#[test]
fn a_lost_answer_is_recovered_by_offering_again() {
    let mut w = World::new();
    w.connect("A");
    w.progress();
    w.lose_next = Some("answer");
    w.connect("B");
    w.progress();
    assert!(w.b.peer().remote.is_none(), "B never got A's answer");
    w.b.take_log();
    w.advance(OFFER_STALL - Duration::from_millis(500));
    assert!(w.b.take_log().is_empty(), "not yet");
    // Counted from the first tick that saw the offer waiting.
    w.advance(Duration::from_millis(750));
    // B offers again (new ICE credentials); this time the answer arrives.
    let log = w.b.take_log();
    assert_eq!(
        log[..3],
        ["restart ice", "send candidate", "send offer"],
        "{log:?}"
    );
    assert!(log.contains(&"apply answer".to_owned()), "{log:?}");
    w.media_up();
    assert_eq!(w.a.state(), ConnectionState::Connected);
    assert_eq!(w.b.state(), ConnectionState::Connected);
    // Answered: no more offers.
    w.advance(OFFER_STALL * 2);
    assert!(!w.b.take_log().iter().any(|l| l == "send offer"));
}

#[test]
fn a_lost_offer_is_made_again() {
    let mut w = World::call_up();
    w.media_down();
    w.lose_next = Some("offer");
    // B's ICE restart offer is lost; B offers again once it stalls.
    w.advance(ICE_RESTART_AFTER + OFFER_STALL);
    assert!(w.a.peer().remote.as_ref().unwrap().contains("ice-ufrag:B1"));
    assert_eq!(w.b.peer().remote, w.a.peer().local);
    w.media_up();
    assert_eq!(w.b.state(), ConnectionState::Connected);
    assert_eq!(w.b.peer().name, "B1", "the same connection throughout");
}

#[test]
fn a_server_restart_with_the_room_kept_is_a_planned_resume() {
    let mut w = World::call_up();
    let peers = (w.a.peer().name.clone(), w.b.peer().name.clone());
    w.restart_server(400);
    assert_eq!(w.a.take_log(), ["event reconnecting"]);
    assert_eq!(w.b.take_log(), ["event reconnecting"]);
    // Nobody left: each seat is held, and taken back after the delay.
    w.advance(Duration::from_millis(500));
    assert!(w.a.session.is_joined() && w.b.session.is_joined());
    assert_eq!(w.room.participants(), 2);
    for c in [&w.a, &w.b] {
        assert_eq!(c.state(), ConnectionState::Connected, "media untouched");
        assert!(c.ended.is_none());
    }
    assert_eq!((w.a.peer().name.clone(), w.b.peer().name.clone()), peers);
    // And the call can still be renegotiated: an ICE restart goes through.
    w.media_down();
    w.advance(ICE_RESTART_AFTER);
    w.media_up();
    assert!(w.b.peer().local.as_ref().unwrap().contains("ice-ufrag:B11"));
    assert_eq!(w.a.peer().remote, w.b.peer().local);
}
