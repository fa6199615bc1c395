//! The HTTP side against a real server on loopback: the room API, the QR
//! code, limits, pages, assets and headers.

mod server_support;

use std::time::{Duration, SystemTime};

use server_support::{WAIT, config, http};
use webcall_core::protocol::{ApiError, CreatedRoom, ErrorCode, RoomInfo};
use webcall_core::room::RoomConfig;
use webcall_core::token::RoomToken;
use webcall_server::Config;
use webcall_testkit::{TestServer, wait_until};

async fn api_error(response: reqwest::Response) -> ErrorCode {
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: ApiError = response.json().await.unwrap();
    assert!(!body.error.message.is_empty());
    body.error.code
}

#[tokio::test]
async fn create_then_look_up_a_room() {
    let server = TestServer::start_with(config()).await.unwrap();
    let before = SystemTime::now();
    let response = http().post(server.url("/api/rooms")).send().await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: CreatedRoom = response.json().await.unwrap();

    assert_eq!(created.token.as_str().len(), 22);
    assert_eq!(
        created.url,
        format!("http://{}/r/{}", server.addr(), created.token)
    );
    let ttl = created
        .expires_at
        .to_system_time()
        .duration_since(before)
        .unwrap();
    let week = RoomConfig::default().ttl;
    assert!(
        ttl > week - Duration::from_secs(60) && ttl <= week + Duration::from_secs(60),
        "{ttl:?}"
    );

    let info: RoomInfo = http()
        .get(server.url(&format!("/api/rooms/{}", created.token)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        info,
        RoomInfo {
            token: created.token.clone(),
            participants: 0,
            capacity: 2,
            expires_at: created.expires_at,
            join_by: created.join_by,
            url: Some(created.url.clone()),
        }
    );
    // An unused room must be joined within a day, well before its week is up.
    let join_by = created
        .join_by
        .expect("a new room says when it must be joined");
    assert!(join_by < created.expires_at, "{join_by:?}");

    // Two rooms never share a token.
    let other = server.create_room().await.unwrap();
    assert_ne!(other.token, created.token);
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_404_with_an_error_body() {
    let server = TestServer::start_with(config()).await.unwrap();
    let unknown = RoomToken::generate().unwrap().to_string();
    let long = "a".repeat(5000);
    for token in [
        unknown.as_str(),
        "abc",
        "..%2F..%2Fetc%2Fpasswd",
        "q3V1n0cF2mXb7eYtK9aJ1w=",
        long.as_str(),
        "%00",
    ] {
        for suffix in ["", "/qr.svg"] {
            let response = http()
                .get(server.url(&format!("/api/rooms/{token}{suffix}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 404, "{token}{suffix}");
            assert_eq!(api_error(response).await, ErrorCode::RoomNotFound);
        }
    }
}

#[tokio::test]
async fn qr_code_is_an_svg_of_the_link() {
    let server = TestServer::start_with(config()).await.unwrap();
    let room = server.create_room().await.unwrap();
    let response = http()
        .get(server.url(&format!("/api/rooms/{}/qr.svg", room.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let svg = response.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    // Dark modules are drawn as a path; an empty code would have none.
    assert!(svg.contains("<path") || svg.contains("<rect"), "{svg}");
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = TestServer::start_with(config()).await.unwrap();
    let response = http().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn readyz_is_ready_with_rooms_in_memory_and_answers_any_host() {
    let server = TestServer::start_with(config()).await.unwrap();
    let response = http()
        .get(server.url("/readyz"))
        .header("host", "elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "ready": true }));
}

#[tokio::test]
async fn room_creation_is_rate_limited_per_client() {
    let server = TestServer::start_with(Config {
        create_rate_per_minute: 3,
        ..config()
    })
    .await
    .unwrap();
    for _ in 0..3 {
        assert_eq!(
            http()
                .post(server.url("/api/rooms"))
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
    }
    let response = http().post(server.url("/api/rooms")).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(api_error(response).await, ErrorCode::RateLimited);
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let response = http()
        .post(server.url("/api/rooms"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn trusted_proxies_decide_the_client_address_and_scheme() {
    let server = TestServer::start_with(Config {
        create_rate_per_minute: 1,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        // The name the proxy serves: a Host the server is told to answer.
        allowed_hosts: vec!["call.example.org".into()],
        ..config()
    })
    .await
    .unwrap();
    let create = |client: &'static str| {
        http()
            .post(server.url("/api/rooms"))
            .header("x-forwarded-for", client)
            .header("x-forwarded-proto", "https")
            .header("host", "call.example.org")
            .send()
    };
    let first = create("198.51.100.1").await.unwrap();
    assert_eq!(first.status(), 201);
    let room: CreatedRoom = first.json().await.unwrap();
    assert_eq!(
        room.url,
        format!("https://call.example.org/r/{}", room.token)
    );
    assert_eq!(create("198.51.100.1").await.unwrap().status(), 429);
    // Another client behind the same proxy has its own allowance.
    assert_eq!(create("198.51.100.2").await.unwrap().status(), 201);
}

#[tokio::test]
async fn public_url_is_the_base_of_links() {
    let server = TestServer::start_with(Config {
        public_url: Some("https://call.example.org/".into()),
        ..config()
    })
    .await
    .unwrap();
    let room = server.create_room().await.unwrap();
    assert_eq!(
        room.url,
        format!("https://call.example.org/r/{}", room.token)
    );
}

#[tokio::test(start_paused = true)]
async fn expired_rooms_are_gone() {
    let server = TestServer::start_with(Config {
        room: RoomConfig {
            ttl: Duration::from_secs(2),
            ..RoomConfig::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let room = server.create_room().await.unwrap();
    let info_url = server.url(&format!("/api/rooms/{}", room.token));
    assert_eq!(http().get(&info_url).send().await.unwrap().status(), 200);
    wait_until("the room expires", WAIT, || async {
        http().get(&info_url).send().await.unwrap().status() == 404
    })
    .await
    .unwrap();
    let qr = http()
        .get(format!("{info_url}/qr.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 404);
}

#[tokio::test]
async fn a_full_store_refuses_new_rooms_with_503() {
    let server = TestServer::start_with(Config {
        room: RoomConfig {
            max_rooms: 2,
            ..RoomConfig::default()
        },
        ..config()
    })
    .await
    .unwrap();
    server.create_room().await.unwrap();
    server.create_room().await.unwrap();
    let response = http().post(server.url("/api/rooms")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(api_error(response).await, ErrorCode::Unavailable);
}

#[tokio::test]
async fn pages_and_assets_are_served_with_strict_headers() {
    let server = TestServer::start_with(config()).await.unwrap();
    let room = server.create_room().await.unwrap();
    let index = include_str!("../assets/index.html");
    let mut versions = Vec::new();
    for path in [
        "/".to_owned(),
        format!("/r/{}", room.token),
        "/r/not-a-token".to_owned(),
    ] {
        let response = http().get(server.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(
            csp.contains(&format!(
                "connect-src 'self' ws://{0} wss://{0}",
                server.addr()
            )),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(
            headers["permissions-policy"],
            "camera=(self), microphone=(self)"
        );
        // The page names its files under this build's version.
        let page = response.text().await.unwrap();
        let version = page
            .split("\"/assets/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap()
            .to_owned();
        assert_eq!(version.len(), 16, "{version}");
        assert!(version.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            page,
            index.replace("\"/assets/", &format!("\"/assets/{version}/"))
        );
        versions.push(version);
    }
    versions.dedup();
    assert_eq!(versions.len(), 1, "one version: {versions:?}");
    let version = &versions[0];

    // Under the page's version the files may be kept for good; under any
    // other, they are today's files, revalidated.
    for name in ["app.js", "style.css"] {
        let kept = http()
            .get(server.url(&format!("/assets/{version}/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(kept.status(), 200);
        assert_eq!(
            kept.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let old = http()
            .get(server.url(&format!("/assets/0000000000000000/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(old.status(), 200);
        assert_eq!(old.headers()["cache-control"], "no-cache");
        assert_eq!(kept.bytes().await.unwrap(), old.bytes().await.unwrap());
    }

    for (name, content_type) in [
        ("index.html", "text/html; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("i18n.js", "text/javascript; charset=utf-8"),
        ("protocol.js", "text/javascript; charset=utf-8"),
        ("call.js", "text/javascript; charset=utf-8"),
        ("status.js", "text/javascript; charset=utf-8"),
        ("dom.js", "text/javascript; charset=utf-8"),
        ("home.js", "text/javascript; charset=utf-8"),
        ("room.js", "text/javascript; charset=utf-8"),
        ("debug.js", "text/javascript; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
    ] {
        let url = server.url(&format!("/assets/{name}"));
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.headers()["content-type"], content_type);
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let etag = response.headers()["etag"].clone();
        assert!(!response.bytes().await.unwrap().is_empty());
        let again = http()
            .get(&url)
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{name}");
    }

    for path in [
        "/assets/nope.js",
        "/assets/..%2FCargo.toml",
        "/assets/",
        "/nowhere",
    ] {
        assert_eq!(
            http().get(server.url(path)).send().await.unwrap().status(),
            404,
            "{path}"
        );
    }
}

#[tokio::test]
async fn run_returns_after_shutdown() {
    let server = TestServer::start_with(config()).await.unwrap();
    server.create_room().await.unwrap();
    server.shutdown().await.unwrap();
}
