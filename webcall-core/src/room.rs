//! The room state machine: seats, join and resume, relay between the two
//! participants, leaving, and expiry.
//!
//! A [`Room`] never touches a socket or the clock. The server feeds it
//! inputs (a join, a message, a disconnect, the current time) and carries
//! out the [`Output`]s it returns: frames to send to a connection, and
//! connections to close. Connections are named by [`ConnectionId`]s that
//! the server hands out, so a room can be stored anywhere (it serialises)
//! and its outputs delivered by whichever process holds the socket.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::protocol::{
    ClientMessage, ErrorCode, ErrorMessage, IceServer, IceTransportPolicy, Joined, LeaveReason,
    PROTOCOL_VERSION, RoomInfo, ServerMessage,
};
use crate::time::Timestamp;
use crate::token::{IdSource, ParticipantId, ResumeToken, RoomToken};

/// How long a room's link works unless configured otherwise: 7 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How long a link nobody has joined works unless configured otherwise:
/// one day. Links made and never used (or made by a script filling the
/// server) lapse long before the week that a used link keeps.
pub const DEFAULT_UNUSED_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a seat whose connection closed without `bye` stays held for
/// its participant unless configured otherwise: 20 seconds, enough for a
/// client to reconnect through a network change or a restarted proxy.
pub const DEFAULT_SEAT_GRACE: Duration = Duration::from_secs(20);

/// How long the seat stays held when the client said `leaving` before its
/// connection closed (a page being closed or reloaded), unless configured
/// otherwise: 3 seconds, enough for a reloaded page to come back, short
/// enough that a closed tab is soon seen as gone.
pub const DEFAULT_LEAVE_GRACE: Duration = Duration::from_secs(3);

/// A WebSocket connection, named by the server that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnectionId(pub u64);

/// What the caller must do after feeding a room an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message on that connection.
    Send {
        /// The connection to send on.
        to: ConnectionId,
        /// The message.
        message: ServerMessage,
    },
    /// Close that connection (after sending what came before).
    Close(ConnectionId),
}

/// The ICE configuration handed to one participant in `joined`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceConfig {
    /// STUN and TURN servers.
    pub servers: Vec<IceServer>,
    /// Which candidates the participant may use.
    pub policy: IceTransportPolicy,
}

/// Settings every room is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// How many participants a room holds. webcall's calls are one to one.
    pub capacity: u8,
    /// How long a room's link works after creation.
    pub ttl: Duration,
    /// How long a room's link works after creation while nobody has
    /// joined it (capped at `ttl`).
    pub unused_ttl: Duration,
    /// How many live rooms one store holds before refusing new ones: the
    /// last resort behind the per-creator limits.
    pub max_rooms: usize,
    /// How many live rooms one client (see [`Creator`]) may hold; 0: no
    /// limit.
    pub rooms_per_client: usize,
    /// How many live rooms one network (see [`Creator`]) may hold; 0: no
    /// limit.
    pub rooms_per_network: usize,
    /// How long a seat whose connection closed without `bye` is held for
    /// its participant to come back; zero frees it at once.
    pub seat_grace: Duration,
    /// How long a seat is held when its client said `leaving` first (a
    /// page closed or reloaded); capped at `seat_grace`.
    pub leave_grace: Duration,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            capacity: 2,
            ttl: DEFAULT_TTL,
            unused_ttl: DEFAULT_UNUSED_TTL,
            max_rooms: 100_000,
            rooms_per_client: 100,
            rooms_per_network: 1_000,
            seat_grace: DEFAULT_SEAT_GRACE,
            leave_grace: DEFAULT_LEAVE_GRACE,
        }
    }
}

/// Who created a room, as keys the creation limits count by. The server
/// derives them from the client's address (one IPv4 address or IPv6 /64
/// is a client; an IPv4 /24 or IPv6 /48 is a network), so that no single
/// network can fill the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Creator {
    /// The client's key, such as `198.51.100.7` or `2001:db8:1:2::/64`.
    pub client: String,
    /// The client's network's key, such as `198.51.100.0/24`.
    pub network: String,
}

/// One participant's seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Seat {
    id: ParticipantId,
    resume: ResumeToken,
    /// The connection that holds the seat; while `held_until` is set, the
    /// connection that held it last (now closed).
    conn: ConnectionId,
    /// The client said `leaving`: when its connection closes, the seat is
    /// held only for the leave grace.
    #[serde(default)]
    leaving: bool,
    /// Set while the seat has no connection: until then its participant
    /// may take it back with the resume secret; then it is freed.
    #[serde(default)]
    held_until: Option<Timestamp>,
}

impl Seat {
    /// True while a live connection holds the seat.
    fn is_live(&self) -> bool {
        self.held_until.is_none()
    }
}

/// A call room: up to `capacity` seats, a lifetime, and the relay rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    token: RoomToken,
    created_at: Timestamp,
    expires_at: Timestamp,
    /// Until somebody joins, the room lapses at this earlier time.
    join_by: Timestamp,
    /// True once somebody has taken a seat.
    used: bool,
    capacity: u8,
    seats: Vec<Seat>,
    /// Who created the room, for the creation limits.
    creator: Creator,
    /// How long a seat is held after its connection closed without `bye`.
    #[serde(default = "default_seat_grace")]
    seat_grace: Duration,
    /// The same after the client said `leaving`.
    #[serde(default = "default_leave_grace")]
    leave_grace: Duration,
    /// Where new participant ids and resume secrets come from.
    #[serde(skip)]
    ids: IdSource,
}

