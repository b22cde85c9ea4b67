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

/// Kills the server process if the test fails half-way (it would outlive the test otherwise).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// The server's log lines after start-up, read by a thread so the server never blocks on a
/// full stderr pipe.
type Lines = std::sync::mpsc::Receiver<String>;

/// Start `framewire serve` on port 0; returns the process, its log up to the "ready" line,
/// the rest of its log, and the endpoint URL.
fn serve(extra: &[&str]) -> (KillOnDrop, Vec<String>, Lines, String) {
    serve_with(bin(), extra)
}

/// [`serve`] from a prepared command (a limit set, say); one frame worker unless `extra` says.
fn serve_with(mut cmd: Command, extra: &[&str]) -> (KillOnDrop, Vec<String>, Lines, String) {
    if !cmd.get_envs().any(|(k, _)| k == "RUST_LOG") {
        cmd.env("RUST_LOG", "info");
    }
    let child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(if extra.contains(&"--threads") { &[][..] } else { &["--threads", "1"][..] })
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    // The server logs its URL when it binds, then "ready:" once the models are loaded.
    let url = loop {
        let line = lines.next().expect("server exited before it was ready").unwrap();
        log.push(line.clone());
        if line.contains("ready: accepting sessions on ws://") {
            let i = line.find("ws://").unwrap_or_default();
            // The URL ends at a quote in a JSON log line.
            break line[i..].split(['"', ' ']).next().unwrap_or_default().to_string();
        }
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, log, rx, url)
}

/// Threads and open fds of a process, from `/proc`.
fn threads_and_fds(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (threads, fds)
}

