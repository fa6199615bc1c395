//! The one error type of this crate: what stops a load run from starting
//! or from producing a report. Everything the server does wrong during a
//! run is counted in the [`crate::Report`] instead.

/// A load run could not start or could not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The settings are unusable.
    #[error("{0}")]
    Options(String),
    /// A server URL is not an `http(s)://host[:port]` base.
    #[error("server URL {url:?} is unusable ({detail}); give one such as http://127.0.0.1:8000")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// Not one room could be opened: nothing was measured.
    #[error(
        "no room could be opened; the first failure was: {0}. Is the server running at that URL, with its per-client limits lifted (see README, section Load)?"
    )]
    NoRoom(String),
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
