//! The screen's loop: apply call events to the [`ScreenState`], pick up the
//! newest pictures, turn keys into call actions, and redraw at most about
//! 30 times a second (and at once after a resize).
//!
//! The loop knows the call only through [`CallControl`] and a channel of
//! [`ScreenEvent`]s, so it runs the same against the real engine and in tests.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use webcall_core::call::{EndReason, StatsReport};
use webcall_core::media::{VideoFrame, VideoSink, VideoSource};

use super::keys::{Action, Typing, handle_help_key, handle_key, handle_typing_key};
use super::painter::{Encoded, Painter};
use super::quality::QualityView;
use super::render::render;
use super::state::{Connection, ScreenState};
use super::switch::{DeviceKind, FLASH_FOR, Switched};
use super::terminal::Input;

/// The time between redraws: about 30 per second.
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);

/// What the call tells the screen.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ScreenEvent {
    /// The call moved to a new state.
    Connection(Connection),
    /// The other side arrived (true) or left (false).
    PeerPresent(bool),
    /// Fresh figures.
    Stats(Figures),
    /// A one-line message for the status line.
    Notice(String),
    /// A chat message from the other side.
    Chat(String),
    /// The call's verification code after a negotiation (`125 392`).
    VerificationCode(String),
    /// The other side started (true) or stopped (false) sharing its screen.
    ScreenShare(bool),
    /// The call's quality grade and details.
    Quality(QualityView),
    /// The call is over.
    Ended(EndReason),
    /// The other side hung up (said bye): the call ends unless a duration
    /// was given (then the screen waits for the time, or for them again).
    PeerHungUp,
}

/// Call figures for the status line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    /// Round-trip time.
    pub rtt: Option<Duration>,
    /// Bits per second received.
    pub bitrate_in: Option<u64>,
    /// Bits per second sent.
    pub bitrate_out: Option<u64>,
    /// Remote video frames per second.
    pub frame_rate: Option<f64>,
    /// Fraction of packets lost.
    pub packet_loss: Option<f64>,
}

/// What the screen may ask of the call.
pub trait CallControl {
    /// Sends or stops sending microphone audio.
    fn set_audio_enabled(&self, enabled: bool);
    /// Sends or stops sending camera video.
    fn set_video_enabled(&self, enabled: bool);
    /// Leaves the call.
    fn hang_up(&self) -> impl Future<Output = ()> + Send;
    /// Sends a chat message (queued if the channel is not open yet); the
    /// error, in words, when it cannot be. Without chat: always an error.
    fn send_chat(&self, text: &str) -> Result<(), String> {
        let _ = text;
        Err("chat is not available".into())
    }
    /// Switches to the next camera or microphone and says what came of
    /// it. Without devices to switch: there are none.
    fn next_device(&self, kind: DeviceKind) -> impl Future<Output = Switched> + Send {
        let _ = kind;
        async { Switched::NoDevice }
    }
    /// The call's figures so far, for the end screen's quality summary.
    /// Without figures: none.
    fn report(&self) -> Option<StatsReport> {
        None
    }
}

/// How the screen loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The user hung up (key, Ctrl-C, SIGTERM, or the terminal hung up).
    HungUp,
    /// The time given for the call ran out; the screen hung up.
    TimeUp,
    /// The call ended on its own.
    Ended(EndReason),
    /// The other side hung up; the screen hung up too.
    PeerLeft,
}

/// The newest picture, shared between a media thread and the screen. The
/// writer replaces it; the screen takes it when it redraws. Older pictures
/// the screen did not get to are simply dropped.
#[derive(Debug, Clone, Default)]
pub struct FrameSlot(Arc<Mutex<Option<VideoFrame>>>);

impl FrameSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts a picture in, replacing any the screen has not taken.
    pub fn put(&self, frame: VideoFrame) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(frame);
    }

    /// Takes the newest picture, if one arrived since the last take.
    pub fn take(&self) -> Option<VideoFrame> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A [`VideoSink`] that hands decoded remote pictures to the screen.
#[derive(Debug, Clone)]
pub struct SlotSink(pub FrameSlot);

