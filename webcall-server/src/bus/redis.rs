//! [`RedisBus`]: room outputs delivered across instances over Redis
//! pub/sub. Each instance subscribes to its own channel,
//! `<prefix>bus:<instance>`; an output for a connection of this instance
//! goes straight to the local [`Hub`], one for another instance is
//! published on that instance's channel (the instance number is the high
//! bits of the connection id, see [`crate::hub::instance_of`]).
//!
//! Pub/sub is at most once: a message published while the receiving
//! instance is not subscribed (Redis restarting, the subscription being
//! re-made) is lost. The protocol recovers from a lost message (see
//! PROTOCOL.md, "Delivery"); the bus only keeps order: one `deliver` call
//! is one published batch, and batches to one instance arrive in the order
//! published.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use webcall_core::room::{ConnectionId, Output};

use crate::bus::Bus;
use crate::error::Result;
use crate::hub::{Hub, instance_of};
use crate::redis_link::RedisLink;

/// The longest wait between two attempts to subscribe again.
const MAX_RESUBSCRIBE_DELAY: Duration = Duration::from_secs(5);

/// One output as published: the frame already encoded, so the receiving
/// instance only queues it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Item {
    /// Queue `frame` for connection `to`.
    Send { to: u64, frame: String },
    /// End connection `conn`'s queue.
    Close { conn: u64 },
}

/// Delivers to this instance's hub, and publishes to other instances.
#[derive(Debug)]
pub struct RedisBus {
    hub: Arc<Hub>,
    link: RedisLink,
    prefix: String,
    /// True while this instance's channel is subscribed.
    subscribed: Arc<AtomicBool>,
    /// Ends the subscriber task when dropped.
    _stop: watch::Sender<()>,
}

/// The pub/sub channel of instance `instance`.
fn channel(prefix: &str, instance: u64) -> String {
    format!("{prefix}bus:{instance}")
}

impl RedisBus {
    /// A bus for `hub`'s instance on the Redis at `url`: it subscribes to
    /// the instance's channel (and keeps subscribing again after Redis
    /// comes back) until dropped. Returns once the first attempt to
    /// subscribe is over, subscribed or not: the server starts while Redis
    /// is away, and is not ready until the subscription is made.
    pub async fn start(url: &str, prefix: &str, hub: Arc<Hub>) -> Result<Self> {
        Self::on(RedisLink::open(url)?, prefix, hub).await
    }

    /// [`start`](Self::start) on a link shared with others.
    pub(crate) async fn on(link: RedisLink, prefix: &str, hub: Arc<Hub>) -> Result<Self> {
        let client = link.client().clone();
        let subscribed = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = watch::channel(());
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(subscribe(
            client,
            channel(prefix, hub.instance()),
            hub.clone(),
            subscribed.clone(),
            stopped,
            first_tx,
        ));
        let _ = first_rx.await;
        Ok(Self {
            hub,
            link,
            prefix: prefix.to_owned(),
            subscribed,
            _stop: stop,
        })
    }

    /// True while messages from other instances can reach this one.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Asks Redis whether it answers, for readiness.
    pub async fn ping(&self) -> Result<()> {
        self.link.ping().await
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn deliver(&self, outputs: Vec<Output>) {
        let here = self.hub.instance();
        let mut local = Vec::new();
        let mut remote: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
        for output in outputs {
            let to = match &output {
                Output::Send { to, .. } => *to,
                Output::Close(conn) => *conn,
            };
            let instance = instance_of(to);
            if instance == here {
                local.push(output);
                continue;
            }
            remote.entry(instance).or_default().push(match output {
                Output::Send { to, message } => Item::Send {
                    to: to.0,
                    frame: message.encode(),
                },
                Output::Close(conn) => Item::Close { conn: conn.0 },
            });
        }
        self.hub.deliver(local);
        if remote.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (instance, items) in &remote {
            let payload = serde_json::to_string(items).unwrap_or_default();
            pipe.publish(channel(&self.prefix, *instance), payload)
                .ignore();
        }
        let published = self
            .link
            .run("publishing signaling", |mut redis| async move {
                pipe.query_async::<()>(&mut redis).await
            })
            .await;
        if let Err(e) = published {
            // At most once: the clients recover (PROTOCOL.md, "Delivery").
            tracing::warn!(
                instances = remote.len(),
                "signaling for another instance lost: {e}"
            );
        }
    }
}

/// Keeps `channel` subscribed, queueing what arrives on `hub`, until
/// `stopped` says so; tells `first` when the first attempt is over.
async fn subscribe(
    client: redis::Client,
    channel: String,
    hub: Arc<Hub>,
    subscribed: Arc<AtomicBool>,
    mut stopped: watch::Receiver<()>,
    first: tokio::sync::oneshot::Sender<()>,
) {
    let mut first = Some(first);
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let mut pubsub =
                tokio::time::timeout(Duration::from_secs(2), client.get_async_pubsub())
                    .await
                    .map_err(|_| "connecting timed out".to_owned())?
                    .map_err(|e| e.to_string())?;
            pubsub
                .subscribe(&channel)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(pubsub)
        };
        match attempt.await {
            Ok(mut pubsub) => {
                subscribed.store(true, Ordering::Release);
                delay = Duration::from_millis(100);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                tracing::info!(%channel, "receiving signaling from other instances");
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => {
                                let payload: String = message.get_payload().unwrap_or_default();
                                deliver_published(&hub, &payload);
                            }
                            None => break,
                        },
                        _ = stopped.changed() => return,
                    }
                }
                subscribed.store(false, Ordering::Release);
                metrics::counter!(crate::metrics::REDIS_ERRORS).increment(1);
                tracing::warn!(%channel, "lost the Redis subscription; subscribing again");
            }
            Err(e) => {
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                metrics::counter!(crate::metrics::REDIS_ERRORS).increment(1);
                tracing::warn!(%channel, "cannot subscribe on Redis ({e}); trying again in {delay:?}");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stopped.changed() => return,
                }
                delay = (delay * 2).min(MAX_RESUBSCRIBE_DELAY);
            }
        }
    }
}

