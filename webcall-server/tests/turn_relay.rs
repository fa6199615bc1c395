//! The built-in TURN server: credentials, quotas, the peer deny list and
//! flood bounds with the `turn` crate's client, `turns:` with the HTTPS
//! certificate, the real binary's memory under an unauthenticated flood,
//! and relay-only calls between two headless Chromiums over UDP, TCP and
//! TLS.
//!
//! Everything runs on 127.0.0.1. Run in a loopback-only namespace:
//! `cargo test -p webcall-server --test turn_relay --no-run`, then
//! `unshare -n -- sh -c 'ip link set lo up && cargo test --offline -p webcall-server --test turn_relay'`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use stun::message::{CLASS_REQUEST, METHOD_ALLOCATE, Message, MessageType, Setter};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use turn::client::Client;
use webcall_core::protocol::IceTransportPolicy;
use webcall_server::turn::credentials::{Credential, mint};
use webcall_server::turn::{
    TlsFiles, TurnConfig, TurnSecret, TurnServer, TurnStats, TurnTls, TurnTransport,
};
use webcall_testkit::{Browser, BrowserOptions, MEDIA_FLOWING, TestServer, status_is, wait_for};
use webrtc_util::Conn;

mod server_support;

/// Serializes the browser tests of this file: each runs two browsers.
static HEAVY: Mutex<()> = Mutex::const_new(());

/// Bound for a condition that should become true soon.
const SOON: Duration = Duration::from_secs(30);
/// Bound for media to flow through the relay (two browsers on 2 cores).
const MEDIA: Duration = Duration::from_secs(90);

fn count(stat: &std::sync::atomic::AtomicU64) -> u64 {
    stat.load(Ordering::Relaxed)
}

fn secret() -> TurnSecret {
    TestServer::turn_config(false).secret
}

fn credential(participant: &str, ttl: Duration) -> Credential {
    mint(&secret(), participant, ttl, SystemTime::now())
}

/// Allocates with `credential`; the error text carries the error code.
async fn allocate(
    server: SocketAddr,
    credential: &Credential,
) -> Result<(Client, impl Conn + use<>)> {
    webcall_testkit::turn::allocate(server, &credential.username, &credential.password).await
}

async fn refused_with(server: SocketAddr, credential: &Credential, code: &str) -> Result<()> {
    match allocate(server, credential).await {
        Ok(_) => bail!("allocation with {credential:?} succeeded; expected error {code}"),
        Err(e) => {
            ensure!(
                e.to_string().contains(code),
                "expected error {code}, got: {e}"
            );
            Ok(())
        }
    }
}

