//! Delivery of room outputs to connections: a map from [`ConnectionId`] to
//! the bounded queue that connection's task drains onto its socket.
//!
//! Closing a connection is removing its queue: the task sends what is still
//! queued, sees the queue end, and closes the socket. A connection whose
//! queue is full (it stopped reading) is closed the same way rather than
//! let it hold memory. A hub shared between processes would route an id to
//! the process that holds the socket; the interface stays the same.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use webcall_core::room::{ConnectionId, Output};

/// How many frames may wait for one connection. Signaling is a handful of
/// messages per call; a connection this far behind is not reading.
pub const QUEUE_LEN: usize = 64;

/// One encoded frame on its way to a connection.
pub type Frame = String;

/// The receiving end a connection task drains.
pub type Outbox = mpsc::Receiver<Frame>;

/// Routes frames to connections by id.
#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    senders: RwLock<HashMap<ConnectionId, mpsc::Sender<Frame>>>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new connection: its id and the queue to drain.
    pub fn register(&self) -> (ConnectionId, Outbox) {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let (tx, rx) = mpsc::channel(QUEUE_LEN);
        self.write().insert(id, tx);
        (id, rx)
    }

    /// Forgets a connection; its task ends after draining its queue.
    pub fn remove(&self, id: ConnectionId) {
        self.write().remove(&id);
    }

    /// How many connections are registered.
    pub fn len(&self) -> usize {
        self.senders.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when no connection is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Carries out a room's outputs, in order.
    pub fn deliver(&self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    let sent = {
                        let senders = self.senders.read().unwrap_or_else(|p| p.into_inner());
                        senders.get(&to).map(|tx| tx.try_send(message.encode()))
                    };
                    if let Some(Err(mpsc::error::TrySendError::Full(_))) = sent {
                        tracing::warn!(
                            conn = to.0,
                            "connection is not reading its messages; closing it"
                        );
                        self.remove(to);
                    }
                }
                Output::Close(id) => self.remove(id),
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ConnectionId, mpsc::Sender<Frame>>> {
        self.senders.write().unwrap_or_else(|p| p.into_inner())
    }
}
