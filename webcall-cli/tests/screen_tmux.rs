//! The call screen for real: `webcall join` in a tmux pane (120x40) against
//! the browser client in headless Chromium, both on 127.0.0.1. The pane
//! must show "connected" and the browser's picture in coloured half blocks,
//! then the call's quality grade, and on `i` the details (codec H264, a
//! direct path); the status line shows the level of the sound sent, and
//! "mic off" instead on `m`; `q` hangs up and the browser sees the other
//! side leave. While the call runs, the CPU the `webcall` process uses is
//! measured and printed. With
//! no media flags and no camera or sound device, the screen says what is
//! missing.
//!
//! Run alone (it fills both cores):
//! `cargo test -p webcall-cli --test screen_tmux -- --nocapture`

use std::time::{Duration, Instant};

use webcall_testkit::{Browser, TestServer, Tmux, status_is};

const WAIT: Duration = Duration::from_secs(60);

/// A browser and a native peer fill two cores: one call at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Cells drawn as picture: upper half blocks carrying a colour escape.
fn picture_cells(pane: &str) -> usize {
    pane.matches("▀").count()
}

fn has_colour_escapes(pane: &str) -> bool {
    pane.contains("\u{1b}[38;2;") || pane.contains("\u{1b}[38;5;")
}

/// The pane's text without its colour and style escapes (`ESC [ ... m`).
fn without_escapes(pane: &str) -> String {
    let mut out = String::with_capacity(pane.len());
    let mut chars = pane.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// CPU time (user + system) of a process, from /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in clock ticks, 100 per second on every common build.
    Some(Duration::from_millis(ticks * 10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_screen_shows_the_browser_and_q_hangs_up() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let browser = Browser::launch().await.unwrap();
    browser.join_room(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();

    let tmux = Tmux::new("screen-call", "");
    // The shell stays after webcall exits, so its last words can be read.
    // Half blocks: no kitty outside, even when the tests run in one.
    let command = format!(
        "env -u KITTY_WINDOW_ID -u GHOSTTY_RESOURCES_DIR LANG=C.UTF-8 LC_ALL= COLORTERM=truecolor \
         RUST_LOG=warn {} join {} \
         --video test --audio tone --ice-addr 127.0.0.1 --speaker none; \
         echo \"webcall exited with $?\"; sleep 600",
        env!("CARGO_BIN_EXE_webcall"),
        room.url
    );
    tmux.start(120, 40, &command);

    // The screen shows the call connected and the browser's picture.
    let start = Instant::now();
    let pane = loop {
        let pane = tmux.capture();
        if pane.contains("connected") && picture_cells(&pane) > 1000 && has_colour_escapes(&pane) {
            break pane;
        }
        assert!(
            start.elapsed() < WAIT,
            "the screen never showed the call; last pane:\n{pane}\nbrowser: {}",
            browser.diagnostics().await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(pane.contains("hang up"), "the keys are shown:\n{pane}");
    // The browser gets our picture too.
    browser
        .wait_until(
            "(async () => (await window.webcall.stats()).videoFramesDecoded > 30)()",
            WAIT,
            "the browser decoding the native video",
        )
        .await
        .unwrap();

    // The cost of the whole call with the screen on, over a few seconds.
    if let Some(pid) = tmux.child_pid() {
        let (t0, c0) = (Instant::now(), cpu_time(pid));
        tokio::time::sleep(Duration::from_secs(10)).await;
        if let (Some(c0), Some(c1)) = (c0, cpu_time(pid)) {
            let share = (c1 - c0).as_secs_f64() / t0.elapsed().as_secs_f64();
            eprintln!(
                "webcall join with the screen on (120x40, 640x480 both ways): {:.0} % of a core",
                share * 100.0
            );
        }
    }
    let pane = tmux.capture();
    assert!(pane.contains("connected"), "still connected:\n{pane}");
    // The status line shows the level of the tone sent; `m` mutes, and the
    // meter gives way to "mic off" (twice: muted, then unmuted again).
    let meter = |pane: &str| {
        let text = without_escapes(pane);
        text.contains("mic ▮") || text.contains("mic ▯")
    };
    assert!(meter(&pane), "no meter:\n{pane}");
    for muted in [true, false] {
        tmux.keys("m");
        let start = Instant::now();
        loop {
            let pane = tmux.capture();
            if pane.contains("mic off") == muted && meter(&pane) != muted {
                break;
            }
            let status = without_escapes(&pane);
            let status: Vec<&str> = status.lines().rev().take(2).collect();
            assert!(start.elapsed() < WAIT, "muted {muted}, but:\n{status:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The status line grades the call; `i` opens the details.
    let graded = |pane: &str| {
        ["good", "poor", "bad"]
            .iter()
            .any(|g| pane.contains(&format!("quality {g}")))
    };
    tmux.keys("i");
    let start = Instant::now();
    loop {
        let pane = tmux.capture();
        if graded(&pane)
            && pane.contains("codec")
            && pane.contains("H264")
            && pane.contains("direct")
        {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no grade or no details on the screen:\n{pane}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // q hangs up: the browser sees the other side leave, webcall exits cleanly.
    tmux.keys("q");
    browser
        .wait_until(
            &status_is("peer_left"),
            WAIT,
            "the browser seeing the native side leave",
        )
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let pane = tmux.capture();
        if pane.contains("any key closes") {
            // The end screen: a key closes it rather than waiting it out.
            tmux.keys("Enter");
        }
        if pane.contains("webcall exited with") {
            assert!(pane.contains("webcall exited with 0"), "{pane}");
            assert!(pane.contains("you hung up"), "the summary follows:\n{pane}");
            assert!(!pane.contains("▀"), "the terminal was restored:\n{pane}");
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "webcall did not exit after q:\n{pane}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_screen_says_there_is_no_camera_or_microphone() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let browser = Browser::launch().await.unwrap();
    browser.join_room(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();

    // A HOME where ALSA finds no sound device (a card that is not there);
    // this machine has no camera. No media flags.
    let home = std::env::temp_dir().join(format!("webcall-screen-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".asoundrc"),
        "pcm.!default { type hw card 57 }\nctl.!default { type hw card 57 }\n",
    )
    .unwrap();
    let tmux = Tmux::new("screen-missing", "");
    let command = format!(
        "env HOME={} LANG=C.UTF-8 LC_ALL= RUST_LOG=warn {} join {} --ice-addr 127.0.0.1; \
         echo \"webcall exited with $?\"; sleep 600",
        home.display(),
        env!("CARGO_BIN_EXE_webcall"),
        room.url
    );
    tmux.start(160, 40, &command);
    let start = Instant::now();
    loop {
        let pane = tmux.capture();
        if pane.contains("connected") && pane.contains("no camera found: joining without video") {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the screen never said there is no camera; last pane:\n{pane}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    browser
        .wait_until(
            "!document.getElementById('remote-off').hidden",
            WAIT,
            "the browser's \"no camera\" placeholder",
        )
        .await
        .unwrap();
    tmux.keys("q");
    let start = Instant::now();
    loop {
        let pane = tmux.capture();
        if pane.contains("any key closes") {
            // The end screen: a key closes it rather than waiting it out.
            tmux.keys("Enter");
        }
        if pane.contains("webcall exited with") {
            assert!(pane.contains("webcall exited with 0"), "{pane}");
            // The notes are on stderr too, readable after the screen closes.
            assert!(pane.contains("webcall: no camera found"), "{pane}");
            assert!(pane.contains("webcall: no microphone found"), "{pane}");
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "webcall did not exit after q:\n{pane}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&home);
}
