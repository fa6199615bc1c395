//! # webcall-core
//!
//! The heart of webcall, a self-hosted one-to-one video call by link.
//!
//! - [`protocol`]: every signaling message, client to server and back, and
//!   the HTTP API's JSON bodies (see PROTOCOL.md).
//! - [`room`]: the room state machine (seats, seats held through a
//!   reconnect or reload, relay, peer-left, expiry) and the
//!   [`room::Rooms`] registry. No IO, no clock:
//!   the caller passes the time in and carries out the outputs.
//! - [`token`]: room tokens and resume secrets (128 bits from the OS CSPRNG).
//! - [`time`]: the wire form of instants.
//! - [`media`]: video and audio frames, and the source and sink traits.
//! - [`resample`]: the audio resampler and sample conversions.
//!
//! With the `client` feature, a program can create rooms and join them; with
//! `call`, it runs a whole WebRTC call with pluggable media sources and sinks.
//!
//! ```
//! use webcall_core::room::{ConnectionId, IceConfig, Output, RoomConfig, Rooms};
//! use webcall_core::protocol::{ServerMessage, PROTOCOL_VERSION};
//! use webcall_core::time::Timestamp;
//!
//! let now = Timestamp::from_unix_millis(1_800_000_000_000);
//! let mut rooms = Rooms::new(RoomConfig::default());
//! let token = rooms.create(now)?.token().clone();
//! let room = rooms.get_mut(&token, now).unwrap();
//! room.join(now, ConnectionId(1), PROTOCOL_VERSION, None, IceConfig::default());
//! let out = room.join(now, ConnectionId(2), PROTOCOL_VERSION, None, IceConfig::default());
//! // The second participant is told to make the offer; the first learns it arrived.
//! assert!(matches!(&out[0], Output::Send { message: ServerMessage::Joined(j), .. } if j.initiator));
//! assert!(matches!(&out[1], Output::Send { message: ServerMessage::PeerJoined { .. }, .. }));
//! # Ok::<(), webcall_core::Error>(())
//! ```

#![warn(missing_docs)]

pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod media;
pub mod protocol;
pub mod resample;
pub mod room;
pub mod time;
pub mod token;

pub use error::{Error, Result};

#[cfg(feature = "call")]
pub mod call;
#[cfg(feature = "client")]
pub mod client;
