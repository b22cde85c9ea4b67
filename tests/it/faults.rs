//! #29: `framewire stream` recovers by itself from the ordinary faults of weeks next to cameras,
//! against real processes (the real binary, real ffmpeg, the real model) and the loopback fault
//! injectors of `support::fakes`: a server that takes the connection and never answers the
//! upgrade, a link that goes silent (no reset: nothing at all) with a frame in flight and while
//! idle, a camera that freezes its connection, a camera that writes endless garbage; and the
//! small things: a stdin source that sends nothing cannot hold the run, a message type this
//! client does not know is skipped, `framewire bench` has deadlines too. Each fault gets its
//! line on stderr and its counter in the summary, and the client delivers results again in the
//! same run; nothing is counted twice and every frame sent is answered, dropped or lost.
//!
//! The tests shorten the deadlines (`--answer-timeout 2`, …) so they take seconds; how long the
//! defaults take to recover is in the README (Cameras). The camera tests need ffmpeg (see
//! `cameras.rs`: skipped without it unless `FRAMEWIRE_REQUIRE_CAMERAS=1`).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use tungstenite::Message;

use crate::support::fakes::{figure, have_ffmpeg, stream, stream_camera, stream_with_stdin, MjpegCamera, Proxy};
use crate::support::{fixture, TestServer};

fn count(out: &[String], kind: &str) -> usize {
    out.iter().filter(|l| l.contains(&format!(r#""type":"{kind}""#))).count()
}

#[test]
fn a_server_that_takes_the_connection_and_never_answers_the_upgrade_is_tried_again() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let proxy = Proxy::start(server.handle.local_addr());
    proxy.go_silent();
    let cam = MjpegCamera::start(0, fixture("photo_cat_640x480.jpg"), 10.0, None);
    let url = proxy.url();
    let s = stream_camera(&cam, &url, 3, &["--handshake-timeout", "1"]);
    s.wait_for("the handshake timeout", |s| s.stderr_has("no answer to the upgrade within 1 s); retrying in 1 s"));
    proxy.speak();
    let (ok, out, err) = s.finish();
    assert!(ok, "{err:?}");
    assert!(figure(&err, "handshake_timeouts") >= 1, "{err:?}");
    assert_eq!((figure(&err, "sent"), figure(&err, "results")), (3, 3), "{err:?}");
    assert_eq!(count(&out, "session_started"), 1, "the one session that opened");
    assert!(proxy.connections() >= 2, "the one that got no answer, then the one that did");
}

#[test]
fn a_link_that_goes_silent_with_a_frame_in_flight_is_dropped_and_connected_again() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let proxy = Proxy::start(server.handle.local_addr());
    let cam = MjpegCamera::start(0, fixture("photo_cat_640x480.jpg"), 10.0, None);
    let url = proxy.url();
    let s = stream_camera(&cam, &url, 8, &["--answer-timeout", "2"]);
    s.wait_for("3 results", |s| s.results() >= 3);
    // The proxy keeps both sockets open and forwards nothing: no reset, no close, nothing.
    proxy.go_silent();
    s.wait_for("the dead link", |s| s.stderr_has("the link is dead"));
    proxy.speak();
    let (ok, out, err) = s.finish();
    assert!(ok, "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.contains("connection lost (no message for 2 s with 1 frame(s) in flight: the link is dead)")),
        "{err:?}"
    );
    // `--count` counts frames sent (`--pace server`): the one sent into the silence is lost.
    let (sent, results, lost) = (figure(&err, "sent"), figure(&err, "results"), figure(&err, "lost"));
    assert_eq!((sent, results, lost), (8, 7, 1), "{err:?}");
    assert_eq!(figure(&err, "dropped"), 0, "{err:?}");
    assert_eq!((figure(&err, "answer_timeouts"), figure(&err, "reconnects")), (1, 1), "{err:?}");
    assert_eq!(count(&out, "session_started"), 2);
}

#[test]
fn an_idle_link_that_goes_silent_gets_no_pong_and_is_connected_again() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.handle.local_addr());
    let url = proxy.url();
    // A frame every 2 s: idle in between, pinged after 0.3 s of silence.
    let s = stream(&[
        "tests/fixtures/seq",
        "--loop",
        "--count",
        "4",
        "--fps",
        "0.5",
        "--pipeline",
        "detect",
        "--url",
        &url,
        "--ping-interval",
        "0.3",
        "--max-retries",
        "3",
    ]);
    s.wait_for("2 results", |s| s.results() >= 2);
    proxy.go_silent();
    s.wait_for("the dead link", |s| s.stderr_has("no pong within 0.3 s of a ping: the link is dead"));
    proxy.speak();
    let (ok, _, err) = s.finish();
    assert!(ok, "{err:?}");
    assert_eq!((figure(&err, "results"), figure(&err, "lost")), (4, 0), "nothing was in flight: {err:?}");
    assert_eq!((figure(&err, "pong_timeouts"), figure(&err, "reconnects")), (1, 1), "{err:?}");
}

