//! The call screen on a real call: the engine's events turned into screen
//! events, the [`Call`] handle as the screen's [`CallControl`], and
//! [`CallScreen`], which plugs the screen into [`CallOptions`] and runs it.

use std::io;
use std::time::Duration;

use tokio::sync::mpsc;
use webcall_core::call::voice::VoiceProcessor;
use webcall_core::call::{Call, CallEvent, CallEvents, CallOptions, ConnectionState, EndReason};
use webcall_core::protocol::LeaveReason;

use super::detect;
use super::end::{self, END_HOLD, EndView, EndWhy};
use super::live::{InUse, LiveCall};
use super::meter::{MeterView, MeteredSource, MicLevel};
use super::painter::Painter;
use super::pixels::{CellSize, Graphics};
use super::quality::QualityView;
use super::run::{
    CallControl, Figures, FrameSlot, Outcome, ScreenEvent, ScreenInputs, SelfViewSource, SlotSink,
    run_with,
};
use super::state::{Connection, ScreenState};

/// How long the terminal has to answer the graphics queries.
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);
use super::terminal::{InputReader, TerminalSession};
use super::tmux::TmuxInfo;

impl CallControl for Call {
    fn set_audio_enabled(&self, enabled: bool) {
        Call::set_audio_enabled(self, enabled);
    }

    fn set_video_enabled(&self, enabled: bool) {
        Call::set_video_enabled(self, enabled);
    }

    async fn hang_up(&self) {
        self.hangup().await;
    }

    fn send_chat(&self, text: &str) -> Result<(), String> {
        self.try_send_chat(text)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn report(&self) -> Option<webcall_core::call::StatsReport> {
        Some(self.stats().report())
    }
}

/// What the screen makes of one engine event (none, one or two changes).
pub fn screen_events(event: CallEvent) -> Vec<ScreenEvent> {
    use ScreenEvent as S;
    let quality = match &event {
        CallEvent::Stats(s) => Some(S::Quality(QualityView::from_stats(s))),
        _ => None,
    };
    let mut out = match event {
        CallEvent::Joined { peer: None, .. } => vec![S::Connection(Connection::Waiting)],
        CallEvent::Joined { peer: Some(_), .. } | CallEvent::PeerJoined { .. } => {
            vec![S::PeerPresent(true), S::Connection(Connection::Connecting)]
        }
        CallEvent::PeerLeft { reason, .. } => {
            let why = match reason {
                LeaveReason::Bye => "the other side hung up",
                LeaveReason::Disconnected => "the other side lost its connection",
            };
            let mut out = vec![S::Connection(Connection::PeerLeft), S::Notice(why.into())];
            if reason == LeaveReason::Bye {
                out.push(S::PeerHungUp);
            }
            out
        }
        CallEvent::ConnectionState(state) => match state {
            ConnectionState::Connecting => vec![S::Connection(Connection::Connecting)],
            ConnectionState::Connected => vec![S::Connection(Connection::Connected)],
            ConnectionState::Disconnected | ConnectionState::Failed => {
                vec![S::Connection(Connection::Reconnecting)]
            }
            _ => vec![],
        },
        CallEvent::Reconnecting => vec![S::Connection(Connection::Reconnecting)],
        CallEvent::PeerReconnecting { .. } => vec![S::Notice(
            "the other side lost its server connection; waiting for it to come back".into(),
        )],
        CallEvent::Stats(s) => vec![S::Stats(Figures {
            rtt: s
                .rtt_ms
                .map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
            bitrate_in: Some(s.receive_bitrate_bps),
            bitrate_out: Some(s.send_bitrate_bps),
            frame_rate: Some(s.receive_frame_rate),
            packet_loss: Some(s.packet_loss),
        })],
        CallEvent::MediaError(m) => vec![S::Notice(m)],
        CallEvent::Chat(message) => vec![S::Chat(message.text)],
        CallEvent::VerificationCode(code) => vec![S::VerificationCode(code)],
        CallEvent::ScreenShare { sharing } => vec![S::ScreenShare(sharing)],
        CallEvent::ServerLost { reason } => vec![S::Notice(format!(
            "lost the webcall server ({reason}); the call goes on while the media connection holds"
        ))],
        CallEvent::Ended { reason } => {
            let mut out = Vec::new();
            if let EndReason::Failed(why) = &reason {
                out.push(S::Notice(why.to_string()));
            }
            out.push(S::Ended(reason));
            out
        }
        _ => vec![],
    };
    out.extend(quality);
    out
}

/// The screen's hooks into a call: a sink for the remote picture and a slot
/// for the self-view. Make one, [`attach`](Self::attach) it to the options
/// before joining, then [`run`](Self::run) it with the joined call.
#[derive(Debug, Default)]
pub struct CallScreen {
    remote: FrameSlot,
    self_view: FrameSlot,
    screen: FrameSlot,
    notice: Option<String>,
    /// How to draw pictures; `None`: find out from the terminal.
    graphics: Option<Graphics>,
    /// The sources the call was joined with, for switching devices.
    in_use: std::sync::Mutex<InUse>,
    /// What a microphone's audio goes through before it is sent.
    voice: Option<VoiceProcessor>,
    /// The level of the audio sent, for the status line's meter.
    mic_level: MicLevel,
}

impl CallScreen {
    /// Fresh, empty picture slots.
    pub fn new() -> Self {
        Self::default()
    }

