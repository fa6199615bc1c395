//! The signaling client: create a room over HTTP, parse a call link, and
//! hold a seat in a room over the WebSocket described in PROTOCOL.md.
//!
//! - [`link`]: `http(s)://host[:port]/r/<token>` to a server base and a token.
//! - [`http`]: the room API (`POST /api/rooms`, `GET /api/rooms/{token}`)
//!   and `GET /readyz`.
//! - [`session`]: the signaling session as a state machine without IO:
//!   join and resume, fatal errors, reconnect back-off.
//! - [`signaling`]: the WebSocket edge that drives a [`session::Session`]:
//!   connects, reconnects with the resume secret, relays messages.

pub mod http;
pub mod link;
pub mod session;
pub mod signaling;

pub use http::{Readiness, create_room, readiness, room_info};
pub use link::Link;
pub use signaling::{SignalEvent, Signaling};

/// Installs the `ring` TLS provider for rustls, once per process, quietly.
/// Every HTTP and WebSocket entry point calls this; calling it again is free.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another part of the program may have installed one already: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
