//! How fast a browser call starts, as people meet it: two headless Chromiums
//! with fake camera and microphone against a real server on loopback. The
//! first page waits in a room; the second page loads the link and presses
//! "Join" as soon as it can; then the second page reloads (straight back
//! in, no "Join"). For each, the page's own performance marks (see
//! room.js) give the timeline of the join from the second page's navigation
//! start: modules loaded, app started, "Join" ready and pressed, WebSocket
//! open, `joined`, camera and microphone ready, peer connection made, offer
//! and answer, ICE connected, DTLS connected, first decoded remote frame.
//! Medians over the runs are printed, with "both connected" (the later of
//! the two pages), the first page's first frame, and the first frame counted
//! from the press of "Join".
//!
//! Run in a loopback-only namespace (otherwise the browsers also gather
//! candidates on every other interface):
//!
//! ```sh
//! unshare -n -- sh -c 'ip link set lo up && \
//!   cargo bench -p webcall-server --bench browser_setup --profile dev'
//! ```
//!
//! `WEBCALL_BENCH_RUNS` sets the number of measured runs (default 7; one
//! more run before them warms the browsers' caches and is not counted).
//! `WEBCALL_BENCH_RELAY=udp` (or `tcp`, `tls`) makes the call relay-only
//! through the built-in TURN server over that transport, to compare with
//! the direct call.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use webcall_testkit::{Browser, TestServer, status_is};

/// The steps printed, in the order a join goes through them. `html-start`
/// and `html` are the page's first and last byte, `early-modules` when
/// `early.js` and the one module it imports had arrived, `modules` when the
/// last script module arrived (navigation and resource timing).
const STEPS: &[&str] = &[
    "html-start",
    "html",
    "early-modules",
    "modules",
    "app-start",
    "join-ready",
    "join",
    "ws-connect",
    "ws-open",
    "joined",
    "media",
    "pc-created",
    "offer-sent",
    "offer-received",
    "answer-sent",
    "answer-received",
    "ice-connected",
    "connected",
    "first-frame",
];

/// Generous bound for one call to come up on a loaded machine.
const BOUND: Duration = Duration::from_secs(60);

/// The page's timeline: each `webcall:` mark's first time, and the end of
/// the module loads, in ms since its navigation started, plus the
/// navigation start on the wall clock (ms since the epoch).
const TIMELINE: &str = "
    const out = { origin: performance.timeOrigin, steps: {} };
    for (const m of performance.getEntriesByType('mark')) {
        if (!m.name.startsWith('webcall:')) continue;
        const name = m.name.slice(8);
        if (!(name in out.steps)) out.steps[name] = m.startTime;
    }
    let modules = 0;
    let early = 0;
    for (const r of performance.getEntriesByType('resource')) {
        if (r.name.endsWith('.js')) modules = Math.max(modules, r.responseEnd);
        if (r.name.endsWith('/early.js') || r.name.endsWith('/protocol.js')) early = Math.max(early, r.responseEnd);
    }
    if (modules > 0) out.steps.modules = modules;
    if (early > 0) out.steps['early-modules'] = early;
    const nav = performance.getEntriesByType('navigation')[0];
    if (nav) {
        out.steps['html-start'] = nav.responseStart;
        out.steps.html = nav.responseEnd;
    }
    return out;";

/// One page's timeline.
#[derive(Debug, Clone)]
struct Timeline {
    origin: f64,
    steps: BTreeMap<String, f64>,
}

impl Timeline {
    async fn read(browser: &Browser) -> Result<Self> {
        let v = browser.eval(TIMELINE).await?;
        let origin = v["origin"].as_f64().context("timeOrigin")?;
        let steps = v["steps"]
            .as_object()
            .context("steps")?
            .iter()
            .filter_map(|(k, t)| Some((k.clone(), t.as_f64()?)))
            .collect();
        Ok(Self { origin, steps })
    }

    /// `step` on this page, in ms since `other`'s navigation start.
    fn at(&self, step: &str, other: &Timeline) -> Option<f64> {
        self.steps.get(step).map(|t| t + self.origin - other.origin)
    }
}

/// What one run measured: the second page's steps, and two figures that
/// need both pages.
#[derive(Debug, Default)]
struct Run {
    steps: BTreeMap<String, f64>,
    both_connected: Option<f64>,
    first_page_frame: Option<f64>,
}

async fn wait_first_frame(browser: &Browser, who: &str) -> Result<()> {
    browser
        .wait_until(
            "performance.getEntriesByName('webcall:first-frame').length > 0",
            BOUND,
            &format!("the first remote frame on {who}"),
        )
        .await
}

