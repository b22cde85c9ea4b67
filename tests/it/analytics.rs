//! Zones, lines and track events over the wire (#18): `configure`, `end_of_stream`, the events
//! and counts in results, on real frames through the real model, and every bad control message.
//!
//! The sequences are made of real frames: `track/` (an astronaut walking right to left along
//! the bottom of a real background, `make_track_frames.py`) with the background alone in two
//! frames (the astronaut hidden while it crosses a line), and the motorcycle photo with its
//! "GARAGE 3" sign shifted left frame by frame (a moving object with a reading). Frames go one
//! at a time (closed loop), so every frame is processed whatever the machine's speed; zones and
//! lines are drawn at least 10 px from every anchor the model gives, on either engine.

use std::time::Instant;

use tungstenite::Message;

use crate::protocol::{Event, LineCount, Msg, ZoneCount};
use framewire::vision::runtime::EngineKind;

use crate::support::{config, engines, fixture, scheduler, TestServer};

fn result_parts(m: Msg) -> (u64, Vec<Event>, Option<std::collections::BTreeMap<String, ZoneCount>>) {
    match m {
        Msg::Result { frame_index, events, zones, .. } => (frame_index, events, zones),
        m => panic!("expected a result, got {m:?}"),
    }
}

fn configured(m: Msg) {
    assert!(matches!(m, Msg::Configured { .. }), "expected configured, got {m:?}");
}

fn invalid_config(m: Msg) -> String {
    match m {
        Msg::Error { error, frame_index: None, detail: Some(d) } if error == "invalid_config" => d,
        m => panic!("expected invalid_config, got {m:?}"),
    }
}

/// `track/000`–`005`, the empty background twice (the astronaut hidden), `track/008`–`013`.
fn hidden_crossing() -> Vec<Vec<u8>> {
    (0..14)
        .map(|i| match i {
            6 | 7 => fixture("photo_hubble_noobjects_640x480.jpg"),
            i => fixture(&format!("track/{i:03}.jpg")),
        })
        .collect()
}

/// The astronaut only (`classes`), a zone `door` it walks through, a line `gate` drawn top to
/// bottom that it crosses right to left while hidden (`in`), and a line `exit` drawn bottom to
/// top that it crosses the same way later (`out`).
const PERSON_CONFIG: &str = r#"{"type":"configure","track":true,"classes":["person"],
    "zones":[{"name":"door","polygon":[[290,300],[396,300],[396,480],[290,480]]}],
    "lines":[{"name":"gate","points":[[315,0],[315,480]]},{"name":"exit","points":[[150,480],[150,0]]}]}"#;

#[test]
fn a_walk_through_a_zone_and_across_two_lines_one_while_hidden_gives_exactly_these_events() {
    for engine in engines() {
        walk(engine);
    }
}

