//! The signaling WebSocket against a real server on loopback, with real
//! WebSocket clients: relay, seats, resume, errors, limits and liveness.

mod server_support;

use std::time::Duration;

use futures_util::SinkExt;
use server_support::{Peer, WAIT, candidate, config, http, pair, pair_joined};
use tokio_tungstenite::tungstenite::Message;
use webcall_core::protocol::{
    ClientMessage, ErrorCode, IceServer, IceTransportPolicy, LeaveReason, MAX_CLIENT_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage,
};
use webcall_core::room::RoomConfig;
use webcall_core::token::RoomToken;
use webcall_server::Config;
use webcall_testkit::{TestServer, wait_until};

/// A short pause for negative checks, only after delivery was shown to work.
const QUIET: Duration = Duration::from_millis(300);

async fn room_participants(server: &TestServer, token: &str) -> u8 {
    let info: webcall_core::protocol::RoomInfo = http()
        .get(server.url(&format!("/api/rooms/{token}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    info.participants
}

#[tokio::test(start_paused = true)]
async fn two_peers_meet_and_relay_only_to_each_other() {
    let ice = vec![IceServer {
        urls: vec!["turn:127.0.0.1:3478".into()],
        username: Some("u".into()),
        credential: Some("p".into()),
    }];
    let server = TestServer::start_with(Config {
        ice_servers: ice.clone(),
        ice_transport_policy: IceTransportPolicy::Relay,
        ..config()
    })
    .await
    .unwrap();
    let room = server.create_room().await.unwrap();
    let token = room.token.to_string();

    let mut a = Peer::connect(&server.ws_url(&token)).await;
    let ja = a.join(None).await;
    assert_eq!(ja.version, PROTOCOL_VERSION);
    assert_eq!(ja.peer, None);
    assert!(!ja.initiator && ja.polite);
    assert_eq!(ja.ice_servers, ice);
    assert_eq!(ja.ice_transport_policy, IceTransportPolicy::Relay);
    assert_eq!(ja.capacity, 2);
    assert_eq!(ja.expires_at, room.expires_at);

    // Alone: nothing to relay to.
    a.send(ClientMessage::Offer {
        sdp: "v=0\r\n".into(),
    })
    .await;
    let e = a.recv_error().await;
    assert_eq!((e.code, e.fatal), (ErrorCode::NoPeer, false));

    let mut b = Peer::connect(&server.ws_url(&token)).await;
    let jb = b.join(None).await;
    assert_eq!(jb.peer.as_ref(), Some(&ja.you));
    assert!(jb.initiator && !jb.polite);
    assert_ne!(jb.resume, ja.resume);
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined {
            peer: jb.you.clone(),
            resumed: false
        }
    );
    assert_eq!(room_participants(&server, &token).await, 2);

    // A bystander in another room.
    let (mut c, mut d, _) = pair(&server).await;

    b.send(ClientMessage::Offer {
        sdp: "offer-sdp".into(),
    })
    .await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Offer {
            from: jb.you.clone(),
            sdp: "offer-sdp".into()
        }
    );
    a.send(ClientMessage::Answer {
        sdp: "answer-sdp".into(),
    })
    .await;
    assert_eq!(
        b.recv().await,
        ServerMessage::Answer {
            from: ja.you.clone(),
            sdp: "answer-sdp".into()
        }
    );
    for n in 0..5 {
        a.send(candidate(n)).await;
        b.send(candidate(100 + n)).await;
    }
    for n in 0..5 {
        let ClientMessage::Candidate { candidate: sent } = candidate(n) else {
            unreachable!()
        };
        assert_eq!(
            b.recv().await,
            ServerMessage::Candidate {
                from: ja.you.clone(),
                candidate: sent
            }
        );
        let ClientMessage::Candidate { candidate: sent } = candidate(100 + n) else {
            unreachable!()
        };
        assert_eq!(
            a.recv().await,
            ServerMessage::Candidate {
                from: jb.you.clone(),
                candidate: sent
            }
        );
    }
    a.send(ClientMessage::Candidate { candidate: None }).await;
    assert_eq!(
        b.recv().await,
        ServerMessage::Candidate {
            from: ja.you.clone(),
            candidate: None
        }
    );

    // The other room heard nothing, and still works.
    c.expect_quiet(QUIET).await;
    d.send(ClientMessage::Offer { sdp: "x".into() }).await;
    assert!(matches!(c.recv().await, ServerMessage::Offer { .. }));
    a.expect_quiet(QUIET).await;
    b.expect_quiet(QUIET).await;
}

#[tokio::test(start_paused = true)]
async fn a_third_person_is_refused_with_room_full() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, mut b, token) = pair(&server).await;
    let mut c = Peer::connect(&server.ws_url(&token)).await;
    c.send(ClientMessage::Join {
        version: PROTOCOL_VERSION,
        resume: None,
    })
    .await;
    c.expect_fatal(ErrorCode::RoomFull).await;
    // The two inside notice nothing and keep talking.
    b.send(ClientMessage::Offer { sdp: "o".into() }).await;
    assert!(matches!(a.recv().await, ServerMessage::Offer { .. }));
    b.expect_quiet(QUIET).await;
    assert_eq!(room_participants(&server, &token).await, 2);
}

