//! Assembly: the shared state, the router with its routes and headers,
//! the expiry sweep, and serving with graceful shutdown.

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Weak};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::bus::{Bus, RedisBus};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::{Config, DEFAULT_STUN};
use crate::error::Result;
use crate::hosts::AllowedHosts;
use crate::hub::Hub;
use crate::ice::{IceProvider, StaticIce};
use crate::limits::PerAddressLimit;
use crate::redis_link::RedisLink;
use crate::request::RequestFacts;
use crate::rooms::RoomService;
use crate::serve::Gate;
use crate::store::{MemoryStore, RedisStore, RoomStore};
use crate::tls::Tls;
use crate::turn::ice::TurnIce;
use crate::turn::{TurnServer, TurnTls};
use crate::{api, headers, metrics, serve, ws};

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub(crate) config: Config,
    /// Where every handler reads the time.
    pub(crate) clock: Clock,
    /// Rooms: the store, and delivery of their outputs.
    pub(crate) rooms: RoomService,
    /// This process's connections.
    pub(crate) hub: Arc<Hub>,
    pub(crate) ice: Arc<dyn IceProvider>,
    pub(crate) create_limit: PerAddressLimit,
    /// Signaling WebSockets open now (a router embedded elsewhere has only
    /// this limit; [`run`] also counts every connection in `gate`).
    pub(crate) connections: AtomicUsize,
    pub(crate) gate: Arc<Gate>,
    pub(crate) hosts: AllowedHosts,
    /// `Some(deadline)` once the server is shutting down: every connection
    /// is told and closed by then.
    pub(crate) shutdown: watch::Sender<Option<tokio::time::Instant>>,
    /// Every signaling connection's task, for shutdown to wait for.
    pub(crate) signaling: TaskTracker,
    /// With rooms on Redis: this instance among the others, and the bus
    /// that reaches them (for readiness).
    pub(crate) shared: Option<Shared>,
}

/// What an instance sharing Redis with others holds besides its store.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) bus: Arc<RedisBus>,
}

/// Where rooms live and how their outputs are delivered.
struct Parts {
    store: Arc<dyn RoomStore>,
    hub: Arc<Hub>,
    bus: Arc<dyn Bus>,
    shared: Option<Shared>,
}

impl Parts {
    /// Rooms in this process: `store`, or a fresh [`MemoryStore`].
    fn local(config: &Config, store: Option<Arc<dyn RoomStore>>) -> Self {
        let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new(config.room.clone())));
        let hub = Arc::new(Hub::with_limits(config.queue_limits()));
        Self {
            store,
            bus: hub.clone(),
            hub,
            shared: None,
        }
    }

    /// Rooms and signaling on the Redis at `url`, shared with the other
    /// instances using it. Starts while Redis is away (then the server is
    /// not ready, and rooms answer 503, until it is back).
    async fn shared(config: &Config, url: &str) -> Result<Self> {
        let prefix = &config.redis_prefix;
        let link = RedisLink::open(url)?;
        let cluster = Arc::new(Cluster::join(link.clone(), prefix).await?);
        let hub =
            Arc::new(Hub::with_limits(config.queue_limits()).for_instance(cluster.instance()));
        let bus = Arc::new(RedisBus::on(link, prefix, hub.clone()).await?);
        let store = Arc::new(RedisStore::connect(url, prefix, config.room.clone()).await?);
        Ok(Self {
            store,
            hub,
            bus: bus.clone(),
            shared: Some(Shared { cluster, bus }),
        })
    }
}

impl AppState {
    /// Starts shutting down: every signaling connection is told
    /// `unavailable` and closed by `deadline`, and new ones are refused.
    pub(crate) fn begin_shutdown(&self, deadline: tokio::time::Instant) {
        self.shutdown.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(deadline);
            }
            first
        });
        self.signaling.close();
    }
}

/// Closes the signaling connections of a router made by [`app`] or
/// [`app_with`], as [`run`] does when it stops: for a program that serves
/// the router itself (with `axum::serve`, say), whose own graceful shutdown
/// does not reach connections that upgraded to WebSocket.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    state: Weak<AppState>,
}

impl ShutdownHandle {
    /// Tells every participant `unavailable` (nobody hears that the other
    /// left: both still hold a working media connection), closes their
    /// signaling connections, refuses new ones, and returns once they are
    /// closed: within [`Config::shutdown_timeout`], whatever the clients
    /// do, and a moment more for their last writes. Calling it again
    /// waits again; the first deadline stands.
    pub async fn shutdown(&self) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        let deadline = tokio::time::Instant::now() + state.config.shutdown_timeout;
        state.begin_shutdown(deadline);
        let deadline = (*state.shutdown.borrow()).unwrap_or(deadline);
        let signaling = state.signaling.clone();
        drop(state);
        let grace = std::time::Duration::from_millis(500);
        if tokio::time::timeout_at(deadline + grace, signaling.wait())
            .await
            .is_err()
        {
            tracing::warn!("signaling connections still open at the shutdown deadline");
        }
    }
}

