//! Wall-clock instants as the protocol carries them. The room logic never
//! reads the clock: callers pass `now` in, so tests control time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An instant in UTC with millisecond precision, written on the wire as
/// RFC 3339 with whole seconds (`2026-12-02T11:20:00Z`).
///
/// Instants end at [`Timestamp::MAX`], the last that RFC 3339's four-digit
/// years can write: every way of making a later one gives `MAX` instead,
/// so that every `Timestamp` can be written (a room whose lifetime is set
/// to centuries still serialises).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(u64);

impl Timestamp {
    /// The last instant there is: 9999-12-31T23:59:59.999Z.
    pub const MAX: Self = Self(253_402_300_799_999);

    /// The current time from the system clock. Only edges (servers,
    /// clients) call this; state machines take a `Timestamp` argument.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Milliseconds since the Unix epoch ([`Timestamp::MAX`] if later).
    pub const fn from_unix_millis(ms: u64) -> Self {
        if ms > Self::MAX.0 {
            Self::MAX
        } else {
            Self(ms)
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> u64 {
        self.0
    }

    /// Converts a `SystemTime`; instants before 1970 become the epoch,
    /// those after [`Timestamp::MAX`] become `MAX`.
    pub fn from_system_time(t: SystemTime) -> Self {
        t.duration_since(UNIX_EPOCH)
            .map_or(Self(0), |d| Self::from_unix_millis(millis(d)))
    }

    /// The same instant as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// This instant plus `d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        Self::from_unix_millis(self.0.saturating_add(millis(d)))
    }

    /// How long after `earlier` this instant is (zero if it is not later).
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A duration's whole milliseconds, saturating (`as u64` would wrap).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
    /// Parses RFC 3339 text. A fraction of a second is dropped, as in
    /// what this type writes: text read and written again reads as the
    /// same instant.
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let t = humantime::parse_rfc3339_weak(&s).map(Self::from_system_time)?;
        Ok(Self(t.0 - t.0 % 1000))
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
    fn every_instant_can_be_written() {
        // Found by fuzzing (fuzz/regressions/room/): a room whose lifetime
        // was set to Duration::MAX could not be serialised; printing its
        // end (past year 9999) panicked.
        let t0 = Timestamp::from_unix_millis(1_800_000_000_123);
        let end = t0.saturating_add(Duration::MAX);
        assert_eq!(end, Timestamp::MAX);
        assert_eq!(end.to_string(), "9999-12-31T23:59:59Z");
        assert_eq!(Timestamp::from_unix_millis(u64::MAX), Timestamp::MAX);
        let json = serde_json::to_string(&end).unwrap();
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_string(), end.to_string());
        // Durations whose milliseconds overflow a u64 saturate too, where
        // `as u64` wrapped them to an earlier time.
        let huge = Duration::from_secs(u64::MAX / 1000 + 1);
        assert_eq!(t0.saturating_add(huge), Timestamp::MAX);
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH + Duration::from_secs(1 << 50)),
            Timestamp::MAX
        );
    }

    #[test]
    fn fractions_of_a_second_are_dropped_when_read() {
        // Found with the signaling target's invariant: a message with
        // `"expires_at":"...:00.5Z"` decoded to an instant that its own
        // encoding did not give back.
        let read: Timestamp = serde_json::from_str("\"2026-12-02T11:20:00.5Z\"").unwrap();
        assert_eq!(read, Timestamp::from_unix_millis(1_796_210_400_000));
        let again: Timestamp =
            serde_json::from_str(&serde_json::to_string(&read).unwrap()).unwrap();
        assert_eq!(again, read);
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
