//! Stable replay of the fuzz corpora: every file under `fuzz/seeds/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same body as the cargo-fuzz target of that name
//! (both include `fuzz/src/bodies.rs`). Crashes found by fuzzing are
//! kept both as files in `fuzz/regressions/<target>/` and as named tests at the end of this file.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

#[path = "../../fuzz/src/bodies.rs"]
mod bodies;

use bodies::{decode, decode_h264, session_bytes, validate_h264, validate_jpeg};

/// Runs every file of `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/` through `body`;
/// fails listing every file that panicked.
fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failed = Vec::new();
    let mut count = 0;
    for kind in ["seeds", "regressions"] {
        let dir = root.join(kind).join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        files.sort();
        for path in files {
            let data = std::fs::read(&path).unwrap();
            count += 1;
            if catch_unwind(AssertUnwindSafe(|| body(&data))).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(count > 0, "no inputs for {target}");
    assert!(failed.is_empty(), "{target}: {} of {count} inputs failed: {failed:#?}", failed.len());
}

#[test]
fn fuzz_replay_validate_jpeg() {
    replay("validate_jpeg", validate_jpeg);
}

#[test]
fn fuzz_replay_decode() {
    replay("decode", decode);
}

#[test]
fn fuzz_replay_validate_h264() {
    replay("validate_h264", validate_h264);
}

#[test]
fn fuzz_replay_decode_h264() {
    replay("decode_h264", decode_h264);
}

#[test]
fn fuzz_replay_session_bytes() {
    replay("session_bytes", session_bytes);
}

// ---- crashes found by fuzzing (also files in fuzz/regressions/<target>/) ----------------------
