//! A WebSocket text frame, decoded as a client's and as the server's message.
//! Run with: cargo +nightly fuzz run signaling (from fuzz/). The checks are in
//! webcall_core::fuzzing::signaling.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webcall_core::fuzzing::signaling(data));
