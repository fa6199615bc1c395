//! The real call behind the screen: [`LiveCall`] passes the screen's
//! requests to the [`Call`], and on `d` or `a` opens the next camera or
//! microphone and hands it to the call
//! ([`Call::replace_video_source`], [`Call::replace_audio_source`]: no
//! renegotiation, the call goes on). A new camera's pictures also go to the
//! self-view.

use std::sync::Mutex;

use webcall_core::call::Call;
use webcall_core::call::voice::VoiceProcessor;
use webcall_core::media::{AudioSource, VideoSource};

use super::meter::{MeteredSource, MicLevel};
use super::run::{CallControl, FrameSlot, SelfViewSource};
use super::switch::{DeviceKind, Next, Switched, next_device, position_in_use};
use crate::devices::audio::{self, Direction};
use crate::devices::{CameraChoice, CameraSource, MicSource, camera};

/// What the call sends from now: the sources' descriptions (`None`: a kind
/// the call was joined without).
#[derive(Debug, Clone, Default)]
pub struct InUse {
    /// The video source's `describe()`.
    pub video: Option<String>,
    /// The audio source's `describe()`.
    pub audio: Option<String>,
}

/// A [`Call`] with device switching, as the screen's [`CallControl`].
#[derive(Debug)]
pub struct LiveCall {
    call: Call,
    self_view: FrameSlot,
    in_use: Mutex<InUse>,
    voice: Option<VoiceProcessor>,
    mic_level: Option<MicLevel>,
}

impl LiveCall {
    /// `call`, sending from the sources `in_use` describes; a new camera's
    /// pictures also go to `self_view`.
    pub fn new(call: Call, self_view: FrameSlot, in_use: InUse) -> Self {
        Self {
            call,
            self_view,
            in_use: Mutex::new(in_use),
            voice: None,
            mic_level: None,
        }
    }

    /// A microphone switched to goes through `voice` (echo cancellation,
    /// noise suppression) when given, and its level to `mic_level`, as
    /// the one the call was joined with.
    pub fn with_audio(mut self, voice: Option<VoiceProcessor>, mic_level: MicLevel) -> Self {
        self.voice = voice;
        self.mic_level = Some(mic_level);
        self
    }

    fn in_use(&self) -> std::sync::MutexGuard<'_, InUse> {
        self.in_use.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A device opened to replace the one in use.
enum Opened {
    Video(String, Box<dyn VideoSource>),
    Audio(String, Box<dyn AudioSource>),
}

/// Lists the devices of `kind` and opens the one after `current` (blocking:
/// opening a camera or a microphone takes a moment).
fn open_next(kind: DeviceKind, current: Option<&str>) -> Result<Opened, Switched> {
    match kind {
        DeviceKind::Camera => {
            let cameras = camera::list_cameras().unwrap_or_default();
            let names: Vec<String> = cameras.iter().map(|c| c.name.clone()).collect();
            match next_device(names.len(), position_in_use(&names, current)) {
                Next::NoDevice => Err(Switched::NoDevice),
                Next::OnlyOne => Err(Switched::OnlyOne),
                Next::To(i) => CameraSource::open(&CameraChoice::Index(cameras[i].index))
                    .map(|c| Opened::Video(names[i].clone(), Box::new(c)))
                    .map_err(|e| Switched::Failed {
                        name: names[i].clone(),
                        error: e.to_string(),
                    }),
            }
        }
        DeviceKind::Microphone => {
            let names: Vec<String> = audio::list(Direction::Input)
                .into_iter()
                .map(|d| d.name)
                .collect();
            match next_device(names.len(), position_in_use(&names, current)) {
                Next::NoDevice => Err(Switched::NoDevice),
                Next::OnlyOne => Err(Switched::OnlyOne),
                Next::To(i) => MicSource::open(Some(&names[i]))
                    .map(|m| Opened::Audio(names[i].clone(), Box::new(m)))
                    .map_err(|e| Switched::Failed {
                        name: names[i].clone(),
                        error: e.to_string(),
                    }),
            }
        }
    }
}

impl CallControl for LiveCall {
    fn set_audio_enabled(&self, enabled: bool) {
        self.call.set_audio_enabled(enabled);
    }

    fn set_video_enabled(&self, enabled: bool) {
        self.call.set_video_enabled(enabled);
    }

    async fn hang_up(&self) {
        self.call.hangup().await;
    }

    fn send_chat(&self, text: &str) -> Result<(), String> {
        CallControl::send_chat(&self.call, text)
    }

    fn report(&self) -> Option<webcall_core::call::StatsReport> {
        CallControl::report(&self.call)
    }

    async fn next_device(&self, kind: DeviceKind) -> Switched {
        let current = {
            let in_use = self.in_use();
            match kind {
                DeviceKind::Camera => in_use.video.clone(),
                DeviceKind::Microphone => in_use.audio.clone(),
            }
        };
        // Joined without this kind: no device is opened for nothing.
        let Some(current) = current else {
            return Switched::NotSending;
        };
        let opened = tokio::task::spawn_blocking(move || open_next(kind, Some(&current))).await;
        let opened = match opened {
            Ok(Ok(opened)) => opened,
            Ok(Err(said)) => return said,
            Err(e) => {
                return Switched::Failed {
                    name: String::new(),
                    error: e.to_string(),
                };
            }
        };
        let (name, description, replaced) = match opened {
            Opened::Video(name, source) => {
                let description = source.describe();
                let source = SelfViewSource::new(source, self.self_view.clone());
                let replaced = self.call.replace_video_source(Box::new(source));
                (name, description, replaced)
            }
            Opened::Audio(name, mut source) => {
                let description = source.describe();
                if let Some(voice) = &self.voice {
                    source = Box::new(voice.process_source(source));
                }
                if let Some(level) = &self.mic_level {
                    source = Box::new(MeteredSource::new(source, level.clone()));
                }
                (name, description, self.call.replace_audio_source(source))
            }
        };
        match replaced {
            Ok(()) => {
                let mut in_use = self.in_use();
                match kind {
                    DeviceKind::Camera => in_use.video = Some(description),
                    DeviceKind::Microphone => in_use.audio = Some(description),
                }
                Switched::To(name)
            }
            Err(webcall_core::Error::NotSending { .. }) => Switched::NotSending,
            Err(e) => Switched::Failed {
                name,
                error: e.to_string(),
            },
        }
    }
}
