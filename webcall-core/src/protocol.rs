//! The signaling wire format: every message a client and the server exchange
//! over the room's WebSocket, and the JSON bodies of the HTTP room API.
//!
//! One enum per direction, tagged by a `type` field. PROTOCOL.md at the
//! repository root documents each message with a JSON example; the tests at
//! the bottom of this file keep the two in step.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::token::{ParticipantId, ResumeToken, RoomToken};

/// The protocol version this crate speaks, sent in `join` and `joined`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest WebSocket frame either side may send, in bytes.
///
/// Offers with many candidates stay well under 16 KiB; 64 KiB leaves room
/// for renegotiation with several media sections.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The largest text frame a client may send, in bytes:
/// [`MAX_MESSAGE_BYTES`] less room for the `"from":"<participant id>",`
/// the server adds when it relays a message, so that every relayed frame
/// is within [`MAX_MESSAGE_BYTES`] too. [`ClientMessage::decode`] refuses
/// anything longer; a server refuses it at the socket already.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = MAX_MESSAGE_BYTES - RELAY_OVERHEAD;

/// Bytes reserved for what relaying adds to a client's frame (27 today).
const RELAY_OVERHEAD: usize = 64;

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first message on a connection: take a seat in the room.
    Join {
        /// The protocol version the client speaks.
        version: u32,
        /// The secret from an earlier `joined`, to take back one's own seat.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeToken>,
    },
    /// A session description offer, relayed to the other participant.
    Offer {
        /// The SDP text.
        sdp: String,
    },
    /// A session description answer, relayed to the other participant.
    Answer {
        /// The SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate, relayed to the other participant.
    Candidate {
        /// The candidate, or `None` for "end of candidates".
        candidate: Option<IceCandidate>,
    },
    /// Leaving the room for good.
    Bye,
    /// The page is going away (closed or reloaded; a browser cannot tell
    /// which). When the connection then closes, the seat is held only for
    /// the short leave grace instead of the seat grace, so that a closed
    /// tab is soon seen as gone while a reload still gets its seat back.
    Leaving,
}

impl ClientMessage {
    /// Parses one text frame, checking its size first (at most
    /// [`MAX_CLIENT_MESSAGE_BYTES`]).
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        if text.len() > MAX_CLIENT_MESSAGE_BYTES {
            return Err(ProtocolError::TooLarge {
                len: text.len(),
                max: MAX_CLIENT_MESSAGE_BYTES,
            });
        }
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))
    }

    /// Serialises the message as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialise")
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// The client has a seat in the room.
    Joined(Joined),
    /// The other participant arrived (or came back). The receiver becomes
    /// the polite side, resets its peer connection and waits for an offer.
    PeerJoined {
        /// The participant who arrived.
        peer: ParticipantId,
        /// True when it is the same participant coming back (a reload).
        resumed: bool,
    },
    /// The other participant's connection closed without `bye`: their seat
    /// is held for them for a grace period. Keep the peer connection and
    /// its media; `peer_joined` with `resumed: true` follows if they come
    /// back, `peer_left` if the grace period ends first.
    PeerReconnecting {
        /// The participant whose seat is held.
        peer: ParticipantId,
        /// True when their page said it was going away (`leaving`: closed
        /// or reloading): their peer connection is gone with it, so the
        /// receiver may drop its own now rather than when they return.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        leaving: bool,
    },
    /// The other participant left.
    PeerLeft {
        /// The participant who left.
        peer: ParticipantId,
        /// Why they left.
        reason: LeaveReason,
    },
    /// An offer from the other participant.
    Offer {
        /// Who sent it.
        from: ParticipantId,
        /// The SDP text.
        sdp: String,
    },
    /// An answer from the other participant.
    Answer {
        /// Who sent it.
        from: ParticipantId,
        /// The SDP text.
        sdp: String,
    },
    /// A trickled ICE candidate from the other participant.
    Candidate {
        /// Who sent it.
        from: ParticipantId,
        /// The candidate, or `None` for "end of candidates".
        candidate: Option<IceCandidate>,
    },
    /// Something went wrong; see [`ErrorCode`].
    Error(ErrorMessage),
    /// The server is going away (a restart or a rolling deploy) and the
    /// room outlives it: close this socket and open a new one to the same
    /// URL after `after_ms`, joining with the resume secret. The seat is
    /// held meanwhile and the other participant is told nothing; media
    /// between the two goes on. Servers whose rooms die with them send
    /// `error` `unavailable` instead.
    Reconnect {
        /// How long to wait before reconnecting, in milliseconds: each
        /// connection gets its own value, so that a server's clients do
        /// not all come back at once.
        after_ms: u64,
    },
}

