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
    /// A media frame, file or device could not be used; the message says
    /// which and what to do.
    #[error("{0}")]
    Media(String),
    /// A signaling frame could not be decoded.
    #[error(transparent)]
    Protocol(#[from] crate::protocol::ProtocolError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
