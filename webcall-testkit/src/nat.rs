//! [`NatLab`]: the internet in a few network namespaces, for tests that must
//! show a call connecting between two homes.
//!
//! ```text
//!            "public" namespace: 203.0.113.1 (the server, its TURN)
//!                 |  bridge
//!        +--------+---------+
//!   203.0.113.2        203.0.113.3          (router namespaces, NAT)
//!   192.0.2.1          198.51.100.1
//!        |                  |
//!   192.0.2.2          198.51.100.2         (home namespaces: a peer each)
//! ```
//!
//! Each home sits behind its own router with the NAT its [`Nat`] names:
//! symmetric (a fresh public port for every destination, as carrier-grade
//! and many corporate NATs do), or one that also drops all outgoing UDP (a
//! firewall that lets only TCP out). Nothing routes into a home from
//! outside, so two peers reach each other only through what the public
//! namespace offers. Addresses come from the documentation ranges and exist
//! only inside these namespaces: no packet leaves the machine.
//!
//! Programs run inside a namespace through `ip netns exec`
//! ([`NatLab::command`]); the test reaches a TCP port inside one through
//! [`Forward`], a bridge over a Unix socket (sockets on the file system are
//! shared across network namespaces). Needs root, `ip` (iproute2), `nft`
//! (nftables) and `socat`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinHandle;

/// The address of the public namespace, where the server listens.
pub const PUBLIC_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// What a home's router does to traffic going out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// Address- and port-dependent mapping: every destination gets its own
    /// public port, so an address learned through STUN is useless to the
    /// other peer.
    Symmetric,
    /// An ordinary NAT that drops every outgoing UDP packet: only TCP (and
    /// so TURN over TCP or TLS) gets out.
    UdpBlocked,
}

/// One home: a namespace with one peer behind its router.
#[derive(Debug, Clone)]
pub struct Home {
    /// The namespace the home's programs run in.
    pub netns: String,
    /// The home's private address.
    pub addr: Ipv4Addr,
    /// The router's address on the public network (what the NAT maps to).
    pub public_addr: Ipv4Addr,
    /// What the router does.
    pub nat: Nat,
}

/// The namespaces of one test, deleted on drop.
#[derive(Debug)]
pub struct NatLab {
    public: String,
    homes: Vec<Home>,
    namespaces: Vec<String>,
}

