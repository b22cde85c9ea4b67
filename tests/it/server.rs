//! The server end to end over loopback: detections on real frames, every message type and
//! close code, latest-frame-wins backpressure, session isolation, limits and shutdown.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use framewire::config::OnInvalid;
use framewire::protocol::PipelineKind;
use framewire::scheduler::Scheduler;
use framewire::vision::jpeg::JpegInfo;
use framewire::vision::parallel::Width;
use framewire::vision::{FrameOptions, Outcome, Processor};
use tungstenite::Message;

use crate::protocol::{Detection, Msg};
use crate::support::{
    config, empty_result, engines, fixture, http_status, scheduler, upgrade_request, Event, TestServer,
};
use framewire::vision::runtime::EngineKind;

fn detections(msg: Msg) -> (u32, u32, Vec<Detection>) {
    match msg {
        Msg::Result { result, .. } => (result.width, result.height, result.detections.expect("detections")),
        m => panic!("expected a result, got {m:?}"),
    }
}

fn labels(d: &[Detection]) -> Vec<&str> {
    d.iter().map(|d| d.label.as_str()).collect()
}

#[derive(serde::Deserialize)]
struct RefDet {
    label: String,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

/// Detections on every reference frame match `detect_ref.py`'s (score ≥ 0.5): same labels,
/// boxes within 2 px, scores within 0.01 (the issue asks 10 px; the port is exact to 0.1 px).
/// `detect_ocr` decodes at full size, as the reference does (`detect` alone may decode large
/// frames scaled: see the next test).
/// On every engine.
#[test]
fn detections_match_the_reference_pipeline() {
    for engine in engines() {
        detections_match_the_reference_pipeline_on(engine);
    }
}

fn detections_match_the_reference_pipeline_on(engine: EngineKind) {
    let reference: HashMap<String, Vec<RefDet>> =
        serde_json::from_slice(&fixture("reference_detections.json")).expect("reference json");
    assert!(reference.len() >= 6);
    let server = TestServer::start_on(engine);
    let mut c = server.client_at("/ws/video/stream?pipeline=detect_ocr");
    for (name, want) in &reference {
        let bytes = fixture(name);
        let name = format!("{name} on {engine:?}");
        let (w, h, got) = detections(c.round_trip(&bytes));
        assert!(w > 0 && h > 0);
        // A detection near the threshold may fall on either side of it.
        let want: Vec<&RefDet> = want.iter().collect();
        for r in want.iter().filter(|r| r.score >= 0.53) {
            let m = got
                .iter()
                .find(|d| d.label == r.label && d.bbox.iter().zip(r.bbox.iter()).all(|(a, b)| (a - b).abs() <= 2.0));
            let m = m.unwrap_or_else(|| panic!("{name}: reference {} {:?} not found in {got:?}", r.label, r.bbox));
            assert!((m.score - r.score).abs() <= 0.01, "{name}: {} score {} vs {}", r.label, m.score, r.score);
        }
        for d in &got {
            if d.score >= 0.53 {
                assert!(
                    want.iter()
                        .any(|r| r.label == d.label
                            && d.bbox.iter().zip(r.bbox.iter()).all(|(a, b)| (a - b).abs() <= 2.0)),
                    "{name}: extra detection {d:?}"
                );
            }
            let [x1, y1, x2, y2] = d.bbox;
            assert!(0.0 <= x1 && x1 <= x2 && x2 <= w as f32 && 0.0 <= y1 && y1 <= y2 && y2 <= h as f32, "{d:?}");
        }
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// The fidelity guard for `detect`, which decodes large frames at a DCT-domain downscale
/// (1920×1080 at 960×540, 1280×720 at 640×360): on every reference frame the same detections
/// as `detect_ref.py` (IoU ≥ 0.9, same label, score within 0.03), none extra.
/// On every engine.
#[test]
fn scaled_decode_keeps_the_reference_detections() {
    for engine in engines() {
        scaled_decode_keeps_the_reference_detections_on(engine);
    }
}

fn scaled_decode_keeps_the_reference_detections_on(engine: EngineKind) {
    let reference: HashMap<String, Vec<RefDet>> =
        serde_json::from_slice(&fixture("reference_detections.json")).expect("reference json");
    assert!(reference.keys().any(|k| k.contains("1920x1080")) && reference.keys().any(|k| k.contains("1280x720")));
    let server = TestServer::start_on(engine);
    assert!(config().scaled_decode, "the test server decodes `detect` frames scaled, as the default does");
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    for (name, want) in &reference {
        let bytes = fixture(name);
        let name = format!("{name} on {engine:?}");
        let limits = framewire::vision::jpeg::Limits::default();
        let info = framewire::vision::jpeg::validate(&bytes, &limits).expect("fixture validates");
        let (w, h, got) = detections(c.round_trip(&bytes));
        assert_eq!((w, h), (info.width, info.height), "{name}: the frame's size, not the decoded one");
        // A detection near the threshold may fall on either side of it.
        for r in want.iter().filter(|r| r.score >= 0.53) {
            let m = got
                .iter()
                .filter(|d| d.label == r.label)
                .max_by(|a, b| iou(&a.bbox, &r.bbox).total_cmp(&iou(&b.bbox, &r.bbox)));
            let m = m.unwrap_or_else(|| panic!("{name}: reference {} {:?} not found in {got:?}", r.label, r.bbox));
            assert!(iou(&m.bbox, &r.bbox) >= 0.9, "{name}: {} {:?} vs reference {:?}", r.label, m.bbox, r.bbox);
            assert!((m.score - r.score).abs() <= 0.03, "{name}: {} score {} vs {}", r.label, m.score, r.score);
        }
        for d in got.iter().filter(|d| d.score >= 0.53) {
            assert!(
                want.iter().any(|r| r.label == d.label && iou(&d.bbox, &r.bbox) >= 0.9),
                "{name}: extra detection {d:?}"
            );
        }
    }
}

#[test]
fn the_test_frames_show_what_they_contain() {
    let server = TestServer::start();
    let mut c = server.client();
    let cases: [(&str, Option<&str>, (u32, u32)); 6] = [
        ("photo_astronaut_640x480.jpg", Some("person"), (640, 480)),
        ("photo_cat_640x480.jpg", Some("cat"), (640, 480)),
        ("photo_coffee_640x480.jpg", Some("cup"), (640, 480)),
        ("photo_cameraman_gray_640x480.jpg", Some("person"), (640, 480)),
        ("photo_cat_pillarbox_1920x1080.jpg", Some("cat"), (1920, 1080)),
        ("photo_hubble_noobjects_640x480.jpg", None, (640, 480)),
    ];
    for (name, want, size) in cases {
        let (w, h, d) = detections(c.round_trip(&fixture(name)));
        assert_eq!((w, h), size, "{name}");
        match want {
            Some(label) => assert!(labels(&d).contains(&label), "{name}: {:?}", labels(&d)),
            None => assert!(d.is_empty(), "{name}: {d:?}"),
        }
    }
}

#[test]
fn session_started_announces_the_session() {
    let server = TestServer::start();
    let (mut ws, _) = tungstenite::connect(server.url("/ws/video/stream?pipeline=detect")).unwrap();
    let Ok(Message::Text(t)) = ws.read() else { panic!("no text") };
    match serde_json::from_str::<Msg>(&t).unwrap() {
        Msg::SessionStarted {
            session_id,
            protocol,
            pipeline,
            codec,
            limits,
            track,
            options,
            detector,
            zones,
            lines,
            anchor,
        } => {
            assert!(!track, "tracking is off by default");
            assert_eq!(codec, "jpeg", "JPEG unless the query asks for h264");
            assert!(zones.is_empty() && lines.is_empty(), "no analytics until a configure message");
            assert_eq!(anchor, "bottom_center");
            assert_eq!((options.min_score, options.classes, options.max_detections), (0.5, None, 100));
            assert_eq!(options.ocr, "frame");
            let d = detector.expect("the detector is announced");
            assert_eq!((d.family.as_str(), d.input, d.classes.len()), ("ssd", [300, 300], 80));
            let id = uuid::Uuid::parse_str(&session_id).unwrap();
            assert_eq!(id.get_version_num(), 4);
            assert_eq!(protocol, 1);
            assert_eq!(pipeline, "detect");
            assert_eq!(limits.max_frame_bytes, 8 * 1024 * 1024);
            assert_eq!(limits.max_pixels, 40_000_000);
            assert!(server.handle.sessions().iter().any(|s| s.session_id == id));
        }
        m => panic!("{m:?}"),
    }
}

/// 30 frames sent without reading: the ones replaced while waiting are dropped and reported,
/// `slow_down` is sent, the last frame is always answered, results come in index order, and
/// every frame is accounted for exactly once.
#[test]
fn a_burst_drops_old_frames_and_answers_the_newest() {
    let server = TestServer::start();
    let mut c = server.client();
    let frame = fixture("photo_cat_640x480.jpg");
    for _ in 0..30 {
        c.send_frame(&frame);
    }
    let mut answered = Vec::new();
    let mut dropped = Vec::new();
    let mut slow_downs = 0;
    let mut last_dropped_count = 0;
    while answered.last() != Some(&29) {
        match c.next() {
            Msg::Result { frame_index, dropped_frames, result, .. } => {
                assert!(labels(&result.detections.unwrap()).contains(&"cat"));
                assert!(dropped_frames >= last_dropped_count);
                answered.push(frame_index);
            }
            Msg::FrameDropped { frame_index, dropped_frames } => {
                dropped.push(frame_index);
                assert_eq!(dropped_frames, dropped.len() as u64);
                last_dropped_count = dropped_frames;
            }
            Msg::SlowDown { suggested_fps, .. } => {
                assert!(suggested_fps >= 1);
                slow_downs += 1;
            }
            m => panic!("{m:?}"),
        }
    }
    assert!(answered.windows(2).all(|w| w[0] < w[1]), "results out of order: {answered:?}");
    assert!(!dropped.is_empty(), "a burst of 30 must drop frames");
    assert_eq!(slow_downs, 1, "slow_down at most once a second");
    let mut all: Vec<u64> = answered.iter().chain(dropped.iter()).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..30).collect::<Vec<_>>(), "every frame answered or dropped exactly once");
}

#[test]
fn an_invalid_frame_gets_its_reason_then_close_1007() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send_frame(b"GIF89a not a jpeg at all");
    let (code, reason, msgs) = c.until_close();
    assert_eq!(
        msgs,
        vec![Msg::Error { error: "invalid_frame".into(), frame_index: Some(0), detail: Some("not_jpeg".into()) }]
    );
    assert_eq!((code, reason.as_str()), (1007, "not_jpeg"));
}

