//! `framewire stream` with cameras as sources (#20), against real processes: the real binary,
//! the real ffmpeg, a real RTSP server (GStreamer's, `tests/cameras/rtsp_server.py`) and a real
//! HTTP MJPEG camera (a thread here speaking `multipart/x-mixed-replace` over TCP, as IP
//! cameras do), killed and started again mid-stream; the server is killed and started again on
//! the same port.
//!
//! They need `ffmpeg` (and for RTSP Debian's python3-gi + GStreamer's RTSP server); without
//! them they say so and pass, unless `FRAMEWIRE_REQUIRE_CAMERAS=1` (`.ci/run` sets it and
//! installs them), which makes a missing tool a failure.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::support::fakes::{figure, free_port, have, have_ffmpeg, stream, stream_camera, MjpegCamera};
use crate::support::{config, fixture, scheduler, TestServer};

/// Debian's python (where python3-gi lives), or `FRAMEWIRE_GST_PYTHON`.
fn gst_python() -> String {
    std::env::var("FRAMEWIRE_GST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// GStreamer's RTSP server (`tests/cameras/rtsp_server.py`: x264, 320×240 at 10 fps) on a free
/// port, once it says it is ready.
fn rtsp_camera() -> (std::process::Child, u16) {
    let port = free_port();
    let mut rtsp = Command::new(gst_python())
        .arg("tests/cameras/rtsp_server.py")
        .arg(port.to_string())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(rtsp.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    (rtsp, port)
}

/// A real recording in a temporary directory `tag-PID`: 3 s of ffmpeg's test pattern at 25 fps,
/// 320×240, MJPEG in Matroska.
fn mjpeg_clip(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("clip.mkv");
    let made = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=3",
        ])
        .args(["-c:v", "mjpeg", "-q:v", "5"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    (dir, clip)
}

#[test]
fn an_rtsp_camera_streams_results() {
    if !have_ffmpeg() || !have(&gst_python(), &["-c", "import gi; gi.require_version('GstRtspServer', '1.0')"]) {
        return;
    }
    let (mut rtsp, port) = rtsp_camera();
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let cam = format!("rtsp://127.0.0.1:{port}/cam");
    let (ok, out, err) = stream(&[&cam, "--count", "5", "--fps", "5", "--pipeline", "detect", "--url", &url]).finish();
    let _ = rtsp.kill();
    let _ = rtsp.wait();
    assert!(ok, "{err:?}");
    let results: Vec<serde_json::Value> = out
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "result")
        .collect();
    assert_eq!(results.len(), 5, "{out:?}");
    assert_eq!(
        (results[0]["result"]["width"].as_u64(), results[0]["result"]["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!((figure(&err, "sent"), figure(&err, "results")), (5, 5), "{err:?}");
}

#[test]
fn a_camera_killed_and_started_again_is_restarted_and_the_stream_resumes() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let cat = fixture("photo_cat_640x480.jpg");
    let cam = MjpegCamera::start(0, cat.clone(), 10.0, None);
    let (port, cam_url) = (cam.port, cam.url());
    let s = stream_camera(&cam, &url, 12, &[]);
    s.wait_for("3 results", |s| s.results() >= 3);
    cam.kill();
    s.wait_for("the restart note", |s| s.stderr_has("restarting in 1 s"));
    let _cam = MjpegCamera::start(port, cat, 10.0, None);
    let (ok, out, err) = s.finish();
    assert!(ok, "{err:?}");
    assert!(err.iter().any(|l| l.contains(&format!("source {cam_url} is back"))), "{err:?}");
    assert_eq!(out.iter().filter(|l| l.contains(r#""type":"result""#)).count(), 12);
    assert_eq!(out.iter().filter(|l| l.contains(r#""type":"session_started""#)).count(), 1, "one session throughout");
}

#[test]
fn a_server_stopped_and_started_again_gets_the_client_back_with_its_configuration() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let addr: SocketAddr = server.handle.local_addr();
    let url = server.url("/ws/video/stream");
    let cam = MjpegCamera::start(0, fixture("photo_cat_640x480.jpg"), 10.0, None);
    let dir = std::env::temp_dir().join(format!("framewire-cameras-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("cfg.json");
    std::fs::write(&cfg, r#"{"track":true,"lines":[{"name":"gate","points":[[0,240],[640,240]]}]}"#).unwrap();
    let s = stream(&[
        &cam.url(),
        "--count",
        "10",
        "--fps",
        "5",
        "--pipeline",
        "detect",
        "--url",
        &url,
        "--config",
        cfg.to_str().unwrap(),
    ]);
    s.wait_for("3 results", |s| s.results() >= 3);
    drop(server);
    s.wait_for("the reconnect note", |s| s.stderr_has("reconnecting in"));
    let mut cfg2 = config();
    cfg2.listen = addr;
    let _again = TestServer::start_with(cfg2, scheduler());
    let (ok, out, err) = s.finish();
    assert!(ok, "{err:?}");
    assert!(err.iter().any(|l| l.contains("configuration sent again; tracks start anew")), "{err:?}");
    let count = |t: &str| out.iter().filter(|l| l.contains(&format!(r#""type":"{t}""#))).count();
    assert_eq!((count("session_started"), count("configured")), (2, 2), "{out:?}");
    assert_eq!(count("end_of_stream"), 1);
    assert_eq!(figure(&err, "reconnects"), 1, "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pace_server_keeps_one_frame_in_flight_and_counts_every_frame_it_did_not_send() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    // 200 frames as fast as ffmpeg takes them: far faster than the server.
    let cam = MjpegCamera::start(0, fixture("photo_cat_640x480.jpg"), 0.0, Some(200));
    let (ok, _, err) =
        stream(&[&cam.url(), "--fps", "0", "--max-retries", "0", "--pipeline", "detect", "--url", &url]).finish();
    assert!(ok, "{err:?}");
    assert_eq!(cam.served(), 200, "the camera wrote all its frames");
    let (sent, skipped) = (figure(&err, "sent"), figure(&err, "skipped"));
    assert_eq!(sent + skipped, 200, "every frame the camera gave was sent or skipped: {err:?}");
    assert!(skipped > 0 && sent > 0, "{err:?}");
    assert_eq!(figure(&err, "results"), sent);
    assert_eq!(figure(&err, "dropped"), 0, "one frame in flight: the server never had to drop one");
}

#[test]
fn two_named_cameras_run_side_by_side() {
    if !have_ffmpeg() {
        return;
    }
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let door = MjpegCamera::start(0, fixture("photo_cat_640x480.jpg"), 10.0, None);
    let yard = MjpegCamera::start(0, fixture("photo_astronaut_640x480.jpg"), 10.0, None);
    let (a, b) = (format!("door={}", door.url()), format!("yard={}", yard.url()));
    let (ok, out, err) =
        stream(&["--source", &a, "--source", &b, "--count", "3", "--pipeline", "detect", "--url", &url]).finish();
    assert!(ok, "{err:?}");
    let lines: Vec<serde_json::Value> = out.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    for (name, label) in [("door", "cat"), ("yard", "person")] {
        let results: Vec<&serde_json::Value> =
            lines.iter().filter(|v| v["source"] == name && v["message"]["type"] == "result").collect();
        assert_eq!(results.len(), 3, "{name}: {out:?}");
        assert!(results.iter().all(|r| r["message"]["result"]["detections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["label"] == label)));
    }
    assert!(
        err.iter().any(|l| l.starts_with("[door] sent 3 ")) && err.iter().any(|l| l.starts_with("[yard] sent 3 ")),
        "{err:?}"
    );
}

#[test]
fn a_missing_ffmpeg_and_an_unreachable_camera_each_say_so() {
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let (ok, _, err) = stream(&["rtsp://127.0.0.1:1/cam", "--ffmpeg", "/nonexistent/ffmpeg", "--url", &url]).finish();
    assert!(!ok);
    assert!(
        err.iter().any(|l| l.contains(
            "cannot run /nonexistent/ffmpeg: not found; install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)"
        )),
        "{err:?}"
    );
    if !have_ffmpeg() {
        return;
    }
    let port = free_port();
    let cam = format!("rtsp://127.0.0.1:{port}/cam");
    let (ok, _, err) = stream(&[&cam, "--max-retries", "1", "--url", &url]).finish();
    assert!(!ok);
    assert!(
        err.iter().any(|l| l.contains(&format!("source {cam}:")) && l.contains("restarting in 1 s (attempt 1)")),
        "{err:?}"
    );
    assert!(
        err.iter()
            .any(|l| l.contains(&format!("source {cam}: ffmpeg exited with exit status: 1")) && l.contains("refused")),
        "{err:?}"
    );
}

#[test]
fn a_video_file_is_played_once_at_the_rate_asked() {
    if !have_ffmpeg() {
        return;
    }
    let (dir, clip) = mjpeg_clip("framewire-video");
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let (ok, out, err) =
        stream(&[clip.to_str().unwrap(), "--fps", "4", "--pipeline", "detect", "--url", &url]).finish();
    assert!(ok, "{err:?}");
    // 3 s of video sampled at 4 fps: 12 frames, sent at 4 a second (--pace fps), answered or
    // dropped; then the end of the file ends the run (no restart).
    let answered =
        out.iter().filter(|l| l.contains(r#""type":"result""#) || l.contains(r#""type":"frame_dropped""#)).count();
    assert_eq!((figure(&err, "sent"), answered), (12, 12), "{err:?}");
    assert!(!err.iter().any(|l| l.contains("restarting")), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_h264_rtsp_camera_goes_to_an_h264_session_without_re_encoding() {
    if !have_ffmpeg() || !have(&gst_python(), &["-c", "import gi; gi.require_version('GstRtspServer', '1.0')"]) {
        return;
    }
    let (mut rtsp, port) = rtsp_camera();
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let cam = format!("rtsp://127.0.0.1:{port}/cam");
    let (ok, out, err) =
        stream(&[&cam, "--codec", "h264", "--count", "25", "--pipeline", "detect", "--url", &url]).finish();
    let _ = rtsp.kill();
    let _ = rtsp.wait();
    assert!(ok, "{err:?}");
    let msgs: Vec<serde_json::Value> = out.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(msgs[0]["codec"], "h264", "{:?}", msgs[0]);
    let results: Vec<&serde_json::Value> = msgs.iter().filter(|v| v["type"] == "result").collect();
    // The camera's own stream (10 fps, an IDR every 10 pictures), copied: pictures before the
    // first IDR ask for a keyframe; every access unit is answered.
    assert!(!results.is_empty(), "{out:?}");
    assert_eq!(
        (results[0]["result"]["width"].as_u64(), results[0]["result"]["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert!(results.iter().all(|r| r["timings_ms"]["decode"].as_f64().is_some_and(|d| d > 0.0)));
    assert_eq!(figure(&err, "sent"), 25, "{err:?}");
    assert_eq!(figure(&err, "results") + figure(&err, "dropped") + figure(&err, "not_decoded"), 25, "{err:?}");
    assert!(!err.iter().any(|l| l.contains("encoding it")), "copied, not encoded: {err:?}");
}

#[test]
fn a_video_that_is_not_h264_is_encoded_for_an_h264_session() {
    if !have_ffmpeg() {
        return;
    }
    let (dir, clip) = mjpeg_clip("framewire-h264-video");
    let server = TestServer::start();
    let url = server.url("/ws/video/stream");
    let (ok, out, err) =
        stream(&[clip.to_str().unwrap(), "--codec", "h264", "--fps", "4", "--pipeline", "detect", "--url", &url])
            .finish();
    assert!(ok, "{err:?}");
    // MJPEG cannot be copied into an H.264 stream: encoded (libx264) at 4 fps, 12 pictures,
    // the first an IDR: all decoded.
    assert!(err.iter().any(|l| l.contains("encoding it")), "{err:?}");
    let answered =
        out.iter().filter(|l| l.contains(r#""type":"result""#) || l.contains(r#""type":"frame_dropped""#)).count();
    assert_eq!((figure(&err, "sent"), answered, figure(&err, "not_decoded")), (12, 12, 0), "{err:?}");
    // Not with a JPEG source, nor with --pace server.
    let (ok, _, err) = stream(&["tests/fixtures/plates", "--codec", "h264", "--url", &url]).finish();
    assert!(!ok && err.iter().any(|l| l.contains("--codec h264 needs a camera or video source")), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
