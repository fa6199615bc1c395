//! Call links: `http(s)://host[:port][/prefix]/r/<token>`, split into the
//! server's base URL and the room token.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::token::RoomToken;

/// A parsed call link.
#[derive(Clone, PartialEq, Eq)]
pub struct Link {
    base: url::Url,
    token: RoomToken,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("server", &self.server())
            .field("token", &self.token)
            .finish()
    }
}

impl Link {
    /// Parses a link such as `http://localhost:8000/r/q3V1n0cF2mXb7eYtK9aJ1w`.
    pub fn parse(link: &str) -> Result<Self> {
        let trimmed = link.trim();
        let url = url::Url::parse(trimmed)
            .map_err(|e| Error::InvalidLink(format!("{trimmed:?} ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidLink(format!(
                "{trimmed:?} does not start with http:// or https://"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::InvalidLink(format!("{trimmed:?} has no host")));
        }
        let path = url.path().trim_end_matches('/');
        let Some((prefix, token)) = path.rsplit_once("/r/") else {
            return Err(Error::InvalidLink(format!(
                "{trimmed:?} has no /r/<token> part"
            )));
        };
        let token: RoomToken = token.parse().map_err(|_| {
            Error::InvalidLink(format!(
                "{trimmed:?}: the room token must be 22 URL-safe characters"
            ))
        })?;
        let mut base = url.clone();
        base.set_path(if prefix.is_empty() { "/" } else { prefix });
        base.set_query(None);
        base.set_fragment(None);
        Ok(Self { base, token })
    }

    /// The server's base URL without a trailing slash, e.g. `http://localhost:8000`.
    pub fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The room token.
    pub fn token(&self) -> &RoomToken {
        &self.token
    }

    /// The link as shared: `<server>/r/<token>`.
    pub fn url(&self) -> String {
        format!("{}/r/{}", self.server(), self.token)
    }

    /// The signaling WebSocket URL, `ws(s)://…/ws/rooms/<token>`.
    pub fn ws_url(&self) -> String {
        let mut url = self.base.clone();
        // http and https bases only (see `parse`): both have a WebSocket twin.
        let _ = url.set_scheme(if url.scheme() == "https" { "wss" } else { "ws" });
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["ws", "rooms", self.token.as_str()]);
        }
        url.into()
    }
}

impl FromStr for Link {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// Normalises a server address given on the command line: adds `http://`
/// when no scheme is given and drops a trailing slash.
pub fn normalize_server(server: &str) -> Result<String> {
    let s = server.trim();
    let with_scheme = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| Error::InvalidLink(format!("server address {s:?} ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidLink(format!(
            "server address {s:?} must be http(s)://host[:port]"
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "q3V1n0cF2mXb7eYtK9aJ1w";

    #[test]
    fn links_split_into_server_and_token() {
        let l = Link::parse(&format!("http://localhost:8000/r/{T}")).unwrap();
        assert_eq!(l.server(), "http://localhost:8000");
        assert_eq!(l.token().as_str(), T);
        assert_eq!(l.ws_url(), format!("ws://localhost:8000/ws/rooms/{T}"));
        let l = Link::parse(&format!(" https://call.example.org/webcall/r/{T}/?x=1#f ")).unwrap();
        assert_eq!(l.server(), "https://call.example.org/webcall");
        assert_eq!(
            l.ws_url(),
            format!("wss://call.example.org/webcall/ws/rooms/{T}")
        );
        assert_eq!(l.url(), format!("https://call.example.org/webcall/r/{T}"));
    }

    #[test]
    fn malformed_links_are_refused_clearly() {
        for bad in [
            "",
            "hello",
            "ftp://host/r/q3V1n0cF2mXb7eYtK9aJ1w",
            "http://host/q3V1n0cF2mXb7eYtK9aJ1w",
            "http://host/r/short",
            "http://host/r/q3V1n0cF2mXb7eYtK9aJ1w/extra",
        ] {
            let err = Link::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidLink(_)), "{bad}: {err}");
            assert!(err.to_string().contains("not a webcall link"), "{err}");
        }
    }

    #[test]
    fn server_addresses_are_normalised() {
        assert_eq!(
            normalize_server("localhost:8000").unwrap(),
            "http://localhost:8000"
        );
        assert_eq!(normalize_server("https://x.org/").unwrap(), "https://x.org");
        assert!(normalize_server("ftp://x").is_err());
    }
}
