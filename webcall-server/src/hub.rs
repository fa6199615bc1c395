//! Delivery of room outputs to connections: a map from [`ConnectionId`] to
//! the bounded queue that connection's task drains onto its socket.
//!
//! Closing a connection is removing its queue: the task sends what is still
//! queued, sees the queue end, and closes the socket. Each queue is bounded
//! in messages and in bytes, and all queues together in bytes
//! ([`QueueLimits`]); a connection whose queue overflows has stopped
//! reading and is cut off the same way (its task then closes with
//! `too_slow`) rather than let it hold memory. The hub holds this
//! process's connections only; it is the in-memory [`Bus`](crate::bus::Bus),
//! and a bus between processes would hand each output to the hub of the
//! process that holds the socket.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;
use webcall_core::room::{ConnectionId, Output};

/// One encoded frame on its way to a connection.
pub type Frame = String;

/// How much may wait for connections. The server derives these from its
/// rate limits ([`crate::Config::queue_limits`]), so that whatever a
/// sender may send in a burst fits in the receiver's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Frames waiting for one connection.
    pub messages: usize,
    /// Bytes waiting for one connection.
    pub bytes: usize,
    /// Bytes waiting for all connections together.
    pub total_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        crate::Config::default().queue_limits()
    }
}

/// The receiving end a connection task drains.
#[derive(Debug)]
pub struct Outbox {
    rx: mpsc::Receiver<Frame>,
    shared: Arc<Queue>,
    total: Arc<AtomicUsize>,
}

impl Outbox {
    /// The next frame; `None` once the hub removed this connection and the
    /// queue is drained.
    pub async fn recv(&mut self) -> Option<Frame> {
        let frame = self.rx.recv().await?;
        self.shared.bytes.fetch_sub(frame.len(), Ordering::AcqRel);
        self.total.fetch_sub(frame.len(), Ordering::AcqRel);
        Some(frame)
    }

    /// True when the hub cut this connection off because its queue
    /// overflowed (it stopped reading).
    pub fn cut_off(&self) -> bool {
        self.shared.cut_off.load(Ordering::Acquire)
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(frame) = self.rx.try_recv() {
            self.total.fetch_sub(frame.len(), Ordering::AcqRel);
        }
    }
}

/// What the hub and a connection's [`Outbox`] share.
#[derive(Debug, Default)]
struct Queue {
    bytes: AtomicUsize,
    cut_off: AtomicBool,
}

#[derive(Debug)]
struct Entry {
    tx: mpsc::Sender<Frame>,
    queue: Arc<Queue>,
}

/// How many low bits of a [`ConnectionId`] count connections within one
/// instance; the bits above name the instance (see [`instance_of`]), so
/// that ids from instances sharing a store never collide and a bus can
/// route an output to the instance that holds its connection.
pub const INSTANCE_SHIFT: u32 = 40;

/// The instance number a connection id was issued by (0 for a server
/// that shares nothing).
pub fn instance_of(conn: ConnectionId) -> u64 {
    conn.0 >> INSTANCE_SHIFT
}

/// Routes frames to connections by id.
#[derive(Debug, Default)]
pub struct Hub {
    limits: QueueLimits,
    /// This instance's number, the high bits of every id it issues.
    instance: u64,
    next_id: AtomicU64,
    senders: RwLock<HashMap<ConnectionId, Entry>>,
    total: Arc<AtomicUsize>,
}