/// Waits for both pages' first frames and reads the timelines. The first
/// page's marks were cleared before the second page's load, so the ones it
/// has now belong to this call.
async fn measure(first: &Browser, second: &Browser) -> Result<Run> {
    wait_first_frame(second, "the second page").await?;
    wait_first_frame(first, "the first page").await?;
    let b = Timeline::read(second).await?;
    let a = Timeline::read(first).await?;
    let both = match (a.at("connected", &b), b.steps.get("connected")) {
        (Some(x), Some(y)) => Some(x.max(*y)),
        _ => None,
    };
    Ok(Run {
        steps: b.steps.clone(),
        both_connected: both,
        first_page_frame: a.at("first-frame", &b),
    })
}

/// Clears the first page's marks, so that its next call's marks are its own.
async fn clear_marks(browser: &Browser) -> Result<()> {
    browser
        .eval("performance.clearMarks(); return null;")
        .await?;
    Ok(())
}

async fn one_run(server: &TestServer, a: &Browser, b: &Browser) -> Result<(Run, Run)> {
    let room = server.create_room().await?;
    let url = format!("{}/r/{}", server.base_url(), room.token);
    a.join_room(&url).await?;
    a.wait_until(&status_is("waiting"), BOUND, "the first page waiting")
        .await?;
    clear_marks(a).await?;
    // The second page joins as soon as its "Join" can be pressed: the
    // time a person takes to press it is theirs, the wait for it is ours.
    b.join_room(&url).await?;
    let join = measure(a, b).await.context("join")?;

    clear_marks(a).await?;
    b.reload().await?;
    let reload = measure(a, b).await.context("reload")?;

    // Both leave, so that the next run starts from empty pages.
    for browser in [a, b] {
        browser.goto("about:blank").await?;
    }
    Ok((join, reload))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

/// The median of `f` over `runs`, where it is known.
fn column(runs: &[Run], f: impl Fn(&Run) -> Option<f64>) -> String {
    cell(median(runs.iter().filter_map(f).collect()))
}

fn print(joins: &[Run], reloads: &[Run]) {
    println!(
        "\nbrowser call set-up, median of {} runs, ms since the second page's navigation start",
        joins.len()
    );
    println!("{:<34} {:>8} {:>8}", "step (second page)", "join", "reload");
    let row = |name: &str, f: &dyn Fn(&Run) -> Option<f64>| {
        println!(
            "{name:<34} {:>8} {:>8}",
            column(joins, f),
            column(reloads, f)
        );
    };
    for step in STEPS {
        row(step, &|r| r.steps.get(*step).copied());
    }
    row("both connected", &|r| r.both_connected);
    row("first frame on the first page", &|r| r.first_page_frame);
    // "Join" can be pressed at "join-ready"; the time until the click is
    // the driver's (WebDriver round trips), or a person's. From the click
    // on it is the page's own work again.
    row("first frame after Join pressed", &|r| {
        Some(r.steps.get("first-frame")? - r.steps.get("join")?)
    });
    let frame = |r: &Run| r.steps.get("first-frame").copied();
    println!(
        "\nfirst decoded remote frame after the second page load: {} ms (target 350); after a reload: {} ms (target 300)",
        column(joins, frame),
        column(reloads, frame)
    );
}

/// The server's configuration: direct calls, or relay-only through the
/// built-in TURN server over the transport `WEBCALL_BENCH_RELAY` names.
fn config() -> Result<webcall_server::Config> {
    let mut config = TestServer::test_config();
    if let Ok(transport) = std::env::var("WEBCALL_BENCH_RELAY") {
        let mut turn = TestServer::turn_config(true);
        turn.transports = Some(vec![transport.parse()?]);
        if transport == "tls" {
            bail!("WEBCALL_BENCH_RELAY=tls needs a certificate: use udp or tcp");
        }
        config.turn = Some(turn);
        config.ice_transport_policy = webcall_core::protocol::IceTransportPolicy::Relay;
        println!("relay-only through the built-in TURN server over {transport}");
    }
    Ok(config)
}

fn main() -> Result<()> {
    let runs: usize = std::env::var("WEBCALL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    if runs == 0 {
        bail!("WEBCALL_BENCH_RUNS must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = TestServer::start_with(config()?).await?;
        let a = Browser::launch().await?;
        let b = Browser::launch().await?;
        let result = async {
            one_run(&server, &a, &b).await.context("warm-up run")?;
            let (mut joins, mut reloads) = (Vec::new(), Vec::new());
            for i in 0..runs {
                let (join, reload) = one_run(&server, &a, &b)
                    .await
                    .with_context(|| format!("run {i}"))?;
                joins.push(join);
                reloads.push(reload);
            }
            Ok::<_, anyhow::Error>((joins, reloads))
        }
        .await;
        let (joins, reloads) = match result {
            Ok(m) => m,
            Err(err) => {
                eprintln!("first page:\n{}", a.diagnostics().await);
                eprintln!("second page:\n{}", b.diagnostics().await);
                return Err(err);
            }
        };
        print(&joins, &reloads);
        a.close().await?;
        b.close().await?;
        Ok(())
    })
}
