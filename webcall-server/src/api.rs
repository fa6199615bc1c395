//! The HTTP side: the room API (create, look up, QR code), the pages and
//! assets of the browser client, and the health check.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use webcall_core::protocol::{ApiError, CreateRoomRequest, ErrorCode};
use webcall_core::token::RoomToken;

use crate::app::AppState;
use crate::assets;
use crate::limits::retry_after;
use crate::request::{RequestFacts, client_key, creator};

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// An error answer with the body `{"error": {"code", "message"}}`.
pub(crate) fn api_error(status: StatusCode, code: ErrorCode) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, NO_STORE)],
        Json(ApiError::new(code)),
    )
        .into_response()
}

fn room_not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, ErrorCode::RoomNotFound)
}

/// How long a client is asked to wait when the room store is away.
pub(crate) const STORE_RETRY_AFTER_SECS: u64 = 5;

/// The answer when the room store cannot be reached: 503 with the usual
/// JSON error and `Retry-After`.
pub(crate) fn store_failed(e: crate::Error) -> Response {
    tracing::warn!("room store failed: {e}");
    crate::metrics::refused_with(ErrorCode::Unavailable);
    let mut response = api_error(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(STORE_RETRY_AFTER_SECS),
    );
    response
}

/// The largest body `POST /api/rooms` reads. Today no field is defined;
/// the body is read (so the connection can be kept alive) and checked.
pub(crate) const MAX_CREATE_BODY: usize = webcall_core::protocol::MAX_CREATE_BODY_BYTES;

/// Reads and checks the body of `POST /api/rooms`: empty, or a JSON object
/// whose fields are ignored. The answer to anything else.
async fn read_create_body(body: Body, timeout: std::time::Duration) -> Result<(), Response> {
    let bytes =
        match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_CREATE_BODY)).await {
            Err(_) => {
                return Err(api_error_with(
                    StatusCode::REQUEST_TIMEOUT,
                    ApiError::with_detail(
                        ErrorCode::Timeout,
                        "the request body did not arrive in time",
                    ),
                ));
            }
            Ok(Err(_)) => {
                return Err(api_error_with(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ApiError::with_detail(
                        ErrorCode::MessageTooLarge,
                        format_args!("the request body may be at most {MAX_CREATE_BODY} bytes"),
                    ),
                ));
            }
            Ok(Ok(bytes)) => bytes,
        };
    // A longer body was refused while reading it (413 above).
    match CreateRoomRequest::parse(&bytes) {
        Ok(_) => Ok(()),
        Err(_) => Err(api_error_with(
            StatusCode::BAD_REQUEST,
            ApiError::with_detail(
                ErrorCode::BadMessage,
                "the body must be empty or a JSON object such as {}",
            ),
        )),
    }
}

fn api_error_with(status: StatusCode, error: ApiError) -> Response {
    (status, [(header::CACHE_CONTROL, NO_STORE)], Json(error)).into_response()
}

