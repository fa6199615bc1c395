//! `webcall join`: builds the media sources and sinks from the flags, joins
//! the call, and runs until hangup (Ctrl-C), `--duration`, or the other
//! person hanging up. Events come in as a stream; [`run_events`] turns them
//! into log lines, and a full-screen view can consume the same stream.
//!
//! Without the full-screen view, each line on standard input is sent as a
//! chat message ([`send_stdin_lines`]; the end of the input does not end
//! the call) and each message received is printed as `chat: <text>`, with
//! control characters escaped ([`webcall_cli::chat::escape`]).

use std::time::Duration;

use anyhow::{Context, Result};
use webcall_core::call::sinks::{WavFileSink, Y4mFileSink};
use webcall_core::call::sources::{TestPattern, Tone, WavFileSource, Y4mFileSource};
use webcall_core::call::voice::{VoiceProcessor, VoiceSettings};
use webcall_core::call::{self, Call, CallEvent, CallEvents, CallOptions, EndReason, StatsReport};
use webcall_core::media::{AudioSink, AudioSource, VideoSink, VideoSource};
use webcall_core::protocol::LeaveReason;

use webcall_cli::devices::{CameraChoice, CameraSource, DesktopSource, MicSource, SpeakerSink};
use webcall_cli::screen::{CallScreen, Outcome};

use crate::cli::{AudioChoice, JoinArgs, VideoChoice};
use crate::summary;

/// How a call run ended, for the summary and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// `--duration` ran out.
    Duration,
    /// Ctrl-C.
    Interrupted,
    /// The other person hung up.
    PeerLeft,
    /// The call ended by itself (`reason`).
    Ended(EndReason),
}

/// Said when there is no camera and none was asked for.
pub const JOINING_WITHOUT_VIDEO: &str =
    "no camera found: joining without video (use --video test or --video FILE.y4m)";
/// Said when there is no microphone and none was asked for.
pub const JOINING_WITHOUT_AUDIO: &str =
    "no microphone found: joining without audio (use --audio tone or --audio FILE.wav)";

/// The outgoing video. Without `--video` (and `--camera`), the default
/// camera if it opens, else none and a notice; a camera asked for that is
/// missing is an error.
fn video_source(
    choice: Option<&VideoChoice>,
    camera: Option<&str>,
    notices: &mut Vec<String>,
) -> Result<Option<Box<dyn VideoSource>>> {
    let asked = choice.is_some() || camera.is_some();
    Ok(match choice.unwrap_or(&VideoChoice::Camera) {
        VideoChoice::Test => Some(Box::new(TestPattern::default())),
        VideoChoice::None => None,
        VideoChoice::Camera => {
            let choice = camera.map_or(CameraChoice::Default, CameraChoice::parse);
            match CameraSource::open(&choice) {
                Ok(camera) => Some(Box::new(camera)),
                Err(e) if asked => return Err(e.into()),
                Err(e) => {
                    tracing::info!("the default camera: {e}");
                    notices.push(JOINING_WITHOUT_VIDEO.to_owned());
                    None
                }
            }
        }
        VideoChoice::Screen => Some(Box::new(DesktopSource::open()?)),
        VideoChoice::File(path) => Some(Box::new(Y4mFileSource::open(path, true)?)),
    })
}

/// The outgoing audio, with the same rules as [`video_source`]. A
/// microphone's audio goes through `voice` when that is given; a tone or a
/// file never does.
fn audio_source(
    choice: Option<&AudioChoice>,
    mic: Option<&str>,
    voice: Option<&VoiceProcessor>,
    notices: &mut Vec<String>,
) -> Result<Option<Box<dyn AudioSource>>> {
    let asked = choice.is_some() || mic.is_some();
    Ok(match choice.unwrap_or(&AudioChoice::Mic) {
        AudioChoice::Tone => Some(Box::new(Tone::default())),
        AudioChoice::None => None,
        AudioChoice::Mic => match MicSource::open(mic) {
            Ok(mic) => Some(match voice {
                Some(voice) => Box::new(voice.process_source(Box::new(mic))),
                None => Box::new(mic),
            }),
            Err(e) if asked => return Err(e.into()),
            Err(e) => {
                tracing::info!("the default microphone: {e}");
                notices.push(JOINING_WITHOUT_AUDIO.to_owned());
                None
            }
        },
        AudioChoice::File(path) => Some(Box::new(WavFileSource::open(path)?)),
    })
}

/// Call options built from the flags, and what the user should be told
/// about them (a default device that is missing).
#[derive(Debug)]
pub struct Prepared {
    /// The options for [`call::join`].
    pub options: CallOptions,
    /// One line each, for the screen and stderr.
    pub notices: Vec<String>,
    /// The echo canceller and noise suppressor a microphone's audio goes
    /// through (the one joined with, or one switched to with `a`); the
    /// speaker feeds it the echo reference. `None` when both are turned
    /// off or no audio is sent.
    pub voice: Option<VoiceProcessor>,
    /// Whether the audio the call was joined with goes through `voice`:
    /// a microphone does, a tone or a file does not.
    pub processed: bool,
}

