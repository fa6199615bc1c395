//! `webcall join` receiving a screen shared from the browser client in
//! headless Chromium (fake display capture, 800x600), both on 127.0.0.1
//! (PROTOCOL.md, "Screen sharing"): the native side reports the share
//! starting and stopping, its camera pictures go on arriving during the
//! share, and `--stats-json` and `--record-screen` hold the screen's
//! pictures apart from the camera's.
//!
//! On loopback only:
//! `cargo test --workspace --offline --test cli_screen --no-run` and then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --workspace --offline --test cli_screen'`.

mod cli_common;

use std::time::Duration;

use cli_common::{Live, join_synthetic, scratch, stats};
use webcall_testkit::{Browser, TestServer, status_is, wait_for};

const WAIT: Duration = Duration::from_secs(45);

/// The camera count in a screen-share line ("... (camera frames so far: 42)").
fn camera_count(line: &str) -> u64 {
    line.rsplit_once("camera frames so far: ")
        .and_then(|(_, n)| n.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no camera count in {line:?}"))
}

/// The first output line containing `text`, once there is one.
async fn line_with(native: &Live, text: &str) -> String {
    wait_for(&format!("the native side to say {text:?}"), WAIT, || {
        native.lines().iter().any(|l| l.contains(text))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", native.lines(), native.stderr()));
    native
        .lines()
        .into_iter()
        .find(|l| l.contains(text))
        .unwrap()
}

/// A browser and a native peer fill two cores: one call at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_shared_from_the_answering_browser_reaches_the_native_side() {
    share_to_native(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_shared_from_the_offering_browser_reaches_the_native_side() {
    share_to_native(false).await;
}

/// The browser shares its screen with a native peer and stops: the native
/// side sees it start and stop, apart from the camera. `browser_first`:
/// the browser waits in the room, so the native side offers (and the
/// browser takes the offer's second video section); otherwise the browser
/// offers the section and the native side answers it.
async fn share_to_native(browser_first: bool) {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch(if browser_first {
        "screen-b"
    } else {
        "screen-n"
    });
    let (stats_path, screen_path) = (dir.join("native.json"), dir.join("screen.y4m"));
    let start_native = || {
        Live::spawn(join_synthetic(
            &room.url,
            "30",
            &stats_path,
            &["--record-screen", screen_path.to_str().unwrap()],
        ))
    };

    let browser = Browser::launch().await.unwrap();
    let native = if browser_first {
        browser.join_room(&room.url).await.unwrap();
        browser
            .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
            .await
            .unwrap();
        start_native()
    } else {
        let native = start_native();
        line_with(&native, "waiting for the other person").await;
        browser.join_room(&room.url).await.unwrap();
        native
    };
    browser
        .wait_until(
            "(await window.webcall.stats()).videoFramesDecoded > 10 \
             && window.webcall.state().channel === 'open' \
             && window.webcall.screen.state().canShare",
            WAIT,
            "the browser in the call, able to share",
        )
        .await
        .unwrap();

    browser.click("#toggle-screen").await.unwrap();
    let started = line_with(&native, "is sharing its screen").await;
    browser
        .wait_until(
            "(await window.webcall.stats()).screenFramesEncoded > 60",
            WAIT,
            "the browser to send two seconds of its screen",
        )
        .await
        .unwrap();
    browser.click("#toggle-screen").await.unwrap();
    let stopped = line_with(&native, "stopped sharing its screen").await;
    let (before, after) = (camera_count(&started), camera_count(&stopped));
    println!("camera frames at the share's start {before}, at its end {after}");
    assert!(
        after > before + 20,
        "the camera stood still during the share: {before} then {after}"
    );

    let run = tokio::task::spawn_blocking(move || native.finish(WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    let s = stats(&stats_path);
    let r = &s["received"];
    assert!(r["screen_frames_decoded"].as_u64().unwrap() > 20, "{s:#}");
    // 800x600 captured; the browser's encoder may send it smaller under load.
    let (w, h) = (
        r["screen_width"].as_u64().unwrap(),
        r["screen_height"].as_u64().unwrap(),
    );
    assert!(
        (320..=800).contains(&w) && (200..=600).contains(&h),
        "{s:#}"
    );
    assert_eq!(r["screen_sharing"], false, "{s:#}");
    assert!(r["video_frames_decoded"].as_u64().unwrap() > after, "{s:#}");
    // The camera (640x480, raised to 1280x720 once connected), not the screen.
    assert!(r["video_width"].as_u64().unwrap() >= 640, "{s:#}");
    assert!(
        run.stdout
            .contains(&format!("shared-screen frames at {w}x{h}")),
        "{}",
        run.stdout
    );
    // The recording holds the screen (its first size), not the camera.
    let recorded = std::fs::read(&screen_path).unwrap();
    assert!(
        recorded.starts_with(b"YUV4MPEG2 W") && !recorded.starts_with(b"YUV4MPEG2 W640 H480"),
        "{:?}",
        String::from_utf8_lossy(&recorded[..recorded.len().min(40)])
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
