//! [`RedisStore`]: rooms kept in Redis, shared by every server instance
//! that names the same Redis and key prefix, so that a room's two
//! participants may be connected to different instances and a room
//! survives the restart of any of them.
//!
//! Each input loads the room, applies webcall-core's state machine, and
//! saves the room only if it changed (relaying an offer or a candidate,
//! the common case, writes nothing). An input runs under the room's lease
//! (`{p}lock:{token}`, see [`Lease`]), and every write checks in the same
//! Lua script that the lease is still this store's: two instances never
//! apply inputs to one room at once, so a room never seats three people.
//!
//! Keys (`{p}` is the prefix, such as `webcall:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}room:{token}` | string | the room as JSON; expires an hour after the room lapses, so that a sweep still finds its participants |
//! | `{p}rooms` | sorted set | every room, scored by when it lapses (its `join_by` while unused, then its expiry) |
//! | `{p}client:{key}`, `{p}network:{key}` | sorted sets | the rooms a client or network created, scored by when they lapse, for the creation limits |
//! | `{p}deadlines` | sorted set | rooms with a held seat, scored by when the first is due to be freed |
//! | `{p}inst:{n}:rooms` | set | rooms where instance `n`'s connections took a seat, to release them if it dies |
//! | `{p}lock:{token}` | string | the room's lease: a random value, for 5 s at most |
//!
//! Every command is bounded in time: while Redis is unreachable, each
//! method fails with [`Error::Store`] within about 1.5 s, and the
//! connection is re-established in the background (with backoff) on the
//! next use.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use ::redis::{Cmd, Script};
use async_trait::async_trait;
use webcall_core::protocol::{ClientMessage, CreatedRoom, RoomInfo};
use webcall_core::room::{ConnectionId, Creator, Output, Room, RoomConfig};
use webcall_core::time::Timestamp;
use webcall_core::token::RoomToken;

use super::{Held, Join, Lease, RoomStore, not_found};
use crate::error::{Error, Result};
use crate::hub::instance_of;
use crate::redis_link::RedisLink;

/// How long a lease lasts if its holder never gives it back (it died):
/// far above one input plus its delivery (milliseconds), short enough that
/// a room is not stuck for long.
const LEASE_TTL: Duration = Duration::from_secs(5);
/// How long to wait for a room's lease held by another input.
const LEASE_WAIT: Duration = Duration::from_secs(3);
/// The first and the longest pause between two attempts at a lease.
const LEASE_FIRST_PAUSE: Duration = Duration::from_millis(1);
const LEASE_MAX_PAUSE: Duration = Duration::from_millis(20);

/// How long a room's JSON stays after the room lapsed: the sweep (every
/// 30 s) must still find its participants to tell them.
const KEEP_AFTER_LAPSE: Duration = Duration::from_secs(3600);
/// How many lapsed rooms one sweep takes on.
const SWEEP_BATCH: usize = 500;

/// Creates a room within the creation limits. Keys: the rooms index, the
/// client's and the network's sets, the room. Arguments: now, the limit
/// per client and per network (0: none), the total limit, the token, the
/// room's JSON, its key's lifetime (ms), when it lapses, how long the
/// creator sets live (ms). Returns 0 (created), 1 (client or network
/// over its limit), 2 (the store is full, lapsed rooms included).
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local function full(key, limit)
  if limit == 0 then return false end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key) >= limit
end
if full(KEYS[2], tonumber(ARGV[2])) or full(KEYS[3], tonumber(ARGV[3])) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 2 end
redis.call('SET', KEYS[4], ARGV[6], 'PX', ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[8], ARGV[5])
for i = 2, 3 do
  if tonumber(ARGV[i]) > 0 then
    redis.call('ZADD', KEYS[i], ARGV[8], ARGV[5])
    redis.call('PEXPIRE', KEYS[i], ARGV[9])
  end
end
return 0
",
    )
});

/// Saves a room if the lease is still ours. Keys: the lease, the room,
/// the rooms index, the deadlines, the creator's client and network sets,
/// then the room sets of the instances whose connections hold a live seat.
/// Arguments: the lease's value, the JSON, the key's lifetime (ms), the
/// token, when the room lapses, its next deadline ('' for none), how long
/// an instance's room set lives (ms). Returns 1, or 0 when the lease is no
/// longer ours.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4])
if ARGV[6] == '' then
  redis.call('ZREM', KEYS[4], ARGV[4])
else
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4])
end
redis.call('ZADD', KEYS[5], 'XX', ARGV[5], ARGV[4])
redis.call('ZADD', KEYS[6], 'XX', ARGV[5], ARGV[4])
for i = 7, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[4])
  redis.call('PEXPIRE', KEYS[i], ARGV[7])
end
return 1
",
    )
});

/// Deletes a room and its index entries if the lease is still ours. Keys
/// as for [`SAVE`]; arguments: the lease's value, the token. Returns as
/// [`SAVE`] does.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
for i = 3, 6 do redis.call('ZREM', KEYS[i], ARGV[2]) end
return 1
",
    )
});