impl Prepared {
    /// What the sent audio goes through, for the stats report.
    pub fn audio_processing(&self) -> VoiceSettings {
        match &self.voice {
            Some(voice) if self.processed => voice.settings(),
            _ => VoiceSettings::OFF,
        }
    }
}

/// Turns the flags into call options. Files and devices are opened here, so
/// a bad file or a missing device that was asked for fails before anything
/// touches the network.
pub fn options(args: &JoinArgs) -> Result<Prepared> {
    let mut video_sinks: Vec<Box<dyn VideoSink>> = Vec::new();
    let mut audio_sinks: Vec<Box<dyn AudioSink>> = Vec::new();
    if let Some(path) = &args.record_video {
        video_sinks.push(Box::new(Y4mFileSink::create(path)?));
    }
    let mut screen_sinks: Vec<Box<dyn VideoSink>> = Vec::new();
    if let Some(path) = &args.record_screen {
        screen_sinks.push(Box::new(Y4mFileSink::create(path)?));
    }
    if let Some(path) = &args.record_audio {
        audio_sinks.push(Box::new(WavFileSink::create(path)?));
    }
    let mut notices = Vec::new();
    let settings = args.voice_settings();
    let mut voice = settings.any().then(|| VoiceProcessor::new(settings));
    let audio = audio_source(
        args.audio.as_ref(),
        args.mic.as_deref(),
        voice.as_ref(),
        &mut notices,
    )?;
    let mic = matches!(
        args.audio.as_ref().unwrap_or(&AudioChoice::Mic),
        AudioChoice::Mic
    );
    let processed = voice.is_some() && mic && audio.is_some();
    if audio.is_none() {
        voice = None;
    }
    let options = CallOptions {
        video: video_source(args.video.as_ref(), args.camera.as_deref(), &mut notices)?,
        audio,
        video_sinks,
        screen_sinks,
        audio_sinks,
        ice_addrs: args.ice_addrs.clone(),
        video_bitrate_bps: args.video_kbps.saturating_mul(1000).max(50_000),
        ..CallOptions::default()
    };
    Ok(Prepared {
        options,
        notices,
        voice,
        processed,
    })
}

/// Runs `webcall join`.
pub async fn run(args: &JoinArgs) -> Result<()> {
    // The link first: a typo should not wait for files or the network.
    webcall_core::client::Link::parse(&args.link)?;
    let prepared = options(args)?;
    let audio_processing = prepared.audio_processing();
    let Prepared {
        mut options,
        mut notices,
        voice,
        ..
    } = prepared;
    let screen =
        (!args.no_tui && std::io::IsTerminal::is_terminal(&std::io::stdout())).then(|| {
            let mut screen = CallScreen::new();
            screen.graphics(args.render.graphics());
            screen
        });
    add_speaker(
        args,
        screen.is_some(),
        voice.as_ref(),
        &mut options,
        &mut notices,
    )?;
    let screen = screen.map(|mut screen| {
        screen.voice(voice);
        screen.attach(&mut options);
        screen
    });
    let (call, events) = call::join(&args.link, options).await?;
    // Said once the call is joined: a link that fails needs no device notes.
    for notice in &notices {
        eprintln!("webcall: {notice}");
    }
    let duration = args.duration.map(Duration::from_secs_f64);
    let finish = match screen {
        Some(mut screen) => {
            screen.notice(notices.join("; "));
            match screen.run(call.clone(), events, duration).await? {
                Outcome::HungUp => Finish::Interrupted,
                Outcome::TimeUp => Finish::Duration,
                Outcome::PeerLeft => Finish::PeerLeft,
                Outcome::Ended(reason) => Finish::Ended(reason),
            }
        }
        None => {
            println!("joined {}", args.link);
            for notice in &notices {
                println!("{notice}");
            }
            send_stdin_lines(call.clone())?;
            run_events(&call, events, duration, |line| println!("{line}")).await
        }
    };
    let stats = call.stats();
    let mut report = stats.report();
    report.audio_processing = Some(audio_processing);
    for line in summary::lines(&report, &finish) {
        println!("{line}");
    }
    if let Some(path) = &args.stats_json {
        write_report(path, &report)?;
    }
    match finish {
        // The whole chain of causes is printed.
        Finish::Ended(EndReason::Failed(why)) => {
            Err(anyhow::Error::new(why).context("the call ended"))
        }
        _ => Ok(()),
    }
}

/// Plays the other side on a speaker: the one `--speaker` names, else the
/// default one when the full-screen view is on. A missing default speaker
/// is only a notice; a named one that cannot be opened is an error. What
/// the speaker plays is the echo reference of `voice`.
fn add_speaker(
    args: &JoinArgs,
    screen: bool,
    voice: Option<&VoiceProcessor>,
    options: &mut CallOptions,
    notices: &mut Vec<String>,
) -> Result<()> {
    let speaker = match args.speaker.as_deref() {
        Some("none") => None,
        Some(name) => Some(SpeakerSink::open(Some(name))?),
        None if screen => match SpeakerSink::open(None) {
            Ok(speaker) => Some(speaker),
            Err(e) => {
                notices.push(e.to_string());
                None
            }
        },
        None => None,
    };
    if let Some(speaker) = speaker {
        options.audio_sinks.push(match voice {
            Some(voice) => Box::new(voice.echo_reference(Box::new(speaker))),
            None => Box::new(speaker),
        });
    }
    Ok(())
}

