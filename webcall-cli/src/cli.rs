//! The whole command-line surface of `webcall`, in one place.
//!
//! ```text
//! webcall create [--server URL] [--json]
//! webcall join <LINK> [--video camera|test|none|FILE.y4m] [--audio mic|tone|none|FILE.wav]
//!              [--duration SECS] [--stats-json PATH] [--record-video FILE.y4m]
//!              [--record-audio FILE.wav] [--ice-addr IP]... [--no-tui]
//!              [--camera INDEX|NAME] [--mic NAME] [--speaker NAME|none]
//!              [--render auto|kitty|sixel|iterm2|blocks]
//!              [--no-echo-cancel] [--no-noise-suppression]
//! webcall devices [--json]
//! ```
//!
//! The server address falls back to `WEBCALL_SERVER`, then
//! `http://localhost:8000`; `--render` to `WEBCALL_RENDER`, then auto.
//!
//! Without `--video` and `--audio`, `join` uses the default camera and
//! microphone, and joins without whichever is missing (saying so). Naming a
//! device (`--video camera`, `--audio mic`, `--camera`, `--mic`) makes a
//! missing one an error. The test pattern and tone are sent only when asked
//! for.
//!
//! A microphone's audio goes through echo cancellation (the speaker's
//! sound is taken out of it) and noise suppression before it is sent;
//! `--no-echo-cancel` and `--no-noise-suppression` turn either off. A tone
//! or a WAV file is sent as it is: it is clean, and tests check it.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Video call by link: create a link, or join a call from the terminal.
#[derive(Debug, Parser)]
#[command(name = "webcall", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log more (-v: info, -vv: debug). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The subcommands.
// Parsed once per run: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a call link on a webcall server and print it (with a QR code).
    Create(CreateArgs),
    /// Join the call at a link.
    Join(JoinArgs),
    /// List cameras, microphones and speakers.
    Devices(DevicesArgs),
    /// Check before a call: the server, its STUN and TURN servers, and the
    /// camera, microphone and speaker here.
    Test(TestArgs),
}

/// `webcall test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The webcall server, e.g. https://call.example.org.
    #[arg(long, env = "WEBCALL_SERVER", default_value = "http://localhost:8000")]
    pub server: String,
    /// Print {"server", "ok", "checks": [{"name", "verdict", "detail"}]} as JSON.
    #[arg(long)]
    pub json: bool,
    /// Check the server and its STUN/TURN servers only.
    #[arg(long)]
    pub no_devices: bool,
    /// Gather on this local address only (repeatable), as in `webcall join`.
    #[arg(long = "ice-addr", value_name = "IP")]
    pub ice_addrs: Vec<IpAddr>,
}

/// `webcall devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Print {"cameras", "microphones", "speakers", "problems"} as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `webcall create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The webcall server, e.g. https://call.example.org.
    #[arg(long, env = "WEBCALL_SERVER", default_value = "http://localhost:8000")]
    pub server: String,
    /// Print {"url", "token", "expires_at"} as JSON instead of text and QR code.
    #[arg(long)]
    pub json: bool,
    /// Do not print a QR code.
    #[arg(long)]
    pub no_qr: bool,
}

/// Where outgoing video comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoChoice {
    /// The moving test pattern (carries a frame number and send time).
    Test,
    /// No video.
    None,
    /// The camera.
    Camera,
    /// The X11 screen (a display's root window).
    Screen,
    /// A Y4M file (4:2:0).
    File(PathBuf),
}

/// How the full-screen view draws pictures (`--render`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Render {
    /// What the terminal answers or its environment says; else half blocks.
    Auto,
    /// kitty's graphics protocol (kitty, ghostty, WezTerm, Konsole); inside
    /// tmux as Unicode placeholders, with `allow-passthrough on`.
    Kitty,
    /// Sixel (xterm -ti vt340, foot, mlterm, WezTerm, Windows Terminal).
    Sixel,
    /// iTerm2 inline images (iTerm2, WezTerm).
    Iterm2,
    /// Half blocks: two pixels a cell, any terminal.
    Blocks,
}

