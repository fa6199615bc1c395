//! Relayed transport addresses: a [`RelayAddressGenerator`] that binds a
//! UDP port in the configured range for each allocation and wraps it in a
//! [`RelayConn`], which enforces the peer policy, the relayed byte rate and
//! the allocation lifetime cap, and holds the allocation's place in the
//! quotas until it closes. [`Denials`] remembers, per open allocation,
//! whether it has met a denied peer, so that each allocation is counted
//! and logged once however many permissions or packets it tries.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use turn::allocation::five_tuple::FiveTuple;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use super::peers::PeerPolicy;
use crate::limits::TokenBucket;

/// Counters of one TURN server, shared with whoever started it: keep a
/// clone of the `Arc` in [`super::TurnConfig::stats`] to read them.
#[derive(Debug, Default)]
pub struct TurnStats {
    /// Messages received on all listeners.
    pub messages: AtomicU64,
    /// Allocations that were refused a peer on the deny list (a
    /// permission, a channel or a packet), each counted once.
    pub denied_peers: AtomicU64,
    /// Relayed packets dropped because their peer is on the deny list
    /// (each packet counted).
    pub denied_packets: AtomicU64,
    /// Allocations open now.
    pub allocations: AtomicUsize,
    /// Allocations opened since start.
    pub allocations_opened: AtomicU64,
    /// Allocate requests refused by the total or per-credential quota.
    pub allocations_refused: AtomicU64,
    /// Requests answered 401 because their credentials are forged, expired
    /// or malformed.
    pub unauthorized: AtomicU64,
    /// Unauthenticated requests dropped by the per-source rate limit or
    /// because the nonce table is full.
    pub unauthenticated_dropped: AtomicU64,
    /// Nonces the server remembers now (bounded by the nonce limit).
    pub nonces: AtomicUsize,
    /// Relayed packets dropped by the per-allocation byte rate.
    pub rate_limited_packets: AtomicU64,
    /// Payload bytes relayed between clients and their peers, both
    /// directions together (without STUN or ChannelData framing).
    pub relayed_bytes: AtomicU64,
}

/// Why an allocation is refused before any port is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// The server holds its maximum of allocations (508).
    ServerFull,
    /// This credential holds its maximum (486).
    PerUser,
}

/// Allocation counts, in total and per username.
#[derive(Debug)]
pub struct Quotas {
    max_total: usize,
    max_per_user: usize,
    per_user: Mutex<HashMap<String, usize>>,
    stats: Arc<TurnStats>,
}

impl Quotas {
    /// At most `max_total` allocations, `max_per_user` per username.
    pub fn new(max_total: usize, max_per_user: usize, stats: Arc<TurnStats>) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_user,
            per_user: Mutex::new(HashMap::new()),
            stats,
        })
    }

    /// A place for one more allocation of `username`, released on drop.
    pub fn reserve(self: &Arc<Self>, username: &str) -> Result<Reservation, QuotaRefusal> {
        let mut map = self.per_user.lock().unwrap_or_else(|p| p.into_inner());
        if self.stats.allocations.load(Ordering::Acquire) >= self.max_total {
            return Err(QuotaRefusal::ServerFull);
        }
        let n = map.entry(username.to_owned()).or_default();
        if *n >= self.max_per_user {
            return Err(QuotaRefusal::PerUser);
        }
        *n += 1;
        self.stats.allocations.fetch_add(1, Ordering::AcqRel);
        Ok(Reservation {
            quotas: self.clone(),
            username: username.to_owned(),
        })
    }
}

/// One allocation's place in the [`Quotas`].
#[derive(Debug)]
pub struct Reservation {
    quotas: Arc<Quotas>,
    username: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut map = self
            .quotas
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.username) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.username);
            }
        }
        self.quotas.stats.allocations.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The Allocate request being handled: its place in the quotas and the
/// five-tuple (client and listener) that will name the allocation.
#[derive(Debug)]
pub struct PendingAllocation {
    /// The place in the quotas.
    pub reservation: Reservation,
    /// The client's five-tuple, as the TURN crate names the allocation.
    pub five_tuple: FiveTuple,
}

/// The Allocate request being handled. The server loop handles one request
/// at a time per listener, so it puts the allocation's reservation here
/// just before the TURN crate asks the generator for a port.
pub type PendingReservation = Arc<Mutex<Option<PendingAllocation>>>;

