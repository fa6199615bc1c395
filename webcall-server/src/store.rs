//! Where rooms live. The server talks to rooms only through [`RoomStore`],
//! one call per input, each returning the room's outputs for the caller to
//! deliver (through a [`Bus`](crate::bus::Bus)). The in-memory
//! [`MemoryStore`] keeps every room in this process; a store shared
//! between processes implements the same trait (each call loads the room,
//! applies the input with webcall-core's state machine, and saves it) and
//! runs the same behaviour tests (`suite`). [`RedisStore`] is that shared
//! store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use async_trait::async_trait;
use webcall_core::protocol::{ClientMessage, CreatedRoom, ErrorCode, RoomInfo, ServerMessage};
use webcall_core::room::{ConnectionId, Creator, IceConfig, Output, RoomConfig, Rooms};
use webcall_core::time::Timestamp;
use webcall_core::token::{ResumeToken, RoomToken};

use crate::error::Result;

mod redis;
#[cfg(test)]
mod suite;

pub use self::redis::RedisStore;

/// A `join` as the store needs it.
#[derive(Debug, Clone)]
pub struct Join {
    /// The connection that sent it.
    pub conn: ConnectionId,
    /// The protocol version the client speaks.
    pub version: u32,
    /// The secret from an earlier `joined`, if any.
    pub resume: Option<ResumeToken>,
    /// The ICE configuration computed for this participant.
    pub ice: IceConfig,
}

/// A room's outputs and when its held seats are next due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// What to deliver.
    pub outputs: Vec<Output>,
    /// When to call [`RoomStore::tick`] for the room next; `None` when no
    /// seat is held (or, after a disconnect, the connection held none).
    pub next_tick: Option<Timestamp>,
}

/// A room's lease from its store: while it is held, no other process
/// sharing the store feeds that room an input. The server holds it across
/// "apply the input, deliver the outputs", so that rooms shared between
/// instances still deliver their messages in the order they were made.
///
/// Release it with [`release`](Self::release) once the outputs are
/// delivered; a lease dropped instead is released in the background.
#[must_use = "a lease holds its room until released"]
pub struct Lease {
    release: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Lease {
    /// A lease that holds nothing: for stores in one process, where the
    /// caller's own per-room lock is enough.
    pub fn none() -> Self {
        Self { release: None }
    }

    /// A lease that `release` gives back when awaited (and that is
    /// spawned on the current Tokio runtime if the lease is dropped).
    pub fn releasing_with(release: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            release: Some(Box::pin(release)),
        }
    }

    /// Gives the room back.
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            release.await;
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(release) = self.release.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(release);
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("held", &self.release.is_some())
            .finish()
    }
}

/// Room storage: every method is one input to one room (or to all, for
/// [`sweep`](RoomStore::sweep)), and returns what the room says to do.
///
/// A store does not deliver. The caller delivers a room's outputs before
/// it feeds that room its next input, so every connection sees a room's
/// messages in the order the room made them (a `joined` is never overtaken
/// by the `peer_joined` that follows it); the server does this one room at
/// a time (see `rooms.rs`), so a store in one process needs no lock across
/// deliveries. A store shared between processes hands out a [`Lease`] per
/// room ([`lease`](RoomStore::lease)) that the server holds from the input
/// until its outputs are delivered.
#[async_trait]
pub trait RoomStore: Send + Sync + std::fmt::Debug + 'static {
    /// Creates a room for `creator`, within the limits per client, per
    /// network and in all. The `url` of the answer is left empty for the
    /// caller.
    async fn create(&self, now: Timestamp, creator: Creator) -> Result<CreatedRoom>;

    /// The summary of a live room, `None` when unknown or expired.
    async fn info(&self, token: &RoomToken, now: Timestamp) -> Result<Option<RoomInfo>>;

    /// A connection sent `join`. An unknown or expired room answers
    /// `room_not_found`; the room answers the rest (a second `join` on a
    /// seated connection is `already_joined`).
    async fn join(&self, token: &RoomToken, now: Timestamp, join: Join) -> Result<Vec<Output>>;

    /// True while `conn` holds a seat in the room.
    async fn holds_seat(&self, token: &RoomToken, conn: ConnectionId) -> Result<bool>;

    /// `conn` sent a message other than `join` (before its `join`, the
    /// room answers `not_joined`).
    async fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
    ) -> Result<Vec<Output>>;

    /// `conn` closed or went silent. Its seat, if it had one, is held for
    /// a grace period.
    async fn disconnect(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
    ) -> Result<Held>;

    /// The time is `now`: frees the room's held seats whose grace is over.
    async fn tick(&self, token: &RoomToken, now: Timestamp) -> Result<Held>;

    /// Removes expired rooms; the outputs tell their participants.
    async fn sweep(&self, now: Timestamp) -> Result<Vec<Output>>;

    /// How many rooms are stored (expired ones until swept).
    async fn len(&self) -> Result<usize>;

    /// Takes the room's lease, waiting while another process holds it
    /// (see [`Lease`]). The default holds nothing: rooms that live in
    /// one process need only the caller's per-room lock.
    async fn lease(&self, _token: &RoomToken) -> Result<Lease> {
        Ok(Lease::none())
    }

    /// Up to `limit` rooms with a held seat due at `now`: call
    /// [`tick`](Self::tick) for each. A store that outlives the process
    /// answers this, since the process that scheduled a tick may be gone;
    /// the default (nothing) suits a store whose ticks the process
    /// schedules itself from [`Held::next_tick`].
    async fn due(&self, _now: Timestamp, _limit: usize) -> Result<Vec<RoomToken>> {
        Ok(Vec::new())
    }

    /// The rooms where connections of the server instance numbered
    /// `instance` (see `hub::instance_of`) took a seat, so that another
    /// instance can release them when that one is gone. Default: none.
    async fn instance_rooms(&self, _instance: u64) -> Result<Vec<RoomToken>> {
        Ok(Vec::new())
    }

    /// Every live seat of the room held by a connection of `instance` is
    /// disconnected (held for its participant, as for a dropped socket).
    /// Default: nothing to do.
    async fn disconnect_instance(
        &self,
        _token: &RoomToken,
        _now: Timestamp,
        _instance: u64,
    ) -> Result<Held> {
        Ok(Held::default())
    }

    /// Forgets which rooms `instance` took seats in, once they are
    /// released. Default: nothing to forget.
    async fn forget_instance(&self, _instance: u64) -> Result<()> {
        Ok(())
    }

    /// Checks that the store answers (for a readiness probe); `Err` says
    /// why not. Default: always ready.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    /// True when the rooms outlive this process (another instance, or
    /// this one restarted, serves them): then a shutdown asks clients to
    /// reconnect instead of telling them the server is gone.
    fn outlives_process(&self) -> bool {
        false
    }

    /// True when no room is stored.
    async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// How many seats are taken in all stored rooms, held ones included;
    /// `None` when this store does not count them (the metrics then leave
    /// the participants gauge out).
    async fn participants(&self) -> Result<Option<usize>> {
        Ok(None)
    }
}

