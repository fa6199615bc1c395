//! Where rooms live. The server talks to rooms only through [`RoomStore`],
//! one call per input, so the in-memory store here can later be joined by
//! one shared between processes (each call then loads the room, applies
//! the input with webcall-core's state machine, and saves it).

use std::sync::Mutex;

use webcall_core::protocol::{ClientMessage, CreatedRoom, ErrorCode, RoomInfo, ServerMessage};
use webcall_core::room::{ConnectionId, Creator, IceConfig, Output, RoomConfig, Rooms};
use webcall_core::time::Timestamp;
use webcall_core::token::{ResumeToken, RoomToken};

use crate::error::Result;

/// A `join` as the store needs it.
#[derive(Debug)]
pub struct Join<'a> {
    /// The connection that sent it.
    pub conn: ConnectionId,
    /// The protocol version the client speaks.
    pub version: u32,
    /// The secret from an earlier `joined`, if any.
    pub resume: Option<&'a ResumeToken>,
    /// The ICE configuration computed for this participant.
    pub ice: IceConfig,
}

/// Carries out a room's outputs (the server passes its hub's delivery).
pub type Deliver<'a> = &'a (dyn Fn(Vec<Output>) + Sync);

/// Room storage: every method is one input to one room (or to all, for
/// [`sweep`](RoomStore::sweep)).
///
/// Outputs go to `deliver` *before* the room accepts its next input, so
/// every connection sees a room's messages in the order the room made them
/// (a `joined` is never overtaken by the `peer_joined` that follows it).
/// `deliver` must not block or call back into the store.
pub trait RoomStore: Send + Sync + std::fmt::Debug + 'static {
    /// Creates a room for `creator`, within the limits per client, per
    /// network and in all. The `url` of the answer is left empty for the
    /// caller.
    fn create(&self, now: Timestamp, creator: Creator) -> Result<CreatedRoom>;

    /// The summary of a live room, `None` when unknown or expired.
    fn info(&self, token: &RoomToken, now: Timestamp) -> Option<RoomInfo>;

    /// A connection sent `join`. An unknown or expired room answers
    /// `room_not_found`; the room answers the rest (a second `join` on a
    /// seated connection is `already_joined`).
    fn join(&self, token: &RoomToken, now: Timestamp, join: Join<'_>, deliver: Deliver<'_>);

    /// True while `conn` holds a seat in the room.
    fn holds_seat(&self, token: &RoomToken, conn: ConnectionId) -> bool;

    /// `conn` sent a message other than `join` (before its `join`, the
    /// room answers `not_joined`).
    fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
        deliver: Deliver<'_>,
    );

    /// `conn` closed or went silent. Its seat, if it had one, is held for
    /// a grace period; returns when to call [`tick`](RoomStore::tick) for
    /// the room next (`None` when `conn` held no seat).
    fn disconnect(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        deliver: Deliver<'_>,
    ) -> Option<Timestamp>;

    /// The time is `now`: frees the room's held seats whose grace is over.
    /// Returns when to call again, `None` when no seat is held.
    fn tick(&self, token: &RoomToken, now: Timestamp, deliver: Deliver<'_>) -> Option<Timestamp>;

    /// Removes expired rooms and tells their participants.
    fn sweep(&self, now: Timestamp, deliver: Deliver<'_>);

    /// How many rooms are stored.
    fn len(&self) -> usize;

    /// True when no room is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every room in this process's memory, behind one mutex. Each call holds
/// the lock only for the state machine's few microseconds.
#[derive(Debug)]
pub struct MemoryStore {
    rooms: Mutex<Rooms>,
}

impl MemoryStore {
    /// An empty store whose rooms get `config`.
    pub fn new(config: RoomConfig) -> Self {
        Self {
            rooms: Mutex::new(Rooms::new(config)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rooms> {
        // A panic elsewhere while holding the lock leaves the rooms as they
        // were between two inputs; keep serving them.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn not_found(conn: ConnectionId) -> Vec<Output> {
    vec![
        Output::Send {
            to: conn,
            message: ServerMessage::error(ErrorCode::RoomNotFound),
        },
        Output::Close(conn),
    ]
}

impl RoomStore for MemoryStore {
    fn create(&self, now: Timestamp, creator: Creator) -> Result<CreatedRoom> {
        let mut rooms = self.lock();
        let room = rooms.create_for(now, creator)?;
        Ok(CreatedRoom {
            token: room.token().clone(),
            url: String::new(),
            expires_at: room.expires_at(),
            join_by: room.join_by(),
        })
    }

    fn info(&self, token: &RoomToken, now: Timestamp) -> Option<RoomInfo> {
        self.lock().get(token, now).map(|r| r.info())
    }

    fn join(&self, token: &RoomToken, now: Timestamp, join: Join<'_>, deliver: Deliver<'_>) {
        let mut rooms = self.lock();
        // The room itself refuses a join once expired.
        deliver(match rooms.get_mut_including_expired(token) {
            Some(room) => room.join(now, join.conn, join.version, join.resume, join.ice),
            None => not_found(join.conn),
        });
    }

    fn holds_seat(&self, token: &RoomToken, conn: ConnectionId) -> bool {
        self.lock()
            .get_mut_including_expired(token)
            .is_some_and(|room| room.participant_on(conn).is_some())
    }

    fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
        deliver: Deliver<'_>,
    ) {
        let mut rooms = self.lock();
        // An expired room still answers (with `room_expired`) until swept.
        deliver(match rooms.get_mut_including_expired(token) {
            Some(room) => room.handle(now, conn, message),
            None => not_found(conn),
        });
    }

    fn disconnect(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        deliver: Deliver<'_>,
    ) -> Option<Timestamp> {
        let mut rooms = self.lock();
        let room = rooms.get_mut_including_expired(token)?;
        let seated = room.participant_on(conn).is_some();
        deliver(room.disconnect(now, conn));
        room.next_deadline().filter(|_| seated)
    }

    fn tick(&self, token: &RoomToken, now: Timestamp, deliver: Deliver<'_>) -> Option<Timestamp> {
        let mut rooms = self.lock();
        let room = rooms.get_mut_including_expired(token)?;
        deliver(room.tick(now));
        room.next_deadline()
    }

    fn sweep(&self, now: Timestamp, deliver: Deliver<'_>) {
        let mut rooms = self.lock();
        deliver(rooms.sweep(now));
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}
