//! End-to-end tests of chat and of the verification code in the browser
//! client (PROTOCOL.md, "In the call: the data channel and the verification
//! code"): the real server on loopback and two real headless Chromiums in a
//! real WebRTC call.
//!
//! - chat both ways through the page's own input (typed with WebDriver and
//!   Enter), the unread badge, 1,000 messages each way in order, a
//!   4,000-character message arriving whole, a longer one refused, and a
//!   message that looks like HTML shown as text;
//! - a message lost as the other page reloads (the page's test hook loses
//!   it unread and unconfirmed) arrives once on the new connection;
//! - both pages show the same verification code, equal to one computed here
//!   from the fingerprints of their descriptions;
//! - through a signaling relay that rewrites one side's fingerprint, the two
//!   codes differ and the call does not connect;
//! - on a phone-width Russian page the chat fills the screen and sends.
//!
//! The tests take one lock in turn, so at most two Chromiums run at once.
//! On loopback only:
//! `cargo test --workspace --offline --test browser_chat --no-run` and then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --workspace --offline --test browser_chat'`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tokio::sync::Mutex;
use webcall_testkit::fantoccini::{Locator, key::Key};
use webcall_testkit::{
    Browser, BrowserOptions, Direction, SignalingRelay, TestServer, rewrite_fingerprint, status_is,
};

/// Serializes the tests of this file: each runs two browsers.
static HEAVY: Mutex<()> = Mutex::const_new(());

/// Bound for ordinary page states.
const STATE: Duration = Duration::from_secs(30);
/// Bound for a call to connect (two browsers share 2 cores).
const CONNECT: Duration = Duration::from_secs(60);
/// Bound for a batch of chat messages to arrive.
const CHAT: Duration = Duration::from_secs(60);

/// True once the page's data channel is open.
const CHANNEL_OPEN: &str = "window.webcall.state().channel === 'open'";

/// Two browsers in one room, both connected with their data channels open.
async fn connected_pair(
    server: &TestServer,
    options: BrowserOptions,
) -> Result<(Browser, Browser)> {
    let room = server.create_room().await?;
    let alice = Browser::launch_with(options.clone()).await?;
    alice.join_room(&room.url).await?;
    alice
        .wait_until(&status_is("waiting"), STATE, "alice alone in the room")
        .await?;
    let bob = Browser::launch_with(options).await?;
    bob.join_room(&room.url).await?;
    for (browser, who) in [(&alice, "alice"), (&bob, "bob")] {
        browser
            .wait_until(
                &format!("{} && {CHANNEL_OPEN}", status_is("connected")),
                CONNECT,
                &format!("{who} connected with the data channel open"),
            )
            .await?;
    }
    Ok((alice, bob))
}

/// The page's chat messages: `(mine, text)`, oldest first.
async fn messages(browser: &Browser) -> Result<Vec<(bool, String)>> {
    let list = browser
        .eval("return window.webcall.chat.messages().map((m) => [m.mine, m.text]);")
        .await?;
    list.as_array()
        .context("messages() is not an array")?
        .iter()
        .map(|m| {
            Ok((
                m[0].as_bool().context("mine")?,
                m[1].as_str().context("text")?.to_owned(),
            ))
        })
        .collect()
}

/// The texts the page received (not its own), oldest first.
async fn received(browser: &Browser) -> Result<Vec<String>> {
    Ok(messages(browser)
        .await?
        .into_iter()
        .filter(|(mine, _)| !mine)
        .map(|(_, text)| text)
        .collect())
}

/// Waits until the page has received `count` messages.
async fn wait_received(browser: &Browser, count: usize, who: &str) -> Result<()> {
    browser
        .wait_until(
            &format!("window.webcall.chat.messages().filter((m) => !m.mine).length >= {count}"),
            CHAT,
            &format!("{who} to have received {count} chat messages"),
        )
        .await
}

