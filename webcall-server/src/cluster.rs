//! Instances sharing one Redis: this instance's number (the high bits of
//! every connection id it issues, see [`crate::hub::INSTANCE_SHIFT`]), the
//! heartbeat that says it is alive, and the release of the seats held by
//! an instance that stopped heartbeating (crashed, killed, cut off).
//!
//! Keys: `<prefix>instance:<n>` holds the owner's random nonce and lives
//! [`HEARTBEAT_TTL`] unless renewed; `<prefix>instances` is a sorted set
//! of instance numbers by their last heartbeat; `<prefix>reap:<n>` marks
//! the one instance releasing a dead instance's seats.
//!
//! A dead instance's participants lost their signaling connection, not
//! their call: their seats are put on hold exactly as for a dropped socket
//! (the other side sees "reconnecting"), and the reconnecting client takes
//! its seat back on any instance within the grace period; after it, the
//! seat is freed by the shared deadline sweep.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::app::AppState;
use crate::error::Result;
use crate::hub::INSTANCE_SHIFT;
use crate::redis_link::RedisLink;

/// How often an instance renews its heartbeat and looks for dead ones.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);

/// How long an instance that stopped renewing its heartbeat is taken for
/// alive.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(10);

/// How often held seats whose grace is over are looked for.
const DEADLINES_EVERY: Duration = Duration::from_secs(1);

/// This instance's place among the instances sharing a Redis.
#[derive(Debug)]
pub(crate) struct Cluster {
    instance: u64,
    nonce: String,
    prefix: String,
    link: RedisLink,
}

impl Cluster {
    /// Picks a free instance number on the Redis at `url` and announces
    /// it. With Redis away the number is picked at random all the same
    /// (there are 2^24 of them) and claimed by the first heartbeat that
    /// reaches Redis: the server starts, but is not ready until then.
    pub(crate) async fn join(link: RedisLink, prefix: &str) -> Result<Self> {
        let nonce = format!("{:032x}", random()? as u128 | (random()? as u128) << 64);
        let mut cluster = Self {
            instance: 0,
            nonce,
            prefix: prefix.to_owned(),
            link,
        };
        for _ in 0..16 {
            cluster.instance = random()? % ((1 << (64 - INSTANCE_SHIFT)) - 1) + 1;
            match cluster.claim_number().await {
                Ok(true) => break,
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!("cannot reach Redis at start ({e}); starting anyway");
                    break;
                }
            }
        }
        tracing::info!(
            instance = cluster.instance,
            "joined the instances sharing Redis"
        );
        Ok(cluster)
    }

    /// This instance's number.
    pub(crate) fn instance(&self) -> u64 {
        self.instance
    }

    fn key(&self, instance: u64) -> String {
        format!("{}instance:{instance}", self.prefix)
    }

    fn instances(&self) -> String {
        format!("{}instances", self.prefix)
    }

    /// Takes the instance number unless another live instance has it.
    async fn claim_number(&self) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(self.instance))
            .arg(&self.nonce)
            .arg("NX")
            .arg("PX")
            .arg(HEARTBEAT_TTL.as_millis() as u64);
        let taken: Option<String> = self.link.query("taking an instance number", cmd).await?;
        Ok(taken.is_some())
    }

    /// Renews the heartbeat. False when another instance holds this
    /// number (this one was taken for dead meanwhile and its number
    /// reused): then this instance's connections are another's too, and
    /// it says so loudly.
    async fn beat(&self, now_ms: u64) -> Result<bool> {
        let script = redis::Script::new(
            r"local held = redis.call('GET', KEYS[1])
            if held and held ~= ARGV[1] then return 0 end
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
            return 1",
        );
        let mut invocation = script.key(self.key(self.instance));
        invocation
            .key(self.instances())
            .arg(&self.nonce)
            .arg(HEARTBEAT_TTL.as_millis() as u64)
            .arg(now_ms)
            .arg(self.instance);
        let ours: i64 = self
            .link
            .run("renewing the heartbeat", |mut redis| async move {
                invocation.invoke_async(&mut redis).await
            })
            .await?;
        Ok(ours == 1)
    }

    /// Instances last heard of more than [`HEARTBEAT_TTL`] ago whose
    /// heartbeat key is gone.
    async fn dead(&self, now_ms: u64) -> Result<Vec<u64>> {
        let before = now_ms.saturating_sub(HEARTBEAT_TTL.as_millis() as u64);
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.instances())
            .arg("-inf")
            .arg(before)
            .arg("LIMIT")
            .arg(0)
            .arg(100);
        let quiet: Vec<u64> = self.link.query("listing instances", cmd).await?;
        let mut dead = Vec::new();
        for instance in quiet.into_iter().filter(|&n| n != self.instance) {
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(self.key(instance));
            let alive: bool = self.link.query("checking an instance", cmd).await?;
            if !alive {
                dead.push(instance);
            }
        }
        Ok(dead)
    }

    /// Makes this instance the one releasing `instance`'s seats; false
    /// when another already is.
    async fn claim_release(&self, instance: u64) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}reap:{instance}", self.prefix))
            .arg(&self.nonce)
            .arg("NX")
            .arg("PX")
            .arg(60_000);
        let claimed: Option<String> = self.link.query("claiming a dead instance", cmd).await?;
        Ok(claimed.is_some())
    }

    /// Forgets a released instance.
    async fn forget(&self, instance: u64) -> Result<()> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.instances()).arg(instance);
        self.link.query("forgetting an instance", cmd).await
    }

    /// Says goodbye at the end of a graceful shutdown (its connections
    /// are closed and their seats already on hold), so that nobody waits
    /// for its heartbeat to lapse.
    pub(crate) async fn leave(&self) {
        let script = redis::Script::new(
            r"if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
            redis.call('ZREM', KEYS[2], ARGV[2])
            return 1",
        );
        let mut invocation = script.key(self.key(self.instance));
        invocation
            .key(self.instances())
            .arg(&self.nonce)
            .arg(self.instance);
        if let Err(e) = self
            .link
            .run("saying goodbye", |mut redis| async move {
                invocation.invoke_async::<i64>(&mut redis).await
            })
            .await
        {
            tracing::warn!("cannot say goodbye to the other instances: {e}");
        }
    }
}