#[test]
fn a_frame_that_fails_the_strict_decode_is_reported_after_the_previous_result() {
    let server = TestServer::start();
    let mut c = server.client();
    let good = fixture("photo_cat_640x480.jpg");
    let cut = good[..good.len() * 2 / 3].to_vec();
    c.send_frame(&good);
    let first = c.next();
    assert!(matches!(first, Msg::Result { frame_index: 0, .. }), "{first:?}");
    c.send_frame(&cut);
    let (code, _, msgs) = c.until_close();
    assert_eq!(
        msgs,
        vec![Msg::Error { error: "invalid_frame".into(), frame_index: Some(1), detail: Some("truncated".into()) }]
    );
    assert_eq!(code, 1007);
}

#[test]
fn with_on_invalid_continue_the_session_goes_on() {
    let mut cfg = config();
    cfg.on_invalid = OnInvalid::Continue;
    let server = TestServer::start_with(cfg, scheduler());
    let mut c = server.client();
    c.send_frame(&[0xFF, 0xD8, 0xFF]);
    assert_eq!(
        c.next(),
        Msg::Error { error: "invalid_frame".into(), frame_index: Some(0), detail: Some("truncated".into()) }
    );
    let (_, _, d) = detections(c.round_trip(&fixture("photo_cat_640x480.jpg")));
    assert!(labels(&d).contains(&"cat"));
}

