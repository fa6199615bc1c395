//! `webcall join` and the browser in a relay-only call through coturn, the
//! TURN server most deployments run: the server hands out coturn with TURN
//! REST credentials and `iceTransportPolicy: relay`; both sides connect
//! through the relay (their selected candidate pairs say so), the native
//! side offers no host candidate, and media is decoded both ways.
//!
//! Needs coturn (`apt-get install coturn`); without it the test says so and
//! passes.

mod cli_common;

use std::time::Duration;

use cli_common::{finish, join_synthetic, scratch, spawn, stats, wav_rms};
use webcall_core::protocol::IceTransportPolicy;
use webcall_testkit::{Browser, Coturn, TestServer, status_is};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_browser_connect_through_coturn_with_relay_policy() {
    if Coturn::binary().is_none() {
        eprintln!("skipped: coturn's turnserver is not installed (apt-get install coturn)");
        return;
    }
    let coturn = Coturn::start().unwrap();
    let mut config = TestServer::test_config();
    config.ice_servers = vec![coturn.ice_server("udp", "cli-turn", Duration::from_secs(3600))];
    config.ice_transport_policy = IceTransportPolicy::Relay;
    let server = TestServer::start_with(config).await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("turn-call");
    let (stats_path, wav) = (dir.join("native.json"), dir.join("native.wav"));

    let browser = Browser::launch().await.unwrap();
    browser.goto(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let child = spawn(join_synthetic(
        &room.url,
        "25",
        &stats_path,
        &["--record-audio", wav.to_str().unwrap()],
    ));

    // Enough pictures that the native side, which started receiving at the
    // same time, has decoded plenty too.
    let decoding = "(async () => { const s = await window.webcall.stats(); \
        return s.videoFramesDecoded > 60 && s.audioPacketsReceived > 100 \
        && s.selectedPair !== null; })()";
    let waited = browser
        .wait_until(
            &format!("await {decoding}"),
            WAIT,
            "the browser decoding native media through the relay",
        )
        .await;
    if let Err(e) = waited {
        panic!(
            "{e:#}\n{}\ncoturn:\n{}",
            browser.diagnostics().await,
            coturn.log()
        );
    }
    let s = browser.stats().await.unwrap();
    let pair = &s["selectedPair"];
    assert_eq!(pair["localType"], "relay", "the browser's pair: {s:#}");
    assert!(
        matches!(pair["remoteType"].as_str(), Some("relay" | "prflx")),
        "the browser's pair: {s:#}"
    );
    // The native side offered relay candidates only.
    let remote_types = s["remoteCandidateTypes"].as_array().unwrap();
    assert!(remote_types.iter().any(|t| t == "relay"), "{s:#}");
    assert!(!remote_types.iter().any(|t| t == "host"), "{s:#}");

    let run = tokio::task::spawn_blocking(move || finish(child, WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    assert!(
        run.stdout.contains("through a TURN relay"),
        "{}",
        run.stdout
    );
    let s = stats(&stats_path);
    let pair = &s["selected_pair"];
    assert_eq!(pair["local_type"], "relay", "{s:#}");
    assert_eq!(pair["protocol"], "udp", "{s:#}");
    let r = &s["received"];
    assert!(r["video_frames_decoded"].as_u64().unwrap() >= 30, "{s:#}");
    assert!(r["audio_frames_decoded"].as_u64().unwrap() >= 50, "{s:#}");
    let (rms, n) = wav_rms(&wav);
    assert!(
        n > 0 && rms > 0.001,
        "the browser's audio recorded as silence (rms {rms}, {n} samples)"
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
