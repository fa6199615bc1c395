//! End-to-end tests of the call controls and of renegotiation in the browser
//! client: the real server on loopback and two real headless Chromiums
//! (fake camera and microphone) in a real WebRTC call.
//!
//! - the camera and microphone buttons: what the far side receives while
//!   they are off, and that it comes back;
//! - ICE restarts asked for by either side (`window.webcall.restartIce()`,
//!   the path the automatic restart takes);
//! - the automatic restart after the far side stops answering (its Chromium
//!   is frozen with SIGSTOP for a while, then thawed);
//! - glare: both sides restart at the same instant and perfect negotiation
//!   settles it.
//!
//! The tests take one lock in turn, so at most two Chromiums run at once.
//! On loopback only:
//! `cargo test -p webcall-server --test browser_controls --no-run` and then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline -p webcall-server --test browser_controls'`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tokio::sync::Mutex;
use webcall_testkit::{Browser, TestServer, join_in_turn, status_is};

/// Serializes the tests of this file: each runs two browsers.
static HEAVY: Mutex<()> = Mutex::const_new(());

/// Bound for media to flow or change (two browsers share 2 cores).
const MEDIA: Duration = Duration::from_secs(45);

/// Mean brightness (0-255) of what the remote video element shows now,
/// drawn onto a small canvas; -1 before it has a picture.
const REMOTE_BRIGHTNESS: &str = "(() => { const v = document.getElementById('remote-video'); \
     if (!v.videoWidth) return -1; \
     const c = document.createElement('canvas'); c.width = 64; c.height = 36; \
     const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36); \
     const d = g.getImageData(0, 0, 64, 36).data; let sum = 0; \
     for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2]; \
     return sum / (d.length / 4) / 3; })()";

/// Two browsers in a connected call, told apart by their negotiation role.
struct Pair {
    /// The side that wins offer collisions and restarts ICE by itself.
    impolite: Browser,
    /// The side that yields on offer collisions.
    polite: Browser,
}

impl Pair {
    async fn close(self) -> Result<()> {
        self.impolite.close().await?;
        self.polite.close().await
    }
}

/// Starts two browsers in one room and waits until both decode the other's
/// video and audio.
async fn connected_pair(server: &TestServer) -> Result<Pair> {
    let room = server.create_room().await?;
    let first = Browser::launch().await?;
    let second = Browser::launch().await?;
    join_in_turn((&first, &room.url), (&second, &room.url), MEDIA).await?;
    let first_polite = first.eval("return window.webcall.state().polite;").await?;
    let second_polite = second.eval("return window.webcall.state().polite;").await?;
    ensure!(
        first_polite.is_boolean() && first_polite != second_polite,
        "exactly one side is polite: first {first_polite}, second {second_polite}"
    );
    Ok(if first_polite == Value::Bool(true) {
        Pair {
            impolite: second,
            polite: first,
        }
    } else {
        Pair {
            impolite: first,
            polite: second,
        }
    })
}

async fn stat(browser: &Browser, key: &str) -> Result<f64> {
    let stats = browser.stats().await?;
    stats[key]
        .as_f64()
        .with_context(|| format!("{key} is not a number in {stats}"))
}

/// Waits until the numeric stat `key` grows by more than `by` from now.
async fn wait_stat_grows(browser: &Browser, key: &str, by: f64, what: &str) -> Result<()> {
    let before = stat(browser, key).await?;
    browser
        .wait_until(
            &format!("(await window.webcall.stats()).{key} > {}", before + by),
            MEDIA,
            &format!("{what}: {key} to grow by {by} from {before}"),
        )
        .await
}

/// Waits until both sides decode new video frames.
async fn wait_frames_flow(pair: &Pair, when: &str) -> Result<()> {
    for (browser, who) in [(&pair.impolite, "impolite"), (&pair.polite, "polite")] {
        wait_stat_grows(
            browser,
            "videoFramesDecoded",
            10.0,
            &format!("{who} side {when}"),
        )
        .await?;
    }
    Ok(())
}

async fn state(browser: &Browser) -> Result<Value> {
    browser.eval("return window.webcall.state();").await
}