impl Hub {
    /// An empty hub with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty hub whose queues hold at most `limits`.
    pub fn with_limits(limits: QueueLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The same hub issuing ids of instance `instance` (below
    /// 2^(64-[`INSTANCE_SHIFT`])), for a server sharing its store.
    pub fn for_instance(mut self, instance: u64) -> Self {
        self.instance = instance & (u64::MAX >> INSTANCE_SHIFT);
        self
    }

    /// This hub's instance number.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Registers a new connection: its id and the queue to drain.
    pub fn register(&self) -> (ConnectionId, Outbox) {
        let local =
            (self.next_id.fetch_add(1, Ordering::Relaxed) + 1) & ((1 << INSTANCE_SHIFT) - 1);
        let id = ConnectionId(self.instance << INSTANCE_SHIFT | local);
        let (tx, rx) = mpsc::channel(self.limits.messages.max(1));
        let queue = Arc::new(Queue::default());
        self.write().insert(
            id,
            Entry {
                tx,
                queue: queue.clone(),
            },
        );
        let outbox = Outbox {
            rx,
            shared: queue,
            total: self.total.clone(),
        };
        (id, outbox)
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

    /// Bytes waiting in all queues.
    pub fn queued_bytes(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Carries out a room's outputs, in order.
    pub fn deliver(&self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, message } => {
                    self.send(to, message.encode());
                }
                Output::Close(id) => self.remove(id),
            }
        }
    }

    /// Queues `frame` for `to`; false when `to` has no queue any more
    /// (closed, cut off, or never registered here).
    pub fn send(&self, to: ConnectionId, frame: Frame) -> bool {
        let len = frame.len();
        let overflow = {
            let senders = self.senders.read().unwrap_or_else(|p| p.into_inner());
            let Some(entry) = senders.get(&to) else {
                return false;
            };
            let queued = entry.queue.bytes.fetch_add(len, Ordering::AcqRel) + len;
            let total = self.total.fetch_add(len, Ordering::AcqRel) + len;
            let fits = queued <= self.limits.bytes && total <= self.limits.total_bytes;
            let sent = fits && entry.tx.try_send(frame).is_ok();
            if !sent {
                entry.queue.bytes.fetch_sub(len, Ordering::AcqRel);
                self.total.fetch_sub(len, Ordering::AcqRel);
                entry.queue.cut_off.store(true, Ordering::Release);
            }
            (!sent).then_some((queued, total))
        };
        if let Some((queued, total)) = overflow {
            tracing::warn!(
                conn = to.0,
                queued,
                total,
                "connection is not reading its messages; cutting it off"
            );
            self.remove(to);
        }
        true
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ConnectionId, Entry>> {
        self.senders.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webcall_core::protocol::ServerMessage;

    fn frame(n: usize) -> ServerMessage {
        ServerMessage::Offer {
            from: "0123456789abcdef".parse().unwrap(),
            sdp: "x".repeat(n),
        }
    }

    fn send(hub: &Hub, to: ConnectionId, n: usize) {
        hub.deliver(vec![Output::Send {
            to,
            message: frame(n),
        }]);
    }

    #[tokio::test]
    async fn queues_are_bounded_by_messages_and_bytes() {
        let hub = Hub::with_limits(QueueLimits {
            messages: 3,
            bytes: 10_000,
            total_bytes: 1_000_000,
        });
        let (a, mut outbox_a) = hub.register();
        for _ in 0..3 {
            send(&hub, a, 10);
        }
        assert!(!outbox_a.cut_off());
        send(&hub, a, 10);
        assert!(outbox_a.cut_off(), "a fourth frame overflows");
        for _ in 0..3 {
            assert!(outbox_a.recv().await.is_some(), "queued frames still drain");
        }
        assert!(outbox_a.recv().await.is_none());
        assert_eq!(hub.queued_bytes(), 0);

        let (b, outbox_b) = hub.register();
        send(&hub, b, 6_000);
        assert!(!outbox_b.cut_off());
        assert!(hub.queued_bytes() > 6_000);
        send(&hub, b, 6_000);
        assert!(outbox_b.cut_off(), "over 10,000 bytes");
        drop(outbox_b);
        assert_eq!(
            hub.queued_bytes(),
            0,
            "a dropped queue gives its bytes back"
        );
    }

    #[tokio::test]
    async fn all_queues_together_are_bounded() {
        let hub = Hub::with_limits(QueueLimits {
            messages: 100,
            bytes: 10_000,
            total_bytes: 15_000,
        });
        let (a, outbox_a) = hub.register();
        let (b, outbox_b) = hub.register();
        send(&hub, a, 8_000);
        send(&hub, b, 8_000);
        assert!(!outbox_a.cut_off());
        assert!(outbox_b.cut_off(), "the frame past the total is refused");
        assert!(hub.queued_bytes() < 15_000);
    }
}