#[test]
fn an_oversized_frame_gets_too_large_and_close_1009() {
    let mut cfg = config();
    cfg.max_frame_bytes = 64 * 1024;
    let server = TestServer::start_with(cfg, scheduler());
    let mut c = server.client();
    c.send_frame(&vec![0u8; 200 * 1024]);
    let (code, reason, msgs) = c.until_close();
    assert_eq!(
        msgs,
        vec![Msg::Error { error: "invalid_frame".into(), frame_index: Some(0), detail: Some("too_large".into()) }]
    );
    assert_eq!((code, reason.as_str()), (1009, "too_large"));
}

#[test]
fn a_decompression_bomb_header_is_refused_without_decoding() {
    let server = TestServer::start();
    let mut c = server.client();
    // SOI, SOF0 claiming 65500×65500×3, SOS header, 4 bytes of "scan": ~40 bytes in all.
    let mut bomb = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xFF, 0xDC, 0xFF, 0xDC, 0x03];
    bomb.extend_from_slice(&[1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    bomb.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x0C, 0x03, 1, 0x00, 2, 0x11, 3, 0x11, 0x00, 0x3F, 0x00, 1, 2, 3, 4]);
    c.send_frame(&bomb);
    let (code, _, msgs) = c.until_close();
    assert_eq!(
        msgs,
        vec![Msg::Error {
            error: "invalid_frame".into(),
            frame_index: Some(0),
            detail: Some("too_many_pixels".into())
        }]
    );
    assert_eq!(code, 1007);
}

