//! The plain HTTP endpoints on the WebSocket's port: `/healthz`, `/metrics`, `/sessions` and the
//! demo page at `/`, over real loopback sockets, with the real model behind a live session.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use framewire::protocol::PipelineKind;
use framewire::scheduler::Scheduler;
use framewire::vision::jpeg::JpegInfo;
use framewire::vision::parallel::Width;
use framewire::vision::{FrameOptions, Outcome, Processor};
use serde::Deserialize;

use crate::protocol::Msg;
use crate::support::{config, empty_result, fixture, http_status, scheduler, upgrade_request, TestServer};

/// `GET /sessions` items, pinned: an added or renamed field fails here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionInfo {
    session_id: String,
    frame_index: u64,
    dropped_frames: u64,
    last_processed_timestamp: Option<u64>,
    backpressure_state: String,
    pipeline: String,
    peer: String,
    /// Only with zones (`{"name":{"count":…,"by_label":{…}}}`).
    #[serde(default)]
    zones: Option<std::collections::BTreeMap<String, crate::protocol::ZoneCount>>,
    /// Only with lines.
    #[serde(default)]
    lines: Option<std::collections::BTreeMap<String, crate::protocol::LineCount>>,
}

fn get(server: &TestServer, path: &str) -> (u16, String) {
    let (code, _, body) = get_full(server, path);
    (code, body)
}

/// Status, head and body of `GET path`.
fn get_full(server: &TestServer, path: &str) -> (u16, String, String) {
    let (code, raw) = http_status(server, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (code, head.to_string(), body.to_string())
}

/// A header's value in a response head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| l.split_once(": ").filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.into()))
}

/// The value of the metric line `series` (exact name and labels), if present.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

#[test]
fn health_sessions_and_metrics_follow_a_live_session() {
    let server = TestServer::start();
    assert_eq!(get(&server, "/healthz"), (200, "ok\n".into()));
    let (code, body) = get(&server, "/sessions");
    assert_eq!((code, body.as_str()), (200, "[]"));

    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    assert!(matches!(c.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { frame_index: 0, .. }));
    let (code, head, body) = get_full(&server, "/sessions");
    assert_eq!(code, 200);
    assert_eq!(header(&head, "content-type").as_deref(), Some("application/json"));
    let list: Vec<SessionInfo> = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let [s] = list.as_slice() else { panic!("{list:?}") };
    assert_eq!(s.session_id, server.handle.sessions()[0].session_id.to_string());
    assert_eq!((s.frame_index, s.dropped_frames), (1, 0));
    assert!(s.last_processed_timestamp.is_some_and(|t| t > 1_700_000_000_000), "{s:?}");
    assert_eq!((s.backpressure_state.as_str(), s.pipeline.as_str()), ("normal", "detect"));
    assert_eq!(s.peer, c.tcp().local_addr().unwrap().to_string());
    assert!(s.zones.is_none() && s.lines.is_none(), "no zones, no lines: absent");

    // An invalid frame on a second session (closed with 1007 by default).
    let mut bad = server.client();
    bad.send_frame(b"not a jpeg at all");
    let (code, _, _) = bad.until_close();
    assert_eq!(code, 1007);
    drop(bad);
    server.wait_until("the refused session to end", |h| h.sessions().len() == 1);

    let (code, head, text) = get_full(&server, "/metrics");
    assert_eq!(code, 200, "{text}");
    assert!(header(&head, "content-type").is_some_and(|t| t.starts_with("application/openmetrics-text")));
    for (series, want) in [
        ("framewire_sessions_open", 1.0),
        ("framewire_sessions_total", 2.0),
        ("framewire_frames_received_total", 2.0),
        ("framewire_frames_processed_total", 1.0),
        ("framewire_frames_predicted_total", 0.0),
        ("framewire_results_sent_total", 1.0),
        ("framewire_frames_dropped_total", 0.0),
        ("framewire_frames_invalid_total{reason=\"not_jpeg\"}", 1.0),
        ("framewire_frames_invalid_total{reason=\"corrupt\"}", 0.0),
        ("framewire_inference_errors_total", 0.0),
        ("framewire_pool_queue_depth", 0.0),
        ("framewire_stage_seconds_count{stage=\"detect\"}", 1.0),
        ("framewire_stage_seconds_count{stage=\"decode\"}", 1.0),
        ("framewire_stage_seconds_count{stage=\"total\"}", 1.0),
    ] {
        assert_eq!(metric(&text, series), Some(want), "{series} in\n{text}");
    }
    let detect_sum = metric(&text, "framewire_stage_seconds_sum{stage=\"detect\"}").unwrap();
    assert!(detect_sum > 0.0 && detect_sum < 60.0, "{detect_sum}");
    assert!(metric(&text, "framewire_http_responses_total{status=\"200\"}").unwrap() >= 3.0, "{text}");
}

#[test]
fn the_demo_page_is_served_at_the_root() {
    let server = TestServer::start();
    let (code, head, body) = get_full(&server, "/");
    assert_eq!(code, 200);
    assert_eq!(header(&head, "content-type").as_deref(), Some("text/html; charset=utf-8"));
    assert!(body.contains("<canvas") && body.contains("/ws/video/stream"), "{body}");
    assert!(body.contains("getUserMedia"), "the page offers the camera");
}

