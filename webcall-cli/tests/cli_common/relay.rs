//! A signaling relay in front of the server that reads (and can rewrite)
//! the DTLS fingerprints in the descriptions it delivers to the client
//! behind it: a man in the middle, as a signaling server that swaps keys
//! would be. The testkit's [`SignalingRelay`] does the relaying and the
//! rewriting ([`rewrite_fingerprint`]); this records what went by.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use webcall_core::call::verify::first_fingerprint;
use webcall_testkit::{Direction, SignalingRelay, rewrite_fingerprint};

/// The relay; dropped, it stops.
#[derive(Debug)]
pub struct FingerprintRelay {
    relay: SignalingRelay,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// One fingerprint delivered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// As the server sent it.
    pub original: String,
    /// As the client got it.
    pub delivered: String,
}

/// The first fingerprint of the description a signaling message carries.
fn fingerprint_of(message: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(message).ok()?;
    first_fingerprint(value["sdp"].as_str()?).map(str::to_owned)
}

impl FingerprintRelay {
    /// A relay on a free port of 127.0.0.1 in front of `upstream`; with
    /// `rewrite`, every fingerprint delivered is changed.
    pub async fn launch(upstream: SocketAddr, rewrite: bool) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let relay = SignalingRelay::launch(upstream, Direction::ToClient, move |message| {
            let delivered = if rewrite {
                rewrite_fingerprint(message)
            } else {
                message.to_owned()
            };
            if let (Some(original), Some(delivered)) =
                (fingerprint_of(message), fingerprint_of(&delivered))
            {
                record.lock().unwrap().push(Seen {
                    original,
                    delivered,
                });
            }
            delivered
        })
        .await
        .unwrap();
        Self { relay, seen }
    }

    /// A call link with the relay in place of the server.
    pub fn link(&self, room_url: &str) -> String {
        let token = room_url
            .rsplit_once("/r/")
            .map(|(_, token)| token)
            .expect("a room link");
        self.relay.room_url(token)
    }

    /// The fingerprints delivered so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
