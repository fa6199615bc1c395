//! kitty pictures inside tmux for real: `webcall join` in a tmux pane with
//! `allow-passthrough on`, in a call with a second native `webcall join
//! --no-tui` (the test pattern), both on 127.0.0.1. tmux keeps only text,
//! so what the pane holds is the proof: the picture's cells are kitty's
//! Unicode placeholders (U+10EEEE, row and column marked), and the raw
//! output (`tmux pipe-pane`) holds the image sent through the passthrough.
//! After `q` no placeholder is left and the images were deleted; when the
//! program panics mid-picture, the images are deleted and the terminal
//! given back before the panic message; SIGTERM hangs up as `q` does.
//! With the passthrough off, the screen draws half blocks and says what to
//! set.
//!
//! Run alone: `cargo test -p webcall-cli --test screen_kitty_tmux -- --nocapture`

use std::process::Command;
use std::time::{Duration, Instant};

use webcall_cli::screen::tmux::{self as placeholders, DIACRITICS, PLACEHOLDER, TmuxInfo};
use webcall_testkit::{TestServer, Tmux};

mod cli_common;
use cli_common::pattern_peer;

const WAIT: Duration = Duration::from_secs(60);

/// Two peers with video fill two cores: one call at a time.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `webcall join` for the pane, with `env` before it; the shell stays
/// after it exits, saying how.
fn screen_command(url: &str, env: &str, render: &str) -> String {
    format!(
        "env LANG=C.UTF-8 LC_ALL= RUST_LOG=warn {env} {} join {url} --render {render} \
         --video test --audio none --speaker none --ice-addr 127.0.0.1 --duration 300; \
         echo \"webcall exited with $?\"; sleep 600",
        env!("CARGO_BIN_EXE_webcall"),
    )
}

fn placeholder_count(pane: &str) -> usize {
    pane.matches(PLACEHOLDER).count()
}

/// The (row, column) marks of each placeholder cell on a line of the pane.
fn marks(line: &str) -> Vec<(usize, usize)> {
    let index = |c: char| DIACRITICS.iter().position(|d| *d == c);
    let chars: Vec<char> = line.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == PLACEHOLDER)
        .filter_map(|(i, _)| Some((index(*chars.get(i + 1)?)?, index(*chars.get(i + 2)?)?)))
        .collect()
}

