//! Assembly: the shared state, the router with its routes and headers,
//! the expiry sweep, and serving with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Weak};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::watch;
use webcall_core::time::Timestamp;

use crate::config::Config;
use crate::error::Result;
use crate::hub::Hub;
use crate::ice::{IceProvider, StaticIce};
use crate::limits::PerAddressLimit;
use crate::request::is_plausible_host;
use crate::store::{MemoryStore, RoomStore};
use crate::{api, ws};

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn RoomStore>,
    pub(crate) hub: Hub,
    pub(crate) ice: Arc<dyn IceProvider>,
    pub(crate) create_limit: PerAddressLimit,
    pub(crate) connections: AtomicUsize,
    pub(crate) shutdown: watch::Sender<bool>,
}

/// The whole server as a router, with an in-memory store and the
/// configured ICE servers. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that rate
/// limits see client addresses; [`run`] does that.
///
/// Call [`Config::validate`] first: this function does not. The expiry
/// sweep runs when this is called inside a Tokio runtime, until the router
/// is dropped.
pub fn app(config: Config) -> Router {
    build(config, None, None).0
}

/// [`app`] with a room store and an ICE provider of the caller's choosing.
pub fn app_with(config: Config, store: Arc<dyn RoomStore>, ice: Arc<dyn IceProvider>) -> Router {
    build(config, Some(store), Some(ice)).0
}

/// Serves the app on `listener` until `shutdown` completes, then closes
/// every signaling connection (with the error `unavailable`) and waits for
/// requests in flight.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    let (router, state) = build(config, None, None);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: closing signaling connections");
        state.shutdown.send_replace(true);
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await?;
    Ok(())
}

fn build(
    config: Config,
    store: Option<Arc<dyn RoomStore>>,
    ice: Option<Arc<dyn IceProvider>>,
) -> (Router, Arc<AppState>) {
    let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new(config.room.clone())));
    let ice = ice.unwrap_or_else(|| {
        Arc::new(StaticIce::new(
            config.ice_servers.clone(),
            config.ice_transport_policy,
        ))
    });
    let state = Arc::new(AppState {
        create_limit: PerAddressLimit::new(config.create_rate_per_minute),
        config,
        store,
        hub: Hub::new(),
        ice,
        connections: AtomicUsize::new(0),
        shutdown: watch::Sender::new(false),
    });
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(sweep(Arc::downgrade(&state)));
    }

    let router = Router::new()
        .route("/", get(api::page))
        .route("/r/{token}", get(api::page))
        .route("/assets/{name}", get(api::asset))
        .route("/api/rooms", post(api::create_room))
        .route("/api/rooms/{token}", get(api::room_info))
        .route("/api/rooms/{token}/qr.svg", get(api::room_qr))
        .route("/ws/rooms/{token}", get(ws::upgrade))
        .route("/healthz", get(api::healthz))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state.clone());
    (router, state)
}

/// Removes expired rooms every `sweep_interval` and tells their
/// participants; ends when the state is dropped.
async fn sweep(state: Weak<AppState>) {
    let Some(period) = state.upgrade().map(|s| s.config.sweep_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        state.store.sweep(Timestamp::now(), &|outputs| {
            if !outputs.is_empty() {
                tracing::debug!(outputs = outputs.len(), "expired rooms swept");
            }
            state.hub.deliver(outputs);
        });
        state.create_limit.forget_idle(Instant::now());
    }
}

/// Headers on every answer: a strict Content-Security-Policy (no inline
/// code; WebSockets only to this host), no sniffing, no referrer, camera
/// and microphone for this origin only, no framing.
async fn security_headers(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| is_plausible_host(h))
        .map(str::to_owned);
    let mut response = next.run(request).await;

    let mut connect = String::from("'self'");
    let public_host = state
        .config
        .public_base()
        .and_then(|b| b.split_once("://"))
        .map(|(_, h)| h.to_owned());
    for h in host.iter().chain(public_host.iter()) {
        connect.push_str(&format!(" ws://{h} wss://{h}"));
    }
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         media-src 'self' blob: mediastream:; connect-src {connect}; manifest-src 'self'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::try_from(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self)"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    response
}