/// Queues a published batch on this instance's connections.
fn deliver_published(hub: &Hub, payload: &str) {
    let items: Vec<Item> = match serde_json::from_str(payload) {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!("ignoring a malformed message on the signaling channel: {e}");
            return;
        }
    };
    for item in items {
        match item {
            Item::Send { to, frame } => {
                hub.send(ConnectionId(to), frame);
            }
            Item::Close { conn } => hub.remove(ConnectionId(conn)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use webcall_testkit::RedisServer;

    use super::*;

    fn prefix() -> String {
        format!("test{}:", getrandom::u64().unwrap())
    }

    /// A bus of another instance on a Redis of its own, for the suite:
    /// everything it delivers to the suite's hub crosses Redis.
    async fn across(hub: Arc<Hub>) -> Arc<dyn Bus> {
        let redis = RedisServer::start().expect("redis-server starts");
        let prefix = prefix();
        let receiver = RedisBus::start(&redis.url(), &prefix, hub).await.unwrap();
        assert!(receiver.is_subscribed());
        let other = Arc::new(Hub::new().for_instance(7));
        let sender = RedisBus::start(&redis.url(), &prefix, other).await.unwrap();
        Arc::new(Pair {
            sender,
            _receiver: receiver,
            _redis: redis,
        })
    }

    /// The sending bus, keeping the receiving one subscribed and Redis
    /// running (stopped when the test drops the bus).
    #[derive(Debug)]
    struct Pair {
        sender: RedisBus,
        _receiver: RedisBus,
        _redis: RedisServer,
    }

    #[async_trait]
    impl Bus for Pair {
        async fn deliver(&self, outputs: Vec<Output>) {
            self.sender.deliver(outputs).await;
        }
    }

    // One line per implementation: the whole behaviour suite against it.
    crate::bus::suite::bus_suite!(redis_across_instances, across);

    #[test]
    fn published_items_keep_their_shape() {
        let items = vec![
            Item::Send {
                to: 1 << 40 | 3,
                frame: "{\"type\":\"bye\"}".into(),
            },
            Item::Close { conn: 5 },
        ];
        let text = serde_json::to_string(&items).unwrap();
        assert_eq!(
            text,
            r#"[{"send":{"to":1099511627779,"frame":"{\"type\":\"bye\"}"}},{"close":{"conn":5}}]"#
        );
        assert_eq!(serde_json::from_str::<Vec<Item>>(&text).unwrap(), items);
    }

    #[tokio::test]
    async fn a_bus_delivers_again_after_redis_restarts() {
        // Own Redis: this test stops it.
        let mut redis = RedisServer::start().unwrap();
        let prefix = prefix();
        let hub = Arc::new(Hub::new().for_instance(1));
        let receiver = RedisBus::start(&redis.url(), &prefix, hub.clone())
            .await
            .unwrap();
        let sender = RedisBus::start(&redis.url(), &prefix, Arc::new(Hub::new().for_instance(2)))
            .await
            .unwrap();
        let (a, mut outbox) = hub.register();
        let bye = || Output::Send {
            to: a,
            message: webcall_core::protocol::ServerMessage::Reconnect { after_ms: 1 },
        };
        sender.deliver(vec![bye()]).await;
        let first = tokio::time::timeout(Duration::from_secs(10), outbox.recv()).await;
        assert!(matches!(first, Ok(Some(_))), "{first:?}");

        redis.stop();
        webcall_testkit::wait_for(
            "the receiver notices Redis is gone",
            Duration::from_secs(20),
            || !receiver.is_subscribed(),
        )
        .await
        .unwrap();
        assert!(sender.ping().await.is_err(), "no Redis, no PONG");
        redis.start_again().unwrap();
        webcall_testkit::wait_for(
            "the receiver subscribes again",
            Duration::from_secs(30),
            || receiver.is_subscribed(),
        )
        .await
        .unwrap();
        // The sender's connection comes back by itself too.
        let mut delivered = false;
        for _ in 0..100 {
            sender.deliver(vec![bye()]).await;
            if let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(200), outbox.recv()).await
            {
                delivered = true;
                break;
            }
        }
        assert!(delivered, "a delivery arrives after Redis came back");
    }
}
