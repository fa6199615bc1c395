//! Drawing the pictures as terminal images: an encoder thread, fed by a
//! one-slot queue, turns pictures into escape sequences off the screen's
//! loop; the loop writes each result inside one synchronized update with
//! the cells around it, and cleans up images whose place went away.
//!
//! Pictures are dropped, not queued, when the terminal or the encoder falls
//! behind: a newer picture replaces one still waiting, and the screen counts
//! it ([`super::ScreenState::dropped_frames`]).
//!
//! Stray images: kitty images are deleted by id when their place changes,
//! on a resize and on the way out ([`super::pixels::kitty_cleanup`], also in
//! the panic hook of [`super::terminal`]); sixel and iTerm2 pixels are
//! overwritten by writing the cells they covered again, and go with the
//! cleared screen on a resize. Inside tmux ([`Graphics::KittyTmux`]) the
//! images are sent through tmux's passthrough and the painter writes their
//! placeholder cells into the screen's cells, so tmux moves and clears
//! them as text; they are deleted through the passthrough the same ways.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use tokio::sync::mpsc;
use webcall_core::media::VideoFrame;

use super::pixels::{CellSize, Graphics, SYNC_BEGIN, SYNC_END, encode, kitty_delete};
use super::render::{PictureAreas, picture_areas, render};
use super::state::ScreenState;

/// The kitty image id of the remote picture (inside tmux:
/// [`super::tmux::image_ids`]).
pub const REMOTE_IMAGE_ID: u32 = 1;
/// The kitty image id of the self-view (inside tmux: [`super::tmux::image_ids`]).
pub const SELF_IMAGE_ID: u32 = 2;

/// Which picture: the remote one (index 0) or the self-view (index 1).
const IDS: [u32; 2] = [REMOTE_IMAGE_ID, SELF_IMAGE_ID];
/// kitty stacking: both under text and under cells with a background
/// colour of their own (kitty puts images below `i32::MIN / 2` there), so
/// chat lines and labels show as on any other screen; the self-view over
/// the remote picture.
const Z: [i32; 2] = [i32::MIN / 2 - 2, i32::MIN / 2 - 1];

/// One picture to encode.
#[derive(Debug)]
struct Work {
    frame: VideoFrame,
    area: Rect,
}

/// What the encoder thread gets: up to one picture of each kind.
#[derive(Debug)]
struct Job {
    pictures: [Option<Work>; 2],
    cell: CellSize,
}

impl Job {
    fn frames(&self) -> u64 {
        self.pictures.iter().flatten().count() as u64
    }
}

/// What the encoder thread gives back: the escape sequences of up to one
/// picture of each kind, with the cells they were made for.
#[derive(Debug)]
pub struct Encoded {
    pictures: [Option<(Rect, Vec<u8>)>; 2],
}

/// Pictures as terminal images for one screen.
pub struct Painter {
    graphics: Graphics,
    /// The kitty image ids of the remote picture and the self-view.
    ids: [u32; 2],
    /// Ask the terminal for its cell size again on a resize.
    track_cells: bool,
    out: Box<dyn Write + Send>,
    jobs: Option<SyncSender<Job>>,
    results: mpsc::Receiver<Encoded>,
    /// A job the encoder could not take yet; a newer one replaces it.
    waiting: Option<Job>,
    cell: CellSize,
    /// The cells each image was last drawn in, and its bytes (sixel and
    /// iTerm2 images are drawn again when one overwrites the other).
    shown: [Option<(Rect, Vec<u8>)>; 2],
    /// Where the pictures were at the last draw of the cells.
    areas: PictureAreas,
    /// The place each picture was last sent to the encoder for, until drawn.
    asked: [Option<Rect>; 2],
    encoder: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Painter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Painter")
            .field("graphics", &self.graphics)
            .field("cell", &self.cell)
            .field("areas", &self.areas)
            .finish_non_exhaustive()
    }
}