#[tokio::test(start_paused = true)]
async fn resume_takes_the_seat_back_and_the_old_socket_is_replaced() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, mut b, token, jb) = pair_joined(&server).await;

    // B reloads: a new socket with the secret while the old one is still open.
    let mut b2 = Peer::connect(&server.ws_url(&token)).await;
    let jb2 = b2.join(Some(jb.resume.clone())).await;
    assert_eq!(jb2.you, jb.you);
    assert!(jb2.initiator);
    b.expect_fatal(ErrorCode::Replaced).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined {
            peer: jb.you.clone(),
            resumed: true
        }
    );
    a.expect_quiet(QUIET).await;
    assert_eq!(room_participants(&server, &token).await, 2);

    // The new socket relays.
    b2.send(ClientMessage::Offer {
        sdp: "again".into(),
    })
    .await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Offer {
            from: jb.you.clone(),
            sdp: "again".into()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_connection_holds_the_seat_and_a_resume_after_the_close_was_noticed_gets_it_back()
{
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, b, token, jb) = pair_joined(&server).await;

    // The TCP connection ends without a close frame, and the server
    // notices: A hears that B is reconnecting, not that B left.
    drop(b);
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerReconnecting {
            peer: jb.you.clone(),
            leaving: false,
        }
    );
    assert_eq!(room_participants(&server, &token).await, 2, "seat held");

    // Nobody else can take the held seat.
    let mut c = Peer::connect(&server.ws_url(&token)).await;
    c.send(ClientMessage::Join {
        version: PROTOCOL_VERSION,
        resume: None,
    })
    .await;
    c.expect_fatal(ErrorCode::RoomFull).await;

    // B comes back with its secret: same seat, and A sees a return.
    let mut b2 = Peer::connect(&server.ws_url(&token)).await;
    let jb2 = b2.join(Some(jb.resume.clone())).await;
    assert_eq!(jb2.you, jb.you, "the same participant");
    assert!(jb2.resumed);
    assert!(jb2.initiator);
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerJoined {
            peer: jb.you.clone(),
            resumed: true
        }
    );
    b2.send(ClientMessage::Offer { sdp: "x".into() }).await;
    assert!(matches!(a.recv().await, ServerMessage::Offer { .. }));
    a.expect_quiet(QUIET).await;
    assert_eq!(room_participants(&server, &token).await, 2);
}

#[tokio::test(start_paused = true)]
async fn leaving_then_closing_is_reported_as_left_after_the_leave_grace() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, mut b, token, jb) = pair_joined(&server).await;

    // A tab being closed: `leaving`, then the socket goes.
    b.send(ClientMessage::Leaving).await;
    drop(b);
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerReconnecting {
            peer: jb.you.clone(),
            leaving: true,
        }
    );
    let noticed = tokio::time::Instant::now();
    assert_eq!(
        a.recv().await,
        ServerMessage::PeerLeft {
            peer: jb.you.clone(),
            reason: LeaveReason::Disconnected
        }
    );
    let held = noticed.elapsed();
    assert!(
        held >= Duration::from_millis(2_500) && held < Duration::from_secs(5),
        "left after {held:?}, the leave grace is 3 s"
    );
    assert_eq!(room_participants(&server, &token).await, 1);

    // The seat is gone: the secret now gives an ordinary join.
    let mut b2 = Peer::connect(&server.ws_url(&token)).await;
    let jb2 = b2.join(Some(jb.resume.clone())).await;
    assert_ne!(jb2.you, jb.you);
    assert!(!jb2.resumed);
}