#[tokio::test]
async fn minted_credentials_allocate_and_bad_ones_get_401() -> Result<()> {
    let server = TurnServer::start(&TestServer::turn_config(true)).await?;
    let addr = server.udp_addr();
    let stats = server.stats().clone();

    let good = credential("1", Duration::from_secs(600));
    let (client, relay) = allocate(addr, &good).await?;
    let relayed = relay.local_addr()?;
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    assert!((41000..=44999).contains(&relayed.port()), "{relayed}");

    // Relaying works to an allowed peer, both ways.
    let peer = UdpSocket::bind("127.0.0.1:0").await?;
    relay.send_to(b"hello peer", peer.local_addr()?).await?;
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(SOON, peer.recv_from(&mut buf)).await??;
    assert_eq!((&buf[..n], from), (&b"hello peer"[..], relayed));
    peer.send_to(b"hello client", relayed).await?;
    let (n, _) = tokio::time::timeout(SOON, relay.recv_from(&mut buf)).await??;
    assert_eq!(&buf[..n], b"hello client");

    // Another secret, an expired credential, and another participant's
    // password are all refused with 401.
    let forged = mint(
        &TurnSecret::new("not the server's secret at all")?,
        "1",
        Duration::from_secs(600),
        SystemTime::now(),
    );
    refused_with(addr, &forged, "401").await?;
    let expired = mint(
        &secret(),
        "1",
        Duration::ZERO,
        SystemTime::now() - Duration::from_secs(10),
    );
    refused_with(addr, &expired, "401").await?;
    let theirs = credential("2", Duration::from_secs(600));
    let mixed = Credential {
        username: good.username.clone(),
        password: theirs.password,
    };
    refused_with(addr, &mixed, "401").await?;
    let malformed = Credential {
        username: "someone".into(),
        password: good.password.clone(),
    };
    refused_with(addr, &malformed, "401").await?;
    assert!(count(&stats.unauthorized) >= 4, "{stats:?}");
    assert_eq!(stats.allocations.load(Ordering::Relaxed), 1);

    client.close().await?;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn allocation_quotas_hold() -> Result<()> {
    let mut config = TestServer::turn_config(true);
    config.max_allocations_per_user = 2;
    config.max_allocations = 3;
    let server = TurnServer::start(&config).await?;
    let addr = server.udp_addr();
    let stats = server.stats().clone();

    let alice = credential("alice", Duration::from_secs(600));
    let bob = credential("bob", Duration::from_secs(600));
    let a1 = allocate(addr, &alice).await?;
    let _a2 = allocate(addr, &alice).await?;
    refused_with(addr, &alice, "486").await?;
    let _b1 = allocate(addr, &bob).await?;
    refused_with(addr, &bob, "508").await?;
    assert_eq!(stats.allocations.load(Ordering::Relaxed), 3);
    assert_eq!(count(&stats.allocations_refused), 2);

    // A closed allocation frees its place.
    let (client, relay) = a1;
    relay.close().await?;
    client.close().await?;
    wait_for("the closed allocation to be released", SOON, || {
        stats.allocations.load(Ordering::Relaxed) == 2
    })
    .await?;
    let _a3 = allocate(addr, &alice).await?;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn loopback_peers_are_refused_with_403_and_counted() -> Result<()> {
    let server = TurnServer::start(&TestServer::turn_config(false)).await?;
    let stats = server.stats().clone();
    let (client, relay) = allocate(
        server.udp_addr(),
        &credential("1", Duration::from_secs(600)),
    )
    .await?;
    let peer = UdpSocket::bind("127.0.0.1:0").await?;
    let sent = relay.send_to(b"to loopback", peer.local_addr()?).await;
    let err = sent.expect_err("a permission for a loopback peer must be refused");
    assert!(err.to_string().contains("403"), "{err}");
    assert_eq!(count(&stats.denied_peers), 1, "{stats:?}");
    let mut buf = [0u8; 64];
    assert!(
        peer.try_recv_from(&mut buf).is_err(),
        "nothing reached the loopback peer"
    );
    client.close().await?;
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn denied_permissions_are_counted_once_per_allocation() -> Result<()> {
    let server = TurnServer::start(&TestServer::turn_config(false)).await?;
    let stats = server.stats().clone();
    let (client, relay) = allocate(
        server.udp_addr(),
        &credential("1", Duration::from_secs(600)),
    )
    .await?;
    // Forty CreatePermission requests for forty different denied peers
    // (loopback, private, metadata, CGNAT), each refused with 403.
    for i in 0..40u8 {
        let peer: SocketAddr = match i % 4 {
            0 => format!("127.0.0.{}:9", i + 1),
            1 => format!("10.0.0.{i}:9"),
            2 => format!("169.254.169.254:{}", 80 + u16::from(i)),
            _ => format!("100.64.0.{i}:9"),
        }
        .parse()?;
        let refused = relay.send_to(b"no", peer).await;
        let err = refused.expect_err("a permission for a denied peer must be refused");
        assert!(err.to_string().contains("403"), "{peer}: {err}");
    }
    assert_eq!(
        count(&stats.denied_peers),
        1,
        "one allocation, counted once: {stats:?}"
    );

    // Another allocation meeting a denied peer is counted on its own.
    let (other, other_relay) = allocate(
        server.udp_addr(),
        &credential("2", Duration::from_secs(600)),
    )
    .await?;
    for _ in 0..3 {
        assert!(
            other_relay
                .send_to(b"no", "10.1.2.3:9".parse()?)
                .await
                .is_err()
        );
    }
    assert_eq!(count(&stats.denied_peers), 2, "{stats:?}");
    assert_eq!(
        count(&stats.denied_packets),
        0,
        "refused permissions are not dropped packets: {stats:?}"
    );
    other.close().await?;
    client.close().await?;
    server.stop().await;
    Ok(())
}

fn unauthenticated_allocate() -> Result<Vec<u8>> {
    let attrs: Vec<Box<dyn Setter>> = vec![
        Box::new(stun::agent::TransactionId::new()),
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
    ];
    let mut m = Message::new();
    m.build(&attrs)?;
    Ok(m.raw)
}

#[tokio::test]
async fn unauthenticated_floods_keep_the_nonce_table_bounded() -> Result<()> {
    // Without a rate limit, every request is answered 401 with a new nonce:
    // the table must stay within its bound by eviction.
    let mut config = TestServer::turn_config(true);
    config.unauthenticated_per_second = 0;
    config.max_nonces = 1000;
    let server = TurnServer::start(&config).await?;
    let addr = server.udp_addr();
    let stats = server.stats().clone();
    const SOCKETS: usize = 4;
    const PER_SOCKET: usize = 12_500;
    let mut tasks = Vec::new();
    for _ in 0..SOCKETS {
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await?;
            let mut buf = [0u8; 1500];
            let mut max_seen = 0usize;
            for _ in 0..PER_SOCKET {
                // One at a time, so that the kernel drops nothing and the
                // server sees every request.
                let request = unauthenticated_allocate()?;
                loop {
                    socket.send_to(&request, addr).await?;
                    match tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
                        .await
                    {
                        Ok(r) => {
                            r?;
                            break;
                        }
                        Err(_) => continue,
                    }
                }
                max_seen = max_seen.max(stats.nonces.load(Ordering::Relaxed));
            }
            anyhow::Ok(max_seen)
        }));
    }
    let mut max_seen = 0;
    for task in tasks {
        max_seen = max_seen.max(task.await??);
    }
    assert!(max_seen <= 1000, "nonces peaked at {max_seen}");
    assert!(max_seen >= 500, "the flood filled the table: {max_seen}");
    assert!(stats.nonces.load(Ordering::Relaxed) <= 1000);
    // The server still serves a real client.
    let _ok = allocate(addr, &credential("1", Duration::from_secs(600))).await?;
    server.stop().await;

    // With the default per-source limit, a flood from one address is
    // mostly dropped before it costs a nonce.
    let config = TestServer::turn_config(true);
    let rate = u64::from(config.unauthenticated_per_second);
    let server = TurnServer::start(&config).await?;
    let stats = server.stats().clone();
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let started = Instant::now();
    const FLOOD: u64 = 5000;
    for i in 1..=FLOOD {
        socket
            .send_to(&unauthenticated_allocate()?, server.udp_addr())
            .await?;
        if i % 100 == 0 || i == FLOOD {
            // Let the server keep up so that the kernel drops nothing.
            let s = stats.clone();
            wait_for("the server to read the flood", SOON, move || {
                count(&s.messages) >= i
            })
            .await?;
        }
    }
    let allowed = 2 * rate + rate * (started.elapsed().as_secs() + 1);
    let dropped = count(&stats.unauthenticated_dropped);
    assert!(
        dropped >= FLOOD - allowed,
        "{dropped} of {FLOOD} dropped; at most {allowed} may pass: {stats:?}"
    );
    assert!(
        stats.nonces.load(Ordering::Relaxed) as u64 <= allowed,
        "at most the burst and rate got nonces: {stats:?}"
    );
    server.stop().await;
    Ok(())
}

