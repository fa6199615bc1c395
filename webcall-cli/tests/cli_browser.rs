//! `webcall join` against the browser client in headless Chromium, both on
//! 127.0.0.1: each side decodes the other's video and audio, a browser
//! reload resumes the call, and either side leaving is seen by the other;
//! chat both ways over the `webcall` data channel (1,000 messages in order
//! and a 4,000-character one), the same verification code on both sides,
//! and different codes when a relay rewrites a fingerprint.

mod cli_common;

use std::io::Write;
use std::time::Duration;

use cli_common::relay::FingerprintRelay;
use cli_common::{
    Live, finish, join_for_chat, join_synthetic, long_text, scratch, spawn, stats, wav_rms,
};
use webcall_core::call::verify::code_from_fingerprints;
use webcall_testkit::{Browser, TestServer, status_is, wait_for};

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
    browser.join_room(&room.url).await.unwrap();
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
    browser.join_room(&room.url).await.unwrap();
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
    // The page grades the native side's H.264 and names it in the details;
    // the call goes on for a few seconds, so that the native side grades it
    // too (a window of a few samples, one a second).
    browser
        .wait_until(
            "(() => { const q = window.webcall.quality(); \
             return !!q.grade && q.details.codec === 'H264' && q.details.path === 'direct' \
               && window.webcall.summary().durationMs > 4000; })()",
            WAIT,
            "the browser grading the native call",
        )
        .await
        .unwrap();
    browser.eval("window.webcall.hangup();").await.unwrap();
    browser
        .wait_until(&status_is("ended"), WAIT, "the browser hung up")
        .await
        .unwrap();
    let summary = browser
        .eval("return window.webcall.summary();")
        .await
        .unwrap();
    assert_eq!(summary["path"], "direct", "{summary}");
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
    // The native side graded the call too, and knows its path.
    assert!(s["quality"]["grade"].is_string(), "{s:#}");
    assert_eq!(s["path"], "direct", "{s:#}");
    assert!(run.stdout.contains("path: direct"), "{}", run.stdout);
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The page's received chat texts, oldest first.
async fn browser_received(browser: &Browser) -> Vec<String> {
    let list = browser
        .eval("return window.webcall.chat.messages().filter((m) => !m.mine).map((m) => m.text);")
        .await
        .unwrap();
    serde_json::from_value(list).unwrap()
}