impl NatLab {
    /// Builds the public namespace and one home per entry of `nats` (at
    /// most two), each behind its own router.
    pub fn new(nats: &[Nat]) -> Result<Self> {
        if nats.len() > 2 {
            bail!("a NAT lab has at most two homes");
        }
        let prefix = format!(
            "wc{}-{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Self {
            public: format!("{prefix}-pub"),
            homes: Vec::new(),
            namespaces: Vec::new(),
        };
        lab.add_namespace(&lab.public.clone())?;
        let public = lab.public.clone();
        ip(&["-n", &public, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &public, "link", "set", "br0", "up"])?;
        ip(&[
            "-n",
            &public,
            "addr",
            "add",
            &format!("{PUBLIC_IP}/24"),
            "dev",
            "br0",
        ])?;
        let lans = [
            (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)),
            (
                Ipv4Addr::new(198, 51, 100, 1),
                Ipv4Addr::new(198, 51, 100, 2),
            ),
        ];
        for (i, (&nat, &(gateway, addr))) in nats.iter().zip(lans.iter()).enumerate() {
            let router = format!("{prefix}-r{i}");
            let home = format!("{prefix}-h{i}");
            let public_addr = Ipv4Addr::new(203, 0, 113, 2 + i as u8);
            lab.add_namespace(&router)?;
            lab.add_namespace(&home)?;
            // Router <-> public bridge.
            let port = format!("wan{i}");
            ip(&[
                "link", "add", &port, "netns", &public, "type", "veth", "peer", "name", "wan",
                "netns", &router,
            ])?;
            ip(&["-n", &public, "link", "set", &port, "master", "br0", "up"])?;
            ip(&[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{public_addr}/24"),
                "dev",
                "wan",
            ])?;
            ip(&["-n", &router, "link", "set", "wan", "up"])?;
            // Router <-> home.
            ip(&[
                "link", "add", "lan", "netns", &router, "type", "veth", "peer", "name", "eth0",
                "netns", &home,
            ])?;
            ip(&[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{gateway}/24"),
                "dev",
                "lan",
            ])?;
            ip(&["-n", &router, "link", "set", "lan", "up"])?;
            ip(&[
                "-n",
                &home,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &home, "link", "set", "eth0", "up"])?;
            ip(&[
                "-n",
                &home,
                "route",
                "add",
                "default",
                "via",
                &gateway.to_string(),
            ])?;
            run(Command::new("ip").args([
                "netns",
                "exec",
                &router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ]))?;
            nft(&router, &ruleset(nat))?;
            lab.homes.push(Home {
                netns: home,
                addr,
                public_addr,
                nat,
            });
        }
        Ok(lab)
    }

    fn add_namespace(&mut self, name: &str) -> Result<()> {
        ip(&["netns", "add", name]).with_context(|| {
            "cannot make a network namespace: NAT tests need root and iproute2".to_owned()
        })?;
        self.namespaces.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"])
    }

    /// The public namespace (where the server runs).
    pub fn public_netns(&self) -> &str {
        &self.public
    }

    /// The homes, in the order given to [`NatLab::new`].
    pub fn homes(&self) -> &[Home] {
        &self.homes
    }

    /// `program` to be run inside namespace `netns`.
    pub fn command(&self, netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        netns_command(netns, program)
    }

    /// A loopback port of this process that reaches `target` inside
    /// namespace `netns`.
    pub async fn forward(&self, netns: &str, target: SocketAddr) -> Result<Forward> {
        Forward::start(netns, target).await
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        // Deleting a namespace removes its interfaces (and the veth ends in
        // the others) and NAT tables.
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `program` run inside namespace `netns` (`ip netns exec`, which becomes
/// the program: the child's pid is the program's).
pub fn netns_command(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", netns]).arg(program);
    command
}

/// The router's nftables rules for `nat`.
fn ruleset(nat: Nat) -> String {
    let (masquerade, filter) = match nat {
        // `random`: the public port is drawn afresh for each new mapping,
        // and a mapping is per destination (conntrack's 5-tuple).
        Nat::Symmetric => ("masquerade random", ""),
        Nat::UdpBlocked => (
            "masquerade",
            "table ip filter {\n  chain forward {\n    type filter hook forward priority 0\n    iifname \"lan\" meta l4proto udp drop\n  }\n}\n",
        ),
    };
    format!(
        "table ip nat {{\n  chain postrouting {{\n    type nat hook postrouting priority 100\n    oifname \"wan\" {masquerade}\n  }}\n}}\n\
         table ip inbound {{\n  chain forward {{\n    type filter hook forward priority 0\n    iifname \"wan\" ct state established,related accept\n    iifname \"wan\" drop\n  }}\n}}\n{filter}"
    )
}

fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

fn nft(netns: &str, rules: &str) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("webcall-nft-{netns}"));
    std::fs::write(&dir, rules).with_context(|| format!("cannot write {}", dir.display()))?;
    let result = run(netns_command(netns, "nft").arg("-f").arg(&dir));
    let _ = std::fs::remove_file(&dir);
    result.context("nft failed: NAT tests need nftables (apt-get install nftables)")
}

