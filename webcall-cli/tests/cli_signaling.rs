//! `webcall join` when signaling breaks during a call, against a real server
//! on 127.0.0.1 and real `webcall join` processes calling each other over
//! loopback.
//!
//! - The WebSocket drops mid-call (a relay in front of the server cuts it
//!   without the server noticing, as when a network path dies): the peer
//!   reconnects and takes its seat back with the resume secret, the other
//!   side sees the same participant come back (`peer_joined` with
//!   `resumed`), never a leave, and media keeps flowing.
//! - The server shuts down during a call. Media does not pass through the
//!   server, so a one-to-one call goes on peer-to-peer: each side says on
//!   stderr that the server is gone, and a side whose `--duration` runs out
//!   exits 0 (the call happened and ran its time). A side whose media
//!   connection then drops cannot renegotiate without the server: it ends
//!   within a bounded time, non-zero, with a clear message. Never a hang or
//!   a panic.
//!
//! Media flow is watched live through the received video recorded to Y4M
//! files (a small clip is sent, so the files stay small), and checked at the
//! end in the `--stats-json` figures.

mod cli_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cli_common::{Run, finish, scratch, spawn, stats, webcall};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use webcall_testkit::{TestServer, wait_for, wait_until};

/// Calls are heavy on two cores: one test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The clip both sides send: small, so recording it costs little.
const W: usize = 176;
const H: usize = 144;
/// One recorded frame: `FRAME\n` and the I420 picture.
const FRAME_BYTES: u64 = (6 + W * H * 3 / 2) as u64;

