//! The room store and the bus used together, the one way the server feeds
//! rooms their inputs: a room takes one input at a time, and its outputs
//! are delivered before it takes the next, so every connection sees a
//! room's messages in the order the room made them (a `joined` is never
//! overtaken by the `peer_joined` that follows it).
//!
//! The store holds no lock while outputs are delivered: each room's turn
//! is its own async lock here, so a slow delivery to one room never holds
//! up another room or the store. A store shared between processes also
//! hands out the room's [`Lease`] for the turn: it is given back only once
//! the bus has delivered (published) the outputs, so the next input to
//! the room, in whichever process, delivers its outputs after these.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use webcall_core::protocol::{ClientMessage, CreatedRoom, RoomInfo};
use webcall_core::room::{ConnectionId, Creator, Output};
use webcall_core::time::Timestamp;
use webcall_core::token::RoomToken;

use crate::bus::Bus;
use crate::error::Result;
use crate::store::{Held, Join, Lease, RoomStore};

/// How many rooms with a held seat due one call to
/// [`RoomService::tick_due`] takes on; the rest wait for the next call.
const DUE_BATCH: usize = 500;

/// A store and a bus, one room input at a time.
#[derive(Debug)]
pub(crate) struct RoomService {
    store: Arc<dyn RoomStore>,
    bus: Arc<dyn Bus>,
    /// Each room's turn, while some task takes or waits for it.
    turns: Mutex<HashMap<RoomToken, Arc<tokio::sync::Mutex<()>>>>,
}

/// One room's turn: that room takes no other input until it is ended
/// (or dropped, which gives the store's lease back in the background).
struct Turn<'a> {
    service: &'a RoomService,
    token: RoomToken,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    lease: Option<Lease>,
}

impl Turn<'_> {
    /// Ends the turn once the outputs are delivered, giving the store's
    /// lease back first.
    async fn end(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.lease.take());
        let mut turns = self.service.lock_turns();
        // Forget the room's lock when nobody else holds or waits for it
        // (the map's reference and this turn's are the only ones left).
        if let Some(lock) = turns.get(&self.token)
            && Arc::strong_count(lock) == 2
        {
            turns.remove(&self.token);
        }
        self.guard.take();
    }
}

impl RoomService {
    pub(crate) fn new(store: Arc<dyn RoomStore>, bus: Arc<dyn Bus>) -> Self {
        Self {
            store,
            bus,
            turns: Mutex::default(),
        }
    }

    fn lock_turns(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<RoomToken, Arc<tokio::sync::Mutex<()>>>> {
        self.turns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the room's turn in this process, then for its lease
    /// from the store.
    async fn turn(&self, token: &RoomToken) -> Result<Turn<'_>> {
        let lock = self.lock_turns().entry(token.clone()).or_default().clone();
        let mut turn = Turn {
            service: self,
            token: token.clone(),
            guard: Some(lock.lock_owned().await),
            lease: None,
        };
        turn.lease = Some(self.store.lease(token).await?);
        Ok(turn)
    }

    /// See [`RoomStore::outlives_process`].
    pub(crate) fn outlives_process(&self) -> bool {
        self.store.outlives_process()
    }

    /// The store, for what only it can count.
    pub(crate) fn store(&self) -> &Arc<dyn RoomStore> {
        &self.store
    }

    /// See [`RoomStore::create`].
    pub(crate) async fn create(&self, now: Timestamp, creator: Creator) -> Result<CreatedRoom> {
        self.store.create(now, creator).await
    }

    /// See [`RoomStore::info`].
    pub(crate) async fn info(&self, token: &RoomToken, now: Timestamp) -> Result<Option<RoomInfo>> {
        self.store.info(token, now).await
    }

    /// See [`RoomStore::holds_seat`].
    pub(crate) async fn holds_seat(&self, token: &RoomToken, conn: ConnectionId) -> Result<bool> {
        self.store.holds_seat(token, conn).await
    }

    /// A `join`, answered.
    pub(crate) async fn join(&self, token: &RoomToken, now: Timestamp, join: Join) -> Result<()> {
        let turn = self.turn(token).await?;
        let conn = join.conn;
        let outputs = self.store.join(token, now, join).await?;
        crate::metrics::room_input("join", conn, &outputs);
        self.bus.deliver(outputs).await;
        turn.end().await;
        Ok(())
    }

    /// Any other message, answered or relayed.
    pub(crate) async fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
    ) -> Result<()> {
        let turn = self.turn(token).await?;
        let kind = crate::metrics::message_type(&message);
        let outputs = self.store.handle(token, now, conn, message).await?;
        crate::metrics::room_input(kind, conn, &outputs);
        self.bus.deliver(outputs).await;
        turn.end().await;
        Ok(())
    }