impl ServerMessage {
    /// Builds an error message with the code's standard text.
    pub fn error(code: ErrorCode) -> Self {
        Self::Error(ErrorMessage::new(code))
    }

    /// Parses one text frame from the server.
    pub fn decode(text: &str) -> Result<Self, ProtocolError> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(ProtocolError::TooLarge {
                len: text.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))
    }

    /// Serialises the message as one JSON text frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

/// The body of `joined`: everything a client needs to start its side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// The protocol version the server speaks on this connection.
    pub version: u32,
    /// The client's own participant id.
    pub you: ParticipantId,
    /// A secret that takes this seat back from a new connection (page reload).
    pub resume: ResumeToken,
    /// True when this join took back the participant's own seat (the
    /// `resume` secret matched): a client that still has a working peer
    /// connection keeps it.
    #[serde(default)]
    pub resumed: bool,
    /// The other participant, when already present.
    pub peer: Option<ParticipantId>,
    /// True when this client must create the first offer now.
    pub initiator: bool,
    /// True when this client yields on colliding offers.
    pub polite: bool,
    /// The STUN and TURN servers to use, computed for this join.
    pub ice_servers: Vec<IceServer>,
    /// Which candidates the client may use.
    pub ice_transport_policy: IceTransportPolicy,
    /// How many participants the room holds.
    pub capacity: u8,
    /// When the room's link stops working.
    pub expires_at: Timestamp,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// They hung up (`bye`).
    Bye,
    /// Their connection closed or went silent.
    Disconnected,
}

/// An ICE candidate exactly as the browser's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The `candidate:` attribute line.
    pub candidate: String,
    /// The media section's `mid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// The media section's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE username fragment the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// A STUN or TURN server, as the browser's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// One or more `stun:`, `turn:` or `turns:` URLs.
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    /// The TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServer {
    /// A server without credentials, such as a STUN server.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            username: None,
            credential: None,
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Urls::deserialize(d)? {
        Urls::One(u) => vec![u],
        Urls::Many(v) => v,
    })
}

/// Which ICE candidates a client may use, as `RTCIceTransportPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IceTransportPolicy {
    /// Any candidate: host, server-reflexive or relayed.
    #[default]
    All,
    /// Relayed (TURN) candidates only; hides the participants' addresses.
    Relay,
}

/// The body of an `error` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// A stable, machine-readable code.
    pub code: ErrorCode,
    /// A readable explanation.
    pub message: String,
    /// True when the server closes the connection after this message.
    pub fatal: bool,
}

impl ErrorMessage {
    /// The standard message for `code`.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            code,
            message: code.describe().to_owned(),
            fatal: code.is_fatal(),
        }
    }

    /// The standard message for `code`, closing the connection even when
    /// the code alone does not ([`ErrorCode::is_fatal`]): a client that
    /// keeps sending after `rate_limited` is cut off with it.
    pub fn fatal(code: ErrorCode) -> Self {
        Self {
            fatal: true,
            ..Self::new(code)
        }
    }

    /// The standard message for `code` with a detail appended.
    pub fn with_detail(code: ErrorCode, detail: impl std::fmt::Display) -> Self {
        Self {
            code,
            message: format!("{}: {detail}", code.describe()),
            fatal: code.is_fatal(),
        }
    }
}

/// Stable error codes, shared by the WebSocket and the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object, an unknown `type` or a missing field.
    BadMessage,
    /// A message other than `join` before `join`.
    NotJoined,
    /// A second `join` on one connection.
    AlreadyJoined,
    /// A relayed message with nobody to relay it to.
    NoPeer,
    /// Too many messages or requests.
    RateLimited,
    /// The client speaks a protocol version this server does not.
    UnsupportedVersion,
    /// The token is unknown or the room expired.
    RoomNotFound,
    /// The room already has all its participants.
    RoomFull,
    /// The room's lifetime ended during the call.
    RoomExpired,
    /// A frame larger than [`MAX_MESSAGE_BYTES`].
    MessageTooLarge,
    /// The same participant joined again from a new connection.
    Replaced,
    /// No `join` in time, or the connection went silent.
    Timeout,
    /// The server is shutting down or hit an internal limit.
    Unavailable,
    /// This client (or its network) already holds as many open links as
    /// one client may.
    TooManyRooms,
    /// The connection stopped reading the messages sent to it.
    TooSlow,
}