#[test]
fn a_text_message_is_refused_with_1003_and_ping_gets_pong() {
    let server = TestServer::start();
    let mut c = server.client();
    c.ws.send(Message::Ping(b"hi".to_vec())).unwrap();
    assert!(matches!(c.event(), Event::Pong));
    c.ws.send(Message::Text("hello".into())).unwrap();
    let (code, _, msgs) = c.until_close();
    assert_eq!(msgs, vec![Msg::Error { error: "unsupported_message".into(), frame_index: None, detail: None }]);
    assert_eq!(code, 1003);
}

#[test]
fn an_idle_session_is_closed_with_1000_idle_timeout() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(cfg, scheduler());
    let mut c = server.client();
    let (code, reason, msgs) = c.until_close();
    assert!(msgs.is_empty());
    assert_eq!((code, reason.as_str()), (1000, "idle_timeout"));
    server.wait_until("the session to go", |h| h.sessions().is_empty());
}

#[test]
fn wrong_path_bad_query_and_plain_http_are_refused_before_the_upgrade() {
    let server = TestServer::start();
    assert_eq!(http_status(&server, &upgrade_request("/other")).0, 404);
    assert_eq!(http_status(&server, &upgrade_request("/ws/video/stream?pipeline=nope")).0, 400);
    assert_eq!(http_status(&server, &upgrade_request("/ws/video/stream?foo=1")).0, 400);
    assert_eq!(http_status(&server, "GET /ws/video/stream HTTP/1.1\r\nHost: x\r\n\r\n").0, 426);
    assert_eq!(http_status(&server, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").0, 404);
    assert_eq!(http_status(&server, &upgrade_request("/ws/video/stream?pipeline=detect")).0, 101);
}

#[test]
fn over_the_session_limit_gets_503_with_retry_after() {
    let mut cfg = config();
    cfg.max_sessions = 2;
    let server = TestServer::start_with(cfg, scheduler());
    let _a = server.client();
    let _b = server.client();
    let (code, text) = http_status(&server, &upgrade_request("/ws/video/stream"));
    assert_eq!(code, 503);
    assert!(text.contains("Retry-After: 1"), "{text}");
    drop(_a);
    server.wait_until("a slot to free up", |h| h.sessions().len() == 1);
    let _c = server.client();
}

#[test]
fn a_silent_client_is_cut_by_the_handshake_timeout() {
    let mut cfg = config();
    cfg.handshake_timeout = Duration::from_millis(300);
    let server = TestServer::start_with(cfg, scheduler());
    let mut s = TcpStream::connect(server.handle.local_addr()).unwrap();
    s.write_all(b"GET /ws/video/st").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&out));
    server.wait_until("the connection thread to end", |h| h.connections() == 0);
}

/// A client stalled mid-frame (half a message sent, nothing read) holds only its own thread:
/// another session's frames are answered meanwhile.
#[test]
fn a_stalled_client_does_not_delay_another_session() {
    let server = TestServer::start();
    let mut stalled = server.client();
    let frame = fixture("photo_cat_640x480.jpg");
    // Write the frame header and half the payload by hand, then stop.
    let mut raw = Vec::new();
    raw.push(0x82);
    raw.push(0x80 | 127);
    raw.extend_from_slice(&(frame.len() as u64).to_be_bytes());
    raw.extend_from_slice(&[0, 0, 0, 0]);
    raw.extend_from_slice(&frame[..frame.len() / 2]);
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = stalled.ws.get_mut() {
        s.write_all(&raw).unwrap();
    }
    let mut other = server.client();
    for _ in 0..3 {
        let (_, _, d) = detections(other.round_trip(&frame));
        assert!(labels(&d).contains(&"cat"));
    }
    assert_eq!(server.handle.sessions().len(), 2);
    // The stall cost the stalled session nothing either: the rest of its frame is answered.
    if let tungstenite::stream::MaybeTlsStream::Plain(s) = stalled.ws.get_mut() {
        s.write_all(&frame[frame.len() / 2..]).unwrap();
    }
    let (_, _, d) = detections(stalled.next());
    assert!(labels(&d).contains(&"cat"), "the stalled frame, completed, is answered");
}

