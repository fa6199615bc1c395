//! What a whole terminal call costs while it draws pictures: a real
//! `webcall join` on its full-screen view, receiving 640x480 at 30 fps
//! from a peer in this process (sending its own test pattern and tone
//! back, as a call with a camera does), in a pseudo-terminal of 200x60
//! cells that a thread here reads all the time, with `--render kitty`,
//! `sixel` and `blocks`. Printed for each: the `webcall` process's CPU
//! (all its threads) over a 10 s window, the bytes a second it writes to
//! the terminal, the images a second it writes (remote picture and
//! self-view; none for half blocks) and the pictures its screen skipped
//! (the count in its quality details, `i`).
//!
//! The pseudo-terminal is made by util-linux's `script` (this workspace
//! forbids unsafe code, so no `openpty` here); it reports no pixel size,
//! so kitty pictures are drawn with the screen's 10x20-pixel cell guess
//! and for sixel the screen asks the terminal, which this bench answers as
//! a sixel terminal with 10x20-pixel cells. The remote picture's area is
//! then 2000x1160 pixels, and the picture is sent at its own 640x480.
//!
//! Run in a loopback-only namespace:
//! `unshare -n -- sh -c 'ip link set lo up && cargo bench --workspace --offline --bench screen_cpu --profile dev'`
//! (the dev profile optimises the dependencies, not webcall's own crates;
//! add `--config 'profile.dev.package.webcall-cli.opt-level=2' --config
//! 'profile.dev.package.webcall-core.opt-level=2'` to optimise those too,
//! as a release build, the one people run, does). Unoptimised, scaling
//! and encoding pictures in webcall's own code takes several times longer
//! (and on a busy machine the screen skips pictures); the figures then say
//! little about the program people use.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use webcall_core::call::sources::{TestPattern, Tone};
use webcall_core::call::{self, CallOptions};
use webcall_testkit::{TestServer, wait_for};

const WINDOW: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(60);
const COLUMNS: u16 = 200;
const ROWS: u16 = 60;

/// Primary device attributes of a VT340-like terminal with sixel (`4`),
/// and the cell size, 10 pixels wide and 20 high (`CSI 6 ; height ; width t`).
const DEVICE_ATTRIBUTES: &[u8] = b"\x1b[?62;4;22c";
const CELL_SIZE: &[u8] = b"\x1b[6;20;10t";

/// What the reading thread has seen of the terminal's output.
#[derive(Default)]
struct Seen {
    bytes: AtomicU64,
    /// kitty images (`ESC _ G a=T`) and sixel images (`ESC P`; a large
    /// picture is two, its top and bottom half).
    images: AtomicU64,
    /// kitty images of the remote picture (id 1).
    remote: AtomicU64,
    /// Cells drawn as half blocks (`▀`).
    half_blocks: AtomicU64,
    /// Synchronized updates begun (each draw of pictures).
    updates: AtomicU64,
    /// Everything written since [`Terminal::capture`], while capturing.
    capture: Mutex<Option<Vec<u8>>>,
}

/// Occurrences of `needle` in `joined` (the last bytes of the previous
/// read, `tail` of them, then this read) that end inside this read. The
/// search is the optimised `memchr` crate's: this crate's own code is
/// unoptimised in the dev profile, and a byte-by-byte search here would
/// read the terminal slower than the screen writes it.
fn count(joined: &[u8], tail: usize, needle: &[u8]) -> u64 {
    memchr::memmem::find_iter(joined, needle)
        .filter(|i| i + needle.len() > tail)
        .count() as u64
}

/// `webcall join` in a pseudo-terminal, its output read all the time.
struct Terminal {
    script: Child,
    input: Arc<Mutex<ChildStdin>>,
    seen: Arc<Seen>,
}