/// The local and remote ICE usernames of a side's current descriptions.
async fn ufrags(browser: &Browser) -> Result<(String, String)> {
    let s = state(browser).await?;
    let local = s["ufrags"]["local"].as_str().map(str::to_owned);
    let remote = s["ufrags"]["remote"].as_str().map(str::to_owned);
    match (local, remote) {
        (Some(l), Some(r)) => Ok((l, r)),
        _ => anyhow::bail!("no ICE usernames in the state: {s}"),
    }
}

/// Waits until the side's local and remote ICE usernames both differ from
/// `before`, its signaling is stable and the call is connected.
async fn wait_new_ice(browser: &Browser, before: &(String, String), who: &str) -> Result<()> {
    browser
        .wait_until(
            &format!(
                "(() => {{ const s = window.webcall.state(); \
                   return s.ufrags.local && s.ufrags.local !== '{}' \
                     && s.ufrags.remote && s.ufrags.remote !== '{}' \
                     && s.signalingState === 'stable' && s.connectionState === 'connected' \
                     && {}; }})()",
                before.0,
                before.1,
                status_is("connected")
            ),
            MEDIA,
            &format!("{who} side to connect again with new ICE credentials"),
        )
        .await
}

/// The button's `aria-pressed`, `aria-label` and `disabled`.
async fn button(browser: &Browser, id: &str) -> Result<(String, String)> {
    let v = browser
        .eval(&format!(
            "const b = document.getElementById('{id}'); \
             return [b.getAttribute('aria-pressed'), b.getAttribute('aria-label')];"
        ))
        .await?;
    Ok((
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_str().unwrap_or_default().to_owned(),
    ))
}

/// How many lines of the page's own log contain `needle`.
async fn log_count(browser: &Browser, needle: &str) -> Result<u64> {
    let v = browser
        .eval(&format!(
            "return window.webcall.log.filter((l) => l.includes({})).length;",
            serde_json::to_string(needle)?
        ))
        .await?;
    v.as_u64().context("a count")
}

