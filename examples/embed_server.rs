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
    let app = Router::new()
        .route(
            "/about",
            get(|| async { "a program that also does video calls" }),
        )
        .merge(webcall_server::app(config));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 8080)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
