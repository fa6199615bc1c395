//! The behaviour every [`RoomStore`] must show, one generic test function
//! per behaviour. [`room_store_suite!`] runs them all against one
//! implementation: a new store adds one line to run the same suite.

use std::time::Duration;

use webcall_core::protocol::{
    ClientMessage, ErrorCode, LeaveReason, PROTOCOL_VERSION, ServerMessage,
};
use webcall_core::room::{ConnectionId, Creator, IceConfig, Output, RoomConfig};
use webcall_core::time::Timestamp;
use webcall_core::token::RoomToken;

use super::{Join, RoomStore};

/// Runs every behaviour test against the store `make(config)` returns.
/// With `async make`, `make(config)` is a future of the store and of what
/// it needs kept alive until the test ends (a server, say).
macro_rules! room_store_suite {
    ($name:ident, async $make:expr) => {
        $crate::store::suite::room_store_suite!(@tests $name, $make);
    };
    ($name:ident, $make:expr) => {
        $crate::store::suite::room_store_suite!(
            @tests $name,
            |config| async move { (($make)(config), ()) }
        );
    };
    (@tests $name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use webcall_core::room::RoomConfig;
            use $crate::store::suite;

            async fn run<F, Fut>(test: F)
            where
                F: FnOnce(Box<dyn $crate::store::RoomStore>, RoomConfig) -> Fut,
                Fut: std::future::Future<Output = ()>,
            {
                let config = suite::config();
                #[allow(clippy::redundant_closure_call)]
                let (store, _keep) = ($make)(config.clone()).await;
                test(Box::new(store), config).await;
            }

            #[tokio::test]
            async fn created_rooms_can_be_looked_up_until_they_expire() {
                run(suite::created_rooms_can_be_looked_up_until_they_expire).await;
            }

            #[tokio::test]
            async fn two_joins_meet_and_messages_are_relayed() {
                run(suite::two_joins_meet_and_messages_are_relayed).await;
            }

            #[tokio::test]
            async fn unknown_rooms_answer_room_not_found() {
                run(suite::unknown_rooms_answer_room_not_found).await;
            }

            #[tokio::test]
            async fn the_room_answers_not_joined_and_already_joined() {
                run(suite::the_room_answers_not_joined_and_already_joined).await;
            }

            #[tokio::test]
            async fn a_disconnect_holds_the_seat_until_a_tick_frees_it() {
                run(suite::a_disconnect_holds_the_seat_until_a_tick_frees_it).await;
            }

            #[tokio::test]
            async fn expired_rooms_answer_until_swept() {
                run(suite::expired_rooms_answer_until_swept).await;
            }

            #[tokio::test]
            async fn creation_limits_hold() {
                run(suite::creation_limits_hold).await;
            }
        }
    };
}
pub(crate) use room_store_suite;

/// The room settings the suite runs with.
pub(crate) fn config() -> RoomConfig {
    RoomConfig {
        ttl: Duration::from_secs(3600),
        unused_ttl: Duration::from_secs(600),
        max_rooms: 10,
        rooms_per_client: 2,
        rooms_per_network: 0,
        seat_grace: Duration::from_secs(20),
        leave_grace: Duration::from_secs(3),
        ..RoomConfig::default()
    }
}

type Store = Box<dyn RoomStore>;

const A: ConnectionId = ConnectionId(1);
const B: ConnectionId = ConnectionId(2);
const C: ConnectionId = ConnectionId(3);
const T0: Timestamp = Timestamp::from_unix_millis(1_800_000_000_000);

fn at(secs: u64) -> Timestamp {
    T0.saturating_add(Duration::from_secs(secs))
}

fn join(conn: ConnectionId) -> Join {
    Join {
        conn,
        version: PROTOCOL_VERSION,
        resume: None,
        ice: IceConfig::default(),
    }
}

fn sent_to(outputs: &[Output], conn: ConnectionId) -> Vec<ServerMessage> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { to, message } if *to == conn => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn error_to(outputs: &[Output], conn: ConnectionId) -> Option<(ErrorCode, bool)> {
    sent_to(outputs, conn).into_iter().find_map(|m| match m {
        ServerMessage::Error(e) => Some((e.code, e.fatal)),
        _ => None,
    })
}