#[test]
fn a_disconnect_during_inference_leaves_no_session_behind() {
    let server = TestServer::start();
    for _ in 0..3 {
        let mut c = server.client();
        c.send_frame(&fixture("photo_motorcycle_1280x720.jpg"));
        drop(c);
    }
    server.wait_until("all sessions to go", |h| h.sessions().is_empty() && h.connections() == 0);
}

#[test]
fn shutdown_finishes_the_frame_in_flight_then_closes_1001() {
    let server = TestServer::start();
    let mut c = server.client();
    c.send_frame(&fixture("photo_cat_640x480.jpg"));
    // Let the frame reach the server before shutting down.
    server.wait_until("the frame to arrive", |h| h.sessions().first().is_some_and(|s| s.frame_index == 1));
    server.handle.shutdown();
    let (code, reason, msgs) = c.until_close();
    assert!(matches!(msgs.as_slice(), [Msg::Result { frame_index: 0, .. }]), "{msgs:?}");
    assert_eq!((code, reason.as_str()), (1001, "shutdown"));
    let mut server = server;
    let clean = server.thread.take().unwrap().join().unwrap().unwrap();
    assert!(clean, "every session ended within the grace period");
    // `run` returned, so its listener is closed. (Connecting to the old port to check would
    // race any other test's server that the kernel gives the freed port to.)
    assert_eq!(server.handle.connections(), 0, "no connection thread outlives the server");
}

/// Plumbing stand-in (not a model): panics on frames whose size is odd, answers the others
/// with an empty result. Used only to prove a stage's panic costs one frame, not the server.
struct PanickingPlumbingStandIn;

impl Processor for PanickingPlumbingStandIn {
    fn process(&self, frame: &[u8], info: &JpegInfo, _: PipelineKind, _: &FrameOptions, _: &Width) -> Outcome {
        assert!(frame.len().is_multiple_of(2), "injected panic");
        Ok(empty_result(info))
    }
}

#[test]
fn a_panicking_stage_costs_one_frame_an_internal_error_with_plumbing_stand_in() {
    let engine = Arc::new(Scheduler::new(1, Arc::new(PanickingPlumbingStandIn)).unwrap());
    let server = TestServer::start_with(config(), engine);
    let mut a = server.client();
    let mut b = server.client();
    let mut even = fixture("photo_cat_640x480.jpg");
    if !even.len().is_multiple_of(2) {
        even.push(0);
    }
    let mut odd = even.clone();
    odd.push(0);
    assert_eq!(a.round_trip(&odd), Msg::Error { error: "internal".into(), frame_index: Some(0), detail: None });
    assert!(matches!(a.round_trip(&even), Msg::Result { frame_index: 1, .. }));
    assert!(matches!(b.round_trip(&even), Msg::Result { frame_index: 0, .. }));
}

/// Plumbing stand-in (not a model) whose `detector()`, which the connection thread asks for
/// `session_started`, panics the first time: a panic on a connection thread after its session
/// was listed.
struct PanicsOnceOnTheConnectionThreadPlumbingStandIn(std::sync::atomic::AtomicBool);

impl Processor for PanicsOnceOnTheConnectionThreadPlumbingStandIn {
    fn process(&self, _: &[u8], info: &JpegInfo, _: PipelineKind, _: &FrameOptions, _: &Width) -> Outcome {
        Ok(empty_result(info))
    }

    fn detector(&self) -> Option<framewire::vision::DetectorInfo> {
        let first = !self.0.swap(true, std::sync::atomic::Ordering::SeqCst);
        assert!(!first, "injected panic on the connection thread");
        None
    }
}