/// Sends each line of standard input as a chat message, in order, from a
/// thread of its own. Lines read before the data channel opens wait for it
/// (and reading waits while [`call::CHAT_OUTBOX`] are waiting); empty lines
/// are skipped; a line that cannot be sent (too long) is reported on
/// stderr. The end of the input ends only the reading, not the call.
fn send_stdin_lines(call: Call) -> Result<()> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("webcall-stdin".into())
        .spawn(move || {
            use std::io::BufRead;
            let mut stdin = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                line.clear();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::info!("stopped reading standard input: {e}");
                        return;
                    }
                }
                let Some(text) = webcall_cli::chat::input_line(&line) else {
                    continue;
                };
                match runtime.block_on(call.send_chat(text)) {
                    Ok(_) => {}
                    Err(webcall_core::Error::CallEnded) => return,
                    Err(e) => eprintln!("webcall: chat message not sent: {e}"),
                }
            }
        })
        .context("cannot start reading standard input")?;
    Ok(())
}

fn write_report(path: &std::path::Path, report: &StatsReport) -> Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
}

/// Drives a joined call until it should end, reporting each event through
/// `log`. Hangs up (says bye) on Ctrl-C, when `duration` is over, or when
/// the other person hangs up and no duration was given. Returns why it ended.
pub async fn run_events(
    call: &Call,
    mut events: CallEvents,
    duration: Option<Duration>,
    mut log: impl FnMut(String),
) -> Finish {
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    // One listener for the whole call: one made afresh on each turn of the
    // loop would miss a Ctrl-C that comes while an event is handled.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let finish = loop {
        let until_deadline = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ev = events.recv() => match ev {
                None => break Finish::Ended(EndReason::HungUp),
                Some(CallEvent::Ended { reason }) => break Finish::Ended(reason),
                Some(CallEvent::PeerLeft { peer, reason }) => {
                    log(format!("peer {peer} left ({})", match reason {
                        LeaveReason::Bye => "hung up",
                        LeaveReason::Disconnected => "connection lost",
                    }));
                    if reason == LeaveReason::Bye && deadline.is_none() {
                        break Finish::PeerLeft;
                    }
                }
                Some(ev @ CallEvent::ServerLost { .. }) => {
                    // Worth a line on stderr too: nothing can reconnect now.
                    if let Some(line) = describe(&ev) {
                        eprintln!("webcall: {line}");
                        log(line);
                    }
                }
                Some(ev @ CallEvent::ScreenShare { .. }) => {
                    // With the camera's count, so a script sees it go on.
                    if let Some(line) = describe(&ev) {
                        let camera = call.stats().received.video_frames_decoded;
                        log(format!("{line} (camera frames so far: {camera})"));
                    }
                }
                Some(ev) => {
                    if let Some(line) = describe(&ev) {
                        log(line);
                    }
                }
            },
            _ = until_deadline => break Finish::Duration,
            _ = &mut ctrl_c => break Finish::Interrupted,
        }
    };
    if !matches!(finish, Finish::Ended(_)) {
        call.hangup().await;
    }
    finish
}

/// One log line for an event, or `None` for events not worth a line.
pub fn describe(ev: &CallEvent) -> Option<String> {
    Some(match ev {
        CallEvent::Joined { peer: Some(p), .. } => format!("in the room with {p}; connecting"),
        CallEvent::Joined { peer: None, .. } => "waiting for the other person to join".to_owned(),
        CallEvent::PeerJoined {
            peer,
            resumed: true,
        } => format!("peer {peer} came back; reconnecting"),
        CallEvent::PeerJoined { peer, .. } => format!("peer {peer} joined; connecting"),
        CallEvent::PeerReconnecting { peer } => {
            format!("peer {peer} lost the server connection; waiting for them to reconnect")
        }
        CallEvent::PeerLeft { peer, .. } => format!("peer {peer} left"),
        CallEvent::ConnectionState(s) => format!("connection: {s}"),
        CallEvent::Reconnecting => "lost the server connection; reconnecting".to_owned(),
        CallEvent::ServerLost { reason } => format!(
            "lost the webcall server ({reason}); the call goes on without it, \
             but cannot recover if the media connection drops"
        ),
        CallEvent::MediaError(e) => format!("media problem: {e}"),
        CallEvent::Chat(message) => format!("chat: {}", webcall_cli::chat::escape(&message.text)),
        CallEvent::VerificationCode(code) => format!("verification code: {code}"),
        CallEvent::ScreenShare { sharing: true } => {
            "the other side is sharing its screen".to_owned()
        }
        CallEvent::ScreenShare { sharing: false } => {
            "the other side stopped sharing its screen".to_owned()
        }
        CallEvent::Ended { reason } => format!("call ended: {reason:?}"),
        _ => return None,
    })
}