/// Whether each open allocation has met a denied peer, by five-tuple. An
/// entry lives as long as its allocation's relay connection, so there are
/// never more than the allocations open (bounded by the quotas).
#[derive(Debug, Default)]
pub struct Denials {
    flags: Mutex<HashMap<FiveTuple, Arc<AtomicBool>>>,
}

impl Denials {
    fn register(&self, five_tuple: FiveTuple) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.lock().insert(five_tuple, flag.clone());
        flag
    }

    /// Removes the entry of an allocation that ended, unless a newer
    /// allocation on the same five-tuple has replaced it.
    fn forget(&self, five_tuple: &FiveTuple, flag: &Arc<AtomicBool>) {
        let mut flags = self.lock();
        if flags.get(five_tuple).is_some_and(|f| Arc::ptr_eq(f, flag)) {
            flags.remove(five_tuple);
        }
    }

    /// Records that the allocation of `five_tuple` met a denied peer.
    /// Returns `true` the first time for that allocation, which is then
    /// counted in [`TurnStats::denied_peers`]; `false` afterwards and when
    /// no such allocation is open.
    pub fn first(&self, five_tuple: &FiveTuple, stats: &TurnStats) -> bool {
        let flag = self.lock().get(five_tuple).cloned();
        flag.is_some_and(|flag| first_denial(&flag, stats))
    }

    /// Allocations with an entry now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no allocation has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FiveTuple, Arc<AtomicBool>>> {
        self.flags.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sets an allocation's denial flag; counts the allocation the first time.
fn first_denial(flag: &AtomicBool, stats: &TurnStats) -> bool {
    let first = !flag.swap(true, Ordering::Relaxed);
    if first {
        stats.denied_peers.fetch_add(1, Ordering::Relaxed);
    }
    first
}

/// What every relay connection of one server shares.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The address relay sockets bind to.
    pub bind_ip: IpAddr,
    /// The address written into relayed transport addresses.
    pub public_ip: IpAddr,
    /// The UDP port range, inclusive.
    pub ports: (u16, u16),
    /// Which peers may be relayed to.
    pub policy: PeerPolicy,
    /// Relayed bytes per second per allocation, both directions together
    /// (0 = no limit); a burst of two seconds' worth is allowed.
    pub bytes_per_second: u64,
    /// The longest an allocation lives, refreshes included.
    pub max_lifetime: Duration,
    /// Counters.
    pub stats: Arc<TurnStats>,
    /// Which open allocations have met a denied peer.
    pub denials: Arc<Denials>,
}

/// Binds relay ports for one listener's allocations.
#[derive(Debug)]
pub struct RelayGenerator {
    settings: RelaySettings,
    pending: PendingReservation,
}

impl RelayGenerator {
    /// A generator taking each allocation's reservation from `pending`.
    pub fn new(settings: RelaySettings, pending: PendingReservation) -> Self {
        Self { settings, pending }
    }