/// A relay-only call between two browsers through the built-in TURN
/// server, handing out only `transport`.
struct RelayCall {
    _server: TestServer,
    alice: Browser,
    bob: Browser,
    stats: Arc<TurnStats>,
}

async fn relay_call(transport: TurnTransport, allow_loopback: bool) -> Result<RelayCall> {
    relay_call_with(
        TestServer::turn_config(allow_loopback),
        transport,
        BrowserOptions::default(),
        None,
    )
    .await
}

/// [`relay_call`] with this TURN configuration and these browsers, the
/// page served over HTTPS with `https` when given.
async fn relay_call_with(
    mut turn: TurnConfig,
    transport: TurnTransport,
    browser: BrowserOptions,
    https: Option<webcall_server::config::TlsSource>,
) -> Result<RelayCall> {
    turn.transports = Some(vec![transport]);
    let stats = turn.stats.clone();
    let server = TestServer::start_with(webcall_server::Config {
        ice_transport_policy: IceTransportPolicy::Relay,
        turn: Some(turn),
        tls: https,
        ..TestServer::test_config()
    })
    .await?;
    let room = server.create_room().await?;
    let alice = Browser::launch_with(browser.clone()).await?;
    alice.join_room(&room.url).await?;
    alice
        .wait_until(&status_is("waiting"), SOON, "alice alone in the room")
        .await?;
    let bob = Browser::launch_with(browser).await?;
    bob.join_room(&room.url).await?;
    Ok(RelayCall {
        _server: server,
        alice,
        bob,
        stats,
    })
}