/// The image ids of the pictures sent through the passthrough, in order,
/// each once.
fn sent_ids(raw: &str) -> Vec<u32> {
    let mut ids: Vec<u32> = raw
        .split("\x1b\x1b_Ga=T,U=1,")
        .skip(1)
        .filter_map(|keys| {
            let keys = keys.split(';').next()?;
            keys.split(',')
                .find_map(|k| k.strip_prefix("i=")?.parse().ok())
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The pair of ids a process uses inside tmux, from one of them: the
/// remote picture's is even, the self-view's the next.
fn pair(id: u32) -> [u32; 2] {
    [id & !1, (id & !1) + 1]
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kitty_pictures_in_tmux_are_placeholder_cells_and_leave_nothing_behind() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let _peer = pattern_peer(&room.url, "none");
    let tmux = Tmux::new("kitty-placeholders", "set -g allow-passthrough on\n");
    // What a kitty window gives the tmux server started in it.
    tmux.start_recorded(
        120,
        40,
        &screen_command(&room.url, "KITTY_WINDOW_ID=1", "auto"),
    );

    let pane = tmux
        .wait_for("the picture as placeholder cells", WAIT, |p| {
            p.contains("connected")
                && p.lines().filter(|l| !marks(l).is_empty()).count() >= 20
                && placeholder_count(p) > 1000
        })
        .await;
    // Each row of the picture: its row mark, columns counting up from 0.
    let rows: Vec<Vec<(usize, usize)>> =
        pane.lines().map(marks).filter(|m| !m.is_empty()).collect();

    let top = &rows[0];
    assert!(top.len() >= 20, "the top row is wide: {top:?}");
    for (column, (row, col)) in top.iter().enumerate() {
        assert_eq!((*row, *col), (0, column), "top row, left to right");
    }
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, r)| r.iter().all(|(row, _)| *row == i) || i + 16 >= rows.len()),
        "rows counted top down (the self-view's rows at the bottom aside)"
    );
    // The image went through the passthrough as a virtual placement.
    let raw = tmux.raw();
    let sent = "\x1bPtmux;\x1b\x1b_Ga=T,U=1,f=100,";
    assert!(raw.contains(sent), "no image through the passthrough");
    let ids = sent_ids(&raw);
    // The remote picture and (once it is drawn) the self-view: one pair.
    assert!(!ids.is_empty() && ids.len() <= 2, "{ids:?}");
    let [remote_id, self_id] = pair(ids[0]);
    assert!(
        ids.iter().all(|id| [remote_id, self_id].contains(id)),
        "{ids:?}"
    );
    assert!(
        (16..=255).contains(&remote_id) && (16..=255).contains(&self_id),
        "ids a 256-colour index names: {ids:?}"
    );
    // The details open over the picture as text, the count of pictures
    // skipped among them; the picture's other cells stay placeholders.
    let out = tmux.run(&["send-keys", "-t", "call", "i"]);
    assert!(out.status.success());
    let pane = tmux
        .wait_for("the details over the picture", WAIT, |p| {
            p.contains("pictures skipped") && placeholder_count(p) > 300
        })
        .await;
    let raw = tmux.raw();
    eprintln!(
        "kitty in tmux: {} pictures sent through the passthrough, {} KiB written",
        raw.matches(sent).count(),
        raw.len() / 1024
    );
    let skipped = pane
        .lines()
        .find_map(|l| l.split("pictures skipped").nth(1))
        .unwrap();
    eprintln!(
        "pictures skipped in tmux: {}",
        skipped.trim_matches(|c: char| !c.is_ascii_digit())
    );
    // A smaller window: the image is deleted and sent again for its new
    // cells, and the placeholders follow (tmux moved none of the old ones).
    let before = tmux.raw().len();
    let out = tmux.run(&["resize-window", "-t", "call", "-x", "90", "-y", "30"]);
    assert!(out.status.success());
    let delete = text(&placeholders::delete(remote_id));
    let start = Instant::now();
    loop {
        let raw = tmux.raw();
        let again = raw[before..]
            .find(&delete)
            .is_some_and(|d| raw[before + d..].contains(sent));
        let pane = tmux.visible();
        let rows: Vec<Vec<(usize, usize)>> = pane.lines().map(marks).collect();
        let fits = rows.iter().all(|r| r.iter().all(|(_, c)| *c < 90))
            && rows.iter().filter(|r| !r.is_empty()).count() >= 10;
        if again && fits && placeholder_count(&pane) > 300 {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "the picture never followed the resize (sent again: {again}); pane:\n{pane}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = tmux.run(&["send-keys", "-t", "call", "q"]);
    assert!(out.status.success());
    let pane = tmux
        .wait_for("webcall exiting", WAIT, |p| {
            p.contains("webcall exited with")
        })
        .await;
    assert!(pane.contains("webcall exited with 0"), "{pane}");
    assert_eq!(
        placeholder_count(&pane),
        0,
        "no placeholder is left:\n{pane}"
    );
    // Both images were deleted on the way out, after the last one was sent.
    let raw = tmux.raw();
    let last_sent = raw.rfind(sent).unwrap();
    for id in [remote_id, self_id] {
        let delete = text(&placeholders::delete(id));
        let at = raw
            .rfind(&delete)
            .expect("the image deleted on the way out");
        assert!(at > last_sent, "image {id} deleted after the last picture");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_mid_picture_deletes_the_images_and_restores_the_terminal_first() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let _peer = pattern_peer(&room.url, "none");
    let tmux = Tmux::new("kitty-panic", "set -g allow-passthrough on\n");
    tmux.start_recorded(
        120,
        40,
        &screen_command(
            &room.url,
            "RUST_BACKTRACE=0 WEBCALL_TEST_PANIC_AFTER_PICTURE=1",
            "kitty",
        ),
    );
    let pane = tmux
        .wait_for("webcall exiting after the panic", WAIT, |p| {
            p.contains("webcall exited with")
        })
        .await;
    assert!(!pane.contains("webcall exited with 0"), "{pane}");
    assert!(pane.contains("panicking after drawing a picture"), "{pane}");
    assert_eq!(placeholder_count(&pane), 0, "{pane}");
    let raw = tmux.raw();
    let sent = raw
        .rfind("\x1bPtmux;\x1b\x1b_Ga=T,U=1,")
        .expect("a picture was sent before the panic");
    // The hook: the open synchronized update ended, the images deleted,
    // then the alternate screen left, then the message.
    let hook = raw[sent..].find("\x1b[?2026l").expect("the update ended") + sent;
    let ids = sent_ids(&raw);
    assert!(!ids.is_empty());
    let deletes: Vec<usize> = pair(ids[0])
        .iter()
        .map(|id| {
            raw[hook..]
                .find(&text(&placeholders::delete(*id)))
                .expect("each image deleted in the panic hook")
                + hook
        })
        .collect();
    let left = raw[hook..]
        .find("\x1b[?1049l")
        .expect("the alternate screen left")
        + hook;
    let message = raw.find("panicking after drawing a picture").unwrap();
    for d in deletes {
        assert!(d < left, "images deleted before the screen is given back");
    }
    assert!(left < message, "the terminal restored before the message");
    let after = &raw[message..];
    assert!(
        !after.contains("\x1bPtmux;") && !after.contains("\x1b[?1049"),
        "nothing for the screen after the message: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hangs_up_and_deletes_the_images() {
    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let _peer = pattern_peer(&room.url, "none");
    let tmux = Tmux::new("kitty-sigterm", "set -g allow-passthrough on\n");
    tmux.start_recorded(120, 40, &screen_command(&room.url, "", "kitty"));
    tmux.wait_for("the picture", WAIT, |p| placeholder_count(p) > 500)
        .await;
    let pid = tmux.child_pid().expect("the webcall process");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let pane = tmux
        .wait_for("webcall exiting after SIGTERM", WAIT, |p| {
            p.contains("webcall exited with")
        })
        .await;
    assert!(pane.contains("webcall exited with 0"), "{pane}");
    assert_eq!(placeholder_count(&pane), 0, "{pane}");
    let raw = tmux.raw();
    let ids = sent_ids(&raw);
    let last_sent = raw.rfind("\x1b\x1b_Ga=T,U=1,").unwrap();
    for id in pair(ids[0]) {
        let delete = text(&placeholders::delete(id));
        let at = raw.rfind(&delete).expect("the image deleted");
        assert!(at > last_sent, "image {id} deleted after the last picture");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_passthrough_kitty_in_tmux_is_half_blocks_and_says_why() {
    let tmux = Tmux::new("kitty-closed", "");
    // tmux says whether it lets the passthrough through.
    let out = tmux.run(&["new-session", "-d", "-s", "probe", "sleep 60"]);
    assert!(out.status.success());
    let info = TmuxInfo::ask_at(Some(tmux.socket()), Some("probe"));
    assert!(!info.passthrough, "{info:?}");
    let out = tmux.run(&["set", "-g", "allow-passthrough", "on"]);
    assert!(out.status.success());
    assert!(TmuxInfo::ask_at(Some(tmux.socket()), Some("probe")).passthrough);
    let out = tmux.run(&["set", "-g", "allow-passthrough", "off"]);
    assert!(out.status.success());

    let _heavy = HEAVY.lock().await;
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let _peer = pattern_peer(&room.url, "none");
    tmux.start_recorded(120, 40, &screen_command(&room.url, "", "kitty"));
    let pane = tmux
        .wait_for("half blocks and the reason", WAIT, |p| {
            p.contains("allow-passthrough on") && p.matches('▀').count() > 500
        })
        .await;
    assert_eq!(placeholder_count(&pane), 0);
    assert!(!tmux.raw().contains("\x1bPtmux;"), "nothing sent through");
    let out = tmux.run(&["send-keys", "-t", "call", "q"]);
    assert!(out.status.success());
    let pane = tmux
        .wait_for("webcall exiting", WAIT, |p| {
            p.contains("webcall exited with")
        })
        .await;
    assert!(pane.contains("webcall exited with 0"), "{pane}");
}
