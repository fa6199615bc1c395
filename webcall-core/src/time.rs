//! Wall-clock instants as the protocol carries them. The room logic never
//! reads the clock: callers pass `now` in, so tests control time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An instant in UTC with millisecond precision, written on the wire as
/// RFC 3339 with whole seconds (`2026-12-02T11:20:00Z`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current time from the system clock. Only edges (servers,
    /// clients) call this; state machines take a `Timestamp` argument.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Milliseconds since the Unix epoch.
    pub const fn from_unix_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Converts a `SystemTime`; instants before 1970 become the epoch.
    pub fn from_system_time(t: SystemTime) -> Self {
        Self(
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        )
    }

    /// The same instant as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// This instant plus `d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_millis() as u64))
    }

    /// How long after `earlier` this instant is (zero if it is not later).
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_seconds(self.to_system_time())
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl TryFrom<String> for Timestamp {
    type Error = humantime::TimestampError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        humantime::parse_rfc3339_weak(&s).map(Self::from_system_time)
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        t.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_at_second_precision() {
        let t = Timestamp::from_unix_millis(1_796_210_400_000);
        assert_eq!(t.to_string(), "2026-12-02T11:20:00Z");
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-12-02T11:20:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_millis(1000);
        assert_eq!(t.saturating_add(Duration::from_secs(1)).unix_millis(), 2000);
        assert_eq!(
            t.saturating_duration_since(Timestamp::from_unix_millis(5000)),
            Duration::ZERO
        );
    }
}