fn default_seat_grace() -> Duration {
    DEFAULT_SEAT_GRACE
}

fn default_leave_grace() -> Duration {
    DEFAULT_LEAVE_GRACE
}

impl Room {
    /// A new empty room.
    pub fn new(token: RoomToken, now: Timestamp, config: &RoomConfig) -> Self {
        Self::created_by(token, now, config, Creator::default())
    }

    /// A new empty room made by `creator`.
    pub fn created_by(
        token: RoomToken,
        now: Timestamp,
        config: &RoomConfig,
        creator: Creator,
    ) -> Self {
        Self {
            token,
            created_at: now,
            expires_at: now.saturating_add(config.ttl),
            join_by: now.saturating_add(config.unused_ttl.min(config.ttl)),
            used: false,
            capacity: config.capacity,
            seats: Vec::new(),
            creator,
            seat_grace: config.seat_grace,
            leave_grace: config.leave_grace.min(config.seat_grace),
            ids: IdSource::default(),
        }
    }

    /// The same room drawing participant ids and resume secrets from
    /// `ids` instead of the operating system's CSPRNG (for tests that
    /// need the same ids on every run).
    pub fn with_ids(mut self, ids: IdSource) -> Self {
        self.ids = ids;
        self
    }

    /// The room's token.
    pub fn token(&self) -> &RoomToken {
        &self.token
    }

    /// When the room was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// When the room's link stops working.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Until somebody joins, the time the link lapses; `None` once used.
    pub fn join_by(&self) -> Option<Timestamp> {
        (!self.used).then_some(self.join_by)
    }

    /// Who created the room.
    pub fn creator(&self) -> &Creator {
        &self.creator
    }

