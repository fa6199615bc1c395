//! What drawing the call screen costs: one 640x480 picture into a 200x60
//! terminal, in true colour and in 256 colours, both into ratatui's buffer
//! alone and through the whole terminal path (diff and escape codes).
//!
//! Run with: cargo test -p webcall-cli --bench draw
//! The dev profile leaves this crate (and ratatui code generic over its
//! backend) unoptimised; for optimised figures without a release build add
//! `--config 'profile.dev.package.webcall-cli.opt-level=2'`, or run
//! `cargo bench -p webcall-cli --bench draw`.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use webcall_cli::screen::render::render_to_buffer;
use webcall_cli::screen::{ColorMode, Connection, Lang, ScreenState, render};
use webcall_core::media::{VideoFrame, rgb_to_yuv};

/// A moving colour pattern, so consecutive frames differ like video.
fn pattern(width: u32, height: u32, t: u32) -> VideoFrame {
    let (w, h) = (width as usize, height as usize);
    let mut data = vec![0u8; w * h * 3 / 2];
    let rgb = |x: usize, y: usize| {
        let x = (x + t as usize * 4) % w;
        [
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x + y) % 256) as u8,
        ]
    };
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = rgb(x, y);
            data[y * w + x] = rgb_to_yuv(r, g, b)[0];
        }
    }
    for cy in 0..h / 2 {
        for cx in 0..w / 2 {
            let [r, g, b] = rgb(cx * 2, cy * 2);
            let [_, u, v] = rgb_to_yuv(r, g, b);
            data[w * h + cy * (w / 2) + cx] = u;
            data[w * h + w * h / 4 + cy * (w / 2) + cx] = v;
        }
    }
    VideoFrame::from_i420(width, height, data, Duration::ZERO).unwrap()
}

/// Counts bytes written, like a terminal would receive them.
struct Counter(Arc<AtomicU64>);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn state(color: ColorMode) -> ScreenState {
    let mut s = ScreenState::new(color, Lang::En);
    s.connection = Connection::Connected;
    s.peer_present = true;
    s.rtt = Some(Duration::from_millis(3));
    s.bitrate_in = Some(1_200_000);
    s.frame_rate = Some(30.0);
    s
}

fn main() {
    let frames: Vec<VideoFrame> = (0..8).map(|t| pattern(640, 480, t)).collect();
    let small = pattern(320, 240, 0);
    let area = Rect::new(0, 0, 200, 60);
    let iterations = 200;
    println!("drawing a 640x480 picture at 200x60 cells ({iterations} frames each)");
    for (label, mode) in [
        ("true colour", ColorMode::TrueColor),
        ("256 colours", ColorMode::Palette256),
    ] {
        let mut s = state(mode);
        s.self_view = Some(small.clone());
        // Into the buffer only: sampling, colour mapping, layout.
        let mut buf = Buffer::empty(area);
        let start = Instant::now();
        for i in 0..iterations {
            s.remote = Some(frames[i % frames.len()].clone());
            buf.reset();
            render_to_buffer(&mut buf, area, &s);
        }
        let per_buffer = start.elapsed() / iterations as u32;

        // The whole terminal path: buffer, diff against the last frame, escapes.
        let written = Arc::new(AtomicU64::new(0));
        let backend = CrosstermBackend::new(Counter(written.clone()));
        let mut terminal = Terminal::with_options(
            backend,
            ratatui::TerminalOptions {
                viewport: ratatui::Viewport::Fixed(area),
            },
        )
        .unwrap();
        let start = Instant::now();
        for i in 0..iterations {
            s.remote = Some(frames[i % frames.len()].clone());
            terminal.draw(|f| render(f, &s)).unwrap();
        }
        let per_frame = start.elapsed() / iterations as u32;
        let bytes = written.load(Ordering::Relaxed) / iterations as u64;
        println!(
            "  {label:<12} buffer only {:>6.2} ms   whole terminal path {:>6.2} ms   {:>4} KiB of output per frame",
            per_buffer.as_secs_f64() * 1e3,
            per_frame.as_secs_f64() * 1e3,
            bytes / 1024
        );
    }
}
