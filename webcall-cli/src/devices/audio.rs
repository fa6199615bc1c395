//! Finding sound devices with cpal, and the thread that owns a running
//! stream (a cpal stream is not guaranteed to move between threads, so it
//! lives and dies on one of its own).

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::DeviceError;

/// Which way a device goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A microphone.
    Input,
    /// A speaker.
    Output,
}

/// The message for a machine without a microphone.
pub const NO_MICROPHONE: &str =
    "no microphone found: join with --audio tone, --audio FILE.wav or --audio none";
/// The message for a machine without a speaker.
pub const NO_SPEAKER: &str = "no speaker found: the other side will not be heard; pick one with --speaker NAME (see `webcall devices`)";

/// One sound device as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AudioDeviceInfo {
    /// The device's name (what `--mic` and `--speaker` match).
    pub name: String,
    /// Whether it is the system default.
    pub default: bool,
    /// Its default sample rate in Hz.
    pub sample_rate: u32,
    /// Its default channel count.
    pub channels: u16,
}

/// Keeps alsa-lib's own messages (such as "cannot find card '0'" on a
/// machine without a sound card) off stderr while this is alive, on this
/// thread; they go to the debug log instead. Elsewhere it does nothing.
#[must_use]
pub struct QuietAlsa {
    #[cfg(target_os = "linux")]
    buffer: Option<std::rc::Rc<std::cell::RefCell<alsa::Output>>>,
}

impl QuietAlsa {
    /// Starts collecting alsa-lib's messages on this thread.
    pub fn new() -> Self {
        Self {
            #[cfg(target_os = "linux")]
            buffer: alsa::Output::local_error_handler().ok(),
        }
    }
}

impl Default for QuietAlsa {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for QuietAlsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuietAlsa")
    }
}

impl Drop for QuietAlsa {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(buffer) = &self.buffer {
            let text = buffer.borrow().to_string();
            if !text.trim().is_empty() {
                tracing::debug!("alsa-lib: {}", text.trim());
            }
        }
    }
}

/// The name cpal gives a device.
pub fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_else(|_| device.to_string())
}

fn default_config(
    device: &cpal::Device,
    dir: Direction,
) -> Result<cpal::SupportedStreamConfig, cpal::Error> {
    match dir {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
}

/// The usable devices one way. A device whose default configuration cannot
/// be read is left out: with no sound card, cpal still names a "default"
/// device that then fails here.
pub fn list(dir: Direction) -> Vec<AudioDeviceInfo> {
    let _quiet = QuietAlsa::new();
    let host = cpal::default_host();
    let default_name = match dir {
        Direction::Input => host.default_input_device(),
        Direction::Output => host.default_output_device(),
    }
    .map(|d| device_name(&d));
    let devices = match dir {
        Direction::Input => host.input_devices().map(|d| d.collect::<Vec<_>>()),
        Direction::Output => host.output_devices().map(|d| d.collect::<Vec<_>>()),
    }
    .unwrap_or_default();
    let mut out: Vec<AudioDeviceInfo> = Vec::new();
    for device in devices {
        let Ok(config) = default_config(&device, dir) else {
            continue;
        };
        let name = device_name(&device);
        if out.iter().any(|d| d.name == name) {
            continue;
        }
        out.push(AudioDeviceInfo {
            default: default_name.as_deref() == Some(name.as_str()),
            name,
            sample_rate: config.sample_rate(),
            channels: config.channels(),
        });
    }
    out
}

/// Finds a device by name (case-insensitive substring), or the default one,
/// and its default configuration.
pub fn find(
    dir: Direction,
    name: Option<&str>,
) -> Result<(cpal::Device, cpal::SupportedStreamConfig), DeviceError> {
    let _quiet = QuietAlsa::new();
    let host = cpal::default_host();
    let missing = || match dir {
        Direction::Input => DeviceError::Microphone(NO_MICROPHONE.into()),
        Direction::Output => DeviceError::Speaker(NO_SPEAKER.into()),
    };
    let device = match name {
        None => match dir {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        }
        .ok_or_else(missing)?,
        Some(wanted) => {
            let needle = wanted.to_lowercase();
            let devices = match dir {
                Direction::Input => host.input_devices().map(|d| d.collect::<Vec<_>>()),
                Direction::Output => host.output_devices().map(|d| d.collect::<Vec<_>>()),
            }
            .unwrap_or_default();
            let names: Vec<String> = devices.iter().map(device_name).collect();
            let pos = names
                .iter()
                .position(|n| n.to_lowercase() == needle)
                .or_else(|| {
                    names
                        .iter()
                        .position(|n| n.to_lowercase().contains(&needle))
                });
            match pos {
                Some(i) => devices.into_iter().nth(i).ok_or_else(missing)?,
                None => {
                    let what = match dir {
                        Direction::Input => "microphone",
                        Direction::Output => "speaker",
                    };
                    let msg = format!(
                        "no {what} named {wanted:?}: run `webcall devices` to see them ({})",
                        names.join(", ")
                    );
                    return Err(match dir {
                        Direction::Input => DeviceError::Microphone(msg),
                        Direction::Output => DeviceError::Speaker(msg),
                    });
                }
            }
        }
    };
    // cpal reports a default device even with no sound card; reading its
    // configuration is what fails then.
    let config = default_config(&device, dir).map_err(|_| missing())?;
    Ok((device, config))
}

/// `$typed::<T>(args)` with `T` the Rust type of cpal's sample format
/// `$format`, or an error for a format webcall does not handle.
macro_rules! with_sample_type {
    ($format:expr, $typed:ident($($arg:expr),* $(,)?)) => {
        match $format {
            cpal::SampleFormat::I16 => $typed::<i16>($($arg),*),
            cpal::SampleFormat::U16 => $typed::<u16>($($arg),*),
            cpal::SampleFormat::I32 => $typed::<i32>($($arg),*),
            cpal::SampleFormat::U8 => $typed::<u8>($($arg),*),
            cpal::SampleFormat::I8 => $typed::<i8>($($arg),*),
            cpal::SampleFormat::F32 => $typed::<f32>($($arg),*),
            cpal::SampleFormat::F64 => $typed::<f64>($($arg),*),
            other => Err(format!("the sample format {other} is not supported")),
        }
    };
}
pub(crate) use with_sample_type;

/// A stream running on its own thread; dropping this stops it.
#[derive(Debug)]
pub struct StreamThread {
    stop: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl StreamThread {
    /// Builds a stream with `build` on a new thread and starts it. Returns
    /// once it plays, or with the error that stopped it.
    pub fn start<F>(name: &str, build: F) -> Result<Self, String>
    where
        F: FnOnce() -> Result<cpal::Stream, String> + Send + 'static,
    {
        let (ready_tx, ready_rx) = sync_channel::<Result<(), String>>(1);
        let (stop_tx, stop_rx) = sync_channel::<()>(0);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let quiet = QuietAlsa::new();
                let stream = match build().and_then(|s| {
                    s.play()
                        .map(|()| s)
                        .map_err(|e| format!("the stream would not start: {e}"))
                }) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                drop(quiet);
                // Returns when the owner drops its sender.
                let _ = stop_rx.recv();
                drop(stream);
            })
            .map_err(|e| format!("could not start the audio thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the audio thread stopped while opening the device".into()),
        }
    }
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
