//! One room of a run: created over HTTP, then two participants, each a
//! real WebSocket client, that send stamped messages at the set rate,
//! check what they receive, and now and then leave and come back.
//!
//! The two participants of a room run in this process, so they can agree
//! on what must arrive. Before one leaves it marks itself away (what the
//! other sends from then on is counted as sent while away, which the
//! server may drop) and waits until everything the other sent while it
//! was present has arrived; then it leaves and waits until the server has
//! closed its connection, so that what it sent last has been relayed. A
//! message sent to a present participant that never arrives is therefore
//! a message the server lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until, timeout, timeout_at};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webcall_core::client::Link;
use webcall_core::protocol::{ClientMessage, CreatedRoom, Joined, PROTOCOL_VERSION, ServerMessage};
use webcall_core::token::{ParticipantId, ResumeToken};

use crate::Rate;
use crate::payload::{Relayed, Stamp};
use crate::stats::{Counters, Histogram, lock};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a connection and its `joined` may take.
const JOIN_BOUND: Duration = Duration::from_secs(10);
/// How long a leaver waits for what was sent to it before leaving anyway.
const DRAIN_BOUND: Duration = Duration::from_secs(5);
/// How long a leaver waits for the server to close its connection.
const CLOSE_BOUND: Duration = Duration::from_secs(5);
/// Pause before a participant whose connection broke comes back.
const RECOVER_PAUSE: Duration = Duration::from_millis(200);
/// Pause between failed connection attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// What a page reload or a rejoin takes, at least and at most.
const COMEBACK: (Duration, Duration) = (Duration::from_millis(20), Duration::from_millis(200));
/// The mean time between two leaves of one participant is this divided
/// by the churn fraction.
const CHURN_WINDOW: Duration = Duration::from_secs(10);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Sending and churning.
    Run,
    /// No more sending or leaving: what is on its way arrives.
    Quiet,
    /// Leave for good (`bye`) and end.
    Close,
}

/// What every room of a run shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub counters: Counters,
    pub latency: Mutex<Histogram>,
    /// The clock of stamps.
    pub epoch: std::time::Instant,
    pub http: reqwest::Client,
    /// Server base URLs, without a trailing slash.
    pub bases: Vec<String>,
    pub rate: Rate,
    pub churn: f64,
    pub seed: u64,
    pub phase: watch::Receiver<Phase>,
}

impl Ctx {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// What a room's two participants agree on.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<SharedState>,
    /// By receiver: messages sent to it while present that have arrived.
    received: [AtomicU64; 2],
}

#[derive(Debug, Default)]
struct SharedState {
    /// By participant: joined and not leaving, so what the other sends it
    /// must arrive.
    present: [bool; 2],
    /// By sender: messages sent while the other was present.
    sent_to_present: [u64; 2],
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, SharedState> {
        lock(&self.state)
    }
}

/// Opens room number `index` and runs its two participants until the run
/// ends. Room creation goes to one server; with several, the second
/// participant connects to the next one.
pub(crate) async fn run_room(ctx: Arc<Ctx>, index: u32) {
    let n = ctx.bases.len();
    let base = |slot: usize| &ctx.bases[(index as usize + slot) % n];
    let token = match create_room(&ctx, base(0)).await {
        Ok(token) => token,
        Err(e) => {
            Counters::add(&ctx.counters.rooms_failed);
            ctx.counters.failure(e);
            return;
        }
    };
    let shared = Arc::new(Shared::default());
    let mut participants = Vec::with_capacity(2);
    for slot in 0..2 {
        let url = Link::parse(&format!("{}/r/{token}", base(slot))).map(|l| l.ws_url());
        let opened = match url {
            Ok(url) => Participant::open(ctx.clone(), shared.clone(), index, slot, url).await,
            Err(e) => Err(format!("room link: {e}")),
        };
        match opened {
            Ok(p) => participants.push(p),
            Err(e) => {
                Counters::add(&ctx.counters.rooms_failed);
                ctx.counters.failure(e);
                for p in participants {
                    p.leave().await;
                }
                return;
            }
        }
    }
    Counters::add(&ctx.counters.rooms_up);
    let b = participants.pop().expect("two participants");
    let a = participants.pop().expect("two participants");
    tokio::join!(a.run(), b.run());
}