/// Sends `text` through the page's hook (the input and its Enter handler).
async fn send(browser: &Browser, text: &str) -> Result<Value> {
    browser
        .eval(&format!(
            "return window.webcall.chat.send({});",
            serde_json::to_string(text)?
        ))
        .await
}

/// Types `text` into the chat input with WebDriver and presses Enter.
async fn type_and_enter(browser: &Browser, text: &str) -> Result<()> {
    let input = browser
        .client()
        .find(Locator::Id("chat-input"))
        .await
        .context("no chat input")?;
    input.send_keys(text).await.context("typing")?;
    input
        .send_keys(&Key::Enter)
        .await
        .context("pressing Enter")?;
    Ok(())
}

/// `window.webcall.verification()`.
async fn verification(browser: &Browser) -> Result<Value> {
    browser.eval("return window.webcall.verification();").await
}

/// The verification code of two fingerprints, as PROTOCOL.md defines it,
/// computed independently of the page.
fn expected_code(a: &str, b: &str) -> String {
    let mut both = [a, b];
    both.sort_unstable();
    let digest = ring::digest::digest(&ring::digest::SHA256, both.join("\n").as_bytes());
    let first = u32::from_be_bytes(digest.as_ref()[..4].try_into().expect("4 bytes"));
    let n = first % 1_000_000;
    format!("{:03} {:03}", n / 1000, n % 1000)
}

