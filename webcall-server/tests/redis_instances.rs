//! Several webcall-server instances sharing one real `redis-server`: a
//! call whose two participants sit on different instances, rooms that
//! outlive the instance that made them, seats that are exact across
//! instances, a rolling restart that keeps seats, a killed instance whose
//! seats are held and then freed, and Redis going away and coming back.

mod server_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use server_support::{Peer, WAIT, candidate};
use webcall_core::protocol::{ClientMessage, ErrorCode, LeaveReason, ServerMessage};
use webcall_server::Config;
use webcall_testkit::{RedisServer, TestServer, wait_until};

/// An instance's configuration: the test kit's, rooms on `redis` under
/// `prefix` (one per test, so tests can share nothing by accident).
fn shared(redis: &RedisServer, prefix: &str) -> Config {
    Config {
        redis_url: Some(redis.url()),
        redis_prefix: prefix.to_owned(),
        ..server_support::config()
    }
}

fn prefix() -> String {
    format!("t{:016x}:", getrandom::u64().unwrap())
}

async fn two_instances(redis: &RedisServer, config: Config) -> (TestServer, TestServer) {
    let a = TestServer::start_with(config.clone()).await.unwrap();
    let b = TestServer::start_with(config).await.unwrap();
    for server in [&a, &b] {
        wait_ready(server).await;
    }
    let _ = redis;
    (a, b)
}