/// Gives a lease back if it is still ours. Key: the lease; argument: its
/// value.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// Rooms in Redis, shared between server instances (see the module
/// documentation for the keys). Cloning gives another handle on the same
/// connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisLink,
    keys: Keys,
    config: RoomConfig,
    /// The leases this store holds now (taken by [`RoomStore::lease`]),
    /// by room, with their values: an input to a room under lease saves
    /// with that lease instead of taking one of its own.
    leases: Mutex<HashMap<RoomToken, String>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.keys.prefix)
            .finish_non_exhaustive()
    }
}

/// Key names under one prefix.
struct Keys {
    prefix: String,
}

impl Keys {
    fn room(&self, token: &RoomToken) -> String {
        format!("{}room:{token}", self.prefix)
    }
    fn lock(&self, token: &RoomToken) -> String {
        format!("{}lock:{token}", self.prefix)
    }
    fn rooms(&self) -> String {
        format!("{}rooms", self.prefix)
    }
    fn deadlines(&self) -> String {
        format!("{}deadlines", self.prefix)
    }
    fn client(&self, key: &str) -> String {
        format!("{}client:{key}", self.prefix)
    }
    fn network(&self, key: &str) -> String {
        format!("{}network:{key}", self.prefix)
    }
    fn instance(&self, instance: u64) -> String {
        format!("{}inst:{instance}:rooms", self.prefix)
    }
}

/// The lease one input runs under: the caller's (taken through
/// [`RoomStore::lease`]) or, for a direct call, one of its own.
struct InputLease {
    value: String,
    own: Option<Lease>,
}

impl InputLease {
    async fn done(self) {
        if let Some(lease) = self.own {
            lease.release().await;
        }
    }
}

