//! The `webcall` command's library: the terminal call screen ([`screen`])
//! and the real devices ([`devices`]: camera, microphone, speaker). The
//! binary in `main.rs` uses it.

pub mod devices;
pub mod screen;
