//! `framewire stream` with cameras as sources (#20), against real processes: the real binary,
//! the real ffmpeg, a real RTSP server (GStreamer's, `tests/cameras/rtsp_server.py`) and a real
//! HTTP MJPEG camera (a thread here speaking `multipart/x-mixed-replace` over TCP, as IP
//! cameras do), killed and started again mid-stream; the server is killed and started again on
//! the same port.
//!
//! They need `ffmpeg` (and for RTSP Debian's python3-gi + GStreamer's RTSP server); without
//! them they say so and pass, unless `FRAMEWIRE_REQUIRE_CAMERAS=1` (`.ci/run` sets it and
//! installs them), which makes a missing tool a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::support::{config, fixture, scheduler, TestServer};

/// Whether `tool` runs; a missing one fails the test under `FRAMEWIRE_REQUIRE_CAMERAS=1`.
fn have(tool: &str, args: &[&str]) -> bool {
    let ok =
        Command::new(tool).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    let required = std::env::var_os("FRAMEWIRE_REQUIRE_CAMERAS").is_some_and(|v| v == "1");
    assert!(ok || !required, "FRAMEWIRE_REQUIRE_CAMERAS=1 but `{tool}` does not run");
    if !ok {
        eprintln!("note: no {tool}: the camera test is skipped");
    }
    ok
}

fn have_ffmpeg() -> bool {
    have("ffmpeg", &["-version"])
}

/// Debian's python (where python3-gi lives), or `FRAMEWIRE_GST_PYTHON`.
fn gst_python() -> String {
    std::env::var("FRAMEWIRE_GST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An HTTP MJPEG camera on a port of its own: every client gets `frames` at `fps` (0: as fast
/// as it can write), `total` of them then a clean end (with a `Content-Length`), or forever.
struct MjpegCamera {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    served: Arc<AtomicUsize>,
}

impl MjpegCamera {
    fn start(port: u16, frame: Vec<u8>, fps: f64, total: Option<usize>) -> MjpegCamera {
        let listener = bind_retrying(port);
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (stop2, served2) = (Arc::clone(&stop), Arc::clone(&served));
        let thread = std::thread::spawn(move || {
            let mut clients = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((c, _)) => {
                        let (stop, served, frame) = (Arc::clone(&stop2), Arc::clone(&served2), frame.clone());
                        clients.push(std::thread::spawn(move || serve(c, &frame, fps, total, &stop, &served)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            for c in clients {
                let _ = c.join();
            }
        });
        MjpegCamera { port, stop, thread: Some(thread), served }
    }

    /// Frames written to clients so far.
    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/video.mjpg", self.port)
    }

    /// The camera goes away: its listener and every connection closed.
    fn kill(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MjpegCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn bind_retrying(port: u16) -> TcpListener {
    let t = Instant::now();
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(e) if t.elapsed() > Duration::from_secs(10) => panic!("bind {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn serve(mut c: TcpStream, frame: &[u8], fps: f64, total: Option<usize>, stop: &AtomicBool, served: &AtomicUsize) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = [0u8; 4096];
    let _ = c.read(&mut head);
    let part = |f: &[u8]| {
        let mut p = format!("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", f.len()).into_bytes();
        p.extend_from_slice(f);
        p.extend_from_slice(b"\r\n");
        p
    };
    let one = part(frame);
    let length = total.map_or(String::new(), |n| format!("Content-Length: {}\r\n", n * one.len()));
    let head = format!("HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n{length}\r\n");
    if c.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut sent = 0;
    while !stop.load(Ordering::SeqCst) && total.is_none_or(|n| sent < n) {
        if c.write_all(&one).is_err() {
            return;
        }
        sent += 1;
        served.fetch_add(1, Ordering::SeqCst);
        if fps > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(1.0 / fps));
        }
    }
    let _ = c.shutdown(std::net::Shutdown::Both);
}

/// `framewire stream ARGS` started, stdout and stderr collected by threads (stderr lines also
/// counted as they come, so a test can wait for a note).
struct Stream {
    child: Child,
    out: JoinHandle<Vec<String>>,
    err: Arc<parking_lot::Mutex<Vec<String>>>,
    err_thread: JoinHandle<()>,
    results: Arc<AtomicUsize>,
}

fn stream(args: &[&str]) -> Stream {
    let mut child = Command::new(env!("CARGO_BIN_EXE_framewire"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("stream")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = Arc::new(AtomicUsize::new(0));
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let counted = Arc::clone(&results);
    let out = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            if l.contains(r#""type":"result""#) {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            lines.push(l);
        }
        lines
    });
    let err = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let e2 = Arc::clone(&err);
    let err_thread = std::thread::spawn(move || {
        // The progress line ends with \r, not \n: split on both.
        let mut buf = Vec::new();
        let mut r = BufReader::new(stderr);
        let mut byte = [0u8; 1];
        while r.read(&mut byte).is_ok_and(|n| n == 1) {
            if byte[0] == b'\n' || byte[0] == b'\r' {
                if !buf.is_empty() {
                    e2.lock().push(String::from_utf8_lossy(&buf).into_owned());
                }
                buf.clear();
            } else {
                buf.push(byte[0]);
            }
        }
        if !buf.is_empty() {
            e2.lock().push(String::from_utf8_lossy(&buf).into_owned());
        }
    });
    Stream { child, out, err, err_thread, results }
}

impl Stream {
    fn wait_for(&self, what: &str, cond: impl Fn(&Stream) -> bool) {
        let t = Instant::now();
        while !cond(self) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}; stderr: {:?}",
                self.err.lock()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr_has(&self, s: &str) -> bool {
        self.err.lock().iter().any(|l| l.contains(s))
    }

    /// Wait for the exit (at most a minute): success, stdout lines, stderr lines.
    fn finish(mut self) -> (bool, Vec<String>, Vec<String>) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                panic!("framewire stream did not end; stderr: {:?}", self.err.lock());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = self.out.join().unwrap();
        let _ = self.err_thread.join();
        let err = self.err.lock().clone();
        (status.success(), out, err)
    }
}

/// The summary line's `name N` figure.
fn figure(err: &[String], name: &str) -> u64 {
    let line = err.iter().rev().find(|l| l.starts_with("sent ") || l.contains("] sent ")).expect("a summary line");
    let words: Vec<&str> = line.split_whitespace().collect();
    words.iter().position(|w| *w == name).and_then(|i| words.get(i + 1)?.parse().ok()).unwrap_or(0)
}

#[test]
fn an_rtsp_camera_streams_results() {
    if !have_ffmpeg() || !have(&gst_python(), &["-c", "import gi; gi.require_version('GstRtspServer', '1.0')"]) {
        return;
    }
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
    let s = stream(&[&cam_url, "--count", "12", "--fps", "5", "--pipeline", "detect", "--url", &url]);
    s.wait_for("3 results", |s| s.results.load(Ordering::SeqCst) >= 3);
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
    s.wait_for("3 results", |s| s.results.load(Ordering::SeqCst) >= 3);
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
    let dir = std::env::temp_dir().join(format!("framewire-video-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let clip = dir.join("clip.mkv");
    // A real recording: 3 s of ffmpeg's test pattern at 25 fps.
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
