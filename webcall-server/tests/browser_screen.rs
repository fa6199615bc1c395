//! End-to-end tests of screen sharing in the browser client (PROTOCOL.md,
//! "Screen sharing"): the real server on loopback and two real headless
//! Chromiums in a real WebRTC call, the screen from Chromium's fake display
//! capture (getDisplayMedia with `--use-fake-ui-for-media-stream`, 800x600).
//!
//! - the offering side shares with a real click on its button: the other
//!   page decodes the screen on its own element, shows it large with the
//!   camera small, and the camera keeps arriving; the click again stops it
//!   and the layout goes back; no new offer or answer is made for either;
//! - then the answering side shares (through the page hook) the same way,
//!   and the capture ending (the browser's own "stop sharing") stops it.
//!
//! On loopback only:
//! `cargo test --workspace --offline --test browser_screen --no-run` and then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --workspace --offline --test browser_screen'`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use webcall_testkit::{Browser, TestServer, status_is};

/// Bound for ordinary page states.
const STATE: Duration = Duration::from_secs(30);
/// Bound for a call to connect (two browsers share 2 cores).
const CONNECT: Duration = Duration::from_secs(60);
/// Bound for shared pictures to arrive and be shown.
const MEDIA: Duration = Duration::from_secs(60);

/// The page's screen sharing state (`window.webcall.screen.state()`).
async fn screen(browser: &Browser) -> Result<Value> {
    browser.eval("return window.webcall.screen.state();").await
}

/// A number of the page's getStats summary.
async fn stat(browser: &Browser, name: &str) -> Result<u64> {
    browser.stats().await?[name]
        .as_u64()
        .with_context(|| format!("no {name} in the stats"))
}

/// How many offers and answers the page has sent so far (its performance marks).
async fn negotiations(browser: &Browser) -> Result<u64> {
    browser
        .eval(
            "return ['webcall:offer-sent', 'webcall:answer-sent'] \
             .map((n) => performance.getEntriesByName(n).length).reduce((a, b) => a + b, 0);",
        )
        .await?
        .as_u64()
        .context("a count of marks")
}

/// Waits until `viewer` shows the other side's screen large and has shown
/// more than `frames` of its pictures, while its camera goes on arriving.
async fn wait_screen_shown(viewer: &Browser, who: &str, frames: u64) -> Result<()> {
    viewer
        .wait_until(
            &format!(
                "(() => {{ const s = window.webcall.screen.state(); \
                 return s.remoteSharing && s.layout === 'screen' && s.remoteFrames > {frames} \
                 && s.remoteWidth === 800; }})()"
            ),
            MEDIA,
            &format!("{who} to show the shared screen large"),
        )
        .await?;
    let stats = viewer.stats().await?;
    ensure!(
        stats["screenFramesDecoded"].as_u64().unwrap_or(0) > 0
            && stats["screenWidth"].as_u64() == Some(800),
        "{who}'s stats count no screen pictures: {stats}"
    );
    // The screen fills the stage; the camera is the small tile.
    let sizes = viewer
        .eval(
            "const w = (id) => document.getElementById(id).getBoundingClientRect().width; \
             return [w('remote-screen'), w('remote-video')];",
        )
        .await?;
    let (screen_w, camera_w) = (
        sizes[0].as_f64().unwrap_or(0.0),
        sizes[1].as_f64().unwrap_or(0.0),
    );
    ensure!(
        screen_w > 2.0 * camera_w && camera_w > 0.0,
        "{who}: the screen is {screen_w} px wide, the camera {camera_w} px"
    );
    viewer
        .screenshot(std::env::temp_dir().join(format!("webcall-screen-{who}.png")))
        .await?;
    // The camera keeps coming while the screen is shown.
    let before = stat(viewer, "videoFramesDecoded").await?;
    viewer
        .wait_until(
            &format!("(await window.webcall.stats()).videoFramesDecoded > {before} + 15"),
            MEDIA,
            &format!("{who}'s camera pictures to go on during the share"),
        )
        .await?;
    Ok(())
}

/// Waits until `viewer` is back to the camera layout.
async fn wait_share_over(viewer: &Browser, who: &str) -> Result<()> {
    viewer
        .wait_until(
            "(() => { const s = window.webcall.screen.state(); \
             return !s.remoteSharing && s.layout === 'camera'; })()",
            STATE,
            &format!("{who} to go back to the camera layout"),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_reaches_the_other_page_both_ways_without_renegotiating() -> Result<()> {
    let server = TestServer::start().await?;
    let room = server.create_room().await?;
    let alice = Browser::launch().await?;
    alice.join_room(&room.url).await?;
    alice
        .wait_until(&status_is("waiting"), STATE, "alice alone in the room")
        .await?;
    let bob = Browser::launch().await?;
    bob.join_room(&room.url).await?;
    for (browser, who) in [(&alice, "alice"), (&bob, "bob")] {
        browser
            .wait_until(
                &format!(
                    "{} && window.webcall.state().channel === 'open' \
                     && window.webcall.screen.state().canShare",
                    status_is("connected")
                ),
                CONNECT,
                &format!("{who} connected, able to share"),
            )
            .await?;
        browser.wait_media(who, CONNECT).await?;
        let state = screen(browser).await?;
        ensure!(
            state["available"] == true && state["sharing"] == false && state["layout"] == "camera",
            "{who} before sharing: {state}"
        );
    }
    let negotiated = (negotiations(&alice).await?, negotiations(&bob).await?);

    // Bob arrived second: he made the offer. Alice shares with a click.
    alice.click("#toggle-screen").await?;
    alice
        .wait_until(
            "window.webcall.screen.state().sharing",
            STATE,
            "alice to share her screen",
        )
        .await?;
    let label = alice
        .eval("return document.getElementById('toggle-screen').getAttribute('aria-pressed');")
        .await?;
    ensure!(label == "true", "the share button is not pressed: {label}");
    wait_screen_shown(&bob, "bob", 10).await?;

    alice.click("#toggle-screen").await?;
    wait_share_over(&bob, "bob").await?;
    ensure!(
        screen(&alice).await?["sharing"] == false,
        "alice still shares after the second click"
    );

    // Now the answering side's turn, through the page hook.
    let started = bob
        .eval("return await window.webcall.screen.start();")
        .await?;
    ensure!(
        started == true,
        "bob could not share: {}",
        screen(&bob).await?
    );
    wait_screen_shown(&alice, "alice", 10).await?;
    // The browser's own "stop sharing" ends the capture: the share stops.
    let ended = bob
        .eval("return window.webcall.screen.endCapture();")
        .await?;
    ensure!(ended == true, "bob had no capture to end");
    bob.wait_until(
        "!window.webcall.screen.state().sharing",
        STATE,
        "bob's page to notice the capture ended",
    )
    .await?;
    wait_share_over(&alice, "alice").await?;

    // Sharing needed no new offer or answer (no new ICE gathering).
    ensure!(
        (negotiations(&alice).await?, negotiations(&bob).await?) == negotiated,
        "sharing renegotiated"
    );
    for b in [alice, bob] {
        b.close().await?;
    }
    Ok(())
}
