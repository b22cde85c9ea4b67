//! cargo-fuzz target `session_bytes`: Arbitrary bytes as a client's WebSocket stream into a server session.
//! The body lives in `fuzz/src/bodies.rs`, shared with the stable replay test
//! `tests/it/fuzz_replay.rs`.
#![no_main]

#[path = "../src/bodies.rs"]
#[allow(dead_code)] // each target uses one of the bodies
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::session_bytes(data));
