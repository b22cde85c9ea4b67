//! cargo-fuzz target `decode_h264`: Arbitrary bytes as a short stream of H.264 access units through the check and OpenH264.
//! The body lives in `fuzz/src/bodies.rs`, shared with the stable replay test
//! `tests/it/fuzz_replay.rs`.
#![no_main]

#[path = "../src/bodies.rs"]
#[allow(dead_code)] // each target uses one of the bodies
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::decode_h264(data));
