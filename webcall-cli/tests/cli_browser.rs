//! `webcall join` against the browser client in headless Chromium, both on
//! 127.0.0.1: each side decodes the other's video and audio, a browser
//! reload resumes the call, and either side leaving is seen by the other.

mod cli_common;

use std::time::Duration;

use cli_common::{finish, join_synthetic, scratch, spawn, stats, wav_rms};
use webcall_testkit::{Browser, TestServer, status_is};

/// A browser and a native peer fill two cores: one call at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(45);

fn native(
    url: &str,
    secs: &str,
    stats: &std::path::Path,
    wav: &std::path::Path,
) -> std::process::Child {
    spawn(join_synthetic(
        url,
        secs,
        stats,
        &["--record-audio", wav.to_str().unwrap()],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_and_native_see_each_other_and_survive_a_reload() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("browser-call");
    let (stats_path, wav) = (dir.join("native.json"), dir.join("native.wav"));

    let browser = Browser::launch().await.unwrap();
    browser.goto(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let child = native(&room.url, "30", &stats_path, &wav);

    let decoding = "(async () => { const s = await window.webcall.stats(); \
        return s.videoFramesDecoded > 30 && s.videoWidth === 640 && s.audioPacketsReceived > 50; })()";
    browser
        .wait_until(
            &format!("await {decoding}"),
            WAIT,
            "the browser decoding native video and audio",
        )
        .await
        .unwrap();

    // Pictures arrive: no "no camera" placeholder over them.
    let placeholder = browser
        .eval("return !document.getElementById('remote-off').hidden;")
        .await
        .unwrap();
    assert_eq!(placeholder, serde_json::Value::Bool(false));

    // A reload takes the seat back; the native side renegotiates.
    browser.reload().await.unwrap();
    browser
        .wait_until(
            &format!("await {decoding}"),
            WAIT,
            "the call resumed after a reload",
        )
        .await
        .unwrap();

    // The native peer's duration ends: it says bye, the browser sees it go.
    browser
        .wait_until(
            &status_is("peer_left"),
            WAIT,
            "the browser seeing the native peer leave",
        )
        .await
        .unwrap();
    let run = tokio::task::spawn_blocking(move || finish(child, WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    // Connected before the reload and again after it.
    assert!(
        run.stdout.matches("connection: connected").count() >= 2,
        "{}",
        run.stdout
    );
    // The reloaded page took its own seat back (PROTOCOL.md, "Seats"): the
    // native side saw it reconnecting and come back, never leave.
    assert!(
        run.stdout
            .contains("lost the server connection; waiting for them to reconnect"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("came back"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("left (connection lost)"),
        "{}",
        run.stdout
    );
    let s = stats(&stats_path);
    let r = &s["received"];
    assert!(r["video_frames_decoded"].as_u64().unwrap() >= 30, "{s:#}");
    assert!(r["audio_frames_decoded"].as_u64().unwrap() >= 100, "{s:#}");
    assert!(r["video_width"].as_u64().unwrap() > 0, "{s:#}");
    let (rms, n) = wav_rms(&wav);
    assert!(n >= 48_000, "{n} samples");
    assert!(
        rms > 0.001,
        "the browser's audio recorded as silence (rms {rms})"
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_hangs_up_and_native_reports_it() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("browser-hangup");
    let (stats_path, wav) = (dir.join("native.json"), dir.join("native.wav"));

    let browser = Browser::launch().await.unwrap();
    browser.goto(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let child = native(&room.url, "15", &stats_path, &wav);
    browser
        .wait_until(
            "(await window.webcall.stats()).videoFramesDecoded > 10",
            WAIT,
            "the browser decoding native video",
        )
        .await
        .unwrap();
    browser.eval("window.webcall.hangup();").await.unwrap();
    browser
        .wait_until(&status_is("ended"), WAIT, "the browser hung up")
        .await
        .unwrap();
    let run = tokio::task::spawn_blocking(move || finish(child, WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    assert!(run.stdout.contains("left (hung up)"), "{}", run.stdout);
    let s = stats(&stats_path);
    assert!(
        s["received"]["video_frames_decoded"].as_u64().unwrap() > 0,
        "{s:#}"
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
