//! cargo-fuzz target `decode`: Admitted frames through the strict decoder at every scale.
//! The body lives in `fuzz/src/bodies.rs`, shared with the stable replay test
//! `tests/it/fuzz_replay.rs`.
#![no_main]

#[path = "../src/bodies.rs"]
#[allow(dead_code)] // each target uses one of the bodies
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::decode(data));