/// Writes a one-second 176x144 Y4M clip with a moving bar (it loops).
fn write_clip(dir: &Path) -> PathBuf {
    let path = dir.join("clip.y4m");
    let mut bytes = format!("YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420\n").into_bytes();
    for i in 0..30 {
        bytes.extend_from_slice(b"FRAME\n");
        for y in 0..H {
            for x in 0..W {
                let bar = (x / 8 + y / 8 + i) % 6 == 0;
                bytes.push(if bar { 220 } else { 40 + (x as u8 / 2) });
            }
        }
        bytes.extend(std::iter::repeat_n(128u8, W * H / 2));
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Whole frames in a Y4M recording so far (0 while it does not exist).
fn frames(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len() / FRAME_BYTES)
}

/// How many people the server counts in the room.
async fn participants(server: SocketAddr, token: &str) -> u64 {
    let r = webcall_testkit::http::request(server, "GET", &format!("/api/rooms/{token}"), None)
        .await
        .unwrap();
    r.json().unwrap()["participants"].as_u64().unwrap()
}

/// A `webcall join` that sends the clip, records what it receives, writes
/// its figures, and hangs up after `secs`.
struct Peer {
    y4m: PathBuf,
    stats: PathBuf,
    child: Option<std::process::Child>,
}

impl Peer {
    fn start(dir: &Path, name: &str, link: &str, clip: &Path, secs: u32) -> Self {
        let y4m = dir.join(format!("{name}.y4m"));
        let stats = dir.join(format!("{name}.json"));
        let child = spawn(webcall(&[
            "join",
            link,
            "--no-tui",
            "--ice-addr",
            "127.0.0.1",
            "--video",
            clip.to_str().unwrap(),
            "--audio",
            "tone",
            "--duration",
            &secs.to_string(),
            "--stats-json",
            stats.to_str().unwrap(),
            "--record-video",
            y4m.to_str().unwrap(),
        ]));
        Self {
            y4m,
            stats,
            child: Some(child),
        }
    }

    fn frames(&self) -> u64 {
        frames(&self.y4m)
    }

    /// Waits (off the async threads) for the process to end, at most `limit`.
    async fn finish(&mut self, limit: Duration) -> Run {
        let child = self.child.take().expect("finished once");
        tokio::task::spawn_blocking(move || finish(child, limit))
            .await
            .unwrap()
    }
}

/// Waits like [`wait_for`]; on a timeout, stops both calls and shows
/// what they printed.
async fn wait_for_media(
    what: &str,
    bound: Duration,
    a: &mut Peer,
    b: &mut Peer,
    mut cond: impl FnMut(u64, u64) -> bool,
) {
    let start = Instant::now();
    while !cond(a.frames(), b.frames()) {
        if start.elapsed() > bound {
            let (fa, fb) = (a.frames(), b.frames());
            let (ra, rb) = (a.stop().await, b.stop().await);
            panic!(
                "timed out after {bound:?}: {what} (A {fa}, B {fb} frames)\nA: {ra:#?}\nB: {rb:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Peer {
    /// Stops the process and returns what it printed.
    async fn stop(&mut self) -> Run {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
        self.finish(Duration::from_secs(10)).await
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A failed assertion must not leave a call running.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Checks what every run must show: no panic, a summary.
fn assert_clean(run: &Run) {
    assert!(!run.stderr.contains("panicked"), "{run:#?}");
    assert!(run.stdout.contains("call over after"), "{run:#?}");
}

/// A TCP relay in front of the server. [`Relay::cut`] closes the client
/// side of every connection it carries while keeping the server side open
/// and silent, as when a network path dies and the server cannot tell yet.
struct Relay {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    frozen: Arc<std::sync::Mutex<Vec<TcpStream>>>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let frozen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut, _) = watch::channel(0u64);
        let task = tokio::spawn({
            let (accepted, frozen, cut) = (accepted.clone(), frozen.clone(), cut.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let Ok(mut upstream) = TcpStream::connect(server).await else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let mut cut_rx = cut.subscribe();
                    let frozen = frozen.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                            _ = cut_rx.changed() => {
                                drop(client);
                                frozen.lock().unwrap().push(upstream);
                            }
                        }
                    });
                }
            }
        });
        Self {
            addr,
            accepted,
            frozen,
            cut,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn frozen(&self) -> usize {
        self.frozen.lock().unwrap().len()
    }

    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_websocket_resumes_the_seat_and_media_keeps_flowing() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let relay = Relay::start(server.addr()).await;
    let dir = scratch("signaling-drop");
    let clip = write_clip(&dir);

    // B (direct) waits in the room; A arrives through the relay. A outlasts
    // B, so B never sees A leave.
    let mut b = Peer::start(&dir, "b", &room.url, &clip, 22);
    let (addr, token) = (server.addr(), room.token.to_string());
    let start = Instant::now();
    wait_until("B joins", Duration::from_secs(30), || async {
        participants(addr, &token).await >= 1
    })
    .await
    .unwrap();
    let relayed = format!("http://{}/r/{}", relay.addr, room.token);
    let mut a = Peer::start(&dir, "a", &relayed, &clip, 24);

    wait_for_media(
        "media both ways before the cut",
        Duration::from_secs(40),
        &mut a,
        &mut b,
        |a, b| a >= 30 && b >= 30,
    )
    .await;
    let accepted = relay.accepted();
    relay.cut();
    wait_for(
        "the relay cut A's connections",
        Duration::from_secs(10),
        || relay.frozen() >= 1,
    )
    .await
    .unwrap();
    let (a_cut, b_cut) = (a.frames(), b.frames());
    eprintln!(
        "cut at A {a_cut}, B {b_cut} frames, {:?} in",
        start.elapsed()
    );

    wait_for(
        "A reconnected through the relay",
        Duration::from_secs(20),
        || relay.accepted() > accepted,
    )
    .await
    .unwrap();
    // The server kept A's seat: still two people, never a free seat.
    assert_eq!(participants(addr, &token).await, 2);
    wait_for_media(
        "60 more frames decoded on each side after the cut",
        Duration::from_secs(30),
        &mut a,
        &mut b,
        |a, b| a >= a_cut + 60 && b >= b_cut + 60,
    )
    .await;

    let rb = b.finish(Duration::from_secs(60)).await;
    let ra = a.finish(Duration::from_secs(60)).await;
    assert!(ra.success(), "{ra:#?}");
    assert!(rb.success(), "{rb:#?}");
    assert_clean(&ra);
    assert_clean(&rb);

    // A noticed the drop and came back; it never gave up on the server.
    assert!(
        ra.stdout
            .contains("lost the server connection; reconnecting"),
        "{ra:#?}"
    );
    assert!(!ra.stderr.contains("lost the webcall server"), "{ra:#?}");
    assert_eq!(
        ra.stdout.matches("in the room with").count(),
        2,
        "A joins, then takes its seat back: {ra:#?}"
    );

    // B saw one participant arrive and the same one come back (PROTOCOL.md,
    // resume), and never saw anyone leave.
    let joined: Vec<&str> = rb
        .stdout
        .lines()
        .filter(|l| l.contains("joined; connecting"))
        .collect();
    assert_eq!(joined.len(), 1, "{rb:#?}");
    let a_id = joined[0].split_whitespace().nth(1).unwrap();
    assert!(
        rb.stdout
            .contains(&format!("peer {a_id} came back; reconnecting")),
        "{rb:#?}"
    );
    assert!(!rb.stdout.contains("left"), "{rb:#?}");
    assert!(!rb.stdout.contains("lost the server"), "{rb:#?}");

    // The figures at the end count the pictures decoded after the cut.
    for (name, s, at_cut) in [("A", stats(&a.stats), a_cut), ("B", stats(&b.stats), b_cut)] {
        let decoded = s["received"]["video_frames_decoded"].as_u64().unwrap();
        assert!(decoded >= at_cut + 60, "{name}: {decoded} decoded: {s:#}");
        assert_eq!(s["received"]["video_width"].as_u64(), Some(W as u64));
    }
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_going_away_leaves_a_bounded_clearly_reported_call() {
    let _serial = SERIAL.lock().await;
    // The server is run here rather than through TestServer, so that it can
    // be shut down like a real one (every signaling connection is told
    // `unavailable`) and awaited.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(webcall_server::run(
        listener,
        TestServer::test_config(),
        async move {
            let _ = stopped.await;
        },
    ));
    let created = webcall_testkit::http::request(addr, "POST", "/api/rooms", None)
        .await
        .unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
    let url = created.json().unwrap()["url"].as_str().unwrap().to_owned();
    let dir = scratch("signaling-server-gone");
    let clip = write_clip(&dir);

    // A ends at its --duration; B would stay much longer, but its media
    // connection goes when A leaves, and without the server nothing can
    // bring it back.
    let mut a = Peer::start(&dir, "a", &url, &clip, 20);
    let mut b = Peer::start(&dir, "b", &url, &clip, 120);
    wait_for_media(
        "media both ways",
        Duration::from_secs(40),
        &mut a,
        &mut b,
        |a, b| a >= 30 && b >= 30,
    )
    .await;

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server shuts down once its connections are closed")
        .unwrap()
        .unwrap();
    let (a_at, b_at) = (a.frames(), b.frames());
    eprintln!("server gone at A {a_at}, B {b_at} frames");
    let gone = Instant::now();

    // The call goes on peer-to-peer.
    wait_for_media(
        "60 more frames decoded on each side without the server",
        Duration::from_secs(30),
        &mut a,
        &mut b,
        |a, b| a >= a_at + 60 && b >= b_at + 60,
    )
    .await;

    // A ran its time: exit 0, and it said on stderr that the server went.
    let ra = a.finish(Duration::from_secs(30)).await;
    assert_clean(&ra);
    assert!(ra.success(), "{ra:#?}");
    assert!(
        ra.stderr
            .contains("lost the webcall server (the server shut down)"),
        "{ra:#?}"
    );
    assert!(ra.stdout.contains("time was up"), "{ra:#?}");
    let s = stats(&a.stats);
    let decoded = s["received"]["video_frames_decoded"].as_u64().unwrap();
    assert!(decoded >= a_at + 60, "A: {decoded} decoded: {s:#}");

    // B's media went with A, and nothing could renegotiate it: B ends by
    // itself, long before its own --duration, with a failure it explains.
    let a_left = Instant::now();
    let rb = b.finish(Duration::from_secs(60)).await;
    let took = a_left.elapsed();
    eprintln!("B ended {took:?} after A left");
    assert_clean(&rb);
    assert_eq!(rb.code, Some(1), "{rb:#?}");
    assert!(
        rb.stderr
            .contains("lost the webcall server (the server shut down)"),
        "{rb:#?}"
    );
    assert!(
        rb.stderr.contains(
            "webcall: error: the call ended: lost the webcall server (the server shut down), then the media connection"
        ),
        "{rb:#?}"
    );
    assert!(
        took < Duration::from_secs(45),
        "B took {took:?} after A left"
    );
    assert!(gone.elapsed() < Duration::from_secs(90));
    let s = stats(&b.stats);
    let decoded = s["received"]["video_frames_decoded"].as_u64().unwrap();
    assert!(decoded >= b_at + 60, "B: {decoded} decoded: {s:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