async fn room(store: &Store) -> RoomToken {
    store
        .create(T0, Creator::default())
        .await
        .expect("a room")
        .token
}

/// Two participants seated in a fresh room.
async fn call(store: &Store) -> RoomToken {
    let token = room(store).await;
    store.join(&token, T0, join(A)).await.unwrap();
    store.join(&token, T0, join(B)).await.unwrap();
    token
}

pub(crate) async fn created_rooms_can_be_looked_up_until_they_expire(
    store: Store,
    config: RoomConfig,
) {
    let created = store.create(T0, Creator::default()).await.unwrap();
    assert!(created.url.is_empty(), "the caller fills in the link");
    assert_eq!(created.expires_at, T0.saturating_add(config.ttl));
    let info = store
        .info(&created.token, T0)
        .await
        .unwrap()
        .expect("found");
    assert_eq!((info.participants, info.capacity), (0, config.capacity));
    assert_eq!(store.len().await.unwrap(), 1);
    assert!(!store.is_empty().await.unwrap());
    let lapsed = T0.saturating_add(config.unused_ttl);
    assert_eq!(store.info(&created.token, lapsed).await.unwrap(), None);
    let other = RoomToken::generate().unwrap();
    assert_eq!(store.info(&other, T0).await.unwrap(), None);
}

pub(crate) async fn two_joins_meet_and_messages_are_relayed(store: Store, _: RoomConfig) {
    let token = room(&store).await;
    let out = store.join(&token, T0, join(A)).await.unwrap();
    assert!(matches!(&sent_to(&out, A)[..], [ServerMessage::Joined(j)] if !j.initiator));
    let out = store.join(&token, T0, join(B)).await.unwrap();
    assert!(matches!(&sent_to(&out, B)[..], [ServerMessage::Joined(j)] if j.initiator));
    assert!(matches!(
        &sent_to(&out, A)[..],
        [ServerMessage::PeerJoined { resumed: false, .. }]
    ));
    assert!(store.holds_seat(&token, A).await.unwrap());
    assert!(!store.holds_seat(&token, C).await.unwrap());

    let offer = ClientMessage::Offer { sdp: "v=0".into() };
    let out = store.handle(&token, at(1), B, offer).await.unwrap();
    assert!(matches!(&sent_to(&out, A)[..], [ServerMessage::Offer { sdp, .. }] if sdp == "v=0"));
    assert!(sent_to(&out, B).is_empty());

    let out = store
        .handle(&token, at(2), A, ClientMessage::Bye)
        .await
        .unwrap();
    assert!(matches!(
        &sent_to(&out, B)[..],
        [ServerMessage::PeerLeft {
            reason: LeaveReason::Bye,
            ..
        }]
    ));
    assert!(out.contains(&Output::Close(A)));
    assert!(!store.holds_seat(&token, A).await.unwrap());
    let info = store.info(&token, at(2)).await.unwrap().unwrap();
    assert_eq!(info.participants, 1);
}

pub(crate) async fn unknown_rooms_answer_room_not_found(store: Store, _: RoomConfig) {
    let unknown = RoomToken::generate().unwrap();
    for out in [
        store.join(&unknown, T0, join(A)).await.unwrap(),
        store
            .handle(&unknown, T0, A, ClientMessage::Bye)
            .await
            .unwrap(),
    ] {
        assert_eq!(error_to(&out, A), Some((ErrorCode::RoomNotFound, true)));
        assert_eq!(out.last(), Some(&Output::Close(A)));
    }
    assert!(!store.holds_seat(&unknown, A).await.unwrap());
    let held = store.disconnect(&unknown, T0, A).await.unwrap();
    assert_eq!((held.outputs.len(), held.next_tick), (0, None));
    assert_eq!(store.tick(&unknown, T0).await.unwrap().outputs.len(), 0);
}

