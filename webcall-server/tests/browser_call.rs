//! End-to-end tests of the browser client: the real server on loopback and
//! real headless Chromium (fake camera and microphone) placing real WebRTC
//! calls. Needs chromium and chromium-driver.
//!
//! At most two Chromiums run at once: the tests take one lock in turn.
//! Run them on loopback only with:
//! `cargo test -p webcall-server --test browser_call --no-run` and then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline -p webcall-server --test browser_call'`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use webcall_testkit::{Browser, BrowserOptions, TestServer, join_in_turn, status_is};

/// Serializes the tests of this file: each runs up to two browsers.
static HEAVY: Mutex<()> = Mutex::const_new(());

/// Bound for ordinary page states.
const STATE: Duration = Duration::from_secs(30);
/// Bound for media to flow (two browsers encode and decode on 2 cores).
const MEDIA: Duration = Duration::from_secs(60);

async fn wait_media(browser: &Browser, who: &str) -> Result<()> {
    browser.wait_media(who, MEDIA).await
}

/// Waits until both pages say "connected" and decode each other's media.
async fn in_call(alice: &Browser, bob: &Browser) -> Result<()> {
    bob.wait_until(&status_is("connected"), MEDIA, "bob connected")
        .await?;
    alice
        .wait_until(&status_is("connected"), MEDIA, "alice connected")
        .await?;
    wait_media(alice, "alice").await?;
    wait_media(bob, "bob").await
}

async fn frames_decoded(browser: &Browser) -> Result<f64> {
    let stats = browser.stats().await?;
    stats["videoFramesDecoded"]
        .as_f64()
        .context("videoFramesDecoded is not a number")
}

/// Waits until the video frames decoded by `browser` grow past their present count.
async fn wait_frames_grow(browser: &Browser, who: &str) -> Result<()> {
    let before = frames_decoded(browser).await?;
    browser
        .wait_until(
            &format!("(await window.webcall.stats()).videoFramesDecoded > {before}"),
            MEDIA,
            &format!("{who}'s decoded frames to grow past {before}"),
        )
        .await
}

fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("webcall-{name}.png"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_call_reload_hang_up_and_leave() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;

    let alice = Browser::launch().await?;
    alice.join_room(&room.url).await?;
    alice
        .wait_until(&status_is("waiting"), STATE, "alice alone in the room")
        .await?;
    let share = alice
        .eval("return document.getElementById('room-link').value;")
        .await?;
    assert_eq!(
        share.as_str(),
        Some(room.url.as_str()),
        "the waiting page shows the room's link"
    );

    let bob = Browser::launch_with(BrowserOptions {
        window_size: (390, 844),
        ..Default::default()
    })
    .await?;
    bob.join_room(&room.url).await?;
    in_call(&alice, &bob).await?;

    let stats = alice.stats().await?;
    println!("alice's stats in the call: {stats}");
    for key in [
        "videoBytesSent",
        "audioBytesSent",
        "audioPacketsReceived",
        "videoHeight",
    ] {
        assert!(
            stats[key].as_f64().unwrap_or(0.0) > 0.0,
            "alice's {key} is above zero: {stats}"
        );
    }
    assert_eq!(stats["connectionState"], Value::from("connected"));
    // The remote video element plays the stream with its sound on.
    alice
        .wait_until(
            "(() => { const v = document.getElementById('remote-video'); \
               return v.videoWidth > 0 && !v.paused && !v.muted; })()",
            STATE,
            "alice's remote video playing with sound",
        )
        .await?;
    // The camera starts at 640x480 for a quick first picture and goes up
    // to 1280x720 once the call is up.
    alice
        .wait_until(
            "(() => { const s = document.getElementById('local-video').srcObject; \
               const t = s && s.getVideoTracks()[0]; \
               return !!t && t.getSettings().width === 1280 && t.getSettings().height === 720; })()",
            STATE,
            "alice's camera at 1280x720 after connecting",
        )
        .await?;
    alice.screenshot(screenshot_path("call-desktop")).await?;
    bob.screenshot(screenshot_path("call-phone")).await?;

    // A reload takes the seat back and the call resumes.
    bob.reload().await?;
    bob.wait_until(
        &status_is("connected"),
        MEDIA,
        "bob connected again after the reload",
    )
    .await?;
    alice
        .wait_until(
            &status_is("connected"),
            MEDIA,
            "alice connected again after bob's reload",
        )
        .await?;
    wait_media(&bob, "bob after the reload").await?;
    wait_media(&alice, "alice after bob's reload").await?;
    wait_frames_grow(&alice, "alice").await?;
    wait_frames_grow(&bob, "bob").await?;

    // Hanging up with the button: bob's page goes home, alice sees him leave.
    bob.click("#hangup").await?;
    bob.wait_until(
        &status_is("ended"),
        STATE,
        "bob's page to show the call ended",
    )
    .await?;
    alice
        .wait_until(&status_is("peer_left"), STATE, "alice to see bob leave")
        .await?;
    let path = bob.eval("return location.pathname;").await?;
    assert_eq!(
        path.as_str(),
        Some("/"),
        "hanging up goes back to the home page"
    );
    let hint = alice
        .eval("return document.getElementById('status').textContent;")
        .await?;
    assert!(
        hint.as_str().unwrap_or("").contains("left"),
        "alice reads that the other person left: {hint}"
    );

    // He comes back with the same link; then closes his browser.
    bob.join_room(&room.url).await?;
    alice
        .wait_until(
            &status_is("connected"),
            MEDIA,
            "alice connected when bob came back",
        )
        .await?;
    wait_media(&alice, "alice after bob came back").await?;
    bob.close().await?;
    alice
        .wait_until(
            &status_is("peer_left"),
            STATE,
            "alice to see bob's browser close",
        )
        .await?;
    let after = alice.stats().await?;
    assert_eq!(
        after["videoFramesDecoded"],
        Value::from(0),
        "no call, no stats: {after}"
    );
    alice.close().await?;
    Ok(())
}

