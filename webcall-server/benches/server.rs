//! Server figures, printed (not a timed test):
//!
//! - rooms created per second, through the store alone and over HTTP;
//! - signaling relay latency between two real WebSocket clients over
//!   loopback, p50 and p99 over thousands of messages;
//! - server memory per idle connected participant at 1,000 and 10,000
//!   WebSocket connections (resident set of a separate server process),
//!   and so how many idle participants a GiB holds;
//! - under abuse, with the default limits (only the per-client ones lifted,
//!   since all load comes from one address): rooms held per MiB, the
//!   largest burst of candidates delivered intact to a peer that reads
//!   late, and the time from SIGTERM to exit with 1,000 joined clients and
//!   a half-sent HTTP request open.
//!
//! Run with: `cargo bench -p webcall-server --bench server --profile dev`
//! (append `-- latency`, `-- create`, `-- memory` or `-- abuse` for one
//! section)
//! (the dev profile keeps the shared build cache; dependencies are
//! optimised there, this crate is not, so figures are conservative).
//! 10,000 connections need about 10,100 open files in each process:
//! raise the limit first if `ulimit -n` is lower (`ulimit -n 20000`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webcall_core::protocol::{ClientMessage, CreatedRoom, PROTOCOL_VERSION, ServerMessage};
use webcall_core::room::{Creator, RoomConfig};
use webcall_core::time::Timestamp;
use webcall_server::Config;
use webcall_server::store::{MemoryStore, RoomStore};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CHILD_FLAG: &str = "--serve-child";
/// With [`CHILD_FLAG`]: keep the server's default limits (per-client ones
/// lifted) and stop on SIGTERM too, as the production binary does.
const DEFAULTS_FLAG: &str = "--default-limits";

fn main() {
    if std::env::args().any(|a| a == CHILD_FLAG) {
        serve_child();
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The clients run on one thread: their wake-ups stay out of the figures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Optional filters: `create`, `latency`, `memory` (default: all).
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| ["create", "latency", "memory", "abuse"].contains(&a.as_str()))
        .collect();
    let wanted = |s: &str| sections.is_empty() || sections.iter().any(|a| a == s);
    runtime.block_on(async {
        println!(
            "webcall-server figures ({} cores)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let server = ChildServer::start(false);
        if wanted("create") {
            store_create_rate().await;
            http_create_rate(server.addr).await;
        }
        if wanted("latency") {
            relay_latency(server.addr).await;
            echo_floor(server.floor).await;
        }
        drop(server);
        if wanted("memory") {
            for n in [1_000, 10_000] {
                let server = ChildServer::start(false);
                memory_per_participant(&server, n).await;
            }
        }
        if wanted("abuse") {
            rooms_per_mib(&ChildServer::start(true)).await;
            largest_intact_burst(&ChildServer::start(true)).await;
            sigterm_to_exit(ChildServer::start(true), 1_000).await;
        }
    });
}

/// The server process measured: the same `run` as production, on loopback.
fn serve_child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("LISTENING {}", listener.local_addr().expect("address"));
        // The floor: a bare WebSocket echo with the same buffers, no rooms.
        let floor = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("FLOOR {}", floor.local_addr().expect("address"));
        let echo = axum::Router::new().route(
            "/echo",
            axum::routing::get(|ws: axum::extract::ws::WebSocketUpgrade| async move {
                ws.read_buffer_size(4096)
                    .write_buffer_size(0)
                    .on_upgrade(|mut socket| async move {
                        while let Some(Ok(m)) = socket.recv().await {
                            if matches!(m, axum::extract::ws::Message::Text(_))
                                && socket.send(m).await.is_err()
                            {
                                break;
                            }
                        }
                    })
            }),
        );
        tokio::spawn(async move { axum::serve(floor, echo).await });
        let defaults = std::env::args().any(|a| a == DEFAULTS_FLAG);
        let config = if defaults {
            Config {
                ice_servers: vec![],
                // All load comes from 127.0.0.1: lift the per-client limits.
                create_rate_per_minute: 0,
                max_connections_per_client: 0,
                room: RoomConfig {
                    rooms_per_client: 0,
                    rooms_per_network: 0,
                    ..RoomConfig::default()
                },
                ..Config::default()
            }
        } else {
            Config {
                ice_servers: vec![],
                create_rate_per_minute: 0,
                max_connections: 50_000,
                // All load comes from 127.0.0.1: lift the per-client limits.
                max_connections_per_client: 0,
                room: RoomConfig {
                    max_rooms: 1_000_000,
                    rooms_per_client: 0,
                    rooms_per_network: 0,
                    ..RoomConfig::default()
                },
                // The per-connection message limit is policy, not cost: lift it
                // so the latency loop can run back to back.
                message_rate_per_second: 1_000_000,
                message_burst: 1_000_000,
                message_bytes_per_second: 1 << 30,
                message_bytes_burst: 1 << 30,
                ..Config::default()
            }
        };
        // Stop when the parent closes our standard input, or on SIGTERM.
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        webcall_server::run(listener, config, async move {
            tokio::select! {
                _ = stdin_closed => {}
                _ = term.recv() => {}
            }
        })
        .await
        .expect("server runs");
    });
    // The standard-input reader is blocked in a read that never ends while
    // the parent holds the pipe: do not wait for it, as dropping the
    // runtime would.
    runtime.shutdown_background();
}

