//! The body of `POST /api/rooms`.
//! Run with: cargo +nightly fuzz run create_body (from fuzz/). The checks are in
//! webcall_core::fuzzing::create_body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| webcall_core::fuzzing::create_body(data));
