//! Prometheus metrics (`--metrics-listen`): every metric's name and help
//! text, the process-wide recorder, the `/metrics` listener, and the
//! one-line helpers the rest of the server calls where things happen.
//!
//! Counters are recorded where their event happens, with the `metrics`
//! macros: until a recorder is installed they do nothing, so a server
//! embedded without metrics pays next to nothing (and an embedder that
//! installs its own recorder gets the same counters). Gauges (rooms,
//! participants, connections) and the TURN server's counters are read at
//! scrape time from the state that owns them, so they never drift.
//!
//! The recorder belongs to the process: one metrics listener per process
//! (a second server in the same process shares the counters, and the
//! gauges are those of the server whose listener was scraped).
//!
//! No label carries a room token, a client address or a raw path: routes
//! are the matched templates (`/api/rooms/{token}`), everything else comes
//! from fixed lists.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webcall_core::protocol::{ClientMessage, ErrorCode, ServerMessage};
use webcall_core::room::{ConnectionId, Output};

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::turn::TurnStats;

/// Rooms stored (gauge).
pub const ROOMS: &str = "webcall_rooms";
/// Seats taken in all rooms, held ones included (gauge).
pub const PARTICIPANTS: &str = "webcall_participants_seated";
/// Signaling WebSockets open (gauge).
pub const WEBSOCKETS: &str = "webcall_websocket_connections_open";
/// TCP connections open, of every kind (gauge).
pub const TCP_CONNECTIONS: &str = "webcall_tcp_connections_open";
/// Bytes waiting in the signaling connections' outgoing queues (gauge).
pub const QUEUED_BYTES: &str = "webcall_signaling_queued_bytes";
/// Signaling messages received, by `type` (counter).
pub const RECEIVED: &str = "webcall_signaling_messages_received_total";
/// Signaling messages relayed to the other participant, by `type` (counter).
pub const RELAYED: &str = "webcall_signaling_messages_relayed_total";
/// Requests and messages refused, by `reason` (counter).
pub const REFUSALS: &str = "webcall_refusals_total";
/// HTTP requests answered, by `method`, `route` and `status` (counter).
pub const HTTP_REQUESTS: &str = "webcall_http_requests_total";
/// Time to answer an HTTP request, by `method` and `route` (histogram).
pub const HTTP_DURATION: &str = "webcall_http_request_duration_seconds";
/// Room store and bus errors talking to Redis (counter; recorded by the
/// Redis store).
pub const REDIS_ERRORS: &str = "webcall_redis_errors_total";
/// Time of one Redis command (histogram; recorded by the Redis store).
pub const REDIS_COMMAND: &str = "webcall_redis_command_seconds";
/// TURN allocations open (gauge).
pub const TURN_ALLOCATIONS: &str = "webcall_turn_allocations";
/// TURN allocations opened since start (counter).
pub const TURN_ALLOCATIONS_OPENED: &str = "webcall_turn_allocations_opened_total";
/// TURN allocations refused by a quota (counter).
pub const TURN_ALLOCATIONS_REFUSED: &str = "webcall_turn_allocations_refused_total";
/// Bytes relayed by the TURN server (counter).
pub const TURN_RELAYED_BYTES: &str = "webcall_turn_relayed_bytes_total";
/// TURN allocations refused a peer on the deny list, each counted once
/// (counter).
pub const TURN_DENIED_PEERS: &str = "webcall_turn_denied_peers_total";
/// Relayed packets dropped because their peer is on the deny list
/// (counter).
pub const TURN_DENIED_PACKETS: &str = "webcall_turn_denied_packets_total";
/// TURN requests with bad credentials (counter).
pub const TURN_AUTH_FAILURES: &str = "webcall_turn_auth_failures_total";
/// Unauthenticated TURN requests dropped by the rate limit (counter).
pub const TURN_UNAUTHENTICATED_DROPPED: &str = "webcall_turn_unauthenticated_dropped_total";
/// Relayed packets dropped by the per-allocation byte rate (counter).
pub const TURN_RATE_LIMITED_PACKETS: &str = "webcall_turn_rate_limited_packets_total";
/// Always 1, with the server's `version` as a label (gauge).
pub const BUILD_INFO: &str = "webcall_build_info";

