//! The behaviour every [`Bus`] must show, one generic test function per
//! behaviour. [`bus_suite!`] runs them all against one implementation,
//! made from the [`Hub`] that holds the test's connections: a new bus adds
//! one line to run the same suite.

use std::sync::Arc;
use std::time::Duration;

use webcall_core::protocol::{ErrorCode, ServerMessage};
use webcall_core::room::{ConnectionId, Output};

use super::Bus;
use crate::hub::{Hub, Outbox};

/// Runs every behaviour test against the bus `make(hub).await` returns.
macro_rules! bus_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use std::sync::Arc;

            #[allow(unused_imports)]
            use super::*;
            use $crate::bus::suite;
            use $crate::hub::Hub;

            async fn run<F, Fut>(test: F)
            where
                F: FnOnce(Arc<dyn $crate::bus::Bus>, Arc<Hub>) -> Fut,
                Fut: std::future::Future<Output = ()>,
            {
                let hub = Arc::new(Hub::new());
                #[allow(clippy::redundant_closure_call)]
                let bus: Arc<dyn $crate::bus::Bus> = ($make)(hub.clone()).await;
                test(bus, hub).await;
            }

            #[tokio::test]
            async fn messages_reach_their_connection_in_order() {
                run(suite::messages_reach_their_connection_in_order).await;
            }

            #[tokio::test]
            async fn a_close_ends_the_queue_after_what_came_before() {
                run(suite::a_close_ends_the_queue_after_what_came_before).await;
            }

            #[tokio::test]
            async fn outputs_for_unknown_connections_are_dropped() {
                run(suite::outputs_for_unknown_connections_are_dropped).await;
            }
        }
    };
}
pub(crate) use bus_suite;

/// How long a delivery may take to arrive.
const WAIT: Duration = Duration::from_secs(10);

fn message(n: usize) -> ServerMessage {
    ServerMessage::Offer {
        from: "0123456789abcdef".parse().unwrap(),
        sdp: n.to_string(),
    }
}

fn send(to: ConnectionId, n: usize) -> Output {
    Output::Send {
        to,
        message: message(n),
    }
}

async fn next(outbox: &mut Outbox) -> Option<String> {
    tokio::time::timeout(WAIT, outbox.recv())
        .await
        .expect("a delivery arrives in time")
}

pub(crate) async fn messages_reach_their_connection_in_order(bus: Arc<dyn Bus>, hub: Arc<Hub>) {
    let (a, mut outbox_a) = hub.register();
    let (b, mut outbox_b) = hub.register();
    bus.deliver(vec![send(a, 1), send(b, 2), send(a, 3)]).await;
    bus.deliver(vec![send(a, 4)]).await;
    for n in [1, 3, 4] {
        assert_eq!(next(&mut outbox_a).await, Some(message(n).encode()));
    }
    assert_eq!(next(&mut outbox_b).await, Some(message(2).encode()));
}

pub(crate) async fn a_close_ends_the_queue_after_what_came_before(
    bus: Arc<dyn Bus>,
    hub: Arc<Hub>,
) {
    let (a, mut outbox_a) = hub.register();
    let error = ServerMessage::error(ErrorCode::Replaced);
    bus.deliver(vec![
        send(a, 1),
        Output::Send {
            to: a,
            message: error.clone(),
        },
        Output::Close(a),
        send(a, 2),
    ])
    .await;
    assert_eq!(next(&mut outbox_a).await, Some(message(1).encode()));
    assert_eq!(next(&mut outbox_a).await, Some(error.encode()));
    assert_eq!(next(&mut outbox_a).await, None, "nothing after the close");
    assert!(!outbox_a.cut_off(), "closed, not cut off");
    assert!(hub.is_empty());
}

pub(crate) async fn outputs_for_unknown_connections_are_dropped(bus: Arc<dyn Bus>, hub: Arc<Hub>) {
    let (a, mut outbox_a) = hub.register();
    let gone = ConnectionId(a.0 + 1000);
    bus.deliver(vec![send(gone, 1), Output::Close(gone), send(a, 2)])
        .await;
    assert_eq!(next(&mut outbox_a).await, Some(message(2).encode()));
    assert_eq!(hub.len(), 1);
}
