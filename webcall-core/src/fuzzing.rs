//! The fuzz targets' bodies, shared by the cargo-fuzz targets in `fuzz/`
//! and by the test that replays their committed corpus on stable Rust
//! (`tests/fuzz_corpus.rs`). Each function takes the fuzzer's bytes,
//! drives one part of the crate with them and panics when an invariant
//! breaks; an input the part refuses is fine, a panic never is.
//!
//! Not part of the crate's API: hidden from the docs, may change any time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use crate::protocol::{
    ApiError, ClientMessage, CreateRoomRequest, CreatedRoom, IceCandidate,
    MAX_CLIENT_MESSAGE_BYTES, MAX_CREATE_BODY_BYTES, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
    ProtocolError, RoomInfo, ServerMessage,
};
use crate::room::{ConnectionId, IceConfig, Output, Room, RoomConfig};
use crate::time::Timestamp;
use crate::token::{IdSource, ParticipantId, ResumeToken, RoomToken};

/// The names of the targets, as the folders of `fuzz/corpus/` and the
/// binaries of `fuzz/fuzz_targets/` are named.
pub const TARGETS: &[&str] = &["signaling", "room", "link", "create_body"];

/// Target `signaling`: the input as one text frame, decoded as a client's
/// message and as the server's (and as the HTTP API's JSON answers).
///
/// Decoding never panics; the size limits hold; whatever decodes encodes
/// to text that decodes to the same value; and a client's message that
/// decodes, once relayed with the sender's id added, still fits in
/// [`MAX_MESSAGE_BYTES`].
pub fn signaling(data: &[u8]) {
    // WebSocket text frames are UTF-8; the transport refuses anything else.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match ClientMessage::decode(text) {
        Ok(message) => {
            assert!(text.len() <= MAX_CLIENT_MESSAGE_BYTES);
            let again = ClientMessage::decode(&message.encode())
                .unwrap_or_else(|e| panic!("{message:?} re-encoded does not decode: {e}"));
            assert_eq!(again, message, "client message changed through encoding");
            // The relayed frame must fit in a frame whatever the client sent.
            let from: ParticipantId = "ffffffffffffffff".parse().expect("a valid id");
            let relayed = match message {
                ClientMessage::Offer { sdp } => Some(ServerMessage::Offer { from, sdp }),
                ClientMessage::Answer { sdp } => Some(ServerMessage::Answer { from, sdp }),
                ClientMessage::Candidate { candidate } => {
                    Some(ServerMessage::Candidate { from, candidate })
                }
                _ => None,
            };
            if let Some(relayed) = relayed {
                let frame = relayed.encode();
                assert!(
                    frame.len() <= MAX_MESSAGE_BYTES,
                    "a {}-byte client frame relays as {} bytes",
                    text.len(),
                    frame.len()
                );
                round_trip_server(&relayed);
            }
        }
        Err(ProtocolError::TooLarge { len, max }) => {
            assert_eq!((len, max), (text.len(), MAX_CLIENT_MESSAGE_BYTES));
        }
        Err(ProtocolError::Malformed(_)) => {
            assert!(text.len() <= MAX_CLIENT_MESSAGE_BYTES);
        }
    }

    match ServerMessage::decode(text) {
        Ok(message) => round_trip_server(&message),
        Err(ProtocolError::TooLarge { len, .. }) => assert!(len > MAX_MESSAGE_BYTES),
        Err(ProtocolError::Malformed(_)) => assert!(text.len() <= MAX_MESSAGE_BYTES),
    }

    // The HTTP API's answers, as a client reads them.
    json_round_trip::<CreatedRoom>(text);
    json_round_trip::<RoomInfo>(text);
    json_round_trip::<ApiError>(text);
}

/// Checks that a server message encodes to text that decodes to itself.
fn round_trip_server(message: &ServerMessage) {
    let text = message.encode();
    let again = ServerMessage::decode(&text)
        .unwrap_or_else(|e| panic!("{message:?} encoded as {text} does not decode: {e}"));
    assert_eq!(&again, message, "server message changed through {text}");
}

/// If `text` decodes as `T`, its encoding decodes to the same value.
fn json_round_trip<T>(text: &str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = serde_json::from_str::<T>(text) {
        let json = serde_json::to_string(&value).expect("decoded values serialise");
        let again: T = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("{value:?} encoded as {json} does not decode: {e}"));
        assert_eq!(again, value, "changed through {json}");
    }
}

