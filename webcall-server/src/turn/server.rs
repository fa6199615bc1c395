//! The TURN server's receive loop, one per listener. It hands each message
//! to the TURN crate's request handler (allocations, permissions, channels,
//! relaying) after checks of its own that the crate does not make:
//!
//! - unauthenticated requests (and requests with bad credentials) are rate
//!   limited per source address, and the nonce table they fill is bounded
//!   by evicting its oldest entries, so floods cannot grow memory;
//! - bad credentials get `401 Unauthorized` (the crate answers `400`);
//! - Allocate requests over the total or per-credential quota get `508` or
//!   `486`;
//! - CreatePermission and ChannelBind requests naming a denied peer get
//!   `403 Forbidden`, so a client learns at once that the peer is refused;
//!   the allocation is counted and logged the first time only.
//!
//! The loop handles one message at a time, as the crate's own loop does;
//! that is what lets an Allocate's quota reservation reach the relay
//! generator through [`PendingReservation`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine as _;
use stun::attributes::{
    ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS,
};
use stun::error_code::{
    CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN, CODE_INSUFFICIENT_CAPACITY, CODE_UNAUTHORIZED,
    ErrorCode, ErrorCodeAttribute,
};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, Message, MessageType, Setter,
};
use stun::textattrs::{Nonce, Realm, Username};
use stun::xoraddr::XorMappedAddress;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use turn::allocation::allocation_manager::Manager;
use turn::allocation::five_tuple::FiveTuple;
use turn::auth::AuthHandler;
use turn::proto::PROTO_UDP;
use turn::proto::chandata::ChannelData;
use turn::server::request::Request;
use webrtc_util::Conn;

use super::credentials::RestAuth;
use super::peers::PeerPolicy;
use super::relay::{
    Denials, PendingAllocation, PendingReservation, QuotaRefusal, Quotas, TurnStats,
};
use crate::limits::TokenBucket;

/// How long a nonce stays valid (the TURN crate's own figure).
const NONCE_LIFETIME: Duration = Duration::from_secs(3600);
/// The largest datagram read.
const MTU: usize = 1600;
/// Source addresses whose rate is tracked before idle ones are forgotten.
const MAX_TRACKED_SOURCES: usize = 50_000;

/// What the loops of one server share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub auth: Arc<RestAuth>,
    pub realm: String,
    pub nonces: Arc<tokio::sync::Mutex<HashMap<String, Instant>>>,
    pub max_nonces: usize,
    pub quotas: Arc<Quotas>,
    pub policy: PeerPolicy,
    pub stats: Arc<TurnStats>,
    /// Unauthenticated requests per second one source address may send
    /// (0 = no limit), with a burst of twice that.
    pub unauthenticated_per_second: u32,
    pub sources: Mutex<HashMap<IpAddr, TokenBucket>>,
    /// Which open allocations have met a denied peer.
    pub denials: Arc<Denials>,
    pub channel_bind_timeout: Duration,
}

/// What to do with one message before the TURN crate sees it.
enum Verdict {
    /// Hand it to the crate.
    Pass,
    /// Drop it silently.
    Drop,
    /// Answer it with this error (and a fresh nonce for 401).
    Answer(ErrorCode, Option<MessageIntegrity>),
}

/// The five-tuple that names the allocation of `client` on the listener at
/// `local` (the TURN crate names stream clients' allocations as UDP ones).
fn five_tuple(client: SocketAddr, local: SocketAddr) -> FiveTuple {
    FiveTuple {
        protocol: PROTO_UDP,
        src_addr: client,
        dst_addr: local,
    }
}

