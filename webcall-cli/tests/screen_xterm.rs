//! The call screen drawing sixel in a real terminal: `webcall join
//! --render sixel` in xterm (as a VT340, which draws sixel) on a virtual X
//! display, in a call with a second native `webcall join --no-tui`, both
//! sending the test pattern, on 127.0.0.1. Screenshots of the display
//! (`xwd`, decoded here) must show the pattern's colour bars at pixel
//! resolution: the bars' colours, and edges between them that do not all
//! fall on the cell grid, as half blocks would draw them. `--render auto`
//! must find sixel by asking the terminal, and `--render blocks` must put
//! every edge on the grid (so the check can tell the two apart).
//!
//! Needs the Debian packages xterm, xvfb and x11-apps (CI installs them);
//! without them the test says so and passes.
//!
//! Run alone: `cargo test -p webcall-cli --test screen_xterm -- --nocapture`

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use webcall_testkit::{TestServer, Xvfb};

mod cli_common;
use cli_common::{Killed, pattern_peer};

const WAIT: Duration = Duration::from_secs(90);

/// The test pattern's bars as sent (RGB).
const BARS: [[u8; 3]; 8] = webcall_core::call::sources::TEST_PATTERN_BARS;

fn found(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// A screenshot: width, height and RGB pixels.
struct Shot {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

impl Shot {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }
}

/// Decodes an XWD file as `xwd` writes it for a 24-bit TrueColor display:
/// a big-endian header, colour entries, then 32-bit pixels.
fn decode_xwd(data: &[u8]) -> Result<Shot, String> {
    let field = |i: usize| -> Result<u32, String> {
        data.get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| "short XWD header".to_string())
    };
    let header_size = field(0)? as usize;
    let (width, height) = (field(4)? as usize, field(5)? as usize);
    let byte_order = field(7)?;
    let bits_per_pixel = field(11)?;
    let bytes_per_line = field(12)? as usize;
    let (red_mask, green_mask, blue_mask) = (field(14)?, field(15)?, field(16)?);
    let ncolors = field(19)? as usize;
    if bits_per_pixel != 32 {
        return Err(format!("{bits_per_pixel} bits a pixel: expected 32"));
    }
    let start = header_size + ncolors * 12;
    let need = start + bytes_per_line * height;
    if data.len() < need {
        return Err(format!("XWD of {} bytes, expected {need}", data.len()));
    }
    let channel = |p: u32, mask: u32| ((p & mask) >> mask.trailing_zeros()) as u8;
    let mut rgb = Vec::with_capacity(width * height);
    for y in 0..height {
        let row = &data[start + y * bytes_per_line..];
        for x in 0..width {
            let b = &row[x * 4..x * 4 + 4];
            let p = if byte_order == 0 {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            };
            rgb.push([
                channel(p, red_mask),
                channel(p, green_mask),
                channel(p, blue_mask),
            ]);
        }
    }
    Ok(Shot { width, height, rgb })
}

/// A screenshot of the whole display. With `WEBCALL_XTERM_SHOTS=DIR` set,
/// the XWD file is also kept there (as `<name>.xwd`) to look at.
fn screenshot(display: &str, name: &str) -> Result<Shot, String> {
    let out = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .output()
        .map_err(|e| format!("xwd: {e}"))?;
    if !out.status.success() {
        return Err(format!("xwd: {}", String::from_utf8_lossy(&out.stderr)));
    }
    if let Some(dir) = std::env::var_os("WEBCALL_XTERM_SHOTS") {
        let _ = std::fs::write(Path::new(&dir).join(format!("{name}.xwd")), &out.stdout);
    }
    decode_xwd(&out.stdout)
}

fn near(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (i32::from(*x) - i32::from(y)).abs() <= tolerance)
}

/// Which bar a colour is, if it is near one.
fn bar(c: [u8; 3]) -> Option<usize> {
    BARS.iter().position(|b| near(c, *b, 48))
}

/// Screen columns looked at: left of the self-view, which starts at cell
/// column 79 of the 100 (x 474 with 6-pixel cells).
const LEFT: usize = 420;

/// What one screen row shows: the bars seen and where the colour changes
/// from one bar to another (x of the first pixel of the new bar).
fn row_bars(shot: &Shot, y: usize) -> (Vec<usize>, Vec<usize>) {
    let mut seen = Vec::new();
    let mut edges = Vec::new();
    let mut last: Option<usize> = None;
    for x in 0..shot.width.min(LEFT) {
        let Some(b) = bar(shot.at(x, y)) else {
            continue;
        };
        if !seen.contains(&b) {
            seen.push(b);
        }
        if let Some(l) = last
            && l != b
            && x > 0
            && bar(shot.at(x - 1, y)) == Some(l)
        {
            edges.push(x);
        }
        last = Some(b);
    }
    (seen, edges)
}

/// The best row of a screenshot for the check: the most bars seen, among
/// rows of the picture alone (each bar once, side by side: one edge fewer
/// than bars). A row crossed by text (a notice, the status line) has
/// glyph pixels near bar colours, whose edges say nothing of the picture.
fn best_row(shot: &Shot) -> (usize, Vec<usize>, Vec<usize>) {
    (0..shot.height)
        .step_by(3)
        .map(|y| {
            let (seen, edges) = row_bars(shot, y);
            (y, seen, edges)
        })
        .filter(|(_, seen, edges)| edges.len() + 1 == seen.len())
        .max_by_key(|(_, seen, _)| seen.len())
        .unwrap_or((0, Vec::new(), Vec::new()))
}

