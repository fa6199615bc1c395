//! # webcall-testkit
//!
//! Helpers shared by webcall's end-to-end tests. Everything here is real:
//!
//! - [`TestServer`]: the webcall server from `webcall_server::run`, on a free
//!   port of 127.0.0.1, with a configuration fit for tests (no STUN server
//!   off the machine, no rate limit on room creation).
//! - [`Browser`]: one headless Chromium, driven over WebDriver through its
//!   own `chromedriver`, with fake camera and microphone devices.
//! - [`http`]: one-shot HTTP requests (reqwest) for loopback servers.
//! - [`wait_until`]: the one polling helper: a condition, a bound, a
//!   message on timeout.
//! - [`TcpProxy`]: a loopback TCP proxy that can be stopped and started
//!   again mid-call, as a restarted reverse proxy.
//! - [`NatLab`]: network namespaces standing for the internet, with homes
//!   behind symmetric NAT or UDP-blocking routers.
//! - [`Coturn`]: coturn on a loopback port with the TURN REST secret, and
//!   credentials minted for it, for relay-only calls.
//! - [`RedisServer`]: `redis-server` on a loopback port with persistence
//!   off, stopped and started again at will, for the shared room store.
//! - [`SignalingRelay`]: a WebSocket man in the middle in front of the
//!   server that rewrites one direction's signaling messages (with
//!   [`rewrite_fingerprint`], the DTLS fingerprints), for tests of the
//!   verification code.
//! - [`UdpLoss`]: drops a share of the UDP packets in the loopback-only
//!   namespace (nftables), for a call on a bad network.
//! - [`Tmux`]: a tmux server of a test's own, a pane of a chosen size.
//! - [`Xvfb`]: an X display of a test's own, for a terminal that draws
//!   pixels and for sharing a screen.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use webcall_testkit::{Browser, TestServer};
//!
//! let server = TestServer::start().await?;
//! let room = server.create_room().await?;
//! let browser = Browser::launch().await?;
//! browser.join_room(&room.url).await?;
//! browser
//!     .wait_until("document.body.dataset.status === 'waiting'", Duration::from_secs(30), "alone in the room")
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Chromium and chromedriver must be installed (`apt-get install chromium
//! chromium-driver`); `WEBCALL_CHROMIUM` and `WEBCALL_CHROMEDRIVER` override
//! their paths.

mod browser;
mod coturn;
pub mod http;
pub mod loss;
pub mod nat;
mod poll;
mod proxy;
mod redis;
mod relay;
mod server;
mod tmux;
pub mod turn;
mod xvfb;

pub use browser::{Browser, BrowserOptions, MEDIA_FLOWING, join_in_turn, status_is};
pub use coturn::Coturn;
/// The WebDriver client crate, for tests that need more than [`Browser`] offers.
pub use fantoccini;
pub use loss::{UdpLoss, loopback_only_namespace};
pub use nat::{Nat, NatLab};
pub use poll::{Condition, POLL_INTERVAL, wait_for, wait_until};
pub use proxy::TcpProxy;
pub use redis::RedisServer;
pub use relay::{Direction, SignalingRelay, Transform, rewrite_fingerprint};
pub use server::TestServer;
pub use tmux::Tmux;
pub use webcall_core::protocol::CreatedRoom;
pub use xvfb::Xvfb;

/// The path of a program: `override_path` when set (a path, or a name
/// looked up in `PATH`), else `default` looked up in `PATH`; `None` when
/// not installed.
fn installed(
    override_path: Option<std::ffi::OsString>,
    default: &str,
) -> Option<std::path::PathBuf> {
    let name = override_path
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(default));
    if name.components().count() > 1 {
        return name.is_file().then_some(name);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&name))
            .find(|p| p.is_file())
    })
}
