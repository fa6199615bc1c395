//! The screen as a [`VideoSource`] (`webcall join --video screen`): the
//! X11 display's root window, read with `GetImage` through x11rb's
//! pure-Rust connection (no libxcb), at [`SCREEN_FPS`] and at most
//! [`MAX_WIDTH`] x [`MAX_HEIGHT`] (a larger screen is shrunk by a whole
//! factor, each pixel the mean of its block).
//!
//! X11 only: on Wayland the display XWayland offers shows X11 windows
//! alone. The mouse pointer is not drawn (`GetImage` leaves it out).

use std::time::Duration;

use webcall_core::call::sources::Pacer;
use webcall_core::media::{VideoFrame, VideoSource};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt, ImageFormat, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;

use super::DeviceError;
use webcall_pixels::{Pixel32, pixel32_to_i420};

/// Pictures a second: enough for slides, documents and a terminal, at a
/// fraction of a camera's encoding cost per second.
pub const SCREEN_FPS: u32 = 15;
/// The widest picture sent; a wider screen is shrunk.
pub const MAX_WIDTH: u32 = 1280;
/// The tallest picture sent; a taller screen is shrunk.
pub const MAX_HEIGHT: u32 = 720;

/// The message when there is no X11 display to read.
pub const NO_DISPLAY: &str = "no screen to share: --video screen reads an X11 display and DISPLAY is not set (use --video test or --video FILE.y4m)";

/// The whole-factor shrink that fits a `width` x `height` screen into
/// [`MAX_WIDTH`] x [`MAX_HEIGHT`] (1: as it is).
pub fn shrink_for(width: u32, height: u32) -> u32 {
    width
        .div_ceil(MAX_WIDTH)
        .max(height.div_ceil(MAX_HEIGHT))
        .max(1)
}

/// The X11 screen, read at [`SCREEN_FPS`].
pub struct DesktopSource {
    connection: RustConnection,
    root: Window,
    layout: Pixel32,
    pacer: Pacer,
    name: String,
    ended: bool,
}

impl std::fmt::Debug for DesktopSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopSource")
            .field("name", &self.name)
            .field("root", &self.root)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl DesktopSource {
    /// Opens the display named by `DISPLAY` and checks it can be read: its
    /// root window in 24-bit colour at 32 bits a pixel (what X servers use
    /// today). The error says what is wrong and what to use instead.
    pub fn open() -> Result<Self, DeviceError> {
        let display = std::env::var("DISPLAY")
            .ok()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| DeviceError::Screen(NO_DISPLAY.into()))?;
        let (connection, screen) = RustConnection::connect(Some(&display)).map_err(|e| {
            DeviceError::Screen(format!(
                "could not open the X11 display {display:?} to share the screen: {e} (check DISPLAY, or use --video test)"
            ))
        })?;
        let setup = connection.setup();
        let root = &setup.roots[screen];
        let unsupported = |why: String| {
            DeviceError::Screen(format!(
                "cannot share the screen of X11 display {display:?}: {why}; --video screen reads 24-bit colour only"
            ))
        };
        let bits = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == root.root_depth)
            .map(|f| f.bits_per_pixel);
        if root.root_depth != 24 || bits != Some(32) {
            return Err(unsupported(format!(
                "depth {} at {} bits a pixel",
                root.root_depth,
                bits.map_or("unknown".into(), |b| b.to_string())
            )));
        }
        let visual = root
            .allowed_depths
            .iter()
            .flat_map(|d| &d.visuals)
            .find(|v| v.visual_id == root.root_visual)
            .ok_or_else(|| unsupported("its root visual is not listed".into()))?;
        let msb = setup.image_byte_order == ImageOrder::MSB_FIRST;
        let byte_of = |mask: u32| {
            let shift = mask.trailing_zeros();
            (shift.is_multiple_of(8) && mask.checked_shr(shift) == Some(0xff)).then(|| {
                let lsb_index = (shift / 8) as usize;
                if msb { 3 - lsb_index } else { lsb_index }
            })
        };
        let rgb = match [visual.red_mask, visual.green_mask, visual.blue_mask].map(byte_of) {
            [Some(r), Some(g), Some(b)] => [r, g, b],
            _ => {
                return Err(unsupported(format!(
                    "colour masks {:#x} {:#x} {:#x}",
                    visual.red_mask, visual.green_mask, visual.blue_mask
                )));
            }
        };
        let root_window = root.root;
        let (width, height) = (root.width_in_pixels, root.height_in_pixels);
        Ok(Self {
            root: root_window,
            layout: Pixel32 { rgb },
            pacer: Pacer::new(Duration::from_secs(1) / SCREEN_FPS),
            name: format!("screen {display} ({width}x{height})"),
            connection,
            ended: false,
        })
    }

    /// One picture of the whole screen at its size now.
    fn grab(&self) -> Result<Option<VideoFrame>, String> {
        let geometry = self
            .connection
            .get_geometry(self.root)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        let (width, height) = (geometry.width, geometry.height);
        let image = self
            .connection
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                0,
                0,
                width,
                height,
                u32::MAX,
            )
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| e.to_string())?;
        let (width, height) = (u32::from(width), u32::from(height));
        Ok(pixel32_to_i420(
            width,
            height,
            &image.data,
            self.layout,
            shrink_for(width, height),
        ))
    }
}

impl VideoSource for DesktopSource {
    fn next_frame(&mut self) -> webcall_core::Result<Option<VideoFrame>> {
        if self.ended {
            return Ok(None);
        }
        let at = self.pacer.wait();
        match self.grab() {
            Ok(Some(mut frame)) => {
                frame.timestamp = at;
                Ok(Some(frame))
            }
            Ok(None) => {
                self.ended = true;
                Err(webcall_core::Error::Media(format!(
                    "{}: the display sent a picture too small or too short to use; the video stops, the call goes on",
                    self.name
                )))
            }
            Err(e) => {
                self.ended = true;
                Err(webcall_core::Error::Media(format!(
                    "{}: reading the screen failed ({e}); the video stops, the call goes on",
                    self.name
                )))
            }
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_screens_shrink_by_a_whole_factor_into_1280_by_720() {
        assert_eq!(shrink_for(640, 480), 1);
        assert_eq!(shrink_for(1280, 720), 1);
        assert_eq!(shrink_for(1920, 1080), 2);
        assert_eq!(shrink_for(2560, 1440), 2);
        assert_eq!(shrink_for(3840, 2160), 3);
        assert_eq!(shrink_for(1024, 1600), 3);
    }
}