impl Painter {
    /// A painter for `graphics` (not [`Graphics::Blocks`]) writing to `out`
    /// (the terminal: standard output), with cells of `cell` pixels.
    /// Starts the encoder thread.
    pub fn new(graphics: Graphics, out: Box<dyn Write + Send>, cell: CellSize) -> Self {
        let (job_tx, job_rx) = sync_channel::<Job>(1);
        let (result_tx, results) = mpsc::channel(1);
        let ids = match graphics {
            Graphics::KittyTmux => super::tmux::image_ids(std::process::id()),
            _ => IDS,
        };
        let encoder = std::thread::Builder::new()
            .name("picture-encoder".into())
            .spawn(move || encode_loop(graphics, ids, job_rx, result_tx))
            .expect("spawning a thread");
        Self {
            graphics,
            ids,
            track_cells: false,
            out,
            jobs: Some(job_tx),
            results,
            waiting: None,
            cell,
            shown: [None, None],
            areas: PictureAreas::default(),
            asked: [None, None],
            encoder: Some(encoder),
        }
    }

    /// How pictures are drawn.
    pub fn graphics(&self) -> Graphics {
        self.graphics
    }

    /// The bytes that remove every image this painter may have left: what
    /// the terminal's restore path writes (kitty images are deleted; sixel
    /// and iTerm2 pixels go with the alternate screen).
    /// It also ends a synchronized update a panic may have left open.
    pub fn cleanup(graphics: Graphics) -> Vec<u8> {
        let mut out = Vec::new();
        if graphics.is_pixels() {
            out.extend_from_slice(SYNC_END);
        }
        match graphics {
            Graphics::Kitty => out.extend_from_slice(&super::pixels::kitty_cleanup()),
            Graphics::KittyTmux => out.extend_from_slice(&super::pixels::kitty_tmux_cleanup()),
            _ => {}
        }
        out
    }

    /// Deletes kitty image `id` (through tmux's passthrough inside tmux).
    fn delete(&mut self, id: u32) -> io::Result<()> {
        match self.graphics {
            Graphics::Kitty => self.out.write_all(&kitty_delete(id)),
            Graphics::KittyTmux => self.out.write_all(&super::tmux::delete(id)),
            _ => Ok(()),
        }
    }

    /// Hands the pictures in `state` that are `fresh` (remote, self-view)
    /// to the encoder, for the cells they take in a screen of `size`. When
    /// the encoder is busy the job waits in its one slot, and a job already
    /// waiting there is dropped and its pictures counted in `state`.
    pub fn submit(&mut self, state: &mut ScreenState, size: Rect, fresh: [bool; 2]) {
        let areas = picture_areas(size, state);
        let pick = |frame: Option<&VideoFrame>, area: Option<Rect>, fresh: bool| match (frame, area)
        {
            (Some(f), Some(a)) if fresh => Some(Work {
                frame: f.clone(),
                area: a,
            }),
            _ => None,
        };
        let job = Job {
            pictures: [
                pick(state.main_picture(), areas.remote, fresh[0]),
                pick(state.self_view.as_ref(), areas.self_view, fresh[1]),
            ],
            cell: self.cell,
        };
        if job.frames() == 0 {
            return;
        }
        for (asked, work) in self.asked.iter_mut().zip(&job.pictures) {
            if let Some(w) = work {
                *asked = Some(w.area);
            }
        }
        if let Some(mut old) = self.waiting.take() {
            // Keep a picture the new job does not replace; count the ones it does.
            let mut merged = job;
            for (new, old) in merged.pictures.iter_mut().zip(old.pictures.iter_mut()) {
                if new.is_none() {
                    *new = old.take();
                }
            }
            state.count_dropped(old.frames());
            self.waiting = Some(merged);
        } else {
            self.waiting = Some(job);
        }
        self.push();
    }