#[test]
fn a_connection_thread_that_panics_leaves_no_ghost_with_plumbing_stand_in() {
    let stand_in = PanicsOnceOnTheConnectionThreadPlumbingStandIn(Default::default());
    let engine = Arc::new(Scheduler::new(1, Arc::new(stand_in)).unwrap());
    let server = TestServer::start_with(framewire::config::Config { max_sessions: 1, ..config() }, engine);
    // The first session's thread panics before its first message: the client sees the socket close.
    let (mut ws, _) = tungstenite::connect(server.url("/ws/video/stream")).expect("upgrade");
    assert!(ws.read().is_err(), "the panicked session sends nothing");
    server.wait_until("the panicked session to leave the registry", |h| h.sessions().is_empty());
    // Its admission permit is free again: with --max-sessions 1 the next session is admitted.
    let mut c = server.client();
    assert!(matches!(c.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { frame_index: 0, .. }));
    assert_eq!(server.handle.sessions().len(), 1, "only the live session is listed");
}

#[test]
fn timings_add_up() {
    let server = TestServer::start();
    let mut c = server.client();
    let t = Instant::now();
    match c.round_trip(&fixture("photo_coffee_640x480.jpg")) {
        Msg::Result { timings_ms: tm, .. } => {
            let (decode, detect) = (tm.decode.expect("decode timing"), tm.detect.expect("detect timing"));
            assert!(decode > 0.0 && detect > 0.0 && tm.queue >= 0.0);
            assert!(tm.ocr_detect.is_none() && tm.ocr_recognize.is_none() && tm.predict.is_none());
            assert!(tm.total >= decode + detect);
            assert!(tm.total <= t.elapsed().as_secs_f64() * 1000.0);
        }
        m => panic!("{m:?}"),
    }
}

/// Four sessions sending at once get, frame for frame, what one session alone gets: every
/// model is one session (ONNX Runtime) or one plan set (tract) run by every frame worker at
/// once (#19.10), and runs from several threads must not disturb each other. Detections and
/// the frame's text lines within 1e-3 (a wide run may add in another order).
/// On every engine.
#[test]
fn sessions_at_once_get_what_a_lone_session_gets() {
    for engine in engines() {
        sessions_at_once_get_what_a_lone_session_gets_on(engine);
    }
}

fn sessions_at_once_get_what_a_lone_session_gets_on(engine: EngineKind) {
    let server = TestServer::start_on(engine);
    let frames: Vec<Vec<u8>> = [
        "photo_coffee_640x480.jpg",
        "text_cafe_sign_on_coffee_640x480.jpg",
        "text_garage_sign_on_motorcycle_1280x720.jpg",
    ]
    .map(fixture)
    .into();
    let answer = |msg: Msg| match msg {
        Msg::Result { result, .. } => {
            let d = result.detections.expect("detections");
            let lines: Vec<String> = result.texts.expect("texts").into_iter().map(|l| l.text).collect();
            (d, lines)
        }
        m => panic!("{engine:?}: expected a result, got {m:?}"),
    };
    let path = "/ws/video/stream?pipeline=detect_ocr";
    let mut lone = server.client_at(path);
    let want: Vec<_> = frames.iter().map(|f| answer(lone.round_trip(f))).collect();
    assert!(want.iter().any(|(d, _)| d.len() >= 2), "{engine:?}: a frame with several detections");
    assert!(want.iter().any(|(_, t)| !t.is_empty()), "{engine:?}: a frame with text");
    std::thread::scope(|s| {
        for i in 0..4 {
            let (server, frames, want, answer) = (&server, &frames, &want, &answer);
            s.spawn(move || {
                let mut c = server.client_at(path);
                for round in 0..3 {
                    for (k, f) in frames.iter().enumerate() {
                        let (d, t) = answer(c.round_trip(f));
                        let (wd, wt) = &want[k];
                        let at = format!("{engine:?} session {i} round {round} frame {k}");
                        assert_eq!(&t, wt, "{at}: text");
                        assert_eq!(labels(&d), labels(wd), "{at}: labels");
                        for (a, b) in d.iter().zip(wd) {
                            let close = a.bbox.iter().zip(b.bbox).all(|(x, y)| (x - y).abs() <= 1e-3);
                            assert!(close && (a.score - b.score).abs() <= 1e-3, "{at}: {a:?} vs {b:?}");
                        }
                    }
                }
            });
        }
    });
}
