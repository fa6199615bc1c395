//! Prometheus metrics on `--metrics-listen`, against a real server with
//! real HTTP and WebSocket clients (and TURN clients): what a call, a
//! refused join, a cross-origin upgrade, a creation over the rate, an
//! oversized frame and relayed TURN traffic change in the scrape, that
//! the scrape is Prometheus text without secrets, and that only the
//! metrics port serves it.
//!
//! The recorder is process-wide, so the tests of this file run one at a
//! time (`ONE_SERVER`) and compare counters before and after.

mod server_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail, ensure};
use server_support::{Peer, WAIT, config, http, pair};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use webcall_core::protocol::{
    ClientMessage, ErrorCode, MAX_CLIENT_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage,
};
use webcall_server::Config;
use webcall_testkit::{TestServer, wait_until};
use webrtc_util::Conn;

/// One server with a metrics listener at a time: the counters are the
/// process's.
static ONE_SERVER: Mutex<()> = Mutex::const_new(());

/// One parsed scrape: every sample by name and label set, and the text.
#[derive(Debug)]
struct Scrape {
    samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
    text: String,
}

impl Scrape {
    /// Parses Prometheus text exposition: `# HELP` and `# TYPE` comments,
    /// and sample lines `name{label="value",...} value`; anything else is
    /// an error.
    fn parse(text: String) -> Result<Self> {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix("# ") {
                ensure!(
                    comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                    "an unexpected comment: {line}"
                );
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .with_context(|| format!("no value in {line:?}"))?;
            let value: f64 = value
                .parse()
                .with_context(|| format!("not a number in {line:?}"))?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest
                        .strip_suffix('}')
                        .with_context(|| format!("unclosed labels in {line:?}"))?;
                    (name, parse_labels(body).with_context(|| line.to_owned())?)
                }
                None => (series, BTreeMap::new()),
            };
            ensure!(
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                    && !name.starts_with(|c: char| c.is_ascii_digit()),
                "a bad metric name in {line:?}"
            );
            ensure!(
                samples.insert((name.to_owned(), labels), value).is_none(),
                "a sample twice: {line:?}"
            );
        }
        Ok(Self { samples, text })
    }

    /// The sample `name` with exactly `labels`; 0 when absent (a counter
    /// not counted yet).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.samples
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// True when some sample is named `name`.
    fn has(&self, name: &str) -> bool {
        self.samples.keys().any(|(n, _)| n == name)
    }
}

/// `k="v",k2="v2"` with `\"`, `\\` and `\n` escapes.
fn parse_labels(body: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").context("a label without =\"")?;
        ensure!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "a bad label name {key:?}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('"' | '\\'))) => value.push(c),
                    other => bail!("a bad escape {other:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => bail!("an unclosed label value"),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    Ok(labels)
}

/// A loopback port nothing listens on now, for the metrics listener (the
/// server binds it itself, as the binary does).
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