fn walk(engine: EngineKind) {
    let server = TestServer::start_on(engine);
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    match c.control(PERSON_CONFIG) {
        Msg::Configured { pipeline, track, options, zones, lines, anchor, events } => {
            assert_eq!((pipeline.as_str(), track, anchor.as_str()), ("detect", true, "bottom_center"));
            assert_eq!(options.classes, Some(vec!["person".to_string()]));
            assert_eq!((zones.len(), zones[0].inertia, lines.len()), (1, 2, 2), "defaults filled in");
            assert!(events.is_empty());
        }
        m => panic!("{m:?}"),
    }
    let mut events = Vec::new();
    let mut door_count = Vec::new();
    let mut sent = Vec::new();
    let mut answered = Vec::new();
    for (i, frame) in hidden_crossing().iter().enumerate() {
        sent.push(Instant::now());
        let (index, ev, zones) = result_parts(c.round_trip(frame));
        answered.push(Instant::now());
        assert_eq!(index, i as u64);
        events.extend(ev);
        door_count.push(zones.expect("zones in every result")["door"].count);
    }
    let started = Event::TrackStarted { track_id: 1, label: "person".into(), frame_index: 0 };
    let Some(Event::ZoneExited { dwell_ms, .. }) = events.get(3).cloned() else { panic!("{events:#?}") };
    assert_eq!(
        events,
        vec![
            started,
            Event::ZoneEntered { zone: "door".into(), track_id: 1, label: "person".into(), frame_index: 4 },
            // Seen at 5 on the right of the line, hidden in 6 and 7, seen at 8 on its left.
            Event::LineCrossed {
                line: "gate".into(),
                direction: "in".into(),
                track_id: 1,
                label: "person".into(),
                frame_index: 8
            },
            Event::ZoneExited {
                zone: "door".into(),
                track_id: 1,
                label: "person".into(),
                frame_index: 9,
                dwell_frames: 5,
                dwell_ms
            },
            Event::LineCrossed {
                line: "exit".into(),
                direction: "out".into(),
                track_id: 1,
                label: "person".into(),
                frame_index: 12
            },
        ],
    );
    // Dwell is measured on the server's arrival times: between frame 4 arriving (after it was
    // sent, before its result came back) and frame 9 arriving (likewise).
    let (lo, hi) = (sent[9].duration_since(answered[4]), answered[9].duration_since(sent[4]));
    assert!(
        (lo.as_millis() as u64..=hi.as_millis() as u64 + 1).contains(&dwell_ms),
        "{dwell_ms} ms not in [{lo:?}, {hi:?}]"
    );
    // Inside from the counted entry (4) to the counted exit (9), hidden frames included.
    assert_eq!(door_count, [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    // The end of the stream ends the track with its life and what it did.
    match c.control(r#"{"type":"end_of_stream"}"#) {
        Msg::EndOfStream { frame_index, events, zones, lines } => {
            assert_eq!(frame_index, Some(13));
            let dwell = crate::protocol::Dwell { dwell_frames: 5, dwell_ms };
            assert_eq!(
                events,
                vec![Event::TrackEnded {
                    track_id: 1,
                    label: "person".into(),
                    first_frame_index: 0,
                    last_frame_index: 13,
                    frames: 12,
                    text: None,
                    text_score: None,
                    zones: [("door".to_string(), dwell)].into_iter().collect(),
                    lines: [("exit".to_string(), "out".to_string()), ("gate".to_string(), "in".to_string())]
                        .into_iter()
                        .collect(),
                }]
            );
            assert_eq!(zones["door"], ZoneCount { count: 0, by_label: Default::default() });
            assert_eq!(lines["gate"], LineCount { into: 1, out: 0 });
            assert_eq!(lines["exit"], LineCount { into: 0, out: 1 });
        }
        m => panic!("{m:?}"),
    }
    // The session goes on: a new track (a new id, confirmed on its second frame in a row, as
    // any track after a session's first frame), line totals still counting.
    let again = fixture("track/000.jpg");
    let (_, ev, _) = result_parts(c.round_trip(&again));
    assert_eq!(ev, vec![]);
    match c.round_trip(&again) {
        Msg::Result { lines: Some(lines), events, .. } => {
            assert_eq!(events, vec![Event::TrackStarted { track_id: 2, label: "person".into(), frame_index: 15 }]);
            assert_eq!(lines["gate"], LineCount { into: 1, out: 0 });
        }
        m => panic!("{m:?}"),
    }
}

/// The motorcycle photo shifted left by `dx` pixels (the right edge filled black), its
/// "NO PARKING" sign painted over (`text_truth.json`'s box, 4 px wider), so the one reading
/// it carries all along is "GARAGE 3" (with two signs read every frame, the consensus would
/// come down to which sign is read more confidently).
fn shifted_motorcycle(src: &[u8], dx: usize) -> Vec<u8> {
    let d = mozjpeg::Decompress::new_mem(src).expect("decode");
    let mut d = d.rgb().expect("rgb");
    let (w, h) = (d.width(), d.height());
    let pixels: Vec<[u8; 3]> = d.read_scanlines().expect("scanlines");
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w - dx {
            let sign = (341..658).contains(&(x + dx)) && (135..176).contains(&y);
            let p = if sign { [128, 128, 128] } else { pixels[y * w + x + dx] };
            out[(y * w + x) * 3..][..3].copy_from_slice(&p);
        }
    }
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w, h);
    c.set_quality(90.0);
    let mut c = c.start_compress(Vec::new()).expect("compress");
    c.write_scanlines(&out).expect("scanlines");
    c.finish().expect("finish")
}