    /// A connection closed; the other side is told unless `quietly`.
    /// Returns when to [`tick`](Self::tick) the room.
    pub(crate) async fn disconnect(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        quietly: bool,
    ) -> Result<Option<Timestamp>> {
        let turn = self.turn(token).await?;
        let Held { outputs, next_tick } = self.store.disconnect(token, now, conn).await?;
        if !quietly {
            self.bus.deliver(outputs).await;
        }
        turn.end().await;
        Ok(next_tick)
    }

    /// Frees the room's held seats that are due; returns when to call
    /// again.
    pub(crate) async fn tick(
        &self,
        token: &RoomToken,
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let turn = self.turn(token).await?;
        let Held { outputs, next_tick } = self.store.tick(token, now).await?;
        self.bus.deliver(outputs).await;
        turn.end().await;
        Ok(next_tick)
    }

    /// Ticks every room whose held seat is due at `now` by the store's
    /// account ([`RoomStore::due`]): with a store shared between
    /// processes, the process that scheduled a tick may be gone, so every
    /// instance calls this about once a second. Returns how many rooms
    /// were ticked; a room that fails is logged and left for the next
    /// call.
    pub(crate) async fn tick_due(&self, now: Timestamp) -> Result<usize> {
        let mut ticked = 0;
        for token in self.store.due(now, DUE_BATCH).await? {
            match self.tick(&token, now).await {
                Ok(_) => ticked += 1,
                Err(e) => tracing::debug!(?token, "cannot free a room's held seats now: {e}"),
            }
        }
        Ok(ticked)
    }

    /// The server instance numbered `instance` is gone: in every room
    /// where its connections held a seat, those seats are held for their
    /// participants as for any dropped connection (the other side hears
    /// `peer_reconnecting`), to be freed by [`tick_due`](Self::tick_due)
    /// after the grace unless they come back through another instance.
    /// Then the store forgets the instance. Returns how many rooms were
    /// released; on an error, the instance is kept for another attempt.
    pub(crate) async fn release_instance(&self, instance: u64, now: Timestamp) -> Result<usize> {
        let mut released = 0;
        let mut failed = None;
        for token in self.store.instance_rooms(instance).await? {
            let result = async {
                let turn = self.turn(&token).await?;
                let held = self
                    .store
                    .disconnect_instance(&token, now, instance)
                    .await?;
                self.bus.deliver(held.outputs).await;
                turn.end().await;
                Ok::<_, crate::Error>(())
            }
            .await;
            match result {
                Ok(()) => released += 1,
                Err(e) => failed = Some(e),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        self.store.forget_instance(instance).await?;
        Ok(released)
    }

    /// Removes expired rooms and tells their participants; returns how
    /// many outputs that made.
    pub(crate) async fn sweep(&self, now: Timestamp) -> Result<usize> {
        // An expired room's participants are closed by these outputs:
        // whatever a concurrent input to such a room delivers after them
        // finds no connection.
        let outputs: Vec<Output> = self.store.sweep(now).await?;
        let n = outputs.len();
        self.bus.deliver(outputs).await;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::store::MemoryStore;
    use webcall_core::protocol::{PROTOCOL_VERSION, ServerMessage};
    use webcall_core::room::{IceConfig, RoomConfig};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn joins_from_many_tasks_reach_each_connection_in_order() {
        // Many rooms, two participants each joining at once from their own
        // tasks: the first to join always sees its `joined` before
        // `peer_joined`, and the turns are forgotten afterwards.
        let hub = Arc::new(Hub::new());
        let service = Arc::new(RoomService::new(
            Arc::new(MemoryStore::new(RoomConfig::default())),
            hub.clone(),
        ));
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let token = service.create(now, Creator::default()).await.unwrap().token;
            for _ in 0..2 {
                let (service, token) = (service.clone(), token.clone());
                let (conn, mut outbox) = hub.register();
                tasks.push(tokio::spawn(async move {
                    let join = Join {
                        conn,
                        version: PROTOCOL_VERSION,
                        resume: None,
                        ice: IceConfig::default(),
                    };
                    service.join(&token, now, join).await.unwrap();
                    let first = ServerMessage::decode(&outbox.recv().await.unwrap()).unwrap();
                    assert!(matches!(first, ServerMessage::Joined(_)), "{first:?}");
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert!(service.lock_turns().is_empty());
    }
}
