//! The call screen's layout in a real terminal: `webcall join` in a tmux
//! pane, in a call with a second native `webcall join --no-tui`, both
//! sending the test pattern on 127.0.0.1.
//!
//! - 80x24 in colour: `?` opens the help, Esc closes it without hanging up,
//!   `s` hides the self-view; `q` hangs up and the end screen says so
//!   (duration, "you hung up") before webcall exits with its summary.
//! - 40x12 with `NO_COLOR`: the picture is characters without a colour
//!   escape in sight; when the other side hangs up the end screen says "the
//!   other side hung up" and webcall exits by itself after it.
//!
//! Needs tmux (CI installs it). Run alone:
//! `cargo test -p webcall-cli --test screen_layout_tmux -- --nocapture`

use std::process::Command;
use std::time::{Duration, Instant};

use webcall_testkit::{TestServer, Tmux};

mod cli_common;
use cli_common::pattern_peer;

const WAIT: Duration = Duration::from_secs(60);

/// Two native peers fill two cores: one call at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The screen's command line, with `env` settings in front; the shell
/// stays after webcall exits so its last words can be read.
fn screen_command(env: &str, url: &str) -> String {
    format!(
        "env LANG=C.UTF-8 LC_ALL= RUST_LOG=warn {env} {} join {url} \
         --video test --audio tone --ice-addr 127.0.0.1 --speaker none --render blocks; \
         echo \"webcall exited with $?\"; sleep 600",
        env!("CARGO_BIN_EXE_webcall"),
    )
}

/// True when an SGR escape in `pane` sets a foreground or background
/// colour (the defaults, 39 and 49, do not count).
fn has_colour_escapes(pane: &str) -> bool {
    pane.split("\u{1b}[").skip(1).any(|rest| {
        let Some(end) = rest.find('m') else {
            return false;
        };
        rest[..end].split(';').any(|p| {
            p.parse::<u16>()
                .is_ok_and(|n| matches!(n, 30..=38 | 40..=48 | 90..=97 | 100..=107))
        })
    })
}

fn tmux_found() -> bool {
    Command::new("tmux").arg("-V").output().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_on_question_mark_and_the_end_screen_after_hanging_up() {
    if !tmux_found() {
        eprintln!("tmux is not installed: skipped");
        return;
    }
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let _peer = pattern_peer(&room.url, "tone");
    let tmux = Tmux::new("layout-help", "");
    tmux.start(80, 24, &screen_command("COLORTERM=truecolor", &room.url));

    // Connected, the clock running, the picture in half blocks.
    tmux.wait_for("the call connected with its clock", WAIT, |p| {
        p.contains("connected") && p.contains("0:0") && p.matches('▀').count() > 300
    })
    .await;

    tmux.keys("?");
    let pane = tmux
        .wait_for("the help", WAIT, |p| p.contains("any key closes this help"))
        .await;
    for want in [
        "mute or unmute the microphone",
        "show or hide your own picture",
        "q, Esc, Ctrl-C",
    ] {
        assert!(pane.contains(want), "{want:?} missing:\n{pane}");
    }
    // Esc closes the help; the call goes on.
    tmux.keys("Escape");
    tmux.wait_for("the help closed, still connected", WAIT, |p| {
        !p.contains("any key closes this help") && p.contains("● connected")
    })
    .await;

    // `s` hides the self-view: its label goes.
    let label = |p: &str| {
        p.lines()
            .take(22)
            .any(|l| l.contains("you") && !l.contains("you:"))
    };
    tmux.wait_for("the self-view's label", WAIT, label).await;
    tmux.keys("s");
    tmux.wait_for("the self-view hidden", WAIT, |p| !label(p))
        .await;

    // q: the end screen, then the summary.
    let hung_up = Instant::now();
    tmux.keys("q");
    let end = tmux
        .wait_for("the end screen", WAIT, |p| {
            p.contains("call ended") && p.contains("you hung up") && p.contains("duration 0:")
        })
        .await;
    let shown_after = hung_up.elapsed();
    assert!(!end.contains('▀'), "the screen was cleared:\n{end}");
    // The colour run shows colour (the check above can fail).
    assert!(has_colour_escapes("\u{1b}[38;2;1;2;3m▀"));
    let pane = tmux
        .wait_for("webcall exiting", WAIT, |p| {
            p.contains("webcall exited with")
        })
        .await;
    let gone_after = hung_up.elapsed();
    assert!(pane.contains("webcall exited with 0"), "{pane}");
    assert!(pane.contains("call over after"), "the summary:\n{pane}");
    assert!(pane.contains("(you hung up)"), "{pane}");
    eprintln!(
        "end screen shown {} ms after q, webcall gone {} ms after q",
        shown_after.as_millis(),
        gone_after.as_millis()
    );
    assert!(
        gone_after < Duration::from_secs(10),
        "the end screen holds for 3 s at most: {gone_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_and_colourless_and_the_other_side_hanging_up() {
    if !tmux_found() {
        eprintln!("tmux is not installed: skipped");
        return;
    }
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let mut other = pattern_peer(&room.url, "tone");
    let tmux = Tmux::new("layout-mono", "");
    tmux.start(40, 12, &screen_command("NO_COLOR=1", &room.url));

    // The picture as characters, the status line readable, no colour.
    let pane = tmux
        .wait_for("the call connected in 40x12", WAIT, |p| {
            p.contains("connected")
                && p.contains("0:0")
                && p.matches(['=', '+', '#', '%', '@', '*']).count() > 50
        })
        .await;
    let raw = tmux.capture();
    assert!(!has_colour_escapes(&raw), "colour escapes:\n{raw:?}");
    assert!(!pane.contains('▀'), "half blocks:\n{pane}");
    assert!(pane.contains(" ? ") && pane.contains("help"), "{pane}");

    // The other side hangs up (Ctrl-C: it says bye).
    let pid = other.0.id().to_string();
    let out = Command::new("kill").args(["-INT", &pid]).output().unwrap();
    assert!(out.status.success());
    let left = Instant::now();
    let end = tmux
        .wait_for("the end screen", WAIT, |p| {
            p.contains("call ended") && p.contains("the other side hung up")
        })
        .await;
    let raw = tmux.capture();
    assert!(!has_colour_escapes(&raw), "colour escapes:\n{raw:?}");
    assert!(end.contains("duration 0:"), "{end}");
    // No key pressed: webcall exits by itself after the end screen.
    let pane = tmux
        .wait_for("webcall exiting", WAIT, |p| {
            p.contains("webcall exited with")
        })
        .await;
    assert!(pane.contains("webcall exited with 0"), "{pane}");
    assert!(pane.contains("the other person hung up"), "{pane}");
    let gone_after = left.elapsed();
    eprintln!(
        "webcall gone {} ms after the other side hung up",
        gone_after.as_millis()
    );
    assert!(
        gone_after >= Duration::from_secs(2),
        "the end screen stayed"
    );
    let _ = other.0.wait();
}