/// Target `create_body`: the input as the body of `POST /api/rooms`.
///
/// Accepted exactly when it is at most [`MAX_CREATE_BODY_BYTES`] and blank
/// (ASCII whitespace) or one JSON object; an object stays accepted with
/// whitespace around it, and the input wrapped as a string in an object
/// is accepted when it fits.
pub fn create_body(data: &[u8]) {
    let result = CreateRoomRequest::parse(data);
    let blank = data.iter().all(u8::is_ascii_whitespace);
    let object = matches!(
        serde_json::from_slice::<serde_json::Value>(data),
        Ok(serde_json::Value::Object(_))
    );
    let fits = data.len() <= MAX_CREATE_BODY_BYTES;
    match &result {
        Ok(_) => assert!(fits && (blank || object), "accepted {data:?}"),
        Err(ProtocolError::TooLarge { len, max }) => {
            assert!(!fits);
            assert_eq!((*len, *max), (data.len(), MAX_CREATE_BODY_BYTES));
        }
        Err(ProtocolError::Malformed(_)) => assert!(fits && !blank && !object, "refused {data:?}"),
    }
    if result.is_ok() && !blank {
        // What an object looks like from outside: braces, after whitespace.
        let trimmed = data.trim_ascii();
        assert_eq!(
            (trimmed.first(), trimmed.last()),
            (Some(&b'{'), Some(&b'}'))
        );
        let padded = [b" \r\n".as_slice(), data, b"\t\n"].concat();
        if padded.len() <= MAX_CREATE_BODY_BYTES {
            assert!(CreateRoomRequest::parse(&padded).is_ok());
        }
    }
    let wrapped = serde_json::json!({ "note": String::from_utf8_lossy(data) }).to_string();
    if wrapped.len() <= MAX_CREATE_BODY_BYTES {
        assert!(CreateRoomRequest::parse(wrapped.as_bytes()).is_ok());
    }
}

/// Target `link`: the input as a call link, a server address and a token.
///
/// Parsing never panics; a parsed link prints as a link that parses to
/// the same server and token; its WebSocket URL names the token; a
/// normalised server address normalises to itself; a token that parses
/// prints as itself. Without the `client` feature only the tokens are
/// checked.
pub fn link(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    tokens(text);
    #[cfg(feature = "client")]
    links(text);
}

/// The token half of [`link`].
fn tokens(text: &str) {
    if let Ok(token) = text.parse::<RoomToken>() {
        assert_eq!(token.as_str(), text);
        assert_eq!(token.to_string().parse::<RoomToken>().ok(), Some(token));
    }
    if let Ok(secret) = text.parse::<ResumeToken>() {
        assert_eq!(secret.as_str(), text);
        let json = serde_json::to_string(&secret).expect("secrets serialise");
        assert_eq!(
            serde_json::from_str::<ResumeToken>(&json).ok(),
            Some(secret)
        );
    }
    if let Ok(id) = text.parse::<ParticipantId>() {
        assert_eq!(id.as_str(), text);
    }
}

/// The link half of [`link`].
#[cfg(feature = "client")]
fn links(text: &str) {
    use crate::client::link::{Link, normalize_server};

    if let Ok(link) = Link::parse(text) {
        let token = link.token().as_str();
        assert_eq!(token.parse::<RoomToken>().ok().as_ref(), Some(link.token()));
        let url = link.url();
        assert!(url.ends_with(&format!("/r/{token}")), "{url}");
        let again = Link::parse(&url).unwrap_or_else(|e| {
            panic!("{text:?} gave the link {url:?}, which does not parse: {e}")
        });
        assert_eq!(again.server(), link.server(), "{text:?} -> {url:?}");
        assert_eq!(again.token(), link.token());
        assert_eq!(again.url(), url);
        let ws = link.ws_url();
        assert!(
            (ws.starts_with("ws://") || ws.starts_with("wss://"))
                && ws.ends_with(&format!("/ws/rooms/{token}")),
            "{text:?} -> {ws:?}"
        );
        assert!(!link.server().ends_with('/'));
    }
    if let Ok(server) = normalize_server(text) {
        assert_eq!(
            normalize_server(&server).ok().as_deref(),
            Some(server.as_str()),
            "{text:?}"
        );
    }
}

