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