impl Shared {
    fn source_allowed(&self, ip: IpAddr) -> bool {
        if self.unauthenticated_per_second == 0 {
            return true;
        }
        let now = std::time::Instant::now();
        let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED_SOURCES && !map.contains_key(&ip) {
            let rate = f64::from(self.unauthenticated_per_second);
            map.retain(|_, bucket| !bucket.clone().try_take_n(rate * 2.0, now));
            if map.len() >= MAX_TRACKED_SOURCES {
                map.clear();
            }
        }
        let ok = map
            .entry(ip)
            .or_insert_with(|| {
                TokenBucket::new(
                    f64::from(self.unauthenticated_per_second),
                    self.unauthenticated_per_second.saturating_mul(2),
                    now,
                )
            })
            .try_take(now);
        if !ok {
            self.stats
                .unauthenticated_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Decides on one STUN message from `src`, received on the listener at
    /// `local`. An Allocate within its quotas leaves its reservation in
    /// `pending`.
    fn check(
        &self,
        m: &Message,
        src: SocketAddr,
        local: SocketAddr,
        pending: &PendingReservation,
    ) -> Verdict {
        if m.typ.class != CLASS_REQUEST {
            return Verdict::Pass;
        }
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            // The crate answers 401 with a new nonce: rate limited.
            return if self.source_allowed(src.ip()) {
                Verdict::Pass
            } else {
                Verdict::Drop
            };
        }
        let Ok(username) = Username::get_from_as(m, ATTR_USERNAME) else {
            return Verdict::Pass; // the crate answers 400
        };
        let username = username.to_string();
        let realm_ok = Realm::get_from_as(m, ATTR_REALM).is_ok_and(|r| r.to_string() == self.realm);
        let integrity = self
            .auth
            .key(&username, SystemTime::now())
            .ok()
            .filter(|_| realm_ok)
            .map(MessageIntegrity);
        let Some(integrity) = integrity.filter(|mi| mi.check(&mut m.clone()).is_ok()) else {
            self.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            return if self.source_allowed(src.ip()) {
                Verdict::Answer(CODE_UNAUTHORIZED, None)
            } else {
                Verdict::Drop
            };
        };
        if m.typ.method == METHOD_ALLOCATE {
            return match self.quotas.reserve(&username) {
                Ok(reservation) => {
                    *pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(PendingAllocation {
                        reservation,
                        five_tuple: five_tuple(src, local),
                    });
                    Verdict::Pass
                }
                Err(refusal) => {
                    self.stats
                        .allocations_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%src, ?refusal, "TURN allocation refused");
                    let code = match refusal {
                        QuotaRefusal::ServerFull => CODE_INSUFFICIENT_CAPACITY,
                        QuotaRefusal::PerUser => CODE_ALLOC_QUOTA_REACHED,
                    };
                    Verdict::Answer(code, Some(integrity))
                }
            };
        }
        if m.typ.method == METHOD_CREATE_PERMISSION || m.typ.method == METHOD_CHANNEL_BIND {
            let denied = peer_addresses(m)
                .into_iter()
                .find(|peer| !self.policy.allows(peer.ip()));
            if let Some(peer) = denied {
                // Counted and logged once per allocation; a request without
                // an allocation is refused all the same, uncounted.
                if self.denials.first(&five_tuple(src, local), &self.stats) {
                    tracing::info!(
                        client = %src,
                        %peer,
                        "TURN permission refused (403): the peer is on the deny list; see --turn-allow-peer. Further refusals on this allocation are only counted"
                    );
                }
                return Verdict::Answer(CODE_FORBIDDEN, Some(integrity));
            }
        }
        Verdict::Pass
    }

    /// Sends an error response to `m`; a 401 carries a fresh nonce.
    async fn answer(
        &self,
        conn: &Arc<dyn Conn + Send + Sync>,
        m: &Message,
        src: SocketAddr,
        code: ErrorCode,
        integrity: Option<MessageIntegrity>,
    ) {
        let nonce = if code == CODE_UNAUTHORIZED {
            let nonce = new_nonce();
            self.nonces
                .lock()
                .await
                .insert(nonce.clone(), Instant::now());
            Some(nonce)
        } else {
            None
        };
        let raw = {
            let mut attrs: Vec<Box<dyn Setter>> = vec![
                Box::new(m.transaction_id),
                Box::new(MessageType::new(m.typ.method, CLASS_ERROR_RESPONSE)),
                Box::new(ErrorCodeAttribute {
                    code,
                    reason: vec![],
                }),
            ];
            if let Some(nonce) = nonce {
                attrs.push(Box::new(Nonce::new(ATTR_NONCE, nonce)));
                attrs.push(Box::new(Realm::new(ATTR_REALM, self.realm.clone())));
            }
            if let Some(mi) = integrity {
                attrs.push(Box::new(mi));
            }
            let mut msg = Message::new();
            msg.build(&attrs).ok().map(|()| msg.raw)
        };
        if let Some(raw) = raw {
            let _ = conn.send_to(&raw, src).await;
        }
    }

