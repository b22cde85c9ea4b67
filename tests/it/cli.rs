//! The `framewire` binary itself: start-up errors exit non-zero with a clear message; a real
//! `serve` process answers a frame and exits 0 on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use tungstenite::Message;

use crate::support::fixture;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_framewire"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn a_missing_model_exits_non_zero_naming_the_file() {
    let out = bin().args(["serve", "--listen", "127.0.0.1:0", "--models", "/nonexistent"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/ssd_mobilenet_v2_coco.onnx"), "{err}");
}

#[test]
fn a_bad_value_exits_non_zero_naming_the_flag() {
    let out = bin().args(["serve", "--max-sessions", "0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-sessions"));
    let out = bin().args(["serve", "--on-invalid", "maybe"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn serve_from_the_repo_root_answers_then_exits_zero_on_sigterm() {
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "1"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let url = loop {
        let line = lines.next().expect("server exited before listening").unwrap();
        log.push(line.clone());
        if let Some(i) = line.find("ws://") {
            break line[i..].trim().to_string();
        }
    };
    assert!(log.iter().any(|l| l.contains("loaded ssd detector") && l.contains("[1, 300, 300, 3]")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("inference pool: 1 thread")), "{log:?}");
    let (mut ws, _) = tungstenite::connect(&url).unwrap();
    let _hello = ws.read().unwrap();
    ws.send(Message::Binary(fixture("photo_cat_640x480.jpg"))).unwrap();
    let Message::Text(t) = ws.read().unwrap() else { panic!() };
    assert!(t.contains("\"label\":\"cat\""), "{t}");
    // SIGTERM: the open session is closed with 1001 and the process exits 0.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    match ws.read().unwrap() {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
        m => panic!("{m:?}"),
    }
    drop(ws);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The session's end was logged with its counters.
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains(" end ") && l.contains("frames=1") && l.contains("results=1")), "{rest:?}");
}