impl VideoSink for SlotSink {
    fn write_frame(&mut self, frame: &VideoFrame) -> webcall_core::Result<()> {
        self.0.put(frame.clone());
        Ok(())
    }
}

/// A [`VideoSource`] wrapper that also shows what it sends in the self-view.
pub struct SelfViewSource {
    inner: Box<dyn VideoSource>,
    slot: FrameSlot,
}

impl std::fmt::Debug for SelfViewSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfViewSource")
            .field("inner", &self.inner.describe())
            .finish_non_exhaustive()
    }
}

impl SelfViewSource {
    /// Wraps `inner`; each frame it yields is also put in `slot`.
    pub fn new(inner: Box<dyn VideoSource>, slot: FrameSlot) -> Self {
        Self { inner, slot }
    }
}

impl VideoSource for SelfViewSource {
    fn next_frame(&mut self) -> webcall_core::Result<Option<VideoFrame>> {
        let frame = self.inner.next_frame()?;
        if let Some(f) = &frame {
            self.slot.put(f.clone());
        }
        Ok(frame)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Where the loop gets its inputs.
#[derive(Debug)]
pub struct ScreenInputs {
    /// Events from the call.
    pub events: mpsc::UnboundedReceiver<ScreenEvent>,
    /// Keys and resizes from the terminal.
    pub input: mpsc::UnboundedReceiver<Input>,
    /// Decoded remote pictures.
    pub remote: FrameSlot,
    /// Pictures this side sends.
    pub self_view: FrameSlot,
    /// Decoded pictures of the other side's shared screen.
    pub screen: FrameSlot,
    /// Hang up after this long, if set.
    pub duration: Option<Duration>,
}

/// Applies one call event to the state. Returns the end reason for
/// [`ScreenEvent::Ended`].
pub fn apply(state: &mut ScreenState, event: ScreenEvent) -> Option<EndReason> {
    match event {
        ScreenEvent::Connection(c) => {
            state.connection = c;
            if c == Connection::PeerLeft {
                state.peer_present = false;
                state.remote = None;
                state.screen_sharing = false;
                state.remote_screen = None;
            }
        }
        ScreenEvent::PeerPresent(p) => {
            state.peer_present = p;
            if !p {
                state.remote = None;
            }
        }
        ScreenEvent::Stats(f) => {
            state.rtt = f.rtt;
            state.bitrate_in = f.bitrate_in;
            state.bitrate_out = f.bitrate_out;
            state.frame_rate = f.frame_rate;
            state.packet_loss = f.packet_loss;
        }
        ScreenEvent::Notice(n) => state.notice = Some(n),
        ScreenEvent::Chat(text) => state.push_chat(false, text),
        ScreenEvent::VerificationCode(code) => state.verification_code = Some(code),
        ScreenEvent::ScreenShare(sharing) => {
            state.screen_sharing = sharing;
            if !sharing {
                state.remote_screen = None;
            }
        }
        ScreenEvent::Quality(q) => state.quality = Some(q),
        ScreenEvent::Ended(reason) => {
            state.connection = Connection::Ended;
            return Some(reason);
        }
        // The loop decides; the state already says the other side left.
        ScreenEvent::PeerHungUp => {}
    }
    None
}

/// Applies a key's action to the state and the call. Returns true on hang-up.
pub async fn act<C: CallControl>(state: &mut ScreenState, call: &C, action: Action) -> bool {
    match action {
        Action::ToggleMute => {
            state.mic_muted = !state.mic_muted;
            call.set_audio_enabled(!state.mic_muted);
        }
        Action::ToggleCamera => {
            state.camera_off = !state.camera_off;
            call.set_video_enabled(!state.camera_off);
        }
        Action::HangUp => {
            state.connection = Connection::Ended;
            call.hang_up().await;
            return true;
        }
        Action::OpenChat => state.chat_input = Some(String::new()),
        Action::ToggleDetails => state.show_details = !state.show_details,
        Action::ToggleSelfView => state.show_self_view = !state.show_self_view,
        Action::ToggleHelp => state.show_help = !state.show_help,
        Action::NextCamera | Action::NextMicrophone => {
            let kind = if action == Action::NextCamera {
                DeviceKind::Camera
            } else {
                DeviceKind::Microphone
            };
            let said = call.next_device(kind).await;
            state.notice = Some(said.describe(kind, state.lang));
        }
    }
    false
}

/// Applies a key typed on the open chat line. Returns true on hang-up.
pub async fn type_chat<C: CallControl>(state: &mut ScreenState, call: &C, typing: Typing) -> bool {
    let Some(line) = &mut state.chat_input else {
        return false;
    };
    match typing {
        Typing::Insert(c) => line.push(c),
        Typing::Backspace => {
            line.pop();
        }
        Typing::Cancel => state.chat_input = None,
        Typing::Send => {
            let text = std::mem::take(line);
            state.chat_input = None;
            if !text.is_empty() {
                match call.send_chat(&text) {
                    Ok(()) => state.push_chat(true, text),
                    Err(e) => state.notice = Some(e),
                }
            }
        }
        Typing::HangUp => return act(state, call, Action::HangUp).await,
    }
    false
}

/// Runs the screen until the user hangs up or the call ends. Draws on
/// `terminal`, which may be a real terminal or a test backend.
pub async fn run<B, C>(
    terminal: &mut Terminal<B>,
    state: &mut ScreenState,
    inputs: &mut ScreenInputs,
    call: &C,
) -> io::Result<Outcome>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    C: CallControl,
{
    run_with(terminal, state, inputs, call, None).await
}

/// [`run`], with pictures drawn as terminal images by `painter` (none:
/// half blocks). Pictures then go to the painter's encoder as they arrive,
/// and the screen is drawn when an encoded picture is back, when its text
/// changed, or when a picture's place changed.
pub async fn run_with<B, C>(
    terminal: &mut Terminal<B>,
    state: &mut ScreenState,
    inputs: &mut ScreenInputs,
    call: &C,
    mut painter: Option<&mut Painter>,
) -> io::Result<Outcome>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    C: CallControl,
{
    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut events_open = true;
    let deadline = inputs.duration.map(|d| tokio::time::Instant::now() + d);
    // What a device switch said, and until when the status line shows it.
    let mut flash: Option<(tokio::time::Instant, String)> = None;
    // When the call first connected: the status line counts from there.
    let mut connected_at: Option<tokio::time::Instant> = None;
    // Watched from the start, so a signal between two turns is not lost.
    let mut terminated = std::pin::pin!(super::terminal::terminated());
    loop {
        if connected_at.is_none() && state.connection == Connection::Connected {
            connected_at = Some(tokio::time::Instant::now());
            state.call_time = Some(Duration::ZERO);
            dirty = true;
        }
        let time_up = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        // Call events first, then keys, then redraws: a key acts on the
        // newest state, and a busy call cannot starve the keys.
        tokio::select! {
            biased;
            event = inputs.events.recv(), if events_open => match event {
                Some(ScreenEvent::PeerHungUp) if inputs.duration.is_none() => {
                    call.hang_up().await;
                    state.connection = Connection::Ended;
                    redraw(terminal, state, painter.as_deref_mut())?;
                    return Ok(Outcome::PeerLeft);
                }
                Some(e) => {
                    if let Some(reason) = apply(state, e) {
                        redraw(terminal, state, painter.as_deref_mut())?;
                        return Ok(Outcome::Ended(reason));
                    }
                    dirty = true;
                }
                None => events_open = false,
            },
            input = inputs.input.recv() => match input {
                Some(Input::Key(k)) if state.chat_input.is_some() => {
                    if let Some(typing) = handle_typing_key(k) {
                        if type_chat(state, call, typing).await {
                            redraw(terminal, state, painter.as_deref_mut())?;
                            return Ok(Outcome::HungUp);
                        }
                        dirty = true;
                    }
                }
                Some(Input::Key(k)) if state.show_help => {
                    // Any key closes the help; only Ctrl-C acts.
                    if let Some(action) = handle_help_key(k) {
                        if act(state, call, action).await {
                            redraw(terminal, state, painter.as_deref_mut())?;
                            return Ok(Outcome::HungUp);
                        }
                        dirty = true;
                    }
                }
                Some(Input::Key(k)) => {
                    if let Some(action) = handle_key(k) {
                        if act(state, call, action).await {
                            redraw(terminal, state, painter.as_deref_mut())?;
                            return Ok(Outcome::HungUp);
                        }
                        if matches!(action, Action::NextCamera | Action::NextMicrophone) {
                            flash = state
                                .notice
                                .clone()
                                .map(|n| (tokio::time::Instant::now() + FLASH_FOR, n));
                        }
                        dirty = true;
                        if action == Action::ToggleMute {
                            // Muted means muted now: not one tick later.
                            redraw(terminal, state, painter.as_deref_mut())?;
                            dirty = false;
                        }
                    }
                }
                Some(Input::Resize) => {
                    terminal.autoresize().map_err(io::Error::other)?;
                    if let Some(p) = painter.as_deref_mut() {
                        p.invalidate()?;
                    }
                    redraw(terminal, state, painter.as_deref_mut())?;
                    dirty = false;
                }
                None => {
                    // The terminal is gone: nobody can hang up by key any more.
                    call.hang_up().await;
                    return Ok(Outcome::HungUp);
                }
            },
            encoded = next_encoded(painter.as_deref_mut()) => {
                if let Some(p) = painter.as_deref_mut() {
                    p.draw(terminal, state, Some(encoded))?;
                    dirty = false;
                }
            }
            _ = tick.tick() => {
                let mut fresh = [false; 2];
                dirty |= super::meter::refresh(state);
                if let Some(t) = connected_at {
                    let talked = t.elapsed();
                    if state.call_time.map(|c| c.as_secs()) != Some(talked.as_secs()) {
                        dirty = true;
                    }
                    state.call_time = Some(talked);
                }
                if flash.as_ref().is_some_and(|(until, _)| tokio::time::Instant::now() >= *until) {
                    // Briefly means briefly, unless something else was said since.
                    if let Some((_, text)) = flash.take()
                        && state.notice.as_deref() == Some(text.as_str())
                    {
                        state.notice = None;
                        dirty = true;
                    }
                }
                if let Some(f) = inputs.remote.take() {
                    state.remote = Some(f);
                    fresh[0] = true;
                }
                if let Some(f) = inputs.screen.take() {
                    state.remote_screen = Some(f);
                    // The main picture while a share is shown.
                    fresh[0] = true;
                }
                if let Some(f) = inputs.self_view.take() {
                    state.self_view = Some(f);
                    fresh[1] = true;
                }
                match painter.as_deref_mut() {
                    Some(p) => {
                        let size = terminal.size().map_err(io::Error::other)?;
                        let size = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                        if fresh.iter().any(|f| *f) {
                            p.submit(state, size, fresh);
                        }
                        if dirty || p.layout_changed(size, state) {
                            p.draw(terminal, state, None)?;
                            dirty = false;
                        }
                    }
                    None => {
                        if dirty || fresh.iter().any(|f| *f) {
                            redraw(terminal, state, None)?;
                            dirty = false;
                        }
                    }
                }
            }
            () = time_up => {
                call.hang_up().await;
                state.connection = Connection::Ended;
                redraw(terminal, state, painter.as_deref_mut())?;
                return Ok(Outcome::TimeUp);
            }
            _ = tokio::signal::ctrl_c() => {
                act(state, call, Action::HangUp).await;
                return Ok(Outcome::HungUp);
            }
            () = &mut terminated => {
                act(state, call, Action::HangUp).await;
                return Ok(Outcome::HungUp);
            }
        }
    }
}

/// The painter's next encoded pictures; never, without a painter.
async fn next_encoded(painter: Option<&mut Painter>) -> Encoded {
    match painter {
        Some(p) => p.next().await,
        None => std::future::pending().await,
    }
}

/// Draws the screen once, through `painter` when pictures are terminal
/// images.
pub fn redraw<B>(
    terminal: &mut Terminal<B>,
    state: &mut ScreenState,
    painter: Option<&mut Painter>,
) -> io::Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    if let Some(p) = painter {
        return p.draw(terminal, state, None);
    }
    terminal
        .draw(|f| render(f, state))
        .map_err(io::Error::other)?;
    Ok(())
}
