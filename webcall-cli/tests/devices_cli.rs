//! `webcall devices` and the device flags of `webcall join`, run as the
//! real binary.

use std::process::Command;

use webcall_cli::devices::{NO_CAMERA, camera::list_cameras};
use webcall_testkit::TestServer;

fn webcall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_webcall"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("WEBCALL_SERVER")
        .output()
        .expect("the webcall binary runs")
}

#[test]
fn devices_json_lists_cameras_microphones_and_speakers() {
    let out = webcall(&["devices", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("`webcall devices --json` prints JSON");
    for key in ["cameras", "microphones", "speakers", "problems"] {
        assert!(json[key].is_array(), "{key} missing: {json}");
    }
    // The binary sees the same cameras as the library.
    assert_eq!(
        json["cameras"].as_array().unwrap().len(),
        list_cameras().unwrap().len()
    );
    for mic in json["microphones"].as_array().unwrap() {
        assert!(mic["name"].is_string() && mic["sample_rate"].as_u64().unwrap() > 0);
    }
}

#[test]
fn devices_text_says_what_to_do_without_a_camera() {
    let out = webcall(&["devices"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for heading in ["cameras:", "microphones:", "speakers:"] {
        assert!(text.contains(heading), "{text}");
    }
    if list_cameras().unwrap().is_empty() {
        assert!(text.contains(NO_CAMERA), "{text}");
    }
}

#[tokio::test]
async fn joining_with_the_camera_where_there_is_none_fails_clearly() {
    if !list_cameras().unwrap().is_empty() {
        // A machine with a camera: nothing to check here.
        return;
    }
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let url = room.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        webcall(&[
            "join", &url, "--video", "camera", "--audio", "none", "--no-tui",
        ])
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(NO_CAMERA), "{stderr}");
    // Nothing joined: the room is still empty.
    let info = server
        .request("GET", &format!("/api/rooms/{}", room.token), None)
        .await
        .unwrap();
    assert_eq!(info.status, 200, "{}", info.text());
    let body = info.json().unwrap();
    assert_eq!(body["participants"], 0, "{body}");
}

/// `webcall test` against a real server with the built-in TURN: the
/// server, the room, STUN and TURN over UDP work; TURN over TCP is said to
/// be for browsers; without devices here, those fail with their advice,
/// and the exit code says something failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webcall_test_checks_the_server_its_turn_and_the_devices() {
    let mut config = TestServer::test_config();
    config.turn = Some(TestServer::turn_config(true));
    let server = TestServer::start_with(config).await.unwrap();
    let base = server.base_url();
    let out = tokio::task::spawn_blocking(move || {
        webcall(&[
            "test",
            "--server",
            &base,
            "--json",
            "--ice-addr",
            "127.0.0.1",
        ])
    })
    .await
    .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "JSON on stdout ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let verdict = |prefix: &str| -> Vec<String> {
        json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with(prefix))
            .map(|c| c["verdict"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(verdict("server"), ["works"], "{json}");
    assert_eq!(verdict("room"), ["works"], "{json}");
    assert_eq!(verdict("stun:"), ["works"], "{json}");
    let turn: Vec<(String, String)> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("turn:"))
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        turn.iter()
            .any(|(n, v)| n.ends_with("transport=udp") && v == "works"),
        "{json}"
    );
    assert!(
        turn.iter()
            .any(|(n, v)| n.ends_with("transport=tcp") && v == "not_checked"),
        "{json}"
    );
    let no_camera = list_cameras().unwrap().is_empty();
    if no_camera {
        assert_eq!(verdict("camera"), ["fails"], "{json}");
        assert!(json.to_string().contains("no camera found"), "{json}");
    }
    let all_work = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["verdict"] != "fails");
    assert_eq!(json["ok"], all_work, "{json}");
    assert_eq!(out.status.success(), all_work, "the exit code says it");

    // A server that is gone: the first check fails and says so.
    let dead = server.base_url();
    server.shutdown().await.unwrap();
    let out = tokio::task::spawn_blocking(move || {
        webcall(&["test", "--server", &dead, "--json", "--no-devices"])
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["checks"][0]["verdict"], "fails", "{json}");
}