    /// Keeps the nonce table within `max_nonces`: expired nonces go first,
    /// then the oldest, down to three quarters of the limit. A client whose
    /// nonce was evicted gets `438 Stale Nonce` and retries with a new one.
    async fn bound_nonces(&self) {
        let mut nonces = self.nonces.lock().await;
        if nonces.len() > self.max_nonces {
            let now = Instant::now();
            nonces.retain(|_, made| now.saturating_duration_since(*made) < NONCE_LIFETIME);
            let target = self.max_nonces * 3 / 4;
            if nonces.len() > target {
                let mut times: Vec<Instant> = nonces.values().copied().collect();
                let excess = times.len() - target;
                let (_, cutoff, _) = times.select_nth_unstable(excess);
                let cutoff = *cutoff;
                nonces.retain(|_, made| *made > cutoff);
            }
        }
        self.stats.nonces.store(nonces.len(), Ordering::Relaxed);
    }
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Every XOR-PEER-ADDRESS in `m` (the crate reads only the first).
fn peer_addresses(m: &Message) -> Vec<SocketAddr> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| {
            let mut one = Message::new();
            one.transaction_id = m.transaction_id;
            one.add(ATTR_XOR_PEER_ADDRESS, &a.value);
            let mut x = XorMappedAddress::default();
            x.get_from_as(&one, ATTR_XOR_PEER_ADDRESS)
                .ok()
                .map(|()| SocketAddr::new(x.ip, x.port))
        })
        .collect()
}

/// One listener: its connection, the allocations made through it, and for
/// stream listeners the clients that have gone.
pub(crate) struct Listener {
    pub conn: Arc<dyn Conn + Send + Sync>,
    pub manager: Arc<Manager>,
    pub pending: PendingReservation,
    pub gone: Option<mpsc::UnboundedReceiver<SocketAddr>>,
}

/// Receives and handles messages on one listener until `stop`.
pub(crate) async fn read_loop(shared: Arc<Shared>, listener: Listener, stop: CancellationToken) {
    let Listener {
        conn,
        manager,
        pending,
        mut gone,
    } = listener;
    let mut buf = vec![0u8; MTU];
    let local = match conn.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("TURN listener has no address: {e}");
            return;
        }
    };
    let auth: Arc<dyn AuthHandler + Send + Sync> = shared.auth.clone();
    loop {
        let gone_client = async {
            match gone.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let (n, src) = tokio::select! {
            () = stop.cancelled() => break,
            Some(client) = gone_client => {
                // A stream client closed: its allocation goes with it.
                manager.delete_allocation(&five_tuple(client, local)).await;
                continue;
            }
            received = conn.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(e) => {
                    if stop.is_cancelled() {
                        break;
                    }
                    tracing::debug!("TURN listener {local} read error: {e}");
                    continue;
                }
            },
        };
        shared.stats.messages.fetch_add(1, Ordering::Relaxed);
        let data = &buf[..n];
        if !ChannelData::is_channel_data(data) {
            let mut m = Message::new();
            m.raw = data.to_vec();
            if m.decode().is_err() {
                continue;
            }
            match shared.check(&m, src, local, &pending) {
                Verdict::Pass => {}
                Verdict::Drop => continue,
                Verdict::Answer(code, integrity) => {
                    shared.answer(&conn, &m, src, code, integrity).await;
                    shared.bound_nonces().await;
                    continue;
                }
            }
        }
        let mut request = Request {
            conn: conn.clone(),
            src_addr: src,
            buff: data.to_vec(),
            allocation_manager: manager.clone(),
            nonces: shared.nonces.clone(),
            auth_handler: auth.clone(),
            realm: shared.realm.clone(),
            channel_bind_timeout: shared.channel_bind_timeout,
        };
        if let Err(e) = request.handle_request().await {
            tracing::debug!(client = %src, "TURN request not handled: {e}");
        }
        // An Allocate the crate refused before binding a port frees its place.
        pending.lock().unwrap_or_else(|p| p.into_inner()).take();
        shared.bound_nonces().await;
    }
    let _ = manager.close().await;
    let _ = conn.close().await;
}