/// The whole server as a router, with an in-memory store and the
/// configured ICE servers, and the handle that closes its signaling
/// connections when the program stops. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so that rate
/// limits see client addresses; [`run`] does that.
///
/// Call [`Config::validate`] first: this function does not. It does not
/// start [`Config::turn`]: start a [`TurnServer`] yourself and pass a
/// [`TurnIce`] to [`app_with`], as [`run`] does. The expiry
/// sweep runs when this is called inside a Tokio runtime, until the router
/// is dropped.
pub fn app(config: Config) -> (Router, ShutdownHandle) {
    let parts = Parts::local(&config, None);
    embedded(build(config, parts, None))
}

/// [`app`] with a room store and an ICE provider of the caller's choosing.
pub fn app_with(
    config: Config,
    store: Arc<dyn RoomStore>,
    ice: Arc<dyn IceProvider>,
) -> (Router, ShutdownHandle) {
    let parts = Parts::local(&config, Some(store));
    embedded(build(config, parts, Some(ice)))
}

fn embedded((router, state): (Router, Arc<AppState>)) -> (Router, ShutdownHandle) {
    let handle = ShutdownHandle {
        state: Arc::downgrade(&state),
    };
    (router, handle)
}

/// Serves the app on `listener` until `shutdown` completes, then tells
/// every signaling connection `unavailable`, closes idle HTTP connections,
/// lets requests in flight finish, and returns within
/// [`Config::shutdown_timeout`] whatever the clients do.
///
/// Connections are limited as [`Config`] says (all of them, per client,
/// time to send a request); the listening address is taken as the
/// machine's own for the allowed hosts. With [`Config::tls`] set, the port
/// speaks HTTPS: the certificate source is started here (see
/// [`run_with_tls`] to start it yourself and share it).
///
/// With [`Config::turn`] set, the built-in TURN server starts first (its
/// ports must be free), each join is handed its URLs with a fresh
/// credential, and it stops after the connections have drained. TURN over
/// TLS without a certificate of its own serves the HTTPS certificate.
///
/// With [`Config::metrics_listen`] set, Prometheus metrics are served
/// there (see [`crate::metrics`]) from the start until the server has
/// stopped.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    let tls = match &config.tls {
        Some(source) => Some(Tls::start(source, &config.resolved_data_dir()).await?),
        None => None,
    };
    run_with_tls(listener, config, tls, shutdown).await
}