impl ErrorCode {
    /// True when the server closes the connection after sending this code.
    pub fn is_fatal(self) -> bool {
        !matches!(
            self,
            Self::BadMessage
                | Self::NotJoined
                | Self::AlreadyJoined
                | Self::NoPeer
                | Self::RateLimited
        )
    }

    /// The standard readable text for this code.
    pub fn describe(self) -> &'static str {
        match self {
            Self::BadMessage => "malformed message",
            Self::NotJoined => "send join first",
            Self::AlreadyJoined => "this connection has already joined",
            Self::NoPeer => "nobody else is in the call yet",
            Self::RateLimited => "too many messages; slow down",
            Self::UnsupportedVersion => {
                "unsupported protocol version; reload the page or update webcall"
            }
            Self::RoomNotFound => "this link is unknown or has expired",
            Self::RoomFull => "this call already has two people",
            Self::RoomExpired => "this link has expired; create a new one",
            Self::MessageTooLarge => "message too large (at most 64 KiB)",
            Self::Replaced => "you joined this call from another connection",
            Self::Timeout => "the connection timed out",
            Self::Unavailable => "the server is unavailable; try again shortly",
            Self::TooManyRooms => {
                "too many open links from your network; use one you already made, or wait until unused ones lapse"
            }
            Self::TooSlow => "the connection stopped reading its messages",
        }
    }

    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadMessage => "bad_message",
            Self::NotJoined => "not_joined",
            Self::AlreadyJoined => "already_joined",
            Self::NoPeer => "no_peer",
            Self::RateLimited => "rate_limited",
            Self::UnsupportedVersion => "unsupported_version",
            Self::RoomNotFound => "room_not_found",
            Self::RoomFull => "room_full",
            Self::RoomExpired => "room_expired",
            Self::MessageTooLarge => "message_too_large",
            Self::Replaced => "replaced",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
            Self::TooManyRooms => "too_many_rooms",
            Self::TooSlow => "too_slow",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is larger than its direction's limit
    /// ([`MAX_CLIENT_MESSAGE_BYTES`] or [`MAX_MESSAGE_BYTES`]).
    #[error("message of {len} bytes is larger than the limit of {max} bytes; send less at once")]
    TooLarge {
        /// The frame's length in bytes.
        len: usize,
        /// The limit it broke.
        max: usize,
    },
    /// The frame is not a message this protocol knows.
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl ProtocolError {
    /// The error code to answer this with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::Malformed(_) => ErrorCode::BadMessage,
        }
    }
}

/// The largest body `POST /api/rooms` accepts, in bytes (4 KiB).
pub const MAX_CREATE_BODY_BYTES: usize = 4 * 1024;

/// The body of `POST /api/rooms`: empty (ASCII whitespace only), or a JSON
/// object of at most [`MAX_CREATE_BODY_BYTES`]. No field is defined today;
/// an object's fields are ignored, so that later versions can add some
/// without older servers refusing them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateRoomRequest {}

impl CreateRoomRequest {
    /// Checks a request body: [`ProtocolError::TooLarge`] over
    /// [`MAX_CREATE_BODY_BYTES`], [`ProtocolError::Malformed`] for anything
    /// but blank or a JSON object (an array, a string, broken JSON, text
    /// after the object).
    pub fn parse(body: &[u8]) -> Result<Self, ProtocolError> {
        if body.len() > MAX_CREATE_BODY_BYTES {
            return Err(ProtocolError::TooLarge {
                len: body.len(),
                max: MAX_CREATE_BODY_BYTES,
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self {});
        }
        // A map, not a derived struct: serde lets a struct be written as
        // a JSON array too, and `[]` is not an object.
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .map(|_| Self {})
            .map_err(|e| ProtocolError::Malformed(format!("expected empty or a JSON object: {e}")))
    }
}

/// `POST /api/rooms` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedRoom {
    /// The room's token.
    pub token: RoomToken,
    /// The absolute link to share, `<base>/r/<token>`.
    pub url: String,
    /// When the link stops working.
    pub expires_at: Timestamp,
    /// A link nobody joins lapses at this time, before `expires_at`; once
    /// someone has joined, only `expires_at` counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_by: Option<Timestamp>,
}