    async fn bind(&self, use_ipv4: bool) -> std::io::Result<UdpSocket> {
        let (low, high) = self.settings.ports;
        let span = u32::from(high - low) + 1;
        let mut start = [0u8; 4];
        let _ = getrandom::fill(&mut start);
        let start = u32::from_le_bytes(start) % span;
        let ip = match (use_ipv4, self.settings.bind_ip) {
            (true, ip) if ip.is_ipv4() => ip,
            (false, ip) if ip.is_ipv6() => ip,
            // A dual-stack listener relays IPv4 from the IPv4 wildcard.
            (true, ip) if ip.is_unspecified() => IpAddr::from([0u8, 0, 0, 0]),
            _ => {
                return Err(std::io::Error::other(
                    "the relay does not serve that address family",
                ));
            }
        };
        let mut last = std::io::Error::other("no relay port free");
        for i in 0..span {
            let port = low + ((start + i) % span) as u16;
            match UdpSocket::bind(SocketAddr::new(ip, port)).await {
                Ok(socket) => return Ok(socket),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[async_trait]
impl RelayAddressGenerator for RelayGenerator {
    fn validate(&self) -> Result<(), turn::Error> {
        let (low, high) = self.settings.ports;
        if low == 0 || high < low {
            return Err(turn::Error::ErrMaxPortLessThanMinPort);
        }
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        _requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let PendingAllocation {
            reservation,
            five_tuple,
        } = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| turn::Error::Other("no reservation for this allocation".into()))?;
        let socket = self
            .bind(use_ipv4)
            .await
            .map_err(|e| turn::Error::Other(format!("cannot bind a relay port: {e}")))?;
        let local = socket
            .local_addr()
            .map_err(|e| turn::Error::Other(e.to_string()))?;
        let relay_addr = SocketAddr::new(self.settings.public_ip, local.port());
        let s = &self.settings;
        s.stats.allocations_opened.fetch_add(1, Ordering::Relaxed);
        let conn = RelayConn {
            socket,
            relay_addr,
            policy: s.policy.clone(),
            bucket: (s.bytes_per_second > 0).then(|| {
                let rate = s.bytes_per_second as f64;
                Mutex::new(TokenBucket::new(
                    rate,
                    u32::try_from(s.bytes_per_second.saturating_mul(2)).unwrap_or(u32::MAX),
                    Instant::now(),
                ))
            }),
            deadline: tokio::time::Instant::now() + s.max_lifetime,
            stats: s.stats.clone(),
            five_tuple,
            denied: s.denials.register(five_tuple),
            denials: s.denials.clone(),
            reservation: Mutex::new(Some(reservation)),
        };
        Ok((Arc::new(conn), relay_addr))
    }
}

/// One allocation's relay socket with the server's rules applied.
#[derive(Debug)]
pub struct RelayConn {
    socket: UdpSocket,
    relay_addr: SocketAddr,
    policy: PeerPolicy,
    bucket: Option<Mutex<TokenBucket>>,
    deadline: tokio::time::Instant,
    stats: Arc<TurnStats>,
    five_tuple: FiveTuple,
    /// Whether this allocation has met a denied peer (shared with
    /// `denials`, where the server loop finds it by five-tuple).
    denied: Arc<AtomicBool>,
    denials: Arc<Denials>,
    reservation: Mutex<Option<Reservation>>,
}

impl RelayConn {
    /// Counts a packet dropped for a denied peer; counts and logs the
    /// allocation the first time it meets one.
    fn deny(&self, peer: SocketAddr, direction: &str) {
        self.stats.denied_packets.fetch_add(1, Ordering::Relaxed);
        if first_denial(&self.denied, &self.stats) {
            tracing::info!(
                client = %self.five_tuple.src_addr,
                relay = %self.relay_addr,
                %peer,
                "TURN relay dropped a packet for a denied peer ({direction}); see --turn-allow-peer. Further refusals on this allocation are only counted"
            );
        }
    }

    fn within_rate(&self, bytes: usize) -> bool {
        let Some(bucket) = &self.bucket else {
            return true;
        };
        let ok = bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_take_n(bytes as f64, Instant::now());
        if !ok {
            self.stats
                .rate_limited_packets
                .fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    fn expired() -> webrtc_util::Error {
        webrtc_util::Error::from(std::io::Error::other(
            "the allocation reached its lifetime cap",
        ))
    }
}

#[async_trait]
impl Conn for RelayConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("a relay is not connected".into()))
    }

    async fn recv(&self, _buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("use recv_from on a relay".into()))
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = tokio::time::timeout_at(self.deadline, self.socket.recv_from(buf))
                .await
                .map_err(|_| Self::expired())??;
            if !self.policy.allows(from.ip()) {
                self.deny(from, "inbound");
                continue;
            }
            if !self.within_rate(n) {
                continue;
            }
            self.stats
                .relayed_bytes
                .fetch_add(n as u64, Ordering::Relaxed);
            return Ok((n, from));
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("use send_to on a relay".into()))
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if tokio::time::Instant::now() >= self.deadline {
            return Err(Self::expired());
        }
        if !self.policy.allows(target.ip()) {
            // Dropped, not an error: the client was told at permission time.
            self.deny(target, "outbound");
            return Ok(buf.len());
        }
        if !self.within_rate(buf.len()) {
            return Ok(buf.len());
        }
        let sent = self.socket.send_to(buf, target).await?;
        self.stats
            .relayed_bytes
            .fetch_add(sent as u64, Ordering::Relaxed);
        Ok(sent)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        // Frees the allocation's place in the quotas at once; the socket
        // closes when the TURN crate drops its last handle.
        self.reservation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.denials.forget(&self.five_tuple, &self.denied);
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

impl Drop for RelayConn {
    fn drop(&mut self) {
        self.denials.forget(&self.five_tuple, &self.denied);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(bytes_per_second: u64, max_lifetime: Duration) -> RelaySettings {
        RelaySettings {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            public_ip: IpAddr::from([192, 0, 2, 1]),
            ports: (46000, 46999),
            policy: PeerPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]),
            bytes_per_second,
            max_lifetime,
            stats: Arc::default(),
            denials: Arc::default(),
        }
    }

    fn five_tuple() -> FiveTuple {
        FiveTuple {
            protocol: turn::proto::PROTO_UDP,
            src_addr: "127.0.0.1:50000".parse().unwrap(),
            dst_addr: "127.0.0.1:3478".parse().unwrap(),
        }
    }

    async fn relay(settings: &RelaySettings, quotas: &Arc<Quotas>) -> Arc<dyn Conn + Send + Sync> {
        let pending = PendingReservation::default();
        *pending.lock().unwrap() = Some(PendingAllocation {
            reservation: quotas.reserve("user").unwrap(),
            five_tuple: five_tuple(),
        });
        let generator = RelayGenerator::new(settings.clone(), pending);
        let (conn, addr) = generator.allocate_conn(true, 0).await.unwrap();
        assert_eq!(
            addr.ip(),
            settings.public_ip,
            "the public address is handed out"
        );
        assert!((46000..=46999).contains(&addr.port()));
        conn
    }

    #[tokio::test]
    async fn relays_are_rate_limited_refuse_denied_peers_and_end_at_the_cap() {
        let s = settings(10_000, Duration::from_millis(300));
        let quotas = Quotas::new(10, 10, s.stats.clone());
        let conn = relay(&s, &quotas).await;
        assert_eq!(s.stats.allocations.load(Ordering::Relaxed), 1);

        // A burst of two seconds' worth passes, the rest is dropped.
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = peer.local_addr().unwrap();
        for _ in 0..30 {
            conn.send_to(&[0u8; 1000], to).await.unwrap();
        }
        let dropped = s.stats.rate_limited_packets.load(Ordering::Relaxed);
        assert!((5..=11).contains(&dropped), "{dropped} of 30 dropped");

        // A denied peer is never sent to: each packet is counted, the
        // allocation once, also when the server loop sees a denial too.
        assert_eq!(s.denials.len(), 1);
        for _ in 0..5 {
            conn.send_to(b"x", "10.0.0.1:9".parse().unwrap())
                .await
                .unwrap();
        }
        assert_eq!(s.stats.denied_packets.load(Ordering::Relaxed), 5);
        assert_eq!(s.stats.denied_peers.load(Ordering::Relaxed), 1);
        assert!(!s.denials.first(&five_tuple(), &s.stats));
        assert_eq!(s.stats.denied_peers.load(Ordering::Relaxed), 1);

        // At the lifetime cap, the relay ends.
        let mut buf = [0u8; 16];
        assert!(conn.recv_from(&mut buf).await.is_err());
        assert!(conn.send_to(b"late", to).await.is_err());

        // Closing frees the quota and forgets the allocation's denials.
        conn.close().await.unwrap();
        assert_eq!(s.stats.allocations.load(Ordering::Relaxed), 0);
        assert!(s.denials.is_empty());

        // A new allocation on the same five-tuple is counted on its own,
        // and the old connection going away leaves the new entry alone.
        let again = relay(&s, &quotas).await;
        drop(conn);
        assert_eq!(s.denials.len(), 1);
        assert!(s.denials.first(&five_tuple(), &s.stats));
        assert_eq!(s.stats.denied_peers.load(Ordering::Relaxed), 2);
        drop(again);
        assert!(s.denials.is_empty());
    }

    #[tokio::test]
    async fn quotas_count_per_user_and_in_total() {
        let stats = Arc::<TurnStats>::default();
        let quotas = Quotas::new(3, 2, stats.clone());
        let a1 = quotas.reserve("a").unwrap();
        let _a2 = quotas.reserve("a").unwrap();
        assert_eq!(quotas.reserve("a").unwrap_err(), QuotaRefusal::PerUser);
        let _b1 = quotas.reserve("b").unwrap();
        assert_eq!(quotas.reserve("c").unwrap_err(), QuotaRefusal::ServerFull);
        drop(a1);
        let _c1 = quotas.reserve("c").unwrap();
        assert_eq!(stats.allocations.load(Ordering::Relaxed), 3);
        // Without a reservation, no port is bound.
        let generator = RelayGenerator::new(
            settings(0, Duration::from_secs(60)),
            PendingReservation::default(),
        );
        assert!(generator.allocate_conn(true, 0).await.is_err());
    }
}