/// Both pages connect over a relay pair using `protocol` and decode the
/// other's media.
async fn assert_relayed(call: &RelayCall, protocol: &str) -> Result<()> {
    for (who, page) in [("alice", &call.alice), ("bob", &call.bob)] {
        page.wait_until(&status_is("connected"), MEDIA, &format!("{who} connected"))
            .await?;
        page.wait_until(MEDIA_FLOWING, MEDIA, &format!("{who} decoding media"))
            .await?;
        let condition = format!(
            "await (async () => {{ const s = await window.webcall.stats(); \
             return !!s.selectedPair && s.selectedPair.localType === 'relay' && s.selectedPair.relayProtocol === '{protocol}'; }})()"
        );
        page.wait_until(
            &condition,
            SOON,
            &format!("{who} on a relay pair over {protocol}"),
        )
        .await?;
        let stats = page.stats().await?;
        println!("{who}'s stats in the relayed call: {stats}");
        let pair = &stats["selectedPair"];
        assert_eq!(pair["localType"], "relay", "{who}: {stats}");
        assert_eq!(pair["relayProtocol"], protocol, "{who}: {stats}");
        assert_eq!(pair["remoteType"], "relay", "{who}: {stats}");
        assert!(
            stats["videoFramesDecoded"].as_f64().unwrap_or(0.0) > 0.0
                && stats["audioBytesReceived"].as_f64().unwrap_or(0.0) > 0.0,
            "{who} decodes the other side: {stats}"
        );
    }
    assert!(call.stats.allocations.load(Ordering::Relaxed) >= 2);
    assert_eq!(count(&call.stats.denied_peers), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_call_over_udp() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let call = relay_call(TurnTransport::Udp, true).await?;
    assert_relayed(&call, "udp").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_call_over_tcp() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let call = relay_call(TurnTransport::Tcp, true).await?;
    assert_relayed(&call, "tcp").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_call_to_loopback_peers_is_refused() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let call = relay_call(TurnTransport::Udp, false).await?;
    let stats = call.stats.clone();
    wait_for("a refused permission", MEDIA, move || {
        count(&stats.denied_peers) > 0
    })
    .await
    .context("the browsers never asked to relay to each other")?;
    // Both pages keep trying (and restarting ICE) for a while: neither may
    // connect through the relay.
    let connected = call
        .alice
        .wait_until(
            &status_is("connected"),
            Duration::from_secs(15),
            "alice connected",
        )
        .await;
    assert!(
        connected.is_err(),
        "the call must not connect through a refused relay"
    );
    assert_ne!(call.bob.status().await, "connected");
    assert!(count(&call.stats.denied_peers) > 0);
    Ok(())
}

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM files in
/// a fresh directory; also returns the certificate itself.
fn self_signed() -> Result<(TlsFiles, Vec<u8>)> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let dir = std::env::temp_dir().join(format!(
        "webcall-turn-tls-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, certified.cert.pem())?;
    std::fs::write(&files.key, certified.signing_key.serialize_pem())?;
    Ok((files, certified.cert.der().to_vec()))
}

fn tls_turn_config() -> Result<(TurnConfig, Vec<u8>)> {
    let (files, der) = self_signed()?;
    let mut turn = TestServer::turn_config(true);
    turn.tls_listen = Some("127.0.0.1:0".parse()?);
    turn.tls = Some(TurnTls::Files(files));
    Ok((turn, der))
}

#[tokio::test]
async fn turns_listener_answers_stun_over_tls() -> Result<()> {
    use stun::message::{BINDING_REQUEST, Getter as _};
    use stun::xoraddr::XorMappedAddress;
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;

    let (config, der) = tls_turn_config()?;
    let server = TurnServer::start(&config).await?;
    let tls_addr = server.tls_addr().context("TLS listens")?;
    assert!(
        server.urls().builtin.contains(&format!(
            "turns:127.0.0.1:{}?transport=tcp",
            tls_addr.port()
        )),
        "{:?}",
        server.urls()
    );

    let tcp = tokio::net::TcpStream::connect(tls_addr).await?;
    let local = tcp.local_addr()?;
    let mut tls = tls_trusting(der)?
        .connect(rustls::pki_types::ServerName::try_from("127.0.0.1")?, tcp)
        .await?;

    // Two binding requests in one write: the stream is cut into messages.
    let mut bytes = Vec::new();
    for _ in 0..2 {
        let attrs: Vec<Box<dyn Setter>> = vec![
            Box::new(stun::agent::TransactionId::new()),
            Box::new(BINDING_REQUEST),
        ];
        let mut m = Message::new();
        m.build(&attrs)?;
        bytes.extend_from_slice(&m.raw);
    }
    tls.write_all(&bytes).await?;
    for _ in 0..2 {
        let answer = read_message(&mut tls).await?;
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&answer)?;
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), local);
    }
    server.stop().await;
    Ok(())
}

/// A TLS client that trusts only `der` (a self-signed certificate).
fn tls_trusting(der: Vec<u8>) -> Result<tokio_rustls::TlsConnector> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(der))?;
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(client)))
}

