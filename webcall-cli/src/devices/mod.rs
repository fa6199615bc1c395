//! Real devices: the camera ([`CameraSource`], nokhwa), the X11 screen
//! ([`DesktopSource`], x11rb), the microphone ([`MicSource`]) and the
//! speaker ([`SpeakerSink`]) through cpal, and the listing behind
//! `webcall devices`.
//!
//! Each plugs into the call engine through `webcall_core::media`'s traits.
//! A missing device is an error that says what to use instead; a device that
//! fails during a call makes its source or sink return an error, and the
//! call goes on with what still works.

pub mod audio;
pub mod camera;
pub mod desktop;
pub mod jitter;
pub mod mic;
pub mod speaker;

pub use audio::{AudioDeviceInfo, NO_MICROPHONE, NO_SPEAKER};
pub use camera::{CameraChoice, CameraInfo, CameraSource, NO_CAMERA};
pub use desktop::DesktopSource;
pub use mic::MicSource;
pub use speaker::SpeakerSink;

/// A device that could not be found or opened. The message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// No usable camera.
    #[error("{0}")]
    Camera(String),
    /// No usable microphone.
    #[error("{0}")]
    Microphone(String),
    /// No usable speaker.
    #[error("{0}")]
    Speaker(String),
    /// No screen to share (`--video screen`).
    #[error("{0}")]
    Screen(String),
}

/// Every camera, microphone and speaker present, for `webcall devices`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceList {
    /// Cameras, by index.
    pub cameras: Vec<CameraInfo>,
    /// Microphones.
    pub microphones: Vec<AudioDeviceInfo>,
    /// Speakers.
    pub speakers: Vec<AudioDeviceInfo>,
    /// Problems met while listing (a camera query that failed).
    pub problems: Vec<String>,
}

impl DeviceList {
    /// Looks at what is plugged in.
    pub fn probe() -> Self {
        let mut problems = Vec::new();
        let cameras = camera::list_cameras().unwrap_or_else(|e| {
            problems.push(e.to_string());
            Vec::new()
        });
        Self {
            cameras,
            microphones: audio::list(audio::Direction::Input),
            speakers: audio::list(audio::Direction::Output),
            problems,
        }
    }

    /// The list as JSON (`webcall devices --json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The list as people read it, with advice for what is missing.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "cameras:");
        if self.cameras.is_empty() {
            let _ = writeln!(s, "  none ({NO_CAMERA})");
        }
        for c in &self.cameras {
            let _ = writeln!(s, "  {}: {} [{}]", c.index, c.name, c.description);
        }
        for (title, list, missing) in [
            ("microphones", &self.microphones, NO_MICROPHONE),
            ("speakers", &self.speakers, NO_SPEAKER),
        ] {
            let _ = writeln!(s, "{title}:");
            if list.is_empty() {
                let _ = writeln!(s, "  none ({missing})");
            }
            for d in list {
                let mark = if d.default { " (default)" } else { "" };
                let _ = writeln!(
                    s,
                    "  {}{mark}: {} Hz, {} ch",
                    d.name, d.sample_rate, d.channels
                );
            }
        }
        for p in &self.problems {
            let _ = writeln!(s, "problem: {p}");
        }
        s
    }
}