/// Reads the fuzzer's bytes as small numbers; past the end, every read
/// gives `None`.
#[derive(Debug)]
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }

    /// A duration: zero, a few milliseconds, seconds, hours, days, or
    /// longer than any calendar (as a mistyped setting could be).
    fn duration(&mut self) -> Option<Duration> {
        let kind = self.u8()?;
        let n = u64::from(self.u16()?);
        Some(match kind % 7 {
            0 => Duration::ZERO,
            1 => Duration::from_millis(n),
            2 => Duration::from_secs(n),
            3 => Duration::from_secs(n * 3600),
            4 => Duration::from_secs(u64::from(self.u32()?) * 86_400),
            5 => Duration::from_secs(u64::from(self.u32()?) << 32),
            _ => Duration::MAX,
        })
    }
}

/// One seat as the room serialises it (the store's form).
#[derive(Debug, Deserialize)]
struct SeatView {
    id: ParticipantId,
    resume: ResumeToken,
    conn: ConnectionId,
    held_until: Option<String>,
}

/// What of a room the checks look at, read from its serialised form.
#[derive(Debug, Deserialize)]
struct RoomView {
    capacity: u8,
    seats: Vec<SeatView>,
}

impl RoomView {
    fn of(room: &Room) -> Self {
        let json = serde_json::to_value(room).expect("rooms serialise");
        serde_json::from_value(json).expect("a room's serialised form has its seats")
    }

    /// The connections that hold a seat, with their participants.
    fn live(&self) -> BTreeMap<ConnectionId, ParticipantId> {
        self.seats
            .iter()
            .filter(|s| s.held_until.is_none())
            .map(|s| (s.conn, s.id.clone()))
            .collect()
    }
}

/// The server's side of the connections to one room, as the driver of
/// [`room`] keeps it.
#[derive(Debug, Default)]
struct Connections {
    next: u64,
    /// Open connections (joined or not).
    open: BTreeSet<ConnectionId>,
    /// Connections that closed, or that the room closed.
    closed: BTreeSet<ConnectionId>,
    /// Every resume secret handed out, with the participant it belongs to.
    issued: Vec<(ResumeToken, ParticipantId)>,
}

impl Connections {
    fn fresh(&mut self) -> ConnectionId {
        self.next += 1;
        let conn = ConnectionId(self.next);
        self.open.insert(conn);
        conn
    }

    /// The open connection the byte picks, if any is open.
    fn pick_open(&self, b: u8) -> Option<ConnectionId> {
        pick(&self.open, b)
    }
}

fn pick(set: &BTreeSet<ConnectionId>, b: u8) -> Option<ConnectionId> {
    (!set.is_empty()).then(|| {
        *set.iter()
            .nth(usize::from(b) % set.len())
            .expect("in range")
    })
}

/// A resume secret that the room never issued.
const STRANGER: &str = "AAAAAAAAAAAAAAAAAAAAAA";

/// What one step fed the room.
#[derive(Debug)]
enum Step {
    /// A `join` on `conn`, with or without a resume secret.
    Join {
        conn: ConnectionId,
        resume: Option<ResumeToken>,
    },
    /// Another message on `conn`.
    Message {
        conn: ConnectionId,
        message: ClientMessage,
    },
    /// `conn` closed.
    Disconnect(ConnectionId),
    /// The time moved on and the room was ticked or expired.
    Time,
}

/// Target `room`: one room driven through a sequence of joins (fresh, or
/// resuming with a secret seen before or never issued), messages,
/// disconnects, ticks with the time moving on, and expiry, as a server
/// would drive it.
///
/// After every step: no more seats than the capacity; every output goes
/// to the connection that sent the input or to one that held a seat
/// before it, and nothing follows a connection's close; relayed messages
/// reach only the other participant, naming the sender; a resumed seat
/// keeps its participant id; `next_deadline` is the earliest end of a
/// held seat, and none while no seat is held; every message encodes to
/// text that decodes to the same message; the room's serialised form (as
/// stores keep it) reads back to the same form.
pub fn room(data: &[u8]) {
    let mut input = Bytes(data);
    let Some((config, start)) = room_setup(&mut input) else {
        return;
    };
    let token: RoomToken = "q3V1n0cF2mXb7eYtK9aJ1w".parse().expect("a valid token");
    let mut now = start;
    let mut room = Room::new(token, now, &config).with_ids(IdSource::sequential(1));
    let capacity = config.capacity;
    let mut conns = Connections::default();

    while let Some(op) = input.u8() {
        let before = RoomView::of(&room);
        let Some((step, outputs)) = room_step(op, &mut input, &mut room, &mut conns, &mut now)
        else {
            break;
        };
        let after = RoomView::of(&room);
        // A seat left now is held from now, or from the room's end if
        // that came first.
        let held_from = now.min(room.expires_at());
        check_room_step(
            &step, &outputs, &before, &after, &mut conns, capacity, held_from,
        );
        check_room(&room, &after, &conns, now);
    }
}