#[test]
fn a_thousand_connect_disconnect_cycles_leave_threads_and_fds_at_baseline() {
    let (child, _log, _lines, url) = serve(&["--pipeline", "detect"]);
    let pid = child.0.id();
    let connect = || {
        let (mut ws, _) = tungstenite::connect(&url).unwrap();
        let _hello = ws.read().unwrap();
    };
    connect();
    let settle = |want: (usize, usize)| {
        let t = std::time::Instant::now();
        loop {
            let now = threads_and_fds(pid);
            if now == want || t.elapsed() > std::time::Duration::from_secs(10) {
                return now;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let baseline = threads_and_fds(pid);
    for _ in 0..1000 {
        connect();
    }
    assert_eq!(settle(baseline), baseline, "(threads, fds) after 1000 cycles vs before");
}

#[test]
fn serve_from_the_repo_root_answers_then_exits_zero_on_sigterm() {
    let (mut child, log, lines, url) = serve(&[]);
    assert!(log.iter().any(|l| l.contains("loaded ssd model") && l.contains("[1, 300, 300, 3]")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("frame workers: 1")), "{log:?}");
    let (mut ws, _) = tungstenite::connect(&url).unwrap();
    let _hello = ws.read().unwrap();
    ws.send(Message::Binary(fixture("photo_cat_640x480.jpg"))).unwrap();
    let Message::Text(t) = ws.read().unwrap() else { panic!() };
    assert!(t.contains("\"label\":\"cat\""), "{t}");
    // SIGTERM: the open session is closed with 1001 and the process exits 0.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    match ws.read().unwrap() {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 1001),
        m => panic!("{m:?}"),
    }
    drop(ws);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The session's end was logged with its counters.
    let rest: Vec<String> = lines.iter().collect();
    assert!(rest.iter().any(|l| l.contains(" end ") && l.contains("frames=1") && l.contains("results=1")), "{rest:?}");
}

/// `framewire bench` against a running server: every frame accounted for, figures present.
#[test]
fn bench_closed_and_open_account_for_every_frame() {
    let server = crate::support::TestServer::start();
    let url = server.url("/ws/video/stream");
    let pid = std::process::id().to_string();
    let run = |args: &[&str]| -> serde_json::Value {
        let out = bin().arg("bench").args(args).args(["--url", &url, "--json", "--pid", &pid]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let closed = run(&["closed", "--count", "4", "--pipeline", "detect"]);
    assert_eq!(closed["results"], 4);
    assert_eq!(closed["unaccounted"], 0);
    assert!(closed["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(closed["overhead_ms"]["p50"].as_f64().unwrap() >= 0.0);
    assert!(closed["server"]["rss_peak_kib"].as_u64().unwrap() > 0);
    let open = run(&["open", "--sessions", "2", "--fps", "10", "--seconds", "1", "--pipeline", "detect"]);
    assert_eq!(open["unaccounted"], 0);
    assert!(open["results"].as_u64().unwrap() >= 2);
    assert_eq!(open["per_session_results"].as_array().unwrap().len(), 2);
}

/// Answers every frame with an empty result after holding it for its duration (no model): a frame cost
/// that does not depend on the machine.
struct HeldPlumbingStandIn(std::time::Duration);

impl framewire::vision::Processor for HeldPlumbingStandIn {
    fn process(
        &self,
        _: &[u8],
        info: &framewire::vision::jpeg::JpegInfo,
        _: framewire::protocol::PipelineKind,
        _: &framewire::vision::FrameOptions,
        _: &framewire::vision::parallel::Width,
    ) -> framewire::vision::Outcome {
        std::thread::sleep(self.0);
        Ok(crate::support::empty_result(info))
    }
}

#[test]
fn bench_open_reports_the_drops_of_an_overloaded_server_with_held_plumbing_stand_in() {
    let scheduler = std::sync::Arc::new(
        framewire::scheduler::Scheduler::new(
            2,
            std::sync::Arc::new(HeldPlumbingStandIn(std::time::Duration::from_millis(100))),
        )
        .unwrap(),
    );
    let server = crate::support::TestServer::start_with(crate::support::config(), scheduler);
    let url = server.url("/ws/video/stream");
    let out = bin()
        .args(["bench", "open", "--sessions", "2", "--fps", "40", "--seconds", "1", "--url", &url, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let open: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(open["unaccounted"], 0);
    assert!(open["dropped_reported"].as_u64().unwrap() > 0, "100 ms frames offered every 25 ms must drop: {open}");
    assert_eq!(open["per_session_results"].as_array().unwrap().len(), 2);
}

/// A server that shuts down mid-run closes the bench's session with 1001: the bench reports
/// it (and what it measured until then) and exits non-zero naming the close, instead of
/// failing on the broken socket.
#[test]
fn bench_reports_a_server_shutdown_and_exits_non_zero() {
    let (child, _log, lines, url) = serve(&[]);
    let bench = bin()
        .args(["bench", "closed", "--count", "100000", "--pipeline", "detect", "--url", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the bench's session to start, then stop the server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines.recv_timeout(left).expect("the bench's session never started");
        if line.contains(" start peer=") {
            break;
        }
    }
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let out = bench.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("the server closed 1 session(s) before the end: 1001"), "{stdout}\n{stderr}");
    assert!(stdout.contains("latency (send → result)"), "the figures so far are printed: {stdout}");
    assert!(stderr.contains("closed 1 session(s) before the run ended (1001"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (child, log, _lines, url) = serve(&["--log-format", "json", "--pipeline", "detect"]);
    assert!(url.ends_with("/ws/video/stream"), "{url}");
    for line in &log {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["ts"].is_string() && v["level"].is_string() && v["target"].is_string(), "{line}");
    }
    assert!(log.iter().any(|l| l.contains("loaded ssd model")), "{log:?}");
    drop(child);
}

/// Run `framewire stream` with `args`, feeding `stdin`; returns success, stdout lines, stderr.
fn stream(args: &[&str], stdin: &[u8]) -> (bool, Vec<String>, String) {
    use std::io::Write;
    let mut child = bin()
        .arg("stream")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Fed from its own thread: a long input must not wait on an output nobody reads yet.
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = feeder.join();
    let lines = String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect();
    (out.status.success(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Message types of JSON output lines, and how many results found something.
fn tally(lines: &[String]) -> (Vec<String>, usize) {
    let vs: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types = vs.iter().map(|v| v["type"].as_str().unwrap().to_string()).collect();
    let found = vs.iter().filter(|v| v["result"]["detections"].as_array().is_some_and(|d| !d.is_empty())).count();
    (types, found)
}

#[test]
fn stream_sends_a_directory_and_an_mjpeg_pipe_and_accounts_for_every_frame() {
    let server = crate::support::TestServer::start();
    let url = server.url("/ws/video/stream");
    let (ok, lines, err) = stream(&["tests/fixtures/seq", "--fps", "20", "--pipeline", "detect", "--url", &url], b"");
    assert!(ok, "{err}");
    let (types, found) = tally(&lines);
    assert_eq!(types[0], "session_started");
    let answered = types.iter().filter(|t| *t == "result" || *t == "frame_dropped").count();
    assert_eq!(answered, 20, "{types:?}");
    assert!(found > 0, "the seq frames show objects");
    assert!(err.contains("sent 20 "), "{err}");

    // Three JPEGs back to back on stdin, as `ffmpeg -f mjpeg -` writes them.
    let mut mjpeg = Vec::new();
    for f in ["photo_cat_640x480.jpg", "jpeg/progressive.jpg", "photo_coffee_640x480.jpg"] {
        mjpeg.extend(fixture(f));
    }
    let (ok, lines, err) = stream(&["-", "--fps", "0", "--pipeline", "detect", "--url", &url], &mjpeg);
    assert!(ok, "{err}");
    let (types, _) = tally(&lines);
    assert_eq!(types.iter().filter(|t| *t == "result" || *t == "frame_dropped").count(), 3, "{types:?}");

    // The human view: one line per result.
    let (ok, lines, err) =
        stream(&["tests/fixtures/photo_cat_640x480.jpg", "--count", "2", "--output", "human", "--url", &url], b"");
    assert!(ok, "{err}");
    assert!(lines.iter().any(|l| l.starts_with("#0") && l.contains("cat")), "{lines:?}");
}

/// `framewire stream --config`: the file goes out as a `configure` message first, events come
/// in the results (`--output human`: a line each) and `end_of_stream` ends the run; a refused
/// or unreadable file fails it with the reason.
#[test]
fn stream_with_a_config_file_prints_events_and_the_end_of_stream_summary() {
    let server = crate::support::TestServer::start();
    let url = server.url("/ws/video/stream");
    let dir = std::env::temp_dir().join(format!("framewire-stream-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gate.json");
    // No "type": the client adds it.
    std::fs::write(
        &cfg,
        r#"{"track":true,"classes":["person"],"lines":[{"name":"gate","points":[[315,0],[315,480]]}]}"#,
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let base = ["tests/fixtures/track", "--fps", "5", "--pipeline", "detect", "--url", &url, "--config", cfg];
    let (ok, lines, err) = stream(&base, b"");
    assert!(ok, "{err}");
    let (types, _) = tally(&lines);
    assert_eq!(&types[..2], ["session_started", "configured"], "{types:?}");
    assert_eq!(types.last().map(String::as_str), Some("end_of_stream"), "{types:?}");
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let ended = last["events"].as_array().unwrap();
    assert!(ended.iter().any(|e| e["type"] == "track_ended" && e["label"] == "person"), "{last}");
    assert!(err.contains("events "), "the summary counts events: {err}");

    let human: Vec<&str> = base.iter().copied().chain(["--output", "human"]).collect();
    let (ok, lines, err) = stream(&human, b"");
    assert!(ok, "{err}");
    assert!(lines.iter().any(|l| l.contains("track_started person #1")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("track_ended person #")), "{lines:?}");
    assert!(lines.last().is_some_and(|l| l.starts_with("end_of_stream zones {} lines {\"gate\"")), "{lines:?}");

    // Refused by the server: the run fails with its field and reason, before any frame.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"track":true,"lines":[{"name":"g","points":[[0,0],[9,9]],"classes":["unicorn"]}]}"#)
        .unwrap();
    let (ok, lines, err) = stream(&["tests/fixtures/track", "--url", &url, "--config", bad.to_str().unwrap()], b"");
    assert!(!ok);
    assert!(err.contains(r#"invalid_config lines[0].classes: unknown label "unicorn""#), "{err}");
    assert!(!lines.iter().any(|l| l.contains("\"result\"")), "{lines:?}");
    // Not a JSON object: refused before connecting.
    std::fs::write(&bad, "[1, 2]").unwrap();
    let (ok, _, err) = stream(&["tests/fixtures/track", "--url", &url, "--config", bad.to_str().unwrap()], b"");
    assert!(!ok && err.contains("not a JSON object"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stream_exits_non_zero_when_the_server_refuses_a_frame() {
    let server = crate::support::TestServer::start();
    let url = server.url("/ws/video/stream");
    let (ok, lines, err) = stream(&["README.md", "--count", "1", "--url", &url], b"");
    assert!(!ok);
    assert!(lines.iter().any(|l| l.contains("\"not_jpeg\"")), "{lines:?}");
    assert!(err.contains("server closed 1007"), "{err}");
    // And when there is no server at all.
    let (ok, _, err) = stream(&["README.md", "--url", "ws://127.0.0.1:1/ws/video/stream"], b"");
    assert!(!ok);
    assert!(err.contains("streaming to"), "{err}");
}

/// `framewire stream - --fps 0` with a fast MJPEG source keeps reading its results while it
/// sends: 1,500 frames (~230 KB of results) against a 64 KiB server write buffer end with every
/// frame accounted for, not with the session dropped for not reading.
#[test]
fn a_fast_mjpeg_source_at_fps_0_keeps_reading_with_held_plumbing_stand_in() {
    let scheduler = std::sync::Arc::new(
        framewire::scheduler::Scheduler::new(2, std::sync::Arc::new(HeldPlumbingStandIn(std::time::Duration::ZERO)))
            .unwrap(),
    );
    let cfg = framewire::config::Config { max_write_buffer: 64 * 1024, ..crate::support::config() };
    let server = crate::support::TestServer::start_with(cfg, scheduler);
    let url = server.url("/ws/video/stream");
    let frame = fixture("jpeg/baseline_420.jpg");
    let mjpeg: Vec<u8> = (0..1500).flat_map(|_| frame.iter().copied()).collect();
    let (ok, lines, err) = stream(&["-", "--fps", "0", "--url", &url], &mjpeg);
    assert!(ok, "{err}");
    let (types, _) = tally(&lines);
    assert_eq!(types.iter().filter(|t| *t == "result" || *t == "frame_dropped").count(), 1500, "{err}");
}

#[test]
fn out_of_file_descriptors_the_acceptor_backs_off_and_the_admin_probe_answers() {
    use std::os::unix::process::CommandExt;
    let mut cmd = bin();
    // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (_child, log, rest, url) = serve_with(cmd, &["--admin-listen", "127.0.0.1:0", "--handshake-timeout", "60"]);
    let admin = log
        .iter()
        .find_map(|l| l.split("admin endpoints on http://").nth(1))
        .and_then(|a| a.split([' ', '"']).next())
        .expect("the admin address is logged")
        .to_string();
    let public = url.trim_start_matches("ws://").trim_end_matches("/ws/video/stream").to_string();
    // More idle connections than the process has descriptors: each holds one until the
    // handshake timeout, so the acceptor runs out.
    let idle: Vec<std::net::TcpStream> =
        (0..120).filter_map(|_| std::net::TcpStream::connect(public.as_str()).ok()).collect();
    assert!(idle.len() >= 100, "the kernel's backlog takes them");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let failures: Vec<String> = rest.try_iter().filter(|l| l.contains("accept on the public port failed")).collect();
    assert!(!failures.is_empty(), "the descriptors ran out (else this test proves nothing)");
    assert!(failures.len() <= 5, "at most one line a second, got {}: {failures:?}", failures.len());
    // The probe on the admin port is still answered.
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(admin.as_str()).expect("admin connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    }
    // Once the idle connections go, sessions are served again.
    drop(idle);
    let t = std::time::Instant::now();
    let (mut ws, _) = loop {
        match tungstenite::connect(url.as_str()) {
            Ok(c) => break c,
            Err(e) if t.elapsed() < std::time::Duration::from_secs(30) => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("no session after the flood: {e}"),
        }
    };
    let Message::Text(hello) = ws.read().unwrap() else { panic!("session_started") };
    assert!(hello.contains("session_started"), "{hello}");
    ws.send(Message::Binary(fixture("photo_cat_640x480.jpg"))).unwrap();
    let Message::Text(result) = ws.read().unwrap() else { panic!("result") };
    assert!(result.contains(r#""type":"result""#), "{result}");
}

/// The resident memory of a process, KiB, from `/proc`.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").parse().unwrap()
}

/// With ONNX Runtime each model is one session whatever `--threads` (#19.10: it was one per
/// frame worker plus a wide one, 265 / 490 / 922 MiB at 1 / 2 / 8 threads): a real `serve`
/// process with 8 threads holds, after 10 frames of one session, at most 15 % more than with
/// 1 thread. Needs an ONNX Runtime library (CI gives one and requires the test to run).
#[test]
fn onnxruntime_rss_with_eight_threads_stays_within_15_percent_of_one() {
    if !crate::support::engines().contains(&framewire::vision::runtime::EngineKind::OnnxRuntime) {
        return;
    }
    let lib = std::env::var("FRAMEWIRE_ONNXRUNTIME_LIB").or_else(|_| std::env::var("ORT_DYLIB_PATH")).unwrap();
    let frame = fixture("text_cafe_sign_on_coffee_640x480.jpg");
    let rss = |threads: &str| {
        let args =
            ["--engine", "onnxruntime", "--onnxruntime-lib", &lib, "--threads", threads, "--pipeline", "detect_ocr"];
        let (child, _log, _lines, url) = serve(&args);
        let (mut ws, _) = tungstenite::connect(&url).unwrap();
        let _hello = ws.read().unwrap();
        for _ in 0..10 {
            ws.send(Message::binary(frame.clone())).unwrap();
            loop {
                match ws.read().unwrap() {
                    Message::Text(t) if t.contains("\"type\":\"result\"") => break,
                    Message::Text(t) => assert!(!t.contains("\"error\""), "{t}"),
                    _ => {}
                }
            }
        }
        rss_kib(child.0.id())
    };
    let (one, eight) = (rss("1"), rss("8"));
    eprintln!("RSS after 10 frames: --threads 1 {one} KiB, --threads 8 {eight} KiB");
    assert!(eight as f64 <= one as f64 * 1.15, "--threads 8: {eight} KiB against --threads 1: {one} KiB");
}

/// The lowest descriptor numbers `pid` has free, increasing.
fn free_fds(pid: u32, n: usize) -> Vec<u64> {
    let used: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).filter(|fd| !used.contains(fd)).take(n).collect()
}

/// #29.8: a session's own descriptor (the eventfd its results wake it with) is made before the
/// upgrade. A server left with exactly one descriptor (its limit lowered from outside with
/// `prlimit(2)`) accepts the connection, cannot make the eventfd, and answers `503` with
/// `Retry-After`, which a client retries, instead of `101` and a bare close. With its limit
/// back, the next session works.
#[test]
fn a_server_out_of_descriptors_after_the_accept_refuses_the_upgrade_with_503() {
    let (child, _log, _rest, url) = serve(&["--pipeline", "detect"]);
    let pid = child.0.id();
    let addr = url.trim_start_matches("ws://").trim_end_matches("/ws/video/stream").to_string();
    let (mut ws, _) = tungstenite::connect(&url).unwrap();
    let _hello = ws.read().unwrap();
    drop(ws);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: prlimit reads and writes the rlimit structs given, nothing else.
    unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    // The accepted socket takes the lowest free number; the eventfd would need the next one.
    let free = free_fds(pid, 2);
    let one_left = libc::rlimit { rlim_cur: free[1], rlim_max: old.rlim_max };
    // SAFETY: as above.
    let set = unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, &one_left, std::ptr::null_mut()) };
    assert_eq!(set, 0, "prlimit: {}", std::io::Error::last_os_error());
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut s, crate::support::upgrade_request("/ws/video/stream").as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut answer);
    // SAFETY: as above.
    unsafe { libc::prlimit(pid as i32, libc::RLIMIT_NOFILE, &old, std::ptr::null_mut()) };
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Retry-After: 1"), "{answer}");
    let (mut ws, _) = tungstenite::connect(&url).expect("with descriptors again, a session");
    ws.send(Message::Binary(fixture("photo_cat_640x480.jpg"))).unwrap();
    let _hello = ws.read().unwrap();
    let Message::Text(t) = ws.read().unwrap() else { panic!() };
    assert!(t.contains("\"type\":\"result\""), "{t}");
}

/// #29.7: when the last session ends after a frame was processed, the server hands the free
/// memory back (the log says so at debug level); a session that processed nothing does not.
#[test]
fn the_last_session_to_leave_hands_the_free_memory_back() {
    let mut cmd = bin();
    cmd.env("RUST_LOG", "framewire=debug");
    let (_child, _log, rest, url) = serve_with(cmd, &["--pipeline", "detect"]);
    let said = |rest: &Lines| {
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(20) {
            if let Ok(l) = rest.recv_timeout(std::time::Duration::from_millis(200)) {
                if l.contains("no session left: free memory handed back to the system") {
                    return true;
                }
            }
        }
        false
    };
    let (mut ws, _) = tungstenite::connect(&url).unwrap();
    let _hello = ws.read().unwrap();
    ws.send(Message::Binary(fixture("photo_cat_640x480.jpg"))).unwrap();
    let Message::Text(t) = ws.read().unwrap() else { panic!() };
    assert!(t.contains("\"type\":\"result\""), "{t}");
    ws.close(None).unwrap();
    let _ = ws.read();
    assert!(said(&rest), "the last session's end handed the memory back");
    // A session that processed no frame: nothing to hand back.
    let (mut ws, _) = tungstenite::connect(&url).unwrap();
    let _hello = ws.read().unwrap();
    ws.close(None).unwrap();
    let _ = ws.read();
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(2) {
        if let Ok(l) = rest.recv_timeout(std::time::Duration::from_millis(100)) {
            assert!(!l.contains("free memory handed back"), "nothing processed since: {l}");
        }
    }
}
