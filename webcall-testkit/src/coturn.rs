//! [`Coturn`]: coturn (`turnserver`, Debian package `coturn`) on a free
//! loopback port with the TURN REST secret, as an external TURN server for
//! relay tests, and credentials minted for it.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use webcall_core::protocol::IceServer;

/// The coturn binary; `WEBCALL_TURNSERVER` overrides it.
const DEFAULT_TURNSERVER: &str = "turnserver";

/// A coturn process relaying between loopback peers, stopped on drop.
///
/// It listens on `127.0.0.1:<port>` (UDP and TCP), relays from 127.0.0.1,
/// allows loopback peers (everything in a test is on loopback) and accepts
/// TURN REST credentials made with [`Coturn::credential`]: username
/// `<unix-expiry>:<id>`, password base64(HMAC-SHA1(secret, username)).
#[derive(Debug)]
pub struct Coturn {
    addr: SocketAddr,
    secret: String,
    child: Child,
    dir: PathBuf,
}

impl Coturn {
    /// The coturn binary, when installed.
    pub fn binary() -> Option<PathBuf> {
        crate::installed(std::env::var_os("WEBCALL_TURNSERVER"), DEFAULT_TURNSERVER)
    }

    /// Starts coturn with a fresh random secret and waits until its UDP
    /// listener is open. Fails when `turnserver` is not installed (see
    /// [`Coturn::binary`]) or does not start.
    pub fn start() -> Result<Self> {
        let mut secret = [0u8; 16];
        getrandom_fill(&mut secret)?;
        let secret = hex(&secret);
        let port = free_udp_port()?;
        let dir =
            std::env::temp_dir().join(format!("webcall-coturn-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = spawn(addr, &secret, &dir)?;
        let mut coturn = Self {
            addr,
            secret,
            child,
            dir,
        };
        coturn.wait_listening(Duration::from_secs(15))?;
        Ok(coturn)
    }

    /// Stops coturn and starts it again on the same port with the same
    /// secret: every allocation is gone, credentials still work, as after a
    /// crash or a redeploy of the TURN server.
    pub fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.join("turn.log"));
        let start = Instant::now();
        // The port may take a moment to be free again.
        loop {
            match spawn(self.addr, &self.secret, &self.dir) {
                Ok(child) => self.child = child,
                Err(e) => return Err(e),
            }
            match self.wait_listening(Duration::from_secs(15)) {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() > Duration::from_secs(30) => return Err(e),
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    fn wait_listening(&mut self, bound: Duration) -> Result<()> {
        let log = self.dir.join("turn.log");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("coturn exited at start ({status}): {}", self.log());
            }
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(&log) {
                let _ = f.read_to_string(&mut text);
            }
            if text.contains("UDP listener opened on") {
                return Ok(());
            }
            if start.elapsed() > bound {
                bail!("coturn did not open its UDP listener within {bound:?}: {text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Where coturn listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ICE server for this coturn, `transport` being `udp` or `tcp`, with
    /// a TURN REST credential for `id` valid for `ttl`.
    pub fn ice_server(&self, transport: &str, id: &str, ttl: Duration) -> IceServer {
        let (username, credential) = self.credential(id, ttl);
        IceServer {
            urls: vec![format!("turn:{}?transport={transport}", self.addr)],
            username: Some(username),
            credential: Some(credential),
        }
    }

    /// A TURN REST credential for `id`: `(<unix-expiry>:<id>, password)`.
    pub fn credential(&self, id: &str, ttl: Duration) -> (String, String) {
        let expiry = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(ttl)
            .as_secs();
        let username = format!("{expiry}:{id}");
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            self.secret.as_bytes(),
        );
        let tag = ring::hmac::sign(&key, username.as_bytes());
        let password = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        (username, password)
    }

    /// coturn's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turn.log")).unwrap_or_default()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts `turnserver` on `addr` with the REST `secret`, its files in `dir`.
fn spawn(addr: SocketAddr, secret: &str, dir: &std::path::Path) -> Result<Child> {
    let binary = Coturn::binary()
        .context("coturn is not installed (apt-get install coturn), or set WEBCALL_TURNSERVER")?;
    Command::new(&binary)
        .args([
            "-n",
            // Verbose: the listener lines tell when it is ready, and a
            // failing test shows every request it answered.
            "-v",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            &format!("--listening-port={}", addr.port()),
            "--use-auth-secret",
            &format!("--static-auth-secret={secret}"),
            "--realm=webcall",
            "--allow-loopback-peers",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--simple-log",
            &format!("--log-file={}", dir.join("turn.log").display()),
            &format!("--pidfile={}", dir.join("turn.pid").display()),
            &format!("--userdb={}", dir.join("turndb").display()),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))
}

fn free_udp_port() -> Result<u16> {
    // coturn takes the same port for TCP: find one free for both.
    for _ in 0..20 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no loopback port free for both UDP and TCP")
}

fn getrandom_fill(buf: &mut [u8]) -> Result<()> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| anyhow::anyhow!("no system randomness"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