/// Takes a seat in `token`'s room over a plain WebSocket and returns the socket.
async fn hold_seat(
    server: &TestServer,
    token: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url(token)).await?;
    ws.send(Message::Text(r#"{"type":"join","version":1}"#.into()))
        .await?;
    let reply = tokio::time::timeout(STATE, ws.next())
        .await?
        .context("socket closed before joined")??;
    let reply: Value = serde_json::from_str(reply.to_text()?)?;
    ensure!(reply["type"] == "joined", "expected joined, got {reply}");
    Ok(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_person_finds_the_room_full() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;
    let token = room.token.as_str();
    let _first = hold_seat(&server, token).await?;
    let _second = hold_seat(&server, token).await?;

    let carol = Browser::launch().await?;
    carol.goto(&room.url).await?;
    // The check before the call already knows, and offers no "Join".
    carol
        .wait_until(
            "window.webcall.prejoin().whoKey === 'prejoin_full'",
            STATE,
            "carol's page to say the room is full",
        )
        .await?;
    let before = carol
        .eval("return { who: window.webcall.prejoin().who, join: window.webcall.prejoin().joinEnabled };")
        .await?;
    assert_eq!(before["who"].as_str(), Some("The room is full."));
    assert_eq!(
        before["join"],
        Value::Bool(false),
        "no Join into a full room"
    );
    // The room can fill between the page's last look and a click: the
    // join itself is refused then. Clicked as if the room had had a seat.
    carol
        .eval("document.getElementById('join-call').disabled = false; return null;")
        .await?;
    carol.click("#join-call").await?;
    carol
        .wait_until(
            &status_is("room_full"),
            STATE,
            "carol to be told the room is full",
        )
        .await?;
    let text = carol
        .eval("return document.getElementById('status').textContent;")
        .await?;
    assert_eq!(text.as_str(), Some("This call already has two people."));
    let panel_visible = carol
        .eval("return !document.getElementById('panel').hidden;")
        .await?;
    assert_eq!(
        panel_visible,
        Value::Bool(true),
        "the explanation panel is shown"
    );
    carol.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_the_browser_cannot_apply_is_shown_not_just_logged() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;
    let alice = Browser::launch().await?;
    alice.join_room(&room.url).await?;
    alice
        .wait_until(&status_is("waiting"), STATE, "alice waiting")
        .await?;

    // The second seat is a plain WebSocket: the initiator, whose offer is
    // no session description at all.
    let mut other = hold_seat(&server, room.token.as_str()).await?;
    alice
        .wait_until(
            "window.webcall.state().peer !== null && window.webcall.state().connectionState === 'new'",
            STATE,
            "alice to make a connection for the other side's offer",
        )
        .await?;
    other
        .send(Message::Text(
            r#"{"type":"offer","sdp":"v=0\r\nthis is not a session description\r\n"}"#.into(),
        ))
        .await?;
    alice
        .wait_until(
            &status_is("negotiation_failed"),
            STATE,
            "alice to show that the call could not be set up",
        )
        .await?;
    let shown = alice
        .eval(
            "return [document.getElementById('status').textContent, \
             !document.getElementById('panel').hidden, \
             document.getElementById('panel-hint').textContent, \
             window.webcall.state().negotiationError.step];",
        )
        .await?;
    assert_eq!(shown[0], "The call could not be set up.", "{shown}");
    assert_eq!(shown[1], true, "the panel explains it: {shown}");
    assert!(
        shown[2]
            .as_str()
            .unwrap_or_default()
            .contains("Reload the page"),
        "{shown}"
    );
    assert_eq!(shown[3], "handling offer", "{shown}");

    // A failure belongs to its connection: when the other side leaves, the
    // page says so instead.
    other
        .send(Message::Text(r#"{"type":"bye"}"#.into()))
        .await?;
    alice
        .wait_until(&status_is("peer_left"), STATE, "alice to see them leave")
        .await?;
    alice.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_links_show_not_found() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let browser = Browser::launch().await?;
    for path in ["/r/AAAAAAAAAAAAAAAAAAAAAA", "/r/not-a-token"] {
        browser
            .goto(&format!("{}{path}", server.base_url()))
            .await?;
        browser
            .wait_until(
                &status_is("not_found"),
                STATE,
                &format!("{path} to show not_found"),
            )
            .await?;
        let text = browser
            .eval("return document.getElementById('status').textContent;")
            .await?;
        assert_eq!(text.as_str(), Some("This link is unknown or has expired."));
    }
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_page_shares_the_public_link_its_qr_code_encodes() -> Result<()> {
    let _turn = HEAVY.lock().await;
    // The page is opened on the machine's own address; links name the
    // public URL, as behind a reverse proxy.
    let server = TestServer::start_with(webcall_server::Config {
        public_url: Some("https://call.example.org".into()),
        ..TestServer::test_config()
    })
    .await?;
    let room = server.create_room().await?;
    let public = format!("https://call.example.org/r/{}", room.token);
    assert_eq!(room.url, public);
    let browser = Browser::launch().await?;
    browser
        .goto(&format!("{}/r/{}", server.base_url(), room.token))
        .await?;
    browser
        .wait_until(
            "document.getElementById('room-link').value.length > 0",
            STATE,
            "the room link",
        )
        .await?;
    let shown = browser
        .eval("return document.getElementById('room-link').value;")
        .await?;
    assert_eq!(shown.as_str(), Some(public.as_str()));
    // The QR code beside it is served from the same link.
    let info = server
        .request("GET", &format!("/api/rooms/{}", room.token), None)
        .await?;
    let info: Value = serde_json::from_str(&info.text())?;
    assert_eq!(info["url"].as_str(), Some(public.as_str()));
    browser
        .wait_until(
            "(() => { const q = document.getElementById('room-qr'); return q.complete && q.naturalWidth > 0; })()",
            STATE,
            "the room's QR code",
        )
        .await?;
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_page_says_when_the_client_holds_too_many_links() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start_with(webcall_server::Config {
        room: webcall_core::room::RoomConfig {
            rooms_per_client: 1,
            ..TestServer::test_config().room
        },
        ..TestServer::test_config()
    })
    .await?;
    let browser = Browser::launch().await?;
    browser.goto(&server.base_url()).await?;
    browser
        .wait_until(&status_is("idle"), STATE, "the home page")
        .await?;
    browser.click("#create").await?;
    browser
        .wait_until(
            "!document.getElementById('created').hidden",
            STATE,
            "the first link",
        )
        .await?;
    // The second is over the client's limit: the server's code
    // (too_many_rooms, not the rate limit) picks the message.
    browser.click("#create").await?;
    browser
        .wait_until(
            "!document.getElementById('create-error').hidden",
            STATE,
            "the refusal",
        )
        .await?;
    let said = browser
        .eval("return document.getElementById('create-error').textContent;")
        .await?;
    let expected = browser
        .eval("return import('/assets/i18n.js').then((m) => m.t('create_too_many'));")
        .await?;
    assert_eq!(said, expected);
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_page_creates_a_link_with_a_qr_code() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let browser = Browser::launch().await?;
    browser.goto(&server.base_url()).await?;
    browser
        .wait_until(&status_is("idle"), STATE, "the home page")
        .await?;
    let lang = browser
        .eval("return document.documentElement.lang;")
        .await?;
    assert_eq!(lang.as_str(), Some("en"));

    browser.click("#create").await?;
    browser
        .wait_until(
            "!document.getElementById('created').hidden",
            STATE,
            "the created link",
        )
        .await?;
    browser
        .wait_until(
            "(() => { const q = document.getElementById('qr'); return q.complete && q.naturalWidth > 0; })()",
            STATE,
            "the QR code image to load",
        )
        .await?;
    let link = browser
        .eval("return document.getElementById('link').value;")
        .await?;
    let link = link.as_str().context("the link is text")?.to_owned();
    let prefix = format!("{}/r/", server.base_url());
    assert!(link.starts_with(&prefix), "{link} starts with {prefix}");
    let token = &link[prefix.len()..];
    let info = server
        .request("GET", &format!("/api/rooms/{token}"), None)
        .await?;
    assert_eq!(info.status, 200, "the created room exists: {}", info.text());

    browser.click("#copy").await?;
    browser
        .wait_until(
            "document.getElementById('copy-status').textContent.length > 0",
            STATE,
            "copy feedback",
        )
        .await?;
    // The feedback says the link was copied, in the page's language, not
    // the fallback that asks the person to press Ctrl+C.
    let said = browser
        .eval("return document.getElementById('copy-status').textContent;")
        .await?;
    let copied = browser
        .eval("return import('/assets/i18n.js').then((m) => m.t('copied'));")
        .await?;
    let manual = browser
        .eval("return import('/assets/i18n.js').then((m) => m.t('copy_manual'));")
        .await?;
    assert_ne!(copied, manual);
    assert_eq!(said, copied, "the copy button copied the link");
    browser.screenshot(screenshot_path("home-en")).await?;

    browser.click("#join").await?;
    browser.click_join().await?;
    browser
        .wait_until(
            &status_is("waiting"),
            STATE,
            "the room page after following the link",
        )
        .await?;
    let path = browser.eval("return location.pathname;").await?;
    assert_eq!(path.as_str(), Some(format!("/r/{token}").as_str()));
    browser
        .wait_until(
            "document.getElementById('local-video').videoWidth > 0",
            STATE,
            "the local preview",
        )
        .await?;
    browser.screenshot(screenshot_path("waiting-en")).await?;
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn russian_browsers_get_the_russian_page() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let browser = Browser::launch_with(BrowserOptions {
        lang: Some("ru".into()),
        ..Default::default()
    })
    .await?;
    browser.goto(&server.base_url()).await?;
    browser
        .wait_until(&status_is("idle"), STATE, "the home page")
        .await?;
    let page = browser
        .eval(
            "return { lang: document.documentElement.lang, languages: navigator.languages, \
               button: document.getElementById('create').textContent, title: document.title };",
        )
        .await?;
    assert_eq!(page["lang"], Value::from("ru"), "{page}");
    assert_eq!(
        page["button"],
        Value::from("Создать ссылку на звонок"),
        "{page}"
    );
    browser.click("#create").await?;
    browser
        .wait_until(
            "!document.getElementById('created').hidden",
            STATE,
            "the created link",
        )
        .await?;
    browser
        .wait_until(
            "document.getElementById('qr').naturalWidth > 0",
            STATE,
            "the QR code",
        )
        .await?;
    browser.screenshot(screenshot_path("home-ru")).await?;

    browser.click("#join").await?;
    browser.click_join().await?;
    browser
        .wait_until(&status_is("waiting"), STATE, "the room page")
        .await?;
    let text = browser
        .eval("return document.getElementById('status').textContent;")
        .await?;
    assert_eq!(text.as_str(), Some("Ждём собеседника."));
    let label = browser
        .eval("return document.getElementById('hangup').getAttribute('aria-label');")
        .await?;
    assert_eq!(label.as_str(), Some("Завершить звонок"));
    browser.screenshot(screenshot_path("waiting-ru")).await?;
    browser.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_camera_offers_other_ways_and_negotiates_receive_only() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;

    let shy = Browser::launch_with(BrowserOptions {
        deny_media: true,
        ..Default::default()
    })
    .await?;
    shy.join_room(&room.url).await?;
    shy.wait_until(
        &status_is("media_denied"),
        STATE,
        "the camera refusal to show",
    )
    .await?;
    let choices = shy
        .eval("return !document.getElementById('media-choices').hidden;")
        .await?;
    assert_eq!(
        choices,
        Value::Bool(true),
        "the page offers other ways to join"
    );
    shy.screenshot(screenshot_path("media-denied")).await?;
    // The microphone is refused too, so audio only cannot work either.
    shy.click("#media-audio").await?;
    shy.wait_until(
        "!document.getElementById('media-audio').disabled",
        STATE,
        "the audio-only attempt",
    )
    .await?;
    assert_eq!(shy.status().await, "media_denied");
    shy.click("#media-none").await?;
    shy.wait_until(
        &status_is("waiting"),
        STATE,
        "joining without camera and microphone",
    )
    .await?;
    let disabled = shy
        .eval("return document.getElementById('toggle-mic').disabled;")
        .await?;
    assert_eq!(disabled, Value::Bool(true), "no microphone to toggle");

    let other = Browser::launch().await?;
    other.join_room(&room.url).await?;
    // Offer and answer complete: the receive-only side answers both media
    // sections as recvonly. (Whether ICE then connects depends on the
    // network: Chromium gathers no host candidates for a page without media
    // permission when there is no default route, as in a loopback-only
    // namespace, so connectivity is not asserted here.)
    let answered = "(() => { const s = window.webcall.state(); return s.signalingState === 'stable' && s.peer; })()";
    other
        .wait_until(answered, STATE, "the other side's offer answered")
        .await?;
    shy.wait_until(answered, STATE, "the receive-only side's answer")
        .await?;
    let directions = shy
        .eval("return (await window.webcall.stats(), window.webcall.state().directions);")
        .await?;
    // The third is the screen's section (PROTOCOL.md, "Screen sharing"):
    // ready to send a share, sending nothing until there is one.
    assert_eq!(
        directions,
        serde_json::json!(["recvonly", "recvonly", "sendrecv"]),
        "receive-only transceivers"
    );
    let sent = shy.stats().await?;
    assert_eq!(
        sent["videoBytesSent"],
        Value::from(0),
        "nothing is sent without a camera: {sent}"
    );
    assert_eq!(
        sent["audioBytesSent"],
        Value::from(0),
        "nothing is sent without a microphone: {sent}"
    );
    other.close().await?;
    shy.close().await?;
    Ok(())
}

/// HTTPS with `--tls-self-signed`: two browsers (accepting the certificate,
/// as a person clicking through the warning) call each other over a page
/// and a signaling WebSocket that are both encrypted; the link is https
/// and the page a secure context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_call_over_https_and_wss_with_a_self_signed_certificate() -> Result<()> {
    let _turn = HEAVY.lock().await;
    let data = std::env::temp_dir().join(format!("webcall-browser-tls-{}", std::process::id()));
    let server = TestServer::start_with(webcall_server::Config {
        tls: Some(webcall_server::config::TlsSource::SelfSigned),
        data_dir: Some(data.clone()),
        ..TestServer::test_config()
    })
    .await?;
    let room = server.create_room().await?;
    ensure!(
        room.url.starts_with("https://"),
        "an https link: {}",
        room.url
    );
    let options = BrowserOptions {
        ignore_certificate_errors: true,
        ..Default::default()
    };
    let alice = Browser::launch_with(options.clone()).await?;
    let bob = Browser::launch_with(options).await?;
    join_in_turn((&alice, &room.url), (&bob, &room.url), MEDIA).await?;
    let secure = alice
        .eval("return [location.protocol, window.isSecureContext];")
        .await?;
    assert_eq!(secure, serde_json::json!(["https:", true]));
    alice.close().await?;
    bob.close().await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_offer_is_made_again_and_the_call_connects() -> Result<()> {
    // Signaling is at most once: across a server restart or a store
    // reconnect a message can be lost. The offerer notices that its offer
    // stays unanswered and makes it again.
    let _turn = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;
    let alice = Browser::launch().await?;
    alice.join_room(&room.url).await?;
    alice
        .wait_until(&status_is("waiting"), STATE, "alice alone in the room")
        .await?;
    let armed = alice
        .eval("return window.webcall.loseNext('offer');")
        .await?;
    assert_eq!(armed, Value::Bool(true));

    let bob = Browser::launch().await?;
    bob.join_room(&room.url).await?;
    in_call(&alice, &bob).await?;
    let alice_log = alice.console_log().await?;
    assert!(
        alice_log.iter().any(|l| l.contains("losing this offer")),
        "the first offer was lost: {alice_log:#?}"
    );
    let bob_log = bob.console_log().await?;
    assert!(
        bob_log.iter().any(|l| l.contains("offering again")),
        "bob offered again: {bob_log:#?}"
    );
    alice.close().await?;
    bob.close().await?;
    Ok(())
}