#[tokio::test]
async fn turns_is_served_with_the_https_certificate_and_allocates() -> Result<()> {
    use stun::message::CLASS_SUCCESS_RESPONSE;
    use webcall_server::config::TlsSource;
    use webcall_server::tls::fingerprint;

    // HTTPS with a self-signed certificate; TURN over TLS without one of
    // its own, on a port chosen here (the server hands it out only in
    // joins).
    let (files, der) = self_signed()?;
    let turns_addr: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?
    };
    let mut turn = TestServer::turn_config(true);
    turn.tls_listen = Some(turns_addr);
    turn.tls = None;
    let server = TestServer::start_with(webcall_server::Config {
        tls: Some(TlsSource::Files {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        turn: Some(turn),
        ..TestServer::test_config()
    })
    .await?;

    // The same certificate on both ports.
    let https = webcall_testkit::http::peer_certificates(server.addr(), None).await?;
    let turns = webcall_testkit::http::peer_certificates(turns_addr, None).await?;
    let leaf = |chain: &[tokio_rustls::rustls::pki_types::CertificateDer<'static>]| {
        chain.first().map(|c| fingerprint(c))
    };
    assert_eq!(
        leaf(&https),
        Some(fingerprint(&der)),
        "HTTPS serves its file"
    );
    assert_eq!(
        leaf(&turns),
        leaf(&https),
        "turns: is served with the HTTPS certificate"
    );

    // A client trusting that certificate allocates over the TLS port.
    let tcp = tokio::net::TcpStream::connect(turns_addr).await?;
    let mut tls = tls_trusting(der)?
        .connect(
            tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1")?,
            tcp,
        )
        .await?;
    let allocated = stream_allocate(&mut tls, &credential("tls", Duration::from_secs(600))).await?;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE, "{allocated}");
    use stun::message::Getter as _;
    let mut relayed = turn::proto::relayaddr::RelayedAddress::default();
    relayed.get_from(&allocated)?;
    assert_eq!(relayed.ip.to_string(), "127.0.0.1");
    drop(tls);
    server.shutdown().await?;
    let _ = std::fs::remove_dir_all(files.cert.parent().context("a directory")?);
    Ok(())
}