impl Render {
    /// The screen's drawing for this choice; `None` for auto.
    pub fn graphics(self) -> Option<webcall_cli::screen::Graphics> {
        use webcall_cli::screen::Graphics;
        match self {
            Self::Auto => None,
            Self::Kitty => Some(Graphics::Kitty),
            Self::Sixel => Some(Graphics::Sixel),
            Self::Iterm2 => Some(Graphics::Iterm2),
            Self::Blocks => Some(Graphics::Blocks),
        }
    }
}

/// Where outgoing audio comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioChoice {
    /// A 440 Hz tone.
    Tone,
    /// No audio.
    None,
    /// The microphone.
    Mic,
    /// A WAV file.
    File(PathBuf),
}

fn parse_video(s: &str) -> Result<VideoChoice, String> {
    match s {
        "test" => Ok(VideoChoice::Test),
        "none" => Ok(VideoChoice::None),
        "camera" => Ok(VideoChoice::Camera),
        "screen" => Ok(VideoChoice::Screen),
        path if path.to_ascii_lowercase().ends_with(".y4m") => Ok(VideoChoice::File(path.into())),
        other => Err(format!(
            "{other:?}: expected test, none, camera, screen or a .y4m file"
        )),
    }
}

fn parse_audio(s: &str) -> Result<AudioChoice, String> {
    match s {
        "tone" => Ok(AudioChoice::Tone),
        "none" => Ok(AudioChoice::None),
        "mic" => Ok(AudioChoice::Mic),
        path if path.to_ascii_lowercase().ends_with(".wav") => Ok(AudioChoice::File(path.into())),
        other => Err(format!(
            "{other:?}: expected tone, none, mic or a .wav file"
        )),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?}: expected a positive number of seconds")),
    }
}

/// `webcall join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The call link, e.g. http://localhost:8000/r/q3V1n0cF2mXb7eYtK9aJ1w.
    pub link: String,
    /// Outgoing video: camera, test (a moving test pattern), screen (the X11
    /// display named by DISPLAY, 15 fps, at most 1280x720), none or a .y4m
    /// file. Default: the camera when there is one, else no video.
    #[arg(long, value_parser = parse_video)]
    pub video: Option<VideoChoice>,
    /// Outgoing audio: mic, tone (440 Hz), none or a .wav file. Default: the
    /// microphone when there is one, else no audio.
    #[arg(long, value_parser = parse_audio)]
    pub audio: Option<AudioChoice>,
    /// Print events as lines instead of the full-screen view (also the case
    /// when the output is not a terminal).
    #[arg(long)]
    pub no_tui: bool,
    /// How the full-screen view draws pictures: auto (ask the terminal:
    /// kitty images, sixel or iTerm2 inline images at pixel resolution,
    /// else half blocks), or one by name.
    #[arg(long, value_enum, env = "WEBCALL_RENDER", default_value_t = Render::Auto)]
    pub render: Render,
    /// Hang up after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<f64>,
    /// Write the end-of-call figures as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,
    /// Record the received video to a Y4M file.
    #[arg(long, value_name = "FILE.y4m")]
    pub record_video: Option<PathBuf>,
    /// Record the other side's shared screen to a Y4M file (the camera
    /// goes to --record-video).
    #[arg(long, value_name = "FILE.y4m")]
    pub record_screen: Option<PathBuf>,
    /// Record the received audio to a WAV file (48 kHz mono).
    #[arg(long, value_name = "FILE.wav")]
    pub record_audio: Option<PathBuf>,
    /// Use only this local address for media (repeatable); 127.0.0.1 allows
    /// calls over loopback.
    #[arg(long = "ice-addr", value_name = "IP")]
    pub ice_addrs: Vec<IpAddr>,
    /// Target video bitrate in kbit/s.
    #[arg(long, default_value_t = 1200, value_name = "KBPS")]
    pub video_kbps: u32,
    /// The camera: its number or part of its name (see `webcall devices`).
    /// Default: the first one. Without `--video`, means `--video camera`.
    #[arg(long, value_name = "INDEX|NAME")]
    pub camera: Option<String>,
    /// The microphone: part of its name. Default: the system's default.
    /// Without `--audio`, means `--audio mic`.
    #[arg(long, value_name = "NAME")]
    pub mic: Option<String>,
    /// Play the other side on this speaker (part of its name), or `none`.
    /// Default: the system's default speaker with the full-screen view
    /// (output to a terminal); none with --no-tui or output to a pipe.
    #[arg(long, value_name = "NAME")]
    pub speaker: Option<String>,
    /// Send the microphone without echo cancellation. It is on by default:
    /// the other side's voice, played by the speaker and heard again by
    /// the microphone, is taken out. A tone or a .wav file (--audio) is
    /// never processed.
    #[arg(long)]
    pub no_echo_cancel: bool,
    /// Send the microphone without noise suppression. It is on by default:
    /// steady background noise (fans, hum, hiss) is lowered. A tone or a
    /// .wav file (--audio) is never processed.
    #[arg(long)]
    pub no_noise_suppression: bool,
}

