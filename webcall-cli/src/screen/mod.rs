//! The terminal call screen.
//!
//! [`ScreenState`] is plain data (pictures, connection, figures, toggles);
//! [`render`] draws it with ratatui, the remote picture in half blocks (or,
//! where the terminal draws images, leaves its cells blank for [`painter`]
//! to fill at pixel resolution; [`detect`] finds out which) and a
//! self-view in a corner, the latest chat messages over the picture and
//! the verification code and the call's quality grade on the status
//! line (details in a box, [`quality`]); [`handle_key`] maps keys to
//! [`Action`]s (`d` and `a` switch camera and microphone, [`switch`],
//! [`live`]), and [`handle_typing_key`] keys on the open chat line. The
//! [`terminal`] module owns the terminal (raw mode, alternate screen, restore
//! on every exit) and [`run`] the loop that ties a call to the screen.
//! [`status`] lays the status line out by priority, [`help`] is the key
//! overlay on `?`, [`end`] the screen shown when the call is over, and
//! [`mono`] the screen without colour (`NO_COLOR`, `TERM=dumb`).
//! Inside tmux, kitty images go through tmux's passthrough and show where
//! the screen writes Unicode placeholder cells ([`tmux`]).

pub mod detect;
pub mod end;
pub mod engine;
pub mod help;
pub mod i18n;
pub mod keys;
pub mod live;
pub mod logs;
pub mod meter;
pub mod mono;
pub mod painter;
pub mod palette;
pub mod pixels;
pub mod quality;
pub mod render;
pub mod run;
pub mod state;
pub mod status;
pub mod switch;
pub mod terminal;
pub mod tmux;
pub mod video;

pub use engine::CallScreen;
pub use i18n::Lang;
pub use keys::{Action, Typing, handle_help_key, handle_key, handle_typing_key};
pub use palette::{ColorMode, rgb_to_xterm256};
pub use pixels::Graphics;
pub use render::render;
pub use run::{CallControl, FrameSlot, Outcome, ScreenEvent, run};
pub use state::{CHAT_HISTORY, ChatLine, Connection, ScreenState};
pub use switch::{DeviceKind, Switched};
pub use terminal::{Input, TerminalSession};
