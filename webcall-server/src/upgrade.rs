//! The WebSocket handshake (RFC 6455) on top of hyper's upgrade, done here
//! rather than by the framework so that the connection task owns the raw
//! stream: after refusing an oversized frame it can read and discard the
//! rest of it and close cleanly (close code 1009), instead of dropping a
//! socket with unread data, which the kernel answers with a reset that
//! destroys the error message on its way to the client.

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A signaling socket as the connection task holds it.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// A valid WebSocket upgrade request, not yet answered.
#[derive(Debug)]
pub(crate) struct Handshake {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

impl Handshake {
    /// Answers `101 Switching Protocols` and runs `task` on the socket once
    /// the client has it.
    pub(crate) fn accept<F, Fut>(self, config: WebSocketConfig, task: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    task(socket).await;
                }
                Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
            }
        });
        let accept = derive_accept_key(self.key.as_bytes());
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// Why a request is not a WebSocket upgrade.
#[derive(Debug)]
pub(crate) struct NotUpgrade(&'static str);

impl IntoResponse for NotUpgrade {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            format!(
                "this address takes WebSocket connections only: {}\n",
                self.0
            ),
        )
            .into_response()
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = NotUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.version != Version::HTTP_11 || parts.method != Method::GET {
            return Err(NotUpgrade("expected an HTTP/1.1 GET"));
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade")
            || !has_token(&parts.headers, header::UPGRADE, "websocket")
        {
            return Err(NotUpgrade(
                "missing Connection: upgrade and Upgrade: websocket",
            ));
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes())
            != Some(b"13")
        {
            return Err(NotUpgrade("Sec-WebSocket-Version must be 13"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or(NotUpgrade("missing Sec-WebSocket-Key"))?;
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotUpgrade("this connection cannot be upgraded"))?;
        Ok(Self { key, on_upgrade })
    }
}
