//! Checking STUN and TURN servers before a call (`webcall test`): for each
//! URL, a peer connection that knows only that server gathers candidates
//! the way a call would, and the first server-reflexive candidate (STUN) or
//! relayed candidate (TURN) shows that the server answers, and with what
//! address. The same check as a browser's "trickle ICE" page, with the same
//! engine the call uses, so a pass here means the call can use the server.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::peer::{self, PeerEvent, PeerSettings};
use crate::protocol::{IceServer, IceTransportPolicy};

/// What checking one URL found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceProbe {
    /// The `stun:`, `turn:` or `turns:` URL checked.
    pub url: String,
    /// What happened.
    pub outcome: ProbeOutcome,
}

/// The result of checking one ICE server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeOutcome {
    /// The server answered with a candidate.
    Reached {
        /// `srflx` (STUN: our address as the server sees it) or `relay`
        /// (TURN: the address the server relays from).
        candidate_type: String,
        /// The candidate's address and port.
        address: String,
        /// From the start of gathering to that candidate.
        after: Duration,
    },
    /// No candidate from the server within the time allowed: blocked,
    /// down, or (TURN) the credential was refused.
    NoAnswer,
    /// The native engine cannot use this URL (TURN over TCP or TLS);
    /// browsers can.
    NotUsable,
    /// The check itself failed before asking the server.
    Failed(String),
}

impl IceProbe {
    /// True when the server answered.
    pub fn reached(&self) -> bool {
        matches!(self.outcome, ProbeOutcome::Reached { .. })
    }
}

/// Checks every URL of `servers`, all at once, each for at most `wait`.
/// `ice_addrs` are the local addresses to gather on, as in
/// [`super::CallOptions::ice_addrs`] (empty: every interface).
pub async fn probe_ice_servers(
    servers: &[IceServer],
    ice_addrs: &[IpAddr],
    wait: Duration,
) -> Vec<IceProbe> {
    let checks = servers.iter().flat_map(|server| {
        server.urls.iter().map(move |url| {
            let single = IceServer {
                urls: vec![url.clone()],
                username: server.username.clone(),
                credential: server.credential.clone(),
            };
            probe_one(single, ice_addrs.to_vec(), wait)
        })
    });
    futures_util::future::join_all(checks).await
}

async fn probe_one(server: IceServer, ice_addrs: Vec<IpAddr>, wait: Duration) -> IceProbe {
    let url = server.urls[0].clone();
    let outcome = if !peer::usable_ice_url(&url) {
        ProbeOutcome::NotUsable
    } else {
        match gather(server, ice_addrs, wait).await {
            Ok(Some((candidate_type, address, after))) => ProbeOutcome::Reached {
                candidate_type,
                address,
                after,
            },
            Ok(None) => ProbeOutcome::NoAnswer,
            Err(e) => ProbeOutcome::Failed(e.to_string()),
        }
    };
    IceProbe { url, outcome }
}

/// Gathers with only `server` until it yields the candidate it is for.
async fn gather(
    server: IceServer,
    ice_addrs: Vec<IpAddr>,
    wait: Duration,
) -> crate::Result<Option<(String, String, Duration)>> {
    let is_turn = server.urls[0].to_ascii_lowercase().starts_with("turn");
    let wanted = if is_turn { "relay" } else { "srflx" };
    let settings = PeerSettings {
        ice_servers: vec![server],
        // Relay only for TURN, so that what comes back is its answer alone.
        policy: if is_turn {
            IceTransportPolicy::Relay
        } else {
            IceTransportPolicy::All
        },
        ice_addrs,
        send_video: false,
        send_audio: false,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let built = peer::build(&settings, 0, tx).await?;
    let pc = built.pc;
    let found = async {
        let offer = pc
            .create_offer(None)
            .await
            .map_err(peer::rtc_err("creating an offer"))?;
        pc.set_local_description(offer)
            .await
            .map_err(peer::rtc_err("starting to gather"))?;
        while let Some((_, event)) = rx.recv().await {
            if let PeerEvent::Candidate(c) = event
                && let Some((typ, address)) = candidate_type_and_address(&c.candidate)
                && typ == wanted
            {
                return Ok(Some((typ, address, started.elapsed())));
            }
        }
        Ok(None)
    };
    let result = tokio::time::timeout(wait, found).await.unwrap_or(Ok(None));
    let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
    result
}

/// The type (`host`, `srflx`, `relay`, ...) and `address:port` of an ICE
/// candidate line (`candidate:<foundation> <component> <transport>
/// <priority> <address> <port> typ <type> ...`).
fn candidate_type_and_address(line: &str) -> Option<(String, String)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let typ = fields
        .iter()
        .position(|f| *f == "typ")
        .and_then(|i| fields.get(i + 1))?;
    let (address, port) = (fields.get(4)?, fields.get(5)?);
    let address = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    Some(((*typ).to_owned(), address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_lines_give_their_type_and_address() {
        assert_eq!(
            candidate_type_and_address(
                "candidate:1 1 udp 16777215 203.0.113.10 49170 typ relay raddr 0.0.0.0 rport 0"
            ),
            Some(("relay".into(), "203.0.113.10:49170".into()))
        );
        assert_eq!(
            candidate_type_and_address("candidate:2 1 udp 1694498815 2001:db8::1 5000 typ srflx"),
            Some(("srflx".into(), "[2001:db8::1]:5000".into()))
        );
        assert_eq!(candidate_type_and_address("candidate:3 1 udp 1 x"), None);
    }

    #[tokio::test]
    async fn urls_the_engine_cannot_use_are_said_so_without_asking() {
        let servers = [IceServer {
            urls: vec![
                "turns:turn.example.org:443?transport=tcp".into(),
                "turn:turn.example.org:3478?transport=tcp".into(),
            ],
            username: Some("u".into()),
            credential: Some("p".into()),
        }];
        let probes = probe_ice_servers(&servers, &[], Duration::from_secs(1)).await;
        assert_eq!(probes.len(), 2);
        assert!(
            probes.iter().all(|p| p.outcome == ProbeOutcome::NotUsable),
            "{probes:?}"
        );
    }
}
