//! `webcall join` and the browser in a relay-only call through coturn, the
//! TURN server most deployments run, and through the server's built-in
//! TURN: the server hands out the relay with TURN REST credentials and
//! `iceTransportPolicy: relay`; both sides connect
//! through the relay (their selected candidate pairs say so), the native
//! side offers no host candidate, and media is decoded both ways. When
//! coturn restarts mid-call (every allocation gone), the call comes back
//! through fresh allocations.
//!
//! Needs coturn (`apt-get install coturn`); without it each test says so
//! and passes.

mod cli_common;

use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use cli_common::{finish, join_synthetic, scratch, spawn, stats, wav_rms};
use webcall_core::protocol::IceTransportPolicy;
use webcall_server::turn::TurnTransport;
use webcall_testkit::{Browser, Coturn, TestServer, status_is, wait_until};

/// A browser and a native peer fill two cores: one call at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(60);

/// Which TURN server relays the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// coturn, sharing the server's TURN REST secret.
    Coturn,
    /// webcall-server's own (`--turn`), over UDP.
    BuiltIn,
}

/// A relay-only call: the browser waits in the room, then `webcall join`
/// (test pattern and tone, `secs` long) joins it, or the other way round.
struct RelayCall {
    coturn: Option<Coturn>,
    _server: TestServer,
    browser: Browser,
    native: Child,
    stats: PathBuf,
    wav: PathBuf,
    dir: PathBuf,
}

impl RelayCall {
    /// `None` (and a note) when coturn is not installed. With
    /// `native_first`, `webcall join` waits in the room and the browser
    /// joins it (the browser is then the impolite side, which restarts
    /// ICE); otherwise the other way round.
    async fn start(name: &str, secs: &str, native_first: bool, relay: Relay) -> Option<Self> {
        let mut config = TestServer::test_config();
        let coturn = match relay {
            Relay::Coturn => {
                if Coturn::binary().is_none() {
                    eprintln!(
                        "skipped: coturn's turnserver is not installed (apt-get install coturn)"
                    );
                    return None;
                }
                let coturn = Coturn::start().unwrap();
                config.ice_servers =
                    vec![coturn.ice_server("udp", name, Duration::from_secs(3600))];
                Some(coturn)
            }
            Relay::BuiltIn => {
                let mut turn = TestServer::turn_config(true);
                turn.transports = Some(vec![TurnTransport::Udp]);
                config.turn = Some(turn);
                None
            }
        };
        config.ice_transport_policy = IceTransportPolicy::Relay;
        let server = TestServer::start_with(config).await.unwrap();
        let room = server.create_room().await.unwrap();
        let dir = scratch(name);
        let (stats, wav) = (dir.join("native.json"), dir.join("native.wav"));
        let browser = Browser::launch().await.unwrap();
        let start_native = || {
            spawn(join_synthetic(
                &room.url,
                secs,
                &stats,
                &["--record-audio", wav.to_str().unwrap()],
            ))
        };
        let native = if native_first {
            let native = start_native();
            wait_participants(&server, room.token.as_str(), 1).await;
            browser.join_room(&room.url).await.unwrap();
            native
        } else {
            browser.join_room(&room.url).await.unwrap();
            browser
                .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
                .await
                .unwrap();
            start_native()
        };
        Some(Self {
            coturn,
            _server: server,
            browser,
            native,
            stats,
            wav,
            dir,
        })
    }

    /// Waits until the browser has decoded `frames` more pictures than
    /// `after` and has a selected candidate pair; returns its stats.
    async fn browser_decoding(&self, after: u64, frames: u64, what: &str) -> serde_json::Value {
        let condition = format!(
            "await (async () => {{ const s = await window.webcall.stats(); \
             return s.videoFramesDecoded > {} && s.audioPacketsReceived > 100 \
             && s.selectedPair !== null && s.connectionState === 'connected'; }})()",
            after + frames
        );
        if let Err(e) = self.browser.wait_until(&condition, WAIT, what).await {
            panic!(
                "{e:#}\n{}\ncoturn:\n{}",
                self.browser.diagnostics().await,
                self.coturn.as_ref().map(Coturn::log).unwrap_or_default()
            );
        }
        self.browser.stats().await.unwrap()
    }

