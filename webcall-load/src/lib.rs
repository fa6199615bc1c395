//! # webcall-load
//!
//! A load generator for the webcall server, as a library (so that a test
//! can drive it) behind the `webcall-load` binary.
//!
//! [`run`] opens rooms of two real WebSocket participants against one or
//! more server URLs, at a set pace, and keeps them trading offers,
//! answers and candidates. Each message carries a stamp (room, sender,
//! sequence number, send time) inside its SDP or candidate text; the
//! receiver checks that it came to the right room from the right sender,
//! once and in order, and measures the relay latency. Participants leave
//! and come back meanwhile (`bye` and a fresh join, or `leaving` and a
//! resume, as a page reload). The [`Report`] counts what was sent,
//! delivered, lost, duplicated, misrouted and reordered, and the servers'
//! resident memory over the run.
//!
//! - [`options`]: the command line ([`Options`]), also built by tests.
//! - `room`: one room and its two participants; the accounting rules.
//! - `payload`: the stamped messages, built from webcall-core's types.
//! - [`stats`]: counters, the latency histogram, the report.
//!
//! ```no_run
//! # async fn demo() -> webcall_load::Result<()> {
//! let mut options = webcall_load::Options::new(vec!["http://127.0.0.1:8000".into()]);
//! options.rooms = 50;
//! let report = webcall_load::run(&options).await?;
//! assert!(report.clean(), "{report}");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod error;
pub mod options;
mod payload;
mod room;
pub mod stats;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};
use webcall_core::client::install_crypto_provider;
use webcall_core::client::link::normalize_server;

pub use error::{Error, Result};
pub use options::{Options, Rate};
pub use stats::{Histogram, Report, Rss};

use room::{Ctx, Phase};
use stats::{Counters, lock};

/// How often the run looks at its counters while waiting.
const POLL: Duration = Duration::from_millis(20);
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// How far into the load memory is taken as the baseline of its drift
/// (a fifth of the load when that is shorter).
const WARM_UP: Duration = Duration::from_secs(60);
/// How long the participants may take to leave at the end.
const LEAVE_BOUND: Duration = Duration::from_secs(30);