/// `POST /api/rooms`.
pub(crate) async fn create_room(
    State(state): State<Arc<AppState>>,
    facts: RequestFacts,
    body: Body,
) -> Response {
    if let Err(answer) = read_create_body(body, state.config.request_timeout).await {
        return answer;
    }
    let client = client_key(facts.client, state.config.client_ipv6_prefix);
    if !state
        .create_limit
        .check(client, tokio::time::Instant::now().into_std())
    {
        tracing::info!(client = %facts.client, "room creation rate limited");
        crate::metrics::refused_with(ErrorCode::RateLimited);
        let mut response = api_error(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited);
        let wait = retry_after(state.config.create_rate_per_minute).as_secs();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    let creator = creator(facts.client, state.config.client_ipv6_prefix);
    match state.rooms.create(state.clock.now(), creator).await {
        Ok(mut created) => {
            created.url = room_url(&state, &facts, &created.token);
            tracing::debug!(token = ?created.token, "room created");
            (
                StatusCode::CREATED,
                [(header::CACHE_CONTROL, NO_STORE)],
                Json(created),
            )
                .into_response()
        }
        Err(crate::Error::Room(webcall_core::Error::TooManyRoomsFromClient)) => {
            tracing::info!(client = %facts.client, "room creation refused: too many open links from this client or network");
            crate::metrics::refused_with(ErrorCode::TooManyRooms);
            api_error(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRooms)
        }
        Err(e) => store_failed(e),
    }
}

/// `GET /api/rooms/{token}`.
pub(crate) async fn room_info(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    facts: RequestFacts,
) -> Response {
    let Ok(token) = token.parse::<RoomToken>() else {
        return room_not_found();
    };
    match state.rooms.info(&token, state.clock.now()).await {
        Ok(Some(mut info)) => {
            info.url = Some(room_url(&state, &facts, &token));
            ([(header::CACHE_CONTROL, NO_STORE)], Json(info)).into_response()
        }
        Ok(None) => room_not_found(),
        Err(e) => store_failed(e),
    }
}

/// The link to a room as people share it: the page's link field, the QR
/// code and the created room's `url` all come from here.
fn room_url(state: &AppState, facts: &RequestFacts, token: &RoomToken) -> String {
    format!("{}/r/{token}", facts.base_url(&state.config))
}

/// `GET /api/rooms/{token}/qr.svg`: the room's link as a QR code.
pub(crate) async fn room_qr(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    facts: RequestFacts,
) -> Response {
    let Ok(token) = token.parse::<RoomToken>() else {
        return room_not_found();
    };
    match state.rooms.info(&token, state.clock.now()).await {
        Ok(Some(_)) => {}
        Ok(None) => return room_not_found(),
        Err(e) => return store_failed(e),
    }
    let url = room_url(&state, &facts, &token);
    match qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(256, 256)
                .quiet_zone(true)
                .build();
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("image/svg+xml"),
                    ),
                    (header::CACHE_CONTROL, NO_STORE),
                ],
                svg,
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!("cannot draw a QR code for a {}-byte link: {e}", url.len());
            api_error(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Unavailable)
        }
    }
}

/// `GET /healthz`: the process answers. It stays 200 while Redis is
/// away (restarting the process would not help); `/readyz` tells.
pub(crate) async fn healthz() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, NO_STORE)], "ok")
}

/// `GET /readyz`: whether this instance should be sent new clients:
/// `200 {"ready":true}`, or `503 {"ready":false,"reason":"…"}` while it
/// shuts down or cannot reach Redis (rooms shared with other instances).
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let reason = if state.shutdown.borrow().is_some() {
        Some("shutting down".to_owned())
    } else if let Some(shared) = &state.shared {
        match shared.bus.ping().await {
            Err(e) => Some(e.to_string()),
            Ok(()) if !shared.bus.is_subscribed() => {
                Some("not yet receiving signaling from other instances over Redis".to_owned())
            }
            Ok(()) => None,
        }
    } else {
        None
    };
    match reason {
        None => (
            [(header::CACHE_CONTROL, NO_STORE)],
            Json(serde_json::json!({ "ready": true })),
        )
            .into_response(),
        Some(reason) => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, NO_STORE)],
                Json(serde_json::json!({ "ready": false, "reason": reason })),
            )
                .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(STORE_RETRY_AFTER_SECS),
            );
            response
        }
    }
}

/// `GET /` and `GET /r/{token}`: the single page, which routes itself.
pub(crate) async fn page(headers: HeaderMap) -> Response {
    assets::response("index.html", &headers)
        .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

/// `GET /assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    assets::response(&name, &headers)
        .unwrap_or_else(|| (StatusCode::NOT_FOUND, "no such file\n").into_response())
}

/// `GET /assets/{version}/{name}`: the files the page names, kept for good.
pub(crate) async fn versioned_asset(
    Path((version, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    assets::versioned_response(&version, &name, &headers)
        .unwrap_or_else(|| (StatusCode::NOT_FOUND, "no such file\n").into_response())
}

/// Anything else.
pub(crate) async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