    /// Asserts that the browser's media went through the relay and that the
    /// native side offered relay candidates only.
    fn assert_browser_relayed(s: &serde_json::Value) {
        let pair = &s["selectedPair"];
        assert_eq!(pair["localType"], "relay", "the browser's pair: {s:#}");
        assert!(
            matches!(pair["remoteType"].as_str(), Some("relay" | "prflx")),
            "the browser's pair: {s:#}"
        );
        let remote_types = s["remoteCandidateTypes"].as_array().unwrap();
        assert!(remote_types.iter().any(|t| t == "relay"), "{s:#}");
        assert!(!remote_types.iter().any(|t| t == "host"), "{s:#}");
    }

    /// Waits for `webcall join` to finish its duration; checks that it went
    /// through the relay and decoded the browser's media. Returns its output.
    async fn finish_native(self) -> String {
        let Self {
            coturn: _coturn,
            _server,
            browser,
            native,
            stats: stats_path,
            wav,
            dir,
        } = self;
        let run = tokio::task::spawn_blocking(move || finish(native, WAIT * 2))
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
        run.stdout
    }
}

/// Waits until the room holds `n` participants.
async fn wait_participants(server: &TestServer, token: &str, n: u64) {
    let path = format!("/api/rooms/{token}");
    wait_until(
        &format!("the room holds {n} participants"),
        WAIT,
        || async {
            let room = server.request("GET", &path, None).await?.json()?;
            anyhow::ensure!(room["participants"].as_u64() == Some(n), "the room: {room}");
            Ok(true)
        },
    )
    .await
    .unwrap();
}

/// Restarts coturn once media flows, and waits for it to flow again.
async fn survives_a_coturn_restart(mut call: RelayCall) -> String {
    let s = call
        .browser_decoding(0, 60, "the browser decoding native media through the relay")
        .await;
    RelayCall::assert_browser_relayed(&s);
    // Every allocation is gone: the side that restarts ICE must make both
    // sides gather fresh sockets and allocations rather than keep asking
    // for permissions on the dead ones.
    call.coturn
        .as_mut()
        .expect("a coturn call")
        .restart()
        .unwrap();
    let before = call.browser.stats().await.unwrap()["videoFramesDecoded"]
        .as_u64()
        .unwrap();
    let s = call
        .browser_decoding(
            before,
            60,
            "native media flowing again after coturn restarted",
        )
        .await;
    RelayCall::assert_browser_relayed(&s);
    let stdout = call.finish_native().await;
    assert!(
        stdout.matches("connection: connected").count() >= 2,
        "{stdout}"
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_browser_connect_through_coturn_with_relay_policy() {
    let _heavy = HEAVY.lock().await;
    let Some(call) = RelayCall::start("turn-call", "25", false, Relay::Coturn).await else {
        return;
    };
    // Enough pictures that the native side, which started receiving at the
    // same time, has decoded plenty too.
    let s = call
        .browser_decoding(0, 60, "the browser decoding native media through the relay")
        .await;
    RelayCall::assert_browser_relayed(&s);
    call.finish_native().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_call_comes_back_after_coturn_restarts() {
    let _heavy = HEAVY.lock().await;
    // The native side joins second: it restarts ICE.
    if let Some(call) = RelayCall::start("turn-restart", "50", false, Relay::Coturn).await {
        survives_a_coturn_restart(call).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_call_comes_back_after_coturn_restarts_when_the_browser_restarts_ice() {
    let _heavy = HEAVY.lock().await;
    // The browser joins second: it restarts ICE; the native side answers.
    if let Some(call) = RelayCall::start("turn-restart-answer", "50", true, Relay::Coturn).await {
        survives_a_coturn_restart(call).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_browser_connect_through_the_built_in_turn_with_relay_policy() {
    let _heavy = HEAVY.lock().await;
    let call = RelayCall::start("turn-builtin", "25", false, Relay::BuiltIn)
        .await
        .expect("the built-in TURN needs nothing installed");
    let s = call
        .browser_decoding(0, 60, "the browser decoding native media through the relay")
        .await;
    RelayCall::assert_browser_relayed(&s);
    call.finish_native().await;
}
