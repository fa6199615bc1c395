//! The server under hostile or careless clients, on loopback with real
//! sockets: keep-alive with request bodies, slow and idle connections,
//! connection caps, per-client room limits, bursts, receivers that stop
//! reading, oversized frames, forged hosts and origins, and shutdown.

mod server_support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use server_support::{Peer, WAIT, candidate, config, http, pair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use webcall_core::protocol::{ClientMessage, ErrorCode, MAX_MESSAGE_BYTES, ServerMessage};
use webcall_core::room::RoomConfig;
use webcall_server::Config;
use webcall_testkit::{TestServer, wait_until};

/// One HTTP response read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Reads one response (with a `content-length` body) from `stream`.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("readable");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&data)
        );
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let status = head[9..12].parse().expect("a status code");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("a body in time")
            .expect("readable");
        assert!(n > 0, "closed in the body");
        data.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&data[head_end..head_end + length]).to_string();
    Answer { status, head, body }
}

fn post_rooms(addr: SocketAddr, body: &str) -> String {
    format!(
        "POST /api/rooms HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// True once the server has closed `stream` (EOF or reset), reading and
/// discarding whatever else arrives.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn create_reads_its_body_and_keeps_the_connection() {
    let server = TestServer::start_with(config()).await.unwrap();
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    for body in ["{}", "", r#"{"unknown":"ignored","n":[1,2]}"#, "{}"] {
        stream
            .write_all(post_rooms(server.addr(), body).as_bytes())
            .await
            .unwrap();
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status, 201, "{body:?}: {answer:?}");
        assert!(answer.body.contains("\"join_by\""), "{}", answer.body);
    }
    // Bad bodies get a JSON error and the connection still serves.
    for (body, status, code) in [
        ("[1,2]", 400, "bad_message"),
        ("not json", 400, "bad_message"),
        (
            &*format!(r#"{{"x":"{}"}}"#, "y".repeat(5000)),
            413,
            "message_too_large",
        ),
    ] {
        stream
            .write_all(post_rooms(server.addr(), body).as_bytes())
            .await
            .unwrap();
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status, status, "{answer:?}");
        assert!(answer.body.contains(code), "{answer:?}");
        if status == 413 {
            // The server stops reading an oversized body: it may close.
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_clients_get_every_answer() {
    let server = TestServer::start_with(config()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let url = server.url("/api/rooms");
        tasks.push(tokio::spawn(async move {
            // One connection per client, reused for every request.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(WAIT)
                .build()
                .unwrap();
            let mut ok = 0;
            for _ in 0..250 {
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}")
                    .send()
                    .await
                    .expect("every request answered");
                ok += usize::from(answer.status() == 201);
            }
            ok
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 250);
    }
}

#[tokio::test(start_paused = true)]
async fn slow_and_idle_connections_are_dropped() {
    let server = TestServer::start_with(Config {
        request_timeout: Duration::from_secs(1),
        ..config()
    })
    .await
    .unwrap();
    // Half a request head, then a byte now and then.
    let mut slow = TcpStream::connect(server.addr()).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow.write_all(b"x").await.is_err() {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(8), trickle)
        .await
        .ok();
    assert!(
        closed_by_server(&mut slow, WAIT).await,
        "a trickled head is cut off"
    );

    // An idle keep-alive connection after one request.
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr()).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_answer(&mut idle).await.status, 200);
    let started = tokio::time::Instant::now();
    assert!(closed_by_server(&mut idle, WAIT).await);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(server.addr()).await.unwrap();
    assert!(closed_by_server(&mut silent, WAIT).await);

    // A body that never finishes: 408.
    let mut body = TcpStream::connect(server.addr()).await.unwrap();
    body.write_all(
        format!(
            "POST /api/rooms HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n{{",
            server.addr()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(read_answer(&mut body).await.status, 408);
}

#[tokio::test]
async fn connections_over_the_caps_are_refused_at_once_and_others_still_served() {
    let server = TestServer::start_with(Config {
        max_connections: 5,
        ..config()
    })
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(server.addr()).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    let mut extra = TcpStream::connect(server.addr()).await.unwrap();
    let answer = read_answer(&mut extra).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("unavailable"));
    assert!(answer.head.to_ascii_lowercase().contains("retry-after"));
    drop(held);
    wait_until("the server answers again", WAIT, || async {
        matches!(http().get(server.url("/healthz")).send().await, Ok(r) if r.status() == 200)
    })
    .await
    .unwrap();

    // Per client, with trusted proxies exempt.
    let server = TestServer::start_with(Config {
        max_connections_per_client: 3,
        ..config()
    })
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    let mut extra = TcpStream::connect(server.addr()).await.unwrap();
    assert_eq!(read_answer(&mut extra).await.status, 503);
    drop(held);

    let proxied = TestServer::start_with(Config {
        max_connections_per_client: 3,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..config()
    })
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(TcpStream::connect(proxied.addr()).await.unwrap());
    }
    let mut one_more = TcpStream::connect(proxied.addr()).await.unwrap();
    one_more
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", proxied.addr()).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_answer(&mut one_more).await.status, 200);
}

#[tokio::test]
async fn one_network_cannot_fill_the_server_with_rooms() {
    let server = TestServer::start_with(Config {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        room: RoomConfig {
            rooms_per_client: 3,
            rooms_per_network: 5,
            ..RoomConfig::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let create = |from: &'static str| {
        let url = server.url("/api/rooms");
        async move {
            http()
                .post(url)
                .header("x-forwarded-for", from)
                .send()
                .await
                .unwrap()
        }
    };
    // Addresses of one IPv6 /64 are one client.
    for from in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
        assert_eq!(create(from).await.status(), 201, "{from}");
    }
    let refused = create("2001:db8:1:2::4").await;
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_rooms", "{body}");
    // Another /64 of the same /48 may create until the network's limit.
    assert_eq!(create("2001:db8:1:3::1").await.status(), 201);
    assert_eq!(create("2001:db8:1:3::1").await.status(), 201);
    assert_eq!(create("2001:db8:1:3::1").await.status(), 429);
    // Another network is untouched.
    assert_eq!(create("2001:db8:2::1").await.status(), 201);
    assert_eq!(create("198.51.100.7").await.status(), 201);
}

#[tokio::test]
async fn a_burst_the_rate_limit_allows_reaches_the_other_side_whole() {
    let server = TestServer::start_with(config()).await.unwrap();
    let defaults = Config::default();
    let (mut a, mut b, _) = pair(&server).await;
    let burst = defaults.message_burst as u16 - 1;
    for n in 0..burst {
        a.ws.feed(Message::text(candidate(n).encode()))
            .await
            .unwrap();
    }
    a.ws.flush().await.unwrap();
    for n in 0..burst {
        match b.recv().await {
            ServerMessage::Candidate {
                candidate: Some(c), ..
            } => assert!(
                c.candidate.starts_with(&format!("candidate:{n} ")),
                "{n}: {c:?}"
            ),
            other => panic!("candidate {n}: got {other:?}"),
        }
    }
    // And the other direction, while a is still connected.
    b.send(candidate(7)).await;
    assert!(matches!(a.recv().await, ServerMessage::Candidate { .. }));
}

/// The process's resident memory in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_stop_reading_are_cut_off_and_memory_stays_bounded() {
    // Senders may push 4 MiB/s each; receivers never read.
    let server = TestServer::start_with(Config {
        message_bytes_per_second: 4 * 1024 * 1024,
        message_rate_per_second: 1_000,
        ..config()
    })
    .await
    .unwrap();
    let pairs = 40;
    let per_sender = 8 * 1024 * 1024;
    let before = rss_kib();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..pairs {
        let (a, b, _) = pair(&server).await;
        receivers.push(b);
        senders.push(tokio::spawn(async move {
            let mut a = a;
            let offer = ClientMessage::Offer {
                sdp: "v".repeat(MAX_MESSAGE_BYTES - 200),
            }
            .encode();
            let mut sent = 0;
            let deadline = Instant::now() + Duration::from_secs(20);
            while sent < per_sender && Instant::now() < deadline {
                if a.ws.send(Message::text(offer.clone())).await.is_err() {
                    break;
                }
                sent += offer.len();
                // Stay under the byte rate: rate-limited frames are dropped.
                tokio::time::sleep(Duration::from_millis(16)).await;
            }
            a
        }));
    }
    let mut peak = 0;
    let mut senders_done = Vec::new();
    for s in senders {
        peak = peak.max(rss_kib());
        senders_done.push(s.await.unwrap());
    }
    peak = peak.max(rss_kib());
    let grown_mib = peak.saturating_sub(before) / 1024;
    eprintln!("RSS grew by {grown_mib} MiB with {pairs} receivers not reading");
    // Unbounded queues held 64 x 64 KiB per receiver (160 MiB here) on top
    // of the socket buffers; bounded, each holds at most about 320 KiB.
    assert!(grown_mib < 120, "RSS grew by {grown_mib} MiB");

    // A receiver that reads again finds what was queued, then why it was
    // cut off, then a policy close.
    let mut cut_off = 0;
    for mut b in receivers {
        let mut reason = None;
        loop {
            match tokio::time::timeout(WAIT, b.ws.next())
                .await
                .expect("in time")
            {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(ServerMessage::Error(e)) = ServerMessage::decode(t.as_str()) {
                        assert_eq!(e.code, ErrorCode::TooSlow, "{e:?}");
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    reason = frame.map(|f| f.code);
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            }
        }
        if reason == Some(CloseCode::Policy) {
            cut_off += 1;
        }
    }
    assert!(cut_off > 0, "no receiver was told it was cut off");
    drop(senders_done);
}

#[tokio::test]
async fn an_oversized_frame_is_answered_and_closed_with_1009_not_reset() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (_, _, token) = pair(&server).await;
    let request = server.ws_url(&token).into_client_request().unwrap();
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false)
        .await
        .unwrap();
    ws.send(Message::text(r#"{"type":"join","version":1}"#))
        .await
        .unwrap();
    let big = "z".repeat(1024 * 1024);
    ws.send(Message::text(big)).await.unwrap();
    let mut saw_error = false;
    let close = loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => {
                if let Ok(ServerMessage::Error(e)) = ServerMessage::decode(t.as_str()) {
                    saw_error |= e.code == ErrorCode::MessageTooLarge;
                }
            }
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("the connection failed instead of closing: {e}"),
            None => panic!("ended without a close frame"),
        }
    };
    assert!(saw_error, "message_too_large arrives before the close");
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Size));
}

