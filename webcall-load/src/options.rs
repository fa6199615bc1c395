//! The whole command line of `webcall-load`, and the settings a test passes
//! to [`crate::run`] directly.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;

use crate::error::{Error, Result};

/// What to run: how many rooms, against which servers, how fast, with how
/// much churn, for how long.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "webcall-load",
    version,
    about = "Load generator for webcall: opens rooms of two WebSocket participants that trade numbered offers, answers and candidates, leave, rejoin and reload, and reports what the server lost, duplicated, misrouted or reordered, its relay latency and its memory."
)]
pub struct Options {
    /// Server base URL; repeat for several instances sharing one room
    /// store. With several, a room's two participants connect to
    /// different ones, so that every message crosses instances.
    #[arg(
        long = "url",
        env = "WEBCALL_LOAD_URL",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8000"
    )]
    pub urls: Vec<String>,

    /// Rooms to open, two participants each.
    #[arg(long, env = "WEBCALL_LOAD_ROOMS", default_value_t = 100)]
    pub rooms: usize,

    /// How long to run once every room is open (e.g. 60s, 10m).
    #[arg(long, env = "WEBCALL_LOAD_DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Messages each participant sends (offers, answers, candidates),
    /// e.g. `2/s` or `30/min`.
    #[arg(long, env = "WEBCALL_LOAD_RATE", default_value = "2/s")]
    pub rate: Rate,

    /// Fraction of participants that leave and come back in each 10 s,
    /// half with `bye` and a fresh join, half with `leaving` and a resume
    /// (a page reload). 0 turns churn off.
    #[arg(long, env = "WEBCALL_LOAD_CHURN", default_value_t = 0.05)]
    pub churn: f64,

    /// How fast rooms are opened (room creation and both joins), e.g.
    /// `500/s`.
    #[arg(long, env = "WEBCALL_LOAD_RAMP", default_value = "500/s")]
    pub ramp: Rate,

    /// After sending stops: how long without a single arrival before
    /// what has not arrived counts as lost.
    #[arg(long, env = "WEBCALL_LOAD_DRAIN", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain: Duration,

    /// Server process to sample resident memory from (`/proc/PID/status`,
    /// each second); repeat for several instances.
    #[arg(
        long = "server-pid",
        env = "WEBCALL_LOAD_SERVER_PID",
        value_delimiter = ','
    )]
    pub server_pids: Vec<u32>,

    /// Seed for the random choices (send phases, churn times and kinds):
    /// the same seed makes the same schedule.
    #[arg(long, env = "WEBCALL_LOAD_SEED")]
    pub seed: Option<u64>,

    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,

    /// No progress lines on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Options {
    /// The settings for `urls` with every other value at its default.
    pub fn new(urls: Vec<String>) -> Self {
        let mut options = Self::parse_from(["webcall-load"]);
        options.urls = urls;
        options
    }

    /// Checks what could only fail later.
    pub fn validate(&self) -> Result<()> {
        if self.urls.is_empty() {
            return Err(Error::Options("give at least one --url".into()));
        }
        if self.rooms == 0 {
            return Err(Error::Options("--rooms must be at least 1".into()));
        }
        if u32::try_from(self.rooms).is_err() {
            return Err(Error::Options(format!(
                "--rooms {} is more than this tool counts; use fewer",
                self.rooms
            )));
        }
        if !(0.0..=10.0).contains(&self.churn) {
            return Err(Error::Options(format!(
                "--churn {} must be a fraction between 0 and 10 (participants per 10 s)",
                self.churn
            )));
        }
        Ok(())
    }
}

/// Events per second, written `N/s`, `N/min` or a bare `N` (per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(f64);

impl Rate {
    /// `per_second` events a second; must be above zero.
    pub fn per_second(per_second: f64) -> Result<Self> {
        if per_second.is_finite() && per_second > 0.0 {
            Ok(Self(per_second))
        } else {
            Err(Error::Options(format!(
                "a rate must be above zero, not {per_second}"
            )))
        }
    }

    /// Events per second.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The time between two events.
    pub fn period(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.0)
    }
}

impl FromStr for Rate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let (count, per) = match s.split_once('/') {
            Some((count, unit)) => match unit.trim() {
                "s" | "sec" | "second" => (count, 1.0),
                "min" | "m" | "minute" => (count, 60.0),
                other => {
                    return Err(Error::Options(format!(
                        "rate {s:?}: unknown unit {other:?}; write N/s or N/min"
                    )));
                }
            },
            None => (s, 1.0),
        };
        let count: f64 = count.trim().parse().map_err(|_| {
            Error::Options(format!("rate {s:?} is not a number; write N/s or N/min"))
        })?;
        Self::per_second(count / per)
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_per_second_and_per_minute() {
        assert_eq!("2/s".parse::<Rate>().unwrap().get(), 2.0);
        assert_eq!("30/min".parse::<Rate>().unwrap().get(), 0.5);
        assert_eq!("1000".parse::<Rate>().unwrap().get(), 1000.0);
        assert_eq!(
            "4/s".parse::<Rate>().unwrap().period(),
            Duration::from_millis(250)
        );
        for bad in ["", "0/s", "-1/s", "x/s", "2/h", "inf"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_valid() {
        let options = Options::new(vec!["http://127.0.0.1:1".into()]);
        options.validate().unwrap();
        assert_eq!(options.rate.get(), 2.0);
        let many = Options::parse_from([
            "webcall-load",
            "--url",
            "http://a:1",
            "--url",
            "http://b:2",
            "--server-pid",
            "7,8",
        ]);
        assert_eq!(many.urls.len(), 2);
        assert_eq!(many.server_pids, [7, 8]);
    }
}