#[test]
fn other_paths_get_404_and_other_methods_405() {
    let server = TestServer::start();
    assert_eq!(get(&server, "/nope").0, 404);
    assert_eq!(get(&server, "/healthz/x").0, 404);
    let (code, raw) = http_status(&server, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(code, 405);
    assert!(raw.contains("Allow: GET, HEAD"), "{raw}");
    // HEAD: the headers of GET, no body.
    let (code, raw) = http_status(&server, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 200);
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n") && raw.contains("Content-Length: 3\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n"), "no body: {raw:?}");
    // The endpoints answer whatever the WebSocket sessions are doing: no session was made.
    assert!(server.handle.sessions().is_empty());
}

/// Bound before the models are loaded (what `framewire serve` does): `/healthz` is 503
/// `starting` and upgrades are refused with 503 + `Retry-After`, `/metrics` already answers;
/// once the engine is handed over, `/healthz` is 200 and a session gets real detections.
#[test]
fn while_starting_healthz_is_503_and_sessions_wait_for_the_engine() {
    let server = TestServer::run(framewire::server::Server::bind_starting(config()).expect("bind"));
    assert_eq!(get(&server, "/healthz"), (503, "starting\n".to_string()));
    let (code, head, _) = get_full(&server, "/healthz");
    assert_eq!((code, header(&head, "retry-after").as_deref()), (503, Some("1")));
    let (code, raw) = http_status(&server, &upgrade_request("/ws/video/stream"));
    assert_eq!(code, 503, "{raw}");
    assert!(raw.contains("starting"), "{raw}");
    let (code, metrics) = get(&server, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(metric(&metrics, "framewire_pool_queue_depth"), Some(0.0), "{metrics}");
    assert!(server.handle.set_scheduler(scheduler()).is_ok());
    assert!(server.handle.set_scheduler(scheduler()).is_err(), "the engine is set once");
    assert_eq!(get(&server, "/healthz"), (200, "ok\n".to_string()));
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    match c.round_trip(&fixture("photo_cat_640x480.jpg")) {
        Msg::Result { result, .. } => {
            assert!(result.detections.expect("detections").iter().any(|d| d.label == "cat"))
        }
        m => panic!("expected a result, got {m:?}"),
    }
}

#[test]
fn healthz_says_full_at_the_session_limit() {
    let mut cfg = config();
    cfg.max_sessions = 1;
    let server = TestServer::start_with(cfg, scheduler());
    let c = server.client();
    assert_eq!(get(&server, "/healthz"), (503, "full\n".into()));
    drop(c);
    server.wait_until("the session to end", |h| h.sessions().is_empty());
    assert_eq!(get(&server, "/healthz"), (200, "ok\n".into()));
}

/// Plumbing stand-in (not a model): holds each frame until the test opens the gate, then
/// answers with an empty result. Keeps a frame in flight for as long as the test needs.
struct GatedPlumbingStandIn {
    gate: Receiver<()>,
}

impl Processor for GatedPlumbingStandIn {
    fn process(&self, _: &[u8], info: &JpegInfo, _: PipelineKind, _: &FrameOptions, _: &Width) -> Outcome {
        let _ = self.gate.recv();
        Ok(empty_result(info))
    }
}

#[test]
fn while_draining_healthz_is_503_and_new_sessions_are_refused_with_gated_plumbing_stand_in() {
    let (open, gate): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(1);
    let engine = Arc::new(Scheduler::new(1, Arc::new(GatedPlumbingStandIn { gate })).unwrap());
    let server = TestServer::start_with(config(), engine);
    let mut c = server.client();
    c.send_frame(&fixture("photo_cat_640x480.jpg"));
    server.wait_until("the frame to arrive", |h| h.sessions().first().is_some_and(|s| s.frame_index == 1));
    server.handle.shutdown();
    // The frame is held in flight: the server is draining, and says so.
    assert_eq!(get(&server, "/healthz"), (503, "draining\n".into()));
    assert_eq!(http_status(&server, &upgrade_request("/ws/video/stream")).0, 503);
    open.send(()).unwrap();
    let (code, reason, msgs) = c.until_close();
    assert!(matches!(msgs.as_slice(), [Msg::Result { frame_index: 0, .. }]), "{msgs:?}");
    assert_eq!((code, reason.as_str()), (1001, "shutdown"));
}

/// `GET path` on another address than the public port.
fn get_at(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let code = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (code, raw.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_string()))
}

/// With `--admin-listen`, the probes and `/sessions` answer there, `/sessions` leaves the public
/// port, the stream endpoint and the demo page are not on the admin port, and idle connections
/// filling the public port's budget do not fail the probes.
#[test]
fn the_admin_port_serves_the_probes_whatever_holds_the_public_port() {
    let mut cfg = config();
    cfg.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.max_sessions = 1; // public connection budget: 2 × 1 + 64 = 66
    let server = TestServer::start_with(cfg, scheduler());
    let admin = server.handle.admin_addr().expect("admin address");
    assert_eq!(get_at(admin, "/healthz"), (200, "ok\n".into()));
    assert_eq!(get_at(admin, "/sessions"), (200, "[]".into()));
    assert_eq!(get_at(admin, "/metrics").0, 200);
    assert_eq!(get_at(admin, "/").0, 404, "no demo page on the admin port");
    assert_eq!(get_at(admin, "/ws/video/stream").0, 404, "no stream endpoint on the admin port");
    assert_eq!(get(&server, "/sessions").0, 404, "/sessions lists client addresses: admin port only");
    assert_eq!(get(&server, "/healthz").0, 200, "the public port still answers probes");
    // Idle connections that never send a byte hold the public port's whole budget.
    let idle: Vec<_> = (0..70).map(|_| std::net::TcpStream::connect(server.handle.local_addr()).unwrap()).collect();
    server.wait_until("the public budget to fill", |h| h.connections() >= 66);
    assert_eq!(get_at(admin, "/healthz"), (200, "ok\n".into()), "the probe still answers");
    drop(idle);
}

#[test]
fn the_demo_page_can_be_turned_off_and_keeps_the_camera_on_its_own_host() {
    let server = TestServer::start();
    let (code, page) = get(&server, "/");
    assert_eq!(code, 200);
    assert!(page.contains("const REMOTE_WS_ALLOWED = false;"), "by default ?ws= may not leave this host");
    let cfg = framewire::config::Config { demo: false, ..config() };
    let off = TestServer::start_with(cfg, scheduler());
    assert_eq!(get(&off, "/").0, 404);
    let cfg = framewire::config::Config { demo_remote_ws: true, ..config() };
    let remote = TestServer::start_with(cfg, scheduler());
    assert!(get(&remote, "/").1.contains("const REMOTE_WS_ALLOWED = true;"));
}

/// An upgrade request for the endpoint with `lines` in place of the standard handshake headers.
fn upgrade_with(version: &str, lines: &str) -> String {
    format!("GET /ws/video/stream {version}\r\nHost: x\r\n{lines}\r\n")
}

#[test]
fn upgrades_that_are_not_upgrades_get_their_status() {
    let server = TestServer::start();
    let up = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let v13 = "Sec-WebSocket-Version: 13\r\n";
    let (code, text) = http_status(&server, &upgrade_with("HTTP/1.1", &format!("{up}{v13}")));
    assert_eq!(code, 400, "no key: {text}");
    assert!(text.contains("Sec-WebSocket-Key"), "{text}");
    let (code, text) =
        http_status(&server, &upgrade_with("HTTP/1.1", &format!("{up}{key}Sec-WebSocket-Version: 8\r\n")));
    assert_eq!(code, 426, "version 8: {text}");
    assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"), "RFC 6455 §4.4: the versions spoken: {text}");
    let (code, text) = http_status(&server, &upgrade_with("HTTP/1.1", &format!("{up}{key}")));
    assert_eq!(code, 426, "no version: {text}");
    let (code, text) = http_status(&server, &upgrade_with("HTTP/1.0", &format!("{up}{key}{v13}")));
    assert_eq!(code, 400, "HTTP/1.0: {text}");
    assert!(text.contains("HTTP/1.1"), "{text}");
    let (code, _) = http_status(&server, &upgrade_with("HTTP/1.1", &format!("Upgrade: websocket\r\n{key}{v13}")));
    assert_eq!(code, 400, "no `Connection: Upgrade`");
    let post = format!("POST /ws/video/stream HTTP/1.1\r\nHost: x\r\n{up}{key}{v13}\r\n");
    assert_eq!(http_status(&server, &post).0, 405);
    // 64 header lines are accepted (behind proxies), 70 are not.
    let extra = |n: usize| (0..n).map(|i| format!("X-Proxy-{i}: 1\r\n")).collect::<String>();
    let (code, _) = http_status(&server, &upgrade_with("HTTP/1.1", &format!("{up}{key}{v13}{}", extra(59))));
    assert_eq!(code, 101, "64 header lines");
    let (code, text) = http_status(&server, &upgrade_with("HTTP/1.1", &format!("{up}{key}{v13}{}", extra(66))));
    assert_eq!(code, 431, "{text}");
    assert!(http_status(&server, &upgrade_request("/ws/video/stream")).0 == 101, "the server goes on");
}

#[test]
fn a_refusal_reaches_a_client_that_is_still_sending() {
    // The head is too large: the server answers 431 after 8 KiB while 56 KiB more are on their
    // way. Closing with them unread makes the kernel send a reset (which on a real network can
    // destroy the answer in flight); the server shuts down its write side and drains, so the
    // client reads the whole answer and then a clean end of stream, not a reset.
    use std::io::{Read, Write};
    let server = TestServer::start();
    for _ in 0..5 {
        let mut s = std::net::TcpStream::connect(server.handle.local_addr()).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
        let big = format!("GET /ws/video/stream HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
        s.write_all(big.as_bytes()).expect("the server reads what it refuses");
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            match s.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
                Err(e) => break Err(e),
            }
        };
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(end.is_ok(), "the answer ends with a clean close, not {end:?}");
    }
}
