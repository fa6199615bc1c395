//! The `webcall` binary against a real server on 127.0.0.1: creating links,
//! clear errors for calls that cannot happen, and a real call between two
//! `webcall join` processes over loopback (video and audio both ways,
//! decoded, recorded, latency measured from the test pattern).

mod cli_common;

use std::time::Duration;

use cli_common::{
    Live, finish, join_for_chat, join_synthetic, long_text, run, scratch, spawn, stats, wav_rms,
    webcall,
};
use webcall_testkit::TestServer;

/// Calls are heavy on two cores: one at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LIMIT: Duration = Duration::from_secs(60);

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_json_gives_a_working_link() {
    let server = TestServer::start().await.unwrap();
    let base = server.base_url();
    let b = base.clone();
    let out = blocking(move || run(webcall(&["create", "--json", "--server", &b]), LIMIT))
        .await
        .unwrap();
    assert!(out.success(), "{out:#?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let token = v["token"].as_str().unwrap();
    assert_eq!(token.len(), 22);
    assert_eq!(v["url"].as_str().unwrap(), format!("{base}/r/{token}"));
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    let info = server
        .request("GET", &format!("/api/rooms/{token}"), None)
        .await
        .unwrap();
    assert_eq!(info.json().unwrap()["participants"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_piped_prints_a_plain_text_qr_code_and_honours_the_env() {
    let server = TestServer::start().await.unwrap();
    let base = server.base_url();
    let out = blocking(move || {
        let mut c = webcall(&["create"]);
        c.env("WEBCALL_SERVER", &base);
        run(c, LIMIT)
    })
    .await
    .unwrap();
    assert!(out.success(), "{out:#?}");
    assert!(
        !out.stdout.contains('\x1b'),
        "escape codes in piped output: {:?}",
        out.stdout
    );
    let first = out.stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&server.base_url()) && first.contains("/r/"),
        "{first}"
    );
    assert!(
        out.stdout.contains('█') || out.stdout.contains('▀'),
        "no QR code: {}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_reports_a_server_that_is_down_or_not_webcall() {
    // A port nobody listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let out = blocking(move || run(webcall(&["create", "--server", &dead]), LIMIT))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("cannot reach the webcall server"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);

    // Something that answers HTTP, but not as webcall does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")
                .await;
        }
    });
    let out = blocking(move || run(webcall(&["create", "--server", &other]), LIMIT))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("does not look like a webcall server"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_refuses_bad_links_unknown_rooms_and_bad_files() {
    let server = TestServer::start().await.unwrap();
    let base = server.base_url();
    let dir = scratch("bad-input");

    let out = blocking(|| run(webcall(&["join", "not-a-link", "--no-tui"]), LIMIT))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(out.stderr.contains("not a webcall link"), "{}", out.stderr);

    let unknown = format!("{base}/r/AAAAAAAAAAAAAAAAAAAAAA");
    let out = blocking(move || run(webcall(&["join", &unknown, "--no-tui"]), LIMIT))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("this link is unknown or has expired"),
        "{}",
        out.stderr
    );

    let room = server.create_room().await.unwrap();
    let garbage = dir.join("bad.y4m");
    std::fs::write(&garbage, b"this is not a video").unwrap();
    let (url, g) = (room.url.clone(), garbage.display().to_string());
    let out = blocking(move || run(webcall(&["join", &url, "--no-tui", "--video", &g]), LIMIT))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("not a readable Y4M file"),
        "{}",
        out.stderr
    );

    let wrong = dir.join("444.y4m");
    let mut bytes = b"YUV4MPEG2 W4 H2 F30:1 C444\nFRAME\n".to_vec();
    bytes.extend_from_slice(&[16u8; 24]);
    std::fs::write(&wrong, bytes).unwrap();
    let (url, w) = (room.url.clone(), wrong.display().to_string());
    let out = blocking(move || run(webcall(&["join", &url, "--no-tui", "--video", &w]), LIMIT))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(out.stderr.contains("only 8-bit 4:2:0"), "{}", out.stderr);

    let missing = dir.join("missing.wav").display().to_string();
    let url = room.url.clone();
    let out = blocking(move || {
        run(
            webcall(&["join", &url, "--no-tui", "--audio", &missing]),
            LIMIT,
        )
    })
    .await
    .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("not a readable WAV file"),
        "{}",
        out.stderr
    );

    // Nothing above took a seat.
    let info = server
        .request("GET", &format!("/api/rooms/{}", room.token), None)
        .await
        .unwrap();
    assert_eq!(info.json().unwrap()["participants"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_connection_that_cannot_be_made_ends_the_call_at_once_saying_why() {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: no socket can
    // be bound for ICE, so no peer connection can be made. The call used to
    // wait for one until its duration ran out; it ends now, non-zero.
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let url = room.url.clone();
    let out = blocking(move || {
        run(
            webcall(&[
                "join",
                &url,
                "--no-tui",
                "--video",
                "none",
                "--audio",
                "none",
                "--speaker",
                "none",
                "--ice-addr",
                "192.0.2.1",
                "--duration",
                "600",
            ]),
            LIMIT,
        )
    })
    .await
    .unwrap();
    assert!(!out.success(), "{out:#?}");
    assert!(
        out.stderr.contains("cannot set up the media connection")
            && out.stderr.contains("--ice-addr IP"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_refuses_a_full_room() {
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let link = webcall_core::client::Link::parse(&room.url).unwrap();
    let (a, _ea) = webcall_core::client::Signaling::connect(&link)
        .await
        .unwrap();
    let (b, _eb) = webcall_core::client::Signaling::connect(&link)
        .await
        .unwrap();
    let url = room.url.clone();
    let out = blocking(move || run(webcall(&["join", &url, "--no-tui"]), LIMIT))
        .await
        .unwrap();
    assert!(!out.success());
    assert!(
        out.stderr.contains("this call already has two people"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    a.hangup().await.unwrap();
    b.hangup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_peers_see_and_hear_each_other() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("native-call");
    let peer = |name: &str, secs: &str| {
        let stats = dir.join(format!("{name}.json"));
        let wav = dir.join(format!("{name}.wav"));
        let y4m = dir.join(format!("{name}.y4m"));
        let cmd = join_synthetic(
            &room.url,
            secs,
            &stats,
            &[
                "--record-audio",
                wav.to_str().unwrap(),
                "--record-video",
                y4m.to_str().unwrap(),
            ],
        );
        (cmd, stats, wav, y4m)
    };
    let (cmd_a, stats_a, wav_a, y4m_a) = peer("a", "10");
    let (cmd_b, stats_b, wav_b, _) = peer("b", "8");
    let a = spawn(cmd_a);
    let b = spawn(cmd_b);
    let (ra, rb) = blocking(move || {
        let rb = finish(b, LIMIT);
        let ra = finish(a, LIMIT);
        (ra, rb)
    })
    .await
    .unwrap();
    assert!(ra.success(), "{ra:#?}");
    assert!(rb.success(), "{rb:#?}");
    for (run, stats_path, wav) in [(&ra, &stats_a, &wav_a), (&rb, &stats_b, &wav_b)] {
        assert!(
            run.stdout.contains("connection: connected"),
            "{}",
            run.stdout
        );
        let s = stats(stats_path);
        let r = &s["received"];
        assert!(r["video_frames_decoded"].as_u64().unwrap() >= 60, "{s:#}");
        assert!(r["audio_frames_decoded"].as_u64().unwrap() >= 150, "{s:#}");
        assert_eq!(
            (r["video_width"].as_u64(), r["video_height"].as_u64()),
            (Some(640), Some(480)),
            "{s:#}"
        );
        assert!(s["sent"]["video_frames"].as_u64().unwrap() >= 60, "{s:#}");
        assert!(s["sent"]["audio_frames"].as_u64().unwrap() >= 150, "{s:#}");
        assert!(s["connected_ms"].as_u64().is_some(), "{s:#}");
        assert!(s["first_remote_video_ms"].as_u64().is_some(), "{s:#}");
        let latency = s["latency_ms"]
            .as_f64()
            .expect("latency measured from the test pattern");
        assert!(latency > 0.0 && latency < 1000.0, "{s:#}");
        assert!(s["latency"]["samples"].as_u64().unwrap() >= 30, "{s:#}");
        // The quality: graded (loopback: good, unless the machine is too
        // busy to keep the frame rate), with the share of time in each
        // grade, and a direct path; the summary says both.
        let q = &s["quality"];
        let grade = q["grade"].as_str().expect("a quality grade");
        assert!(["good", "poor", "bad"].contains(&grade), "{s:#}");
        let shares: f64 = ["good", "poor", "bad"]
            .iter()
            .map(|g| q["time_in"][g].as_f64().unwrap())
            .sum();
        assert!((shares - 1.0).abs() < 1e-6, "{s:#}");
        assert!(q["graded_ms"].as_u64().unwrap() >= 2000, "{s:#}");
        assert!(q["measures"]["fps"].as_f64().unwrap() > 0.0, "{s:#}");
        assert_eq!(s["path"], "direct", "{s:#}");
        assert_eq!(s["video_codec"], "H264", "{s:#}");
        // A tone is sent as it is: no echo cancellation, no noise suppression.
        assert_eq!(
            s["audio_processing"],
            serde_json::json!({"echo_cancellation": false, "noise_suppression": false}),
            "{s:#}"
        );
        assert!(
            run.stdout.contains("quality: ") && run.stdout.contains("path: direct"),
            "{}",
            run.stdout
        );
        let (rms, n) = wav_rms(wav);
        assert!(n >= 48_000, "{n} samples in {}", wav.display());
        assert!(rms > 0.02, "recorded audio is silence (rms {rms})");
    }
    // B left first (its duration was shorter): A saw it go.
    assert!(ra.stdout.contains("left"), "{}", ra.stdout);
    // The recorded video is a Y4M file with whole 640x480 frames.
    let len = std::fs::metadata(&y4m_a).unwrap().len();
    assert!(len > 60 * 640 * 480 * 3 / 2, "{len} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_native_peers_chat_in_order_and_agree_on_the_verification_code() {
    use std::io::Write;
    use webcall_testkit::wait_for;

    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    // Both reach the server through a relay that reads the fingerprints
    // it passes on (and changes none).
    let relay = cli_common::relay::FingerprintRelay::launch(server.addr(), false).await;
    let link = relay.link(&room.url);
    let dir = scratch("native-chat");
    let (stats_a, stats_b) = (dir.join("a.json"), dir.join("b.json"));
    let mut a = cli_common::Live::spawn(join_for_chat(&link, &stats_a));
    let mut b = cli_common::Live::spawn(join_for_chat(&link, &stats_b));

    // A types 1,000 lines and a 4,000-character one, all before the call
    // is up, then its input ends: the call must go on.
    let from_a: Vec<String> = (0..1000)
        .map(|i| format!("a to b {i:04} ✓"))
        .chain([long_text('A')])
        .collect();
    let mut a_in = a.take_stdin();
    let lines = from_a.clone();
    let writer = std::thread::spawn(move || {
        for line in lines {
            writeln!(a_in, "{line}").unwrap();
        }
        // Dropped here: end of input.
    });
    // B types two, a line with a tab, and keeps its input open.
    let mut b_in = b.take_stdin();
    let from_b = [
        "hello from b".to_owned(),
        long_text('B'),
        "tab\there \\ <b>".to_owned(),
    ];
    for line in &from_b {
        writeln!(b_in, "{line}").unwrap();
    }

    wait_for("B has all of A's messages", LIMIT * 2, || {
        b.lines_after("chat: ").len() >= from_a.len()
    })
    .await
    .unwrap_or_else(|e| {
        let got = b.lines_after("chat: ");
        panic!(
            "{e}: B got {} messages, the first {:?}; A's stderr:\n{}\nB's stderr:\n{}",
            got.len(),
            got.first(),
            a.stderr(),
            b.stderr()
        )
    });
    writer.join().unwrap();
    wait_for("A has B's messages", LIMIT, || {
        a.lines_after("chat: ").len() >= 3
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#?}", a.lines()));
    assert_eq!(
        b.lines_after("chat: "),
        from_a,
        "in order, each whole on one line"
    );
    assert_eq!(
        a.lines_after("chat: "),
        ["hello from b", &from_b[1], "tab\\there \\\\ <b>"],
        "control characters and backslashes escaped"
    );

    // A's input has ended; the call goes on and A still gets messages.
    writeln!(b_in, "still there?").unwrap();
    wait_for("A still in the call after its input ended", LIMIT, || {
        a.lines_after("chat: ").len() == 4
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#?}", a.lines()));
    assert_eq!(a.lines_after("chat: ")[3], "still there?");

    // Both show the same code, on screen and in their figures.
    let code_a = a.lines_after("verification code: ");
    let code_b = b.lines_after("verification code: ");
    assert!(
        !code_a.is_empty() && !code_b.is_empty(),
        "{code_a:?} {code_b:?}"
    );
    assert_eq!(code_a.last(), code_b.last());

    a.interrupt();
    b.interrupt();
    let (ra, rb) = blocking(move || (a.finish(LIMIT), b.finish(LIMIT)))
        .await
        .unwrap();
    assert!(ra.success(), "{ra:#?}");
    assert!(rb.success(), "{rb:#?}");
    let (sa, sb) = (stats(&stats_a), stats(&stats_b));
    assert_eq!(sa["sent"]["chat_messages"], 1001, "{sa:#}");
    assert_eq!(sb["received"]["chat_messages"], 1001, "{sb:#}");
    assert_eq!(sb["sent"]["chat_messages"], 4, "{sb:#}");
    assert_eq!(sa["received"]["chat_messages"], 4, "{sa:#}");
    let code = sa["verification_code"].as_str().expect("a code").to_owned();
    assert_eq!(sb["verification_code"].as_str(), Some(code.as_str()));
    assert!(
        code.len() == 6 && code.bytes().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    assert_eq!(code_a.last().unwrap().replace(' ', ""), code);

    // It is the code of the two certificates the relay saw go by.
    let seen = relay.seen();
    let mut fingerprints: Vec<String> = seen.iter().map(|s| s.delivered.clone()).collect();
    fingerprints.sort();
    fingerprints.dedup();
    assert_eq!(fingerprints.len(), 2, "{seen:#?}");
    let expected =
        webcall_core::call::verify::code_from_fingerprints(&fingerprints[0], &fingerprints[1]);
    assert_eq!(code_a.last().unwrap(), &expected);
    drop(b_in);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The chat API's limits, on a real call that never connects (nobody else
/// joins, so the data channel never opens and the outbox fills).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_waits_in_a_bounded_outbox_and_refuses_bad_texts() {
    use webcall_core::Error;
    use webcall_core::call::{self, CHAT_OUTBOX, CallOptions};

    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let options = CallOptions {
        ice_addrs: vec!["127.0.0.1".parse().unwrap()],
        ..CallOptions::default()
    };
    let (call, _events) = call::join(&room.url, options).await.unwrap();
    assert!(matches!(call.try_send_chat(""), Err(Error::ChatEmpty)));
    let err = call.try_send_chat("x".repeat(4001)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChatTooLong {
                chars: 4001,
                limit: 4000
            }
        ),
        "{err}"
    );
    let first = call.try_send_chat("x".repeat(4000)).unwrap();
    assert_eq!(first.text.chars().count(), 4000);
    for i in 1..CHAT_OUTBOX {
        call.send_chat(format!("waiting {i}")).await.unwrap();
    }
    let err = call.try_send_chat("one too many").unwrap_err();
    assert!(matches!(err, Error::ChatOutboxFull { limit: 100 }), "{err}");
    assert!(
        err.to_string().contains("wait until the call is connected"),
        "{err}"
    );
    // Waiting for room waits (nothing drains the outbox).
    let waited = tokio::time::timeout(Duration::from_millis(300), call.send_chat("later")).await;
    assert!(waited.is_err(), "send_chat waits while the outbox is full");
    assert_eq!(call.stats().sent.chat_messages, 0);
    assert_eq!(call.verification_code(), None, "nothing negotiated");

    call.hangup().await;
    assert!(matches!(
        call.try_send_chat("hello?"),
        Err(Error::CallEnded)
    ));
    assert!(matches!(
        call.send_chat("hello?").await,
        Err(Error::CallEnded)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_call_losing_a_quarter_of_its_packets_is_graded_bad() {
    let _heavy = HEAVY.lock().await;
    if !webcall_testkit::loopback_only_namespace() {
        eprintln!("skipped: dropping packets needs the loopback-only namespace (see the README)");
        return;
    }
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("native-lossy");
    let (stats_a, stats_b) = (dir.join("a.json"), dir.join("b.json"));
    let a = Live::spawn(join_synthetic(&room.url, "22", &stats_a, &[]));
    let b = Live::spawn(join_synthetic(&room.url, "20", &stats_b, &[]));
    // The loss starts once the call is up: it is the grade under loss that
    // is tested, not a handshake through it (DTLS's retransmission backoff
    // can outlast the call when a quarter of its packets go).
    let connected = |p: &Live| {
        p.lines()
            .iter()
            .any(|l| l.contains("connection: connected"))
    };
    webcall_testkit::wait_until("both sides connected", LIMIT, || async {
        connected(&a) && connected(&b)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\na: {:?}\nb: {:?}", a.lines(), b.lines()));
    let _loss = webcall_testkit::UdpLoss::start(25).unwrap();
    let (ra, rb) = blocking(move || {
        let rb = b.finish(LIMIT);
        let ra = a.finish(LIMIT);
        (ra, rb)
    })
    .await
    .unwrap();
    assert!(ra.success(), "{ra:#?}");
    assert!(rb.success(), "{rb:#?}");
    for (run, path) in [(&ra, &stats_a), (&rb, &stats_b)] {
        let s = stats(path);
        let q = &s["quality"];
        println!("quality with a quarter lost: {q}");
        assert!(
            q["time_in"]["bad"].as_f64().unwrap() > 0.5,
            "mostly bad: {s:#}"
        );
        assert_eq!(q["average"], "bad", "{s:#}");
        assert!(run.stdout.contains("quality: bad"), "{}", run.stdout);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