struct ChildServer {
    child: Child,
    /// The webcall server.
    addr: SocketAddr,
    /// A bare WebSocket echo in the same process, for comparison.
    floor: SocketAddr,
}

impl ChildServer {
    fn start(default_limits: bool) -> Self {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .arg(CHILD_FLAG)
            .args(default_limits.then_some(DEFAULTS_FLAG))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = |prefix: &str| -> SocketAddr {
            let mut line = String::new();
            out.read_line(&mut line)
                .expect("server prints its addresses");
            line.trim()
                .strip_prefix(prefix)
                .expect("address line")
                .parse()
                .expect("address")
        };
        let addr = line("LISTENING ");
        let floor = line("FLOOR ");
        Self { child, addr, floor }
    }

    /// Resident memory of the server process, in KiB.
    fn rss_kib(&self) -> u64 {
        webcall_load::Rss::read(self.child.id()).expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn store_create_rate() {
    let n = 200_000;
    let store = MemoryStore::new(RoomConfig {
        max_rooms: n,
        ..RoomConfig::default()
    });
    let now = Timestamp::now();
    let start = Instant::now();
    for _ in 0..n {
        store.create(now, Creator::default()).await.expect("room");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rooms created, store only:      {:>9.0} /s  ({n} rooms in {secs:.2} s)",
        n as f64 / secs
    );
}

async fn http_create_rate(addr: SocketAddr) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/rooms");
    let n = 5_000;
    let start = Instant::now();
    for _ in 0..n {
        let r = client.post(&url).send().await.expect("POST");
        assert_eq!(r.status(), 201);
        r.bytes().await.expect("body");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rooms created, HTTP sequential: {:>9.0} /s  ({n} requests, one keep-alive connection)",
        n as f64 / secs
    );

    let tasks = 16;
    let start = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (client, url) = (client.clone(), url.clone());
        handles.push(tokio::spawn(async move {
            for _ in 0..n / tasks {
                let r = client.post(&url).send().await.expect("POST");
                assert_eq!(r.status(), 201);
                r.bytes().await.expect("body");
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "rooms created, HTTP {tasks} at once: {:>9.0} /s",
        n as f64 / secs
    );
}

async fn create_room(client: &reqwest::Client, addr: SocketAddr) -> CreatedRoom {
    client
        .post(format!("http://{addr}/api/rooms"))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("room")
}

async fn connect(addr: SocketAddr, token: &str) -> Ws {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://{addr}/ws/rooms/{token}");
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .expect("connect");
    ws
}

async fn recv(ws: &mut Ws) -> ServerMessage {
    loop {
        match ws.next().await.expect("open").expect("frame") {
            Message::Text(t) => return ServerMessage::decode(t.as_str()).expect("decodes"),
            Message::Close(_) => panic!("closed"),
            _ => continue,
        }
    }
}

async fn join(ws: &mut Ws) {
    let join = ClientMessage::Join {
        version: PROTOCOL_VERSION,
        resume: None,
    };
    ws.send(Message::text(join.encode()))
        .await
        .expect("send join");
    match recv(ws).await {
        ServerMessage::Joined(_) => {}
        other => panic!("expected joined, got {other:?}"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn relay_latency(addr: SocketAddr) {
    let client = reqwest::Client::new();
    let room = create_room(&client, addr).await;
    let mut a = connect(addr, room.token.as_str()).await;
    join(&mut a).await;
    let mut b = connect(addr, room.token.as_str()).await;
    join(&mut b).await;
    recv(&mut a).await; // peer_joined

    // A typical trickled candidate.
    let candidate = r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
    let rounds = 10_000;
    let mut one_way = Vec::with_capacity(rounds * 2);
    let start = Instant::now();
    for i in 0..rounds {
        let (from, to) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let sent = Instant::now();
        from.send(Message::text(candidate)).await.expect("send");
        match recv(to).await {
            ServerMessage::Candidate { .. } => one_way.push(sent.elapsed()),
            ServerMessage::Error(e) => panic!("relay refused: {e:?}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let total = start.elapsed();
    one_way.sort_unstable();
    println!(
        "relay latency, one hop (client send -> other client receive, loopback, {} messages over {:.1} s): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        one_way.len(),
        total.as_secs_f64(),
        percentile(&one_way, 0.50).as_secs_f64() * 1e6,
        percentile(&one_way, 0.99).as_secs_f64() * 1e6,
        one_way.last().expect("samples").as_secs_f64() * 1e6,
    );
}

/// The same message through a bare echo endpoint (one client write, one
/// server read and write, one client read: the syscalls and wake-ups of
/// one relay hop without any room logic).
async fn echo_floor(addr: SocketAddr) {
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/echo"),
        Some(config),
        true,
    )
    .await
    .expect("connect");
    let candidate = r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#;
    let mut times = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let sent = Instant::now();
        ws.send(Message::text(candidate)).await.expect("send");
        loop {
            if let Message::Text(_) = ws.next().await.expect("open").expect("frame") {
                break;
            }
        }
        times.push(sent.elapsed());
    }
    times.sort_unstable();
    println!(
        "floor, bare WebSocket echo in the same server process ({} messages): p50 {:.0} µs, p99 {:.0} µs",
        times.len(),
        percentile(&times, 0.50).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    );
}

async fn memory_per_participant(server: &ChildServer, n: usize) {
    let addr = server.addr;
    let client = reqwest::Client::new();
    // Warm the server up (first requests allocate pools), then measure.
    for _ in 0..10 {
        create_room(&client, addr).await;
    }
    let mut warm = connect(addr, create_room(&client, addr).await.token.as_str()).await;
    join(&mut warm).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib();

    let mut tokens = Vec::with_capacity(n / 2);
    for _ in 0..n / 2 {
        tokens.push(create_room(&client, addr).await.token.to_string());
    }
    let start = Instant::now();
    let clients: Vec<Ws> = futures_util::stream::iter((0..n).map(|i| {
        let token = tokens[i / 2].clone();
        async move {
            let mut ws = connect(addr, &token).await;
            join(&mut ws).await;
            ws
        }
    }))
    .buffer_unordered(64)
    .collect()
    .await;
    let connect_secs = start.elapsed().as_secs_f64();
    // Idle clients keep reading, so they answer pings like browsers do.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} }))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = server.rss_kib();
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!(
        "memory, {n:>6} idle participants ({} rooms, joined in {connect_secs:.1} s): server RSS {before} KiB -> {after} KiB, {:.1} KiB per participant, about {:.0} idle participants per GiB",
        n / 2,
        per / 1024.0,
        (1u64 << 30) as f64 / per.max(1.0),
    );
    for r in readers {
        r.abort();
    }
    drop(warm);
}

/// Rooms held per MiB of server memory: 50,000 rooms created over HTTP
/// (never joined), resident set before and after.
async fn rooms_per_mib(server: &ChildServer) {
    let addr = server.addr;
    let client = reqwest::Client::new();
    for _ in 0..100 {
        create_room(&client, addr).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib();
    let n = 50_000;
    let tasks = 16;
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                for _ in 0..n / tasks {
                    create_room(&client, addr).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = server.rss_kib();
    let mib = after.saturating_sub(before) as f64 / 1024.0;
    println!(
        "abuse, rooms held: {n} rooms created in {secs:.1} s, server RSS {before} KiB -> {after} KiB, about {:.0} rooms per MiB",
        n as f64 / mib.max(1.0 / 1024.0)
    );
}

/// Bursts of candidates sent back to back while the receiving peer reads
/// nothing; then it reads. The largest burst that arrives whole, in order,
/// with the receiver still connected, at the default limits.
async fn largest_intact_burst(server: &ChildServer) {
    let addr = server.addr;
    let client = reqwest::Client::new();
    let mut largest = 0;
    let mut report = Vec::new();
    for burst in [50usize, 100, 150, 200, 250, 400] {
        let room = create_room(&client, addr).await;
        let mut a = connect(addr, room.token.as_str()).await;
        join(&mut a).await;
        let mut b = connect(addr, room.token.as_str()).await;
        join(&mut b).await;
        recv(&mut a).await; // peer_joined
        // The sender's `join` took one frame of its burst allowance: let
        // the bucket refill (50 a second), so the burst is the whole of it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 0..burst {
            let candidate = format!(
                r#"{{"type":"candidate","candidate":{{"candidate":"candidate:{i} 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}}}"#
            );
            a.send(Message::text(candidate)).await.expect("send");
        }
        let mut next = 0;
        let mut in_order = true;
        let mut closed = false;
        loop {
            match tokio::time::timeout(Duration::from_secs(3), b.next()).await {
                Err(_) => break,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {
                    closed = true;
                    break;
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    if let Ok(ServerMessage::Candidate { candidate, .. }) =
                        ServerMessage::decode(t.as_str())
                    {
                        let tag = format!("candidate:{next} ");
                        in_order &= candidate.is_some_and(|c| c.candidate.starts_with(&tag));
                        next += 1;
                        if next == burst {
                            break;
                        }
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        }
        let intact = next == burst && in_order && !closed;
        if intact {
            largest = largest.max(burst);
        }
        report.push(format!(
            "{burst}: {next} delivered{}{}",
            if in_order { "" } else { " out of order" },
            if closed { ", receiver closed" } else { "" }
        ));
    }
    println!(
        "abuse, bursts to a late reader ({}): largest delivered intact {largest}",
        report.join("; ")
    );
}

/// SIGTERM with `n` joined clients, one idle keep-alive connection and one
/// half-sent request head: the time until the process exits, and how many
/// clients were told `unavailable` before the close.
async fn sigterm_to_exit(mut server: ChildServer, n: usize) {
    use tokio::io::AsyncWriteExt;
    use webcall_core::protocol::ErrorCode;

    let addr = server.addr;
    let client = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(n / 2);
    for _ in 0..n / 2 {
        tokens.push(create_room(&client, addr).await.token.to_string());
    }
    let clients: Vec<Ws> = futures_util::stream::iter((0..n).map(|i| {
        let token = tokens[i / 2].clone();
        async move {
            let mut ws = connect(addr, &token).await;
            join(&mut ws).await;
            ws
        }
    }))
    .buffer_unordered(64)
    .collect()
    .await;
    let told: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Text(t) = m
                        && let Ok(ServerMessage::Error(e)) = ServerMessage::decode(t.as_str())
                        && e.code == ErrorCode::Unavailable
                    {
                        // Read on, as a browser does, so the close is answered.
                        while let Some(Ok(_)) = ws.next().await {}
                        return true;
                    }
                }
                false
            })
        })
        .collect();
    let mut half_sent = TcpStream::connect(addr).await.expect("connect");
    half_sent
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let idle = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = server.child.id().to_string();
    let start = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM {pid}");
    let exit = loop {
        if let Ok(Some(_)) = server.child.try_wait() {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "server still running a minute after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut unavailable = 0;
    for t in told {
        if tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .is_ok_and(|r| r.unwrap_or(false))
        {
            unavailable += 1;
        }
    }
    drop((half_sent, idle));
    println!(
        "abuse, shutdown: SIGTERM -> exit {:.0} ms with {n} joined clients, a half-sent request and an idle connection open; {unavailable} of {n} clients told unavailable",
        exit.as_secs_f64() * 1e3
    );
}
