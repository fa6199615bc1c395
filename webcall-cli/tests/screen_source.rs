//! `webcall join --video screen` sends an X11 display: an Xvfb display of
//! the test's own shows a known picture (left half red, right half blue,
//! two windows of the test's), and the other side, a native peer on
//! 127.0.0.1, records what it decodes. Without a display, or with one
//! that is not there, joining fails with a message that says what to do.

mod cli_common;

use std::time::Duration;

use webcall_core::media::VideoFrame;
use webcall_testkit::{TestServer, Xvfb};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, CreateWindowAux, WindowClass};
use x11rb::rust_connection::RustConnection;

use cli_common::{finish, run, scratch, spawn, stats, webcall};

const LIMIT: Duration = Duration::from_secs(90);

/// Covers the display's two halves with a red and a blue window; the
/// windows last as long as the returned connection.
fn paint_halves(display: &str, width: u16, height: u16) -> RustConnection {
    let (conn, screen) = RustConnection::connect(Some(display)).expect("the test's display");
    let root = conn.setup().roots[screen].root;
    for (x, colour) in [(0, 0xff0000), (width / 2, 0x0000ff)] {
        let window = conn.generate_id().unwrap();
        conn.create_window(
            0,
            window,
            root,
            x as i16,
            0,
            width / 2,
            height,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(colour)
                .override_redirect(1),
        )
        .unwrap();
        conn.map_window(window).unwrap();
    }
    // A round trip: the server has mapped (and painted) both windows.
    conn.get_input_focus().unwrap().reply().unwrap();
    conn
}

/// The last picture of a 4:2:0 Y4M file of `width` x `height` pictures.
fn last_picture(path: &std::path::Path, width: u32, height: u32) -> VideoFrame {
    let bytes = std::fs::read(path).unwrap();
    let size = (width * height * 3 / 2) as usize;
    assert!(bytes.len() > size, "{} holds no picture", path.display());
    let data = bytes[bytes.len() - size..].to_vec();
    VideoFrame::from_i420(width, height, data, Duration::ZERO).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_of_an_x11_display_reaches_the_other_side() {
    if !Xvfb::installed() {
        eprintln!("SKIPPED: Xvfb not installed (Debian package xvfb); CI installs it");
        return;
    }
    let xvfb = Xvfb::start(500 + std::process::id() % 300, "640x480x24");
    let _windows = paint_halves(xvfb.display(), 640, 480);

    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let dir = scratch("screen-source");
    let (sent, received, y4m) = (
        dir.join("sender.json"),
        dir.join("receiver.json"),
        dir.join("receiver.y4m"),
    );
    let join = |video: &str, secs: &str, stats: &std::path::Path| {
        webcall(&[
            "join",
            &room.url,
            "--no-tui",
            "--video",
            video,
            "--audio",
            "none",
            "--speaker",
            "none",
            "--ice-addr",
            "127.0.0.1",
            "--duration",
            secs,
            "--stats-json",
            stats.to_str().unwrap(),
        ])
    };
    let mut receiver = join("none", "10", &received);
    receiver.args(["--record-video", y4m.to_str().unwrap()]);
    let receiver = spawn(receiver);
    let mut sender = join("screen", "12", &sent);
    sender.env("DISPLAY", xvfb.display());
    let sender = spawn(sender);
    let (r, s) =
        tokio::task::spawn_blocking(move || (finish(receiver, LIMIT), finish(sender, LIMIT)))
            .await
            .unwrap();
    assert!(r.success(), "{r:#?}");
    assert!(s.success(), "{s:#?}");

    let s = stats(&sent);
    assert!(s["sent"]["video_frames"].as_u64().unwrap() >= 20, "{s:#}");
    let r = stats(&received);
    let got = &r["received"];
    assert!(got["video_frames_decoded"].as_u64().unwrap() >= 20, "{r:#}");
    assert_eq!(
        (got["video_width"].as_u64(), got["video_height"].as_u64()),
        (Some(640), Some(480)),
        "{r:#}"
    );
    // What arrived is the display: red on the left, blue on the right.
    let picture = last_picture(&y4m, 640, 480);
    for (x, y) in [(40, 40), (160, 240), (280, 440)] {
        let [red, green, blue] = picture.rgb_at(x, y);
        assert!(
            red > 200 && green < 60 && blue < 60,
            "({x}, {y}) should be red: {:?}",
            picture.rgb_at(x, y)
        );
    }
    for (x, y) in [(360, 40), (480, 240), (600, 440)] {
        let [red, green, blue] = picture.rgb_at(x, y);
        assert!(
            red < 60 && green < 60 && blue > 200,
            "({x}, {y}) should be blue: {:?}",
            picture.rgb_at(x, y)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_display_the_screen_is_refused_with_what_to_do() {
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let args = [
        "join",
        &room.url,
        "--no-tui",
        "--video",
        "screen",
        "--audio",
        "none",
        "--duration",
        "5",
    ];
    let mut unset = webcall(&args);
    unset.env_remove("DISPLAY");
    let mut absent = webcall(&args);
    absent.env("DISPLAY", ":987");
    let (unset, absent) =
        tokio::task::spawn_blocking(move || (run(unset, LIMIT), run(absent, LIMIT)))
            .await
            .unwrap();
    assert!(!unset.success(), "{unset:#?}");
    assert!(
        unset.stderr.contains("DISPLAY is not set") && unset.stderr.contains("--video test"),
        "{}",
        unset.stderr
    );
    assert!(!absent.success(), "{absent:#?}");
    assert!(
        absent
            .stderr
            .contains("could not open the X11 display \":987\""),
        "{}",
        absent.stderr
    );
    // Neither joined: the room is still empty.
    let room_now = webcall_testkit::http::request(
        server.addr(),
        "GET",
        &format!("/api/rooms/{}", room.token),
        None,
    )
    .await
    .unwrap();
    assert_eq!(room_now.json().unwrap()["participants"], 0);
}
