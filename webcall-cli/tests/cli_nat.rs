//! Calls between two homes, as on the internet: the server (with its
//! built-in TURN) on a "public" network, each peer in its own network
//! namespace behind its own router: one a symmetric NAT, the other a NAT
//! that lets no UDP out. Without TURN no call connects; with the built-in
//! TURN, browser to browser and `webcall join` to browser connect, the
//! UDP-blocked side relaying over TCP.
//!
//! Needs root, iproute2, nftables and socat (`.ci/run` installs them); the
//! addresses are documentation ranges that exist only in the namespaces.

mod cli_common;

use std::time::{Duration, Instant};

use cli_common::{finish, join_synthetic_args, scratch, stats};
use serde_json::Value;
use webcall_testkit::nat::{LabServer, PUBLIC_IP, SERVER_PORT};
use webcall_testkit::{Browser, BrowserOptions, Nat, NatLab, status_is};

/// Two browsers, or a browser and a native peer, fill two cores: one lab
/// at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(60);

/// The built-in TURN on the public address. Both relayed addresses are in
/// 203.0.113.0/24, which the relay refuses as a documentation range unless
/// allowed: here that range is "the internet".
fn turn_args() -> Vec<String> {
    vec![
        "--turn".into(),
        "--turn-listen".into(),
        format!("{PUBLIC_IP}:3478"),
        "--turn-public-ip".into(),
        PUBLIC_IP.to_string(),
        "--turn-allow-peer".into(),
        "203.0.113.0/24".into(),
    ]
}

async fn start(lab: &NatLab, args: &[String]) -> LabServer {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.start_server(&args).await.unwrap()
}

async fn browser_in(home: &webcall_testkit::nat::Home) -> Browser {
    Browser::launch_with(BrowserOptions {
        netns: Some(home.netns.clone()),
        // The page is served over plain HTTP from a non-local address:
        // let it have the (fake) camera as an HTTPS page would.
        extra_args: vec![format!(
            "--unsafely-treat-insecure-origin-as-secure=http://{PUBLIC_IP}:{SERVER_PORT}"
        )],
        ..BrowserOptions::default()
    })
    .await
    .unwrap()
}

async fn page_stats(browser: &Browser) -> Value {
    browser.stats().await.unwrap_or(Value::Null)
}

/// A browser in each home: the first waits in a new room, then the
/// second opens its link.
async fn two_homes_in_a_room(lab: &NatLab, server: &LabServer) -> (Browser, Browser) {
    let room = server.create_room().await.unwrap();
    let (a, b) = (
        browser_in(&lab.homes()[0]).await,
        browser_in(&lab.homes()[1]).await,
    );
    a.join_room(&room.url).await.unwrap();
    a.wait_until(&status_is("waiting"), WAIT, "the first home waiting")
        .await
        .unwrap();
    b.join_room(&room.url).await.unwrap();
    (a, b)
}