/// [`run`] with a certificate source already started: `Some(tls)` makes
/// the port speak HTTPS with it (whatever [`Config::tls`] says), `None`
/// plain HTTP. Start the [`Tls`] yourself to print its fingerprint or to
/// serve the same certificate on another listener.
///
/// On an HTTPS port, a connection whose first byte is not a TLS handshake
/// is plain HTTP: it is answered with a redirect to the `https://` URL
/// (`308`, or `400` without a usable `Host`) and closed, never served.
pub async fn run_with_tls(
    listener: tokio::net::TcpListener,
    mut config: Config,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    config.listen = listener.local_addr()?;
    config.max_connections = serve::connection_limit(config.max_connections);
    let metrics = match config.metrics_listen {
        Some(addr) => Some(metrics::Listener::bind(addr).await?),
        None => None,
    };
    let turn = match &config.turn {
        Some(turn_config) => {
            let mut turn_config = turn_config.clone();
            if turn_config.public_host.is_none() {
                turn_config.public_host = config.public_host();
            }
            if turn_config.tls_on_https_port == Some(0) {
                turn_config.tls_on_https_port = Some(config.listen.port());
            }
            if turn_config.tls_listen.is_some() && turn_config.tls.is_none() {
                turn_config.tls = tls.as_ref().map(|tls| TurnTls::Config(tls.server_config()));
            }
            if config
                .ice_servers
                .iter()
                .any(|s| s.urls.iter().any(|u| u == DEFAULT_STUN))
            {
                tracing::info!(
                    "clients get the built-in TURN server and also the public STUN server {DEFAULT_STUN}; set ice_servers to [] (--ice-servers '[]') for the built-in server alone"
                );
            }
            Some(TurnServer::start(&turn_config).await?)
        }
        None => None,
    };
    let ice = match (&turn, &config.turn) {
        (Some(server), Some(turn_config)) => {
            let urls = server.urls();
            Some(Arc::new(TurnIce::new(
                turn_config.secret.clone(),
                turn_config.credential_ttl,
                urls.builtin.iter().chain(&urls.external).cloned(),
                config.ice_servers.clone(),
                config.ice_transport_policy,
            )) as Arc<dyn IceProvider>)
        }
        _ => None,
    };
    let parts = match config.redis_url.clone() {
        Some(url) => Parts::shared(&config, &url).await?,
        None => Parts::local(&config, None),
    };
    let (router, state) = build(config, parts, ice);
    let metrics = metrics.map(|(listener, handle)| {
        let turn_stats = turn.as_ref().map(|t| t.stats().clone());
        metrics::Listener::start(listener, handle, &state, turn_stats)
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        "room links use {}; requests are answered for {}",
        match state.config.public_base() {
            Some(base) => base.to_owned(),
            None => format!("{scheme}:// and the Host of each request"),
        },
        state.hosts.describe()
    );
    if let Some(tls) = &tls {
        tracing::info!("HTTPS with {}", tls.describe());
    }
    let shared = state.shared.clone();
    let turn_intake = turn.as_ref().and_then(TurnServer::https_intake);
    serve::serve(listener, router, state, tls, turn_intake, shutdown).await;
    if let Some(shared) = shared {
        shared.cluster.leave().await;
    }
    if let Some(turn) = turn {
        turn.stop().await;
    }
    if let Some(metrics) = metrics {
        metrics.stop().await;
    }
    Ok(())
}

fn build(
    config: Config,
    parts: Parts,
    ice: Option<Arc<dyn IceProvider>>,
) -> (Router, Arc<AppState>) {
    let Parts {
        store,
        hub,
        bus,
        shared,
    } = parts;
    let ice = ice.unwrap_or_else(|| {
        Arc::new(StaticIce::new(
            config.ice_servers.clone(),
            config.ice_transport_policy,
        ))
    });
    let state = Arc::new(AppState {
        create_limit: PerAddressLimit::new(config.create_rate_per_minute),
        rooms: RoomService::new(store, bus),
        hub,
        gate: Arc::new(Gate::new(
            config.max_connections,
            config.max_connections_per_client,
        )),
        hosts: AllowedHosts::new(&config, config.listen),
        clock: Clock::new(),
        config,
        ice,
        connections: AtomicUsize::new(0),
        shutdown: watch::Sender::new(None),
        signaling: TaskTracker::new(),
        shared,
    });
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(sweep(Arc::downgrade(&state)));
        if let Some(shared) = &state.shared {
            runtime.spawn(crate::cluster::run(
                shared.cluster.clone(),
                Arc::downgrade(&state),
            ));
        }
    }

    let router = Router::new()
        .route("/", get(api::page))
        .route("/r/{token}", get(api::page))
        .route("/assets/{name}", get(api::asset))
        .route("/assets/{version}/{name}", get(api::versioned_asset))
        .route("/api/rooms", post(api::create_room))
        .route("/api/rooms/{token}", get(api::room_info))
        .route("/api/rooms/{token}/qr.svg", get(api::room_qr))
        .route("/ws/rooms/{token}", get(ws::upgrade))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .fallback(api::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), check_host))
        .layer(middleware::from_fn(metrics::track_http));
    let router = headers::security_headers(router, &state.config).with_state(state.clone());
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
        match state.rooms.sweep(state.clock.now()).await {
            Ok(0) => {}
            Ok(outputs) => tracing::debug!(outputs, "expired rooms swept"),
            Err(e) => tracing::warn!("cannot sweep expired rooms: {e}"),
        }
        state
            .create_limit
            .forget_idle(tokio::time::Instant::now().into_std());
    }
}

/// Answers only requests for a host the server is configured or started
/// for (see [`AllowedHosts`]); `/healthz` and `/readyz` answer whatever
/// the host, for load balancers that probe by address.
async fn check_host(
    State(state): State<Arc<AppState>>,
    facts: RequestFacts,
    request: Request,
    next: Next,
) -> Response {
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    if request.headers().get_all(header::HOST).iter().count() > 1 {
        return (StatusCode::BAD_REQUEST, "one Host header, please\n").into_response();
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if state.hosts.allows(&host) => next.run(request).await,
        Some(host) => {
            tracing::debug!(client = %facts.client, host = %host.escape_debug(), "request for a host this server does not serve");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "this server does not answer to that host name; its operator can add it with --allowed-hosts or --public-url\n",
            )
                .into_response()
        }
        None => (StatusCode::BAD_REQUEST, "a Host header is required\n").into_response(),
    }
}