fn run(command: &mut Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A loopback port of this process bridged to a TCP address inside another
/// network namespace: `socat` inside listens on a Unix socket and connects
/// to the target; a task here accepts on loopback and connects to that
/// socket. Stopped on drop.
#[derive(Debug)]
pub struct Forward {
    addr: SocketAddr,
    socat: Child,
    task: JoinHandle<()>,
    socket: PathBuf,
}

impl Forward {
    pub(crate) async fn start(netns: &str, target: SocketAddr) -> Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let socket = std::env::temp_dir().join(format!(
            "webcall-fwd-{}-{}.sock",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        let socat = netns_command(netns, "socat")
            .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
            .arg(format!("TCP:{target}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start socat (apt-get install socat)")?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let path = socket.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let path = path.clone();
                tokio::spawn(async move {
                    if let Ok(mut unix) = UnixStream::connect(&path).await {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                    }
                });
            }
        });
        let mut forward = Self {
            addr,
            socat,
            task,
            socket,
        };
        let start = Instant::now();
        while !forward.socket.exists() {
            if let Some(status) = forward.socat.try_wait()? {
                bail!("socat in {netns} exited at start with {status}");
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("socat in {netns} did not open its socket within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(forward)
    }

    /// The loopback address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.socat.kill();
        let _ = self.socat.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A program built by this workspace next to the running test (cargo puts
/// test executables in `target/<profile>/deps/` and binaries one level up).
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable has no parent directory")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} not found: build the workspace first (cargo build --workspace)",
            path.display()
        );
    }
    Ok(path)
}

/// The port the server listens on in the public namespace.
pub const SERVER_PORT: u16 = 8000;

/// `webcall-server`, the real binary, running in a lab's public namespace
/// on `203.0.113.1:8000` with links under `http://203.0.113.1:8000`.
/// Stopped on drop; its output is kept for failure messages.
#[derive(Debug)]
pub struct LabServer {
    child: Child,
    api: Forward,
    log: PathBuf,
    data: PathBuf,
}

impl NatLab {
    /// Starts `webcall-server` in the public namespace with `args` added to
    /// the listen address and public URL, and waits until it is healthy.
    pub async fn start_server(&self, args: &[&str]) -> Result<LabServer> {
        let binary = workspace_binary("webcall-server")?;
        let log = std::env::temp_dir().join(format!("webcall-{}-server.log", self.public));
        let out = std::fs::File::create(&log)?;
        let data = std::env::temp_dir().join(format!("webcall-{}-data", self.public));
        let child = self
            .command(&self.public, &binary)
            .arg("--listen")
            .arg(format!("{PUBLIC_IP}:{SERVER_PORT}"))
            .arg("--public-url")
            .arg(format!("http://{PUBLIC_IP}:{SERVER_PORT}"))
            // Its state (the TURN secret) stays in the test's scratch space.
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("RUST_LOG", "info,webcall_server=debug")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let api = Forward::start(&self.public, SocketAddr::from((PUBLIC_IP, SERVER_PORT))).await?;
        let mut server = LabServer {
            child,
            api,
            log,
            data,
        };
        let start = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "webcall-server exited at start with {status}:\n{}",
                    server.log()
                );
            }
            if let Ok(r) = server.request("GET", "/healthz").await
                && r.status == 200
            {
                return Ok(server);
            }
            if start.elapsed() > Duration::from_secs(20) {
                bail!(
                    "webcall-server was not healthy within 20 s:\n{}",
                    server.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl LabServer {
    /// The server's base URL as the homes reach it.
    pub fn base_url(&self) -> String {
        format!("http://{PUBLIC_IP}:{SERVER_PORT}")
    }

    /// Creates a room with `POST /api/rooms`; its link points at the public
    /// address.
    pub async fn create_room(&self) -> Result<webcall_core::protocol::CreatedRoom> {
        let response = self.request("POST", "/api/rooms").await?;
        if response.status != 201 {
            bail!(
                "POST /api/rooms answered {} {}",
                response.status,
                response.text()
            );
        }
        serde_json::from_slice(&response.body)
            .with_context(|| format!("unexpected room: {}", response.text()))
    }

    /// Sends one request through the forwarded port, addressed to the
    /// server's public name.
    pub async fn request(&self, method: &str, path: &str) -> Result<crate::http::Response> {
        crate::http::request_as(
            self.api.addr(),
            &format!("{PUBLIC_IP}:{SERVER_PORT}"),
            method,
            path,
            None,
        )
        .await
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LabServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
