//! The camera as a [`VideoSource`], through nokhwa (V4L2 on Linux).
//!
//! The camera is opened and read on its own thread (nokhwa's camera handle
//! cannot move between threads); frames come back over a short channel, so
//! [`CameraSource::next_frame`] blocks until the camera delivers, which paces
//! the call at the camera's rate. Dropping the source closes the channel and
//! the thread ends after the frame it is waiting for.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use webcall_core::media::{VideoFrame, VideoSource};

use super::DeviceError;
use webcall_pixels::{gray_to_i420, nv12_to_i420, rgb_to_i420, yuyv_to_i420};

/// What the user asked for: a camera by position in the list or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraChoice {
    /// The first camera found.
    Default,
    /// The camera at this position in `webcall devices`.
    Index(u32),
    /// The camera whose name contains this text (case-insensitive).
    Name(String),
}

impl CameraChoice {
    /// Reads `--camera`: a number is an index, anything else a name.
    pub fn parse(s: &str) -> Self {
        match s.trim().parse() {
            Ok(i) => Self::Index(i),
            Err(_) => Self::Name(s.trim().to_owned()),
        }
    }
}

/// One camera as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CameraInfo {
    /// Position in the list (what `--camera INDEX` takes).
    pub index: u32,
    /// The camera's name.
    pub name: String,
    /// The driver's description (on Linux, the device path and bus).
    pub description: String,
}

/// The cameras present. No cameras is an empty list, not an error.
pub fn list_cameras() -> Result<Vec<CameraInfo>, DeviceError> {
    let found = nokhwa::query(ApiBackend::Auto)
        .map_err(|e| DeviceError::Camera(format!("listing cameras failed: {e}")))?;
    Ok(found
        .iter()
        .enumerate()
        .map(|(i, c)| CameraInfo {
            index: c.index().as_index().unwrap_or(i as u32),
            name: c.human_name(),
            description: c.description().to_owned(),
        })
        .collect())
}

/// The message for a machine without a usable camera.
pub const NO_CAMERA: &str =
    "no camera found: join with --video test, --video FILE.y4m or --video none";

/// A live camera producing I420 frames.
#[derive(Debug)]
pub struct CameraSource {
    name: String,
    frames: Receiver<Result<VideoFrame, String>>,
    start: Instant,
    ended: bool,
}

impl CameraSource {
    /// Opens the chosen camera, asking for about 640x480 at 30 fps.
    /// Without cameras, or without a matching one, the error says what to
    /// use instead.
    pub fn open(choice: &CameraChoice) -> Result<Self, DeviceError> {
        let cameras = list_cameras()?;
        if cameras.is_empty() {
            return Err(DeviceError::Camera(NO_CAMERA.into()));
        }
        let info =
            match choice {
                CameraChoice::Default => cameras[0].clone(),
                CameraChoice::Index(i) => cameras
                    .iter()
                    .find(|c| c.index == *i)
                    .cloned()
                    .ok_or_else(|| {
                        DeviceError::Camera(format!(
                            "no camera number {i}: run `webcall devices` to see the cameras ({})",
                            names(&cameras)
                        ))
                    })?,
                CameraChoice::Name(n) => {
                    let needle = n.to_lowercase();
                    cameras
                    .iter()
                    .find(|c| c.name.to_lowercase().contains(&needle))
                    .cloned()
                    .ok_or_else(|| {
                        DeviceError::Camera(format!(
                            "no camera named {n:?}: run `webcall devices` to see the cameras ({})",
                            names(&cameras)
                        ))
                    })?
                }
            };
        let (ready_tx, ready_rx) = sync_channel(1);
        let (frames_tx, frames_rx) = sync_channel(2);
        let index = info.index;
        std::thread::Builder::new()
            .name("camera".into())
            .spawn(move || capture(index, ready_tx, frames_tx))
            .map_err(|e| DeviceError::Camera(format!("could not start the camera thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(DeviceError::Camera(format!(
                    "could not open camera {index} ({}): {e}; pick another with --camera or join with --video test",
                    info.name
                )));
            }
            Err(_) => {
                return Err(DeviceError::Camera(format!(
                    "camera {index} ({}) stopped while opening",
                    info.name
                )));
            }
        }
        Ok(Self {
            name: format!("camera {index} ({})", info.name),
            frames: frames_rx,
            start: Instant::now(),
            ended: false,
        })
    }
}

fn names(cameras: &[CameraInfo]) -> String {
    cameras
        .iter()
        .map(|c| format!("{}: {}", c.index, c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The camera thread: open, report, then read frames until the receiver goes.
fn capture(
    index: u32,
    ready: SyncSender<Result<(), String>>,
    frames: SyncSender<Result<VideoFrame, String>>,
) {
    let wanted = CameraFormat::new(Resolution::new(640, 480), FrameFormat::MJPEG, 30);
    let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
    let mut camera = match Camera::new(CameraIndex::Index(index), format)
        .and_then(|mut c| c.open_stream().map(|()| c))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    loop {
        let result = camera
            .frame()
            .map_err(|e| format!("the camera stopped delivering pictures: {e}"))
            .and_then(|buffer| {
                let res = buffer.resolution();
                let (w, h) = (res.width(), res.height());
                let data = buffer.buffer();
                let frame = match buffer.source_frame_format() {
                    FrameFormat::YUYV => yuyv_to_i420(w, h, data),
                    FrameFormat::NV12 => nv12_to_i420(w, h, data),
                    FrameFormat::GRAY => gray_to_i420(w, h, data),
                    FrameFormat::RAWRGB => rgb_to_i420(w, h, data, false),
                    FrameFormat::RAWBGR => rgb_to_i420(w, h, data, true),
                    FrameFormat::MJPEG => {
                        let rgb = buffer
                            .decode_image::<RgbFormat>()
                            .map_err(|e| format!("a camera picture did not decode: {e}"))?;
                        rgb_to_i420(rgb.width(), rgb.height(), rgb.as_raw(), false)
                    }
                };
                frame.ok_or_else(|| format!("the camera sent a {w}x{h} picture too short to use"))
            });
        let failed = result.is_err();
        if frames.send(result).is_err() || failed {
            break;
        }
    }
    let _ = camera.stop_stream();
}

impl VideoSource for CameraSource {
    fn next_frame(&mut self) -> webcall_core::Result<Option<VideoFrame>> {
        if self.ended {
            return Ok(None);
        }
        match self.frames.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(mut frame)) => {
                frame.timestamp = self.start.elapsed();
                Ok(Some(frame))
            }
            Ok(Err(e)) => {
                self.ended = true;
                Err(webcall_core::Error::Media(format!("{}: {e}", self.name)))
            }
            Err(_) => {
                self.ended = true;
                Err(webcall_core::Error::Media(format!(
                    "{} sent no picture for 5 s: the video stops, the call goes on",
                    self.name
                )))
            }
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
