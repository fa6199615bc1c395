//! [`RedisServer`]: a real `redis-server` (Debian package `redis-server`)
//! on a free loopback port with persistence off, for the tests of the
//! shared room store and bus. It can be stopped and started again on the
//! same port, as a Redis restart or an outage.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The Redis binary; `WEBCALL_REDIS_SERVER` overrides it.
const DEFAULT_REDIS_SERVER: &str = "redis-server";

/// A `redis-server` on `127.0.0.1:<port>`, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    addr: SocketAddr,
    child: Option<Child>,
    dir: PathBuf,
    /// Every write is in an append-only file in `dir` (synced at once), so
    /// data outlives a stop and start, as on a Redis run for production.
    durable: bool,
}

impl RedisServer {
    /// The `redis-server` binary, when installed.
    pub fn binary() -> Option<PathBuf> {
        crate::installed(
            std::env::var_os("WEBCALL_REDIS_SERVER"),
            DEFAULT_REDIS_SERVER,
        )
    }

    /// Starts Redis on a free loopback port (no RDB, no AOF: a stop loses
    /// everything) and waits until it answers `PING`.
    pub fn start() -> Result<Self> {
        Self::start_keeping(false)
    }

    /// The same, but every write goes to an append-only file in the
    /// server's temporary directory (synced at each write, removed on
    /// drop): the data outlives [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again), as a production Redis's does.
    pub fn start_durable() -> Result<Self> {
        Self::start_keeping(true)
    }

    fn start_keeping(durable: bool) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("webcall-redis-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut redis = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            dir,
            durable,
        };
        redis.start_again()?;
        Ok(redis)
    }

    /// The URL the server's `--store` takes: `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    /// Where Redis listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kills Redis (its data is gone: persistence is off). Connections to
    /// it are refused until [`start_again`](Self::start_again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Redis (again) on the same port and waits until it answers.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        let binary = Self::binary().context(
            "redis-server is not installed (apt-get install redis-server), or set WEBCALL_REDIS_SERVER",
        )?;
        let started = Instant::now();
        loop {
            let child = Command::new(&binary)
                .args([
                    "--port",
                    &self.addr.port().to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    if self.durable { "yes" } else { "no" },
                    "--appendfsync",
                    "always",
                    "--daemonize",
                    "no",
                    "--dir",
                ])
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", binary.display()))?;
            self.child = Some(child);
            match self.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(()),
                // The port may take a moment to be free again after a stop.
                Err(e) if started.elapsed() > Duration::from_secs(30) => return Err(e),
                Err(_) => {
                    self.stop();
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    fn wait_ready(&mut self, bound: Duration) -> Result<()> {
        use std::io::{Read, Write};
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("redis-server exited at start ({status})");
            }
            if let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
                stream.set_read_timeout(Some(Duration::from_secs(1)))?;
                let mut reply = [0u8; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return Ok(());
                }
            }
            if start.elapsed() > bound {
                bail!(
                    "redis-server did not answer PING on {} within {bound:?}",
                    self.addr
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
