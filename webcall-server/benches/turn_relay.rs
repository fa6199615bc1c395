//! Figures of the built-in TURN server, printed (not a timed test). The
//! server is the real `webcall-server --turn` in a process of its own, so
//! that its memory and CPU are its alone; the clients here are the webrtc-rs
//! `turn` crate's, each with its own minted credential, on loopback.
//!
//! - memory: the server's resident set before and after opening N
//!   allocations, per allocation;
//! - relay: K relayed calls, each two allocations sending to each other's
//!   relayed address at 1 Mbit/s each way (1,000-byte packets, 125 a
//!   second), as two browsers behind NATs relaying both ends do: the bytes
//!   delivered, and the server's CPU time over the window, so how many such
//!   calls one core carries; and where a loss happens: the clients' own
//!   CPU, and the datagrams the kernel dropped at the server's sockets and
//!   at the clients' (full receive buffers).
//!
//! Run with `cargo bench -p webcall-server --bench turn_relay --profile dev`
//! (append `-- memory` or `-- relay` for one section);
//! `WEBCALL_BENCH_ALLOCATIONS` (default 200) and `WEBCALL_BENCH_CALLS`
//! (default 25) size them. Allocations are opened at 15 a second: the
//! server answers at most 20 unauthenticated requests a second from one
//! address, and every client here is 127.0.0.1.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use turn::client::Client;
use webcall_server::turn::TurnSecret;
use webcall_server::turn::credentials::mint;
use webrtc_util::Conn;

const SECRET: &str = "webcall bench secret, loopback only";
/// Linux reports process CPU time in ticks of 1/100 s (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;
const PACKET: usize = 1000;
const PACKETS_PER_SECOND: u64 = 125;
const WINDOW: Duration = Duration::from_secs(10);

/// `webcall-server --turn` on loopback, killed on drop.
struct ServerProcess {
    child: Child,
    turn: SocketAddr,
}

impl ServerProcess {
    fn start(turn_port: u16, max_allocations: usize) -> Result<Self> {
        let child = Command::new(env!("CARGO_BIN_EXE_webcall-server"))
            .args(["--listen", "127.0.0.1:0", "--ice-servers", "[]", "--turn"])
            .args(["--turn-listen", &format!("127.0.0.1:{turn_port}")])
            .args(["--turn-public-ip", "127.0.0.1"])
            .args(["--turn-allow-peer", "127.0.0.0/8"])
            .args(["--turn-relay-ports", "40000-48999"])
            .args(["--turn-secret", SECRET])
            .args(["--turn-max-allocations", &max_allocations.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start webcall-server")?;
        Ok(Self {
            child,
            turn: SocketAddr::from(([127, 0, 0, 1], turn_port)),
        })
    }

    /// User plus system CPU time so far, in seconds.
    fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(&self.child.id().to_string())
    }

    /// Resident set size in KiB.
    fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User plus system CPU time of a process (`self` or a pid), in seconds.
fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, rest) = stat.rsplit_once(')').context("unexpected /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 0, utime 11, stime 12.
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// Datagrams the kernel dropped because a UDP socket's receive buffer was
/// full, summed over the sockets a process (`self` or a pid) holds: tells
/// whether a loss is the server's or the clients' falling behind.
fn udp_receive_drops(pid: &str) -> Result<u64> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = std::fs::read_link(fd?.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|t| t.strip_suffix(']'))
        {
            inodes.insert(inode.to_owned());
        }
    }
    let mut drops = 0;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // sl local rem st tx:rx tr:tm retr uid timeout inode ref pointer drops
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 13 && inodes.contains(f[9]) {
                drops += f[12].parse::<u64>().unwrap_or(0);
            }
        }
    }
    Ok(drops)
}

fn free_udp_port() -> Result<u16> {
    // The server takes UDP and TCP on the same port: find one free for both.
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both UDP and TCP")
}

/// One allocation: the client (kept alive with it) and its relayed socket.
struct Allocation {
    _client: Client,
    relay: Arc<dyn Conn + Send + Sync>,
    relayed: SocketAddr,
}

async fn allocate(server: SocketAddr, participant: &str) -> Result<Allocation> {
    let secret = TurnSecret::new(SECRET)?;
    let credential = mint(
        &secret,
        participant,
        Duration::from_secs(3600),
        SystemTime::now(),
    );
    let (client, relay) =
        webcall_testkit::turn::allocate(server, &credential.username, &credential.password).await?;
    let relayed = relay.local_addr()?;
    Ok(Allocation {
        _client: client,
        relay: Arc::new(relay),
        relayed,
    })
}

/// Opens `n` allocations at about 15 a second (under the server's limit on
/// unauthenticated requests from one address).
async fn allocate_many(server: SocketAddr, n: usize, tag: &str) -> Result<Vec<Allocation>> {
    let mut out = Vec::with_capacity(n);
    let mut pace = tokio::time::interval(Duration::from_millis(1000 / 15));
    for i in 0..n {
        pace.tick().await;
        out.push(
            allocate(server, &format!("{tag}{i}"))
                .await
                .with_context(|| format!("allocation {i}"))?,
        );
    }
    Ok(out)
}