#[tokio::test]
async fn the_https_port_also_takes_turn_over_tls() -> Result<()> {
    use stun::message::CLASS_SUCCESS_RESPONSE;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use webcall_server::config::TlsSource;

    // HTTPS with a self-signed certificate, TURN over TLS on the same
    // port and on no port of its own (that joins are handed its URL, the
    // relay-only browser call below shows).
    let (files, der) = self_signed()?;
    let mut turn = TestServer::turn_config(true);
    turn.tls_on_https_port = Some(0);
    let server = TestServer::start_with(webcall_server::Config {
        ice_servers: vec![],
        tls: Some(TlsSource::Files {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        turn: Some(turn),
        ..TestServer::test_config()
    })
    .await?;
    let connector = tls_trusting(der)?;
    let name = || tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1");

    // A TURN client allocates over TLS on the HTTPS port...
    let tcp = tokio::net::TcpStream::connect(server.addr()).await?;
    let mut tls = connector.connect(name()?, tcp).await?;
    let allocated =
        stream_allocate(&mut tls, &credential("shared", Duration::from_secs(600))).await?;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE, "{allocated}");

    // ...while HTTPS on it answers as before.
    let tcp = tokio::net::TcpStream::connect(server.addr()).await?;
    let mut https = connector.connect(name()?, tcp).await?;
    https
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut answer = String::new();
    https.read_to_string(&mut answer).await?;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{answer}"
    );
    drop(tls);
    server.shutdown().await?;
    let _ = std::fs::remove_dir_all(files.cert.parent().context("a directory")?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_call_over_tls_on_the_https_port() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    // The page and TURN over TLS on one port, as on a network that lets
    // only HTTPS out.
    let mut turn = TestServer::turn_config(true);
    turn.tls_on_https_port = Some(0);
    relay_call_over_tls_beside_https(turn).await
}

/// A relay-only call over TLS with the page served over HTTPS (a
/// self-signed certificate the browsers are told to accept), TURN taking
/// its certificate from HTTPS.
async fn relay_call_over_tls_beside_https(turn: TurnConfig) -> Result<()> {
    let (files, _) = self_signed()?;
    let browser = BrowserOptions {
        // The test certificate is self-signed.
        extra_args: vec!["--ignore-certificate-errors".to_owned()],
        ..BrowserOptions::default()
    };
    let https = webcall_server::config::TlsSource::Files {
        cert: files.cert.clone(),
        key: files.key.clone(),
    };
    let call = relay_call_with(turn, TurnTransport::Tls, browser, Some(https)).await?;
    assert_relayed(&call, "tls").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_call_over_tls() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    let (turn, _) = tls_turn_config()?;
    let browser = BrowserOptions {
        // The test certificate is self-signed.
        extra_args: vec!["--ignore-certificate-errors".to_owned()],
        ..BrowserOptions::default()
    };
    let call = relay_call_with(turn, TurnTransport::Tls, browser, None).await?;
    assert_relayed(&call, "tls").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_call_over_tls_with_the_https_certificate() -> Result<()> {
    let _heavy = HEAVY.lock().await;
    // The page over HTTPS; TURN over TLS on a port of its own with no
    // certificate of its own.
    let mut turn = TestServer::turn_config(true);
    turn.tls_listen = Some("127.0.0.1:0".parse()?);
    relay_call_over_tls_beside_https(turn).await
}

#[tokio::test]
async fn each_join_gets_the_builtin_servers_with_its_own_credential() -> Result<()> {
    let turn = TestServer::turn_config(true);
    let ttl = turn.credential_ttl;
    let server = TestServer::start_with(webcall_server::Config {
        ice_servers: vec![],
        turn: Some(turn),
        ..server_support::config()
    })
    .await
    .unwrap();
    let room = server.create_room().await.unwrap();
    let mut first = server_support::Peer::connect(&server.ws_url(room.token.as_str())).await;
    let mut second = server_support::Peer::connect(&server.ws_url(room.token.as_str())).await;
    let a = first.join(None).await;
    let b = second.join(None).await;

    // Only the built-in server: its STUN URL without a credential, then
    // its TURN URLs with this participant's credential.
    assert_eq!(a.ice_servers.len(), 2, "{:?}", a.ice_servers);
    let stun = &a.ice_servers[0];
    assert_eq!(stun.urls.len(), 1);
    let port = stun.urls[0]
        .strip_prefix("stun:127.0.0.1:")
        .context("a stun: URL on 127.0.0.1")?;
    assert_eq!(stun.username, None);
    let turn_server = &a.ice_servers[1];
    assert_eq!(
        turn_server.urls,
        vec![
            format!("turn:127.0.0.1:{port}?transport=udp"),
            format!("turn:127.0.0.1:{port}?transport=tcp"),
        ]
    );
    let username = turn_server.username.clone().context("a username")?;
    let (expiry, participant) = username.split_once(':').context("expiry:participant")?;
    let expiry: u64 = expiry.parse()?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)?
        .as_secs();
    assert!(
        expiry.abs_diff(now + ttl.as_secs()) < 60,
        "expires after the TTL: {username}"
    );
    assert!(!participant.is_empty());
    let theirs = &b.ice_servers[1];
    assert_ne!(theirs.username, turn_server.username);
    assert_ne!(theirs.credential, turn_server.credential);

    // The handed-out credential works on the handed-out server.
    let turn_addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let credential = Credential {
        username,
        password: turn_server.credential.clone().context("a password")?,
    };
    let (client, relay) = allocate(turn_addr, &credential).await?;
    relay.close().await?;
    client.close().await?;

    // Shutting the server down stops the TURN server: its port is free.
    server.shutdown().await?;
    UdpSocket::bind(turn_addr)
        .await
        .context("the TURN port is free after shutdown")?;
    Ok(())
}

#[tokio::test]
async fn an_embedder_keeping_the_default_ice_servers_also_hands_out_the_public_stun() -> Result<()>
{
    // As documented on `Config::turn`: the library does not drop the
    // default public STUN server when the built-in TURN server is set.
    let server = TestServer::start_with(webcall_server::Config {
        ice_servers: webcall_server::Config::default().ice_servers,
        turn: Some(TestServer::turn_config(true)),
        ..server_support::config()
    })
    .await?;
    let room = server.create_room().await?;
    let mut peer = server_support::Peer::connect(&server.ws_url(room.token.as_str())).await;
    let joined = peer.join(None).await;
    let urls: Vec<&str> = joined
        .ice_servers
        .iter()
        .flat_map(|s| s.urls.iter().map(String::as_str))
        .collect();
    assert!(
        urls[0].starts_with("stun:127.0.0.1:"),
        "built-in first: {urls:?}"
    );
    assert_eq!(
        urls.last(),
        Some(&webcall_server::config::DEFAULT_STUN),
        "then the default public STUN server: {urls:?}"
    );
    server.shutdown().await?;
    Ok(())
}

/// Writes `m` to a TURN-over-TCP or TLS stream and reads the answer.
async fn stream_transaction(
    stream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
    m: &Message,
) -> Result<Message> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(&m.raw).await?;
    stream.flush().await?;
    read_message(stream).await
}

