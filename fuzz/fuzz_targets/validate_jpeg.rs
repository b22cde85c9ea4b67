//! cargo-fuzz target `validate_jpeg`: Arbitrary bytes through the JPEG header walk (and the decoder, for what it admits).
//! The body lives in `fuzz/src/bodies.rs`, shared with the stable replay test
//! `tests/it/fuzz_replay.rs`.
#![no_main]

#[path = "../src/bodies.rs"]
#[allow(dead_code)] // each target uses one of the bodies
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::validate_jpeg(data));
