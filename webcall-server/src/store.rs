//! Where rooms live. The server talks to rooms only through [`RoomStore`],
//! one call per input, so the in-memory store here can later be joined by
//! one shared between processes (each call then loads the room, applies
//! the input with webcall-core's state machine, and saves it).

use std::sync::Mutex;

use webcall_core::protocol::{ClientMessage, CreatedRoom, ErrorCode, RoomInfo, ServerMessage};
use webcall_core::room::{ConnectionId, IceConfig, Output, RoomConfig, Rooms};
use webcall_core::time::Timestamp;
use webcall_core::token::{ResumeToken, RoomToken};

use crate::error::Result;

/// Room storage: every method is one input to one room (or to all, for
/// [`sweep`](RoomStore::sweep)) and returns what to deliver.
pub trait RoomStore: Send + Sync + std::fmt::Debug + 'static {
    /// Creates a room. The `url` of the answer is left empty for the caller.
    fn create(&self, now: Timestamp) -> Result<CreatedRoom>;

    /// The summary of a live room, `None` when unknown or expired.
    fn info(&self, token: &RoomToken, now: Timestamp) -> Option<RoomInfo>;

    /// `conn` sent `join`. An unknown or expired room answers `room_not_found`.
    fn join(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        version: u32,
        resume: Option<&ResumeToken>,
        ice: IceConfig,
    ) -> Vec<Output>;

    /// `conn` sent a message other than `join`.
    fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
    ) -> Vec<Output>;

    /// `conn` closed or went silent.
    fn disconnect(&self, token: &RoomToken, conn: ConnectionId) -> Vec<Output>;

    /// Removes expired rooms; returns what to tell their participants.
    fn sweep(&self, now: Timestamp) -> Vec<Output>;

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
    fn create(&self, now: Timestamp) -> Result<CreatedRoom> {
        let mut rooms = self.lock();
        let room = rooms.create(now)?;
        Ok(CreatedRoom {
            token: room.token().clone(),
            url: String::new(),
            expires_at: room.expires_at(),
        })
    }

    fn info(&self, token: &RoomToken, now: Timestamp) -> Option<RoomInfo> {
        self.lock().get(token, now).map(|r| r.info())
    }

    fn join(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        version: u32,
        resume: Option<&ResumeToken>,
        ice: IceConfig,
    ) -> Vec<Output> {
        match self.lock().get_mut(token, now) {
            Some(room) => room.join(now, conn, version, resume, ice),
            None => not_found(conn),
        }
    }

    fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
    ) -> Vec<Output> {
        let mut rooms = self.lock();
        // An expired room still answers (with `room_expired`) until swept.
        match rooms.get_mut(token, Timestamp::from_unix_millis(0)) {
            Some(room) => room.handle(now, conn, message),
            None => not_found(conn),
        }
    }

    fn disconnect(&self, token: &RoomToken, conn: ConnectionId) -> Vec<Output> {
        let mut rooms = self.lock();
        match rooms.get_mut(token, Timestamp::from_unix_millis(0)) {
            Some(room) => room.disconnect(conn),
            None => Vec::new(),
        }
    }

    fn sweep(&self, now: Timestamp) -> Vec<Output> {
        self.lock().sweep(now)
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}