async fn scrape(metrics: SocketAddr) -> Result<Scrape> {
    let response = http()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await?;
    ensure!(
        response.status() == 200,
        "/metrics answered {}",
        response.status()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(content_type.starts_with("text/plain"), "{content_type}");
    Scrape::parse(response.text().await?)
}

/// Starts a server with a metrics listener and waits until it answers.
async fn start(config: Config) -> Result<(TestServer, SocketAddr)> {
    let metrics = free_port();
    let server = TestServer::start_with(Config {
        metrics_listen: Some(metrics),
        ..config
    })
    .await?;
    wait_until("the metrics listener answers", WAIT, || async {
        Ok(scrape(metrics).await.is_ok())
    })
    .await?;
    Ok((server, metrics))
}

/// Polls the scrape until `check` holds; the last scrape.
async fn scrape_until(
    metrics: SocketAddr,
    what: &str,
    check: impl Fn(&Scrape) -> bool,
) -> Result<Scrape> {
    wait_until(what, WAIT, || async { Ok(check(&scrape(metrics).await?)) }).await?;
    scrape(metrics).await
}

#[tokio::test]
async fn a_call_and_its_refusals_show_in_the_scrape() -> Result<()> {
    let _one = ONE_SERVER.lock().await;
    let (server, metrics) = start(Config {
        create_rate_per_minute: 1,
        ..config()
    })
    .await?;
    let before = scrape(metrics).await?;
    let delta = |after: &Scrape, name: &str, labels: &[(&str, &str)]| {
        after.get(name, labels) - before.get(name, labels)
    };

    // A room (POST /api/rooms), two participants, an offer relayed.
    let (mut a, mut b, token) = pair(&server).await;
    a.send(ClientMessage::Offer { sdp: "v=0".into() }).await;
    assert!(matches!(b.recv().await, ServerMessage::Offer { .. }));
    let info = http()
        .get(server.url(&format!("/api/rooms/{token}")))
        .send()
        .await?;
    assert_eq!(info.status(), 200);

    // A third join is refused (room_full); a page from another origin
    // may not open a signaling connection (origin).
    let mut third = Peer::connect(&server.ws_url(&token)).await;
    third
        .send(ClientMessage::Join {
            version: PROTOCOL_VERSION,
            resume: None,
        })
        .await;
    third.expect_fatal(ErrorCode::RoomFull).await;
    let cross = Peer::connect_with(&server.ws_url(&token), Some("https://elsewhere.example")).await;
    assert!(cross.is_err(), "a cross-origin upgrade was accepted");
    // A second room within the minute is over the creation rate; a frame
    // over the size limit ends its connection.
    let second = http().post(server.url("/api/rooms")).send().await?;
    assert_eq!(second.status(), 429);
    let mut big = Peer::connect(&server.ws_url(&token)).await;
    big.send_text(&"x".repeat(MAX_CLIENT_MESSAGE_BYTES + 1))
        .await;
    big.expect_fatal(ErrorCode::MessageTooLarge).await;

    // The public port has no /metrics.
    let public = http().get(server.url("/metrics")).send().await?;
    assert_eq!(public.status(), 404);

    // The third connection's close is counted once its task has ended.
    let after = scrape_until(metrics, "two signaling connections open", |s| {
        s.get("webcall_websocket_connections_open", &[]) == 2.0
    })
    .await?;
    assert_eq!(after.get("webcall_rooms", &[]), 1.0);
    assert_eq!(after.get("webcall_participants_seated", &[]), 2.0);
    assert!(after.get("webcall_tcp_connections_open", &[]) >= 2.0);
    assert!(after.has("webcall_signaling_queued_bytes"));
    let received = "webcall_signaling_messages_received_total";
    assert_eq!(delta(&after, received, &[("type", "join")]), 3.0);
    assert_eq!(delta(&after, received, &[("type", "offer")]), 1.0);
    let relayed = "webcall_signaling_messages_relayed_total";
    assert_eq!(delta(&after, relayed, &[("type", "offer")]), 1.0);
    assert_eq!(delta(&after, relayed, &[("type", "answer")]), 0.0);
    let refusals = "webcall_refusals_total";
    assert_eq!(delta(&after, refusals, &[("reason", "room_full")]), 1.0);
    assert_eq!(delta(&after, refusals, &[("reason", "origin")]), 1.0);
    assert_eq!(delta(&after, refusals, &[("reason", "rate_limited")]), 1.0);
    assert_eq!(
        delta(&after, refusals, &[("reason", "message_too_large")]),
        1.0
    );
    assert_eq!(
        delta(&after, refusals, &[("reason", "connection_limit")]),
        0.0
    );

    let requests = "webcall_http_requests_total";
    let http_count = |method, route, status| {
        delta(
            &after,
            requests,
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(http_count("POST", "/api/rooms", "201"), 1.0);
    assert_eq!(http_count("POST", "/api/rooms", "429"), 1.0);
    assert_eq!(http_count("GET", "/api/rooms/{token}", "200"), 1.0);
    assert_eq!(http_count("GET", "/ws/rooms/{token}", "101"), 4.0);
    assert_eq!(http_count("GET", "/ws/rooms/{token}", "403"), 1.0);
    assert_eq!(http_count("GET", "unmatched", "404"), 1.0);
    let timed = "webcall_http_request_duration_seconds_count";
    assert_eq!(
        delta(
            &after,
            timed,
            &[("method", "POST"), ("route", "/api/rooms")]
        ),
        2.0
    );
    assert!(
        after.has("webcall_http_request_duration_seconds_bucket"),
        "durations are a histogram with buckets"
    );
    assert!(after.text.contains("# HELP webcall_refusals_total "));
    assert!(after.text.contains("# TYPE webcall_rooms gauge"));
    assert_eq!(
        after.get(
            "webcall_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(
        !after.text.contains(&token),
        "the room token is a secret and must not appear in the scrape"
    );
    for (name, _) in after.samples.keys() {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| webcall_server::metrics::ALL.contains(b))
            .unwrap_or(name);
        assert!(
            webcall_server::metrics::ALL.contains(&base),
            "{name} is not a documented metric"
        );
    }

    // Bye is relayed (as peer_left); the seat is freed.
    a.send(ClientMessage::Bye).await;
    assert!(matches!(b.recv().await, ServerMessage::PeerLeft { .. }));
    let after = scrape_until(metrics, "one participant seated", |s| {
        s.get("webcall_participants_seated", &[]) == 1.0
    })
    .await?;
    assert_eq!(delta(&after, relayed, &[("type", "bye")]), 1.0);

    // The metrics listener stops with the server.
    drop((a, b));
    server.shutdown().await?;
    wait_until("the metrics listener is closed", WAIT, || async {
        tokio::net::TcpStream::connect(metrics).await.is_err()
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn turn_relays_denials_and_bad_credentials_are_counted() -> Result<()> {
    let _one = ONE_SERVER.lock().await;
    let (server, metrics) = start(Config {
        ice_servers: vec![],
        turn: Some(TestServer::turn_config(true)),
        ..config()
    })
    .await?;

    // The credential and address a participant is handed on joining.
    let room = server.create_room().await?;
    let mut peer = Peer::connect(&server.ws_url(room.token.as_str())).await;
    let joined = peer.join(None).await;
    let turn = joined
        .ice_servers
        .iter()
        .find(|s| s.urls.iter().any(|u| u.starts_with("turn:")))
        .context("a TURN server in joined")?;
    let url = turn
        .urls
        .iter()
        .find(|u| u.ends_with("?transport=udp"))
        .context("a UDP TURN URL")?;
    let addr: SocketAddr = url
        .trim_start_matches("turn:")
        .trim_end_matches("?transport=udp")
        .parse()?;
    let username = turn.username.clone().context("a username")?;
    let password = turn.credential.clone().context("a password")?;

    // 10 bytes out to a loopback peer (allowed here) and 12 back.
    let (client, relay) = webcall_testkit::turn::allocate(addr, &username, &password).await?;
    let relayed_at = relay.local_addr()?;
    let udp = UdpSocket::bind("127.0.0.1:0").await?;
    relay.send_to(b"0123456789", udp.local_addr()?).await?;
    let mut buf = [0u8; 64];
    let (n, _) = tokio::time::timeout(WAIT, udp.recv_from(&mut buf)).await??;
    assert_eq!(n, 10);
    udp.send_to(b"hello client", relayed_at).await?;
    let (n, _) = tokio::time::timeout(WAIT, relay.recv_from(&mut buf)).await??;
    assert_eq!(n, 12);

    // A private address is on the deny list: the permission is refused.
    let denied = relay.send_to(b"no", "10.0.0.1:9".parse()?).await;
    assert!(
        denied.is_err(),
        "a permission for a private peer was granted"
    );

    // A forged password is refused.
    let forged = webcall_testkit::turn::allocate(addr, &username, "not the password").await;
    assert!(forged.is_err(), "a forged credential allocated");

    let after = scrape_until(metrics, "the TURN counters", |s| {
        s.get("webcall_turn_relayed_bytes_total", &[]) >= 22.0
    })
    .await?;
    // A fresh TURN server: its counters are these requests alone.
    assert_eq!(after.get("webcall_turn_relayed_bytes_total", &[]), 22.0);
    assert_eq!(after.get("webcall_turn_allocations", &[]), 1.0);
    assert_eq!(after.get("webcall_turn_allocations_opened_total", &[]), 1.0);
    assert_eq!(after.get("webcall_turn_denied_peers_total", &[]), 1.0);
    assert_eq!(after.get("webcall_turn_denied_packets_total", &[]), 0.0);
    assert!(after.get("webcall_turn_auth_failures_total", &[]) >= 1.0);
    assert_eq!(
        after.get("webcall_turn_allocations_refused_total", &[]),
        0.0
    );
    assert!(!after.text.contains(&password) && !after.text.contains(&username));

    relay.close().await?;
    client.close().await?;
    drop(peer);
    server.shutdown().await?;
    Ok(())
}