async fn memory(allocations: usize) -> Result<()> {
    let server = ServerProcess::start(free_udp_port()?, allocations + 10)?;
    // One allocation first, so that lazily made structures are counted in
    // the baseline.
    let _first = allocate_with_retry(server.turn, "warm").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib()?;
    let started = Instant::now();
    let held = allocate_many(server.turn, allocations, "m").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = server.rss_kib()?;
    println!(
        "memory: {allocations} allocations in {:.1} s; server resident set {before} KiB -> {after} KiB: {:.1} KiB per allocation",
        started.elapsed().as_secs_f64(),
        (after.saturating_sub(before)) as f64 / allocations as f64
    );
    drop(held);
    Ok(())
}

/// The first request may race the server's start: retry for a few seconds.
async fn allocate_with_retry(server: SocketAddr, participant: &str) -> Result<Allocation> {
    let start = Instant::now();
    loop {
        match allocate(server, participant).await {
            Ok(a) => return Ok(a),
            Err(e) if start.elapsed() > Duration::from_secs(15) => {
                return Err(e.context("the TURN server never answered"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn relay(calls: usize) -> Result<()> {
    let server = ServerProcess::start(free_udp_port()?, calls * 2 + 10)?;
    let _first = allocate_with_retry(server.turn, "warm").await?;
    let ends = allocate_many(server.turn, calls * 2, "r").await?;
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    for pair in ends.chunks(2) {
        for (me, other) in [(&pair[0], &pair[1]), (&pair[1], &pair[0])] {
            let (relay, to) = (me.relay.clone(), other.relayed);
            let (sent, halt) = (sent.clone(), stop.clone());
            tasks.spawn(async move {
                let packet = vec![0x5a; PACKET];
                let mut tick =
                    tokio::time::interval(Duration::from_micros(1_000_000 / PACKETS_PER_SECOND));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                while !halt.is_cancelled() {
                    tick.tick().await;
                    if relay.send_to(&packet, to).await.is_ok() {
                        sent.fetch_add(PACKET as u64, Ordering::Relaxed);
                    }
                }
            });
            let (relay, received, halt) = (me.relay.clone(), received.clone(), stop.clone());
            tasks.spawn(async move {
                let mut buf = vec![0u8; 2048];
                loop {
                    tokio::select! {
                        () = halt.cancelled() => break,
                        r = relay.recv_from(&mut buf) => match r {
                            Ok((n, _)) => { received.fetch_add(n as u64, Ordering::Relaxed); }
                            Err(_) => break,
                        },
                    }
                }
            });
        }
    }
    // Permissions and channels settle, then the measured window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_pid = server.child.id().to_string();
    let (client_cpu0, server_drops0, client_drops0) = (
        cpu_seconds("self")?,
        udp_receive_drops(&server_pid)?,
        udp_receive_drops("self")?,
    );
    let (cpu0, rx0, tx0, t0) = (
        server.cpu_seconds()?,
        received.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
        Instant::now(),
    );
    tokio::time::sleep(WINDOW).await;
    let (cpu1, rx1, tx1, secs) = (
        server.cpu_seconds()?,
        received.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let (client_cpu1, server_drops1, client_drops1) = (
        cpu_seconds("self")?,
        udp_receive_drops(&server_pid)?,
        udp_receive_drops("self")?,
    );
    stop.cancel();
    while tasks.join_next().await.is_some() {}
    let core = (cpu1 - cpu0) / secs;
    let mbit = |bytes: u64| bytes as f64 * 8.0 / secs / 1e6;
    println!(
        "relay: {calls} calls at 1 Mbit/s each way: sent {:.1} Mbit/s, delivered {:.1} Mbit/s ({:.1} %); server CPU {:.1} % of one core = {:.2} % per call, so about {:.0} such calls per core",
        mbit(tx1 - tx0),
        mbit(rx1 - rx0),
        100.0 * (rx1 - rx0) as f64 / (tx1 - tx0).max(1) as f64,
        core * 100.0,
        core * 100.0 / calls as f64,
        if core > 0.0 {
            calls as f64 / core
        } else {
            f64::INFINITY
        },
    );
    println!(
        "relay: the clients here (one worker thread) used {:.1} % of one core; datagrams dropped for full receive buffers in the window: {} at the server's sockets, {} at the clients'",
        (client_cpu1 - client_cpu0) / secs * 100.0,
        server_drops1 - server_drops0,
        client_drops1 - client_drops0,
    );
    Ok(())
}

fn main() -> Result<()> {
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| ["memory", "relay"].contains(&a.as_str()))
        .collect();
    let wanted = |s: &str| sections.is_empty() || sections.iter().any(|a| a == s);
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if wanted("memory") {
            memory(env("WEBCALL_BENCH_ALLOCATIONS", 200)).await?;
        }
        if wanted("relay") {
            relay(env("WEBCALL_BENCH_CALLS", 25)).await?;
        }
        Ok(())
    })
}