/// The answer of [`SAVE`] or [`DELETE`]: 0 when the lease lapsed (its
/// holder stalled for over [`LEASE_TTL`]) and another may hold the room.
fn leased(answer: i64, what: &str) -> Result<()> {
    if answer == 1 {
        return Ok(());
    }
    Err(Error::Store(format!(
        "{what}: lost the room's lease (held over {LEASE_TTL:?}); the input was not applied"
    )))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// When a room lapses: its `join_by` while unused, then its expiry.
fn lapses(room: &Room) -> Timestamp {
    room.join_by().unwrap_or(room.expires_at())
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[:password@]host:port/db`),
    /// every key starting with `prefix`. It does
    /// not wait for Redis: a server starts while Redis is away, and each
    /// method fails with [`Error::Store`] until it is back (see
    /// [`RoomStore::ping`]). Only a malformed URL is an error here.
    pub async fn connect(url: &str, prefix: &str, config: RoomConfig) -> Result<Self> {
        let redis = RedisLink::open(url)?;
        Ok(Self {
            inner: Arc::new(Inner {
                redis,
                keys: Keys {
                    prefix: prefix.to_owned(),
                },
                config,
                leases: Mutex::default(),
            }),
        })
    }
}

impl Inner {
    fn leases(&self) -> std::sync::MutexGuard<'_, HashMap<RoomToken, String>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One command.
    async fn query<T: ::redis::FromRedisValue>(&self, what: &str, cmd: Cmd) -> Result<T> {
        self.redis.query(what, cmd).await
    }

    /// Takes the room's lease, waiting (with a short backoff) while
    /// another holds it, for [`LEASE_WAIT`] at most; returns its value.
    async fn acquire(&self, token: &RoomToken) -> Result<String> {
        let value = format!(
            "{:016x}{:016x}",
            getrandom::u64().map_err(|e| Error::Store(format!("no system randomness: {e}")))?,
            getrandom::u64().map_err(|e| Error::Store(format!("no system randomness: {e}")))?,
        );
        let started = Instant::now();
        let mut pause = LEASE_FIRST_PAUSE;
        loop {
            let mut cmd = ::redis::cmd("SET");
            cmd.arg(self.keys.lock(token))
                .arg(&value)
                .arg("NX")
                .arg("PX")
                .arg(millis(LEASE_TTL));
            let taken: Option<String> = self.query("taking a room's lease", cmd).await?;
            if taken.is_some() {
                return Ok(value);
            }
            if started.elapsed() >= LEASE_WAIT {
                return Err(Error::Store(format!(
                    "the room stayed busy for {LEASE_WAIT:?} (another input holds its lease)"
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LEASE_MAX_PAUSE);
        }
    }

    /// Gives a lease back (if it lapsed and another took it, that one is
    /// left alone).
    async fn release(&self, token: &RoomToken, value: &str) {
        {
            let mut leases = self.leases();
            if leases.get(token).is_some_and(|v| v == value) {
                leases.remove(token);
            }
        }
        let mut invocation = RELEASE.key(self.keys.lock(token));
        invocation.arg(value);
        let result = self
            .redis
            .run("giving a room's lease back", |mut redis| async move {
                invocation.invoke_async::<i64>(&mut redis).await
            })
            .await;
        if let Err(e) = result {
            // It lapses by itself within LEASE_TTL.
            tracing::debug!("{e}");
        }
    }

    /// Takes the room's lease: its value, and the [`Lease`] that gives it
    /// back when released or dropped.
    async fn lease(self: &Arc<Self>, token: &RoomToken) -> Result<(String, Lease)> {
        let value = self.acquire(token).await?;
        let (inner, token, v) = (self.clone(), token.clone(), value.clone());
        Ok((
            value,
            Lease::releasing_with(async move { inner.release(&token, &v).await }),
        ))
    }

    /// The lease an input to `token` runs under: the one the caller holds
    /// through [`RoomStore::lease`], or a new one for this input alone.
    async fn hold(self: &Arc<Self>, token: &RoomToken) -> Result<InputLease> {
        if let Some(value) = self.leases().get(token).cloned() {
            return Ok(InputLease { value, own: None });
        }
        let (value, lease) = self.lease(token).await?;
        Ok(InputLease {
            value,
            own: Some(lease),
        })
    }

    /// The room, `None` when unknown (or unreadable: logged).
    async fn load(&self, token: &RoomToken) -> Result<Option<Room>> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(self.keys.room(token));
        let json: Option<String> = self.query("loading a room", cmd).await?;
        Ok(json.and_then(|json| match serde_json::from_str(&json) {
            Ok(room) => Some(room),
            Err(e) => {
                tracing::error!(
                    ?token,
                    "a room in Redis cannot be read, treated as gone: {e}"
                );
                None
            }
        }))
    }

    /// The keys [`SAVE`] and [`DELETE`] take, in their order.
    fn room_keys(&self, token: &RoomToken, creator: &Creator) -> [String; 6] {
        [
            self.keys.lock(token),
            self.keys.room(token),
            self.keys.rooms(),
            self.keys.deadlines(),
            self.keys.client(&creator.client),
            self.keys.network(&creator.network),
        ]
    }

    /// Saves `room` under the lease `value`.
    async fn save(&self, value: &str, room: &Room, now: Timestamp) -> Result<()> {
        let json = serde_json::to_string(room)
            .map_err(|e| Error::Store(format!("cannot write a room as JSON: {e}")))?;
        let lapse = lapses(room);
        let keep = lapse
            .saturating_add(KEEP_AFTER_LAPSE)
            .saturating_duration_since(now)
            .max(KEEP_AFTER_LAPSE);
        let mut invocation = SAVE.prepare_invoke();
        for key in self.room_keys(room.token(), room.creator()) {
            invocation.key(key);
        }
        // Where its live connections are, for another instance to release
        // their seats should theirs die.
        let mut instances: Vec<u64> = room.live_connections().map(instance_of).collect();
        instances.sort_unstable();
        instances.dedup();
        for instance in instances {
            invocation.key(self.keys.instance(instance));
        }
        invocation
            .arg(value)
            .arg(json)
            .arg(millis(keep))
            .arg(room.token().as_str())
            .arg(lapse.unix_millis())
            .arg(
                room.next_deadline()
                    .map_or_else(String::new, |t| t.unix_millis().to_string()),
            )
            .arg(millis(self.config.ttl.saturating_add(KEEP_AFTER_LAPSE)));
        let saved = self
            .redis
            .run("saving a room", |mut redis| async move {
                invocation.invoke_async::<i64>(&mut redis).await
            })
            .await?;
        leased(saved, "saving a room")
    }

    /// Deletes `room` and its index entries under the lease `value`.
    async fn delete(&self, value: &str, room: &Room) -> Result<()> {
        let mut invocation = DELETE.prepare_invoke();
        for key in self.room_keys(room.token(), room.creator()) {
            invocation.key(key);
        }
        invocation.arg(value).arg(room.token().as_str());
        let deleted = self
            .redis
            .run("deleting a room", |mut redis| async move {
                invocation.invoke_async::<i64>(&mut redis).await
            })
            .await?;
        leased(deleted, "deleting a room")
    }

    /// Drops `token` from the indexes of rooms with a lifetime and a
    /// deadline, when its room is gone (its key expired).
    async fn forget_room(&self, token: &RoomToken) -> Result<()> {
        let mut pipe = ::redis::pipe();
        pipe.zrem(self.keys.rooms(), token.as_str())
            .ignore()
            .zrem(self.keys.deadlines(), token.as_str())
            .ignore();
        self.redis
            .run("forgetting a gone room", |mut redis| async move {
                pipe.query_async::<()>(&mut redis).await
            })
            .await
    }

    /// Applies `input` to the room under its lease, and saves the room if
    /// it changed. `input` gets `None` for an unknown room.
    async fn apply<T>(
        self: &Arc<Self>,
        token: &RoomToken,
        now: Timestamp,
        input: impl FnOnce(Option<&mut Room>) -> T,
    ) -> Result<T> {
        let held = self.hold(token).await?;
        let Some(mut room) = self.load(token).await? else {
            let out = input(None);
            held.done().await;
            return Ok(out);
        };
        let before = room.clone();
        let out = input(Some(&mut room));
        if room != before {
            self.save(&held.value, &room, now).await?;
        }
        held.done().await;
        Ok(out)
    }

    /// Ids of up to `limit` members of the sorted set `key` scored at most
    /// `now`, as room tokens.
    async fn lapsed(&self, key: String, now: Timestamp, limit: usize) -> Result<Vec<RoomToken>> {
        let mut cmd = ::redis::cmd("ZRANGEBYSCORE");
        cmd.arg(key)
            .arg("-inf")
            .arg(now.unix_millis())
            .arg("LIMIT")
            .arg(0)
            .arg(limit);
        let members: Vec<String> = self.query("listing rooms by time", cmd).await?;
        Ok(members.iter().filter_map(|m| m.parse().ok()).collect())
    }

    /// Removes the room if it lapsed, returning what to tell its
    /// participants.
    async fn sweep_one(self: &Arc<Self>, token: &RoomToken, now: Timestamp) -> Result<Vec<Output>> {
        // A lease of its own even while an input of this process holds
        // one: that input may be about to save the room.
        let (value, lease) = self.lease(token).await?;
        let outputs = match self.load(token).await? {
            None => {
                self.forget_room(token).await?;
                Vec::new()
            }
            Some(mut room) if room.is_expired(now) => {
                let outputs = room.expire();
                self.delete(&value, &room).await?;
                outputs
            }
            Some(room) => {
                // Its lapse time in the index was stale: put it right.
                self.save(&value, &room, now).await?;
                Vec::new()
            }
        };
        lease.release().await;
        Ok(outputs)
    }

    async fn sweep(self: &Arc<Self>, now: Timestamp) -> Result<Vec<Output>> {
        let mut outputs = Vec::new();
        for token in self.lapsed(self.keys.rooms(), now, SWEEP_BATCH).await? {
            match self.sweep_one(&token, now).await {
                Ok(out) => outputs.extend(out),
                // Another instance may be sweeping it: the next sweep
                // tries again.
                Err(e) => tracing::debug!(?token, "cannot sweep a room now: {e}"),
            }
        }
        Ok(outputs)
    }

    async fn create(&self, now: Timestamp, creator: &Creator, room: &Room) -> Result<i64> {
        let config = &self.config;
        let limit = |limit: usize, key: &str| if key.is_empty() { 0 } else { limit };
        let lapse = lapses(room);
        let keep = lapse
            .saturating_add(KEEP_AFTER_LAPSE)
            .saturating_duration_since(now);
        let json = serde_json::to_string(room)
            .map_err(|e| Error::Store(format!("cannot write a room as JSON: {e}")))?;
        let mut invocation = CREATE.prepare_invoke();
        invocation
            .key(self.keys.rooms())
            .key(self.keys.client(&creator.client))
            .key(self.keys.network(&creator.network))
            .key(self.keys.room(room.token()))
            .arg(now.unix_millis())
            .arg(limit(config.rooms_per_client, &creator.client))
            .arg(limit(config.rooms_per_network, &creator.network))
            .arg(config.max_rooms)
            .arg(room.token().as_str())
            .arg(json)
            .arg(millis(keep))
            .arg(lapse.unix_millis())
            .arg(millis(config.ttl.saturating_add(KEEP_AFTER_LAPSE)));
        self.redis
            .run("creating a room", |mut redis| async move {
                invocation.invoke_async::<i64>(&mut redis).await
            })
            .await
    }
}

#[async_trait]
impl RoomStore for RedisStore {
    async fn create(&self, now: Timestamp, creator: Creator) -> Result<CreatedRoom> {
        let inner = &self.inner;
        let room = Room::created_by(RoomToken::generate()?, now, &inner.config, creator.clone());
        let mut answer = inner.create(now, &creator, &room).await?;
        if answer == 2 {
            // Lapsed rooms still count until swept, as in memory: sweep,
            // then look again. Their participants are not told here (the
            // store delivers nothing); their next message finds the room
            // gone.
            inner.sweep(now).await?;
            answer = inner.create(now, &creator, &room).await?;
        }
        match answer {
            0 => Ok(CreatedRoom {
                token: room.token().clone(),
                url: String::new(),
                expires_at: room.expires_at(),
                join_by: room.join_by(),
            }),
            1 => Err(webcall_core::Error::TooManyRoomsFromClient.into()),
            _ => Err(webcall_core::Error::TooManyRooms {
                limit: inner.config.max_rooms,
            }
            .into()),
        }
    }

    async fn info(&self, token: &RoomToken, now: Timestamp) -> Result<Option<RoomInfo>> {
        Ok(self
            .inner
            .load(token)
            .await?
            .filter(|room| !room.is_expired(now))
            .map(|room| room.info()))
    }

    async fn join(&self, token: &RoomToken, now: Timestamp, join: Join) -> Result<Vec<Output>> {
        let conn = join.conn;
        self.inner
            .apply(token, now, |room| match room {
                Some(room) => room.join(now, conn, join.version, join.resume.as_ref(), join.ice),
                None => not_found(conn),
            })
            .await
    }

    async fn holds_seat(&self, token: &RoomToken, conn: ConnectionId) -> Result<bool> {
        Ok(self
            .inner
            .load(token)
            .await?
            .is_some_and(|room| room.participant_on(conn).is_some()))
    }

    async fn handle(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
        message: ClientMessage,
    ) -> Result<Vec<Output>> {
        // An expired room still answers (with `room_expired`) until swept.
        self.inner
            .apply(token, now, |room| match room {
                Some(room) => room.handle(now, conn, message),
                None => not_found(conn),
            })
            .await
    }

    async fn disconnect(
        &self,
        token: &RoomToken,
        now: Timestamp,
        conn: ConnectionId,
    ) -> Result<Held> {
        self.inner
            .apply(token, now, |room| {
                let Some(room) = room else {
                    return Held::default();
                };
                let seated = room.participant_on(conn).is_some();
                let outputs = room.disconnect(now, conn);
                Held {
                    outputs,
                    next_tick: room.next_deadline().filter(|_| seated),
                }
            })
            .await
    }

    async fn tick(&self, token: &RoomToken, now: Timestamp) -> Result<Held> {
        let held = self
            .inner
            .apply(token, now, |room| {
                room.map(|room| Held {
                    outputs: room.tick(now),
                    next_tick: room.next_deadline(),
                })
            })
            .await?;
        match held {
            Some(held) => Ok(held),
            None => {
                // Its key expired: nothing is due there any more.
                self.inner.forget_room(token).await?;
                Ok(Held::default())
            }
        }
    }

    async fn sweep(&self, now: Timestamp) -> Result<Vec<Output>> {
        self.inner.sweep(now).await
    }

    async fn len(&self) -> Result<usize> {
        let mut cmd = ::redis::cmd("ZCARD");
        cmd.arg(self.inner.keys.rooms());
        self.inner.query("counting rooms", cmd).await
    }

    fn outlives_process(&self) -> bool {
        true
    }

    /// Not counted: `None` (a total kept beside the rooms would drift
    /// whenever a room's key expires by itself).
    async fn participants(&self) -> Result<Option<usize>> {
        Ok(None)
    }

    async fn lease(&self, token: &RoomToken) -> Result<Lease> {
        let (value, lease) = self.inner.lease(token).await?;
        self.inner.leases().insert(token.clone(), value);
        Ok(lease)
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<RoomToken>> {
        self.inner
            .lapsed(self.inner.keys.deadlines(), now, limit)
            .await
    }

    async fn instance_rooms(&self, instance: u64) -> Result<Vec<RoomToken>> {
        let mut cmd = ::redis::cmd("SMEMBERS");
        cmd.arg(self.inner.keys.instance(instance));
        let members: Vec<String> = self.inner.query("listing an instance's rooms", cmd).await?;
        Ok(members.iter().filter_map(|m| m.parse().ok()).collect())
    }

    async fn disconnect_instance(
        &self,
        token: &RoomToken,
        now: Timestamp,
        instance: u64,
    ) -> Result<Held> {
        self.inner
            .apply(token, now, |room| {
                let Some(room) = room else {
                    return Held::default();
                };
                let gone: Vec<ConnectionId> = room
                    .live_connections()
                    .filter(|conn| instance_of(*conn) == instance)
                    .collect();
                let outputs = gone
                    .into_iter()
                    .flat_map(|conn| room.disconnect(now, conn))
                    // The other instance's connections are gone already.
                    .filter(|o| match o {
                        Output::Send { to, .. } | Output::Close(to) => instance_of(*to) != instance,
                    })
                    .collect::<Vec<_>>();
                Held {
                    outputs,
                    next_tick: room.next_deadline(),
                }
            })
            .await
    }

    async fn forget_instance(&self, instance: u64) -> Result<()> {
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(self.inner.keys.instance(instance));
        self.inner.query("forgetting an instance", cmd).await
    }

    async fn ping(&self) -> Result<()> {
        let reply: String = self
            .inner
            .redis
            .query("reaching Redis", ::redis::cmd("PING"))
            .await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(Error::Store(format!("Redis answered PING with {reply:?}")))
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use webcall_core::protocol::{ErrorCode, PROTOCOL_VERSION, ServerMessage};
    use webcall_core::room::IceConfig;
    use webcall_testkit::RedisServer;

    use super::*;
    use crate::hub::{Hub, INSTANCE_SHIFT, Outbox};
    use crate::rooms::RoomService;

    const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

    fn at(secs: u64) -> Timestamp {
        T0.saturating_add(Duration::from_secs(secs))
    }

    /// A prefix no other test uses.
    fn prefix() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!(
            "test{}-{}:",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A Redis of its own and a store on it, for the behaviour suite.
    pub(in crate::store) async fn store_on_own_server(
        config: RoomConfig,
    ) -> (RedisStore, RedisServer) {
        let server = RedisServer::start().expect("redis-server starts");
        let store = RedisStore::connect(&server.url(), &prefix(), config)
            .await
            .unwrap();
        (store, server)
    }

    fn join(conn: ConnectionId) -> Join {
        Join {
            conn,
            version: PROTOCOL_VERSION,
            resume: None,
            ice: IceConfig::default(),
        }
    }

    fn conn(instance: u64, n: u64) -> ConnectionId {
        ConnectionId(instance << INSTANCE_SHIFT | n)
    }

    fn first_to(outputs: &[Output], to: ConnectionId) -> Option<&ServerMessage> {
        outputs.iter().find_map(|o| match o {
            Output::Send { to: t, message } if *t == to => Some(message),
            _ => None,
        })
    }

    /// The next message in `outbox`, within 5 s.
    async fn next(outbox: &mut Outbox) -> ServerMessage {
        let frame = tokio::time::timeout(Duration::from_secs(5), outbox.recv())
            .await
            .expect("a message within 5 s")
            .expect("the connection is open");
        ServerMessage::decode(&frame).unwrap()
    }

    /// Two instances' stores on one Redis, with one prefix.
    async fn two_instances(config: RoomConfig) -> (RedisServer, RedisStore, RedisStore) {
        let server = RedisServer::start().expect("redis-server starts");
        let prefix = prefix();
        let a = RedisStore::connect(&server.url(), &prefix, config.clone())
            .await
            .unwrap();
        let b = RedisStore::connect(&server.url(), &prefix, config)
            .await
            .unwrap();
        (server, a, b)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_never_seat_three() {
        let (_server, a, b) = two_instances(RoomConfig::default()).await;
        let token = a.create(T0, Creator::default()).await.unwrap().token;
        let mut tasks = Vec::new();
        for n in 0..20u64 {
            let (store, instance) = if n % 2 == 0 { (&a, 1) } else { (&b, 2) };
            let (store, token) = (store.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let conn = conn(instance, n + 1);
                let outputs = store.join(&token, T0, join(conn)).await.unwrap();
                first_to(&outputs, conn).cloned()
            }));
        }
        let (mut joined, mut full) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Some(ServerMessage::Joined(_)) => joined += 1,
                Some(ServerMessage::Error(e)) if e.code == ErrorCode::RoomFull => full += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
        assert_eq!((joined, full), (2, 18));
        let info = b.info(&token, T0).await.unwrap().unwrap();
        assert_eq!(info.participants, 2);
    }

    #[tokio::test]
    async fn creation_limits_hold_across_instances_and_rooms_are_shared() {
        let config = RoomConfig {
            rooms_per_client: 2,
            rooms_per_network: 3,
            max_rooms: 5,
            ..RoomConfig::default()
        };
        let (_server, a, b) = two_instances(config).await;
        let creator = |client: &str| Creator {
            client: client.into(),
            network: "198.51.100.0/24".into(),
        };
        let first = a.create(T0, creator("198.51.100.7")).await.unwrap().token;
        b.create(T0, creator("198.51.100.7")).await.unwrap();
        for store in [&a, &b] {
            assert!(matches!(
                store.create(T0, creator("198.51.100.7")).await,
                Err(Error::Room(webcall_core::Error::TooManyRoomsFromClient))
            ));
        }
        // The network's third room, from another client of it; then the
        // network is full too.
        a.create(T0, creator("198.51.100.8")).await.unwrap();
        assert!(matches!(
            b.create(T0, creator("198.51.100.9")).await,
            Err(Error::Room(webcall_core::Error::TooManyRoomsFromClient))
        ));
        // The total.
        a.create(T0, Creator::default()).await.unwrap();
        b.create(T0, Creator::default()).await.unwrap();
        assert!(matches!(
            a.create(T0, Creator::default()).await,
            Err(Error::Room(webcall_core::Error::TooManyRooms { limit: 5 }))
        ));
        assert_eq!(b.len().await.unwrap(), 5);

        // A room made through one instance is joined through the other,
        // and each sees the other's seat.
        let (x, y) = (conn(1, 1), conn(2, 1));
        let out = a.join(&first, T0, join(x)).await.unwrap();
        assert!(matches!(first_to(&out, x), Some(ServerMessage::Joined(_))));
        let out = b.join(&first, T0, join(y)).await.unwrap();
        assert!(matches!(first_to(&out, y), Some(ServerMessage::Joined(j)) if j.initiator));
        assert!(matches!(
            first_to(&out, x),
            Some(ServerMessage::PeerJoined { .. })
        ));
        assert!(a.holds_seat(&first, y).await.unwrap());
        let offer = ClientMessage::Offer { sdp: "v=0".into() };
        let out = a.handle(&first, at(1), y, offer).await.unwrap();
        assert!(matches!(
            first_to(&out, x),
            Some(ServerMessage::Offer { .. })
        ));
    }

    /// A room service on `store` with a hub of instance `instance`.
    fn service(store: &RedisStore, instance: u64) -> (Arc<Hub>, RoomService) {
        let hub = Arc::new(Hub::new().for_instance(instance));
        let service = RoomService::new(Arc::new(store.clone()), hub.clone());
        (hub, service)
    }

    /// A bus that delivers through a hub once its gate opens.
    #[derive(Debug)]
    struct GatedBus {
        hub: Arc<Hub>,
        gate: tokio::sync::Semaphore,
    }

    #[async_trait]
    impl crate::bus::Bus for GatedBus {
        async fn deliver(&self, outputs: Vec<Output>) {
            self.gate.acquire().await.unwrap().forget();
            self.hub.deliver(outputs);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_instance_waits_until_the_outputs_are_delivered() {
        // Instance A's delivery is stalled: B's next input to the room
        // waits for it, so B's outputs can never overtake A's.
        let (_server, a, b) = two_instances(RoomConfig::default()).await;
        let hub_a = Arc::new(Hub::new().for_instance(1));
        let bus_a = Arc::new(GatedBus {
            hub: hub_a.clone(),
            gate: tokio::sync::Semaphore::new(0),
        });
        let service_a = Arc::new(RoomService::new(Arc::new(a.clone()), bus_a.clone()));
        let (_hub_b, service_b) = service(&b, 2);
        let service_b = Arc::new(service_b);
        let token = service_a
            .create(T0, Creator::default())
            .await
            .unwrap()
            .token;
        let (x, mut outbox_x) = hub_a.register();
        let joining_a = tokio::spawn({
            let (service, token) = (service_a.clone(), token.clone());
            async move { service.join(&token, T0, join(x)).await }
        });
        // A has applied its join and waits at the gate.
        let started = Instant::now();
        while b.info(&token, T0).await.unwrap().unwrap().participants == 0 {
            assert!(started.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let joining_b = tokio::spawn({
            let (service, token) = (service_b.clone(), token.clone());
            async move { service.join(&token, T0, join(conn(2, 1))).await }
        });
        // Showing that something does not happen takes a wait.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!joining_b.is_finished(), "B went ahead of A's delivery");
        assert_eq!(b.info(&token, T0).await.unwrap().unwrap().participants, 1);
        // A delivers `joined`, then B's `peer_joined` reaches x.
        bus_a.gate.add_permits(2);
        joining_a.await.unwrap().unwrap();
        joining_b.await.unwrap().unwrap();
        assert!(matches!(
            next(&mut outbox_x).await,
            ServerMessage::Joined(_)
        ));
        assert_eq!(b.info(&token, T0).await.unwrap().unwrap().participants, 2);
    }

    #[tokio::test]
    async fn tick_due_frees_a_held_seat_after_the_grace() {
        let config = RoomConfig::default();
        let grace = config.seat_grace;
        let (_server, a, b) = two_instances(config).await;
        let (hub_a, service_a) = service(&a, 1);
        let (hub_b, service_b) = service(&b, 2);
        let token = service_a
            .create(T0, Creator::default())
            .await
            .unwrap()
            .token;
        let (x, mut outbox_x) = hub_a.register();
        let (y, _outbox_y) = hub_b.register();
        service_a.join(&token, T0, join(x)).await.unwrap();
        assert!(matches!(
            next(&mut outbox_x).await,
            ServerMessage::Joined(_)
        ));
        service_b.join(&token, T0, join(y)).await.unwrap();
        // The instance that held `y` schedules nothing: the store knows.
        service_b.disconnect(&token, at(1), y, true).await.unwrap();
        let due = at(1).saturating_add(grace);
        assert!(a.due(at(2), 10).await.unwrap().is_empty());
        assert_eq!(service_a.tick_due(at(2)).await.unwrap(), 0);
        assert_eq!(a.due(due, 10).await.unwrap(), vec![token.clone()]);
        // Either instance may free it.
        assert_eq!(service_a.tick_due(due).await.unwrap(), 1);
        assert!(matches!(
            next(&mut outbox_x).await,
            ServerMessage::PeerLeft { .. }
        ));
        assert_eq!(a.info(&token, due).await.unwrap().unwrap().participants, 1);
        assert!(b.due(due, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_dead_instances_seats_are_held_then_freed() {
        let config = RoomConfig::default();
        let grace = config.seat_grace;
        let (_server, a, b) = two_instances(config).await;
        let (hub_a, service_a) = service(&a, 1);
        let (hub_b, service_b) = service(&b, 2);
        // Two rooms with a participant on each instance.
        let mut rooms = Vec::new();
        for _ in 0..2 {
            let token = service_a
                .create(T0, Creator::default())
                .await
                .unwrap()
                .token;
            let (x, _outbox_x) = hub_a.register();
            let (y, mut outbox_y) = hub_b.register();
            service_a.join(&token, T0, join(x)).await.unwrap();
            service_b.join(&token, T0, join(y)).await.unwrap();
            assert!(matches!(
                next(&mut outbox_y).await,
                ServerMessage::Joined(_)
            ));
            rooms.push((token, x, y, outbox_y, _outbox_x));
        }
        let mut listed = b.instance_rooms(1).await.unwrap();
        listed.sort();
        let mut expected: Vec<_> = rooms.iter().map(|r| r.0.clone()).collect();
        expected.sort();
        assert_eq!(listed, expected);

        // Instance 1 dies; instance 2 releases its seats.
        assert_eq!(service_b.release_instance(1, at(1)).await.unwrap(), 2);
        assert!(b.instance_rooms(1).await.unwrap().is_empty());
        for (token, x, y, outbox_y, _) in &mut rooms {
            assert!(matches!(
                next(outbox_y).await,
                ServerMessage::PeerReconnecting { leaving: false, .. }
            ));
            assert!(!b.holds_seat(token, *x).await.unwrap());
            assert!(b.holds_seat(token, *y).await.unwrap());
        }
        let due = at(1).saturating_add(grace);
        assert_eq!(service_b.tick_due(due).await.unwrap(), 2);
        for (token, _, _, outbox_y, _) in &mut rooms {
            assert!(matches!(
                next(outbox_y).await,
                ServerMessage::PeerLeft { .. }
            ));
            assert_eq!(b.info(token, due).await.unwrap().unwrap().participants, 1);
        }
    }

    #[tokio::test]
    async fn an_input_waits_for_the_rooms_lease_and_a_lapsed_lease_saves_nothing() {
        let (server, a, b) = two_instances(RoomConfig::default()).await;
        let token = a.create(T0, Creator::default()).await.unwrap().token;

        // While instance A holds the room, B's join waits for it.
        let lease = a.lease(&token).await.unwrap();
        let waiting = tokio::spawn({
            let (b, token) = (b.clone(), token.clone());
            async move { b.join(&token, T0, join(conn(2, 1))).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "the join did not wait for the lease"
        );
        lease.release().await;
        let out = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the join goes on once the lease is back")
            .unwrap()
            .unwrap();
        assert!(matches!(
            first_to(&out, conn(2, 1)),
            Some(ServerMessage::Joined(_))
        ));

        // A's lease lapses (as after a stall over 5 s) and B takes the
        // room: what A then tries to save is refused.
        let lease = a.lease(&token).await.unwrap();
        let mut redis = ::redis::Client::open(server.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let lock = a.inner.keys.lock(&token);
        ::redis::cmd("DEL")
            .arg(&lock)
            .query_async::<()>(&mut redis)
            .await
            .unwrap();
        let other = b.lease(&token).await.unwrap();
        let refused = a.join(&token, T0, join(conn(1, 1))).await;
        assert!(
            matches!(&refused, Err(Error::Store(e)) if e.contains("lost the room's lease")),
            "{refused:?}"
        );
        assert_eq!(a.info(&token, T0).await.unwrap().unwrap().participants, 1);
        // Giving back a lapsed lease leaves the new holder's alone.
        lease.release().await;
        let holder: Option<String> = ::redis::cmd("GET")
            .arg(&lock)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(holder.is_some());
        other.release().await;
    }

    #[tokio::test]
    async fn an_outage_fails_fast_and_the_store_comes_back_by_itself() {
        let (store, mut server) = store_on_own_server(RoomConfig::default()).await;
        let token = store.create(T0, Creator::default()).await.unwrap().token;
        store.ping().await.unwrap();

        server.stop();
        for _ in 0..3 {
            let started = Instant::now();
            let created = store.create(T0, Creator::default()).await;
            assert!(matches!(created, Err(Error::Store(_))), "{created:?}");
            let joined = store.join(&token, T0, join(conn(1, 1))).await;
            assert!(matches!(joined, Err(Error::Store(_))), "{joined:?}");
            assert!(store.ping().await.is_err());
            println!("three calls with Redis away: {:?}", started.elapsed());
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "three calls took {:?}",
                started.elapsed()
            );
        }

        server.start_again().unwrap();
        // The same store reconnects: within a few attempts, it answers.
        let started = Instant::now();
        while store.ping().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no reconnection"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Redis lost its data (no persistence): a fresh room works.
        let token = store.create(T0, Creator::default()).await.unwrap().token;
        let out = store.join(&token, T0, join(conn(1, 1))).await.unwrap();
        assert!(matches!(
            first_to(&out, conn(1, 1)),
            Some(ServerMessage::Joined(_))
        ));
    }

    #[tokio::test]
    async fn each_call_to_a_redis_that_never_answers_fails_within_two_seconds() {
        // A peer that accepts connections and never says a word, as a
        // Redis stuck or behind a dead link.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}/0", listener.local_addr().unwrap());
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let store = RedisStore::connect(&url, &prefix(), RoomConfig::default())
            .await
            .unwrap();
        let token = RoomToken::generate().unwrap();
        for _ in 0..2 {
            let started = Instant::now();
            let joined = store.join(&token, T0, join(conn(1, 1))).await;
            assert!(matches!(joined, Err(Error::Store(_))), "{joined:?}");
            let took = started.elapsed();
            assert!(took < Duration::from_secs(2), "a join took {took:?}");
            let started = Instant::now();
            let created = store.create(T0, Creator::default()).await;
            assert!(matches!(created, Err(Error::Store(_))), "{created:?}");
            let took = started.elapsed();
            println!("a call to a silent Redis failed after {took:?}");
            assert!(took < Duration::from_secs(2), "a create took {took:?}");
        }
        accepting.abort();
    }

    #[test]
    fn a_malformed_url_is_a_configuration_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let made = runtime.block_on(RedisStore::connect(
            "http://127.0.0.1:1",
            "x:",
            RoomConfig::default(),
        ));
        assert!(matches!(made, Err(Error::Config(_))), "{made:?}");
        // Redis being away is not an error at start.
        let made = runtime.block_on(RedisStore::connect(
            "redis://127.0.0.1:1/0",
            "x:",
            RoomConfig::default(),
        ));
        assert!(made.is_ok());
    }

    #[tokio::test]
    async fn relaying_a_message_costs_three_round_trips() {
        // The hot path, as the server runs it: the room's turn and lease,
        // the room loaded, nothing written, the lease given back.
        let (store, _server) = store_on_own_server(RoomConfig::default()).await;
        let (hub, service) = service(&store, 1);
        let token = service.create(T0, Creator::default()).await.unwrap().token;
        let (x, _outbox_x) = hub.register();
        let (y, mut outbox_y) = hub.register();
        service.join(&token, T0, join(x)).await.unwrap();
        service.join(&token, T0, join(y)).await.unwrap();
        let _ = next(&mut outbox_y).await;
        let rounds = 500;
        let started = Instant::now();
        for _ in 0..rounds {
            let candidate = ClientMessage::Offer { sdp: "v=0".into() };
            service.handle(&token, at(1), x, candidate).await.unwrap();
            assert!(matches!(
                next(&mut outbox_y).await,
                ServerMessage::Offer { .. }
            ));
        }
        let each = started.elapsed() / rounds;
        println!("one relayed message through Redis: {each:?}");
        assert!(each < Duration::from_millis(50), "{each:?}");
    }
}