#[test]
fn a_moving_motorcycle_crosses_a_line_and_ends_with_its_reading() {
    let server = TestServer::start();
    let mut c = server.client_at("/ws/video/stream?pipeline=detect_ocr&ocr=detections");
    configured(c.control(
        r#"{"type":"configure","track":true,"classes":["motorcycle"],
            "lines":[{"name":"kerb","points":[[600,0],[600,720]],"classes":["motorcycle"]}]}"#,
    ));
    let photo = fixture("text_garage_sign_on_motorcycle_1280x720.jpg");
    let mut events = Vec::new();
    let mut lines = None;
    for i in 0..6 {
        match c.round_trip(&shifted_motorcycle(&photo, 30 * i)) {
            Msg::Result { events: ev, lines: l, .. } => {
                events.extend(ev);
                lines = l;
            }
            m => panic!("{m:?}"),
        }
    }
    let crossed: Vec<&Event> = events.iter().filter(|e| matches!(e, Event::LineCrossed { .. })).collect();
    assert_eq!(
        crossed,
        [&Event::LineCrossed {
            line: "kerb".into(),
            direction: "in".into(),
            track_id: 1,
            label: "motorcycle".into(),
            frame_index: 3
        }],
        "{events:#?}"
    );
    assert_eq!(lines.expect("lines")["kerb"], LineCount { into: 1, out: 0 });
    match c.control(r#"{"type":"end_of_stream"}"#) {
        Msg::EndOfStream { events, .. } => match events.as_slice() {
            [Event::TrackEnded { track_id: 1, text: Some(text), text_score: Some(s), frames: 6, lines, .. }] => {
                assert_eq!(text, "GARAGE 3");
                assert!(*s > 0.5 && *s <= 1.0, "{s}");
                assert_eq!(lines.get("kerb").map(String::as_str), Some("in"));
            }
            e => panic!("{e:#?}"),
        },
        m => panic!("{m:?}"),
    }
}