/// Every metric's name, as README's table lists them.
pub const ALL: &[&str] = &[
    ROOMS,
    PARTICIPANTS,
    WEBSOCKETS,
    TCP_CONNECTIONS,
    QUEUED_BYTES,
    RECEIVED,
    RELAYED,
    REFUSALS,
    HTTP_REQUESTS,
    HTTP_DURATION,
    REDIS_ERRORS,
    REDIS_COMMAND,
    TURN_ALLOCATIONS,
    TURN_ALLOCATIONS_OPENED,
    TURN_ALLOCATIONS_REFUSED,
    TURN_RELAYED_BYTES,
    TURN_DENIED_PEERS,
    TURN_DENIED_PACKETS,
    TURN_AUTH_FAILURES,
    TURN_UNAUTHENTICATED_DROPPED,
    TURN_RATE_LIMITED_PACKETS,
    BUILD_INFO,
];

/// Histogram buckets for durations (`*_seconds`): 0.5 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histograms are folded in when nobody scrapes, so that their
/// samples never pile up.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The route label of requests no route matched.
const UNMATCHED: &str = "unmatched";

fn describe() {
    describe_gauge!(
        ROOMS,
        "Rooms stored: live ones, and expired ones until the next sweep. With a shared store, every instance reports the same total."
    );
    describe_gauge!(
        PARTICIPANTS,
        "Seats taken in all rooms, including seats held for a participant who is reconnecting."
    );
    describe_gauge!(WEBSOCKETS, "Signaling WebSocket connections open.");
    describe_gauge!(
        TCP_CONNECTIONS,
        "TCP connections open on the public port, of every kind (page loads, API calls, WebSockets)."
    );
    describe_gauge!(
        QUEUED_BYTES,
        metrics::Unit::Bytes,
        "Bytes waiting in the signaling connections' outgoing queues."
    );
    describe_counter!(
        RECEIVED,
        "Signaling messages received from clients, by type (join, offer, answer, candidate, bye, leaving)."
    );
    describe_counter!(
        RELAYED,
        "Signaling messages relayed to the other participant, by the type the sender sent (offer, answer, candidate, bye)."
    );
    describe_counter!(
        REFUSALS,
        "Requests, connections and messages refused, by reason (rate_limited, room_full, origin, message_too_large, connection_limit, too_many_rooms, ...)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered on the public port, by method, matched route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "Time to answer an HTTP request (for a WebSocket, until the upgrade), by method and route."
    );
    describe_counter!(REDIS_ERRORS, "Redis commands that failed.");
    describe_histogram!(
        REDIS_COMMAND,
        metrics::Unit::Seconds,
        "Time of one Redis command."
    );
    describe_gauge!(TURN_ALLOCATIONS, "TURN relay allocations open.");
    describe_counter!(TURN_ALLOCATIONS_OPENED, "TURN relay allocations opened.");
    describe_counter!(
        TURN_ALLOCATIONS_REFUSED,
        "TURN allocations refused because the server or the credential holds its maximum."
    );
    describe_counter!(
        TURN_RELAYED_BYTES,
        metrics::Unit::Bytes,
        "Payload bytes relayed by the TURN server, both directions."
    );
    describe_counter!(
        TURN_DENIED_PEERS,
        "TURN allocations refused a peer on the deny list (loopback, private, link-local, metadata), each allocation counted once."
    );
    describe_counter!(
        TURN_DENIED_PACKETS,
        "Relayed packets dropped because their peer is on the deny list."
    );
    describe_counter!(
        TURN_AUTH_FAILURES,
        "TURN requests answered 401 for forged, expired or malformed credentials."
    );
    describe_counter!(
        TURN_UNAUTHENTICATED_DROPPED,
        "Unauthenticated TURN requests dropped by the per-source rate limit or a full nonce table."
    );
    describe_counter!(
        TURN_RATE_LIMITED_PACKETS,
        "Relayed packets dropped by the per-allocation byte rate."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label names the build.");
}

/// The process's Prometheus recorder, installed on first use.
fn recorder() -> Result<&'static PrometheusHandle> {
    static INSTALLED: OnceLock<std::result::Result<PrometheusHandle, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .map_err(|e| format!("cannot set the histogram buckets: {e}"))?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|_| {
                "another metrics recorder is installed in this process: leave the metrics listener unset and export through that recorder".to_owned()
            })?;
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Ok(handle)
        })
        .as_ref()
        .map_err(|e| Error::Config(e.clone()))
}

