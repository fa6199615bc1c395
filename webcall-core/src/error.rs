//! The crate's one error type. Each variant says what happened and, where
//! the caller can act, what to do.

/// Errors from webcall-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A token or id does not have the expected form.
    #[error("invalid {what}: expected 22 URL-safe characters as in a webcall link")]
    InvalidToken {
        /// Which kind of identifier.
        what: &'static str,
    },
    /// The operating system's random generator failed.
    #[error("the system random generator failed: {0}")]
    Random(String),
    /// The store holds as many rooms as it may.
    #[error("too many rooms ({limit}); try again later")]
    TooManyRooms {
        /// The configured limit.
        limit: usize,
    },
    /// The creator (its address or network) already holds as many rooms
    /// as one creator may.
    #[error(
        "too many open links from this client or its network; use one already made, or wait until unused ones lapse"
    )]
    TooManyRoomsFromClient,
    /// A media frame, file or device could not be used; the message says
    /// which and what to do.
    #[error("{0}")]
    Media(String),
    /// A call link that is not of the form `http(s)://host[:port]/r/<token>`.
    #[error("not a webcall link: {0}; expected http(s)://host[:port]/r/<token>")]
    InvalidLink(String),
    /// The room named by the link does not exist (never did, or expired).
    #[error("this link is unknown or has expired; ask for a new one")]
    RoomNotFound,
    /// The room already holds two participants.
    #[error("this call already has two people")]
    RoomFull,
    /// The server could not be reached at all.
    #[error(
        "cannot reach the webcall server at {server}: {detail}; check the address and that the server is running"
    )]
    Unreachable {
        /// The server's base URL.
        server: String,
        /// What happened, in words.
        detail: String,
        /// The last failure underneath, when there was one.
        #[source]
        source: Option<Box<Error>>,
    },
    /// Something answered, but not as a webcall server does.
    #[error("{server} does not look like a webcall server ({detail}); check the address")]
    NotWebcall {
        /// The server's base URL.
        server: String,
        /// What was unexpected.
        detail: String,
    },
    /// The webcall server refused the request; the message is the server's.
    #[error("the server refused: {message}")]
    Server {
        /// The protocol error code, when the server sent one.
        code: Option<crate::protocol::ErrorCode>,
        /// The server's explanation.
        message: String,
    },
    /// An HTTP client could not be set up.
    #[cfg(feature = "client")]
    #[error("cannot set up an HTTP client; check the system's TLS and proxy settings")]
    HttpClient(#[source] reqwest::Error),
    /// An HTTP request to the server got no answer: refused, timed out,
    /// or broken off (the source says which).
    #[cfg(feature = "client")]
    #[error(
        "cannot reach the webcall server at {server}; check the address and that the server is running"
    )]
    Http {
        /// The server's base URL.
        server: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
    },
    /// The signaling WebSocket could not be opened or broke (`source`
    /// says how), or the server closed it (no `source`).
    #[cfg(feature = "client")]
    #[error("the signaling connection to {server} {}", if source.is_some() { "failed" } else { "was closed by the server" })]
    WebSocket {
        /// The server's base URL.
        server: String,
        /// What the WebSocket client reported.
        #[source]
        source: Option<tokio_tungstenite::tungstenite::Error>,
    },
    /// The signaling connection ended before we held a seat.
    #[error("the signaling connection ended before the call started; try again")]
    SignalingClosed {
        /// Why, when known.
        #[source]
        source: Option<Box<Error>>,
    },
    /// The signaling server went away during the call (it shut down, or
    /// could not be reached again), and the call could not go on without
    /// it: the media connection was not up, or went down for good.
    #[error("lost the webcall server ({reason}){}", then_media(.media.as_deref()))]
    ServerLost {
        /// What happened to the server, in words.
        reason: String,
        /// When the call went on without the server at first: the media
        /// connection's state when it was given up.
        media: Option<String>,
        /// The failure that took the server away.
        #[source]
        source: Box<Error>,
    },
    /// The WebRTC stack failed (setting up the peer connection, negotiating).
    #[error("WebRTC: {0}")]
    WebRtc(String),
    /// No peer connection could be made on this machine, typically because
    /// no local address could be bound for ICE: the call cannot connect.
    #[error(
        "cannot set up the media connection ({detail}); check that a network interface is up, or name the local addresses to use (webcall join --ice-addr IP)"
    )]
    NoPeerConnection {
        /// What the WebRTC stack said.
        detail: String,
    },
    /// A chat message with no text.
    #[error("a chat message needs some text")]
    ChatEmpty,
    /// A chat message over the length limit.
    #[error("a chat message holds at most {limit} characters, this one has {chars}; split it")]
    ChatTooLong {
        /// Its length in characters (Unicode code points).
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// As many chat messages as may wait are waiting for the data channel
    /// to open (or to drain).
    #[error(
        "{limit} chat messages are already waiting to be sent; wait until the call is connected and try again"
    )]
    ChatOutboxFull {
        /// How many may wait.
        limit: usize,
    },
    /// The call is over: nothing more can be sent.
    #[error("the call has ended")]
    CallEnded,
    /// A source was offered for media the call does not send: it was
    /// started without it, so nothing was negotiated to carry it.
    #[error(
        "this call sends no {kind}: it was started without a {kind} source; join again with one"
    )]
    NotSending {
        /// "video" or "audio".
        kind: &'static str,
    },
    /// A signaling frame could not be decoded.
    #[error(transparent)]
    Protocol(#[from] crate::protocol::ProtocolError),
}

/// How [`Error::ServerLost`] names the media connection's end.
fn then_media(state: Option<&str>) -> String {
    state
        .map(|m| format!(", then the media connection ({m})"))
        .unwrap_or_default()
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
