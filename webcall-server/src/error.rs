//! The crate's one error type.

/// Errors from starting or running the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is unusable; the message says which and how to fix it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listener failed.
    #[error("the server's listener failed: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTPS certificate could not be loaded, made or stored; the
    /// message names the file or directory and what to do.
    #[error("TLS: {0}")]
    Tls(String),
    /// The shared room store (Redis) did not answer or answered something
    /// unexpected; the server keeps reconnecting with backoff.
    #[error("the room store is unavailable ({0}); try again in a few seconds")]
    Store(String),
    /// The room logic refused (too many rooms, no randomness).
    #[error(transparent)]
    Room(#[from] webcall_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