    /// Gives the waiting job to the encoder if it has room.
    fn push(&mut self) {
        let (Some(jobs), Some(job)) = (&self.jobs, self.waiting.take()) else {
            return;
        };
        match jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) => self.waiting = Some(job),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// The next encoded pictures (pending forever once the encoder is gone).
    pub async fn next(&mut self) -> Encoded {
        match self.results.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// Draws at the cell size the terminal reports after each resize (the
    /// font may have changed with the size), when it reports one: for a
    /// painter on the real terminal.
    pub fn track_terminal_cells(&mut self) {
        self.track_cells = true;
    }

    /// Forgets every image (after a resize cleared the screen): kitty
    /// images are deleted; all are drawn again at the next [`draw`](Self::draw),
    /// at the terminal's cell size now if [`track_terminal_cells`](Self::track_terminal_cells).
    pub fn invalidate(&mut self) -> io::Result<()> {
        if self.track_cells
            && let Some(cell) = CellSize::reported()
        {
            self.cell = cell;
        }
        for id in self.ids {
            self.delete(id)?;
        }
        self.shown = [None, None];
        self.asked = [None, None];
        self.areas = PictureAreas::default();
        Ok(())
    }

    /// True when the pictures of `state` in a screen of `size` are not
    /// where the cells were last drawn: the cells need drawing.
    pub fn layout_changed(&self, size: Rect, state: &ScreenState) -> bool {
        picture_areas(size, state) != self.areas
    }

    /// Draws the screen's cells and `encoded` pictures (if any) as one
    /// synchronized update: the cells, then the images where their cells
    /// still are, then the cells drawn over images (chat, labels) again.
    /// When a picture's place changed its old image is removed and the
    /// picture sent to the encoder again.
    pub fn draw<B>(
        &mut self,
        terminal: &mut Terminal<B>,
        state: &mut ScreenState,
        encoded: Option<Encoded>,
    ) -> io::Result<()>
    where
        B: Backend,
        B::Error: Send + Sync + 'static,
    {
        self.out.write_all(SYNC_BEGIN)?;
        self.out.flush()?;
        let result = self.draw_inner(terminal, state, encoded);
        // End the update even when drawing failed, or the terminal freezes.
        self.out.write_all(SYNC_END)?;
        self.out.flush()?;
        result
    }

    fn draw_inner<B>(
        &mut self,
        terminal: &mut Terminal<B>,
        state: &mut ScreenState,
        encoded: Option<Encoded>,
    ) -> io::Result<()>
    where
        B: Backend,
        B::Error: Send + Sync + 'static,
    {
        if self.graphics == Graphics::KittyTmux {
            return self.draw_placeholders(terminal, state, encoded);
        }
        let cells: Buffer = terminal
            .draw(|f| render(f, state))
            .map_err(io::Error::other)?
            .buffer
            .clone();
        let size = cells.area;
        let areas = picture_areas(size, state);
        self.areas = areas;
        let now = [areas.remote, areas.self_view];
        // Pictures whose place changed: remove the old image.
        for (i, shown) in self.shown.iter_mut().enumerate() {
            let Some((rect, _)) = shown else { continue };
            if Some(*rect) == now[i] {
                continue;
            }
            if self.graphics == Graphics::Kitty {
                self.out.write_all(&kitty_delete(self.ids[i]))?;
            } else {
                redraw_cells(terminal, &cells, *rect)?;
            }
            *shown = None;
        }
        let mut drew = [false; 2];
        if let Some(encoded) = encoded {
            for (i, picture) in encoded.pictures.into_iter().enumerate() {
                if let Some((rect, bytes)) = picture
                    && Some(rect) == now[i]
                {
                    self.shown[i] = Some((rect, bytes));
                    drew[i] = true;
                    if self.asked[i] == Some(rect) {
                        self.asked[i] = None;
                    }
                }
            }
        }
        // A sixel or iTerm2 remote picture paints over the self-view: draw
        // the self-view again on top. kitty stacks them by z.
        if drew[0] && self.graphics != Graphics::Kitty && self.shown[1].is_some() {
            drew[1] = true;
        }
        for (drew, shown) in drew.iter().zip(&self.shown) {
            if *drew && let Some((_, bytes)) = shown {
                self.out.write_all(bytes)?;
            }
        }
        self.out.flush()?;
        if drew.iter().any(|d| *d) {
            for rect in now.iter().flatten() {
                redraw_overlay(terminal, &cells, *rect)?;
            }
        }
        // A picture with a place but no image there, and none on the way
        // for that place: encode it (again) for where it is now.
        let again: [bool; 2] = std::array::from_fn(|i| {
            now[i].is_some() && self.shown[i].is_none() && self.asked[i] != now[i]
        });
        if again.iter().any(|a| *a) {
            self.submit(state, size, again);
        }
        self.push();
        panic_for_tests(drew);
        Ok(())
    }

    /// [`draw`](Self::draw) inside tmux: images whose place went away are
    /// deleted, new ones sent (their virtual placements need no cursor),
    /// then the cells are drawn with the placeholder cells of every image
    /// sent for where its picture is now. Text over a picture is a cell
    /// like any other, so nothing needs drawing twice.
    fn draw_placeholders<B>(
        &mut self,
        terminal: &mut Terminal<B>,
        state: &mut ScreenState,
        encoded: Option<Encoded>,
    ) -> io::Result<()>
    where
        B: Backend,
        B::Error: Send + Sync + 'static,
    {
        let size = terminal.size().map_err(io::Error::other)?;
        let size = Rect::new(0, 0, size.width, size.height);
        let areas = picture_areas(size, state);
        self.areas = areas;
        let now = [areas.remote, areas.self_view];
        for (i, place) in now.iter().enumerate() {
            if let Some((rect, _)) = &self.shown[i]
                && Some(*rect) != *place
            {
                self.delete(self.ids[i])?;
                self.shown[i] = None;
            }
        }
        let mut drew = [false; 2];
        if let Some(encoded) = encoded {
            for (i, picture) in encoded.pictures.into_iter().enumerate() {
                if let Some((rect, bytes)) = picture
                    && Some(rect) == now[i]
                {
                    self.out.write_all(&bytes)?;
                    // The image stays in the terminal: no bytes to keep.
                    self.shown[i] = Some((rect, Vec::new()));
                    drew[i] = true;
                    if self.asked[i] == Some(rect) {
                        self.asked[i] = None;
                    }
                }
            }
        }
        self.out.flush()?;
        let ids = self.ids;
        let placed: [Option<Rect>; 2] =
            std::array::from_fn(|i| self.shown[i].as_ref().map(|s| s.0));
        terminal
            .draw(|f| {
                render(f, state);
                // The remote picture first: the self-view's cells over it.
                for (rect, id) in placed.iter().zip(ids) {
                    if let Some(rect) = rect {
                        super::tmux::fill(f.buffer_mut(), *rect, id);
                    }
                }
            })
            .map_err(io::Error::other)?;
        let again: [bool; 2] = std::array::from_fn(|i| {
            now[i].is_some() && self.shown[i].is_none() && self.asked[i] != now[i]
        });
        if again.iter().any(|a| *a) {
            self.submit(state, size, again);
        }
        self.push();
        panic_for_tests(drew);
        Ok(())
    }
}

/// The environment variable that makes the screen panic right after it
/// drew its first picture, in the middle of a synchronized update: for the
/// tests that check the terminal is given back and no image is left on a
/// panic. Not for users.
const PANIC_FOR_TESTS: &str = "WEBCALL_TEST_PANIC_AFTER_PICTURE";

fn panic_for_tests(drew: [bool; 2]) {
    if drew.iter().any(|d| *d) && std::env::var_os(PANIC_FOR_TESTS).is_some() {
        panic!("{PANIC_FOR_TESTS} is set: panicking after drawing a picture");
    }
}

impl Drop for Painter {
    fn drop(&mut self) {
        // On a panic the terminal's panic hook has removed the images
        // before the message; nothing more may follow the message.
        if !std::thread::panicking() {
            let _ = self.out.write_all(&Self::cleanup(self.graphics));
            let _ = self.out.flush();
        }
        // Closing the queue ends the encoder after its current picture.
        self.jobs = None;
        self.results.close();
        if let Some(t) = self.encoder.take() {
            let _ = t.join();
        }
    }
}

/// The encoder thread: one job at a time, each result handed to the
/// screen before the next job is taken (so a slow terminal holds the
/// encoder, and new pictures wait in, or are dropped from, the one slot).
fn encode_loop(
    graphics: Graphics,
    ids: [u32; 2],
    jobs: Receiver<Job>,
    results: mpsc::Sender<Encoded>,
) {
    while let Ok(job) = jobs.recv() {
        let cell = job.cell;
        let mut out = Encoded {
            pictures: [None, None],
        };
        for (i, work) in job.pictures.into_iter().enumerate() {
            let Some(work) = work else { continue };
            match encode(graphics, &work.frame, work.area, cell, ids[i], Z[i]) {
                Ok(Some(bytes)) => out.pictures[i] = Some((work.area, bytes)),
                Ok(None) => {}
                Err(e) => tracing::debug!("{e}"),
            }
        }
        if results.blocking_send(out).is_err() {
            return;
        }
    }
}

/// Writes the cells of `rect` again (they are unchanged for ratatui, so it
/// would not): erases sixel or iTerm2 pixels there.
fn redraw_cells<B>(terminal: &mut Terminal<B>, cells: &Buffer, rect: Rect) -> io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    let rect = rect.intersection(cells.area);
    let iter = rect.positions().map(|p| (p.x, p.y, &cells[(p.x, p.y)]));
    let backend = terminal.backend_mut();
    backend.draw(iter).map_err(io::Error::other)?;
    backend.flush().map_err(io::Error::other)
}

