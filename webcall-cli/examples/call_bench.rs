//! Figures for the native call engine on this machine, over loopback:
//! join to first decoded remote picture (native<->native, and
//! native<->headless Chromium when available), CPU per second of call at
//! 640x480 30 fps, and one-way latency read from the test pattern.
//!
//! Run with: cargo run -p webcall-cli --example call_bench
//! (inside a loopback-only namespace for hermetic figures:
//! `unshare -n -- sh -c 'ip link set lo up && cargo run --offline -p webcall-cli --example call_bench'`)

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use webcall_core::call::sources::{TestPattern, Tone};
use webcall_core::call::{self, Call, CallEvents, CallOptions};
use webcall_testkit::{Browser, TestServer};

const ROUNDS: usize = 5;
const CPU_WINDOW: Duration = Duration::from_secs(10);

fn options() -> CallOptions {
    CallOptions {
        video: Some(Box::new(TestPattern::default())),
        audio: Some(Box::new(Tone::default())),
        ice_addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..CallOptions::default()
    }
}

/// CPU time (user + system) this process has used, from /proc/self/stat.
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').context("odd /proc/self/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) in clock ticks (100 Hz here).
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_millis(ticks * 10))
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn drain(mut events: CallEvents) {
    tokio::spawn(async move { while events.recv().await.is_some() {} });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn native_pair(server: &TestServer) -> Result<(Call, Call, f64, f64)> {
    let room = server.create_room().await?;
    let (a, ea) = call::join(&room.url, options()).await?;
    drain(ea);
    let start = Instant::now();
    let (b, eb) = call::join(&room.url, options()).await?;
    drain(eb);
    wait_for("first pictures", Duration::from_secs(30), || {
        a.stats().received.video_frames_decoded > 0 && b.stats().received.video_frames_decoded > 0
    })
    .await?;
    // B's figure counts from B's own join; A's from the moment B joined.
    let b_first = b.stats().first_remote_video_ms.unwrap_or_default() as f64;
    let a_first = start.elapsed().as_secs_f64() * 1000.0;
    Ok((a, b, b_first, a_first))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let server = TestServer::start().await?;

    let (mut joiner, mut waiter) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (a, b, b_first, _) = native_pair(&server).await?;
        let a_first = a.stats().first_remote_video_ms.unwrap_or_default() as f64
            - (a.stats().elapsed_ms as f64 - b.stats().elapsed_ms as f64);
        let (sa, sb) = (a.stats(), b.stats());
        println!(
            "  round: joiner connected after {:?} ms, first picture {b_first} ms; decode errors {} / {}, key frames sent {} / {}, requests {} / {}",
            sb.connected_ms,
            sa.received.decode_errors,
            sb.received.decode_errors,
            sa.sent.key_frames,
            sb.sent.key_frames,
            sa.received.key_frame_requests,
            sb.received.key_frame_requests
        );
        joiner.push(b_first);
        waiter.push(a_first.max(0.0));
        a.hangup().await;
        b.hangup().await;
    }
    println!("native<->native, join to first decoded remote picture ({ROUNDS} rounds, median):");
    println!(
        "  second to join (makes the offer): {:.0} ms  {joiner:?}",
        median(joiner.clone())
    );
    println!(
        "  first in the room, from the other's join: {:.0} ms  {waiter:?}",
        median(waiter.clone())
    );

    let (a, b, _, _) = native_pair(&server).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu0, t0) = (cpu_time()?, Instant::now());
    let (sa0, sb0) = (a.stats(), b.stats());
    tokio::time::sleep(CPU_WINDOW).await;
    let (cpu1, wall) = (cpu_time()?, t0.elapsed());
    let (sa, sb) = (a.stats(), b.stats());
    let per_peer = (cpu1 - cpu0).as_secs_f64() / wall.as_secs_f64() / 2.0;
    println!(
        "CPU over {:.1} s of a 640x480 30 fps call with audio, both peers in this process:",
        wall.as_secs_f64()
    );
    println!(
        "  {:.1} % of one core per peer (encode + decode + network)",
        per_peer * 100.0
    );
    for (name, s0, s) in [("A", &sa0, &sa), ("B", &sb0, &sb)] {
        let frames = s.received.video_frames_decoded - s0.received.video_frames_decoded;
        let lat = s.latency.as_ref();
        println!(
            "  {name}: decoded {:.1} fps at {}x{}, sent {} kbit/s, one-way latency mean {:.1} ms (min {:.1}, max {:.1}, {} pictures), rtt {:?} ms",
            frames as f64 / wall.as_secs_f64(),
            s.received.video_width,
            s.received.video_height,
            s.send_bitrate_bps / 1000,
            lat.map_or(f64::NAN, |l| l.mean_ms),
            lat.map_or(f64::NAN, |l| l.min_ms),
            lat.map_or(f64::NAN, |l| l.max_ms),
            lat.map_or(0, |l| l.samples),
            s.rtt_ms
        );
    }
    a.hangup().await;
    b.hangup().await;

    match Browser::launch().await {
        Err(e) => println!("native<->browser: skipped (no browser: {e:#})"),
        Ok(browser) => {
            let mut native_first = Vec::new();
            let mut browser_first = Vec::new();
            for _ in 0..3 {
                let room = server.create_room().await?;
                browser.join_room(&room.url).await?;
                browser
                    .wait_until(
                        "document.body.dataset.status === 'waiting'",
                        Duration::from_secs(30),
                        "waiting",
                    )
                    .await?;
                let start = Instant::now();
                let (c, ev) = call::join(&room.url, options()).await?;
                drain(ev);
                let mut browser_ms = None;
                while start.elapsed() < Duration::from_secs(30) {
                    if browser_ms.is_none() {
                        let s = browser.stats().await?;
                        if s["videoFramesDecoded"].as_u64().unwrap_or(0) > 0 {
                            browser_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    if browser_ms.is_some() && c.stats().received.video_frames_decoded > 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                native_first.push(
                    c.stats()
                        .first_remote_video_ms
                        .map_or(f64::NAN, |v| v as f64),
                );
                browser_first.push(browser_ms.unwrap_or(f64::NAN));
                c.hangup().await;
            }
            println!("native<->browser, native joins second (3 rounds, median):");
            println!(
                "  native decodes the browser's first picture after {:.0} ms  {native_first:?}",
                median(native_first.clone())
            );
            println!(
                "  browser decodes the native's first picture after {:.0} ms (polled every ~10 ms + WebDriver round trip)  {browser_first:?}",
                median(browser_first.clone())
            );
            browser.close().await?;
        }
    }
    Ok(())
}