/// Runs the load described by `options` and reports what happened.
///
/// Fails only when the options are unusable or not one room could be
/// opened; whatever the server does wrong during the run is in the report.
pub async fn run(options: &Options) -> Result<Report> {
    options.validate()?;
    install_crypto_provider();
    let bases = options
        .urls
        .iter()
        .map(|url| {
            normalize_server(url).map_err(|e| Error::Url {
                url: url.clone(),
                detail: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(Error::HttpClient)?;
    let (phase_tx, phase) = watch::channel(Phase::Run);
    let seed = options.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let ctx = Arc::new(Ctx {
        counters: Counters::default(),
        latency: Mutex::new(Histogram::new()),
        epoch: std::time::Instant::now(),
        http,
        bases: bases.clone(),
        rate: options.rate,
        churn: options.churn,
        seed,
        phase,
    });

    let rss = Arc::new(Mutex::new(
        options
            .server_pids
            .iter()
            .map(|&pid| {
                let mut rss = Rss {
                    pid,
                    ..Rss::default()
                };
                rss.before_kib = rss.sample();
                rss
            })
            .collect::<Vec<_>>(),
    ));
    let sampler = tokio::spawn({
        let rss = rss.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                every.tick().await;
                for r in lock(&rss).iter_mut() {
                    r.sample();
                }
            }
        }
    });
    let progress = Progress {
        ctx: ctx.clone(),
        rss: rss.clone(),
        rooms: options.rooms as u64,
        quiet: options.quiet,
        start: Instant::now(),
    };

    // The ramp: rooms opened at the set pace.
    let start = Instant::now();
    let mut rooms = JoinSet::new();
    let ramp_period = options.ramp.period();
    let mut next_line = start + PROGRESS_EVERY;
    for index in 0..options.rooms {
        sleep_until(start + ramp_period.mul_f64(index as f64)).await;
        rooms.spawn(room::run_room(ctx.clone(), index as u32));
        if Instant::now() >= next_line {
            progress.line("ramp");
            next_line += PROGRESS_EVERY;
        }
    }
    let counters = &ctx.counters;
    let opened = || Counters::get(&counters.rooms_up) + Counters::get(&counters.rooms_failed);
    while opened() < options.rooms as u64 {
        sleep(POLL).await;
        if Instant::now() >= next_line {
            progress.line("ramp");
            next_line += PROGRESS_EVERY;
        }
    }
    let ramp = start.elapsed();
    if Counters::get(&counters.rooms_up) == 0 {
        let _ = phase_tx.send(Phase::Close);
        sampler.abort();
        let first = lock(&counters.first_failure).clone().unwrap_or_default();
        return Err(Error::NoRoom(first));
    }
    for r in lock(&rss).iter_mut() {
        r.after_ramp_kib = r.sample();
    }
    progress.line("up");

    // The load.
    let loaded = Instant::now();
    let end = loaded + options.duration;
    let mut next_line = loaded + PROGRESS_EVERY;
    let mut warm_at = Some(loaded + WARM_UP.min(options.duration / 5));
    while Instant::now() < end {
        sleep_until(end.min(next_line).min(warm_at.unwrap_or(end))).await;
        if warm_at.is_some_and(|at| Instant::now() >= at) {
            warm_at = None;
            for r in lock(&rss).iter_mut() {
                r.warm_kib = r.sample();
            }
        }
        if Instant::now() >= next_line {
            progress.line("load");
            next_line += PROGRESS_EVERY;
        }
    }
    let run_seconds = loaded.elapsed().as_secs_f64();

    // The drain: what was sent to a present participant arrives, or is
    // lost once nothing more has arrived for the drain period (an
    // overloaded server may still be working through its queues).
    let _ = phase_tx.send(Phase::Quiet);
    let mut arrived = Counters::get(&counters.delivered);
    let mut last_arrival = Instant::now();
    while arrived < Counters::get(&counters.sent_to_present)
        && last_arrival.elapsed() < options.drain
    {
        sleep(POLL).await;
        let now = Counters::get(&counters.delivered);
        if now > arrived {
            arrived = now;
            last_arrival = Instant::now();
        }
    }
    sampler.abort();
    for r in lock(&rss).iter_mut() {
        r.sample();
    }
    progress.line("drained");
    let mut report = report(&ctx, options, &bases, ramp, run_seconds);
    report.rss = lock(&rss).clone();

    // Everyone leaves for good, so that no seat stays held on the server.
    let _ = phase_tx.send(Phase::Close);
    let _ = tokio::time::timeout(LEAVE_BOUND, async {
        while rooms.join_next().await.is_some() {}
    })
    .await;
    rooms.abort_all();
    Ok(report)
}

fn report(
    ctx: &Ctx,
    options: &Options,
    bases: &[String],
    ramp: Duration,
    run_seconds: f64,
) -> Report {
    let c = &ctx.counters;
    let get = Counters::get;
    let sent_to_present = get(&c.sent_to_present);
    let delivered = get(&c.delivered);
    Report {
        urls: bases.to_vec(),
        rooms: options.rooms as u64,
        rooms_up: get(&c.rooms_up),
        rooms_failed: get(&c.rooms_failed),
        ramp_seconds: round1(ramp.as_secs_f64()),
        run_seconds: round1(run_seconds),
        sent: sent_to_present + get(&c.sent_to_away),
        sent_to_present,
        sent_to_away: get(&c.sent_to_away),
        delivered,
        delivered_to_away: get(&c.delivered_to_away),
        lost: sent_to_present.saturating_sub(delivered),
        duplicated: get(&c.duplicated),
        misrouted: get(&c.misrouted),
        out_of_order: get(&c.out_of_order),
        latency: lock(&ctx.latency).summary(),
        leave_rejoin: get(&c.leave_rejoin),
        reload_resume: get(&c.reload_resume),
        resume_missed: get(&c.resume_missed),
        drain_timeouts: get(&c.drain_timeouts),
        owed_at_leave: get(&c.owed_at_leave),
        close_timeouts: get(&c.close_timeouts),
        unexpected_closes: get(&c.unexpected_closes),
        server_reconnects: get(&c.server_reconnects),
        connect_failures: get(&c.connect_failures),
        errors: lock(&c.errors).clone(),
        first_failure: lock(&c.first_failure).clone(),
        rss: Vec::new(),
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Progress lines on standard error, one per [`PROGRESS_EVERY`].
struct Progress {
    ctx: Arc<Ctx>,
    rss: Arc<Mutex<Vec<Rss>>>,
    rooms: u64,
    quiet: bool,
    start: Instant,
}

impl Progress {
    fn line(&self, stage: &str) {
        if self.quiet {
            return;
        }
        let c = &self.ctx.counters;
        let get = Counters::get;
        let rss: Vec<String> = lock(&self.rss)
            .iter()
            .map(|r| {
                r.last_kib
                    .map_or("?".into(), |k| format!("{:.0} MiB", k as f64 / 1024.0))
            })
            .collect();
        let latency = lock(&self.ctx.latency).summary();
        eprintln!(
            "[{:>5.0} s {stage:>7}] rooms {}/{} up ({} failed), sent {} (+{} to away), delivered {}, p99 {} µs, churn {}, unexpected closes {}, server RSS {}",
            self.start.elapsed().as_secs_f64(),
            get(&c.rooms_up),
            self.rooms,
            get(&c.rooms_failed),
            get(&c.sent_to_present),
            get(&c.sent_to_away),
            get(&c.delivered),
            latency.p99_us,
            get(&c.leave_rejoin) + get(&c.reload_resume),
            get(&c.unexpected_closes),
            if rss.is_empty() {
                "not sampled".into()
            } else {
                rss.join(" / ")
            },
        );
    }
}
