//! The call quality in the browser, end to end: two headless Chromiums on
//! loopback grade their call "good", show the details (codec, resolution,
//! round trip, direct path) when the indicator is clicked, and show the
//! summary (duration, path, average quality) after a hang-up and when the
//! other side has left; a relay-only call through the built-in TURN server
//! says "relayed" (on a Russian page); a call that loses a quarter of its
//! UDP packets (an nftables rule in the loopback-only namespace) turns
//! "bad", and good again once the loss stops.
//!
//! Run on loopback only:
//! `cargo test -p webcall-server --test browser_quality --no-run`, then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline -p webcall-server --test browser_quality'`.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use tokio::sync::Mutex;
use webcall_core::protocol::IceTransportPolicy;
use webcall_testkit::{
    Browser, BrowserOptions, TestServer, UdpLoss, join_in_turn, loopback_only_namespace, status_is,
};

/// Serializes the tests of this file: each runs two browsers, and one
/// drops packets in the namespace.
static HEAVY: Mutex<()> = Mutex::const_new(());

/// Bound for ordinary page states.
const STATE: Duration = Duration::from_secs(30);
/// Bound for media to flow and a grade to settle (two browsers on 2 cores).
const MEDIA: Duration = Duration::from_secs(90);

/// Two pages in one call, both decoding the other's media.
async fn call(server: &TestServer) -> Result<(Browser, Browser)> {
    call_with(server, BrowserOptions::default()).await
}

/// [`call`] with Alice's browser started with `alice_options`.
async fn call_with(
    server: &TestServer,
    alice_options: BrowserOptions,
) -> Result<(Browser, Browser)> {
    let room = server.create_room().await?;
    let alice = Browser::launch_with(alice_options).await?;
    let bob = Browser::launch().await?;
    join_in_turn((&alice, &room.url), (&bob, &room.url), MEDIA).await?;
    Ok((alice, bob))
}

async fn quality(page: &Browser) -> Result<Value> {
    page.eval("return window.webcall.quality();").await
}

async fn summary(page: &Browser) -> Result<Value> {
    page.eval("return window.webcall.summary();").await
}

