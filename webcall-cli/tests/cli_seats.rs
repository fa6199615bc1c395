//! A signaling hiccup never stops a running call's media (PROTOCOL.md,
//! "Seats"): a browser (headless Chromium, straight to the server) and
//! `webcall join` (its signaling through a TCP proxy, as behind a reverse
//! proxy or load balancer) are in a call; the proxy goes away mid-call,
//! closing both sides of every connection, so the server notices, and comes
//! back a few seconds later. The browser shows the other side as
//! reconnecting at most, never as gone, and goes on decoding its video;
//! `webcall join` takes its seat back and does not end. The same when the
//! instance `webcall join` talks to is redeployed (rooms on Redis): it is
//! asked to reconnect, comes back to the new instance, and the call goes on.

mod cli_common;

use std::time::Duration;

use cli_common::{finish, join_synthetic, scratch, spawn, stats};
use webcall_testkit::{Browser, TcpProxy, TestServer, status_is, wait_for};

const WAIT: Duration = Duration::from_secs(45);

async fn frames_decoded(browser: &Browser) -> f64 {
    browser
        .stats()
        .await
        .ok()
        .and_then(|s| s["videoFramesDecoded"].as_f64())
        .unwrap_or(0.0)
}

/// Waits until the browser has decoded 30 more frames than now.
async fn wait_more_frames(browser: &Browser, what: &str) {
    let now = frames_decoded(browser).await;
    browser
        .wait_until(
            &format!("(await window.webcall.stats()).videoFramesDecoded > {now} + 30"),
            WAIT,
            what,
        )
        .await
        .unwrap();
}

/// The page never showed the other side as gone nor replaced its
/// connection.
async fn assert_never_left(browser: &Browser) {
    let log = browser
        .eval("return window.webcall.log.join('\\n');")
        .await
        .unwrap();
    let log = log.as_str().unwrap_or_default();
    assert!(
        !log.contains("status peer_left") && !log.contains("replacing ours"),
        "the browser never saw the other side leave nor replaced the connection:\n{log}"
    );
}

/// The native side runs its full duration and hangs up; its run went well
/// and it came back once after losing the server.
async fn finish_native(browser: &Browser, child: std::process::Child) -> cli_common::Run {
    browser
        .wait_until(
            &status_is("peer_left"),
            Duration::from_secs(60),
            "the native side hanging up at the end of its duration",
        )
        .await
        .unwrap();
    let run = tokio::task::spawn_blocking(move || finish(child, WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    assert!(
        run.stdout
            .contains("lost the server connection; reconnecting"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("call over after"), "{run:#?}");
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_in_front_of_webcall_join_does_not_stop_the_call() {
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let proxy = TcpProxy::launch(server.addr()).await.unwrap();
    let dir = scratch("seats-proxy");
    let stats_path = dir.join("native.json");

    let browser = Browser::launch().await.unwrap();
    browser.join_room(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let proxied = format!("http://{}/r/{}", proxy.addr(), room.token);
    let child = spawn(join_synthetic(&proxied, "40", &stats_path, &[]));
    let decoding = "await (async () => { const s = await window.webcall.stats(); \
        return s.videoFramesDecoded > 30 && s.videoWidth > 0; })()";
    browser
        .wait_until(decoding, WAIT, "the browser decoding the native video")
        .await
        .unwrap();

    // The proxy goes away: the server notices the close, holds the native
    // side's seat and tells the browser it is reconnecting.
    let accepted = proxy.accepted();
    proxy.stop();
    let at_stop = frames_decoded(&browser).await;
    browser
        .wait_until(
            &status_is("peer_reconnecting"),
            WAIT,
            "the browser showing the other side reconnecting",
        )
        .await
        .unwrap();
    // Media goes on meanwhile: the peer connection does not need the server.
    browser
        .wait_until(
            &format!("(await window.webcall.stats()).videoFramesDecoded > {at_stop} + 30"),
            WAIT,
            "the browser decoding while the proxy is down",
        )
        .await
        .unwrap();
    assert_eq!(browser.status().await, "peer_reconnecting");

    // Back after a few seconds: the native side takes its seat back.
    proxy.start();
    wait_for("webcall join comes back", WAIT, || {
        proxy.accepted() > accepted
    })
    .await
    .unwrap();
    browser
        .wait_until(
            &status_is("connected"),
            WAIT,
            "the browser connected, the other side back",
        )
        .await
        .unwrap();
    wait_more_frames(&browser, "the browser decoding after the proxy came back").await;
    assert_never_left(&browser).await;
    let run = finish_native(&browser, child).await;
    assert!(!run.stderr.contains("lost the webcall server"), "{run:#?}");
    let s = stats(&stats_path);
    assert!(
        s["received"]["video_frames_decoded"].as_u64().unwrap() > 100,
        "{s:#}"
    );
    browser.close().await.unwrap();
    drop(proxy);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_the_instance_webcall_join_uses_does_not_stop_the_call() {
    // Two instances on one Redis: the browser on b, `webcall join` on a.
    let redis = webcall_testkit::RedisServer::start().unwrap();
    let config = webcall_server::Config {
        redis_url: Some(redis.url()),
        redis_prefix: format!("t{:016x}:", getrandom::u64().unwrap()),
        ..TestServer::test_config()
    };
    let a = TestServer::start_with(config.clone()).await.unwrap();
    let b = TestServer::start_with(config.clone()).await.unwrap();
    let room = a.create_room().await.unwrap();
    let dir = scratch("seats-restart");
    let stats_path = dir.join("native.json");

    let browser = Browser::launch().await.unwrap();
    browser
        .join_room(&b.room_url(room.token.as_str()))
        .await
        .unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let child = spawn(join_synthetic(
        &a.room_url(room.token.as_str()),
        "40",
        &stats_path,
        &[],
    ));
    let decoding = "await (async () => { const s = await window.webcall.stats(); \
        return s.videoFramesDecoded > 30 && s.videoWidth > 0; })()";
    browser
        .wait_until(decoding, WAIT, "the browser decoding the native video")
        .await
        .unwrap();

    // Instance a is redeployed: stopped (its clients are asked to come
    // back) and started again on its address.
    let addr = a.addr();
    a.shutdown().await.unwrap();
    let a = TestServer::start_at(addr, config).await.unwrap();
    browser
        .wait_until(
            &status_is("connected"),
            WAIT,
            "the browser connected, the native side back",
        )
        .await
        .unwrap();
    wait_more_frames(&browser, "the browser decoding after the restart").await;
    assert_never_left(&browser).await;
    finish_native(&browser, child).await;
    let s = stats(&stats_path);
    assert!(
        s["received"]["video_frames_decoded"].as_u64().unwrap() > 100,
        "{s:#}"
    );
    browser.close().await.unwrap();
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