impl Terminal {
    fn start(render: &str, link: &str, stats: &std::path::Path) -> Result<Self> {
        let command = format!(
            "stty cols {COLUMNS} rows {ROWS}; exec env -u TMUX LANG=C.UTF-8 LC_ALL= TERM=xterm-256color \
             COLORTERM=truecolor RUST_LOG=warn {} join {link} --render {render} --video test \
             --audio tone --speaker none --ice-addr 127.0.0.1 --stats-json {}",
            env!("CARGO_BIN_EXE_webcall"),
            stats.display(),
        );
        let mut script = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running util-linux's `script` (is it installed?)")?;
        let input = Arc::new(Mutex::new(script.stdin.take().context("script's input")?));
        let mut output = script.stdout.take().context("script's output")?;
        let seen = Arc::new(Seen::default());
        let (seen2, answers) = (seen.clone(), input.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            // The last bytes of the previous read, then this read.
            let mut joined: Vec<u8> = Vec::with_capacity(buf.len() + 16);
            let mut tail = 0;
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let chunk = &buf[..n];
                joined.extend_from_slice(chunk);
                seen2.bytes.fetch_add(n as u64, Ordering::Relaxed);
                let images = count(&joined, tail, b"\x1b_Ga=T") + count(&joined, tail, b"\x1bP");
                seen2.images.fetch_add(images, Ordering::Relaxed);
                let remote = count(&joined, tail, b",i=1,p=1,");
                seen2.remote.fetch_add(remote, Ordering::Relaxed);
                let blocks = count(&joined, tail, "▀".as_bytes());
                seen2.half_blocks.fetch_add(blocks, Ordering::Relaxed);
                let updates = count(&joined, tail, b"\x1b[?2026h");
                seen2.updates.fetch_add(updates, Ordering::Relaxed);
                // Answer the screen's questions as a sixel terminal would.
                if count(&joined, tail, b"\x1b[16t") > 0 {
                    let _ = answers.lock().unwrap().write_all(CELL_SIZE);
                }
                if count(&joined, tail, b"\x1b[c") > 0 {
                    let _ = answers.lock().unwrap().write_all(DEVICE_ATTRIBUTES);
                }
                if let Some(c) = seen2.capture.lock().unwrap().as_mut() {
                    c.extend_from_slice(chunk);
                }
                let keep = joined.len().min(8);
                joined.drain(..joined.len() - keep);
                tail = keep;
            }
        });
        Ok(Self {
            script,
            input,
            seen,
        })
    }

    /// The `webcall` process: `script`'s child (the shell exec'd it).
    fn webcall_pid(&self) -> Option<u32> {
        let pid = self.script.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    fn press(&self, keys: &[u8]) -> Result<()> {
        let mut input = self.input.lock().unwrap();
        input.write_all(keys)?;
        input.flush()?;
        Ok(())
    }

    /// The "pictures skipped" figure of the quality details: shows them
    /// (`i`), reads the figure from what the screen writes, hides them.
    async fn skipped(&self) -> Result<u64> {
        *self.seen.capture.lock().unwrap() = Some(Vec::new());
        self.press(b"i")?;
        let mut figure = None;
        wait_for("the quality details", WAIT, || {
            let capture = self.seen.capture.lock().unwrap();
            figure = capture.as_deref().and_then(skipped_figure);
            figure.is_some()
        })
        .await?;
        *self.seen.capture.lock().unwrap() = None;
        self.press(b"i")?;
        Ok(figure.unwrap_or_default())
    }

    /// Hangs up (`q`) and waits for `script` to end.
    async fn quit(mut self) -> Result<()> {
        self.press(b"q")?;
        let start = Instant::now();
        while self.script.try_wait()?.is_none() {
            if start.elapsed() > WAIT {
                let _ = self.script.kill();
                bail!("webcall did not hang up on q");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Terminal {
    /// Ends `script` if the bench failed before `q`: closing the terminal
    /// ends `webcall` too.
    fn drop(&mut self) {
        if matches!(self.script.try_wait(), Ok(None)) {
            let _ = self.script.kill();
            let _ = self.script.wait();
        }
    }
}

/// The number after the last "pictures skipped" in `out`, once whole
/// (escape sequences between label and digits skipped).
fn skipped_figure(out: &[u8]) -> Option<u64> {
    let label = b"pictures skipped";
    let at = memchr::memmem::rfind(out, label)? + label.len();
    let mut rest = out[at..].iter().copied().peekable();
    let mut digits = String::new();
    while let Some(b) = rest.next() {
        match b {
            0x1b => {
                // CSI: parameters up to a final byte in @..~.
                if rest.next() == Some(b'[') {
                    for c in rest.by_ref() {
                        if (0x40..=0x7e).contains(&c) {
                            break;
                        }
                    }
                }
                if !digits.is_empty() {
                    return digits.parse().ok();
                }
            }
            b'0'..=b'9' => digits.push(b as char),
            b' ' if digits.is_empty() => {}
            _ if !digits.is_empty() => return digits.parse().ok(),
            _ => {}
        }
    }
    None
}

/// CPU time (user + system, all threads) of a process, from /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in clock ticks, 100 per second on every common build.
    Some(Duration::from_millis(ticks * 10))
}

/// One figure row.
struct Row {
    render: &'static str,
    cpu: f64,
    mb_per_s: f64,
    images_per_s: Option<f64>,
    remote_per_s: Option<f64>,
    updates_per_s: f64,
    skipped: Option<u64>,
    /// Pictures the screen's call decoded a second, over the whole call.
    decoded_per_s: f64,
}

async fn measure(server: &TestServer, render: &'static str) -> Result<Row> {
    let room = server.create_room().await?;
    let options = CallOptions {
        video: Some(Box::new(TestPattern::default())),
        audio: Some(Box::new(Tone::default())),
        ice_addrs: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        ..CallOptions::default()
    };
    let (peer, mut events) = call::join(&room.url, options).await?;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let stats = std::env::temp_dir().join(format!(
        "webcall-screen-cpu-{}-{render}.json",
        std::process::id()
    ));
    let terminal = Terminal::start(render, &room.url, &stats)?;
    let seen = terminal.seen.clone();
    let pixels = render != "blocks";
    // Pictures flow both ways: the peer decodes the screen's test pattern,
    // and the screen has drawn a few dozen of the peer's pictures.
    wait_for("pictures on the screen", WAIT, || {
        peer.stats().received.video_frames_decoded > 30
            && if pixels {
                seen.images.load(Ordering::Relaxed) > 60
            } else {
                seen.half_blocks.load(Ordering::Relaxed) > 100_000
            }
    })
    .await?;
    let pid = terminal
        .webcall_pid()
        .context("no webcall process under script")?;
    let skipped0 = if pixels {
        Some(terminal.skipped().await?)
    } else {
        None
    };
    let (t0, cpu0) = (
        Instant::now(),
        cpu_time(pid).context("reading its CPU time")?,
    );
    let (bytes0, images0, updates0, remote0) = (
        seen.bytes.load(Ordering::Relaxed),
        seen.images.load(Ordering::Relaxed),
        seen.updates.load(Ordering::Relaxed),
        seen.remote.load(Ordering::Relaxed),
    );
    tokio::time::sleep(WINDOW).await;
    let (cpu1, wall) = (cpu_time(pid).context("reading its CPU time")?, t0.elapsed());
    let (bytes1, images1, updates1, remote1) = (
        seen.bytes.load(Ordering::Relaxed),
        seen.images.load(Ordering::Relaxed),
        seen.updates.load(Ordering::Relaxed),
        seen.remote.load(Ordering::Relaxed),
    );
    let skipped = match skipped0 {
        Some(before) => Some(terminal.skipped().await?.saturating_sub(before)),
        None => None,
    };
    let secs = wall.as_secs_f64();
    terminal.quit().await?;
    peer.hangup().await;
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).context("reading --stats-json")?)?;
    let _ = std::fs::remove_file(&stats);
    let decoded = report["received"]["video_frames_decoded"]
        .as_f64()
        .unwrap_or(0.0);
    let duration = report["duration_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0;
    Ok(Row {
        render,
        cpu: (cpu1 - cpu0).as_secs_f64() / secs * 100.0,
        mb_per_s: (bytes1 - bytes0) as f64 / secs / 1e6,
        images_per_s: pixels.then(|| (images1 - images0) as f64 / secs),
        remote_per_s: (render == "kitty").then(|| (remote1 - remote0) as f64 / secs),
        updates_per_s: (updates1 - updates0) as f64 / secs,
        skipped,
        decoded_per_s: decoded / duration,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let server = TestServer::start().await?;
    let mut rows = Vec::new();
    for render in ["kitty", "sixel", "blocks"] {
        rows.push(measure(&server, render).await?);
    }
    println!(
        "webcall join on a {COLUMNS}x{ROWS} terminal, receiving 640x480 at 30 fps and sending its own, over {} s:",
        WINDOW.as_secs()
    );
    println!(
        "  render   CPU % of one core   output MB/s   image sequences/s   remote pictures/s   picture draws/s   pictures skipped   decoded/s (whole call)"
    );
    let or_dash = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    for r in rows {
        println!(
            "  {:<8} {:>17.1}   {:>11.2}   {:>17}   {:>17}   {:>15.1}   {:>16}   {:>22.1}",
            r.render,
            r.cpu,
            r.mb_per_s,
            or_dash(r.images_per_s),
            or_dash(r.remote_per_s),
            r.updates_per_s,
            r.skipped.map_or("-".into(), |v| v.to_string()),
            r.decoded_per_s,
        );
    }
    println!(
        "  (image sequences: kitty images and sixel images, remote picture and self-view, a large \
         sixel picture in two halves; remote pictures: kitty images of the remote picture; picture \
         draws: synchronized updates; pictures skipped: the screen's own count, in the window; \
         decoded/s: the screen's call over its whole length, set-up included, from --stats-json)"
    );
    Ok(())
}