/// `GET /api/rooms/{token}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's token.
    pub token: RoomToken,
    /// How many participants hold a seat now.
    pub participants: u8,
    /// How many participants the room holds.
    pub capacity: u8,
    /// When the link stops working.
    pub expires_at: Timestamp,
    /// Until somebody joins, the link lapses at this earlier time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_by: Option<Timestamp>,
    /// The absolute link to share, the one the room's QR code encodes. The
    /// server's HTTP answer carries it; [`Room::info`](crate::room::Room::info)
    /// leaves it empty, since a room does not know how it is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The body of every HTTP error: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: ApiErrorBody,
}

/// The inside of [`ApiError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// A stable code, shared with the WebSocket errors.
    pub code: ErrorCode,
    /// A readable explanation.
    pub message: String,
}

impl ApiError {
    /// The standard body for `code`.
    pub fn new(code: ErrorCode) -> Self {
        Self {
            error: ApiErrorBody {
                code,
                message: code.describe().to_owned(),
            },
        }
    }

    /// The standard body for `code` with a detail appended.
    pub fn with_detail(code: ErrorCode, detail: impl std::fmt::Display) -> Self {
        Self {
            error: ApiErrorBody {
                code,
                message: format!("{}: {detail}", code.describe()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_client(json: &str) -> ClientMessage {
        let msg = ClientMessage::decode(json).expect(json);
        let again = ClientMessage::decode(&msg.encode()).unwrap();
        assert_eq!(msg, again);
        msg
    }

    #[test]
    fn client_messages_from_protocol_md_parse() {
        assert_eq!(
            roundtrip_client(r#"{"type":"join","version":1}"#),
            ClientMessage::Join {
                version: 1,
                resume: None
            }
        );
        let m =
            roundtrip_client(r#"{"type":"join","version":1,"resume":"mG8yq2cLw1Jx0bX9sTdh3A"}"#);
        assert!(matches!(
            m,
            ClientMessage::Join {
                resume: Some(_),
                ..
            }
        ));
        roundtrip_client(r#"{"type":"offer","sdp":"v=0\r\n"}"#);
        roundtrip_client(r#"{"type":"answer","sdp":"v=0\r\n"}"#);
        let c = roundtrip_client(
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"h1Xo"}}"#,
        );
        match c {
            ClientMessage::Candidate { candidate: Some(c) } => {
                assert_eq!(c.sdp_mid.as_deref(), Some("0"));
                assert_eq!(c.sdp_m_line_index, Some(0));
                assert_eq!(c.username_fragment.as_deref(), Some("h1Xo"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            roundtrip_client(r#"{"type":"candidate","candidate":null}"#),
            ClientMessage::Candidate { candidate: None }
        );
        assert_eq!(roundtrip_client(r#"{"type":"bye"}"#), ClientMessage::Bye);
        assert_eq!(
            roundtrip_client(r#"{"type":"leaving"}"#),
            ClientMessage::Leaving
        );
    }

    #[test]
    fn bad_frames_are_rejected_with_a_code() {
        for bad in [
            "",
            "not json",
            "[]",
            "42",
            r#"{"type":"dance"}"#,
            r#"{"type":"offer"}"#,
            r#"{"type":"join","version":"one"}"#,
            r#"{"sdp":"x"}"#,
            r#"{"type":"join","version":1,"resume":"short"}"#,
        ] {
            let err = ClientMessage::decode(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadMessage, "{bad}");
        }
        let big = format!(
            r#"{{"type":"offer","sdp":"{}"}}"#,
            "a".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(
            ClientMessage::decode(&big).unwrap_err().code(),
            ErrorCode::MessageTooLarge
        );
        // A client's frame at its limit decodes; one byte more does not.
        let sdp_len = MAX_CLIENT_MESSAGE_BYTES - r#"{"type":"offer","sdp":""}"#.len();
        let at_limit = ClientMessage::Offer {
            sdp: "a".repeat(sdp_len),
        }
        .encode();
        assert_eq!(at_limit.len(), MAX_CLIENT_MESSAGE_BYTES);
        assert!(ClientMessage::decode(&at_limit).is_ok());
        let over = ClientMessage::Offer {
            sdp: "a".repeat(sdp_len + 1),
        }
        .encode();
        assert_eq!(
            ClientMessage::decode(&over).unwrap_err().code(),
            ErrorCode::MessageTooLarge
        );
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let peer: ParticipantId = "7c2e91b0d4a8f613".parse().unwrap();
        let v: serde_json::Value = serde_json::from_str(
            &ServerMessage::PeerLeft {
                peer: peer.clone(),
                reason: LeaveReason::Bye,
            }
            .encode(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"peer_left","peer":"7c2e91b0d4a8f613","reason":"bye"})
        );

        let v: serde_json::Value = serde_json::from_str(
            &ServerMessage::PeerReconnecting {
                peer: peer.clone(),
                leaving: false,
            }
            .encode(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"peer_reconnecting","peer":"7c2e91b0d4a8f613"})
        );

        let v: serde_json::Value =
            serde_json::from_str(&ServerMessage::error(ErrorCode::RoomFull).encode()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"error","code":"room_full","message":"this call already has two people","fatal":true})
        );

        let joined = r#"{"type":"joined","version":1,"you":"d1f0a2c49e7b3a55","resume":"mG8yq2cLw1Jx0bX9sTdh3A","resumed":false,"peer":null,"initiator":false,"polite":true,"ice_servers":[{"urls":["stun:stun.l.google.com:19302"]}],"ice_transport_policy":"all","capacity":2,"expires_at":"2026-12-02T11:20:00Z"}"#;
        let msg = ServerMessage::decode(joined).unwrap();
        let again: serde_json::Value = serde_json::from_str(&msg.encode()).unwrap();
        assert_eq!(
            again,
            serde_json::from_str::<serde_json::Value>(joined).unwrap()
        );
    }

    #[test]
    fn a_create_body_is_blank_or_one_json_object() {
        for ok in ["", " \r\n\t", "{}", " {\"later\": [1, {}]} \n", "\x0c"] {
            assert_eq!(
                CreateRoomRequest::parse(ok.as_bytes()),
                Ok(CreateRoomRequest {}),
                "{ok:?}"
            );
        }
        for bad in ["[]", "null", "\"{}\"", "{} {}", "{", "{}\x0c", "\u{a0}"] {
            let err = CreateRoomRequest::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadMessage, "{bad:?}");
        }
        let at_limit = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_CREATE_BODY_BYTES - 8));
        assert_eq!(at_limit.len(), MAX_CREATE_BODY_BYTES);
        assert!(CreateRoomRequest::parse(at_limit.as_bytes()).is_ok());
        let over = [b' '; MAX_CREATE_BODY_BYTES + 1];
        assert_eq!(
            CreateRoomRequest::parse(&over),
            Err(ProtocolError::TooLarge {
                len: MAX_CREATE_BODY_BYTES + 1,
                max: MAX_CREATE_BODY_BYTES
            })
        );
    }

    #[test]
    fn ice_server_urls_accept_a_single_string() {
        let s: IceServer = serde_json::from_str(r#"{"urls":"stun:example.org"}"#).unwrap();
        assert_eq!(s.urls, vec!["stun:example.org".to_owned()]);
    }

    #[test]
    fn every_error_code_serialises_as_its_name() {
        for code in [
            ErrorCode::BadMessage,
            ErrorCode::NotJoined,
            ErrorCode::AlreadyJoined,
            ErrorCode::NoPeer,
            ErrorCode::RateLimited,
            ErrorCode::UnsupportedVersion,
            ErrorCode::RoomNotFound,
            ErrorCode::RoomFull,
            ErrorCode::RoomExpired,
            ErrorCode::MessageTooLarge,
            ErrorCode::Replaced,
            ErrorCode::Timeout,
            ErrorCode::Unavailable,
            ErrorCode::TooManyRooms,
            ErrorCode::TooSlow,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::json!(code.as_str())
            );
        }
    }
}