/// Allocates over a TURN-over-TCP or TLS stream with `credential`: the
/// first request gets the 401 challenge, the second is answered.
async fn stream_allocate(
    stream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin),
    credential: &Credential,
) -> Result<Message> {
    use stun::integrity::MessageIntegrity;
    use stun::textattrs::{Nonce, Realm, Username};
    use turn::proto::reqtrans::RequestedTransport;

    let allocate = |extra: Vec<Box<dyn Setter>>| {
        let mut attrs: Vec<Box<dyn Setter>> = vec![
            Box::new(stun::agent::TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(RequestedTransport {
                protocol: turn::proto::PROTO_UDP,
            }),
        ];
        attrs.extend(extra);
        message(attrs)
    };
    let challenge = stream_transaction(stream, &allocate(vec![])?).await?;
    let nonce = Nonce::get_from_as(&challenge, stun::attributes::ATTR_NONCE)?;
    let realm = Realm::get_from_as(&challenge, stun::attributes::ATTR_REALM)?;
    let integrity = MessageIntegrity::new_long_term_integrity(
        credential.username.clone(),
        realm.text.clone(),
        credential.password.clone(),
    );
    stream_transaction(
        stream,
        &allocate(vec![
            Box::new(Username::new(
                stun::attributes::ATTR_USERNAME,
                credential.username.clone(),
            )),
            Box::new(realm),
            Box::new(nonce),
            Box::new(integrity),
        ])?,
    )
    .await
}

/// Reads one STUN message from a TURN-over-TCP or TLS stream.
async fn read_message(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<Message> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 20];
    tokio::time::timeout(SOON, stream.read_exact(&mut head)).await??;
    let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
    let mut raw = head.to_vec();
    raw.resize(20 + length, 0);
    stream.read_exact(&mut raw[20..]).await?;
    let mut answer = Message::new();
    answer.raw = raw;
    answer.decode()?;
    Ok(answer)
}

fn message(attrs: Vec<Box<dyn Setter>>) -> Result<Message> {
    let mut m = Message::new();
    m.build(&attrs)?;
    Ok(m)
}

#[tokio::test]
async fn a_tcp_client_leaving_frees_its_allocation_and_the_listener_keeps_serving() -> Result<()> {
    use stun::message::{BINDING_REQUEST, CLASS_SUCCESS_RESPONSE};

    let server = TurnServer::start(&TestServer::turn_config(true)).await?;
    let stats = server.stats().clone();
    let good = credential("tcp", Duration::from_secs(600));

    let mut first = tokio::net::TcpStream::connect(server.tcp_addr()).await?;
    let allocated = stream_allocate(&mut first, &good).await?;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE, "{allocated}");
    assert_eq!(stats.allocations.load(Ordering::Relaxed), 1);

    // The client goes: its allocation is closed at once.
    drop(first);
    let s = stats.clone();
    wait_for("the TCP client's allocation to close", SOON, move || {
        s.allocations.load(Ordering::Relaxed) == 0
    })
    .await?;

    // The TCP listener still serves new clients.
    let mut second = tokio::net::TcpStream::connect(server.tcp_addr()).await?;
    let answer = stream_transaction(
        &mut second,
        &message(vec![
            Box::new(stun::agent::TransactionId::new()),
            Box::new(BINDING_REQUEST),
        ])?,
    )
    .await?;
    assert_eq!(answer.typ.class, CLASS_SUCCESS_RESPONSE);
    server.stop().await;
    Ok(())
}

#[tokio::test]
async fn the_public_ip_is_in_relay_addresses_and_urls() -> Result<()> {
    let mut config = TestServer::turn_config(true);
    config.public_ip = Some("203.0.113.5".parse()?);
    config.transports = Some(vec![TurnTransport::Tcp]);
    config.external = vec!["turns:turn.example.org:5349?transport=tcp".to_owned()];
    let server = TurnServer::start(&config).await?;
    let port = server.udp_addr().port();
    assert_eq!(
        server.urls().builtin,
        vec![format!("turn:203.0.113.5:{port}?transport=tcp")],
        "only the TCP URL, on the public address"
    );
    assert_eq!(server.urls().external, config.external);
    let (client, relay) =
        allocate(server.udp_addr(), &credential("1", Duration::from_secs(60))).await?;
    assert_eq!(relay.local_addr()?.ip().to_string(), "203.0.113.5");
    relay.close().await?;
    client.close().await?;
    server.stop().await;
    Ok(())
}

/// The resident memory of process `pid` in KiB (`VmRSS`).
fn resident_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("VmRSS in /proc/PID/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("a VmRSS figure")?
        .parse()?)
}

/// The real binary, stopped on drop.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends one unauthenticated Allocate from a fresh socket on `source` and
/// waits (a bounded time) for the server's 401. Once it arrives, every
/// datagram sent before it on the same listener has been handled.
fn unauthenticated_round_trip(source: [u8; 4], server: SocketAddr) -> Result<bool> {
    let socket = std::net::UdpSocket::bind(SocketAddr::from((source, 0)))?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    socket.send_to(&unauthenticated_allocate()?, server)?;
    let mut buf = [0u8; 1500];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => {
            let mut m = Message::new();
            m.raw = buf[..n].to_vec();
            m.decode()?;
            Ok(m.typ.class == stun::message::CLASS_ERROR_RESPONSE)
        }
        Err(_) => Ok(false),
    }
}

