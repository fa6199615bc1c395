//! # webcall-server
//!
//! The webcall server in one process on one port: the room API, the
//! signaling WebSocket and the embedded browser client. Media never passes
//! through it; it only introduces two participants to each other.
//!
//! The room rules live in webcall-core's state machine
//! ([`webcall_core::room`]); this crate feeds it inputs and carries out its
//! outputs:
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | [`Config`], every setting with its default |
//! | `app` | shared state, routes, the expiry sweep, [`run`] |
//! | `headers` | security headers on every answer |
//! | `api` | `POST /api/rooms`, `GET /api/rooms/{token}`, the QR code, pages, `/healthz`, `/readyz` |
//! | `ws` | `GET /ws/rooms/{token}`: one task per signaling connection |
//! | `serve` | the accept loop: connection limits, request time limits, TLS handshakes, shutdown |
//! | [`tls`] | HTTPS certificates: PEM files reloaded on change, self-signed, ACME |
//! | [`hosts`] | the `Host` values the server answers to |
//! | [`store`] | [`store::RoomStore`], where rooms live (in memory, or on Redis shared by instances), and its behaviour tests |
//! | [`bus`] | [`bus::Bus`], delivery of room outputs to a connection id wherever it is (this process, or another instance over Redis) |
//! | `cluster` | instances sharing Redis: instance numbers, heartbeats, seats of dead instances |
//! | [`hub`] | this process's connections: their bounded queues, by id (the in-memory bus) |
//! | `rooms` | a store and a bus together: one input to a room at a time, outputs delivered in order |
//! | [`ice`] | [`ice::IceProvider`], the ICE servers handed out per join |
//! | [`turn`] | the built-in TURN server and its per-join credentials |
//! | [`limits`] | token buckets for room creation and messages |
//! | [`metrics`] | Prometheus metrics: names, the `/metrics` listener, counting helpers |
//! | `request` | client address, scheme and host behind trusted proxies; origin checks |
//! | [`assets`] | the browser client's files, embedded |
//!
//! Embedding it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), webcall_server::Error> {
//! let config = webcall_server::Config { ice_servers: vec![], ..Default::default() };
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("http://{}", listener.local_addr()?);
//! webcall_server::run(listener, config, async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```

mod api;
mod app;
pub mod assets;
pub mod bus;
mod clock;
mod cluster;
pub mod config;
mod error;
mod headers;
pub mod hosts;
pub mod hub;
pub mod ice;
pub mod limits;
pub mod metrics;
mod redis_link;
mod request;
mod rooms;
mod serve;
pub mod store;
pub mod tls;
pub mod turn;
mod upgrade;
mod ws;

pub use app::{ShutdownHandle, app, app_with, run, run_with_tls};
pub use config::Config;
pub use error::{Error, Result};
pub use serve::raise_open_file_limit;
pub use tls::Tls;