#[test]
fn the_code_here_matches_the_protocol_test_vector() {
    let a = "sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08";
    let b = "sha-256 C7:96:5A:21:7D:92:3F:12:90:0E:B3:4A:61:AD:0C:3E:FF:18:42:8B:7E:55:9C:01:D4:A2:6F:33:B8:E7:90:1C";
    assert_eq!(expected_code(a, b), "125 392");
    assert_eq!(expected_code(b, a), "125 392");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_both_ways_in_order_long_and_as_plain_text() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let (alice, bob) = connected_pair(&server, BrowserOptions::default()).await?;

    // Alice opens the panel and types; Bob's panel is closed: a badge.
    alice.click("#chat-toggle").await?;
    alice
        .wait_until("window.webcall.chat.isOpen()", STATE, "alice's chat open")
        .await?;
    let hello = "Hello Bob, привет!";
    type_and_enter(&alice, hello).await?;
    wait_received(&bob, 1, "bob").await?;
    assert_eq!(received(&bob).await?, vec![hello.to_owned()]);
    assert_eq!(
        messages(&alice).await?,
        vec![(true, hello.to_owned())],
        "alice sees her own message"
    );
    assert_eq!(
        alice
            .eval("return document.getElementById('chat-input').value;")
            .await?,
        "",
        "Enter empties the input"
    );
    bob.wait_until(
        "!document.getElementById('chat-badge').hidden \
         && document.getElementById('chat-badge').textContent === '1'",
        STATE,
        "bob's unread badge to say 1",
    )
    .await?;

    // Bob opens the panel (the badge goes) and answers.
    bob.click("#chat-toggle").await?;
    bob.wait_until(
        "document.getElementById('chat-badge').hidden && window.webcall.chat.unread() === 0",
        STATE,
        "bob's badge gone once the chat is open",
    )
    .await?;
    let reply = "Hi Alice: line one\nline two";
    let result = send(&bob, reply).await?;
    ensure!(
        result["id"].is_string(),
        "bob's reply was refused: {result}"
    );
    wait_received(&alice, 1, "alice").await?;
    assert_eq!(received(&alice).await?, vec![reply.to_owned()]);

    // Markup and links arrive as text: no element made, nothing run.
    let html = "<img src=x onerror=\"window.__injected = 1\"><b>bold</b> \
                <a href=\"https://example.com\">link</a> https://example.com/?a=1&b=<2>";
    send(&bob, html).await?;
    wait_received(&alice, 2, "alice").await?;
    let shown = alice
        .eval(
            "const list = document.getElementById('chat-list'); \
             const texts = [...list.querySelectorAll('.chat-text')].map((p) => p.textContent); \
             return { last: texts[texts.length - 1], \
                      elements: list.querySelectorAll('img, b, a, script').length, \
                      childless: [...list.querySelectorAll('.chat-text')].every((p) => p.children.length === 0), \
                      injected: window.__injected === 1 };",
        )
        .await?;
    assert_eq!(
        shown["last"], html,
        "the message shows as the text it holds"
    );
    assert_eq!(
        shown["elements"], 0,
        "no element made from a message: {shown}"
    );
    assert_eq!(shown["childless"], true, "{shown}");
    assert_eq!(shown["injected"], false, "{shown}");

    // 1,000 messages each way, sent at once: all arrive, in order.
    let started = Instant::now();
    for (sender, who) in [(&alice, "alice"), (&bob, "bob")] {
        let refused = sender
            .eval(&format!(
                "const refused = []; \
                 for (let i = 0; i < 1000; i++) {{ \
                   const r = window.webcall.chat.send(`{who} ${{i}}`); \
                   if (!r || !r.id) refused.push([i, r]); \
                 }} \
                 return refused;"
            ))
            .await?;
        assert_eq!(refused, Value::Array(vec![]), "{who} could send them all");
    }
    wait_received(&bob, 1001, "bob").await?;
    wait_received(&alice, 1002, "alice").await?;
    let thousand = started.elapsed();
    let expect = |who: &str| (0..1000).map(|i| format!("{who} {i}")).collect::<Vec<_>>();
    assert_eq!(received(&bob).await?[1..], expect("alice")[..]);
    assert_eq!(received(&alice).await?[2..], expect("bob")[..]);
    println!("1,000 chat messages each way delivered in {thousand:?}");

    // 4,000 characters (code points: emoji count once) arrive whole; 4,001 are refused.
    let long: String = "ж😀a<".chars().cycle().take(4000).collect();
    assert_eq!(long.chars().count(), 4000);
    let result = send(&alice, &long).await?;
    ensure!(
        result["id"].is_string(),
        "4,000 characters refused: {result}"
    );
    wait_received(&bob, 1002, "bob").await?;
    assert_eq!(received(&bob).await?.last(), Some(&long));
    let too_long = format!("{long}x");
    let result = send(&alice, &too_long).await?;
    assert_eq!(result["refused"], "too_long", "{result}");
    let notice = alice
        .eval("const n = document.getElementById('chat-notice'); return n.hidden ? null : n.textContent;")
        .await?;
    ensure!(
        notice.as_str().is_some_and(|n| n.contains("4001")),
        "the page says the message is too long: {notice}"
    );
    assert_eq!(
        alice
            .eval("return document.getElementById('chat-input').value;")
            .await?,
        too_long,
        "a refused message stays in the input"
    );

    // Nothing else was sent by either side meanwhile.
    assert_eq!(received(&bob).await?.len(), 1002);
    assert_eq!(received(&alice).await?.len(), 1002);

    alice.close().await?;
    bob.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_lost_as_the_other_page_reloads_arrives_once_after_it() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let (alice, bob) = connected_pair(&server, BrowserOptions::default()).await?;

    // Confirmed messages are not sent again: one goes through first.
    send(&alice, "before").await?;
    wait_received(&bob, 1, "bob").await?;

    // Bob's page loses the next message, as one in flight on a connection
    // that breaks: it is neither shown nor confirmed.
    ensure!(bob.eval("return window.webcall.chat.loseNext();").await? == true);
    let lost = "sent as bob's page went away";
    send(&alice, lost).await?;
    bob.wait_until(
        "!window.webcall.chat.lostPending()",
        CHAT,
        "bob's page to lose the message",
    )
    .await?;
    assert_eq!(received(&bob).await?, vec!["before".to_owned()]);

    // Bob reloads and takes his seat back: a new connection, whose channel
    // brings what alice has no receipt for, once.
    bob.reload().await?;
    bob.wait_until(
        &format!("{} && {CHANNEL_OPEN}", status_is("connected")),
        CONNECT,
        "bob back in the call with the data channel open",
    )
    .await?;
    wait_received(&bob, 1, "bob after the reload").await?;
    send(&alice, "after").await?;
    wait_received(&bob, 2, "bob after the reload").await?;
    assert_eq!(
        received(&bob).await?,
        vec![lost.to_owned(), "after".to_owned()],
        "the lost message once, in order, and not the confirmed one"
    );
    assert_eq!(
        messages(&alice).await?,
        vec![
            (true, "before".to_owned()),
            (true, lost.to_owned()),
            (true, "after".to_owned())
        ],
        "alice's own list shows each message once"
    );
    alice.close().await?;
    bob.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_pages_show_the_same_verification_code_from_their_fingerprints() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let (alice, bob) = connected_pair(&server, BrowserOptions::default()).await?;
    for (browser, who) in [(&alice, "alice"), (&bob, "bob")] {
        browser
            .wait_until(
                "window.webcall.verification().shown !== ''",
                STATE,
                &format!("{who} shows a verification code"),
            )
            .await?;
    }
    let a = verification(&alice).await?;
    let b = verification(&bob).await?;
    let code = a["code"].as_str().context("alice has a code")?;
    ensure!(
        code.len() == 7 && code.as_bytes()[3] == b' ',
        "a code reads as 123 456: {a}"
    );
    assert_eq!(a["code"], b["code"], "the two pages show the same code");
    assert_eq!(a["shown"], a["code"], "{a}");
    assert_eq!(b["shown"], b["code"], "{b}");
    // Each side saw the other's real fingerprint.
    assert_eq!(a["local"], b["remote"]);
    assert_eq!(a["remote"], b["local"]);
    let local = a["local"].as_str().context("a local fingerprint")?;
    let remote = a["remote"].as_str().context("a remote fingerprint")?;
    ensure!(
        local.starts_with("sha-256 ") && local != remote,
        "two fingerprints: {a}"
    );
    assert_eq!(code, expected_code(local, remote));

    // The label and its explanation are there, in the page's language.
    let label = alice
        .eval(
            "const v = document.getElementById('verify-toggle'); \
             return { text: v.textContent.replace(/\\s+/g, ' ').trim(), title: v.title };",
        )
        .await?;
    assert_eq!(
        label["text"].as_str(),
        Some(format!("Verification code: {code}").as_str()),
        "{label}"
    );
    ensure!(
        label["title"]
            .as_str()
            .is_some_and(|t| t.contains("nobody in between")),
        "{label}"
    );
    alice.click("#verify-toggle").await?;
    alice
        .wait_until(
            "!document.getElementById('verify-hint').hidden",
            STATE,
            "the explanation opens on a tap",
        )
        .await?;

    // An ICE restart keeps the certificates, so the code stays.
    let before = alice
        .eval("return window.webcall.state().ufrags.local;")
        .await?;
    alice.eval("return window.webcall.restartIce();").await?;
    alice
        .wait_until(
            &format!(
                "window.webcall.state().ufrags.local !== {before} && {} \
                 && window.webcall.state().signalingState === 'stable'",
                status_is("connected")
            ),
            CONNECT,
            "alice connected again after the ICE restart",
        )
        .await?;
    assert_eq!(verification(&alice).await?["code"], code);
    assert_eq!(verification(&bob).await?["code"], code);

    alice.close().await?;
    bob.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_rewrites_a_fingerprint_gives_different_codes_and_no_call() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let room = server.create_room().await?;
    let token = room.token.to_string();
    // Alice signals through the relay, which puts another fingerprint in
    // her offers and answers; Bob talks to the server directly.
    let relay =
        SignalingRelay::launch(server.addr(), Direction::ToServer, rewrite_fingerprint).await?;
    let alice = Browser::launch().await?;
    alice.join_room(&relay.room_url(&token)).await?;
    alice
        .wait_until(&status_is("waiting"), STATE, "alice alone in the room")
        .await?;
    let bob = Browser::launch().await?;
    bob.join_room(&room.url).await?;

    for (browser, who) in [(&alice, "alice"), (&bob, "bob")] {
        browser
            .wait_until(
                "window.webcall.verification().code !== null",
                CONNECT,
                &format!("{who} to have negotiated and computed a code"),
            )
            .await?;
    }
    ensure!(
        relay.websockets() >= 1,
        "alice's signaling went through the relay"
    );
    ensure!(relay.changed() >= 1, "the relay rewrote a description");
    let a = verification(&alice).await?;
    let b = verification(&bob).await?;
    println!("through the rewriting relay: alice {a}, bob {b}");
    // Alice saw Bob's real fingerprint; Bob saw a forged one for Alice.
    assert_eq!(a["remote"], b["local"]);
    assert_ne!(b["remote"], a["local"]);
    assert_ne!(a["code"], b["code"], "the codes differ");
    assert_eq!(
        b["code"].as_str(),
        Some(
            expected_code(
                b["local"].as_str().context("bob's fingerprint")?,
                b["remote"].as_str().context("the forged fingerprint")?
            )
            .as_str()
        )
    );

    // DTLS refuses Alice's real certificate at Bob's end: the connection fails.
    bob.wait_until(
        "window.webcall.state().connectionState === 'failed'",
        CONNECT,
        "bob's connection to fail",
    )
    .await?;
    // Never "connected with equal codes": neither page shows a code, and
    // chat waits in Alice's outbox.
    let shown = send(&alice, "anyone there?").await?;
    ensure!(shown["id"].is_string(), "{shown}");
    for (browser, who) in [(&alice, "alice"), (&bob, "bob")] {
        let v = verification(browser).await?;
        assert_eq!(v["shown"], "", "{who} shows no code without a connection");
        ensure!(
            browser.status().await != "connected",
            "{who} is not connected"
        );
    }
    assert_eq!(received(&bob).await?.len(), 0, "no chat reached bob");

    alice.close().await?;
    bob.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_width_russian_page_the_chat_fills_the_screen_and_sends() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await?;
    let options = BrowserOptions {
        lang: Some("ru".to_owned()),
        window_size: (390, 844),
        ..BrowserOptions::default()
    };
    let (alice, bob) = connected_pair(&server, options).await?;
    alice
        .wait_until(
            "window.webcall.verification().shown !== ''",
            STATE,
            "alice shows a verification code",
        )
        .await?;
    let label = alice
        .eval("return document.getElementById('verify-toggle').textContent.replace(/\\s+/g, ' ').trim();")
        .await?;
    ensure!(
        label
            .as_str()
            .is_some_and(|l| l.starts_with("Код проверки: ")),
        "{label}"
    );
    alice.click("#chat-toggle").await?;
    let layout = alice
        .eval(
            "const r = document.getElementById('chat').getBoundingClientRect(); \
             const i = document.getElementById('chat-input').getBoundingClientRect(); \
             return { left: r.left, width: r.width, viewport: window.innerWidth, \
                      inputBottom: i.bottom, inputWidth: i.width, height: window.innerHeight, \
                      placeholder: document.getElementById('chat-input').placeholder };",
        )
        .await?;
    assert_eq!(layout["left"], 0.0, "{layout}");
    assert_eq!(
        layout["width"].as_f64(),
        layout["viewport"].as_f64(),
        "{layout}"
    );
    ensure!(
        layout["inputBottom"].as_f64() <= layout["height"].as_f64()
            && layout["inputWidth"].as_f64().unwrap_or(0.0) > 200.0,
        "the input is on screen and wide enough: {layout}"
    );
    assert_eq!(layout["placeholder"], "Напишите сообщение…");
    type_and_enter(&alice, "Привет с телефона").await?;
    wait_received(&bob, 1, "bob").await?;
    assert_eq!(received(&bob).await?, vec!["Привет с телефона".to_owned()]);
    alice.close().await?;
    bob.close().await
}