#[test]
fn a_camera_that_freezes_its_connection_is_restarted_by_the_watchdog() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let cam = MjpegCamera::start(0, fixture("photo_cat_640x480.jpg"), 10.0, None);
    let s = stream_camera(&cam, &url, 8, &["--stall-timeout", "2"]);
    s.wait_for("3 results", |s| s.results() >= 3);
    // The camera keeps its connection and sends nothing more (ffmpeg would wait forever).
    cam.freeze();
    let (ok, out, err) = s.finish();
    assert!(ok, "{err:?}");
    let cam_url = cam.url();
    assert!(
        err.iter().any(|l| l.contains(&format!("source {cam_url}: no frame for 2 s (--stall-timeout)"))
            && l.contains("restarting in 1 s (attempt 1)")),
        "{err:?}"
    );
    assert!(err.iter().any(|l| l.contains(&format!("source {cam_url} is back"))), "{err:?}");
    assert_eq!((figure(&err, "results"), figure(&err, "stalls")), (8, 1), "{err:?}");
    assert_eq!(count(&out, "session_started"), 1, "one session throughout");
    assert!(cam.connections() >= 2, "ffmpeg connected again");
}

#[test]
fn a_camera_that_writes_endless_garbage_is_restarted_until_it_sends_frames() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    // The first connection gets random bytes forever; the next ones, frames.
    let cam = MjpegCamera::start_with_garbage(0, fixture("photo_cat_640x480.jpg"), 10.0, None, 1);
    let s = stream_camera(&cam, &url, 3, &["--stall-timeout", "2"]);
    let (ok, _, err) = s.finish();
    assert!(ok, "{err:?}");
    assert!(err.iter().any(|l| l.contains("restarting in 1 s (attempt 1)")), "{err:?}");
    assert!(err.iter().any(|l| l.contains("is back")), "{err:?}");
    assert_eq!(figure(&err, "results"), 3, "{err:?}");
}

#[test]
fn a_stdin_source_that_sends_nothing_cannot_hold_a_refused_run() {
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let dir = std::env::temp_dir().join(format!("framewire-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("bad.json");
    std::fs::write(&cfg, r#"{"lines":[{"name":"g","points":[[0,0],[9,9]]}]}"#).unwrap();
    // stdin stays open and silent (the pipe's write end is held here).
    let (s, _stdin) = stream_with_stdin(
        &["-", "--url", &url, "--pipeline", "detect", "--config", cfg.to_str().unwrap()],
        Stdio::piped(),
    );
    s.wait_for_within("the run to end", Duration::from_secs(30), |s| s.stderr_has("refused the configuration"));
    let (ok, _, err) = s.finish();
    assert!(!ok);
    assert!(err.iter().any(|l| l.contains("zones and lines need tracking")), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A plumbing stand-in for a newer server (not framewire, no model): it greets, then answers
/// every frame with a message of a type this client does not know, then the frame's result.
fn newer_server_stand_in() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws/video/stream", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        ws.send(Message::text(r#"{"type":"session_started","session_id":"x","protocol":2}"#)).unwrap();
        let mut index = 0;
        while let Ok(m) = ws.read() {
            match m {
                Message::Binary(_) => {
                    ws.send(Message::text(format!(r#"{{"type":"zone_report","frame_index":{index}}}"#))).unwrap();
                    let result = format!(r#"{{"type":"result","frame_index":{index},"result":{{"detections":[]}}}}"#);
                    ws.send(Message::text(result)).unwrap();
                    index += 1;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    (url, thread)
}

#[test]
fn a_message_type_this_client_does_not_know_is_skipped_with_a_stand_in_server() {
    let (url, server) = newer_server_stand_in();
    let s = stream(&["tests/fixtures/seq", "--count", "3", "--fps", "20", "--url", &url]);
    let (ok, out, err) = s.finish();
    let _ = server.join();
    assert!(ok, "{err:?}");
    let notes: Vec<&String> = err.iter().filter(|l| l.contains("skipped a message (\"zone_report\")")).collect();
    assert_eq!(notes.len(), 1, "one note: {err:?}");
    assert_eq!((figure(&err, "results"), figure(&err, "unknown")), (3, 3), "{err:?}");
    assert_eq!(count(&out, "zone_report"), 0, "skipped, not printed");
}

#[test]
fn bench_has_deadlines_too() {
    let server = TestServer::start();
    let proxy = Proxy::start(server.handle.local_addr());
    proxy.go_silent();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_framewire"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["bench", "closed", "--url", &proxy.url(), "--count", "1", "--handshake-timeout", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no answer to the upgrade within 1 s"), "{err}");
}
