//! Delivery of room outputs to connections by id, wherever each connection
//! is. [`Bus`] is the seam: in one process the [`Hub`] is the bus (it holds
//! every connection's queue); [`RedisBus`] routes each output to the
//! instance whose hub holds that connection, over Redis pub/sub. Every
//! implementation runs the same behaviour tests (`suite`).

use async_trait::async_trait;
use webcall_core::room::Output;

use crate::hub::Hub;

mod redis;
#[cfg(test)]
mod suite;

pub use redis::RedisBus;

/// Carries room outputs to connections.
#[async_trait]
pub trait Bus: Send + Sync + std::fmt::Debug + 'static {
    /// Carries out `outputs` in order: each `Send` is queued for its
    /// connection, each `Close` ends that connection's queue after what
    /// was queued before it. Outputs for connections that are gone are
    /// dropped. Two calls for one connection arrive in the order made.
    async fn deliver(&self, outputs: Vec<Output>);
}

#[async_trait]
impl Bus for Hub {
    async fn deliver(&self, outputs: Vec<Output>) {
        Hub::deliver(self, outputs);
    }
}

#[cfg(test)]
mod tests {
    // One line per implementation: the whole behaviour suite against it.
    super::suite::bus_suite!(hub, |hub| async move { hub });
}