/// The text of the element with this id, and whether it is shown.
async fn shown_text(page: &Browser, id: &str) -> Result<(bool, String)> {
    let v = page
        .eval(&format!(
            "const el = document.getElementById('{id}'); return [!!el && !el.hidden, el ? el.textContent : ''];"
        ))
        .await?;
    Ok((
        v[0].as_bool().unwrap_or(false),
        v[1].as_str().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_call_is_good_shows_its_details_and_ends_with_a_summary() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let (alice, bob) = call(&server).await?;

    alice
        .wait_until(
            "window.webcall.quality().grade === 'good'",
            MEDIA,
            "alice's call graded good",
        )
        .await?;
    let (visible, label) = shown_text(&alice, "quality-text").await?;
    assert!(visible && label == "Good", "indicator: {visible} {label:?}");
    let aria = alice
        .eval("return document.getElementById('quality').getAttribute('aria-label');")
        .await?;
    assert!(aria.as_str().unwrap_or_default().contains("Good"), "{aria}");

    // The details open on a click and name the figures.
    assert!(!shown_text(&alice, "quality-details").await?.0);
    alice.click("#quality").await?;
    alice
        .wait_until(
            "!document.getElementById('quality-details').hidden \
             && document.getElementById('quality-codec').textContent !== '–' \
             && document.getElementById('quality-rtt').textContent.endsWith(' ms')",
            STATE,
            "the details panel filled in",
        )
        .await?;
    let q = quality(&alice).await?;
    println!("alice's quality: {q}");
    let d = &q["details"];
    assert!(
        ["H264", "VP8"].contains(&d["codec"].as_str().unwrap_or_default()),
        "{q}"
    );
    assert!(
        d["width"].as_u64().unwrap_or(0) > 0 && d["height"].as_u64().unwrap_or(0) > 0,
        "{q}"
    );
    assert!(d["rttMs"].as_f64().is_some(), "{q}");
    assert!(d["bitrateIn"].as_f64().unwrap_or(0.0) > 0.0, "{q}");
    assert_eq!(d["path"], "direct", "{q}");
    assert_eq!(q["open"], true, "{q}");
    let (_, path) = shown_text(&alice, "quality-path").await?;
    assert_eq!(path, "direct");
    let (_, resolution) = shown_text(&alice, "quality-resolution").await?;
    assert!(resolution.contains('×'), "{resolution:?}");

    // Alice hangs up: her page shows the summary; Bob's, once he sees her go.
    alice.click("#hangup").await?;
    alice
        .wait_until(
            "!document.getElementById('home-summary').hidden",
            STATE,
            "alice's summary after hanging up",
        )
        .await?;
    let (_, text) = shown_text(&alice, "home-summary").await?;
    let s = summary(&alice).await?;
    println!("alice's summary: {s} / {text:?}");
    assert!(s["durationMs"].as_f64().unwrap_or(0.0) >= 1000.0, "{s}");
    assert_eq!(s["path"], "direct", "{s}");
    assert!(
        ["good", "poor", "bad"].contains(&s["average"].as_str().unwrap_or_default()),
        "{s}"
    );
    assert!(
        text.contains("Call time: ")
            && text.contains("Connection: direct")
            && text.contains("% of the time"),
        "{text:?}"
    );

    bob.wait_until(&status_is("peer_left"), STATE, "bob sees alice leave")
        .await?;
    bob.wait_until(
        "!document.getElementById('room-summary').hidden",
        STATE,
        "bob's summary after alice left",
    )
    .await?;
    let (_, text) = shown_text(&bob, "room-summary").await?;
    assert!(
        text.contains("Call time: ") && text.contains("Connection: direct"),
        "{text:?}"
    );
    let (indicator, _) = shown_text(&bob, "quality").await?;
    assert!(!indicator, "no grade without a call");
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_call_says_relayed_in_russian_too() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start_with(webcall_server::Config {
        ice_transport_policy: IceTransportPolicy::Relay,
        turn: Some(TestServer::turn_config(true)),
        ..TestServer::test_config()
    })
    .await?;
    let russian = BrowserOptions {
        lang: Some("ru".into()),
        ..BrowserOptions::default()
    };
    let (alice, bob) = call_with(&server, russian).await?;
    alice
        .wait_until(
            "(() => { const q = window.webcall.quality(); \
             return !!q.grade && !!q.details && q.details.path === 'relayed'; })()",
            MEDIA,
            "alice graded on a relayed path",
        )
        .await?;
    alice.click("#quality").await?;
    alice
        .wait_until(
            "document.getElementById('quality-path').textContent === 'через ретранслятор (TURN)'",
            STATE,
            "the details say relayed",
        )
        .await?;
    alice.click("#hangup").await?;
    alice
        .wait_until(
            "!document.getElementById('home-summary').hidden",
            STATE,
            "alice's summary",
        )
        .await?;
    let (_, text) = shown_text(&alice, "home-summary").await?;
    assert!(
        text.contains("Длительность: ")
            && text.contains("Соединение: через ретранслятор (TURN)")
            && text.contains("Качество: "),
        "{text:?}"
    );
    assert_eq!(summary(&alice).await?["path"], "relayed");
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_losing_a_quarter_of_its_packets_turns_bad() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    if !loopback_only_namespace() {
        // A filter in the machine's own namespace would hit everything else
        // on it: this case runs only in the loopback-only namespace.
        eprintln!("skipped: not in a loopback-only network namespace (see the module docs)");
        return Ok(());
    }
    let server = TestServer::start().await?;
    let (alice, bob) = call(&server).await?;
    alice
        .wait_until(
            "window.webcall.quality().grade === 'good'",
            MEDIA,
            "alice's call graded good before the loss",
        )
        .await?;
    let loss = UdpLoss::start(25)?;
    alice
        .wait_until(
            "window.webcall.quality().grade === 'bad'",
            MEDIA,
            "alice's call graded bad with a quarter of the packets lost",
        )
        .await?;
    let q = quality(&alice).await?;
    println!("alice's quality with the loss: {q}");
    // What made it bad varies (loss past 10 %, or the picture freezing
    // while lost packets are asked for again); the loss is always there.
    assert!(q["details"]["loss"].as_f64().unwrap_or(0.0) > 0.03, "{q}");
    let label = alice
        .eval("return document.getElementById('quality').dataset.grade;")
        .await?;
    assert_eq!(label, "bad");
    // The loss ends: the grade comes back, after the hysteresis.
    drop(loss);
    alice
        .wait_until(
            "window.webcall.quality().grade === 'good'",
            MEDIA,
            "alice's call good again once nothing is lost",
        )
        .await?;
    alice.close().await?;
    bob.close().await?;
    Ok(())
}