    /// True once the room's lifetime is over: its full lifetime, or the
    /// shorter one of a link nobody joined.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at || (!self.used && now >= self.join_by)
    }

    /// How many seats are taken, held ones included.
    pub fn participants(&self) -> usize {
        self.seats.len()
    }

    /// The public summary served by `GET /api/rooms/{token}`.
    pub fn info(&self) -> RoomInfo {
        RoomInfo {
            token: self.token.clone(),
            participants: self.seats.len() as u8,
            capacity: self.capacity,
            expires_at: self.expires_at,
            join_by: self.join_by(),
            url: None,
        }
    }

    /// The participant seated on the live connection `conn`, if any.
    pub fn participant_on(&self, conn: ConnectionId) -> Option<&ParticipantId> {
        self.live_seat(conn).map(|s| &s.id)
    }

    /// How many seats are held for participants whose connection closed.
    pub fn held(&self) -> usize {
        self.seats.iter().filter(|s| !s.is_live()).count()
    }

    /// The earliest time a held seat is due to be freed: call
    /// [`tick`](Self::tick) then. `None` while no seat is held.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.seats.iter().filter_map(|s| s.held_until).min()
    }

    /// The connections that hold a seat now (held seats, whose
    /// connection is gone, are left out): for a server that must
    /// disconnect the seats of a process that went away.
    pub fn live_connections(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.seats.iter().filter(|s| s.is_live()).map(|s| s.conn)
    }

    fn live_seat(&self, conn: ConnectionId) -> Option<&Seat> {
        self.seats.iter().find(|s| s.is_live() && s.conn == conn)
    }

    /// A `join` arrived on `conn`.
    ///
    /// With a `resume` secret matching a seat, `conn` takes that seat back:
    /// from a held seat at once, from a live one by closing its old
    /// connection with `replaced`. The other participant gets `peer_joined`
    /// with `resumed: true`. Otherwise a free seat is taken, or the join is
    /// refused with `room_full` (held seats count as taken).
    pub fn join(
        &mut self,
        now: Timestamp,
        conn: ConnectionId,
        version: u32,
        resume: Option<&ResumeToken>,
        ice: IceConfig,
    ) -> Vec<Output> {
        if self.participant_on(conn).is_some() {
            return vec![send(conn, ServerMessage::error(ErrorCode::AlreadyJoined))];
        }
        if self.is_expired(now) {
            return fatal(conn, ErrorCode::RoomNotFound);
        }
        if version != PROTOCOL_VERSION {
            return fatal_with(
                conn,
                ErrorMessage::with_detail(
                    ErrorCode::UnsupportedVersion,
                    format_args!("client speaks {version}, server speaks {PROTOCOL_VERSION}"),
                ),
            );
        }

        let mut out = Vec::new();
        let resumed_seat = resume.and_then(|r| self.seats.iter().position(|s| &s.resume == r));
        let (index, resumed) = match resumed_seat {
            Some(i) => {
                let seat = &mut self.seats[i];
                let old = std::mem::replace(&mut seat.conn, conn);
                seat.leaving = false;
                if seat.held_until.take().is_none() {
                    // The old connection is still open (or its close not yet
                    // noticed): it gives way.
                    out.push(send(old, ServerMessage::error(ErrorCode::Replaced)));
                    out.push(Output::Close(old));
                }
                (i, true)
            }
            None => {
                if self.seats.len() >= usize::from(self.capacity) {
                    return fatal(conn, ErrorCode::RoomFull);
                }
                let seat = match (self.ids.participant_id(), self.ids.resume_token()) {
                    (Ok(id), Ok(resume)) => Seat {
                        id,
                        resume,
                        conn,
                        leaving: false,
                        held_until: None,
                    },
                    _ => return fatal(conn, ErrorCode::Unavailable),
                };
                self.seats.push(seat);
                self.used = true;
                (self.seats.len() - 1, false)
            }
        };

        let me = self.seats[index].clone();
        // The other participant, and its connection if live (a held seat
        // is told nothing: its participant learns on coming back).
        let other = self
            .other_than(conn)
            .map(|s| (s.id.clone(), s.is_live().then_some(s.conn)));
        out.push(send(
            conn,
            ServerMessage::Joined(Joined {
                version: PROTOCOL_VERSION,
                you: me.id.clone(),
                resume: me.resume,
                resumed,
                peer: other.as_ref().map(|(id, _)| id.clone()),
                initiator: other.is_some(),
                polite: other.is_none(),
                ice_servers: ice.servers,
                ice_transport_policy: ice.policy,
                capacity: self.capacity,
                expires_at: self.expires_at,
            }),
        ));
        if let Some((_, Some(other_conn))) = other {
            out.push(send(
                other_conn,
                ServerMessage::PeerJoined {
                    peer: me.id,
                    resumed,
                },
            ));
        }
        out
    }

    /// A message other than `join` arrived on `conn`.
    pub fn handle(
        &mut self,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
    ) -> Vec<Output> {
        let Some(me) = self.live_seat(conn).map(|s| s.id.clone()) else {
            return vec![send(conn, ServerMessage::error(ErrorCode::NotJoined))];
        };
        if self.is_expired(now) {
            return self.expire();
        }
        let relayed = match message {
            ClientMessage::Join { .. } => {
                return vec![send(conn, ServerMessage::error(ErrorCode::AlreadyJoined))];
            }
            ClientMessage::Bye => return self.leave(conn, LeaveReason::Bye),
            ClientMessage::Leaving => {
                if let Some(seat) = self.seats.iter_mut().find(|s| s.conn == conn) {
                    seat.leaving = true;
                }
                return Vec::new();
            }
            ClientMessage::Offer { sdp } => ServerMessage::Offer { from: me, sdp },
            ClientMessage::Answer { sdp } => ServerMessage::Answer { from: me, sdp },
            ClientMessage::Candidate { candidate } => ServerMessage::Candidate {
                from: me,
                candidate,
            },
        };
        match self.other_than(conn) {
            Some(other) if other.is_live() => vec![send(other.conn, relayed)],
            // Held for someone reconnecting: what they missed, the one who
            // comes back renegotiates if it needs to.
            Some(_) => Vec::new(),
            None => vec![send(conn, ServerMessage::error(ErrorCode::NoPeer))],
        }
    }

    /// The connection `conn` closed or went silent without `bye`.
    ///
    /// Its seat is held for the seat grace (the leave grace if the client
    /// said `leaving`), and the other participant gets `peer_reconnecting`.
    /// With a grace of zero the seat is freed at once (`peer_left`).
    pub fn disconnect(&mut self, now: Timestamp, conn: ConnectionId) -> Vec<Output> {
        let Some(i) = self
            .seats
            .iter()
            .position(|s| s.is_live() && s.conn == conn)
        else {
            return Vec::new();
        };
        let seat = &self.seats[i];
        let peer = seat.id.clone();
        let grace = if seat.leaving {
            self.leave_grace
        } else {
            self.seat_grace
        };
        if grace.is_zero() {
            let mut out = self.leave(conn, LeaveReason::Disconnected);
            // The connection is already gone: nothing to close.
            out.retain(|o| *o != Output::Close(conn));
            return out;
        }
        let leaving = seat.leaving;
        let until = now.saturating_add(grace).min(self.expires_at);
        self.seats[i].held_until = Some(until);
        self.live_others(conn)
            .map(|to| {
                send(
                    to,
                    ServerMessage::PeerReconnecting {
                        peer: peer.clone(),
                        leaving,
                    },
                )
            })
            .collect()
    }

    /// The time is `now`: frees every held seat whose grace is over and
    /// tells the other participant `peer_left` (reason `disconnected`).
    /// Call it at [`next_deadline`](Self::next_deadline).
    pub fn tick(&mut self, now: Timestamp) -> Vec<Output> {
        let mut out = Vec::new();
        while let Some(i) = self
            .seats
            .iter()
            .position(|s| s.held_until.is_some_and(|t| t <= now))
        {
            let gone = self.seats.remove(i);
            out.extend(self.live_others(gone.conn).map(|to| {
                send(
                    to,
                    ServerMessage::PeerLeft {
                        peer: gone.id.clone(),
                        reason: LeaveReason::Disconnected,
                    },
                )
            }));
        }
        out
    }

    /// The room's lifetime is over: tell everyone and empty it.
    pub fn expire(&mut self) -> Vec<Output> {
        self.seats
            .drain(..)
            .filter(Seat::is_live)
            .flat_map(|s| fatal(s.conn, ErrorCode::RoomExpired))
            .collect()
    }

    fn leave(&mut self, conn: ConnectionId, reason: LeaveReason) -> Vec<Output> {
        let Some(i) = self.seats.iter().position(|s| s.conn == conn) else {
            return Vec::new();
        };
        let gone = self.seats.remove(i);
        let mut out: Vec<Output> = self
            .live_others(conn)
            .map(|to| {
                send(
                    to,
                    ServerMessage::PeerLeft {
                        peer: gone.id.clone(),
                        reason,
                    },
                )
            })
            .collect();
        out.push(Output::Close(conn));
        out
    }

    fn other_than(&self, conn: ConnectionId) -> Option<&Seat> {
        self.seats.iter().find(|s| s.conn != conn)
    }

    /// The live connections of everyone but `conn`.
    fn live_others(&self, conn: ConnectionId) -> impl Iterator<Item = ConnectionId> + '_ {
        self.seats
            .iter()
            .filter(move |s| s.is_live() && s.conn != conn)
            .map(|s| s.conn)
    }
}