/// The room's settings and start time, from the first bytes.
fn room_setup(input: &mut Bytes<'_>) -> Option<(RoomConfig, Timestamp)> {
    let defaults = RoomConfig::default();
    let capacity = input.u8()? % 4;
    let knobs = input.u8()?;
    let mut config = RoomConfig {
        capacity: if capacity == 0 { 2 } else { capacity },
        ..defaults
    };
    if knobs & 1 != 0 {
        config.ttl = input.duration()?;
    }
    if knobs & 2 != 0 {
        config.unused_ttl = input.duration()?;
    }
    if knobs & 4 != 0 {
        config.seat_grace = input.duration()?;
    }
    if knobs & 8 != 0 {
        config.leave_grace = input.duration()?;
    }
    // Late 2027, give or take, at any millisecond.
    let start = Timestamp::from_unix_millis(1_800_000_000_000 + u64::from(input.u32()?));
    Some((config, start))
}

/// Feeds the room one input chosen by `op`; `None` when the bytes ran out.
fn room_step(
    op: u8,
    input: &mut Bytes<'_>,
    room: &mut Room,
    conns: &mut Connections,
    now: &mut Timestamp,
) -> Option<(Step, Vec<Output>)> {
    let ice = IceConfig::default();
    Some(match op % 9 {
        // A new connection joins.
        0 | 1 => {
            let how = input.u8()?;
            let resume = match how % 4 {
                0 | 1 => None,
                2 => {
                    let i = usize::from(input.u8()?);
                    (!conns.issued.is_empty())
                        .then(|| conns.issued[i % conns.issued.len()].0.clone())
                }
                _ => Some(STRANGER.parse().expect("a valid secret")),
            };
            let version = if how & 0xf0 == 0xf0 {
                u32::from(how & 3)
            } else {
                PROTOCOL_VERSION
            };
            let conn = conns.fresh();
            let out = room.join(*now, conn, version, resume.as_ref(), ice);
            (Step::Join { conn, resume }, out)
        }
        // A message on an open connection, or on a new one that has not
        // joined.
        2 | 3 => {
            let which = input.u8()?;
            let kind = input.u8()?;
            let conn = match conns.pick_open(which) {
                Some(conn) if which & 0xf0 != 0xf0 => conn,
                _ => conns.fresh(),
            };
            let message = match kind % 8 {
                0 => ClientMessage::Offer {
                    sdp: format!("v=0 offer {}", input.u8()?),
                },
                1 => ClientMessage::Answer {
                    sdp: format!("v=0 answer {}", input.u8()?),
                },
                2 => ClientMessage::Candidate {
                    candidate: Some(IceCandidate {
                        candidate: format!(
                            "candidate:{} 1 udp 1 127.0.0.1 9 typ host",
                            input.u8()?
                        ),
                        sdp_mid: Some("0".into()),
                        sdp_m_line_index: Some(0),
                        username_fragment: None,
                    }),
                },
                3 => ClientMessage::Candidate { candidate: None },
                4 => ClientMessage::Bye,
                5 => ClientMessage::Leaving,
                _ => {
                    // A second join: the room must refuse it whatever it says.
                    let i = usize::from(input.u8()?);
                    let resume = (!conns.issued.is_empty())
                        .then(|| conns.issued[i % conns.issued.len()].0.clone());
                    if kind & 0x80 != 0 {
                        let out = room.join(*now, conn, PROTOCOL_VERSION, resume.as_ref(), ice);
                        return Some((Step::Join { conn, resume }, out));
                    }
                    ClientMessage::Join {
                        version: PROTOCOL_VERSION,
                        resume,
                    }
                }
            };
            let out = room.handle(*now, conn, message.clone());
            (Step::Message { conn, message }, out)
        }
        // An open connection closes; or the server notices the close of one
        // that was already closed (by the room, or earlier).
        4 | 5 => {
            let which = input.u8()?;
            let conn = if which & 0xc0 == 0xc0 {
                pick(&conns.closed, which)
            } else {
                conns.pick_open(which)
            };
            let Some(conn) = conn else {
                return Some((Step::Time, Vec::new()));
            };
            let was_open = conns.open.remove(&conn);
            conns.closed.insert(conn);
            let out = room.disconnect(*now, conn);
            if !was_open {
                assert_eq!(out, [], "a second close of {conn:?} made outputs");
            }
            (Step::Disconnect(conn), out)
        }
        // Time passes; the room is ticked (as at its deadline) or not.
        6 | 7 => {
            let how = input.u8()?;
            let step = match how % 4 {
                0 => Duration::from_millis(u64::from(input.u8()?)),
                1 => Duration::from_millis(u64::from(input.u16()?)),
                2 => Duration::from_secs(u64::from(input.u16()?)),
                _ => room
                    .next_deadline()
                    .map_or(Duration::ZERO, |t| t.saturating_duration_since(*now)),
            };
            *now = now.saturating_add(step);
            let out = if how & 0x80 != 0 {
                room.tick(*now)
            } else {
                Vec::new()
            };
            if how & 0x80 != 0 {
                assert!(
                    room.next_deadline().is_none_or(|t| t > *now),
                    "a seat due at {:?} outlived a tick at {now:?}",
                    room.next_deadline()
                );
            }
            (Step::Time, out)
        }
        // The room's lifetime ends (as a sweep ends it).
        _ => (Step::Time, room.expire()),
    })
}