/// Audio energy the side receives while `packets` more audio packets arrive.
async fn energy_over_packets(browser: &Browser, packets: f64, what: &str) -> Result<f64> {
    let energy = stat(browser, "audioEnergyReceived").await?;
    wait_stat_grows(browser, "audioPacketsReceived", packets, what).await?;
    Ok(stat(browser, "audioEnergyReceived").await? - energy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_and_microphone_buttons_stop_and_resume_what_the_far_side_gets() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let pair = connected_pair(&server).await?;
    let (me, far) = (&pair.impolite, &pair.polite);

    // ---- camera
    assert_eq!(
        button(me, "toggle-cam").await?,
        ("false".to_owned(), "Turn camera off".to_owned()),
        "the camera button before any click"
    );
    far.wait_until(
        &format!("{REMOTE_BRIGHTNESS} > 20"),
        MEDIA,
        "the far side to show a picture",
    )
    .await?;
    let lit = far.eval(&format!("return {REMOTE_BRIGHTNESS};")).await?;
    println!("remote picture brightness with the camera on: {lit}");

    me.click("#toggle-cam").await?;
    assert_eq!(
        button(me, "toggle-cam").await?,
        ("true".to_owned(), "Turn camera on".to_owned()),
        "the camera button once off"
    );
    let s = state(me).await?;
    assert_eq!(s["localEnabled"]["video"], Value::Bool(false), "{s}");
    assert_eq!(s["localEnabled"]["audio"], Value::Bool(true), "{s}");
    // The track is disabled, not removed: Chromium keeps sending frames, and
    // they are black. The far side keeps decoding and shows black.
    far.wait_until(
        &format!("{REMOTE_BRIGHTNESS} >= 0 && {REMOTE_BRIGHTNESS} < 3"),
        MEDIA,
        "the far side's picture to go black",
    )
    .await?;
    let encoded = stat(me, "videoFramesEncoded").await?;
    wait_stat_grows(far, "videoFramesDecoded", 2.0, "far side, camera off").await?;
    let dark = far.eval(&format!("return {REMOTE_BRIGHTNESS};")).await?;
    println!("remote picture brightness with the camera off: {dark}");
    assert!(
        dark.as_f64().unwrap_or(255.0) < 3.0,
        "the picture stays black while the camera is off: {dark}"
    );
    let encoded_off = stat(me, "videoFramesEncoded").await? - encoded;
    println!("frames encoded meanwhile with the camera off: {encoded_off}");
    let local_off = me
        .eval("return !document.getElementById('local-off').hidden;")
        .await?;
    assert_eq!(local_off, Value::Bool(true), "the own tile says camera off");

    me.click("#toggle-cam").await?;
    assert_eq!(
        button(me, "toggle-cam").await?,
        ("false".to_owned(), "Turn camera off".to_owned()),
        "the camera button once on again"
    );
    far.wait_until(
        &format!("{REMOTE_BRIGHTNESS} > 20"),
        MEDIA,
        "the far side's picture to come back",
    )
    .await?;
    wait_stat_grows(far, "videoFramesDecoded", 10.0, "far side, camera on again").await?;

    // ---- microphone
    assert_eq!(
        button(me, "toggle-mic").await?,
        ("false".to_owned(), "Turn microphone off".to_owned()),
        "the microphone button before any click"
    );
    let loud = energy_over_packets(far, 100.0, "far side, microphone on").await?;
    println!("audio energy received over 100 packets with the microphone on: {loud}");
    ensure!(loud > 0.0, "the fake microphone's sound arrives: {loud}");

    me.click("#toggle-mic").await?;
    assert_eq!(
        button(me, "toggle-mic").await?,
        ("true".to_owned(), "Turn microphone on".to_owned()),
        "the microphone button once off"
    );
    let s = state(me).await?;
    assert_eq!(s["localEnabled"]["audio"], Value::Bool(false), "{s}");
    assert_eq!(s["localEnabled"]["video"], Value::Bool(true), "{s}");
    // Packets keep coming (silence), their level drops to zero.
    far.wait_until(
        "(await window.webcall.stats()).audioLevelReceived < 0.001",
        MEDIA,
        "the far side's audio level to drop",
    )
    .await?;
    let quiet = energy_over_packets(far, 100.0, "far side, microphone off").await?;
    println!("audio energy received over 100 packets with the microphone off: {quiet}");
    assert!(
        quiet < loud / 100.0,
        "silence while muted: energy {quiet} against {loud} with the microphone on"
    );

    me.click("#toggle-mic").await?;
    assert_eq!(
        button(me, "toggle-mic").await?,
        ("false".to_owned(), "Turn microphone off".to_owned()),
        "the microphone button once on again"
    );
    // The sound comes back (the sender's audio processing may take a moment
    // to ramp up again after the silence): watch windows of 50 packets.
    let deadline = Instant::now() + MEDIA;
    let mut windows = Vec::new();
    loop {
        let energy = energy_over_packets(far, 50.0, "far side, microphone on again").await?;
        windows.push(energy);
        if energy > loud / 20.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sound comes back: energy per 50 packets {windows:?} against {loud} per 100 before muting"
        );
    }
    println!("audio energy per 50 packets after unmuting: {windows:?}");
    assert_eq!(
        far.status().await,
        "connected",
        "the call stayed up throughout"
    );
    pair.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restarts_from_either_side_keep_the_call() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let pair = connected_pair(&server).await?;

    for (restarter, other, who) in [
        (&pair.impolite, &pair.polite, "impolite"),
        (&pair.polite, &pair.impolite, "polite"),
    ] {
        let mine = ufrags(restarter).await?;
        let theirs = ufrags(other).await?;
        assert_eq!(mine.0, theirs.1, "both sides agree on the ICE username");
        let started = restarter
            .eval("return window.webcall.restartIce();")
            .await?;
        assert_eq!(started, Value::Bool(true), "{who} side restarts ICE");
        wait_new_ice(restarter, &mine, who).await?;
        wait_new_ice(other, &theirs, "the other").await?;
        let (now_mine, now_theirs) = (ufrags(restarter).await?, ufrags(other).await?);
        assert_eq!(
            now_mine.0, now_theirs.1,
            "after the {who} restart: {now_mine:?} {now_theirs:?}"
        );
        assert_eq!(
            now_mine.1, now_theirs.0,
            "after the {who} restart: {now_mine:?} {now_theirs:?}"
        );
        wait_frames_flow(&pair, &format!("after the {who} side's restart")).await?;
    }
    pair.close().await
}

