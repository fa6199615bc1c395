//! A call link, server address or token, as a user pastes it.
//! Run with: cargo +nightly fuzz run link (from fuzz/). The checks are in
//! webcall_core::fuzzing::link.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webcall_core::fuzzing::link(data));