/// What a row of the screen showed: its y, the bars seen, the edges.
type Look = (usize, Vec<usize>, Vec<usize>);

/// Runs `webcall join --render <render>` in xterm on a display of its own
/// in a call with a native peer, and waits for a screenshot whose best
/// row shows at least five bars and four edges between them.
async fn look_at(render: &str, number: u32) -> Look {
    let server = TestServer::start().await.unwrap();
    let room = server.create_room().await.unwrap();
    let webcall = env!("CARGO_BIN_EXE_webcall");

    let xvfb = Xvfb::start(number, "800x600x24");
    let display = xvfb.display();

    // The other side: the test pattern, no screen.
    let _peer = pattern_peer(&room.url, "none");

    // This side, in xterm as a VT340.
    let command = format!(
        "{webcall} join {} --render {render} --video test --audio none --speaker none \
         --ice-addr 127.0.0.1 --duration 300",
        room.url
    );
    let _xterm = Killed(
        Command::new("xterm")
            .args([
                "-display",
                display,
                "-ti",
                "vt340",
                "-xrm",
                "XTerm*decTerminalID: vt340",
                "-xrm",
                "XTerm*sixelScrolling: true",
                "-xrm",
                "XTerm*numColorRegisters: 256",
                "-geometry",
                "100x36+0+0",
                "-bg",
                "black",
                "-fg",
                "white",
                "-e",
                "sh",
                "-c",
                &command,
            ])
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "")
            .env("COLORTERM", "truecolor")
            .env("RUST_LOG", "warn")
            .env_remove("TMUX")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("xterm starts"),
    );

    let start = Instant::now();
    loop {
        let last = match screenshot(display, render) {
            Ok(shot) => {
                let look = best_row(&shot);
                if look.1.len() >= 5 && look.2.len() >= 4 {
                    return look;
                }
                format!("{look:?}")
            }
            Err(e) => e,
        };
        assert!(
            start.elapsed() < WAIT,
            "xterm never showed the pattern with --render {render}; last look: {last}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The columns of xterm's default font's cell grid (6 pixels wide) that
/// the edges fall on.
fn grid_columns(edges: &[usize]) -> Vec<usize> {
    let mut columns: Vec<usize> = edges.iter().map(|x| x % 6).collect();
    columns.sort_unstable();
    columns.dedup();
    columns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xterm_shows_the_other_side_in_sixel_at_pixel_resolution() {
    let missing: Vec<&str> = ["xterm", "Xvfb", "xwd"]
        .into_iter()
        .filter(|p| !found(p))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "SKIPPED: {} not installed (Debian packages xterm, xvfb, x11-apps); CI installs them",
            missing.join(", ")
        );
        return;
    }
    let number = 40 + std::process::id() % 400;
    // Sixel: the bars' edges fall anywhere, not on the cell grid.
    let (y, seen, edges) = look_at("sixel", number).await;
    let columns = grid_columns(&edges);
    eprintln!("sixel: row {y}: bars {seen:?}, edges at {edges:?}, grid columns {columns:?}");
    assert!(
        columns.len() >= 2,
        "sixel edges all on one grid column: {edges:?}"
    );
    // Left to itself, the screen asks the terminal: a VT340 lists sixel.
    let (y, seen, edges) = look_at("auto", number + 1).await;
    let columns = grid_columns(&edges);
    eprintln!("auto: row {y}: bars {seen:?}, edges at {edges:?}, grid columns {columns:?}");
    assert!(
        columns.len() >= 2,
        "auto did not pick sixel in a VT340 xterm: edges {edges:?}"
    );
    // The same look at half blocks finds every edge on the grid: the check
    // above tells pixels from cells.
    let (y, seen, edges) = look_at("blocks", number + 2).await;
    let columns = grid_columns(&edges);
    eprintln!("blocks: row {y}: bars {seen:?}, edges at {edges:?}, grid columns {columns:?}");
    assert_eq!(
        columns.len(),
        1,
        "half-block edges off the cell grid: {edges:?}"
    );
}

#[test]
fn the_xwd_decoder_reads_a_small_picture() {
    // A 2x1 picture: red, blue, little-endian 32-bit pixels.
    let mut data = Vec::new();
    let header = 100u32;
    let mut fields = [0u32; 25];
    fields[0] = header;
    fields[4] = 2;
    fields[5] = 1;
    fields[7] = 0;
    fields[11] = 32;
    fields[12] = 8;
    fields[14] = 0xff0000;
    fields[15] = 0x00ff00;
    fields[16] = 0x0000ff;
    for f in fields {
        data.extend_from_slice(&f.to_be_bytes());
    }
    data.extend_from_slice(&0x00ff0000u32.to_le_bytes());
    data.extend_from_slice(&0x000000ffu32.to_le_bytes());
    let shot = decode_xwd(&data).unwrap();
    assert_eq!((shot.width, shot.height), (2, 1));
    assert_eq!(shot.at(0, 0), [255, 0, 0]);
    assert_eq!(shot.at(1, 0), [0, 0, 255]);
}