#[test]
fn a_configure_applies_from_the_next_frame_and_a_refused_one_changes_nothing() {
    let server = TestServer::start();
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    let cat = fixture("photo_cat_640x480.jpg");
    let Msg::Result { result, .. } = c.round_trip(&cat) else { panic!() };
    assert!(result.detections.is_some() && result.texts.is_none());
    // A frame in flight and one waiting when the configure arrives: both were received before
    // it, so both run as asked then; the answer comes after their results.
    c.send_frame(&cat);
    c.send_frame(&cat);
    c.send_text(r#"{"type":"configure","pipeline":"ocr"}"#);
    let msgs: Vec<Msg> = (0..3).map(|_| c.next()).collect();
    match msgs.as_slice() {
        [Msg::Result { frame_index: 1, result: a, .. }, Msg::Result { frame_index: 2, result: b, .. }, Msg::Configured { pipeline, .. }] =>
        {
            assert!(a.detections.is_some() && b.detections.is_some(), "{msgs:?}");
            assert_eq!(pipeline, "ocr");
        }
        // The second frame may have replaced... no: a waiting frame is only replaced by a newer
        // frame, and none came.
        m => panic!("{m:?}"),
    }
    let Msg::Result { result, .. } = c.round_trip(&cat) else { panic!() };
    assert!(result.detections.is_none() && result.texts.is_some(), "the new pipeline runs");
    // A refused configure leaves everything as it was.
    let why = invalid_config(c.control(r#"{"type":"configure","pipeline":"detect","min_score":2}"#));
    assert_eq!(why, "min_score: a number within [0, 1]");
    let Msg::Result { result, .. } = c.round_trip(&cat) else { panic!() };
    assert!(result.detections.is_none(), "still ocr");
    // /sessions shows the pipeline in force.
    assert!(server.handle.sessions().iter().any(|s| s.pipeline == framewire::protocol::PipelineKind::Ocr));
    // Options: min_score and classes, and null to go back to every class.
    configured(c.control(r#"{"type":"configure","pipeline":"detect","classes":["dog"]}"#));
    let Msg::Result { result, .. } = c.round_trip(&cat) else { panic!() };
    assert!(result.detections.unwrap().is_empty(), "no dog in the cat photo");
    configured(c.control(r#"{"type":"configure","classes":null,"min_score":0.3}"#));
    let Msg::Result { result, .. } = c.round_trip(&cat) else { panic!() };
    let d = result.detections.unwrap();
    assert!(d.iter().any(|d| d.label == "cat") && d.iter().all(|d| d.score >= 0.3), "{d:?}");
}

#[test]
fn switching_tracking_off_ends_the_live_tracks_in_the_configured_answer() {
    let server = TestServer::start();
    let mut c = server.client_at("/ws/video/stream?pipeline=detect&track=true");
    let Msg::Result { events, .. } = c.round_trip(&fixture("track/000.jpg")) else { panic!() };
    let started: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::TrackStarted { track_id, .. } => Some(*track_id),
            _ => None,
        })
        .collect();
    assert!(!started.is_empty(), "{events:?}");
    match c.control(r#"{"type":"configure","track":false}"#) {
        Msg::Configured { track: false, events, .. } => {
            let ended: Vec<u64> = events
                .iter()
                .filter_map(|e| match e {
                    Event::TrackEnded { track_id, .. } => Some(*track_id),
                    _ => None,
                })
                .collect();
            assert_eq!(ended, started);
        }
        m => panic!("{m:?}"),
    }
    let Msg::Result { result, events, .. } = c.round_trip(&fixture("track/001.jpg")) else { panic!() };
    assert!(events.is_empty() && result.detections.unwrap().iter().all(|d| d.track_id.is_none()));
}

#[test]
fn every_bad_configure_gets_its_field_and_why_and_the_session_goes_on() {
    // More cases than the default rate's burst.
    let mut cfg = config();
    cfg.max_control_rate = 1000;
    let server = TestServer::start_with(cfg, scheduler());
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    let square = r#"[[0,0],[100,0],[100,100],[0,100]]"#;
    let cases = [
        (
            format!(r#"{{"zones":[{{"name":"a","polygon":{square}}}]}}"#),
            "zones: zones and lines need tracking (\"track\": true)",
        ),
        (
            r#"{"lines":[{"name":"g","points":[[0,0],[9,9]]}]}"#.into(),
            "lines: zones and lines need tracking (\"track\": true)",
        ),
        (
            format!(r#"{{"track":true,"pipeline":"ocr","zones":[{{"name":"a","polygon":{square}}}]}}"#),
            "zones: zones and lines need detections (pipeline detect or detect_ocr)",
        ),
        (r#"{"track":true,"zones":[{"name":"a","polygon":[[0,0],[9,9]]}]}"#.into(), "zones[0].polygon: 3 to 64 points"),
        (
            r#"{"track":true,"zones":[{"name":"a","polygon":[[0,0],[100,100],[100,0],[0,100]]}]}"#.into(),
            "zones[0].polygon: the polygon crosses or touches itself",
        ),
        (
            r#"{"track":true,"zones":[{"name":"a","polygon":[[0,0],[5,5],[9,9]]}]}"#.into(),
            "zones[0].polygon: the polygon crosses or touches itself",
        ),
        (
            r#"{"track":true,"lines":[{"name":"g","points":[[5,5],[5,5]]}]}"#.into(),
            "lines[0].points: the line has zero length",
        ),
        (
            format!(
                r#"{{"track":true,"zones":[{{"name":"a","polygon":{square}}},{{"name":"a","polygon":{square}}}]}}"#
            ),
            "zones[1].name: the name \"a\" is used twice",
        ),
        (r#"{"track":true,"bogus":1}"#.into(), "bogus: unknown field"),
        (
            format!(r#"{{"track":true,"zones":[{{"name":"a","polygon":{square},"colour":"red"}}]}}"#),
            "zones[0].colour: unknown field",
        ),
        (
            format!(r#"{{"track":true,"zones":[{{"name":"a","polygon":{square},"classes":["unicorn"]}}]}}"#),
            "zones[0].classes: unknown label \"unicorn\"",
        ),
        (r#"{"classes":["unicorn"]}"#.into(), "classes[0]: unknown label \"unicorn\" for this detector"),
        (
            r#"{"track":true,"lines":[{"name":"g","points":[[0,0],[1e9,5]]}]}"#.into(),
            "lines[0].points: coordinates must be finite and within ±65536 px",
        ),
        (
            format!(r#"{{"track":true,"zones":[{{"name":"{}","polygon":{square}}}]}}"#, "n".repeat(65)),
            "zones[0].name: 1 to 64 characters",
        ),
        (
            format!(r#"{{"track":true,"zones":[{{"name":"a","polygon":{square},"inertia":0}}]}}"#),
            "zones[0].inertia: 1 to 1000 frames",
        ),
        (
            format!(r#"{{"track":true,"zones":[{{"name":"a","polygon":{square},"loiter_s":-1}}]}}"#),
            "zones[0].loiter_s: more than 0 and at most 86400 seconds",
        ),
        (r#"{"ocr":"detections"}"#.into(), "ocr: \"detections\" needs pipeline detect_ocr"),
        (
            format!(
                r#"{{"track":true,"zones":[{}]}}"#,
                vec![format!(r#"{{"name":"z","polygon":{square}}}"#); 33].join(",")
            ),
            "zones: at most 32 zones",
        ),
        (
            format!(
                r#"{{"track":true,"zones":[{{"name":"a","polygon":[{}]}}]}}"#,
                (0..65).map(|i| format!("[{},{}]", i, i * i)).collect::<Vec<_>>().join(",")
            ),
            "zones[0].polygon: 3 to 64 points",
        ),
    ];
    let cat = fixture("photo_cat_640x480.jpg");
    for (body, want) in &cases {
        let text = body.replacen('{', r#"{"type":"configure","#, 1);
        assert_eq!(invalid_config(c.control(&text)), *want, "{text}");
    }
    // Malformed control messages: `invalid_message`, the session goes on. JSON cannot carry
    // NaN or infinity; a number too large for a double is not valid JSON either.
    for (text, want) in [
        (
            r#"{"type":"configure","lines":[{"name":"g","points":[[0,0],[1e999,5]]}]}"#,
            "not valid JSON (line 1, column 63)",
        ),
        (r#"{"type":"configure","min_score":NaN}"#, "not valid JSON (line 1, column 33)"),
        (r#"{"type":"end_of_stream","now":1}"#, "now: end_of_stream takes no other field"),
    ] {
        match c.control(text) {
            Msg::Error { error, detail: Some(d), .. } if error == "invalid_message" => assert_eq!(d, want, "{text}"),
            m => panic!("{text}: {m:?}"),
        }
    }
    // 64 KiB and more (but under max_frame_bytes): refused unread.
    let big = format!(r#"{{"type":"configure","zones":[],"pad":"{}"}}"#, "x".repeat(70_000));
    match c.control(&big) {
        Msg::Error { error, detail: Some(d), .. } if error == "invalid_message" => assert!(d.contains("65536"), "{d}"),
        m => panic!("{m:?}"),
    }
    // Nothing of it was applied, and frames are answered as before.
    assert!(matches!(c.round_trip(&cat), Msg::Result { events, zones: None, lines: None, .. } if events.is_empty()));
    match c.control(r#"{"type":"configure"}"#) {
        Msg::Configured { track: false, zones, lines, pipeline, .. } => {
            assert!(zones.is_empty() && lines.is_empty() && pipeline == "detect");
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn a_configure_over_max_frame_bytes_is_closed_1009_and_other_sessions_never_notice() {
    let server = TestServer::start();
    let mut other = server.client_at("/ws/video/stream?pipeline=detect");
    let mut c = server.client();
    let huge = format!(r#"{{"type":"configure","pad":"{}"}}"#, "x".repeat(10 * 1024 * 1024));
    c.send_text(&huge);
    let (code, reason, _) = c.until_close();
    assert_eq!((code, reason.as_str()), (1009, "too_large"));
    assert!(matches!(other.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
}

#[test]
fn ten_thousand_configure_messages_a_second_are_rate_limited_and_never_stall_a_session() {
    let mut cfg = config();
    cfg.max_control_rate = 20;
    let server = TestServer::start_with(cfg, scheduler());
    let mut other = server.client_at("/ws/video/stream?pipeline=detect");
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    // The largest configuration allowed: 32 zones of 64 points (a circle each), applied.
    let zones = (0..32)
        .map(|i| {
            let pts: Vec<String> = (0..64)
                .map(|k| {
                    let a = k as f64 / 10.2;
                    format!("[{:.1},{:.1}]", 320.0 + 100.0 * a.cos() + i as f64, 240.0 + 100.0 * a.sin())
                })
                .collect();
            format!(r#"{{"name":"z{i}","polygon":[{}]}}"#, pts.join(","))
        })
        .collect::<Vec<_>>()
        .join(",");
    let heavy = format!(r#"{{"type":"configure","track":true,"zones":[{zones}]}}"#);
    assert!(heavy.len() < 64 * 1024, "{}", heavy.len());
    match c.control(&heavy) {
        Msg::Configured { zones, .. } => assert_eq!(zones.len(), 32),
        m => panic!("{m:?}"),
    }
    let start = Instant::now();
    for i in 0..10_000 {
        let score = 0.3 + (i % 5) as f64 / 10.0;
        c.ws.write(Message::text(format!(r#"{{"type":"configure","min_score":{score}}}"#))).expect("queue");
    }
    c.ws.flush().expect("flush");
    // Every message is answered, in order: the burst left (19) and the refill while they arrive
    // are applied, the rest refused.
    let (mut applied, mut limited) = (0, 0);
    while applied + limited < 10_000 {
        match c.next() {
            Msg::Configured { zones, .. } => {
                assert_eq!(zones.len(), 32, "the zones stay");
                applied += 1;
            }
            Msg::Error { error, .. } if error == "rate_limited" => limited += 1,
            m => panic!("{m:?}"),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert!(applied >= 19 && applied as f64 <= 19.0 + 20.0 * elapsed + 1.0, "{applied} applied in {elapsed:.1} s");
    // The flooding session is still answered, and so is the other one.
    assert!(matches!(c.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
    assert!(matches!(other.round_trip(&fixture("photo_cat_640x480.jpg")), Msg::Result { .. }));
}

#[test]
fn loitering_is_told_once_a_visit_with_the_dwell_so_far() {
    let server = TestServer::start();
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    // The whole frame, entered on the first observation; any dwell above 1 ms loiters (two
    // frames' arrivals are always further apart than that: a frame takes milliseconds).
    configured(c.control(
        r#"{"type":"configure","track":true,"classes":["cat"],
            "zones":[{"name":"all","polygon":[[-1,-1],[641,-1],[641,481],[-1,481]],"inertia":1,"loiter_s":0.001}]}"#,
    ));
    let cat = fixture("photo_cat_640x480.jpg");
    let mut events = Vec::new();
    for _ in 0..3 {
        events.extend(result_parts(c.round_trip(&cat)).1);
    }
    let Some(Event::Loitering { dwell_ms, .. }) = events.get(2).cloned() else { panic!("{events:#?}") };
    assert!(dwell_ms >= 1);
    assert_eq!(
        events,
        vec![
            Event::TrackStarted { track_id: 1, label: "cat".into(), frame_index: 0 },
            Event::ZoneEntered { zone: "all".into(), track_id: 1, label: "cat".into(), frame_index: 0 },
            Event::Loitering { zone: "all".into(), track_id: 1, label: "cat".into(), frame_index: 1, dwell_ms },
        ],
        "once a visit: nothing at frame 2"
    );
}

#[test]
fn other_text_keeps_protocol_v1s_answer() {
    let server = TestServer::start();
    for text in [r#"{"type":"hello"}"#, "[1]", "configure"] {
        let mut c = server.client();
        c.send_text(text);
        let (code, _, msgs) = c.until_close();
        assert_eq!(code, 1003, "{text}");
        assert_eq!(msgs, vec![Msg::Error { error: "unsupported_message".into(), frame_index: None, detail: None }]);
    }
}

/// The astronaut only, and one zone, `door`, that it walks through (as in [`PERSON_CONFIG`]).
const DOOR: &str = r#"{"name":"door","polygon":[[290,300],[396,300],[396,480],[290,480]]}"#;

/// #29 (4, 5, 8) over the wire: a person stands in the `door` zone when a `configure` draws a
/// second zone (what the demo page does on every second shape): no event for `door`, its count
/// does not move, no second entry, and its exit's dwell runs from the entry before the
/// configure; `/sessions` and `/metrics` show the counts and the events; after tracking is
/// turned off and on, the new track gets an id never used in the session.
#[test]
fn a_second_zone_leaves_a_track_in_the_first_where_it_was_and_ids_are_never_reused() {
    let server = TestServer::start();
    let mut c = server.client_at("/ws/video/stream?pipeline=detect");
    configured(c.control(&format!(r#"{{"type":"configure","track":true,"classes":["person"],"zones":[{DOOR}]}}"#)));
    let lot = r#"{"name":"lot","polygon":[[0,0],[100,0],[100,100],[0,100]]}"#;
    let (mut events, mut door, mut drawn_at) = (Vec::new(), Vec::new(), None);
    for i in 0..14 {
        let (index, ev, zones) = result_parts(c.round_trip(&fixture(&format!("track/{i:03}.jpg"))));
        events.extend(ev);
        door.push(zones.expect("zones")["door"].count);
        if drawn_at.is_none() && door.last() == Some(&1) {
            // Counted inside the door: draw the second zone now.
            drawn_at = Some(index);
            match c.control(&format!(r#"{{"type":"configure","zones":[{DOOR},{lot}]}}"#)) {
                Msg::Configured { zones, events, .. } => {
                    assert_eq!(zones.len(), 2);
                    assert!(events.is_empty(), "nothing happened to anyone: {events:?}");
                }
                m => panic!("{m:?}"),
            }
            let listed = server.handle.sessions();
            let [s] = listed.as_slice() else { panic!("{listed:?}") };
            let counts: Vec<(&str, u64)> = s.zones.0.iter().map(|(n, c)| (n.as_str(), c.count)).collect();
            assert_eq!(counts, [("door", 1), ("lot", 0)], "/sessions has the counts");
            let (_, body) = crate::support::http_status(&server, "GET /sessions HTTP/1.1\r\nHost: x\r\n\r\n");
            assert!(body.contains(r#""zones":{"door":{"count":1,"by_label":{"person":1}},"lot":{"count":0"#), "{body}");
        }
    }
    let drawn_at = drawn_at.expect("the person was counted in the door");
    let door_events: Vec<(String, u64, Option<u64>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::ZoneEntered { zone, frame_index, .. } if zone == "door" => Some(("in".into(), *frame_index, None)),
            Event::ZoneExited { zone, frame_index, dwell_frames, .. } if zone == "door" => {
                Some(("out".into(), *frame_index, Some(*dwell_frames)))
            }
            _ => None,
        })
        .collect();
    let [(a, entered, None), (b, exited, Some(dwell))] = door_events.as_slice() else { panic!("{events:#?}") };
    assert_eq!((a.as_str(), b.as_str()), ("in", "out"));
    assert_eq!(*entered, drawn_at, "counted just before the configure");
    assert!(*exited > drawn_at + 1, "left after it: {door:?}");
    assert_eq!(*dwell, exited - entered, "the dwell spans the configure");
    let inside = (*entered as usize)..(*exited as usize);
    assert!(door.iter().enumerate().all(|(i, n)| *n == u64::from(inside.contains(&i))), "{door:?}");
    // The events and control messages were counted.
    let (_, metrics) = crate::support::http_status(&server, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    for line in [
        "framewire_events_total{type=\"zone_entered\"} 1",
        "framewire_events_total{type=\"zone_exited\"} 1",
        "framewire_events_total{type=\"track_started\"} 1",
        "framewire_control_messages_total{outcome=\"configured\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    // Tracking off (its zones first) and on again: the next person is a new track whose id was
    // never used in this session.
    match c.control(r#"{"type":"configure","track":false,"zones":[]}"#) {
        Msg::Configured { events, .. } => {
            assert!(events.iter().any(|e| matches!(e, Event::TrackEnded { track_id: 1, .. })), "{events:?}")
        }
        m => panic!("{m:?}"),
    }
    configured(c.control(r#"{"type":"configure","track":true}"#));
    let mut started = Vec::new();
    for i in 0..3 {
        let (_, ev, _) = result_parts(c.round_trip(&fixture(&format!("track/{i:03}.jpg"))));
        started.extend(ev.into_iter().filter_map(|e| match e {
            Event::TrackStarted { track_id, .. } => Some(track_id),
            _ => None,
        }));
    }
    assert_eq!(started, [2], "a new id, not 1 again");
}