/// Thaws a frozen browser however the test ends.
struct Frozen<'a>(&'a Browser);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = self.0.resume();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_side_that_stops_answering_brings_an_automatic_ice_restart() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let pair = connected_pair(&server).await?;
    let (me, far) = (&pair.impolite, &pair.polite);
    let before = ufrags(me).await?;
    let restarts = log_count(me, "restarting ICE").await?;

    // Freeze the polite side: its connectivity checks stop. The impolite
    // side sees ICE disconnected and restarts by itself.
    let stopped = far.suspend()?;
    let frozen = Frozen(far);
    let t0 = Instant::now();
    println!("froze {stopped} Chromium processes");
    me.wait_until(
        "window.webcall.state().iceConnectionState === 'disconnected' \
         || window.webcall.state().iceConnectionState === 'failed'",
        MEDIA,
        "the impolite side to notice the silence",
    )
    .await?;
    let noticed = t0.elapsed();
    me.wait_until(
        &format!(
            "window.webcall.log.filter((l) => l.includes('restarting ICE')).length > {restarts}"
        ),
        MEDIA,
        "the impolite side to restart ICE by itself",
    )
    .await?;
    let restarted = t0.elapsed();
    drop(frozen);

    wait_new_ice(me, &before, "impolite").await?;
    println!(
        "after the freeze: ICE down in {noticed:?}, restart at {restarted:?}, \
         connected again {:?} after the thaw",
        t0.elapsed() - restarted
    );
    far.wait_until(&status_is("connected"), MEDIA, "the thawed side connected")
        .await?;
    let (mine, theirs) = (ufrags(me).await?, ufrags(far).await?);
    assert_eq!(mine.0, theirs.1, "{mine:?} {theirs:?}");
    assert_eq!(mine.1, theirs.0, "{mine:?} {theirs:?}");
    wait_frames_flow(&pair, "after the automatic restart").await?;
    pair.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_restarts_on_both_sides_settle_by_perfect_negotiation() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let pair = connected_pair(&server).await?;
    let (a, b) = (&pair.impolite, &pair.polite);

    // Both restart at the same wall-clock instant (one clock for both
    // browsers), so both offers cross. Timing could still let one offer
    // land before the other is made, so try a few times until a collision
    // is seen in the logs; every round must end connected with media.
    let mut collided = false;
    for round in 1..=4 {
        let ignored = log_count(a, "ignoring a colliding offer").await?;
        let rolled = log_count(b, "rolling back our own").await?;
        let (before_a, before_b) = (ufrags(a).await?, ufrags(b).await?);
        let at = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() + 1500;
        // Late (a busy machine) means at once: the round may then not collide.
        let schedule = format!(
            "const wait = {at} - Date.now(); \
             setTimeout(() => window.webcall.restartIce(), Math.max(0, wait)); return wait;"
        );
        a.eval(&schedule).await?;
        b.eval(&schedule).await?;
        wait_new_ice(a, &before_a, "impolite").await?;
        wait_new_ice(b, &before_b, "polite").await?;
        let (now_a, now_b) = (ufrags(a).await?, ufrags(b).await?);
        assert_eq!(now_a.0, now_b.1, "round {round}: {now_a:?} {now_b:?}");
        assert_eq!(now_a.1, now_b.0, "round {round}: {now_a:?} {now_b:?}");
        wait_frames_flow(
            &pair,
            &format!("after simultaneous restarts, round {round}"),
        )
        .await?;
        let ignored = log_count(a, "ignoring a colliding offer").await? - ignored;
        let rolled = log_count(b, "rolling back our own").await? - rolled;
        println!("round {round}: impolite ignored {ignored} offers, polite rolled back {rolled}");
        if ignored > 0 && rolled > 0 {
            collided = true;
            break;
        }
    }
    assert!(collided, "the offers never collided in four rounds");
    pair.close().await
}
