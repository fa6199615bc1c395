//! Seats across reloads and closed tabs, with the real server on loopback
//! and two headless Chromiums in a real call (PROTOCOL.md, "Seats"):
//!
//! - A reload after the server noticed the old socket close takes the same
//!   seat back; the other page never shows the person as gone and its
//!   media keeps being decoded.
//! - A closed tab is shown as gone within 5 s.
//! - A page whose signaling goes through a proxy that restarts mid-call
//!   takes its seat back and keeps its peer connection; the other page
//!   shows "reconnecting" at most, and media never stops.
//! - A call whose two pages sit on two instances sharing Redis survives a
//!   rolling restart of each instance (seats taken back, connections kept,
//!   media never stops, an ICE restart still goes through afterwards) and
//!   Redis going away and coming back (media goes on, new rooms get 503
//!   meanwhile).
//!
//! Needs chromium and chromium-driver. Run on loopback only with
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline -p webcall-server --test browser_seats'`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tokio::sync::Mutex;
use webcall_testkit::{Browser, MEDIA_FLOWING, TcpProxy, TestServer, join_in_turn, status_is};

/// Serializes the tests of this file: each runs two browsers.
static HEAVY: Mutex<()> = Mutex::const_new(());

/// Bound for ordinary page states.
const STATE: Duration = Duration::from_secs(30);
/// Bound for media to flow (two browsers encode and decode on 2 cores).
const MEDIA: Duration = Duration::from_secs(60);

async fn frames_decoded(browser: &Browser) -> Result<f64> {
    let stats = browser.stats().await?;
    stats["videoFramesDecoded"]
        .as_f64()
        .context("videoFramesDecoded is not a number")
}

/// Waits until the video frames decoded by `browser` grow past `before`.
async fn wait_frames_past(browser: &Browser, before: f64, who: &str) -> Result<()> {
    browser
        .wait_until(
            &format!("(await window.webcall.stats()).videoFramesDecoded > {before}"),
            MEDIA,
            &format!("{who}'s decoded frames to grow past {before}"),
        )
        .await
}

/// The page's own log lines (`window.webcall.log`).
async fn page_log(browser: &Browser) -> Result<Vec<String>> {
    let lines = browser.eval("return window.webcall.log.slice();").await?;
    Ok(lines
        .as_array()
        .context("the log is an array")?
        .iter()
        .filter_map(|l| l.as_str().map(str::to_owned))
        .collect())
}

/// The resume secret a room page keeps in sessionStorage: one per seat.
async fn resume_secret(browser: &Browser, token: &str) -> Result<String> {
    let v = browser
        .eval(&format!(
            "return sessionStorage.getItem('webcall.resume.{token}');"
        ))
        .await?;
    v.as_str()
        .map(str::to_owned)
        .context("the page keeps a resume secret")
}

/// Two browsers in a call with media flowing both ways.
async fn call(server: &TestServer) -> Result<(Browser, Browser, String)> {
    let room = server.create_room().await?;
    call_via(&room.url, &room.url, room.token.as_str()).await
}

