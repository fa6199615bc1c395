//! The `webcall` command's library: the terminal call screen ([`screen`]),
//! the real devices ([`devices`]: camera, microphone, speaker) and chat
//! text at the terminal ([`chat`]). The binary in `main.rs` uses it.

pub mod chat;
pub mod devices;
pub mod screen;
