//! One connection to Redis, shared by the room store, the bus and the
//! instance heartbeat: connected lazily (the server starts while Redis is
//! away), re-established in the background with backoff, and every call
//! bounded in time, timed and counted (see [`crate::metrics::REDIS_COMMAND`]
//! and [`crate::metrics::REDIS_ERRORS`]).

use std::future::Future;
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Cmd, FromRedisValue, RedisResult};
use metrics::{counter, histogram};

use crate::error::{Error, Result};
use crate::metrics::{REDIS_COMMAND, REDIS_ERRORS};

/// How long one call may take, waiting for a reconnection included: past
/// it the caller gets [`Error::Store`] (a signaling message or an API call
/// fails fast instead of hanging while Redis is away).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long to wait for a TCP connection to Redis.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait for Redis to answer a command on a connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection backoff: the first pause, the longest, and how many
/// attempts one reconnection makes before failing the commands waiting
/// for it (the next command starts another).
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);
const RECONNECT_RETRIES: usize = 2;

/// A lazily connected, self-healing Redis connection.
#[derive(Clone)]
pub(crate) struct RedisLink {
    client: ::redis::Client,
    manager: ConnectionManager,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLink").finish_non_exhaustive()
    }
}

impl RedisLink {
    /// A link to the Redis at `url`. It does not wait for Redis: only a
    /// malformed URL is an error here.
    pub(crate) fn open(url: &str) -> Result<Self> {
        let client = ::redis::Client::open(url).map_err(|e| {
            Error::Config(format!(
                "the store URL is not a Redis URL ({e}); write it as redis://host:port/db"
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_number_of_retries(RECONNECT_RETRIES);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| Error::Config(format!("cannot set up the Redis connection: {e}")))?;
        Ok(Self { client, manager })
    }

    /// The client, for connections of their own (a pub/sub subscription).
    pub(crate) fn client(&self) -> &::redis::Client {
        &self.client
    }

    /// Runs one call on the shared connection, bounded by
    /// [`COMMAND_TIMEOUT`], timed and counted; `what` says what failed.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let started = Instant::now();
        let result = tokio::time::timeout(COMMAND_TIMEOUT, call(self.manager.clone())).await;
        histogram!(REDIS_COMMAND).record(started.elapsed().as_secs_f64());
        let error = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {COMMAND_TIMEOUT:?}"),
        };
        counter!(REDIS_ERRORS).increment(1);
        Err(Error::Store(format!("{what}: {error}")))
    }

    /// One command.
    pub(crate) async fn query<T: FromRedisValue>(&self, what: &str, cmd: Cmd) -> Result<T> {
        self.run(what, |mut redis| async move {
            cmd.query_async(&mut redis).await
        })
        .await
    }

    /// `PING`, for readiness.
    pub(crate) async fn ping(&self) -> Result<()> {
        self.query::<String>("reaching Redis", ::redis::cmd("PING"))
            .await
            .map(drop)
    }
}
