//! The load generator against a real server on loopback: 50 rooms of two
//! participants for a few seconds with heavy churn; and 200 rooms split
//! across two instances sharing a real redis-server. Nothing sent to a
//! present participant may be lost, duplicated, misrouted or reordered.
//!
//! `TestServer`'s configuration already lifts the per-client limits (all
//! participants come from 127.0.0.1); the message rate stays the default.

use std::time::Duration;

use webcall_load::{Options, Rate};
use webcall_testkit::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_with_churn_lose_nothing() {
    let server = TestServer::start().await.unwrap();
    let mut options = Options::new(vec![server.base_url()]);
    options.rooms = 50;
    options.duration = Duration::from_secs(4);
    options.rate = Rate::per_second(5.0).unwrap();
    options.ramp = Rate::per_second(200.0).unwrap();
    // Each participant leaves about once in 4 s: about 100 leaves.
    options.churn = 2.5;
    options.seed = Some(7);
    options.quiet = true;
    let report = tokio::time::timeout(Duration::from_secs(120), webcall_load::run(&options))
        .await
        .expect("the run ends")
        .expect("the run starts");
    println!("{report}");
    assert_eq!(report.rooms_up, 50, "{report}");
    assert!(report.sent_to_present > 1_000, "{report}");
    assert!(
        report.sent_to_away > 0,
        "churn made some peers away: {report}"
    );
    assert!(
        report.leave_rejoin > 10 && report.reload_resume > 10,
        "{report}"
    );
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.misrouted, 0, "{report}");
    assert_eq!(report.duplicated, 0, "{report}");
    assert_eq!(report.out_of_order, 0, "{report}");
    assert_eq!(report.delivered, report.sent_to_present, "{report}");
    assert_eq!(report.unexpected_closes, 0, "{report}");
    assert_eq!(report.resume_missed, 0, "{report}");
    assert!(report.latency.count >= report.delivered, "{report}");
    assert!(report.latency.p50_us > 0, "{report}");
    server.shutdown().await.unwrap();
}

/// Two URLs for one server: the code path of a multi-instance run, where
/// a room's participants connect to different servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_urls_split_each_room() {
    let server = TestServer::start().await.unwrap();
    let by_name = server.base_url().replace("127.0.0.1", "localhost");
    let mut options = Options::new(vec![server.base_url(), by_name]);
    options.rooms = 10;
    options.duration = Duration::from_secs(1);
    options.rate = Rate::per_second(10.0).unwrap();
    options.churn = 0.0;
    options.quiet = true;
    options.server_pids = vec![std::process::id()];
    let report = webcall_load::run(&options).await.unwrap();
    assert_eq!(report.urls.len(), 2);
    assert_eq!(report.rooms_up, 10, "{report}");
    assert!(report.clean(), "{report}");
    assert_eq!(report.delivered, report.sent_to_present, "{report}");
    assert_eq!(report.sent_to_away, 0, "{report}");
    let rss = &report.rss[0];
    assert!(rss.samples >= 2 && rss.max_kib > Some(0), "{report}");
    server.shutdown().await.unwrap();
}

/// Two instances on one Redis, each room split across them: every message
/// crosses Redis pub/sub, with churn, and none may be lost or misrouted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_redis_lose_nothing() {
    let redis = webcall_testkit::RedisServer::start().unwrap();
    let config = webcall_server::Config {
        redis_url: Some(redis.url()),
        redis_prefix: format!("load{}:", std::process::id()),
        ..TestServer::test_config()
    };
    let a = TestServer::start_with(config.clone()).await.unwrap();
    let b = TestServer::start_with(config).await.unwrap();
    for server in [&a, &b] {
        webcall_testkit::wait_until("the instance is ready", Duration::from_secs(30), || async {
            Ok(server.request("GET", "/readyz", None).await?.status == 200)
        })
        .await
        .unwrap();
    }
    let mut options = Options::new(vec![a.base_url(), b.base_url()]);
    options.rooms = 200;
    options.duration = Duration::from_secs(4);
    options.rate = Rate::per_second(2.0).unwrap();
    options.ramp = Rate::per_second(200.0).unwrap();
    options.churn = 0.5;
    options.seed = Some(11);
    options.quiet = true;
    let report = tokio::time::timeout(Duration::from_secs(180), webcall_load::run(&options))
        .await
        .expect("the run ends")
        .expect("the run starts");
    println!("{report}");
    assert_eq!(report.rooms_up, 200, "{report}");
    assert!(report.sent_to_present > 1_000, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(report.misrouted, 0, "{report}");
    assert_eq!(report.duplicated, 0, "{report}");
    assert_eq!(report.out_of_order, 0, "{report}");
    assert_eq!(report.delivered, report.sent_to_present, "{report}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