    /// A line for the status bar when the screen opens (empty: none), such
    /// as a missing camera.
    pub fn notice(&mut self, text: String) {
        self.notice = Some(text).filter(|t| !t.is_empty());
    }

    /// Draws pictures this way (`None`, the default: what the terminal
    /// answers or its environment says, else half blocks).
    pub fn graphics(&mut self, graphics: Option<Graphics>) {
        self.graphics = graphics;
    }

    /// The echo canceller and noise suppressor the microphone's audio goes
    /// through (`None`: none); a microphone switched to with `a` goes
    /// through it too.
    pub fn voice(&mut self, voice: Option<VoiceProcessor>) {
        self.voice = voice;
    }

    /// Adds the screen's video sinks (the camera and a shared screen) and
    /// wraps the video source so the screen shows what is sent, and the
    /// audio source so the status line shows its level; notes the
    /// sources, for `d` and `a` to switch from.
    pub fn attach(&self, options: &mut CallOptions) {
        *self.in_use.lock().unwrap_or_else(|e| e.into_inner()) = InUse {
            video: options.video.as_ref().map(|s| s.describe()),
            audio: options.audio.as_ref().map(|s| s.describe()),
        };
        options
            .video_sinks
            .push(Box::new(SlotSink(self.remote.clone())));
        options
            .screen_sinks
            .push(Box::new(SlotSink(self.screen.clone())));
        if let Some(source) = options.video.take() {
            options.video = Some(Box::new(SelfViewSource::new(
                source,
                self.self_view.clone(),
            )));
        }
        if let Some(source) = options.audio.take() {
            options.audio = Some(Box::new(MeteredSource::new(source, self.mic_level.clone())));
        }
    }

    /// Takes over the terminal and shows the call until the user hangs up,
    /// `duration` runs out, the other side hangs up (without `duration`) or
    /// the call ends; then the end screen ([`super::end`]) for a moment.
    /// The terminal is restored on every way out. When the other side only
    /// lost its connection the screen stays, saying so, until the user
    /// hangs up (they may come back).
    pub async fn run(
        self,
        call: Call,
        mut events: CallEvents,
        duration: Option<Duration>,
    ) -> io::Result<Outcome> {
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        if let Some(text) = self.notice {
            let _ = event_tx.send(ScreenEvent::Notice(text));
        }
        let forward = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                for e in screen_events(event) {
                    if event_tx.send(e).is_err() {
                        return;
                    }
                }
            }
        });
        let (input_tx, input_rx) = mpsc::unbounded_channel();
        let mut session = TerminalSession::enter()?;
        let mut state = ScreenState::from_env();
        // Ask the terminal before anything else reads its input.
        let env = |k: &str| std::env::var(k).ok();
        // Sixel needs the cell size in pixels; ask when the window size lacks it.
        let mut cell = CellSize::query();
        let ask = match self.graphics {
            None => !detect::in_tmux(env),
            Some(Graphics::Sixel) => cell == CellSize::default(),
            Some(_) => false,
        };
        let answer = ask
            .then(|| detect::query_terminal(QUERY_TIMEOUT).ok())
            .flatten();
        if cell == CellSize::default()
            && let Some((width, height)) = answer.and_then(|a| a.cell)
        {
            cell = CellSize { width, height };
        }
        // Inside tmux, ask tmux what it lets through (unless half blocks
        // or sixel were asked for by name: nothing to ask then).
        let tmux = (detect::in_tmux(env)
            && !matches!(self.graphics, Some(Graphics::Blocks | Graphics::Sixel)))
        .then(TmuxInfo::ask);
        let (graphics, refused) = detect::choose(self.graphics, env, answer, tmux.as_ref());
        if let Some(refusal) = refused {
            state.notice = Some(refusal.notice(state.lang).into());
        }
        state.graphics = graphics;
        let mut painter = graphics.is_pixels().then(|| {
            session.clean_up_with(Painter::cleanup(graphics));
            let mut painter = Painter::new(graphics, Box::new(io::stdout()), cell);
            painter.track_terminal_cells();
            painter
        });
        let _reader = InputReader::spawn(input_tx);
        let in_use = self.in_use.into_inner().unwrap_or_else(|e| e.into_inner());
        if in_use.audio.is_some() {
            state.mic_level = Some(MeterView::new(self.mic_level.clone()));
        }
        let call = LiveCall::new(call, self.self_view.clone(), in_use)
            .with_audio(self.voice, self.mic_level);
        let mut inputs = ScreenInputs {
            events: event_rx,
            input: input_rx,
            remote: self.remote,
            self_view: self.self_view,
            screen: self.screen,
            duration,
        };
        let outcome = run_with(
            session.terminal(),
            &mut state,
            &mut inputs,
            &call,
            painter.as_mut(),
        )
        .await;
        if let Ok(outcome) = &outcome {
            let view = EndView::new(
                EndWhy::from_outcome(outcome),
                state.call_time,
                call.report().as_ref(),
                state.lang,
            );
            // The end screen is a courtesy: a terminal that fails now
            // changes nothing about how the call ended.
            if let Err(e) = end::show(
                session.terminal(),
                &mut state,
                view,
                &mut inputs.input,
                painter.as_mut(),
                END_HOLD,
            )
            .await
            {
                tracing::debug!("the end screen: {e}");
            }
        }
        drop(painter);
        forward.abort();
        drop(session);
        outcome
    }
}
