//! What a picture costs to encode for each way of drawing it: the 640x480
//! test pattern as a kitty image, a sixel image, an iTerm2 PNG and a kitty
//! PNG through tmux's passthrough at the
//! pixel size of a typical picture area, and as half blocks into cells.
//! The screen encodes on its own thread; at 30 frames a second a picture
//! has 33 ms, and the aim is under 8 ms.
//!
//! Run with: cargo bench -p webcall-cli --bench pixels
//! or, without a release build of the dependencies:
//! cargo test --bench pixels --config 'profile.dev.package.webcall-cli.opt-level=2'

use std::time::{Duration, Instant};

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use webcall_cli::screen::ColorMode;
use webcall_cli::screen::pixels::{CellSize, Graphics, encode, pixel_size, scale};
use webcall_cli::screen::video::draw_frame;
use webcall_core::call::sources::TestPattern;
use webcall_core::media::VideoFrame;

/// CPU time the whole process has run (all threads, also those that have
/// ended, such as the sixel encoder's second thread), from Linux's
/// /proc/self/stat: user and system time in clock ticks, 100 a second on
/// every common build. None elsewhere.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Wall-clock and CPU time per call of `f`. On a busy machine the wall
/// clock also counts time spent waiting for a core; the CPU time does not.
fn time(iterations: u32, mut f: impl FnMut(usize)) -> (Duration, Option<Duration>) {
    // One untimed round warms caches and allocations.
    f(0);
    let (start, cpu) = (Instant::now(), process_cpu());
    for i in 0..iterations as usize {
        f(i);
    }
    let wall = start.elapsed() / iterations;
    let cpu = cpu.zip(process_cpu()).map(|(a, b)| (b - a) / iterations);
    (wall, cpu)
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

fn main() {
    let pattern = TestPattern::default();
    let frames: Vec<VideoFrame> = (0..8).map(|n| pattern.render(n, Duration::ZERO)).collect();
    // Enough frames that the 10 ms ticks of the CPU clock do not matter.
    let iterations = 200;
    // A 200x60 terminal with 10x20-pixel cells: the remote picture's area
    // holds 1160 pixels of height, more than the picture has, so it is sent
    // at 640x480; an 80x24 terminal of 8x16 cells gives about 469x348.
    for (label, area, cell) in [
        (
            "200x58 cells of 10x20 px",
            Rect::new(0, 0, 200, 58),
            CellSize {
                width: 10,
                height: 20,
            },
        ),
        (
            "80x22 cells of 8x16 px",
            Rect::new(0, 0, 80, 22),
            CellSize {
                width: 8,
                height: 16,
            },
        ),
    ] {
        let (w, h) = pixel_size(area, cell, 640, 480);
        println!("640x480 test pattern into {label} ({w}x{h} pixels), {iterations} frames each:");
        for graphics in [
            Graphics::Kitty,
            Graphics::Sixel,
            Graphics::Iterm2,
            Graphics::KittyTmux,
        ] {
            let mut bytes = 0;
            let (wall, cpu) = time(iterations, |i| {
                let out = encode(graphics, &frames[i % frames.len()], area, cell, 1, 0)
                    .expect("encodes")
                    .expect("an image");
                bytes = out.len();
            });
            println!(
                "  {:<12} {:>6.2} ms a frame ({:>6} ms of CPU), {:>5} KiB",
                graphics.name(),
                wall.as_secs_f64() * 1e3,
                ms(cpu),
                bytes / 1024
            );
        }
        let (wall, cpu) = time(iterations, |i| {
            std::hint::black_box(scale(&frames[i % frames.len()], w, h, 4));
        });
        println!(
            "  {:<12} {:>6.2} ms a frame ({:>6} ms of CPU): of which scaling to RGBA",
            "",
            wall.as_secs_f64() * 1e3,
            ms(cpu)
        );
        let mut buf = Buffer::empty(area);
        let (wall, cpu) = time(iterations, |i| {
            draw_frame(
                &mut buf,
                area,
                &frames[i % frames.len()],
                ColorMode::TrueColor,
            );
        });
        println!(
            "  {:<12} {:>6.2} ms a frame ({:>6} ms of CPU), into the cell buffer",
            "blocks",
            wall.as_secs_f64() * 1e3,
            ms(cpu)
        );
    }
}
