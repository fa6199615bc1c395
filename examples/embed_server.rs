//! Serves webcall inside another axum application: your own routes and the
//! call pages share one port.
//!
//! Run with: `cargo run --example embed_server` and open <http://localhost:8080>.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use webcall_server::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config {
        // Links handed out point at this app; STUN and limits keep their defaults.
        public_url: Some("http://localhost:8080".to_owned()),
        ..Config::default()
    };
    config.validate()?;

    // webcall owns `/`, `/r/..`, `/assets/..`, `/api/rooms..`, `/ws/rooms..`
    // and `/healthz`; put your own routes beside them.
    let (webcall, webcall_shutdown) = webcall_server::app(config);
    let app = Router::new()
        .route(
            "/about",
            get(|| async { "a program that also does video calls" }),
        )
        .merge(webcall);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 8080)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // Signaling frames are small: send each at once rather than wait for
    // the previous one's acknowledgement.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        // Tell everyone in a call that the server is going and close their
        // signaling connections: axum's graceful shutdown waits for HTTP
        // requests, not for connections that became WebSockets.
        webcall_shutdown.shutdown().await;
    })
    .await?;
    Ok(())
}