/// The page's `window.webcall.verification()` and its code.
async fn page_code(browser: &Browser) -> (serde_json::Value, String) {
    let page = browser
        .eval("return window.webcall.verification();")
        .await
        .unwrap();
    let code = page["code"]
        .as_str()
        .unwrap_or_else(|| panic!("the page has no code: {page}"))
        .to_owned();
    (page, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_and_native_chat_both_ways_and_show_the_same_code() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("browser-chat");
    let stats_path = dir.join("native.json");

    let browser = Browser::launch().await.unwrap();
    browser.join_room(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let mut native = Live::spawn(join_for_chat(&room.url, &stats_path));

    // The native side types 1,000 lines and a 4,000-character one at once,
    // before the call is up; they wait for the channel.
    let from_native: Vec<String> = (0..1000)
        .map(|i| format!("native {i:04} ✓"))
        .chain([long_text('N')])
        .collect();
    let mut stdin = native.take_stdin();
    let lines = from_native.clone();
    let writer = std::thread::spawn(move || {
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
        stdin
    });
    browser
        .wait_until(
            &format!(
                "{} && window.webcall.state().channel === 'open'",
                status_is("connected")
            ),
            WAIT,
            "the browser connected with its data channel open",
        )
        .await
        .unwrap();
    browser
        .wait_until(
            "window.webcall.chat.messages().filter((m) => !m.mine).length >= 1001",
            WAIT,
            "the browser to have all of the native side's messages",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; native stderr:\n{}", native.stderr()));
    assert_eq!(
        browser_received(&browser).await,
        from_native,
        "in order, the long one whole"
    );
    let mut stdin = writer.join().unwrap();

    // The browser sends 1,000 at once and a 4,000-character one.
    let refused = browser
        .eval(
            "const refused = []; \
             for (let i = 0; i < 1000; i++) { \
               const r = window.webcall.chat.send(`browser ${String(i).padStart(4, '0')}`); \
               if (!r || !r.id) refused.push([i, r]); \
             } \
             return refused;",
        )
        .await
        .unwrap();
    assert_eq!(refused, serde_json::json!([]), "the page took them all");
    let long: String = "ж😀a<".chars().cycle().take(4000).collect();
    let sent = browser
        .eval(&format!(
            "return window.webcall.chat.send({});",
            serde_json::to_string(&long).unwrap()
        ))
        .await
        .unwrap();
    assert!(sent["id"].is_string(), "{sent}");
    wait_for(
        "the native side to have the browser's messages",
        WAIT,
        || native.lines_after("chat: ").len() >= 1001,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", native.lines_after("chat: ").len()));
    let mut expected: Vec<String> = (0..1000).map(|i| format!("browser {i:04}")).collect();
    expected.push(long.clone());
    assert_eq!(
        native.lines_after("chat: "),
        expected,
        "in order, one line each"
    );

    // The same code on both sides, from the fingerprints the page used.
    wait_for("the native side to show a code", WAIT, || {
        !native.lines_after("verification code: ").is_empty()
    })
    .await
    .unwrap();
    let (page, code) = page_code(&browser).await;
    assert_eq!(
        native.lines_after("verification code: ").last(),
        Some(&code),
        "{page}"
    );
    assert_eq!(page["shown"], code.as_str(), "{page}");
    let (local, remote) = (
        page["local"].as_str().unwrap(),
        page["remote"].as_str().unwrap(),
    );
    assert_ne!(local, remote);
    assert_eq!(code_from_fingerprints(local, remote), code);

    // A message lost as the page reloads (neither shown nor confirmed)
    // comes once on the new connection; the confirmed ones do not come
    // again.
    assert_eq!(
        browser
            .eval("return window.webcall.chat.loseNext();")
            .await
            .unwrap(),
        true
    );
    let lost = "sent as the page went away";
    writeln!(stdin, "{lost}").unwrap();
    browser
        .wait_until(
            "!window.webcall.chat.lostPending()",
            WAIT,
            "the page to lose the native side's message",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; native stderr:\n{}", native.stderr()));
    browser.reload().await.unwrap();
    browser
        .wait_until(
            "window.webcall.chat.messages().filter((m) => !m.mine).length >= 1",
            WAIT,
            "the lost message to come again after the reload",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; native stderr:\n{}", native.stderr()));
    assert_eq!(browser_received(&browser).await, vec![lost.to_owned()]);
    // The new connection has new certificates, so a new code: again the
    // same on both sides.
    let (page, code) = page_code(&browser).await;
    wait_for("the native side to show the new code", WAIT, || {
        native.lines_after("verification code: ").last() == Some(&code)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {page}"));

    native.interrupt();
    let run = tokio::task::spawn_blocking(move || native.finish(WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    let s = stats(&stats_path);
    assert_eq!(s["sent"]["chat_messages"], 1002, "{s:#}");
    assert_eq!(s["received"]["chat_messages"], 1001, "{s:#}");
    assert_eq!(
        s["verification_code"].as_str(),
        Some(code.replace(' ', "").as_str()),
        "{s:#}"
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_rewrites_a_fingerprint_makes_the_codes_differ() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("browser-mitm");
    let stats_path = dir.join("native.json");
    // The native side's signaling goes through a man in the middle that
    // changes every fingerprint it delivers; the browser's does not.
    let relay = FingerprintRelay::launch(server.addr(), true).await;

    let browser = Browser::launch().await.unwrap();
    browser.join_room(&room.url).await.unwrap();
    browser
        .wait_until(&status_is("waiting"), WAIT, "the browser waiting alone")
        .await
        .unwrap();
    let native = Live::spawn(join_for_chat(&relay.link(&room.url), &stats_path));
    browser
        .wait_until(
            "window.webcall.verification().code !== null",
            WAIT,
            "the browser to have negotiated",
        )
        .await
        .unwrap();
    wait_for("the native side to show a code", WAIT, || {
        !native.lines_after("verification code: ").is_empty()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#?}", native.lines()));
    let page = browser
        .eval("return window.webcall.verification();")
        .await
        .unwrap();
    let browser_code = page["code"].as_str().unwrap().to_owned();
    let native_code = native
        .lines_after("verification code: ")
        .last()
        .unwrap()
        .clone();
    assert_ne!(browser_code, native_code, "the swap shows: {page}");

    // Each side's code is the one of the fingerprints it saw: the browser
    // the real two, the native side its own and the forged one.
    let seen = relay.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| s.original != s.delivered),
        "{seen:#?}"
    );
    assert_eq!(seen[0].original, page["local"].as_str().unwrap());
    assert_eq!(
        native_code,
        code_from_fingerprints(page["remote"].as_str().unwrap(), &seen[0].delivered)
    );
    assert_eq!(
        browser_code,
        code_from_fingerprints(
            page["local"].as_str().unwrap(),
            page["remote"].as_str().unwrap()
        )
    );

    native.interrupt();
    let run = tokio::task::spawn_blocking(move || native.finish(WAIT))
        .await
        .unwrap();
    assert!(run.success(), "{run:#?}");
    // The native side checks the browser's certificate against the forged
    // fingerprint: the media connection never came up.
    assert!(
        !run.stdout.contains("connection: connected"),
        "{}",
        run.stdout
    );
    let s = stats(&stats_path);
    assert_eq!(s["connected_ms"], serde_json::Value::Null, "{s:#}");
    assert_eq!(
        s["verification_code"].as_str(),
        Some(native_code.replace(' ', "").as_str())
    );
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