async fn create_room(ctx: &Ctx, base: &str) -> Result<String, String> {
    let url = format!("{base}/api/rooms");
    let response = ctx
        .http
        .post(&url)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("POST {url} answered {status}: {}", body.trim()));
    }
    let room: CreatedRoom = serde_json::from_str(&body)
        .map_err(|e| format!("POST {url} answered something else ({e}): {body}"))?;
    Ok(room.token.to_string())
}

/// What a participant does next after an event.
enum Next {
    Go,
    /// The connection is gone; come back with the resume secret, after
    /// the server's delay when it asked for a reconnect.
    Lost(Option<Duration>),
    /// The run is over.
    Stop,
}

/// One participant of a room.
struct Participant {
    ctx: Arc<Ctx>,
    shared: Arc<Shared>,
    room: u32,
    slot: usize,
    ws_url: String,
    ws: Ws,
    resume: ResumeToken,
    /// The other participant's id, as the server last said.
    peer: Option<ParticipantId>,
    /// The next sequence number to send.
    seq: u64,
    /// Sequence numbers received from the other participant.
    seen: SeqSet,
    /// The highest of them.
    max_seen: Option<u64>,
    rng: Rng,
}

impl Participant {
    /// Connects and joins; the participant is then present.
    async fn open(
        ctx: Arc<Ctx>,
        shared: Arc<Shared>,
        room: u32,
        slot: usize,
        ws_url: String,
    ) -> Result<Self, String> {
        let (ws, joined) = join(&ctx, &ws_url, None).await?;
        shared.state().present[slot] = true;
        let rng = Rng::new(ctx.seed ^ (u64::from(room) << 1 | slot as u64));
        Ok(Self {
            ctx,
            shared,
            room,
            slot,
            ws_url,
            ws,
            resume: joined.resume,
            peer: joined.peer,
            seq: 0,
            seen: SeqSet::default(),
            max_seen: None,
            rng,
        })
    }

    fn other(&self) -> usize {
        1 - self.slot
    }

    async fn run(mut self) {
        let ctx = self.ctx.clone();
        let period = ctx.rate.period();
        let mut tick =
            tokio::time::interval_at(Instant::now() + period.mul_f64(self.rng.unit()), period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let churn_mean = (ctx.churn > 0.0).then(|| CHURN_WINDOW.div_f64(ctx.churn));
        let mut next_churn = churn_mean.map(|mean| Instant::now() + self.rng.exponential(mean));
        let mut phase = ctx.phase.clone();
        loop {
            let now = *phase.borrow_and_update();
            if now == Phase::Close {
                break;
            }
            let running = now == Phase::Run;
            let churn_at = next_churn.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let next = tokio::select! {
                frame = self.ws.next() => self.on_frame(frame),
                _ = tick.tick(), if running => self.send_one().await,
                _ = sleep_until(churn_at), if running && next_churn.is_some() => {
                    next_churn = churn_mean.map(|mean| Instant::now() + self.rng.exponential(mean));
                    self.churn().await
                }
                changed = phase.changed() => match changed {
                    Ok(()) => Next::Go,
                    Err(_) => Next::Stop,
                },
            };
            match next {
                Next::Go => {}
                Next::Lost(after) => {
                    if !self.recover(after).await {
                        return;
                    }
                }
                Next::Stop => break,
            }
        }
        self.leave().await;
    }

    /// Leaves for good: `bye`, then the server closes the connection.
    async fn leave(mut self) {
        self.shared.state().present[self.slot] = false;
        let bye = Message::text(ClientMessage::Bye.encode());
        if self.ws.send(bye).await.is_ok() {
            let _ = timeout(CLOSE_BOUND, async {
                while let Some(Ok(_)) = self.ws.next().await {}
            })
            .await;
        }
    }

    fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Next {
        match frame {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()),
            Some(Ok(Message::Close(_)) | Err(_)) | None => Next::Lost(None),
            Some(Ok(_)) => Next::Go,
        }
    }

    fn on_text(&mut self, text: &str) -> Next {
        let counters = &self.ctx.counters;
        let message = match ServerMessage::decode(text) {
            Ok(message) => message,
            Err(_) => {
                counters.error("undecodable");
                return Next::Go;
            }
        };
        if let Some(relayed) = Relayed::of(&message) {
            self.receive(relayed);
            return Next::Go;
        }
        match message {
            ServerMessage::PeerJoined { peer, .. } => self.peer = Some(peer),
            ServerMessage::PeerLeft { .. } => self.peer = None,
            ServerMessage::Error(e) => {
                counters.error(e.code.as_str());
                if e.fatal {
                    return Next::Lost(None);
                }
            }
            ServerMessage::Reconnect { after_ms } => {
                Counters::add(&counters.server_reconnects);
                return Next::Lost(Some(Duration::from_millis(after_ms)));
            }
            ServerMessage::Joined(_) => counters.error("joined_twice"),
            _ => {}
        }
        Next::Go
    }

