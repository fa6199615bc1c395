//! End-to-end tests of the check before the call and of device switching in
//! the browser client: the real server on loopback and real headless
//! Chromiums with fake camera and microphone.
//!
//! - the pre-join screen shows the self-view and a moving microphone level
//!   and sends nothing to the room (the server counts nobody, the page
//!   opened no WebSocket) until "Join"; then the call connects;
//! - a page opened while someone waits says so (in English, and in Russian
//!   at phone width); an unknown link says so instead of offering "Join";
//! - a camera or microphone switched mid-call replaces the sender's track
//!   without renegotiating: the call stays connected, the other side's
//!   frame counters keep rising, and the camera switch, the on/off button
//!   and the 1280x720 upgrade work with the new track; the choice is
//!   remembered, and a remembered device that is gone falls back. A
//!   canvas stands in for a second camera: the other side sees its colour.
//!
//! The tests take one lock in turn, so at most two Chromiums run at once.
//! On loopback only:
//! `cargo test --workspace --test browser_devices --no-run` and then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline --workspace --test browser_devices'`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tokio::sync::Mutex;
use webcall_testkit::{
    Browser, BrowserOptions, MEDIA_FLOWING, TestServer, join_in_turn, status_is,
};

/// Serializes the tests of this file: each runs two browsers.
static HEAVY: Mutex<()> = Mutex::const_new(());

/// Bound for ordinary page states.
const STATE: Duration = Duration::from_secs(30);
/// Bound for media to flow or change (two browsers share 2 cores).
const MEDIA: Duration = Duration::from_secs(60);

/// Where a screenshot goes, for a person to look at.
fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("webcall-{name}.png"))
}

/// The mean colour `[r, g, b]` of what the remote video element shows now,
/// drawn onto a small canvas; `[-1, -1, -1]` before it has a picture.
const REMOTE_COLOUR: &str = "(() => { const v = document.getElementById('remote-video'); \
     if (!v.videoWidth) return [-1, -1, -1]; \
     const c = document.createElement('canvas'); c.width = 32; c.height = 24; \
     const g = c.getContext('2d'); g.drawImage(v, 0, 0, 32, 24); \
     const d = g.getImageData(0, 0, 32, 24).data; const sum = [0, 0, 0]; \
     for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; } \
     return sum.map((x) => x / (d.length / 4)); })()";

/// How many people the server counts in the room.
async fn participants(server: &TestServer, token: &str) -> Result<u64> {
    let response = server
        .request("GET", &format!("/api/rooms/{token}"), None)
        .await?;
    ensure!(
        response.status == 200,
        "GET /api/rooms answered {}",
        response.status
    );
    let info: Value = serde_json::from_str(&response.text())?;
    info["participants"]
        .as_u64()
        .context("the room info has no participants")
}

/// The number of `webcall:` marks named `name` on the page.
async fn marks(browser: &Browser, name: &str) -> Result<u64> {
    let n = browser
        .eval(&format!(
            "return performance.getEntriesByName('webcall:{name}').length;"
        ))
        .await?;
    n.as_u64().context("a mark count")
}