#[tokio::test]
async fn only_hosts_the_server_is_for_are_answered() {
    let server = TestServer::start_with(config()).await.unwrap();
    let addr = server.addr();
    let ask = |host: Option<&str>, path: &str| {
        let head = match host {
            Some(h) => format!("GET {path} HTTP/1.1\r\nHost: {h}\r\n\r\n"),
            None => format!("GET {path} HTTP/1.0\r\n\r\n"),
        };
        async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            read_answer(&mut s).await
        }
    };
    let own = server.addr().to_string();
    let localhost = format!("localhost:{}", server.addr().port());
    assert_eq!(ask(Some(&own), "/").await.status, 200);
    assert_eq!(ask(Some(&localhost), "/").await.status, 200);
    assert_eq!(ask(Some("evil.example"), "/").await.status, 421);
    assert_eq!(ask(Some("evil.example"), "/api/rooms/x").await.status, 421);
    assert_eq!(ask(None, "/").await.status, 400);
    assert_eq!(ask(Some("evil.example"), "/healthz").await.status, 200);

    // Two Host headers are refused, whichever comes first.
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(
        format!("POST /api/rooms HTTP/1.1\r\nHost: {own}\r\nHost: evil.example\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(read_answer(&mut s).await.status, 400);

    // A created link names the host it was asked on.
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(
        format!("POST /api/rooms HTTP/1.1\r\nHost: {localhost}\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let answer = read_answer(&mut s).await;
    assert!(
        answer.body.contains(&format!("http://{localhost}/r/")),
        "{answer:?}"
    );

    // With a public URL, its host is answered too and links use it.
    let public = TestServer::start_with(Config {
        public_url: Some("https://call.example.org".into()),
        ..config()
    })
    .await
    .unwrap();
    let created: serde_json::Value = http()
        .post(public.url("/api/rooms"))
        .header("host", "call.example.org")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        created["url"]
            .as_str()
            .unwrap()
            .starts_with("https://call.example.org/r/"),
        "{created}"
    );
}

#[tokio::test]
async fn origins_must_match_scheme_host_and_port() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (_, _, token) = pair(&server).await;
    let url = server.ws_url(&token);
    let own = format!("http://{}", server.addr());
    assert!(Peer::connect_with(&url, Some(&own)).await.is_ok());
    for bad in [
        format!("https://{}", server.addr()),
        format!("http://127.0.0.1:{}", server.addr().port() + 1),
        "http://evil.example".to_owned(),
        "null".to_owned(),
    ] {
        match Peer::connect_with(&url, Some(&bad)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 403, "{bad}")
            }
            other => panic!("{bad}: expected 403, got {:?}", other.map(|_| ())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_every_client_and_ends_in_bounded_time() {
    let server = TestServer::start_with(Config {
        shutdown_timeout: Duration::from_secs(3),
        ..config()
    })
    .await
    .unwrap();
    let mut peers = Vec::new();
    for _ in 0..100 {
        let (a, b, _) = pair(&server).await;
        peers.push(a);
        peers.push(b);
    }
    // Also: a half-sent request, and a joined client that never reads.
    let mut half = TcpStream::connect(server.addr()).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x").await.unwrap();

    let started = Instant::now();
    let stopped = tokio::spawn(server.shutdown());
    let mut told = 0;
    for mut peer in peers {
        if let Ok(ServerMessage::Error(e)) = peer.next().await {
            told += usize::from(e.code == ErrorCode::Unavailable);
        }
    }
    assert_eq!(told, 200, "every participant is told the server is going");
    tokio::time::timeout(WAIT, stopped)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    eprintln!("shutdown with 200 clients took {took:?}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(closed_by_server(&mut half, Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_request_do_not_hold_the_shutdown() {
    // A long deadline, and request heads that may take as long: only
    // connections answering a request may hold the exit.
    let server = TestServer::start_with(Config {
        shutdown_timeout: Duration::from_secs(120),
        request_timeout: Duration::from_secs(120),
        ..config()
    })
    .await
    .unwrap();
    let mut half = TcpStream::connect(server.addr()).await.unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x").await.unwrap();
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr()).as_bytes())
        .await
        .unwrap();
    assert_eq!(read_answer(&mut idle).await.status, 200);

    let started = Instant::now();
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown does not wait for the deadline")
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(closed_by_server(&mut half, Duration::from_secs(5)).await);
    assert!(closed_by_server(&mut idle, Duration::from_secs(5)).await);
}