/// Writes again the cells inside `rect` that are not blank: text drawn
/// over a picture (chat lines, the self-view's label).
fn redraw_overlay<B>(terminal: &mut Terminal<B>, cells: &Buffer, rect: Rect) -> io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    let rect = rect.intersection(cells.area);
    let iter = rect
        .positions()
        .map(|p| (p.x, p.y, &cells[(p.x, p.y)]))
        .filter(|(_, _, c)| c.symbol() != " " || c.bg != Color::Reset);
    let backend = terminal.backend_mut();
    backend.draw(iter).map_err(io::Error::other)?;
    backend.flush().map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use ratatui::backend::TestBackend;

    use super::*;
    use crate::screen::{ColorMode, Connection, Lang};

    /// Standard output as a test sees it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn take(&self) -> String {
            String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
        }
    }

    fn frame() -> VideoFrame {
        let mut data = vec![100u8; 64 * 48];
        data.resize(64 * 48 * 3 / 2, 90);
        VideoFrame::from_i420(64, 48, data, Duration::ZERO).unwrap()
    }

    fn connected(graphics: Graphics) -> ScreenState {
        let mut state = ScreenState::new(ColorMode::TrueColor, Lang::En);
        state.connection = Connection::Connected;
        state.peer_present = true;
        state.graphics = graphics;
        state.remote = Some(frame());
        state
    }

    const SIZE: Rect = Rect::new(0, 0, 80, 24);

    #[tokio::test]
    async fn a_sixel_picture_is_drawn_inside_one_synchronized_update() {
        let out = Shared::default();
        let cell = CellSize {
            width: 8,
            height: 16,
        };
        let mut painter = Painter::new(Graphics::Sixel, Box::new(out.clone()), cell);
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let mut state = connected(Graphics::Sixel);
        painter.submit(&mut state, SIZE, [true, false]);
        let encoded = tokio::time::timeout(Duration::from_secs(30), painter.next())
            .await
            .expect("the encoder answers");
        painter
            .draw(&mut terminal, &mut state, Some(encoded))
            .unwrap();
        let written = out.take();
        let begin = written.find("\x1b[?2026h").expect("sync begin");
        let image = written.find("\x1bP").expect("a sixel image");
        let end = written.rfind("\x1b[?2026l").expect("sync end");
        assert!(begin < image && image < end, "{begin} < {image} < {end}");
        assert!(
            written[image..end].contains("\x1b\\"),
            "the image ends before the update does"
        );
        // The cells under the picture stay blank for the image.
        let area = picture_areas(SIZE, &state).remote.unwrap();
        let buf = terminal.backend().buffer();
        assert_eq!(buf[(area.x + 1, area.y + 1)].symbol(), " ");
        assert_eq!(state.dropped_frames(), 0);
    }

    #[tokio::test]
    async fn a_kitty_picture_is_deleted_when_its_place_goes() {
        let out = Shared::default();
        let mut painter = Painter::new(Graphics::Kitty, Box::new(out.clone()), CellSize::default());
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let mut state = connected(Graphics::Kitty);
        painter.submit(&mut state, SIZE, [true, false]);
        let encoded = tokio::time::timeout(Duration::from_secs(30), painter.next())
            .await
            .expect("the encoder answers");
        painter
            .draw(&mut terminal, &mut state, Some(encoded))
            .unwrap();
        assert!(out.take().contains("\x1b_Ga=T,f=24,"));
        state.peer_present = false;
        state.connection = Connection::PeerLeft;
        state.remote = None;
        assert!(painter.layout_changed(SIZE, &state));
        painter.draw(&mut terminal, &mut state, None).unwrap();
        let written = out.take();
        assert!(
            written.contains(&String::from_utf8(kitty_delete(REMOTE_IMAGE_ID)).unwrap()),
            "{written:?}"
        );
        drop(painter);
        assert_eq!(
            out.take().as_bytes(),
            Painter::cleanup(Graphics::Kitty).as_slice(),
            "images go on the way out"
        );
    }

    #[tokio::test]
    async fn inside_tmux_the_picture_is_placeholder_cells_and_a_wrapped_image() {
        let out = Shared::default();
        let mut painter = Painter::new(
            Graphics::KittyTmux,
            Box::new(out.clone()),
            CellSize::default(),
        );
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        let mut state = connected(Graphics::KittyTmux);
        let [remote_id, self_id] = super::super::tmux::image_ids(std::process::id());
        let area = picture_areas(SIZE, &state).remote.unwrap();
        // Before the image is there, its cells stay blank.
        painter.draw(&mut terminal, &mut state, None).unwrap();
        let placeholders = |terminal: &Terminal<TestBackend>| {
            terminal
                .backend()
                .buffer()
                .content()
                .iter()
                .filter(|c| c.symbol().starts_with(super::super::tmux::PLACEHOLDER))
                .count()
        };
        assert_eq!(placeholders(&terminal), 0);
        let encoded = tokio::time::timeout(Duration::from_secs(30), painter.next())
            .await
            .expect("the encoder answers");
        painter
            .draw(&mut terminal, &mut state, Some(encoded))
            .unwrap();
        let written = out.take();
        let begin = written.find("\x1b[?2026h").expect("sync begin");
        let image = written
            .find("\x1bPtmux;\x1b\x1b_Ga=T,U=1,")
            .expect("a virtual placement through the passthrough");
        let end = written.rfind("\x1b[?2026l").expect("sync end");
        assert!(begin < image && image < end);
        assert!(written.contains(&format!(
            "i={remote_id},c={},r={},",
            area.width, area.height
        )));
        // Every cell of the picture holds its placeholder, row and column
        // marked, coloured with the image id.
        assert_eq!(
            placeholders(&terminal),
            usize::from(area.width * area.height)
        );
        let buf = terminal.backend().buffer();
        let corner = &buf[(area.x + 2, area.y + 1)];
        assert_eq!(
            corner.symbol(),
            super::super::tmux::placeholder(1, 2).unwrap()
        );
        assert_eq!(corner.fg, super::super::tmux::id_colour(remote_id));
        // The other side leaves: the image is deleted through the
        // passthrough and its cells are blank again.
        state.peer_present = false;
        state.connection = Connection::PeerLeft;
        state.remote = None;
        painter.draw(&mut terminal, &mut state, None).unwrap();
        let written = out.take();
        let delete = String::from_utf8(super::super::tmux::delete(remote_id)).unwrap();
        assert!(written.contains(&delete), "{written:?}");
        assert_eq!(placeholders(&terminal), 0);
        drop(painter);
        let cleanup = Painter::cleanup(Graphics::KittyTmux);
        assert_eq!(out.take().as_bytes(), cleanup.as_slice());
        let cleanup = String::from_utf8(cleanup).unwrap();
        assert!(cleanup.starts_with("\x1b[?2026l"), "ends an open update");
        for id in [remote_id, self_id] {
            let delete = String::from_utf8(super::super::tmux::delete(id)).unwrap();
            assert!(cleanup.contains(&delete), "image {id} goes on the way out");
        }
    }

    #[tokio::test]
    async fn pictures_are_dropped_and_counted_when_nobody_draws_them() {
        let out = Shared::default();
        let mut painter = Painter::new(Graphics::Sixel, Box::new(out), CellSize::default());
        let mut state = connected(Graphics::Sixel);
        // One picture encoded and waiting to be drawn, one held by the
        // blocked encoder, one in the queue, one waiting: the rest replace
        // the waiting one.
        for _ in 0..8 {
            painter.submit(&mut state, SIZE, [true, false]);
        }
        assert!(
            state.dropped_frames() >= 4,
            "dropped {}",
            state.dropped_frames()
        );
    }
}