impl JoinArgs {
    /// What the microphone's audio goes through before it is sent.
    pub fn voice_settings(&self) -> webcall_core::call::voice::VoiceSettings {
        webcall_core::call::voice::VoiceSettings {
            echo_cancellation: !self.no_echo_cancel,
            noise_suppression: !self.no_noise_suppression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_surface_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn render_choices_parse() {
        let cli =
            Cli::try_parse_from(["webcall", "join", "http://h/r/x", "--render", "sixel"]).unwrap();
        let Command::Join(j) = cli.command else {
            panic!()
        };
        assert_eq!(j.render, Render::Sixel);
        assert_eq!(
            j.render.graphics(),
            Some(webcall_cli::screen::Graphics::Sixel)
        );
        assert!(Cli::try_parse_from(["webcall", "join", "x", "--render", "ascii"]).is_err());
    }

    #[test]
    fn echo_cancellation_and_noise_suppression_are_on_unless_turned_off() {
        let settings = |flags: &[&str]| {
            let args = [&["webcall", "join", "http://h/r/x"][..], flags].concat();
            let Command::Join(j) = Cli::try_parse_from(args).unwrap().command else {
                panic!()
            };
            let s = j.voice_settings();
            (s.echo_cancellation, s.noise_suppression)
        };
        assert_eq!(settings(&[]), (true, true));
        assert_eq!(settings(&["--no-echo-cancel"]), (false, true));
        assert_eq!(settings(&["--no-noise-suppression"]), (true, false));
        let help = Cli::try_parse_from(["webcall", "join", "--help"])
            .unwrap_err()
            .to_string();
        assert!(
            help.contains("--no-echo-cancel") && help.contains("never processed"),
            "{help}"
        );
    }

    #[test]
    fn media_choices_parse() {
        assert_eq!(
            parse_video("clip.Y4M").unwrap(),
            VideoChoice::File("clip.Y4M".into())
        );
        assert!(parse_video("clip.mp4").is_err());
        assert_eq!(parse_video("screen").unwrap(), VideoChoice::Screen);
        assert_eq!(parse_audio("none").unwrap(), AudioChoice::None);
        assert!(parse_seconds("-1").is_err());
        let cli = Cli::try_parse_from([
            "webcall",
            "join",
            "http://h/r/x",
            "--ice-addr",
            "127.0.0.1",
            "--ice-addr",
            "::1",
            "--duration",
            "2.5",
        ])
        .unwrap();
        match cli.command {
            Command::Join(j) => {
                assert_eq!(j.ice_addrs.len(), 2);
                assert_eq!(j.duration, Some(2.5));
                assert_eq!(j.video, None, "no flag: the camera when present");
                assert_eq!(j.audio, None, "no flag: the microphone when present");
                assert_eq!(j.render, Render::Auto);
            }
            _ => panic!(),
        }
    }
}