/// The checks on one step's outputs.
fn check_room_step(
    step: &Step,
    outputs: &[Output],
    before: &RoomView,
    after: &RoomView,
    conns: &mut Connections,
    capacity: u8,
    held_from: Timestamp,
) {
    assert!(
        after.seats.len() <= usize::from(capacity),
        "{} seats in a room for {capacity} after {step:?}",
        after.seats.len()
    );
    let live_before = before.live();
    let live_after = after.live();
    let sender = match step {
        Step::Join { conn, .. } | Step::Message { conn, .. } | Step::Disconnect(conn) => {
            Some(*conn)
        }
        Step::Time => None,
    };
    let mut closed_now = BTreeSet::new();
    for output in outputs {
        let to = match output {
            Output::Send { to, .. } | Output::Close(to) => *to,
        };
        assert!(
            Some(to) == sender || live_before.contains_key(&to),
            "{output:?} after {step:?} goes to a connection without a seat"
        );
        assert!(
            !closed_now.contains(&to),
            "{output:?} after {step:?} follows the close of its connection"
        );
        if matches!(step, Step::Disconnect(conn) if *conn == to) {
            panic!("{output:?}: a closed connection was sent to after {step:?}");
        }
        match output {
            Output::Close(conn) => {
                closed_now.insert(*conn);
            }
            Output::Send { to, message } => {
                check_message(step, *to, message, before, after, &live_before, conns);
            }
        }
    }
    for conn in closed_now {
        conns.open.remove(&conn);
        conns.closed.insert(conn);
        assert!(
            !live_after.contains_key(&conn),
            "{conn:?} was closed but holds a seat"
        );
    }
    if let Step::Disconnect(conn) = step {
        assert!(
            !live_after.contains_key(conn),
            "{conn:?} closed but holds a seat"
        );
        // A seat just left is held from now on (or freed), never until
        // a time already past.
        if let Some(id) = live_before.get(conn) {
            let from = held_from.to_string();
            for seat in after.seats.iter().filter(|s| &s.id == id) {
                let until = seat.held_until.as_deref().unwrap_or_default();
                assert!(
                    until >= from.as_str(),
                    "{id} held until {until}, before {from}"
                );
            }
        }
    }
}

