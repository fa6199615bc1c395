//! A room driven through joins, resumes, messages, disconnects, ticks and expiry.
//! Run with: cargo +nightly fuzz run room (from fuzz/). The checks are in
//! webcall_core::fuzzing::room.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webcall_core::fuzzing::room(data));