/// Where scrape-time values come from.
#[derive(Debug, Clone)]
struct Sources {
    state: Weak<AppState>,
    turn: Option<Arc<TurnStats>>,
    handle: &'static PrometheusHandle,
}

/// The running `/metrics` listener.
#[derive(Debug)]
pub(crate) struct Listener {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Listener {
    /// Installs the recorder (once per process) and binds `addr`; fails
    /// before anything else starts when the port is taken.
    pub(crate) async fn bind(addr: SocketAddr) -> Result<(TcpListener, &'static PrometheusHandle)> {
        let handle = recorder()?;
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            Error::Config(format!(
                "cannot listen for metrics on {addr}: {e}; is another program using that port?"
            ))
        })?;
        Ok((listener, handle))
    }

    /// Serves `GET /metrics` on `listener` (nothing else) with the values
    /// of `state` and `turn`, until [`stop`](Self::stop).
    pub(crate) fn start(
        listener: TcpListener,
        handle: &'static PrometheusHandle,
        state: &Arc<AppState>,
        turn: Option<Arc<TurnStats>>,
    ) -> Self {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!("metrics at http://{addr}/metrics");
        }
        let sources = Sources {
            state: Arc::downgrade(state),
            turn,
            handle,
        };
        let router = Router::new()
            .route("/metrics", get(scrape))
            .with_state(sources);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let upkeep = async {
                let mut tick = tokio::time::interval(UPKEEP_EVERY);
                loop {
                    tick.tick().await;
                    handle.run_upkeep();
                }
            };
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(stopped.clone().cancelled_owned());
            tokio::select! {
                served = serve => if let Err(e) = served {
                    tracing::warn!("the metrics listener failed: {e}");
                },
                () = upkeep => {}
            }
        });
        Self { stop, task }
    }

    /// Stops listening; a scrape in progress gets a moment to finish.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// `GET /metrics`: the gauges read now, then everything as Prometheus text.
async fn scrape(State(sources): State<Sources>) -> Response {
    let values = Values::read(&sources).await;
    // One scrape at a time sets the gauges and renders, so that two
    // servers in one process (tests) never mix their gauges in one answer.
    static SCRAPE: Mutex<()> = Mutex::new(());
    let text = {
        let _one = SCRAPE.lock().unwrap_or_else(|p| p.into_inner());
        values.record();
        sources.handle.run_upkeep();
        sources.handle.render()
    };
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// What is read at scrape time; `None` where the source cannot say.
#[derive(Debug, Default)]
struct Values {
    rooms: Option<usize>,
    participants: Option<usize>,
    websockets: Option<usize>,
    tcp: Option<usize>,
    queued: Option<usize>,
    turn: Option<Arc<TurnStats>>,
}

impl Values {
    async fn read(sources: &Sources) -> Self {
        let mut values = Self {
            turn: sources.turn.clone(),
            ..Self::default()
        };
        let Some(state) = sources.state.upgrade() else {
            return values;
        };
        let store = state.rooms.store();
        match store.len().await {
            Ok(n) => values.rooms = Some(n),
            Err(e) => tracing::warn!("metrics: cannot count rooms: {e}"),
        }
        match store.participants().await {
            Ok(n) => values.participants = n,
            Err(e) => tracing::warn!("metrics: cannot count participants: {e}"),
        }
        values.websockets = Some(state.connections.load(Ordering::Acquire));
        values.tcp = Some(state.gate.open());
        values.queued = Some(state.hub.queued_bytes());
        values
    }

    fn record(&self) {
        for (name, value) in [
            (ROOMS, self.rooms),
            (PARTICIPANTS, self.participants),
            (WEBSOCKETS, self.websockets),
            (TCP_CONNECTIONS, self.tcp),
            (QUEUED_BYTES, self.queued),
        ] {
            if let Some(value) = value {
                gauge!(name).set(value as f64);
            }
        }
        if let Some(turn) = &self.turn {
            let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
            gauge!(TURN_ALLOCATIONS).set(turn.allocations.load(Ordering::Relaxed) as f64);
            for (name, value) in [
                (TURN_ALLOCATIONS_OPENED, load(&turn.allocations_opened)),
                (TURN_ALLOCATIONS_REFUSED, load(&turn.allocations_refused)),
                (TURN_RELAYED_BYTES, load(&turn.relayed_bytes)),
                (TURN_DENIED_PEERS, load(&turn.denied_peers)),
                (TURN_DENIED_PACKETS, load(&turn.denied_packets)),
                (TURN_AUTH_FAILURES, load(&turn.unauthorized)),
                (
                    TURN_UNAUTHENTICATED_DROPPED,
                    load(&turn.unauthenticated_dropped),
                ),
                (TURN_RATE_LIMITED_PACKETS, load(&turn.rate_limited_packets)),
            ] {
                counter!(name).absolute(value);
            }
        }
    }
}

/// Middleware on the public router: counts each answer by method, route
/// template and status, and times it.
pub(crate) async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label from a fixed list.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Counts a refusal: `reason` is an [`ErrorCode`] name or one of
/// `origin`, `connection_limit`.
pub(crate) fn refused(reason: &'static str) {
    counter!(REFUSALS, "reason" => reason).increment(1);
}

/// Counts a refusal answered with `code`.
pub(crate) fn refused_with(code: ErrorCode) {
    refused(code.as_str());
}

/// The wire name of a client message's type.
pub(crate) fn message_type(message: &ClientMessage) -> &'static str {
    match message {
        ClientMessage::Join { .. } => "join",
        ClientMessage::Offer { .. } => "offer",
        ClientMessage::Answer { .. } => "answer",
        ClientMessage::Candidate { .. } => "candidate",
        ClientMessage::Bye => "bye",
        ClientMessage::Leaving => "leaving",
    }
}