/// The checks on one message sent to `to`.
fn check_message(
    step: &Step,
    to: ConnectionId,
    message: &ServerMessage,
    before: &RoomView,
    after: &RoomView,
    live_before: &BTreeMap<ConnectionId, ParticipantId>,
    conns: &mut Connections,
) {
    // Times in messages are sent with whole seconds, so the room's own
    // messages (made at any millisecond) need not come back equal; their
    // text must decode and be stable.
    let text = message.encode();
    let decoded = ServerMessage::decode(&text)
        .unwrap_or_else(|e| panic!("{message:?} encoded as {text} does not decode: {e}"));
    assert_eq!(
        decoded.encode(),
        text,
        "{message:?} is not stable through its text"
    );
    let own_id = after
        .live()
        .get(&to)
        .or_else(|| live_before.get(&to))
        .cloned();
    match message {
        ServerMessage::Joined(joined) => {
            let Step::Join { conn, resume } = step else {
                panic!("joined after {step:?}");
            };
            assert_eq!(to, *conn, "joined sent to another connection");
            assert_eq!(
                after.live().get(conn),
                Some(&joined.you),
                "joined but not seated"
            );
            let known = resume
                .as_ref()
                .and_then(|r| before.seats.iter().find(|s| &s.resume == r));
            match known {
                Some(seat) => {
                    assert!(joined.resumed, "a held secret did not resume its seat");
                    assert_eq!(joined.you, seat.id, "a resumed seat changed its id");
                    assert_eq!(Some(&joined.resume), resume.as_ref());
                }
                None => {
                    assert!(!joined.resumed, "resumed without a matching secret");
                    assert!(
                        before.seats.iter().all(|s| s.id != joined.you),
                        "a new seat took an id already seated"
                    );
                }
            }
            if let Some((_, id)) = conns.issued.iter().find(|(r, _)| *r == joined.resume) {
                assert_eq!(id, &joined.you, "one secret, two participants");
            } else {
                conns
                    .issued
                    .push((joined.resume.clone(), joined.you.clone()));
            }
            if let Some(peer) = &joined.peer {
                assert_ne!(peer, &joined.you);
            }
        }
        ServerMessage::PeerJoined { peer, .. }
        | ServerMessage::PeerReconnecting { peer, .. }
        | ServerMessage::PeerLeft { peer, .. } => {
            assert_ne!(
                own_id.as_ref(),
                Some(peer),
                "{message:?} to the peer itself"
            );
        }
        ServerMessage::Offer { from, .. }
        | ServerMessage::Answer { from, .. }
        | ServerMessage::Candidate { from, .. } => {
            let Step::Message {
                conn,
                message: sent,
            } = step
            else {
                panic!("{message:?} relayed after {step:?}");
            };
            assert_ne!(to, *conn, "a message relayed back to its sender");
            assert_eq!(
                live_before.get(conn),
                Some(from),
                "relayed with the wrong sender"
            );
            let same = match (sent, message) {
                (ClientMessage::Offer { sdp: a }, ServerMessage::Offer { sdp: b, .. })
                | (ClientMessage::Answer { sdp: a }, ServerMessage::Answer { sdp: b, .. }) => {
                    a == b
                }
                (
                    ClientMessage::Candidate { candidate: a },
                    ServerMessage::Candidate { candidate: b, .. },
                ) => a == b,
                _ => false,
            };
            assert!(same, "{sent:?} was relayed as {message:?}");
        }
        _ => {}
    }
}

/// The checks on the room after a step.
fn check_room(room: &Room, view: &RoomView, conns: &Connections, now: Timestamp) {
    assert!(view.seats.len() <= usize::from(view.capacity));
    assert_eq!(room.participants(), view.seats.len());
    let held: Vec<&String> = view
        .seats
        .iter()
        .filter_map(|s| s.held_until.as_ref())
        .collect();
    assert_eq!(room.held(), held.len());
    // Written with whole seconds, the earliest time is the smallest text.
    assert_eq!(
        room.next_deadline().map(|t| t.to_string()),
        held.iter().min().map(|t| t.to_string()),
        "next_deadline disagrees with the held seats"
    );
    if let Some(deadline) = room.next_deadline() {
        assert!(
            deadline <= room.expires_at(),
            "a seat held past the room's end"
        );
    }
    for (conn, id) in view.live() {
        assert!(
            conns.open.contains(&conn),
            "{conn:?} is closed but seats {id}"
        );
        assert_eq!(room.participant_on(conn), Some(&id));
    }
    let ids: BTreeSet<_> = view.seats.iter().map(|s| &s.id).collect();
    assert_eq!(ids.len(), view.seats.len(), "two seats, one participant");
    // The store's form reads back as the same room.
    let json = serde_json::to_string(room).expect("rooms serialise");
    let again: Room = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("a room serialised as {json} does not read back: {e}"));
    assert_eq!(
        serde_json::to_string(&again).expect("rooms serialise"),
        json
    );
    let _ = room.info();
    let _ = room.is_expired(now);
}
