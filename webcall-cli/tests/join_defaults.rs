//! `webcall join <link>` with no media flags uses the default camera and
//! microphone, and joins without what is missing, saying so. This machine
//! has no camera; the microphone is ALSA's null device (an `.asoundrc` in a
//! temporary HOME makes it the default), or no sound device at all. The
//! other side is the browser client in headless Chromium, which shows its
//! "no camera" placeholder instead of a picture.

mod cli_common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cli_common::{finish, scratch, spawn, stats, webcall};
use webcall_testkit::{Browser, BrowserOptions, TestServer, status_is};

/// A browser and a native peer fill two cores: one call at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(45);

const NULL_ASOUNDRC: &str = "pcm.!default { type plug; slave.pcm \"null\" }\n\
                             ctl.!default { type hw card 0 }\n";

/// Where a machine has a sound card, a default device that cannot open
/// (a card that is not there) stands in for having none.
const NO_CARD_ASOUNDRC: &str = "pcm.!default { type hw card 57 }\n\
                                ctl.!default { type hw card 57 }\n";

/// A HOME for the `webcall` process holding `asoundrc`, if any.
fn home_with(dir: &Path, asoundrc: Option<&str>) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    if let Some(rc) = asoundrc {
        std::fs::write(home.join(".asoundrc"), rc).unwrap();
    }
    home
}

/// A HOME in which ALSA finds no sound device: this machine's own state
/// when it has no sound card, else [`NO_CARD_ASOUNDRC`].
fn home_without_sound(dir: &Path) -> PathBuf {
    let cards = std::fs::read_to_string("/proc/asound/cards").unwrap_or_default();
    let has_card = cards
        .lines()
        .any(|l| l.trim_start().starts_with(char::is_numeric));
    home_with(dir, has_card.then_some(NO_CARD_ASOUNDRC))
}

/// `webcall join <url>` with no media flags, on loopback, for `secs`.
fn join_with_defaults(url: &str, home: &Path, secs: &str, stats: &Path) -> std::process::Child {
    let mut cmd = webcall(&[
        "join",
        url,
        "--no-tui",
        "--ice-addr",
        "127.0.0.1",
        "--duration",
        secs,
        "--stats-json",
        stats.to_str().unwrap(),
    ]);
    cmd.env("HOME", home).env_remove("XDG_CONFIG_HOME");
    spawn(cmd)
}

const REMOTE_OFF_SHOWN: &str = "(() => { const el = document.getElementById('remote-off'); \
     return !!el && !el.hidden && getComputedStyle(el).display !== 'none'; })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_camera_joins_with_the_microphone_and_the_browser_shows_no_camera() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("defaults-null-mic");
    let home = home_with(&dir, Some(NULL_ASOUNDRC));
    let stats_path = dir.join("native.json");

    let browser = Browser::launch_with(BrowserOptions {
        lang: Some("ru".into()),
        ..BrowserOptions::default()
    })
    .await
    .unwrap();
    browser.join_room(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let child = join_with_defaults(&room.url, &home, "20", &stats_path);

    browser
        .wait_until(&status_is("connected"), WAIT, "the call connected")
        .await
        .unwrap();
    // Sound from the null microphone (silence, but real Opus packets).
    browser
        .wait_until(
            "(await window.webcall.stats()).audioPacketsReceived > 50",
            WAIT,
            "the browser receiving the native microphone",
        )
        .await
        .unwrap();
    browser
        .wait_until(REMOTE_OFF_SHOWN, WAIT, "the \"no camera\" placeholder")
        .await
        .unwrap();
    let text = browser
        .eval("return document.getElementById('remote-off').textContent;")
        .await
        .unwrap();
    assert_eq!(text, "Нет камеры");
    let browser_stats = browser.stats().await.unwrap();
    assert_eq!(
        browser_stats["videoFramesDecoded"], 0,
        "no test card or other picture: {browser_stats:#}"
    );

    let run = tokio::task::spawn_blocking(move || finish(child, WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    let said = "no camera found: joining without video (use --video test or --video FILE.y4m)";
    assert!(run.stderr.contains(said), "{}", run.stderr);
    assert!(run.stdout.contains(said), "{}", run.stdout);
    assert!(!run.stderr.contains("no microphone"), "{}", run.stderr);
    let s = stats(&stats_path);
    assert_eq!(s["sent"]["video_frames"], 0, "{s:#}");
    assert!(s["sent"]["audio_frames"].as_u64().unwrap() > 50, "{s:#}");
    // Paced to real time although the null device has no clock: about 50
    // frames a second, not thousands.
    let secs = s["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert!(
        (s["sent"]["audio_frames"].as_u64().unwrap() as f64) < 60.0 * secs,
        "{s:#}"
    );
    // A microphone is sent through echo cancellation and noise suppression.
    assert_eq!(
        s["audio_processing"],
        serde_json::json!({"echo_cancellation": true, "noise_suppression": true}),
        "{s:#}"
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sound_card_joins_without_audio_and_says_so() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("defaults-no-card");
    let home = home_without_sound(&dir);
    let stats_path = dir.join("native.json");

    let browser = Browser::launch().await.unwrap();
    browser.join_room(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let child = join_with_defaults(&room.url, &home, "12", &stats_path);
    browser
        .wait_until(&status_is("connected"), WAIT, "the call connected")
        .await
        .unwrap();
    browser
        .wait_until(REMOTE_OFF_SHOWN, WAIT, "the \"no camera\" placeholder")
        .await
        .unwrap();
    let text = browser
        .eval("return document.getElementById('remote-off').textContent;")
        .await
        .unwrap();
    assert_eq!(text, "No camera");

    let run = tokio::task::spawn_blocking(move || finish(child, WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    for said in [
        "no camera found: joining without video",
        "no microphone found: joining without audio (use --audio tone or --audio FILE.wav)",
    ] {
        assert!(run.stderr.contains(said), "{}", run.stderr);
    }
    assert!(
        run.stdout.contains("connection: connected"),
        "{}",
        run.stdout
    );
    // alsa-lib's own complaints stay off the screen.
    assert!(!run.stderr.contains("ALSA lib"), "{}", run.stderr);
    let s = stats(&stats_path);
    assert_eq!(s["sent"]["video_frames"], 0, "{s:#}");
    assert_eq!(s["sent"]["audio_frames"], 0, "{s:#}");
    assert_eq!(
        s["audio_processing"],
        serde_json::json!({"echo_cancellation": false, "noise_suppression": false}),
        "no microphone, nothing processed: {s:#}"
    );
    // The browser's camera and microphone still come through.
    assert!(
        s["received"]["video_frames_decoded"].as_u64().unwrap() > 0,
        "{s:#}"
    );
    let browser_stats = browser.stats().await.unwrap();
    assert_eq!(
        browser_stats["audioPacketsReceived"], 0,
        "{browser_stats:#}"
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_asked_for_by_name_that_is_missing_is_an_error() {
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("defaults-asked");
    let home = home_without_sound(&dir);
    for (flags, said) in [
        (["--video", "camera"], "no camera found"),
        (["--audio", "mic"], "no microphone found"),
    ] {
        let mut cmd = webcall(&["join", &room.url, "--no-tui"]);
        cmd.args(flags).env("HOME", &home);
        let run = tokio::task::spawn_blocking(move || finish(spawn(cmd), WAIT))
            .await
            .unwrap();
        assert!(!run.success(), "{flags:?}: {run:#?}");
        assert!(run.stderr.contains(said), "{flags:?}: {}", run.stderr);
        assert!(!run.stdout.contains("joined"), "{flags:?}: {}", run.stdout);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
