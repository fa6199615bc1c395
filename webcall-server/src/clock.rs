//! The server's clock. Wall-clock timestamps (room expiry, held seats) are
//! derived from tokio's clock and one reading of the system clock taken at
//! start, so that a test which pauses and advances tokio's time
//! (`tokio::time::pause`, `advance`) moves every deadline of the server
//! with it, and expiry, idle and join-timeout tests take no wall time.
//!
//! Outside tests tokio's clock is the monotonic system clock, so
//! timestamps follow the system clock as it runs; a step of the system
//! clock after start (not a slew) is not followed.

use std::time::Duration;

use tokio::time::Instant;
use webcall_core::time::Timestamp;

/// Where "now" comes from, for every part of the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// The system clock when the server started.
    wall: Timestamp,
    /// Tokio's clock at the same moment.
    start: Instant,
}

impl Clock {
    /// A clock reading the system clock once, now.
    pub(crate) fn new() -> Self {
        Self {
            wall: Timestamp::now(),
            start: Instant::now(),
        }
    }

    /// The current wall-clock time.
    pub(crate) fn now(&self) -> Timestamp {
        self.wall.saturating_add(self.start.elapsed())
    }

    /// How long until `deadline` (zero when it has passed).
    pub(crate) fn until(&self, deadline: Timestamp) -> Duration {
        deadline.saturating_duration_since(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timestamps_follow_tokio_time() {
        let clock = Clock::new();
        let t0 = clock.now();
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), t0.saturating_add(Duration::from_secs(90)));
        assert_eq!(
            clock.until(t0.saturating_add(Duration::from_secs(100))),
            Duration::from_secs(10)
        );
        assert_eq!(clock.until(t0), Duration::ZERO);
    }
}