    /// Checks one relayed message: right room, right sender, first copy,
    /// in order.
    fn receive(&mut self, relayed: Relayed<'_>) {
        let now = self.ctx.now_us();
        let counters = &self.ctx.counters;
        let Some(stamp) = relayed.stamp else {
            Counters::add(&counters.misrouted);
            return;
        };
        if stamp.room != self.room
            || usize::from(stamp.slot) != self.other()
            || self.peer.as_ref() != Some(relayed.from)
        {
            Counters::add(&counters.misrouted);
            return;
        }
        lock(&self.ctx.latency).record(now.saturating_sub(stamp.sent_us));
        if !self.seen.insert(stamp.seq) {
            Counters::add(&counters.duplicated);
            return;
        }
        if self.max_seen.is_some_and(|max| max > stamp.seq) {
            Counters::add(&counters.out_of_order);
        }
        self.max_seen = self.max_seen.max(Some(stamp.seq));
        if stamp.to_present {
            Counters::add(&counters.delivered);
            self.shared.received[self.slot].fetch_add(1, Ordering::Relaxed);
        } else {
            Counters::add(&counters.delivered_to_away);
        }
    }

    async fn send_one(&mut self) -> Next {
        let to_present = {
            let mut state = self.shared.state();
            let present = state.present[self.other()];
            if present {
                state.sent_to_present[self.slot] += 1;
            }
            present
        };
        let counters = &self.ctx.counters;
        Counters::add(if to_present {
            &counters.sent_to_present
        } else {
            &counters.sent_to_away
        });
        let stamp = Stamp {
            room: self.room,
            slot: self.slot as u8,
            seq: self.seq,
            sent_us: self.ctx.now_us(),
            to_present,
        };
        self.seq += 1;
        match self.ws.send(Message::text(stamp.message().encode())).await {
            Ok(()) => Next::Go,
            Err(_) => Next::Lost(None),
        }
    }

    /// Leaves and comes back: half the time with `bye` and a fresh join,
    /// half the time as a page reload (`leaving`, close, resume).
    async fn churn(&mut self) -> Next {
        let reload = self.rng.unit() < 0.5;
        // From now on the other participant's messages may be dropped;
        // wait for those it sent before.
        let owed = {
            let mut state = self.shared.state();
            state.present[self.slot] = false;
            state.sent_to_present[self.other()]
        };
        let deadline = Instant::now() + DRAIN_BOUND;
        while self.shared.received[self.slot].load(Ordering::Relaxed) < owed {
            tokio::select! {
                frame = self.ws.next() => {
                    if let Next::Lost(after) = self.on_frame(frame) {
                        return Next::Lost(after);
                    }
                }
                _ = sleep_until(deadline) => {
                    let counters = &self.ctx.counters;
                    Counters::add(&counters.drain_timeouts);
                    let received = self.shared.received[self.slot].load(Ordering::Relaxed);
                    counters.owed_at_leave.fetch_add(owed.saturating_sub(received), Ordering::Relaxed);
                    break;
                }
            }
        }
        let last = if reload {
            ClientMessage::Leaving
        } else {
            ClientMessage::Bye
        };
        if self.ws.send(Message::text(last.encode())).await.is_err() {
            return Next::Lost(None);
        }
        if reload {
            // The page goes away: its socket closes.
            let _ = self.ws.close(None).await;
        }
        // The server closes the connection once it has relayed all that
        // came before and freed or held the seat.
        let closed = timeout(CLOSE_BOUND, async {
            while let Some(Ok(frame)) = self.ws.next().await {
                if let Message::Text(text) = frame {
                    self.on_text(text.as_str());
                }
            }
        })
        .await;
        if closed.is_err() {
            Counters::add(&self.ctx.counters.close_timeouts);
        }
        let pause = self.rng.between(COMEBACK.0, COMEBACK.1);
        sleep(pause).await;
        Counters::add(if reload {
            &self.ctx.counters.reload_resume
        } else {
            &self.ctx.counters.leave_rejoin
        });
        let resume = reload.then(|| self.resume.clone());
        if self.rejoin(resume).await {
            Next::Go
        } else {
            Next::Stop
        }
    }