fn random() -> Result<u64> {
    getrandom::u64().map_err(|e| crate::Error::Store(format!("no system randomness: {e}")))
}

/// Every second, frees held seats whose grace is over (in every room of
/// the shared store, whichever instance held them); every
/// [`HEARTBEAT_EVERY`], renews this instance's heartbeat and releases the
/// seats of dead instances. Ends when the state is dropped or the server
/// starts shutting down.
pub(crate) async fn run(cluster: Arc<Cluster>, state: Weak<AppState>) {
    let mut tick = tokio::time::interval(DEADLINES_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_beat: Option<Instant> = None;
    let mut lost_number_said = false;
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        if state.shutdown.borrow().is_some() {
            return;
        }
        let now = state.clock.now();
        match state.rooms.tick_due(now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rooms = n, "held seats past their grace freed"),
            Err(e) => tracing::warn!("cannot free held seats: {e}"),
        }
        if last_beat.is_some_and(|at| at.elapsed() < HEARTBEAT_EVERY) {
            continue;
        }
        last_beat = Some(Instant::now());
        let now_ms = now.unix_millis();
        match cluster.beat(now_ms).await {
            Ok(true) => lost_number_said = false,
            Ok(false) if !lost_number_said => {
                lost_number_said = true;
                tracing::error!(
                    instance = cluster.instance,
                    "another instance took this instance's number while Redis could not be reached; restart this instance"
                );
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("cannot renew this instance's heartbeat: {e}"),
        }
        let dead = match cluster.dead(now_ms).await {
            Ok(dead) => dead,
            Err(e) => {
                tracing::debug!("cannot look for dead instances: {e}");
                continue;
            }
        };
        for instance in dead {
            match cluster.claim_release(instance).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::debug!("cannot claim instance {instance}'s seats: {e}");
                    continue;
                }
            }
            match state.rooms.release_instance(instance, now).await {
                Ok(rooms) => {
                    tracing::info!(
                        instance,
                        rooms,
                        "an instance stopped; its participants' seats are held for them"
                    );
                    if let Err(e) = cluster.forget(instance).await {
                        tracing::warn!("cannot forget instance {instance}: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot release instance {instance}'s seats: {e}"),
            }
        }
    }
}