#[tokio::test(start_paused = true)]
async fn the_seat_grace_is_configurable_and_ends_in_peer_left() {
    let server = TestServer::start_with(Config {
        room: RoomConfig {
            seat_grace: Duration::from_secs(1),
            rooms_per_client: 0,
            rooms_per_network: 0,
            ..RoomConfig::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let (mut a, b, _) = pair(&server).await;
    drop(b);
    assert!(matches!(
        a.recv().await,
        ServerMessage::PeerReconnecting { .. }
    ));
    let noticed = tokio::time::Instant::now();
    assert!(matches!(
        a.recv().await,
        ServerMessage::PeerLeft {
            reason: LeaveReason::Disconnected,
            ..
        }
    ));
    let held = noticed.elapsed();
    assert!(
        held >= Duration::from_millis(700) && held < Duration::from_secs(3),
        "left after {held:?}, the seat grace is 1 s"
    );
}

#[tokio::test(start_paused = true)]
async fn bye_tells_the_other_peer_and_closes() {
    let server = TestServer::start_with(config()).await.unwrap();
    let room = server.create_room().await.unwrap();
    let token = room.token.to_string();
    let mut a = Peer::connect(&server.ws_url(&token)).await;
    let ja = a.join(None).await;
    let mut b = Peer::connect(&server.ws_url(&token)).await;
    b.join(None).await;
    a.recv().await;

    a.send(ClientMessage::Bye).await;
    a.expect_closed().await;
    assert_eq!(
        b.recv().await,
        ServerMessage::PeerLeft {
            peer: ja.you,
            reason: LeaveReason::Bye
        }
    );
    assert_eq!(room_participants(&server, &token).await, 1);
}

#[tokio::test(start_paused = true)]
async fn unknown_malformed_and_expired_tokens_get_room_not_found() {
    let server = TestServer::start_with(Config {
        room: RoomConfig {
            ttl: Duration::from_secs(1),
            ..RoomConfig::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let unknown = RoomToken::generate().unwrap().to_string();
    for token in [unknown.as_str(), "abc", "%2e%2e"] {
        let mut p = Peer::connect(&server.ws_url(token)).await;
        p.expect_fatal(ErrorCode::RoomNotFound).await;
    }

    let room = server.create_room().await.unwrap();
    let token = room.token.to_string();
    wait_until("the room expires", WAIT, || async {
        http()
            .get(server.url(&format!("/api/rooms/{token}")))
            .send()
            .await
            .unwrap()
            .status()
            == 404
    })
    .await
    .unwrap();
    let mut p = Peer::connect(&server.ws_url(&token)).await;
    p.expect_fatal(ErrorCode::RoomNotFound).await;
}

#[tokio::test(start_paused = true)]
async fn a_room_that_expires_during_the_call_closes_with_room_expired() {
    let server = TestServer::start_with(Config {
        room: RoomConfig {
            ttl: Duration::from_secs(3),
            ..RoomConfig::default()
        },
        sweep_interval: Duration::from_millis(200),
        ..config()
    })
    .await
    .unwrap();
    let (mut a, mut b, _) = pair(&server).await;
    a.expect_fatal(ErrorCode::RoomExpired).await;
    b.expect_fatal(ErrorCode::RoomExpired).await;
}

#[tokio::test(start_paused = true)]
async fn bad_frames_get_bad_message_and_the_connection_stays() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, mut b, _) = pair(&server).await;
    for junk in [
        "not json",
        "[]",
        "42",
        r#"{"type":"dance"}"#,
        r#"{"type":"offer"}"#,
        r#"{"sdp":"x"}"#,
        "",
    ] {
        a.send_text(junk).await;
        let e = a.recv_error().await;
        assert_eq!((e.code, e.fatal), (ErrorCode::BadMessage, false), "{junk}");
    }
    a.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let e = a.recv_error().await;
    assert_eq!((e.code, e.fatal), (ErrorCode::BadMessage, false));

    a.send(ClientMessage::Join {
        version: PROTOCOL_VERSION,
        resume: None,
    })
    .await;
    let e = a.recv_error().await;
    assert_eq!((e.code, e.fatal), (ErrorCode::AlreadyJoined, false));

    // Still seated and relaying; the peer saw none of it.
    a.send(ClientMessage::Offer { sdp: "fine".into() }).await;
    assert!(matches!(b.recv().await, ServerMessage::Offer { sdp, .. } if sdp == "fine"));
    b.expect_quiet(QUIET).await;
}

#[tokio::test(start_paused = true)]
async fn messages_before_join_get_not_joined() {
    let server = TestServer::start_with(config()).await.unwrap();
    let room = server.create_room().await.unwrap();
    let mut p = Peer::connect(&server.ws_url(room.token.as_str())).await;
    for m in [
        ClientMessage::Offer { sdp: "x".into() },
        candidate(1),
        ClientMessage::Bye,
    ] {
        p.send(m).await;
        let e = p.recv_error().await;
        assert_eq!((e.code, e.fatal), (ErrorCode::NotJoined, false));
    }
    assert_eq!(room_participants(&server, room.token.as_str()).await, 0);
    p.join(None).await;
}

#[tokio::test(start_paused = true)]
async fn unsupported_versions_are_refused() {
    let server = TestServer::start_with(config()).await.unwrap();
    let room = server.create_room().await.unwrap();
    let mut p = Peer::connect(&server.ws_url(room.token.as_str())).await;
    p.send(ClientMessage::Join {
        version: 99,
        resume: None,
    })
    .await;
    p.expect_fatal(ErrorCode::UnsupportedVersion).await;
}

#[tokio::test(start_paused = true)]
async fn an_oversized_frame_ends_the_connection_with_message_too_large() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, mut b, _) = pair(&server).await;
    let big = format!(
        r#"{{"type":"offer","sdp":"{}"}}"#,
        "a".repeat(MAX_MESSAGE_BYTES + 10)
    );
    a.send_text(&big).await;
    a.expect_fatal(ErrorCode::MessageTooLarge).await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::PeerReconnecting { .. }
    ));

    // Exactly at the limit for client frames is relayed, and the relayed
    // frame (with `from` added) is within the limit too.
    let (mut c, mut d, _) = pair(&server).await;
    let sdp_len = MAX_CLIENT_MESSAGE_BYTES - r#"{"type":"offer","sdp":""}"#.len();
    c.send(ClientMessage::Offer {
        sdp: "b".repeat(sdp_len),
    })
    .await;
    assert!(matches!(d.recv().await, ServerMessage::Offer { sdp, .. } if sdp.len() == sdp_len));
    // One byte more is refused.
    c.send(ClientMessage::Offer {
        sdp: "b".repeat(sdp_len + 1),
    })
    .await;
    c.expect_fatal(ErrorCode::MessageTooLarge).await;
}