pub(crate) async fn the_room_answers_not_joined_and_already_joined(store: Store, _: RoomConfig) {
    let token = room(&store).await;
    let offer = ClientMessage::Offer { sdp: "x".into() };
    let out = store.handle(&token, T0, A, offer).await.unwrap();
    assert_eq!(error_to(&out, A), Some((ErrorCode::NotJoined, false)));
    store.join(&token, T0, join(A)).await.unwrap();
    let out = store.join(&token, T0, join(A)).await.unwrap();
    assert_eq!(error_to(&out, A), Some((ErrorCode::AlreadyJoined, false)));
    assert!(!out.contains(&Output::Close(A)));
    // A connection that never joined holds nothing to disconnect.
    let held = store.disconnect(&token, T0, C).await.unwrap();
    assert_eq!(held, Default::default());
}

pub(crate) async fn a_disconnect_holds_the_seat_until_a_tick_frees_it(
    store: Store,
    config: RoomConfig,
) {
    let token = call(&store).await;
    let held = store.disconnect(&token, at(1), B).await.unwrap();
    assert!(matches!(
        &sent_to(&held.outputs, A)[..],
        [ServerMessage::PeerReconnecting { .. }]
    ));
    let due = at(1).saturating_add(config.seat_grace);
    assert_eq!(held.next_tick, Some(due));
    assert_eq!(
        store
            .info(&token, at(1))
            .await
            .unwrap()
            .unwrap()
            .participants,
        2,
        "a held seat is still taken"
    );

    let early = store.tick(&token, at(2)).await.unwrap();
    assert!(early.outputs.is_empty());
    assert_eq!(early.next_tick, Some(due));
    let freed = store.tick(&token, due).await.unwrap();
    assert!(matches!(
        &sent_to(&freed.outputs, A)[..],
        [ServerMessage::PeerLeft {
            reason: LeaveReason::Disconnected,
            ..
        }]
    ));
    assert_eq!(freed.next_tick, None);
    assert_eq!(
        store.info(&token, due).await.unwrap().unwrap().participants,
        1
    );
}

pub(crate) async fn expired_rooms_answer_until_swept(store: Store, config: RoomConfig) {
    let token = call(&store).await;
    let late = T0.saturating_add(config.ttl);
    assert_eq!(store.info(&token, late).await.unwrap(), None);
    // A new join is refused; a participant's message learns of the expiry.
    let out = store.join(&token, late, join(C)).await.unwrap();
    assert_eq!(error_to(&out, C), Some((ErrorCode::RoomNotFound, true)));
    let out = store
        .handle(&token, late, A, ClientMessage::Leaving)
        .await
        .unwrap();
    assert_eq!(error_to(&out, A), Some((ErrorCode::RoomExpired, true)));
    assert_eq!(error_to(&out, B), Some((ErrorCode::RoomExpired, true)));
    assert_eq!(store.len().await.unwrap(), 1, "until swept");

    let other = call(&store).await;
    let out = store.sweep(late).await.unwrap();
    assert_eq!(store.len().await.unwrap(), 0);
    // Only the second room still had people to tell.
    assert!(out.contains(&Output::Close(A)) && out.contains(&Output::Close(B)));
    assert_eq!(store.info(&other, late).await.unwrap(), None);
}

pub(crate) async fn creation_limits_hold(store: Store, config: RoomConfig) {
    let client = Creator {
        client: "198.51.100.7".into(),
        network: "198.51.100.0/24".into(),
    };
    for _ in 0..config.rooms_per_client {
        store.create(T0, client.clone()).await.unwrap();
    }
    assert!(matches!(
        store.create(T0, client.clone()).await,
        Err(crate::Error::Room(
            webcall_core::Error::TooManyRoomsFromClient
        ))
    ));
    // Once its rooms lapse, the client may create again.
    let later = T0.saturating_add(config.unused_ttl);
    store.create(later, client).await.unwrap();
    // Lapsed rooms count towards the total until swept (a store may sweep
    // them on its own once full); sweep so that `len` counts live rooms.
    store.sweep(later).await.unwrap();
    while store.len().await.unwrap() < config.max_rooms {
        store.create(later, Creator::default()).await.unwrap();
    }
    assert!(matches!(
        store.create(later, Creator::default()).await,
        Err(crate::Error::Room(webcall_core::Error::TooManyRooms { .. }))
    ));
}
