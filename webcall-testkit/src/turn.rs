//! TURN clients for tests and benchmarks of the built-in TURN server: the
//! webrtc-rs `turn` crate's client, each on a fresh loopback UDP socket.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

/// A TURN client of `server` with these credentials, listening.
pub async fn client(server: SocketAddr, username: &str, password: &str) -> Result<Client> {
    let conn = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let client = Client::new(ClientConfig {
        stun_serv_addr: String::new(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await?;
    client.listen().await?;
    Ok(client)
}

/// One allocation on `server`: the client (keep it alive with the relay)
/// and the relayed socket. A refusal's error text carries the STUN error
/// code (`401`, `486`, ...).
pub async fn allocate(
    server: SocketAddr,
    username: &str,
    password: &str,
) -> Result<(Client, impl Conn + use<>)> {
    let client = client(server, username, password).await?;
    let relay = client.allocate().await?;
    Ok((client, relay))
}