fn send(to: ConnectionId, message: ServerMessage) -> Output {
    Output::Send { to, message }
}

fn fatal(conn: ConnectionId, code: ErrorCode) -> Vec<Output> {
    fatal_with(conn, ErrorMessage::new(code))
}

fn fatal_with(conn: ConnectionId, error: ErrorMessage) -> Vec<Output> {
    vec![send(conn, ServerMessage::Error(error)), Output::Close(conn)]
}

/// Every room of one store, by token, with creation limits and expiry.
#[derive(Debug, Default)]
pub struct Rooms {
    config: RoomConfig,
    rooms: HashMap<RoomToken, Room>,
    /// Live rooms per [`Creator::client`].
    per_client: HashMap<String, usize>,
    /// Live rooms per [`Creator::network`].
    per_network: HashMap<String, usize>,
}

impl Rooms {
    /// An empty set of rooms created with `config`.
    pub fn new(config: RoomConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The settings new rooms get.
    pub fn config(&self) -> &RoomConfig {
        &self.config
    }

    /// Creates a room with a fresh token for an anonymous creator (only
    /// the store's total limit applies).
    pub fn create(&mut self, now: Timestamp) -> Result<&Room> {
        self.create_for(now, Creator::default())
    }

    /// Creates a room with a fresh token for `creator`, within the limits
    /// per client, per network and in all.
    pub fn create_for(&mut self, now: Timestamp, creator: Creator) -> Result<&Room> {
        if !self.within_limits(&creator) || self.rooms.len() >= self.config.max_rooms {
            // Expired rooms still count until swept: sweep, then look again.
            self.sweep(now);
        }
        if !self.within_limits(&creator) {
            return Err(Error::TooManyRoomsFromClient);
        }
        if self.rooms.len() >= self.config.max_rooms {
            return Err(Error::TooManyRooms {
                limit: self.config.max_rooms,
            });
        }
        let token = RoomToken::generate()?;
        let room = Room::created_by(token.clone(), now, &self.config, creator);
        self.count(&room.creator, true);
        Ok(self.rooms.entry(token).or_insert(room))
    }

    /// True when `creator` may create one more room.
    fn within_limits(&self, creator: &Creator) -> bool {
        let under = |limit: usize, map: &HashMap<String, usize>, key: &String| {
            limit == 0 || key.is_empty() || map.get(key).copied().unwrap_or(0) < limit
        };
        under(
            self.config.rooms_per_client,
            &self.per_client,
            &creator.client,
        ) && under(
            self.config.rooms_per_network,
            &self.per_network,
            &creator.network,
        )
    }

    /// Counts a room in (`add`) or out of its creator's totals.
    fn count(&mut self, creator: &Creator, add: bool) {
        for (map, key) in [
            (&mut self.per_client, &creator.client),
            (&mut self.per_network, &creator.network),
        ] {
            if key.is_empty() {
                continue;
            }
            if add {
                *map.entry(key.clone()).or_default() += 1;
            } else if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }

    /// How many live rooms `client` holds (expired ones until swept).
    pub fn held_by_client(&self, client: &str) -> usize {
        self.per_client.get(client).copied().unwrap_or(0)
    }

    /// The live room named `token`; `None` when unknown or expired.
    pub fn get(&self, token: &RoomToken, now: Timestamp) -> Option<&Room> {
        self.rooms.get(token).filter(|r| !r.is_expired(now))
    }

    /// The live room named `token`, to feed it an input.
    pub fn get_mut(&mut self, token: &RoomToken, now: Timestamp) -> Option<&mut Room> {
        self.rooms.get_mut(token).filter(|r| !r.is_expired(now))
    }

    /// The room named `token` even when expired but not yet swept: an
    /// expired room still answers its participants (`room_expired`) and
    /// frees their seats until [`sweep`](Self::sweep) removes it.
    pub fn get_mut_including_expired(&mut self, token: &RoomToken) -> Option<&mut Room> {
        self.rooms.get_mut(token)
    }

    /// Removes expired rooms and returns what to tell their participants.
    pub fn sweep(&mut self, now: Timestamp) -> Vec<Output> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        self.rooms.retain(|_, room| {
            if room.is_expired(now) {
                out.extend(room.expire());
                gone.push(std::mem::take(&mut room.creator));
                false
            } else {
                true
            }
        });
        for creator in gone {
            self.count(&creator, false);
        }
        out
    }

    /// How many rooms are stored (expired ones until the next sweep).
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// How many seats are taken in all rooms, held ones included.
    pub fn participants(&self) -> usize {
        self.rooms.values().map(Room::participants).sum()
    }

    /// True when no room is stored.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::IceCandidate;

    const A: ConnectionId = ConnectionId(1);
    const B: ConnectionId = ConnectionId(2);
    const C: ConnectionId = ConnectionId(3);
    const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    fn room() -> Room {
        Room::new(RoomToken::generate().unwrap(), T0, &RoomConfig::default())
    }

    fn ice() -> IceConfig {
        IceConfig {
            servers: vec![IceServer::new("stun:stun.example.org:3478")],
            policy: IceTransportPolicy::All,
        }
    }

    fn join(room: &mut Room, conn: ConnectionId, resume: Option<&ResumeToken>) -> Vec<Output> {
        room.join(T0, conn, PROTOCOL_VERSION, resume, ice())
    }

    fn sent_to(out: &[Output], conn: ConnectionId) -> Vec<ServerMessage> {
        out.iter()
            .filter_map(|o| match o {
                Output::Send { to, message } if *to == conn => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    fn joined(out: &[Output], conn: ConnectionId) -> Joined {
        match sent_to(out, conn).as_slice() {
            [ServerMessage::Joined(j)] => j.clone(),
            other => panic!("expected one joined for {conn:?}, got {other:?}"),
        }
    }

    fn error_code(out: &[Output], conn: ConnectionId) -> ErrorCode {
        match sent_to(out, conn).as_slice() {
            [ServerMessage::Error(e)] => e.code,
            other => panic!("expected one error for {conn:?}, got {other:?}"),
        }
    }

    #[test]
    fn second_participant_is_the_initiator_and_the_first_is_told() {
        let mut r = room();
        let out = join(&mut r, A, None);
        let a = joined(&out, A);
        assert!(a.peer.is_none());
        assert!(!a.initiator);
        assert!(a.polite);
        assert_eq!(a.ice_servers, ice().servers);

        let out = join(&mut r, B, None);
        let b = joined(&out, B);
        assert_eq!(b.peer.as_ref(), Some(&a.you));
        assert!(b.initiator);
        assert!(!b.polite);
        assert_eq!(
            sent_to(&out, A),
            vec![ServerMessage::PeerJoined {
                peer: b.you.clone(),
                resumed: false
            }]
        );
        assert_eq!(r.participants(), 2);
    }

    #[test]
    fn a_third_person_gets_room_full_and_changes_nothing() {
        let mut r = room();
        join(&mut r, A, None);
        join(&mut r, B, None);
        let before = r.clone();
        let out = join(&mut r, C, None);
        assert_eq!(error_code(&out, C), ErrorCode::RoomFull);
        assert!(out.contains(&Output::Close(C)));
        assert!(sent_to(&out, A).is_empty() && sent_to(&out, B).is_empty());
        assert_eq!(r, before);
    }

    #[test]
    fn offers_answers_and_candidates_go_only_to_the_other_participant() {
        let mut r = room();
        let a = joined(&join(&mut r, A, None), A);
        let b = joined(&join(&mut r, B, None), B);

        let out = r.handle(
            T0,
            B,
            ClientMessage::Offer {
                sdp: "offer".into(),
            },
        );
        assert_eq!(
            out,
            vec![send(
                A,
                ServerMessage::Offer {
                    from: b.you.clone(),
                    sdp: "offer".into()
                }
            )]
        );

        let out = r.handle(
            T0,
            A,
            ClientMessage::Answer {
                sdp: "answer".into(),
            },
        );
        assert_eq!(
            out,
            vec![send(
                B,
                ServerMessage::Answer {
                    from: a.you.clone(),
                    sdp: "answer".into()
                }
            )]
        );

        let cand = IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        };
        let out = r.handle(
            T0,
            A,
            ClientMessage::Candidate {
                candidate: Some(cand.clone()),
            },
        );
        assert_eq!(
            out,
            vec![send(
                B,
                ServerMessage::Candidate {
                    from: a.you,
                    candidate: Some(cand)
                }
            )]
        );
    }

    #[test]
    fn relaying_alone_is_a_soft_error() {
        let mut r = room();
        join(&mut r, A, None);
        let out = r.handle(T0, A, ClientMessage::Offer { sdp: "x".into() });
        assert_eq!(error_code(&out, A), ErrorCode::NoPeer);
        assert!(!out.contains(&Output::Close(A)));
    }

    #[test]
    fn messages_before_join_are_refused() {
        let mut r = room();
        let out = r.handle(T0, A, ClientMessage::Offer { sdp: "x".into() });
        assert_eq!(error_code(&out, A), ErrorCode::NotJoined);
        assert_eq!(r.participants(), 0);
    }

    #[test]
    fn joining_twice_on_one_connection_is_refused() {
        let mut r = room();
        join(&mut r, A, None);
        assert_eq!(
            error_code(&join(&mut r, A, None), A),
            ErrorCode::AlreadyJoined
        );
        let out = r.handle(
            T0,
            A,
            ClientMessage::Join {
                version: 1,
                resume: None,
            },
        );
        assert_eq!(error_code(&out, A), ErrorCode::AlreadyJoined);
        // Whatever the second join says, the first one stands.
        let out = r.join(T0, A, 99, None, ice());
        assert_eq!(error_code(&out, A), ErrorCode::AlreadyJoined);
        assert!(!out.contains(&Output::Close(A)));
        assert_eq!(r.participants(), 1);
    }

    #[test]
    fn wrong_version_is_fatal() {
        let mut r = room();
        let out = r.join(T0, A, 99, None, ice());
        assert_eq!(error_code(&out, A), ErrorCode::UnsupportedVersion);
        assert!(out.contains(&Output::Close(A)));
        assert_eq!(r.participants(), 0);
    }

    #[test]
    fn bye_frees_the_seat_and_tells_the_other() {
        let mut r = room();
        let a = joined(&join(&mut r, A, None), A);
        join(&mut r, B, None);
        let out = r.handle(T0, A, ClientMessage::Bye);
        assert_eq!(
            sent_to(&out, B),
            vec![ServerMessage::PeerLeft {
                peer: a.you,
                reason: LeaveReason::Bye
            }]
        );
        assert!(out.contains(&Output::Close(A)));
        assert_eq!(r.participants(), 1);
        // The seat is free for someone else.
        let c = joined(&join(&mut r, C, None), C);
        assert!(c.initiator);
    }

    fn secs(n: u64) -> Timestamp {
        T0.saturating_add(Duration::from_secs(n))
    }

    fn millis(n: u64) -> Timestamp {
        T0.saturating_add(Duration::from_millis(n))
    }

    const B2: ConnectionId = ConnectionId(22);

    /// A and B in a call; B's participant as A learnt it.
    fn call() -> (Room, Joined, Joined) {
        let mut r = room();
        let a = joined(&join(&mut r, A, None), A);
        let b = joined(&join(&mut r, B, None), B);
        (r, a, b)
    }

    #[test]
    fn a_closed_connection_holds_its_seat_and_the_other_hears_reconnecting() {
        let (mut r, _, b) = call();
        let out = r.disconnect(T0, B);
        assert_eq!(
            out,
            vec![send(
                A,
                ServerMessage::PeerReconnecting {
                    peer: b.you.clone(),
                    leaving: false,
                }
            )]
        );
        assert_eq!(r.participants(), 2, "the seat is held, not freed");
        assert_eq!(r.held(), 1);
        assert_eq!(r.next_deadline(), Some(secs(20)));
        assert!(
            r.disconnect(T0, B).is_empty(),
            "a second disconnect is a no-op"
        );
        assert!(
            r.tick(millis(19_999)).is_empty(),
            "not before the grace ends"
        );
        // While held, what A sends reaches nobody and is no error.
        assert!(
            r.handle(T0, A, ClientMessage::Offer { sdp: "x".into() })
                .is_empty()
        );
    }

    #[test]
    fn the_seat_grace_ends_in_peer_left() {
        let (mut r, _, b) = call();
        r.disconnect(T0, B);
        let out = r.tick(secs(20));
        assert_eq!(
            out,
            vec![send(
                A,
                ServerMessage::PeerLeft {
                    peer: b.you.clone(),
                    reason: LeaveReason::Disconnected
                }
            )]
        );
        assert_eq!(r.participants(), 1);
        assert_eq!(r.next_deadline(), None);
        assert!(r.tick(secs(30)).is_empty());
        // The secret no longer names a seat: an ordinary join.
        let out = join(&mut r, B2, Some(&b.resume));
        let b2 = joined(&out, B2);
        assert_ne!(b2.you, b.you);
        assert!(!b2.resumed);
    }

    #[test]
    fn coming_back_within_the_grace_takes_the_same_seat() {
        let (mut r, a, b) = call();
        r.disconnect(T0, B);
        let out = r.join(secs(5), B2, PROTOCOL_VERSION, Some(&b.resume), ice());
        let b2 = joined(&out, B2);
        assert_eq!(b2.you, b.you, "same participant id");
        assert!(b2.resumed);
        assert!(b2.initiator);
        assert_eq!(b2.peer.as_ref(), Some(&a.you));
        assert_eq!(
            sent_to(&out, A),
            vec![ServerMessage::PeerJoined {
                peer: b.you.clone(),
                resumed: true
            }]
        );
        assert!(sent_to(&out, B).is_empty(), "the old connection is gone");
        assert!(!out.contains(&Output::Close(B)));
        assert_eq!(r.held(), 0);
        assert_eq!(r.next_deadline(), None);
        assert!(r.tick(secs(60)).is_empty(), "nothing is freed later");
        let out = r.handle(secs(6), A, ClientMessage::Answer { sdp: "x".into() });
        assert!(matches!(out.as_slice(), [Output::Send { to, .. }] if *to == B2));
    }

    #[test]
    fn leaving_then_closing_holds_only_for_the_leave_grace() {
        let (mut r, _, b) = call();
        assert!(r.handle(T0, B, ClientMessage::Leaving).is_empty());
        assert_eq!(r.held(), 0, "leaving alone changes nothing");
        let out = r.disconnect(T0, B);
        assert_eq!(
            sent_to(&out, A),
            vec![ServerMessage::PeerReconnecting {
                peer: b.you.clone(),
                leaving: true,
            }]
        );
        assert_eq!(r.next_deadline(), Some(secs(3)));
        assert!(r.tick(millis(2_999)).is_empty());
        let out = r.tick(secs(3));
        assert_eq!(
            sent_to(&out, A),
            vec![ServerMessage::PeerLeft {
                peer: b.you,
                reason: LeaveReason::Disconnected
            }]
        );
        assert_eq!(r.participants(), 1);
    }

    #[test]
    fn a_reload_after_leaving_takes_the_same_seat() {
        let (mut r, _, b) = call();
        r.handle(T0, B, ClientMessage::Leaving);
        r.disconnect(T0, B);
        let out = r.join(millis(900), B2, PROTOCOL_VERSION, Some(&b.resume), ice());
        assert_eq!(joined(&out, B2).you, b.you);
        assert!(r.tick(secs(4)).is_empty());
        // Leaving is forgotten on return: a later drop gets the full grace.
        r.disconnect(secs(5), B2);
        assert_eq!(r.next_deadline(), Some(secs(25)));
    }

    #[test]
    fn bye_frees_the_seat_at_once_even_after_leaving() {
        let (mut r, a, _) = call();
        r.handle(T0, A, ClientMessage::Leaving);
        let out = r.handle(T0, A, ClientMessage::Bye);
        assert_eq!(
            sent_to(&out, B),
            vec![ServerMessage::PeerLeft {
                peer: a.you,
                reason: LeaveReason::Bye
            }]
        );
        assert_eq!(r.held(), 0);
        assert!(r.disconnect(T0, A).is_empty(), "its close changes nothing");
        assert_eq!(r.participants(), 1);
    }

    #[test]
    fn a_third_person_cannot_take_a_held_seat() {
        let (mut r, _, b) = call();
        r.disconnect(T0, B);
        let out = join(&mut r, C, None);
        assert_eq!(error_code(&out, C), ErrorCode::RoomFull);
        assert!(sent_to(&out, A).is_empty());
        let stranger = ResumeToken::generate().unwrap();
        let out = join(&mut r, C, Some(&stranger));
        assert_eq!(error_code(&out, C), ErrorCode::RoomFull);
        // Once the grace is over, the seat is free for them.
        r.tick(secs(20));
        let c = joined(&join(&mut r, C, None), C);
        assert_ne!(c.you, b.you);
    }

    #[test]
    fn both_held_then_both_back() {
        let (mut r, a, b) = call();
        r.disconnect(T0, A);
        let out = r.disconnect(millis(100), B);
        assert!(out.is_empty(), "nobody live to tell");
        const A2: ConnectionId = ConnectionId(11);
        let out = r.join(secs(1), A2, PROTOCOL_VERSION, Some(&a.resume), ice());
        let a2 = joined(&out, A2);
        assert_eq!(a2.peer.as_ref(), Some(&b.you), "B's seat is still there");
        assert_eq!(out.len(), 1, "a held seat is told nothing");
        let out = r.join(secs(2), B2, PROTOCOL_VERSION, Some(&b.resume), ice());
        assert_eq!(joined(&out, B2).you, b.you);
        assert_eq!(
            sent_to(&out, A2),
            vec![ServerMessage::PeerJoined {
                peer: b.you,
                resumed: true
            }]
        );
    }

    #[test]
    fn a_zero_grace_frees_the_seat_at_once() {
        let config = RoomConfig {
            seat_grace: Duration::ZERO,
            ..RoomConfig::default()
        };
        let mut r = Room::new(RoomToken::generate().unwrap(), T0, &config);
        join(&mut r, A, None);
        let b = joined(&join(&mut r, B, None), B);
        let out = r.disconnect(T0, B);
        assert_eq!(
            out,
            vec![send(
                A,
                ServerMessage::PeerLeft {
                    peer: b.you,
                    reason: LeaveReason::Disconnected
                }
            )]
        );
        assert_eq!(r.participants(), 1);
    }

    #[test]
    fn a_held_seat_lapses_with_the_room() {
        let config = RoomConfig {
            ttl: Duration::from_secs(10),
            ..RoomConfig::default()
        };
        let mut r = Room::new(RoomToken::generate().unwrap(), T0, &config);
        join(&mut r, A, None);
        join(&mut r, B, None);
        r.disconnect(secs(5), B);
        assert_eq!(r.next_deadline(), Some(secs(10)));
        let out = r.expire();
        assert_eq!(error_code(&out, A), ErrorCode::RoomExpired);
        assert!(
            sent_to(&out, B).is_empty(),
            "the held seat's socket is gone"
        );
    }

    #[test]
    fn reload_takes_the_seat_back_before_the_old_socket_is_noticed_dead() {
        let mut r = room();
        join(&mut r, A, None);
        let b = joined(&join(&mut r, B, None), B);

        // B reloads: a new connection with the resume secret, while the
        // server still believes the old one is alive (room is full).
        let out = join(&mut r, B2, Some(&b.resume));
        let b2 = joined(&out, B2);
        assert_eq!(b2.you, b.you, "same participant id");
        assert!(b2.initiator, "the one who comes back makes the offer");
        assert_eq!(error_code(&out, B), ErrorCode::Replaced);
        assert!(out.contains(&Output::Close(B)));
        assert_eq!(
            sent_to(&out, A),
            vec![ServerMessage::PeerJoined {
                peer: b.you.clone(),
                resumed: true
            }]
        );
        assert_eq!(r.participants(), 2);

        // The old socket's close arriving later changes nothing.
        assert!(r.disconnect(T0, B).is_empty());
        assert_eq!(r.participants(), 2);
        // Relay now reaches the new connection.
        let out = r.handle(T0, A, ClientMessage::Answer { sdp: "x".into() });
        assert!(matches!(out.as_slice(), [Output::Send { to, .. }] if *to == B2));
    }

    #[test]
    fn a_wrong_resume_secret_is_an_ordinary_join() {
        let mut r = room();
        join(&mut r, A, None);
        join(&mut r, B, None);
        let stranger = ResumeToken::generate().unwrap();
        let out = join(&mut r, C, Some(&stranger));
        assert_eq!(error_code(&out, C), ErrorCode::RoomFull);
    }

    #[test]
    fn expiry_closes_everyone_and_refuses_joins() {
        let mut r = room();
        join(&mut r, A, None);
        let later = T0.saturating_add(DEFAULT_TTL);
        assert!(r.is_expired(later));
        let out = r.join(later, B, PROTOCOL_VERSION, None, ice());
        assert_eq!(error_code(&out, B), ErrorCode::RoomNotFound);
        let out = r.handle(later, A, ClientMessage::Offer { sdp: "x".into() });
        assert_eq!(error_code(&out, A), ErrorCode::RoomExpired);
        assert!(out.contains(&Output::Close(A)));
        assert_eq!(r.participants(), 0);
    }

    #[test]
    fn rooms_registry_hides_and_sweeps_expired_rooms() {
        let mut rooms = Rooms::new(RoomConfig {
            ttl: Duration::from_secs(60),
            ..RoomConfig::default()
        });
        let token = rooms.create(T0).unwrap().token().clone();
        rooms
            .get_mut(&token, T0)
            .unwrap()
            .join(T0, A, PROTOCOL_VERSION, None, ice());
        let later = T0.saturating_add(Duration::from_secs(61));
        assert!(rooms.get(&token, T0).is_some());
        assert!(rooms.get(&token, later).is_none());
        let out = rooms.sweep(later);
        assert_eq!(error_code(&out, A), ErrorCode::RoomExpired);
        assert!(rooms.is_empty());
    }

    #[test]
    fn rooms_registry_enforces_its_limit() {
        let mut rooms = Rooms::new(RoomConfig {
            max_rooms: 2,
            ..RoomConfig::default()
        });
        rooms.create(T0).unwrap();
        rooms.create(T0).unwrap();
        assert!(matches!(
            rooms.create(T0),
            Err(Error::TooManyRooms { limit: 2 })
        ));
    }

    #[test]
    fn rooms_do_not_affect_each_other() {
        let mut rooms = Rooms::new(RoomConfig::default());
        let t1 = rooms.create(T0).unwrap().token().clone();
        let t2 = rooms.create(T0).unwrap().token().clone();
        rooms
            .get_mut(&t1, T0)
            .unwrap()
            .join(T0, A, PROTOCOL_VERSION, None, ice());
        rooms
            .get_mut(&t1, T0)
            .unwrap()
            .join(T0, B, PROTOCOL_VERSION, None, ice());
        let out = rooms
            .get_mut(&t2, T0)
            .unwrap()
            .join(T0, C, PROTOCOL_VERSION, None, ice());
        assert!(!joined(&out, C).initiator);
        let out = rooms
            .get_mut(&t2, T0)
            .unwrap()
            .handle(T0, C, ClientMessage::Bye);
        assert!(sent_to(&out, A).is_empty() && sent_to(&out, B).is_empty());
        assert_eq!(rooms.get(&t1, T0).unwrap().participants(), 2);
    }

    #[test]
    fn a_room_serialises_for_external_stores() {
        let mut r = room();
        join(&mut r, A, None);
        let json = serde_json::to_string(&r).unwrap();
        let back: Room = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    fn creator(client: &str, network: &str) -> Creator {
        Creator {
            client: client.into(),
            network: network.into(),
        }
    }

    #[test]
    fn a_link_nobody_joins_lapses_after_the_unused_lifetime() {
        let config = RoomConfig {
            unused_ttl: Duration::from_secs(3600),
            ..RoomConfig::default()
        };
        let mut rooms = Rooms::new(config);
        let unused = rooms.create(T0).unwrap().token().clone();
        let used = rooms.create(T0).unwrap().token().clone();
        let info = rooms.get(&unused, T0).unwrap().info();
        assert_eq!(
            info.join_by,
            Some(T0.saturating_add(Duration::from_secs(3600)))
        );
        assert_eq!(info.expires_at, T0.saturating_add(DEFAULT_TTL));
        let out = rooms
            .get_mut(&used, T0)
            .unwrap()
            .join(T0, A, PROTOCOL_VERSION, None, ice());
        assert!(joined(&out, A).peer.is_none());
        assert_eq!(rooms.get(&used, T0).unwrap().info().join_by, None);

        let later = T0.saturating_add(Duration::from_secs(3600));
        assert!(rooms.get(&unused, later).is_none(), "unused link lapsed");
        assert!(
            rooms.get(&used, later).is_some(),
            "a used link keeps its week"
        );
        rooms.sweep(later);
        assert_eq!(rooms.len(), 1);
        let end = T0.saturating_add(DEFAULT_TTL);
        assert!(rooms.get(&used, end).is_none());
    }

    #[test]
    fn one_client_or_network_cannot_fill_the_store() {
        let config = RoomConfig {
            rooms_per_client: 2,
            rooms_per_network: 3,
            max_rooms: 100,
            ..RoomConfig::default()
        };
        let mut rooms = Rooms::new(config);
        let a = creator("10.0.0.1", "10.0.0.0/24");
        let b = creator("10.0.0.2", "10.0.0.0/24");
        let other = creator("192.0.2.1", "192.0.2.0/24");
        rooms.create_for(T0, a.clone()).unwrap();
        rooms.create_for(T0, a.clone()).unwrap();
        assert!(matches!(
            rooms.create_for(T0, a.clone()),
            Err(Error::TooManyRoomsFromClient)
        ));
        rooms.create_for(T0, b.clone()).unwrap();
        assert!(
            matches!(
                rooms.create_for(T0, b.clone()),
                Err(Error::TooManyRoomsFromClient)
            ),
            "the network is full though this client made one"
        );
        rooms.create_for(T0, other.clone()).unwrap();
        assert_eq!(rooms.held_by_client("10.0.0.1"), 2);

        // Unused links lapse after a day, and their creators may make more.
        let next_day = T0.saturating_add(DEFAULT_UNUSED_TTL);
        rooms.create_for(next_day, a.clone()).unwrap();
        assert_eq!(rooms.held_by_client("10.0.0.1"), 1);
        assert_eq!(rooms.len(), 1, "the lapsed rooms were swept");

        let unlimited = RoomConfig {
            rooms_per_client: 0,
            rooms_per_network: 0,
            ..RoomConfig::default()
        };
        let mut rooms = Rooms::new(unlimited);
        for _ in 0..5 {
            rooms.create_for(T0, a.clone()).unwrap();
        }
    }
}