/// Counts one client message of `kind` from `from` and what the room made
/// of it: an error back to the sender is a refusal, a message to anyone
/// else (after anything but `join`) a relay.
pub(crate) fn room_input(kind: &'static str, from: ConnectionId, outputs: &[Output]) {
    counter!(RECEIVED, "type" => kind).increment(1);
    for output in outputs {
        match output {
            Output::Send {
                to,
                message: ServerMessage::Error(e),
            } if *to == from => refused_with(e.code),
            Output::Send { to, .. } if *to != from && kind != "join" => {
                counter!(RELAYED, "type" => kind).increment(1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `webcall_*` names in `text`, histogram series folded into their
    /// histogram's name.
    fn names_in(text: &str) -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("webcall_"))
            // Crate paths, not metrics.
            .filter(|w| !["webcall_server", "webcall_core"].contains(w))
            .map(|w| {
                ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| w.strip_suffix(s))
                    .filter(|base| ALL.contains(base))
                    .unwrap_or(w)
                    .to_owned()
            })
            .collect()
    }

    fn read(path: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_readme_lists_every_metric_and_nothing_else() {
        let readme = read("../README.md");
        let section = readme
            .split("\n## Metrics\n")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .expect("README has a section Metrics");
        for name in ALL {
            assert!(
                section.contains(&format!("| `{name}` |")),
                "{name} has no row in README's Metrics table"
            );
        }
        let unknown: Vec<_> = names_in(section)
            .into_iter()
            .filter(|n| !ALL.contains(&n.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "README names unknown metrics: {unknown:?}"
        );
    }

    #[test]
    fn the_dashboard_graphs_only_metrics_that_exist() {
        let dashboard = read("../contrib/grafana/webcall.json");
        let parsed: serde_json::Value =
            serde_json::from_str(&dashboard).expect("the dashboard is JSON");
        assert!(parsed["panels"].as_array().is_some_and(|p| !p.is_empty()));
        let used = names_in(&dashboard);
        let unknown: Vec<_> = used.iter().filter(|n| !ALL.contains(&n.as_str())).collect();
        assert!(
            unknown.is_empty(),
            "the dashboard names unknown metrics: {unknown:?}"
        );
        // Everything but the build label is graphed.
        for name in ALL.iter().filter(|n| **n != BUILD_INFO) {
            assert!(used.contains(*name), "the dashboard does not graph {name}");
        }
    }

    #[test]
    fn names_are_prefixed_and_unique() {
        let unique: std::collections::BTreeSet<_> = ALL.iter().collect();
        assert_eq!(unique.len(), ALL.len());
        assert!(ALL.iter().all(|n| n.starts_with("webcall_")));
    }
}