/// `window.webcall.stats()[field]` as a number.
async fn stat(browser: &Browser, field: &str) -> Result<f64> {
    browser.stats().await?[field]
        .as_f64()
        .with_context(|| format!("stats has no {field}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pre_join_sends_nothing_until_join_and_says_who_waits() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;
    let token = room.token.as_str();

    let alice = Browser::launch().await?;
    alice.goto(&room.url).await?;
    alice
        .wait_until(&status_is("prejoin"), STATE, "the check before the call")
        .await?;
    // The self-view shows the camera and the level meter moves with the
    // fake microphone's beeps.
    alice
        .wait_until(
            "(() => { const p = window.webcall.prejoin(); return p.selfView && p.levelChanges >= 5 && p.level > 0; })()",
            STATE,
            "the self-view and a moving microphone level",
        )
        .await?;
    alice
        .wait_until(
            "window.webcall.prejoin().whoKey === 'prejoin_nobody'",
            STATE,
            "the page to say nobody is here",
        )
        .await?;
    let who = alice.eval("return window.webcall.prejoin().who;").await?;
    assert_eq!(who.as_str(), Some("Nobody is here yet."));
    // Several polls later, still nothing sent: no socket, nobody in the room.
    alice
        .wait_until(
            "performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/rooms/')).length >= 3",
            STATE,
            "the page to ask the room three times",
        )
        .await?;
    assert_eq!(
        marks(&alice, "ws-connect").await?,
        0,
        "no WebSocket before Join"
    );
    assert_eq!(participants(&server, token).await?, 0, "nobody joined yet");
    alice.screenshot(screenshot_path("prejoin")).await?;

    alice.click_join().await?;
    alice
        .wait_until(&status_is("waiting"), STATE, "alice alone in the room")
        .await?;
    assert_eq!(participants(&server, token).await?, 1);

    // Bob opens the link on a Russian phone: the page says one person waits.
    let bob = Browser::launch_with(BrowserOptions {
        lang: Some("ru".into()),
        window_size: (390, 800),
        ..Default::default()
    })
    .await?;
    bob.goto(&room.url).await?;
    bob.wait_until(
        "(() => { const p = window.webcall.prejoin(); return p.whoKey === 'prejoin_one' && p.joinEnabled && p.selfView; })()",
        STATE,
        "bob's page to say one person is waiting",
    )
    .await?;
    let who = bob.eval("return window.webcall.prejoin().who;").await?;
    assert_eq!(who.as_str(), Some("Ждёт 1 человек."));
    let label = bob
        .eval("return document.getElementById('join-call').textContent;")
        .await?;
    assert_eq!(label.as_str(), Some("Присоединиться"));
    let fits = bob
        .eval("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await?;
    assert_eq!(fits, Value::Bool(true), "the pre-join fits a phone's width");
    bob.screenshot(screenshot_path("prejoin-ru-phone")).await?;
    assert_eq!(marks(&bob, "ws-connect").await?, 0);
    assert_eq!(participants(&server, token).await?, 1);

    bob.click_join().await?;
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        b.wait_until(&status_is("connected"), MEDIA, &format!("{who} connected"))
            .await?;
        b.wait_media(who, MEDIA).await?;
    }
    // A third page finds the room full and cannot join.
    let carol = Browser::launch().await?;
    carol.goto(&room.url).await?;
    carol
        .wait_until(
            "window.webcall.prejoin().whoKey === 'prejoin_full' && !window.webcall.prejoin().joinEnabled",
            STATE,
            "carol's page to say the room is full",
        )
        .await?;
    carol.close().await?;
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_link_says_so_before_join() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let browser = Browser::launch().await?;
    browser
        .goto(&server.room_url("AAAAAAAAAAAAAAAAAAAAAA"))
        .await?;
    browser
        .wait_until(&status_is("not_found"), STATE, "not_found")
        .await?;
    let shown = browser
        .eval(
            "return { who: window.webcall.prejoin().who, join: document.getElementById('join-call').hidden, \
             home: !document.getElementById('prejoin-home').hidden, prejoin: !document.getElementById('prejoin').hidden };",
        )
        .await?;
    assert_eq!(
        shown["who"].as_str(),
        Some("This link is unknown or has expired.")
    );
    assert_eq!(shown["join"], Value::Bool(true), "no Join for a dead link");
    assert_eq!(shown["home"], Value::Bool(true), "a way back home instead");
    assert_eq!(shown["prejoin"], Value::Bool(true), "said on the pre-join");
    assert_eq!(marks(&browser, "ws-connect").await?, 0);
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_devices_mid_call_keeps_the_call_without_renegotiating() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;

    // A remembered camera that is gone: the page falls back to the default.
    let alice = Browser::launch().await?;
    alice.goto(&server.base_url()).await?;
    alice
        .eval("localStorage.setItem('webcall.device.videoinput', 'a-camera-that-is-gone'); return null;")
        .await?;
    let bob = Browser::launch().await?;
    join_in_turn((&alice, &room.url), (&bob, &room.url), MEDIA).await?;
    let local = alice.eval("return window.webcall.devices.local();").await?;
    ensure!(
        local.as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["kind"] == "video" && t["readyState"] == "live")),
        "the gone camera fell back to one that works: {local}"
    );
    // The first camera's upgrade has happened before the switch.
    alice
        .wait_until(
            "window.webcall.devices.local().some((t) => t.kind === 'video' && t.width === 1280)",
            MEDIA,
            "alice's first camera at 1280x720",
        )
        .await?;

    let offers_alice = alice.eval("return window.webcall.offers();").await?;
    let offers_bob = bob.eval("return window.webcall.offers();").await?;
    let devices = alice
        .eval("return await window.webcall.devices.list();")
        .await?;
    let camera = devices
        .as_array()
        .and_then(|d| d.iter().find(|d| d["kind"] == "videoinput"))
        .and_then(|d| d["deviceId"].as_str())
        .context("the fake camera is listed")?
        .to_owned();
    let microphone = devices
        .as_array()
        .and_then(|d| d.iter().find(|d| d["kind"] == "audioinput"))
        .and_then(|d| d["deviceId"].as_str())
        .context("the fake microphone is listed")?
        .to_owned();
    let camera_count = devices.as_array().map_or(0, |d| {
        d.iter().filter(|d| d["kind"] == "videoinput").count()
    });
    println!("devices listed: {camera_count} camera(s); switching to {camera}");

    // The camera: Chromium's fake devices list one, so this picks it again,
    // which still makes a fresh track and replaces the sender's.
    let sent_before = alice
        .eval("return window.webcall.devices.senderTrack('video');")
        .await?;
    let frames_before = stat(&bob, "videoFramesDecoded").await?;
    alice
        .eval(&format!(
            "await window.webcall.devices.choose('videoinput', {camera:?}); return null;"
        ))
        .await?;
    let sent_after = alice
        .eval("return window.webcall.devices.senderTrack('video');")
        .await?;
    ensure!(
        sent_after.is_string() && sent_after != sent_before,
        "the sender's video track was replaced: {sent_before} -> {sent_after}"
    );
    let remembered = alice
        .eval("return localStorage.getItem('webcall.device.videoinput');")
        .await?;
    assert_eq!(remembered.as_str(), Some(camera.as_str()), "remembered");
    bob.wait_until(
        &format!(
            "await (async () => (await window.webcall.stats()).videoFramesDecoded > {} )()",
            frames_before + 60.0
        ),
        MEDIA,
        "bob's decoded frames to keep rising after the switch",
    )
    .await?;
    // The new camera goes up to full size too.
    alice
        .wait_until(
            &format!(
                "window.webcall.devices.local().some((t) => t.kind === 'video' && t.id === {sent_after} && t.width === 1280)"
            ),
            MEDIA,
            "the switched camera at 1280x720",
        )
        .await?;
    // The camera button works on the new track.
    alice.click("#toggle-cam").await?;
    let enabled = alice
        .eval("return window.webcall.state().localEnabled.video;")
        .await?;
    assert_eq!(enabled, Value::Bool(false), "camera off after the switch");
    alice.click("#toggle-cam").await?;
    let enabled = alice
        .eval("return window.webcall.state().localEnabled.video;")
        .await?;
    assert_eq!(enabled, Value::Bool(true), "camera on again");

    // The microphone, from the settings in the call's controls.
    alice.click("#settings-toggle").await?;
    alice
        .wait_until(
            "!document.getElementById('settings').hidden && document.getElementById('pick-mic').options.length > 0",
            STATE,
            "the device settings open",
        )
        .await?;
    alice.screenshot(screenshot_path("settings")).await?;
    let audio_before = stat(&bob, "audioBytesReceived").await?;
    let mic_before = alice
        .eval("return window.webcall.devices.senderTrack('audio');")
        .await?;
    alice
        .eval(&format!(
            "await window.webcall.devices.choose('audioinput', {microphone:?}); return null;"
        ))
        .await?;
    let mic_after = alice
        .eval("return window.webcall.devices.senderTrack('audio');")
        .await?;
    ensure!(
        mic_after.is_string() && mic_after != mic_before,
        "the sender's audio track was replaced: {mic_before} -> {mic_after}"
    );
    bob.wait_until(
        &format!(
            "await (async () => (await window.webcall.stats()).audioBytesReceived > {} )()",
            audio_before + 20_000.0
        ),
        MEDIA,
        "bob's received audio to keep rising after the switch",
    )
    .await?;
    bob.wait_until(MEDIA_FLOWING, MEDIA, "bob still decoding media")
        .await?;

    // A second "camera" (a red canvas): the other side sees the new source.
    let canvas = alice
        .eval("return await window.webcall.devices.useCanvas('rgb(230, 20, 20)');")
        .await?;
    ensure!(canvas.is_string(), "the canvas track: {canvas}");
    assert_eq!(
        alice
            .eval("return window.webcall.devices.senderTrack('video');")
            .await?,
        canvas,
        "the canvas track is the one sent"
    );
    bob.wait_until(
        &format!(
            "(() => {{ const [r, g, b] = {REMOTE_COLOUR}; return r > 150 && g < 90 && b < 90; }})()"
        ),
        MEDIA,
        "bob to see the red picture",
    )
    .await?;
    let frames = stat(&bob, "videoFramesDecoded").await?;
    bob.wait_until(
        &format!(
            "await (async () => (await window.webcall.stats()).videoFramesDecoded > {} )()",
            frames + 30.0
        ),
        MEDIA,
        "bob's decoded frames to keep rising with the canvas",
    )
    .await?;

    // Nothing was renegotiated and the call never dropped.
    assert_eq!(
        alice.eval("return window.webcall.offers();").await?,
        offers_alice,
        "alice negotiated again"
    );
    assert_eq!(
        bob.eval("return window.webcall.offers();").await?,
        offers_bob,
        "bob negotiated again"
    );
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        assert_eq!(b.status().await, "connected", "{who}");
        let dropped = b
            .eval("return window.webcall.log.some((l) => l.includes('status reconnecting'));")
            .await?;
        assert_eq!(
            dropped,
            Value::Bool(false),
            "{who} went through reconnecting"
        );
    }
    let switches = alice
        .eval("return window.webcall.devices.switches();")
        .await?;
    assert_eq!(switches.as_u64(), Some(3));
    alice.close().await?;
    bob.close().await?;
    Ok(())
}