/// Starts the real binary with TURN on a free UDP port of 127.0.0.1 and
/// waits (up to [`MEDIA`]) until it answers an unauthenticated Allocate.
/// The port is picked here and freed before the binary binds it, so a
/// parallel test's socket can take it (UDP, or TCP which TURN binds on the
/// same port) in between: then the binary exits with that error on its
/// standard error, and it is started again on another port, up to 5 times.
fn start_turn_binary(
    data: &std::path::Path,
    probes: &mut impl Iterator<Item = [u8; 4]>,
) -> Result<(ServerProcess, SocketAddr)> {
    for _ in 0..5 {
        let turn_port = std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let turn_addr = SocketAddr::from(([127, 0, 0, 1], turn_port));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_webcall-server"))
            .args(["--listen", "127.0.0.1:0", "--turn", "--turn-listen"])
            .arg(turn_addr.to_string())
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("cannot start webcall-server")?;
        let mut server = ServerProcess(child);
        let deadline = Instant::now() + MEDIA;
        loop {
            if let Some(status) = server.0.try_wait()? {
                eprintln!("webcall-server on TURN port {turn_port} ended ({status}); again");
                break;
            }
            let source = probes.next().context("probe addresses")?;
            if unauthenticated_round_trip(source, turn_addr)? {
                return Ok((server, turn_addr));
            }
            ensure!(
                Instant::now() < deadline,
                "no answer from TURN on {turn_addr} within {MEDIA:?} of its start"
            );
        }
    }
    bail!("webcall-server ended at start 5 times (see its errors above)")
}

#[test]
fn unauthenticated_floods_from_many_sources_keep_the_process_memory_flat() -> Result<()> {
    // Each round: 60,000 source addresses (more than the 50,000 the rate
    // limiter tracks) send one unauthenticated Allocate each, so each gets
    // a 401 and a nonce (more than the 10,000 nonces kept). Defaults
    // everywhere: this is the binary as deployed.
    const SOURCES_PER_ROUND: u32 = 60_000;
    const BATCH: u32 = 1_000;
    let data = std::env::temp_dir().join(format!(
        "webcall-turn-flood-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_nanos()
    ));
    // Probes come from their own addresses (each within its rate).
    let mut probes = (0u32..).map(|i| [127, 250, (i >> 8) as u8, i as u8]);
    let (server, turn_addr) = start_turn_binary(&data, &mut probes)?;
    let pid = server.0.id();
    let started = Instant::now();
    let mut probe = |what: &str| -> Result<()> {
        let deadline = Instant::now() + SOON;
        loop {
            let source = probes.next().context("probe addresses")?;
            if unauthenticated_round_trip(source, turn_addr)? {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "no answer from TURN {what}");
        }
    };
    let baseline = resident_kib(pid)?;

    let flood = |round: u8, probe: &mut dyn FnMut(&str) -> Result<()>| -> Result<()> {
        let request = unauthenticated_allocate()?;
        for batch in 0..SOURCES_PER_ROUND / BATCH {
            for i in 0..BATCH {
                let n = batch * BATCH + i;
                let source = [127, 10 + round, (n >> 8) as u8, n as u8];
                let socket = std::net::UdpSocket::bind(SocketAddr::from((source, 0)))?;
                socket.send_to(&request, turn_addr)?;
            }
            // Flow control: wait until the server has handled the batch.
            probe("during the flood")?;
        }
        Ok(())
    };
    flood(0, &mut probe)?;
    let after_first = resident_kib(pid)?;
    flood(100, &mut probe)?;
    let after_second = resident_kib(pid)?;
    let elapsed = started.elapsed();
    let _ = std::fs::remove_dir_all(&data);
    eprintln!(
        "VmRSS: {baseline} KiB at start, {after_first} KiB after {SOURCES_PER_ROUND} sources, \
         {after_second} KiB after {} sources; {elapsed:?}",
        2 * SOURCES_PER_ROUND
    );
    ensure!(
        after_second.saturating_sub(after_first) <= 2 * 1024,
        "a second flood grew memory by {} KiB (bounded tables stay full, not larger)",
        after_second.saturating_sub(after_first)
    );
    ensure!(
        after_second.saturating_sub(baseline) <= 12 * 1024,
        "floods grew memory by {} KiB",
        after_second.saturating_sub(baseline)
    );
    ensure!(
        elapsed < Duration::from_secs(60),
        "the flood took {elapsed:?}"
    );
    Ok(())
}