#[tokio::test(start_paused = true)]
async fn a_misbehaving_client_does_not_disturb_another_room() {
    let server = TestServer::start_with(Config {
        message_rate_per_second: 20,
        message_burst: 20,
        ..config()
    })
    .await
    .unwrap();
    let (mut a, mut b, _) = pair(&server).await;
    let (mut x, mut y, _) = pair(&server).await;

    // x floods, sends junk and finally an oversized frame.
    for _ in 0..10 {
        x.send_text("{{{{").await;
    }
    for n in 0..200 {
        x.send(candidate(n)).await;
    }
    let big = "x".repeat(MAX_MESSAGE_BYTES * 2);
    let _ = x.ws.send(Message::text(big)).await;

    // Room one carries on untouched.
    for n in 0..5 {
        a.send(candidate(n)).await;
        assert!(matches!(b.recv().await, ServerMessage::Candidate { .. }));
        b.send(candidate(n)).await;
        assert!(matches!(a.recv().await, ServerMessage::Candidate { .. }));
    }
    a.expect_quiet(QUIET).await;
    b.expect_quiet(QUIET).await;
    // x's own peer heard what was relayed and then that x is gone (its
    // seat held for the grace period).
    loop {
        match y.recv().await {
            ServerMessage::Candidate { .. } => continue,
            ServerMessage::PeerReconnecting { .. } => break,
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn floods_are_rate_limited_then_closed() {
    let server = TestServer::start_with(Config {
        message_rate_per_second: 1,
        message_burst: 10,
        ..config()
    })
    .await
    .unwrap();
    let (mut a, mut b, _) = pair(&server).await;
    for n in 0..15 {
        a.send(candidate(n)).await;
    }
    // The burst (less the join) is relayed; the rest refused with one
    // non-fatal error.
    let mut relayed = 0;
    let mut errors = Vec::new();
    while relayed < 9 {
        let m = b.recv().await;
        assert!(matches!(m, ServerMessage::Candidate { .. }), "{m:?}");
        relayed += 1;
    }
    errors.push(a.recv_error().await);
    assert_eq!(
        (errors[0].code, errors[0].fatal),
        (ErrorCode::RateLimited, false)
    );

    // Keeping on regardless ends the connection.
    for n in 0..100 {
        if a.ws
            .send(Message::text(candidate(n).encode()))
            .await
            .is_err()
        {
            break;
        }
    }
    loop {
        match a.next().await {
            Ok(ServerMessage::Error(e)) if e.code == ErrorCode::RateLimited && e.fatal => break,
            Ok(ServerMessage::Error(e)) if e.code == ErrorCode::RateLimited => continue,
            other => panic!("expected a fatal rate_limited, got {other:?}"),
        }
    }
    a.expect_closed().await;
}

#[tokio::test(start_paused = true)]
async fn cross_origin_pages_are_refused() {
    let server = TestServer::start_with(config()).await.unwrap();
    let room = server.create_room().await.unwrap();
    let url = server.ws_url(room.token.as_str());
    let refused = Peer::connect_with(&url, Some("http://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        Err(other) => panic!("expected HTTP 403, got {other}"),
        Ok(_) => panic!("a cross-origin upgrade was accepted"),
    }
    let same = format!("http://{}", server.addr());
    let mut p = Peer::connect_with(&url, Some(&same)).await.unwrap();
    p.join(None).await;

    let listed = TestServer::start_with(Config {
        allowed_origins: Some(vec!["https://app.example.org".into()]),
        ..config()
    })
    .await
    .unwrap();
    let room = listed.create_room().await.unwrap();
    let url = listed.ws_url(room.token.as_str());
    assert!(
        Peer::connect_with(&url, Some("https://app.example.org"))
            .await
            .is_ok()
    );
    assert!(
        Peer::connect_with(&url, Some(&format!("http://{}", listed.addr())))
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn no_join_in_time_is_a_timeout() {
    let server = TestServer::start_with(Config {
        join_timeout: Duration::from_secs(1),
        ..config()
    })
    .await
    .unwrap();
    let room = server.create_room().await.unwrap();
    let mut p = Peer::connect(&server.ws_url(room.token.as_str())).await;
    p.expect_fatal(ErrorCode::Timeout).await;
}

#[tokio::test(start_paused = true)]
async fn silent_connections_are_dropped_and_answering_ones_kept() {
    let server = TestServer::start_with(Config {
        ping_interval: Duration::from_millis(250),
        idle_timeout: Duration::from_secs(2),
        room: RoomConfig {
            seat_grace: Duration::from_millis(500),
            rooms_per_client: 0,
            rooms_per_network: 0,
            ..RoomConfig::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let (mut a, b, _) = pair(&server).await;
    // b never reads again, so never answers a ping; a reads (and so
    // answers pings) and outlives several idle periods.
    let held = a.recv().await;
    assert!(
        matches!(held, ServerMessage::PeerReconnecting { .. }),
        "{held:?}"
    );
    let left = a.recv().await;
    assert!(
        matches!(
            left,
            ServerMessage::PeerLeft {
                reason: LeaveReason::Disconnected,
                ..
            }
        ),
        "{left:?}"
    );
    drop(b);
    a.expect_quiet(Duration::from_millis(4500)).await;
    a.send(ClientMessage::Offer { sdp: "x".into() }).await;
    assert_eq!(a.recv_error().await.code, ErrorCode::NoPeer);
}

#[tokio::test(start_paused = true)]
async fn the_connection_limit_answers_503() {
    // Three connections at most: the two participants' and, until the
    // server notices it closed, the HTTP client's that created the room.
    let server = TestServer::start_with(Config {
        max_connections: 3,
        ..config()
    })
    .await
    .unwrap();
    let (a, b, token) = pair(&server).await;
    let mut accepted = Vec::new();
    let refused = loop {
        match Peer::connect_with(&server.ws_url(&token), None).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => break response,
            Err(other) => panic!("expected HTTP 503, got {other}"),
            Ok(peer) => {
                accepted.push(peer);
                assert!(
                    accepted.len() <= 1,
                    "{} connections accepted beside the pair, over a limit of 3",
                    accepted.len()
                );
            }
        }
    };
    assert_eq!(refused.status(), 503);
    drop((a, b, accepted));
    wait_until("a place frees up", WAIT, || async {
        Peer::connect_with(&server.ws_url(&token), None)
            .await
            .is_ok()
    })
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_signaling_connections_with_unavailable() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, mut b, _) = pair(&server).await;
    let stopped = tokio::spawn(server.shutdown());
    for peer in [&mut a, &mut b] {
        // Only `unavailable`: nobody left, the server did; a `peer_left` here
        // would make the other side tear down a working media connection.
        let error = match peer.recv().await {
            ServerMessage::Error(e) => e,
            other => panic!("expected unavailable, got {other:?}"),
        };
        assert_eq!((error.code, error.fatal), (ErrorCode::Unavailable, true));
        peer.expect_closed().await;
    }
    tokio::time::timeout(WAIT, stopped)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_always_comes_before_peer_joined_under_concurrent_joins() {
    let server = TestServer::start_with(config()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let token = server.create_room().await.unwrap().token.to_string();
        for _ in 0..2 {
            let url = server.ws_url(&token);
            tasks.push(tokio::spawn(async move {
                let mut p = Peer::connect(&url).await;
                p.send(ClientMessage::Join {
                    version: PROTOCOL_VERSION,
                    resume: None,
                })
                .await;
                let first = p.recv().await;
                assert!(
                    matches!(first, ServerMessage::Joined(_)),
                    "first message {first:?}"
                );
                p
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn an_embedded_router_closes_signaling_connections_with_its_shutdown_handle() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, shutdown) = webcall_server::app(Config {
        listen: addr,
        ..config()
    });
    // No Nagle delay: with paused time, a frame the kernel holds back
    // looks like silence, and the clock jumps ahead.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let room: webcall_core::protocol::CreatedRoom = http()
        .post(format!("http://{addr}/api/rooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("ws://{addr}/ws/rooms/{}", room.token);
    let mut a = Peer::connect(&url).await;
    a.join(None).await;
    let mut b = Peer::connect(&url).await;
    b.join(None).await;
    assert!(matches!(a.recv().await, ServerMessage::PeerJoined { .. }));

    let stopped = tokio::spawn(async move { shutdown.shutdown().await });
    for peer in [&mut a, &mut b] {
        // As from `run`: only `unavailable`, then the close.
        let error = peer.recv_error().await;
        assert_eq!((error.code, error.fatal), (ErrorCode::Unavailable, true));
        peer.expect_closed().await;
    }
    tokio::time::timeout(WAIT, stopped).await.unwrap().unwrap();
    assert!(
        Peer::connect_with(&url, None).await.is_err(),
        "no new signaling connections once shut down"
    );
    served.abort();
}

#[tokio::test(start_paused = true)]
async fn a_connections_own_errors_keep_their_order_with_the_rooms_messages() {
    let server = TestServer::start_with(config()).await.unwrap();
    let (mut a, mut b, token) = pair(&server).await;
    // The join's answers and the answer to a bad frame sent right after it
    // leave in the order they were made, whoever wrote them.
    let mut c = Peer::connect(&server.ws_url(&token)).await;
    c.send(ClientMessage::Join {
        version: PROTOCOL_VERSION,
        resume: None,
    })
    .await;
    c.send_text("not json").await;
    assert_eq!(c.recv_error().await.code, ErrorCode::RoomFull);
    c.expect_closed().await;

    // Relayed messages and an error to the same connection: in order.
    b.send(ClientMessage::Offer { sdp: "1".into() }).await;
    a.send_text("not json").await;
    b.send(ClientMessage::Offer { sdp: "2".into() }).await;
    assert!(matches!(a.recv().await, ServerMessage::Offer { sdp, .. } if sdp == "1"));
    let second = a.recv().await;
    let third = a.recv().await;
    // b's second offer may be read before or after a's bad frame, but
    // each side's frames keep their own order and nothing is lost.
    let codes: Vec<_> = [&second, &third]
        .iter()
        .map(|m| match m {
            ServerMessage::Error(e) => format!("error {}", e.code),
            ServerMessage::Offer { sdp, .. } => format!("offer {sdp}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(codes.contains(&"error bad_message".to_owned()), "{codes:?}");
    assert!(codes.contains(&"offer 2".to_owned()), "{codes:?}");
}
