//! The room API over HTTP: create a room, look one up, ask whether the
//! server takes new calls. Errors are mapped to
//! what a person can act on: server down, not a webcall server, room gone.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::protocol::{ApiError, CreatedRoom, ErrorCode, RoomInfo};
use crate::token::RoomToken;

/// How long any one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> Result<reqwest::Client> {
    super::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(Error::HttpClient)
}

fn unreachable(server: &str, source: reqwest::Error) -> Error {
    Error::Http {
        server: server.to_owned(),
        source,
    }
}

async fn error_from_response(server: &str, resp: reqwest::Response) -> Error {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ApiError>(&body) {
        Ok(api) if api.error.code == ErrorCode::RoomNotFound => Error::RoomNotFound,
        Ok(api) if api.error.code == ErrorCode::RoomFull => Error::RoomFull,
        Ok(api) => Error::Server {
            code: Some(api.error.code),
            message: format!("{} (HTTP {})", api.error.message, status.as_u16()),
        },
        Err(_) => Error::NotWebcall {
            server: server.to_owned(),
            detail: format!("HTTP {status} without a webcall error body"),
        },
    }
}

/// Sends one API request and decodes a successful JSON answer; `what`
/// names the endpoint in the error when the answer is not webcall's.
async fn call_api<T: serde::de::DeserializeOwned>(
    server: &str,
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<T> {
    let resp = request.send().await.map_err(|e| unreachable(server, e))?;
    if !resp.status().is_success() {
        return Err(error_from_response(server, resp).await);
    }
    let body = resp.text().await.map_err(|e| unreachable(server, e))?;
    serde_json::from_str(&body).map_err(|e| Error::NotWebcall {
        server: server.to_owned(),
        detail: format!("{what} answered something else ({e})"),
    })
}

/// Creates a room on the server at `server` (e.g. `http://localhost:8000`;
/// `http://` is assumed when no scheme is given) and returns its link.
pub async fn create_room(server: &str) -> Result<CreatedRoom> {
    let server = super::link::normalize_server(server)?;
    let request = client()?.post(format!("{server}/api/rooms"));
    call_api(&server, request, "POST /api/rooms").await
}

/// Looks a room up: how many participants it has and when it expires.
/// An unknown or expired room is [`Error::RoomNotFound`].
pub async fn room_info(server: &str, token: &RoomToken) -> Result<RoomInfo> {
    let server = super::link::normalize_server(server)?;
    let request = client()?.get(format!("{server}/api/rooms/{token}"));
    call_api(&server, request, "GET /api/rooms/{token}").await
}

/// Whether a server takes new calls, as its `GET /readyz` says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Readiness {
    /// True when it does.
    pub ready: bool,
    /// Why not (its room store is unreachable, it is shutting down, ...).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Asks the server at `server` whether it takes new calls (`/readyz`: 200
/// or 503, both with a JSON body). A server that does not answer, or
/// answers something else, is an error saying so.
pub async fn readiness(server: &str) -> Result<Readiness> {
    let server = super::link::normalize_server(server)?;
    let resp = client()?
        .get(format!("{server}/readyz"))
        .send()
        .await
        .map_err(|e| unreachable(&server, e))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| unreachable(&server, e))?;
    serde_json::from_str(&body).map_err(|_| Error::NotWebcall {
        server: server.clone(),
        detail: format!("GET /readyz answered HTTP {status} without a webcall body"),
    })
}