async fn wait_ready(server: &TestServer) {
    wait_until("the instance is ready", WAIT, || async {
        Ok(server.request("GET", "/readyz", None).await?.status == 200)
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_spans_two_instances() {
    let redis = RedisServer::start().unwrap();
    let (a, b) = two_instances(&redis, shared(&redis, &prefix())).await;
    // Created through one instance, looked up through the other.
    let room = a.create_room().await.unwrap();
    let token = room.token.to_string();
    let info = b
        .request("GET", &format!("/api/rooms/{token}"), None)
        .await
        .unwrap();
    assert_eq!(info.status, 200, "{}", info.text());

    let mut first = Peer::connect(&a.ws_url(&token)).await;
    let first_joined = first.join(None).await;
    let mut second = Peer::connect(&b.ws_url(&token)).await;
    let second_joined = second.join(None).await;
    assert_eq!(second_joined.peer.as_ref(), Some(&first_joined.you));
    assert!(second_joined.initiator);
    match first.recv().await {
        ServerMessage::PeerJoined { peer, resumed } => {
            assert_eq!(peer, second_joined.you);
            assert!(!resumed);
        }
        other => panic!("expected peer_joined, got {other:?}"),
    }

    // Offer, candidates and answer cross the instances, in order.
    second
        .send(ClientMessage::Offer {
            sdp: "offer 1".into(),
        })
        .await;
    for n in 0..20 {
        second.send(candidate(n)).await;
    }
    match first.recv().await {
        ServerMessage::Offer { from, sdp } => {
            assert_eq!(from, second_joined.you);
            assert_eq!(sdp, "offer 1");
        }
        other => panic!("expected the offer, got {other:?}"),
    }
    for n in 0..20 {
        let expected = match candidate(n) {
            ClientMessage::Candidate { candidate } => candidate,
            _ => unreachable!(),
        };
        match first.recv().await {
            ServerMessage::Candidate { candidate, .. } => assert_eq!(candidate, expected),
            other => panic!("expected candidate {n}, got {other:?}"),
        }
    }
    first
        .send(ClientMessage::Answer {
            sdp: "answer 1".into(),
        })
        .await;
    match second.recv().await {
        ServerMessage::Answer { from, sdp } => {
            assert_eq!(from, first_joined.you);
            assert_eq!(sdp, "answer 1");
        }
        other => panic!("expected the answer, got {other:?}"),
    }

    // A third person, on either instance, finds the room full.
    for server in [&a, &b] {
        let mut third = Peer::connect(&server.ws_url(&token)).await;
        third
            .send(ClientMessage::Join {
                version: webcall_core::protocol::PROTOCOL_VERSION,
                resume: None,
            })
            .await;
        third.expect_fatal(ErrorCode::RoomFull).await;
    }

    // Leaving is seen across instances at once.
    first.send(ClientMessage::Bye).await;
    match second.recv().await {
        ServerMessage::PeerLeft { peer, reason } => {
            assert_eq!(peer, first_joined.you);
            assert_eq!(reason, LeaveReason::Bye);
        }
        other => panic!("expected peer_left, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_never_seat_three() {
    let redis = RedisServer::start().unwrap();
    let (a, b) = two_instances(&redis, shared(&redis, &prefix())).await;
    for _ in 0..3 {
        let token = a.create_room().await.unwrap().token.to_string();
        let mut tasks = Vec::new();
        for n in 0..8 {
            let url = if n % 2 == 0 {
                a.ws_url(&token)
            } else {
                b.ws_url(&token)
            };
            tasks.push(tokio::spawn(async move {
                let mut peer = Peer::connect(&url).await;
                peer.send(ClientMessage::Join {
                    version: webcall_core::protocol::PROTOCOL_VERSION,
                    resume: None,
                })
                .await;
                let seated = matches!(peer.recv().await, ServerMessage::Joined(_));
                (seated, peer)
            }));
        }
        let mut seated = 0;
        let mut peers = Vec::new();
        for task in tasks {
            let (ok, peer) = task.await.unwrap();
            seated += usize::from(ok);
            peers.push(peer);
        }
        assert_eq!(seated, 2, "exactly two of eight racing joins are seated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_keeps_rooms_and_seats() {
    let redis = RedisServer::start().unwrap();
    let config = shared(&redis, &prefix());
    let (a, b) = two_instances(&redis, config.clone()).await;
    let room = a.create_room().await.unwrap();
    let token = room.token.to_string();
    let mut first = Peer::connect(&a.ws_url(&token)).await;
    let first_joined = first.join(None).await;
    let mut second = Peer::connect(&b.ws_url(&token)).await;
    second.join(None).await;
    assert!(matches!(
        first.recv().await,
        ServerMessage::PeerJoined { .. }
    ));

    // Instance a goes down for a deploy: its participant is asked to come
    // back, the other sees at most "reconnecting".
    let addr = a.addr();
    let stopping = tokio::spawn(a.shutdown());
    let after_ms = match first.recv().await {
        ServerMessage::Reconnect { after_ms } => after_ms,
        other => panic!("expected reconnect, got {other:?}"),
    };
    assert!(after_ms <= 5_000, "{after_ms}");
    first.expect_closed().await;
    stopping.await.unwrap().unwrap();
    match second.recv().await {
        ServerMessage::PeerReconnecting { peer, .. } => assert_eq!(peer, first_joined.you),
        other => panic!("expected peer_reconnecting, got {other:?}"),
    }

    // The new version of instance a, on the same address: the room made
    // before the restart is there, and the seat is taken back.
    let a = TestServer::start_at(addr, config).await.unwrap();
    wait_ready(&a).await;
    let mut back = Peer::connect(&a.ws_url(&token)).await;
    let resumed = back.join(Some(first_joined.resume.clone())).await;
    assert!(resumed.resumed);
    assert_eq!(resumed.you, first_joined.you);
    match second.recv().await {
        ServerMessage::PeerJoined { peer, resumed } => {
            assert_eq!(peer, first_joined.you);
            assert!(resumed);
        }
        other => panic!("expected peer_joined (resumed), got {other:?}"),
    }
    back.send(ClientMessage::Offer {
        sdp: "restart".into(),
    })
    .await;
    assert!(matches!(second.recv().await, ServerMessage::Offer { sdp, .. } if sdp == "restart"));
}

/// The server binary on a port it picks itself (read from the line it
/// prints), with rooms on `redis`, killed on drop.
struct Process(Child, u16);

impl Process {
    fn start(redis: &RedisServer, prefix: &str, seat_grace: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webcall-server"))
            .args(["--listen", "127.0.0.1:0"])
            .args(["--store", &redis.url(), "--redis-prefix", prefix])
            .args(["--seat-grace", seat_grace, "--ice-servers", "[]"])
            .env("RUST_LOG", "webcall_server=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().expect("the server's piped stdout");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // Reads the port from "webcall-server listening on http://ADDR",
        // then keeps draining what else the server prints.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line
                    .strip_prefix("webcall-server listening on http://")
                    .and_then(|addr| addr.rsplit(':').next())
                    .and_then(|port| port.trim().parse::<u16>().ok())
                {
                    let _ = port_tx.send(port);
                }
            }
        });
        let Ok(port) = port_rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server binary did not print the address it listens on within 60 s");
        };
        Self(child, port)
    }

    fn ws_url(&self, token: &str) -> String {
        format!("ws://127.0.0.1:{}/ws/rooms/{token}", self.1)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_s_seats_are_held_then_freed() {
    let redis = RedisServer::start().unwrap();
    let prefix = prefix();
    let config = Config {
        room: webcall_core::room::RoomConfig {
            seat_grace: Duration::from_secs(3),
            ..shared(&redis, &prefix).room
        },
        ..shared(&redis, &prefix)
    };
    let a = TestServer::start_with(config).await.unwrap();
    wait_ready(&a).await;
    let mut doomed = Process::start(&redis, &prefix, "3s");
    let room = a.create_room().await.unwrap();
    let token = room.token.to_string();
    let mut first = Peer::connect(&a.ws_url(&token)).await;
    first.join(None).await;
    // The binary needs a moment to listen.
    let url = doomed.ws_url(&token);
    let mut second = None;
    for _ in 0..200 {
        if let Ok(peer) = Peer::connect_with(&url, None).await {
            second = Some(peer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut second = second.expect("the server binary accepts connections");
    let second_joined = second.join(None).await;
    assert!(matches!(
        first.recv().await,
        ServerMessage::PeerJoined { .. }
    ));

    // SIGKILL: no shutdown, no goodbye. Its heartbeat lapses; another
    // instance holds the seat, then frees it after the grace.
    let _ = doomed.0.kill();
    let _ = doomed.0.wait();
    let started = std::time::Instant::now();
    match first.recv().await {
        ServerMessage::PeerReconnecting { peer, .. } => assert_eq!(peer, second_joined.you),
        other => panic!("expected peer_reconnecting, got {other:?}"),
    }
    match first.recv().await {
        ServerMessage::PeerLeft { peer, reason } => {
            assert_eq!(peer, second_joined.you);
            assert_eq!(reason, LeaveReason::Disconnected);
        }
        other => panic!("expected peer_left, got {other:?}"),
    }
    eprintln!(
        "a killed instance's seat was freed {:?} after the kill",
        started.elapsed()
    );
    // The seat is free: someone can take it.
    let mut newcomer = Peer::connect(&a.ws_url(&token)).await;
    newcomer.join(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_means_503_and_not_ready_then_all_comes_back() {
    let mut redis = RedisServer::start().unwrap();
    let (a, b) = two_instances(&redis, shared(&redis, &prefix())).await;
    let room = a.create_room().await.unwrap();
    let token = room.token.to_string();
    let mut first = Peer::connect(&a.ws_url(&token)).await;
    first.join(None).await;

    redis.stop();
    let refused = a.request("POST", "/api/rooms", None).await.unwrap();
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("unavailable"), "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("5"));
    let lookup = b
        .request("GET", &format!("/api/rooms/{token}"), None)
        .await
        .unwrap();
    assert_eq!(lookup.status, 503);
    assert_eq!(
        a.request("GET", "/healthz", None).await.unwrap().status,
        200
    );
    let ready = a.request("GET", "/readyz", None).await.unwrap();
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("\"ready\":false"), "{}", ready.text());
    // A message the room cannot take while Redis is away: the seat outlives
    // the blip, so the client is asked to come back, not told the server
    // is gone (which would end its call).
    first
        .send(ClientMessage::Offer {
            sdp: "while redis is away".into(),
        })
        .await;
    match first.recv().await {
        ServerMessage::Reconnect { after_ms } => assert!(after_ms <= 5_000, "{after_ms}"),
        other => panic!("expected reconnect, got {other:?}"),
    }
    first.expect_closed().await;

    redis.start_again().unwrap();
    // Redis restarted empty (no persistence here): the instances come
    // back by themselves; new rooms work across them again.
    for server in [&a, &b] {
        wait_ready(server).await;
    }
    // Ready means Redis answers a ping; an instance whose link is still
    // backing off may refuse one more call (503 with Retry-After, which a
    // client honours): wait until b creates rooms again.
    wait_until("b creates rooms again", WAIT, || async {
        Ok(b.request("POST", "/api/rooms", None).await?.status == 201)
    })
    .await
    .unwrap();
    let room = b.create_room().await.unwrap();
    let token = room.token.to_string();
    let mut one = Peer::connect(&a.ws_url(&token)).await;
    one.join(None).await;
    let mut two = Peer::connect(&b.ws_url(&token)).await;
    two.join(None).await;
    assert!(matches!(one.recv().await, ServerMessage::PeerJoined { .. }));
    two.send(ClientMessage::Offer {
        sdp: "again".into(),
    })
    .await;
    assert!(matches!(one.recv().await, ServerMessage::Offer { sdp, .. } if sdp == "again"));
}