/// Every room in this process's memory, behind one mutex. Each call holds
/// the lock only for the state machine's few microseconds, never across
/// an `await`.
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

#[async_trait]
impl RoomStore for MemoryStore {
    async fn create(&self, now: Timestamp, creator: Creator) -> Result<CreatedRoom> {
        let mut rooms = self.lock();
        let room = rooms.create_for(now, creator)?;
        Ok(CreatedRoom {
            token: room.token().clone(),
            url: String::new(),
            expires_at: room.expires_at(),
            join_by: room.join_by(),
        })
    }

    async fn info(&self, token: &RoomToken, now: Timestamp) -> Result<Option<RoomInfo>> {
        Ok(self.lock().get(token, now).map(|r| r.info()))
    }

    async fn join(&self, token: &RoomToken, now: Timestamp, join: Join) -> Result<Vec<Output>> {
        let mut rooms = self.lock();
        // The room itself refuses a join once expired.
        Ok(match rooms.get_mut_including_expired(token) {
            Some(room) => room.join(now, join.conn, join.version, join.resume.as_ref(), join.ice),
            None => not_found(join.conn),
        })
    }

    async fn holds_seat(&self, token: &RoomToken, conn: ConnectionId) -> Result<bool> {
        Ok(self
            .lock()
            .get_mut_including_expired(token)
            .is_some_and(|room| room.participant_on(conn).is_some()))
    }

    async fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
    ) -> Result<Vec<Output>> {
        let mut rooms = self.lock();
        // An expired room still answers (with `room_expired`) until swept.
        Ok(match rooms.get_mut_including_expired(token) {
            Some(room) => room.handle(now, conn, message),
            None => not_found(conn),
        })
    }

    async fn disconnect(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
    ) -> Result<Held> {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut_including_expired(token) else {
            return Ok(Held::default());
        };
        let seated = room.participant_on(conn).is_some();
        let outputs = room.disconnect(now, conn);
        Ok(Held {
            outputs,
            next_tick: room.next_deadline().filter(|_| seated),
        })
    }

    async fn tick(&self, token: &RoomToken, now: Timestamp) -> Result<Held> {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut_including_expired(token) else {
            return Ok(Held::default());
        };
        let outputs = room.tick(now);
        Ok(Held {
            outputs,
            next_tick: room.next_deadline(),
        })
    }

    async fn sweep(&self, now: Timestamp) -> Result<Vec<Output>> {
        Ok(self.lock().sweep(now))
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.lock().len())
    }

    async fn participants(&self) -> Result<Option<usize>> {
        Ok(Some(self.lock().participants()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One line per implementation: the whole behaviour suite against it.
    suite::room_store_suite!(memory, MemoryStore::new);
    suite::room_store_suite!(redis, async crate::store::redis::tests::store_on_own_server);

    #[tokio::test]
    async fn the_memory_store_counts_seats_held_ones_included() {
        let store = MemoryStore::new(RoomConfig::default());
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        assert_eq!(store.participants().await.unwrap(), Some(0));
        let join = |conn| Join {
            conn: ConnectionId(conn),
            version: webcall_core::protocol::PROTOCOL_VERSION,
            resume: None,
            ice: IceConfig::default(),
        };
        let a = store.create(now, Creator::default()).await.unwrap().token;
        let b = store.create(now, Creator::default()).await.unwrap().token;
        store.join(&a, now, join(1)).await.unwrap();
        store.join(&a, now, join(2)).await.unwrap();
        store.join(&b, now, join(3)).await.unwrap();
        assert_eq!(store.participants().await.unwrap(), Some(3));
        // A dropped connection's seat is held, and still counted.
        store.disconnect(&a, now, ConnectionId(2)).await.unwrap();
        assert_eq!(store.participants().await.unwrap(), Some(3));
        store
            .handle(&b, now, ConnectionId(3), ClientMessage::Bye)
            .await
            .unwrap();
        assert_eq!(store.participants().await.unwrap(), Some(2));
    }
}