/// The same, alice opening `alice_url` and bob `bob_url` for one room.
async fn call_via(
    alice_url: &str,
    bob_url: &str,
    token: &str,
) -> Result<(Browser, Browser, String)> {
    let alice = Browser::launch().await?;
    let bob = Browser::launch().await?;
    join_in_turn((&alice, alice_url), (&bob, bob_url), MEDIA).await?;
    Ok((alice, bob, token.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_after_the_close_was_noticed_gets_the_same_seat_and_never_looks_like_leaving()
-> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let (alice, bob, token) = call(&server).await?;
    let bob_seat = resume_secret(&bob, &token).await?;
    let bob_id = alice.eval("return window.webcall.state().peer;").await?;
    ensure!(bob_id.is_string(), "alice knows bob's id: {bob_id}");

    bob.reload().await?;
    // Watch alice while bob comes back: never "left", never "waiting".
    let start = Instant::now();
    let mut seen = Vec::new();
    loop {
        let status = alice.status().await;
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        ensure!(
            status != "peer_left" && status != "waiting",
            "alice saw bob leave during a reload: {seen:?}\n{}",
            alice.diagnostics().await
        );
        if bob.status().await == "connected" && status == "connected" {
            break;
        }
        ensure!(
            start.elapsed() < MEDIA,
            "the call did not come back after the reload: alice went through {seen:?}\n{}\n{}",
            alice.diagnostics().await,
            bob.diagnostics().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("alice's statuses through bob's reload: {seen:?}");

    // The server noticed the old socket close before the page came back
    // (alice heard `peer_reconnecting`), and the page still got its seat.
    let log = page_log(&alice).await?;
    ensure!(
        log.iter().any(|l| l.contains("is reconnecting")),
        "alice heard that bob was reconnecting: {log:#?}"
    );
    ensure!(
        !log.iter().any(|l| l.contains("status peer_left")),
        "alice never showed bob as gone: {log:#?}"
    );
    assert_eq!(
        resume_secret(&bob, &token).await?,
        bob_seat,
        "the same seat"
    );
    let bob_again = alice.eval("return window.webcall.state().peer;").await?;
    assert_eq!(bob_again, bob_id, "the same participant");

    // Media flows again both ways, and keeps flowing.
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        b.wait_until(MEDIA_FLOWING, MEDIA, &format!("{who} decoding again"))
            .await?;
        let now = frames_decoded(b).await?;
        wait_frames_past(b, now, who).await?;
    }
    let info = server
        .request("GET", &format!("/api/rooms/{token}"), None)
        .await?;
    let info: Value = serde_json::from_str(&info.text())?;
    assert_eq!(info["participants"], Value::from(2));
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_tab_is_seen_as_gone_within_five_seconds() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let (alice, bob, token) = call(&server).await?;

    let closed = Instant::now();
    bob.client()
        .close_window()
        .await
        .context("closing bob's tab")?;
    alice
        .wait_until(&status_is("peer_left"), STATE, "alice to see bob gone")
        .await?;
    let took = closed.elapsed();
    println!("alice saw bob's closed tab as gone after {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let log = page_log(&alice).await?;
    assert!(
        log.iter().any(|l| l.contains("is reconnecting")),
        "the seat was held briefly first: {log:#?}"
    );
    let info = server
        .request("GET", &format!("/api/rooms/{token}"), None)
        .await?;
    let info: Value = serde_json::from_str(&info.text())?;
    assert_eq!(info["participants"], Value::from(1), "the seat is free");
    alice.close().await?;
    drop(bob);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_in_front_of_one_page_does_not_stop_the_call() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;
    let proxy = TcpProxy::launch(server.addr()).await?;
    let proxied = format!("http://{}/r/{}", proxy.addr(), room.token);
    let (alice, bob, _) = call_via(&proxied, &room.url, room.token.as_str()).await?;

    // Alice's proxy goes away: the server notices her socket close.
    let accepted = proxy.accepted();
    proxy.stop();
    let at_stop = frames_decoded(&bob).await?;
    bob.wait_until(
        &status_is("peer_reconnecting"),
        STATE,
        "bob to see alice reconnecting",
    )
    .await?;
    // Media goes on meanwhile, both ways.
    wait_frames_past(&bob, at_stop + 30.0, "bob while alice's proxy is down").await?;
    let alice_now = frames_decoded(&alice).await?;
    wait_frames_past(&alice, alice_now + 30.0, "alice while her proxy is down").await?;

    proxy.start();
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        b.wait_until(&status_is("connected"), STATE, &format!("{who} connected"))
            .await?;
    }
    ensure!(
        proxy.accepted() > accepted,
        "alice came back through the proxy"
    );
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        let now = frames_decoded(b).await?;
        wait_frames_past(b, now + 30.0, who).await?;
    }
    let (alice_log, bob_log) = (page_log(&alice).await?, page_log(&bob).await?);
    ensure!(
        alice_log
            .iter()
            .any(|l| l.contains("seat resumed; keeping the connection")),
        "alice took her seat back and kept her connection: {alice_log:#?}"
    );
    ensure!(
        !bob_log
            .iter()
            .any(|l| l.contains("status peer_left") || l.contains("replacing ours")),
        "bob never saw alice leave nor replaced the connection: {bob_log:#?}"
    );
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_lost_for_longer_than_the_seat_grace_ends_in_left() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let mut config = TestServer::test_config();
    config.room.seat_grace = Duration::from_secs(2);
    let server = TestServer::start_with(config).await?;
    let room = server.create_room().await?;
    let proxy = TcpProxy::launch(server.addr()).await?;
    let proxied = format!("http://{}/r/{}", proxy.addr(), room.token);
    let (alice, bob, token) = call_via(&proxied, &room.url, room.token.as_str()).await?;
    let alice_seat = resume_secret(&alice, &token).await?;

    // Alice's network is gone for good (for longer than the grace).
    proxy.stop();
    let stopped = Instant::now();
    bob.wait_until(&status_is("peer_left"), STATE, "bob to see alice gone")
        .await?;
    let took = stopped.elapsed();
    println!("bob saw alice gone {took:?} after her network went");
    assert!(
        took >= Duration::from_millis(1500),
        "the seat was held for the grace first ({took:?})"
    );
    let log = page_log(&bob).await?;
    assert!(
        log.iter().any(|l| l.contains("is reconnecting")),
        "{log:#?}"
    );
    alice
        .wait_until(&status_is("reconnecting"), STATE, "alice reconnecting")
        .await?;

    // Her network comes back: the seat is gone, so she joins afresh, and
    // the call is set up again.
    proxy.start();
    for (who, b) in [("alice", &alice), ("bob", &bob)] {
        b.wait_until(&status_is("connected"), MEDIA, &format!("{who} connected"))
            .await?;
        b.wait_until(MEDIA_FLOWING, MEDIA, &format!("{who} decoding again"))
            .await?;
    }
    assert_ne!(
        resume_secret(&alice, &token).await?,
        alice_seat,
        "a new seat"
    );
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

/// Restarts `server` on its own address with `config`, as a deploy of a
/// new version does.
async fn restart(server: TestServer, config: webcall_server::Config) -> Result<TestServer> {
    let addr = server.addr();
    server.shutdown().await?;
    let server = TestServer::start_at(addr, config).await?;
    webcall_testkit::wait_until("the restarted instance is ready", STATE, || async {
        Ok(server.request("GET", "/readyz", None).await?.status == 200)
    })
    .await?;
    Ok(server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_across_two_instances_survives_restarts_of_each_and_of_redis() -> Result<()> {
    let _turn = HEAVY.lock().await;
    // Durable, as a production Redis: its restart below keeps the rooms.
    let redis = webcall_testkit::RedisServer::start_durable()?;
    let config = webcall_server::Config {
        redis_url: Some(redis.url()),
        redis_prefix: format!("t{:016x}:", getrandom::u64()?),
        ..TestServer::test_config()
    };
    let a = TestServer::start_with(config.clone()).await?;
    let b = TestServer::start_with(config.clone()).await?;
    let room = a.create_room().await?;
    let token = room.token.as_str();
    // Alice's page and signaling on instance a, Bob's on instance b.
    let (alice, bob, _) = call_via(&a.room_url(token), &b.room_url(token), token).await?;

    // A rolling deploy: a, then b, each stopped and started again on its
    // address, while the call goes on.
    let a = restart(a, config.clone()).await?;
    for (who, browser) in [("alice", &alice), ("bob", &bob)] {
        let now = frames_decoded(browser).await?;
        wait_frames_past(browser, now + 30.0, &format!("{who} after a's restart")).await?;
    }
    alice
        .wait_until(&status_is("connected"), STATE, "alice back on instance a")
        .await?;
    let b = restart(b, config).await?;
    bob.wait_until(&status_is("connected"), STATE, "bob back on instance b")
        .await?;
    for (who, browser) in [("alice", &alice), ("bob", &bob)] {
        let now = frames_decoded(browser).await?;
        wait_frames_past(browser, now + 30.0, &format!("{who} after b's restart")).await?;
    }

    // Both can still renegotiate: an ICE restart from Alice's side goes
    // through the restarted instances and both sides take it.
    let ufrags = "return window.webcall.state().ufrags;";
    let before = (alice.eval(ufrags).await?, bob.eval(ufrags).await?);
    ensure!(
        alice.eval("return window.webcall.restartIce();").await? == Value::Bool(true),
        "alice restarts ICE"
    );
    for (who, browser, was) in [("alice", &alice, &before.0), ("bob", &bob, &before.1)] {
        browser
            .wait_until(
                &format!(
                    "(() => {{ const s = window.webcall.state(); \
                       return s.ufrags.local && s.ufrags.local !== {} \
                         && s.ufrags.remote && s.ufrags.remote !== {} \
                         && s.signalingState === 'stable' && s.connectionState === 'connected'; }})()",
                    was["local"], was["remote"]
                ),
                MEDIA,
                &format!("{who} connected again with new ICE credentials"),
            )
            .await?;
        let now = frames_decoded(browser).await?;
        wait_frames_past(browser, now + 30.0, &format!("{who} after the ICE restart")).await?;
    }

    // Redis goes away mid-call: the call goes on, new rooms are refused
    // clearly; Redis comes back: rooms can be made again.
    let mut redis = redis;
    redis.stop();
    for (who, browser) in [("alice", &alice), ("bob", &bob)] {
        let now = frames_decoded(browser).await?;
        wait_frames_past(browser, now + 30.0, &format!("{who} while Redis is away")).await?;
    }
    // Bob signals while Redis is away (an ICE restart's offer): the
    // instance cannot feed the room, answers `unavailable`, and his page
    // reconnects; the offer is lost and made again later.
    ensure!(
        bob.eval("return window.webcall.restartIce();").await? == Value::Bool(true),
        "bob restarts ICE while Redis is away"
    );
    let refused = a.request("POST", "/api/rooms", None).await?;
    ensure!(
        refused.status == 503 && refused.header("retry-after").is_some(),
        "creating a room while Redis is away: {} {}",
        refused.status,
        refused.text()
    );
    redis.start_again()?;
    webcall_testkit::wait_until("rooms can be made again", STATE, || async {
        Ok(b.request("POST", "/api/rooms", None).await?.status == 201)
    })
    .await?;
    // Whoever lost its signaling meanwhile (a message it sent while Redis
    // was away is answered `unavailable`, and the page reconnects) is back
    // in its seat: the rooms were kept by Redis's append-only file.
    for (who, browser) in [("alice", &alice), ("bob", &bob)] {
        browser
            .wait_until(
                &status_is("connected"),
                STATE,
                &format!("{who} in the call after Redis came back"),
            )
            .await?;
        let now = frames_decoded(browser).await?;
        wait_frames_past(browser, now + 30.0, &format!("{who} after Redis came back")).await?;
    }

    let (alice_log, bob_log) = (page_log(&alice).await?, page_log(&bob).await?);
    for (who, log) in [("alice", &alice_log), ("bob", &bob_log)] {
        ensure!(
            log.iter()
                .any(|l| l.contains("seat resumed; keeping the connection")),
            "{who} took the seat back and kept the connection: {log:#?}"
        );
        ensure!(
            !log.iter()
                .any(|l| l.contains("status peer_left") || l.contains("replacing ours")),
            "{who} never saw the other leave nor replaced the connection: {log:#?}"
        );
    }
    alice.close().await?;
    bob.close().await?;
    drop((a, b));
    Ok(())
}