    /// After a connection broke: away, then back with the resume secret.
    /// False when the run ended first.
    async fn recover(&mut self, after: Option<Duration>) -> bool {
        if after.is_none() {
            Counters::add(&self.ctx.counters.unexpected_closes);
        }
        self.shared.state().present[self.slot] = false;
        sleep(after.unwrap_or(RECOVER_PAUSE)).await;
        self.rejoin(Some(self.resume.clone())).await
    }

    /// Joins again until it works; present again then. False when the run
    /// ended first.
    async fn rejoin(&mut self, resume: Option<ResumeToken>) -> bool {
        loop {
            match join(&self.ctx, &self.ws_url, resume.clone()).await {
                Ok((ws, joined)) => {
                    if resume.is_some() && !joined.resumed {
                        Counters::add(&self.ctx.counters.resume_missed);
                    }
                    self.ws = ws;
                    self.resume = joined.resume;
                    self.peer = joined.peer;
                    self.shared.state().present[self.slot] = true;
                    return true;
                }
                Err(e) => {
                    Counters::add(&self.ctx.counters.connect_failures);
                    self.ctx.counters.failure(e);
                    if *self.ctx.phase.borrow() == Phase::Close {
                        return false;
                    }
                    sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}

/// Connects to `ws_url` and joins (resuming with `resume`); the socket and
/// the server's `joined`.
async fn join(
    ctx: &Ctx,
    ws_url: &str,
    resume: Option<ResumeToken>,
) -> Result<(Ws, Joined), String> {
    let deadline = Instant::now() + JOIN_BOUND;
    // Signaling frames are small: small buffers, as the server uses.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) = timeout_at(
        deadline,
        tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true),
    )
    .await
    .map_err(|_| format!("{ws_url}: no connection within {JOIN_BOUND:?}"))?
    .map_err(|e| format!("{ws_url}: {e}"))?;
    let join = ClientMessage::Join {
        version: PROTOCOL_VERSION,
        resume,
    };
    ws.send(Message::text(join.encode()))
        .await
        .map_err(|e| format!("{ws_url}: sending join: {e}"))?;
    loop {
        let frame = timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("{ws_url}: no joined within {JOIN_BOUND:?}"))?;
        match frame {
            Some(Ok(Message::Text(text))) => match ServerMessage::decode(text.as_str()) {
                Ok(ServerMessage::Joined(joined)) => return Ok((ws, joined)),
                Ok(ServerMessage::Error(e)) => {
                    ctx.counters.error(e.code.as_str());
                    return Err(format!("{ws_url}: join answered {}: {}", e.code, e.message));
                }
                Ok(other) => return Err(format!("{ws_url}: {other:?} before joined")),
                Err(e) => return Err(format!("{ws_url}: {e}")),
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("{ws_url}: {e}")),
            None => return Err(format!("{ws_url}: closed before joined")),
        }
    }
}

/// A set of sequence numbers, one bit each.
#[derive(Debug, Default)]
struct SeqSet(Vec<u64>);

impl SeqSet {
    /// Adds `seq`; false when it was there already.
    fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let had = self.0[word] & (1 << bit) != 0;
        self.0[word] |= 1 << bit;
        !had
    }
}

/// A small deterministic generator (SplitMix64) for send phases and churn.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut rng = Self(seed);
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        low + (high - low).mul_f64(self.unit())
    }

    /// Exponentially distributed with this mean: the gaps of events that
    /// come at a steady rate but independently.
    fn exponential(&mut self, mean: Duration) -> Duration {
        mean.mul_f64(-(1.0 - self.unit()).ln())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_sets_see_repeats() {
        let mut set = SeqSet::default();
        assert!(set.insert(0));
        assert!(set.insert(1000));
        assert!(!set.insert(1000));
        assert!(set.insert(999));
        assert!(!set.insert(0));
    }

    #[test]
    fn random_draws_stay_in_range() {
        let mut rng = Rng::new(7);
        let mean = Duration::from_secs(10);
        let mut total = Duration::ZERO;
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            total += rng.exponential(mean);
        }
        let average = total / 10_000;
        assert!(average > Duration::from_secs(9) && average < Duration::from_secs(11));
    }
}