const DECODING: &str = "(async () => { const s = await window.webcall.stats(); \
    return s.connectionState === 'connected' && s.videoFramesDecoded > 20 \
    && s.audioPacketsReceived > 50; })()";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_turn_two_homes_never_connect() {
    let _heavy = HEAVY.lock().await;
    let lab = NatLab::new(&[Nat::Symmetric, Nat::UdpBlocked]).unwrap();
    // STUN only (the built-in server answers it): each side learns its
    // public address, which is no use behind these NATs.
    let mut args = turn_args();
    args.extend(["--turn-transports".into(), "stun".into()]);
    let server = start(&lab, &args).await;
    let (a, b) = two_homes_in_a_room(&lab, &server).await;
    // Both are in the room and negotiating...
    for page in [&a, &b] {
        page.wait_until(
            "['connecting', 'failed'].includes(window.webcall.state().connectionState)",
            WAIT,
            "both in the room, negotiating",
        )
        .await
        .unwrap();
    }
    // ...and for 20 s (past ICE's own checks on this network) no media
    // path is found.
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        for page in [&a, &b] {
            let s = page_stats(page).await;
            assert_ne!(
                s["connectionState"],
                "connected",
                "connected without TURN: {s}\n{}",
                page.diagnostics().await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_turn_connects_two_browsers_between_homes() {
    let _heavy = HEAVY.lock().await;
    let lab = NatLab::new(&[Nat::Symmetric, Nat::UdpBlocked]).unwrap();
    let server = start(&lab, &turn_args()).await;
    let (a, b) = two_homes_in_a_room(&lab, &server).await;
    for page in [&a, &b] {
        if let Err(e) = page
            .wait_until(&format!("await {DECODING}"), WAIT, "media both ways")
            .await
        {
            panic!("{e:#}\nserver log:\n{}", server.log());
        }
    }
    // The UDP-blocked home reaches its relay over TCP; the symmetric-NAT
    // home reaches the server over UDP (relayed or towards the other's
    // relay).
    let (sa, sb) = (page_stats(&a).await, page_stats(&b).await);
    let (pa, pb) = (&sa["selectedPair"], &sb["selectedPair"]);
    assert_eq!(pb["localType"], "relay", "UDP-blocked side: {sb}");
    assert_eq!(pb["relayProtocol"], "tcp", "UDP-blocked side: {sb}");
    assert!(
        pa["localType"] == "relay" || pa["remoteType"] == "relay",
        "symmetric-NAT side uses no relay: {sa}"
    );
    assert_eq!(pa["protocol"], "udp", "symmetric-NAT side: {sa}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_turn_connects_native_peer_and_browser_between_homes() {
    let _heavy = HEAVY.lock().await;
    let lab = NatLab::new(&[Nat::Symmetric, Nat::UdpBlocked]).unwrap();
    let server = start(&lab, &turn_args()).await;
    let room = server.create_room().await.unwrap();
    let dir = scratch("nat-native");
    let stats_path = dir.join("native.json");

    let b = browser_in(&lab.homes()[1]).await;
    b.join_room(&room.url).await.unwrap();
    b.wait_until(&status_is("waiting"), WAIT, "the browser home waiting")
        .await
        .unwrap();

    // `webcall join` in the symmetric-NAT home, gathering on its own
    // address.
    let home = &lab.homes()[0];
    let addr = home.addr.to_string();
    let mut native = lab.command(&home.netns, env!("CARGO_BIN_EXE_webcall"));
    native
        .args(join_synthetic_args(
            &room.url,
            &addr,
            "40",
            &stats_path,
            &[],
        ))
        .env("RUST_LOG", "warn")
        .env_remove("WEBCALL_SERVER")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = native
        .spawn()
        .expect("webcall starts in the home namespace");

    if let Err(e) = b
        .wait_until(
            &format!("await {DECODING}"),
            WAIT,
            "native media in the browser",
        )
        .await
    {
        panic!("{e:#}\nserver log:\n{}", server.log());
    }
    // The native side's figures are read when it ends: give the browser's
    // video three seconds on the wire before hanging up, so the native
    // decoder has had far more than the 20 pictures asked of it below.
    b.wait_until(
        "await (async () => (await window.webcall.stats()).videoFramesEncoded > 90)()",
        WAIT,
        "the browser sending video",
    )
    .await
    .unwrap();
    let sb = page_stats(&b).await;
    assert_eq!(sb["selectedPair"]["localType"], "relay", "{sb}");
    assert_eq!(sb["selectedPair"]["relayProtocol"], "tcp", "{sb}");

    b.close().await.unwrap();
    let run = finish(child, Duration::from_secs(90));
    let s = stats(&stats_path);
    assert!(
        s["received"]["video_frames_decoded"].as_u64().unwrap_or(0) > 20,
        "the native side decoded no video: {s}\n{run:#?}"
    );
    assert!(
        s["received"]["audio_packets"].as_u64().unwrap_or(0) > 50,
        "the native side received no audio: {s}\n{run:#?}"
    );
    let pair = &s["selected_pair"];
    assert!(
        pair["local_type"] == "relay" || pair["remote_type"] == "relay",
        "the native side's call went through no relay: {pair}"
    );
}
