//! Work once (#27) over the wire, on the real models: `ocr_reuse` (a track's plate is read until
//! its reading settles) and `detect_every` (`3`, and `auto`: the tracker answers the frames
//! between detector runs).
//!
//! The sequence is `tests/fixtures/plates/` (`make_plate_frames.py` there): three motorcycles
//! with number plates, "KX 705" parked, "HN 264" passing by along the top (it crosses the line
//! `mid` at x = 320 and enters the zone `right`), and "MC 318" coming closer (its box grows
//! ×1.8). The every-frame runs are the reference each other run is held to.

use std::collections::{BTreeMap, BTreeSet};

use tungstenite::Message;

use crate::protocol::{Detection, Event, Msg, Timings};
use crate::support::{config_on, engines, fixture, scheduler_on, Client, TestServer};
use framewire::vision::runtime::EngineKind;

const FRAMES: usize = 30;

fn frames() -> Vec<Vec<u8>> {
    (0..FRAMES).map(|i| fixture(&format!("plates/{i:03}.jpg"))).collect()
}

/// A line "HN 264" crosses left to right, a zone it enters; the other two stay clear of both.
const ANALYTICS: &str = r#"{"type":"configure",
    "lines":[{"name":"mid","points":[[320,0],[320,230]]}],
    "zones":[{"name":"right","polygon":[[400,0],[640,0],[640,230],[400,230]]}]}"#;

/// One result: its index, detections, timings and events.
struct Frame {
    index: u64,
    detections: Vec<Detection>,
    timings: Timings,
    events: Vec<Event>,
}

fn frame(m: Msg) -> Frame {
    match m {
        Msg::Result { frame_index, result, timings_ms, events, .. } => Frame {
            index: frame_index,
            detections: result.detections.expect("detections"),
            timings: timings_ms,
            events,
        },
        m => panic!("expected a result, got {m:?}"),
    }
}

/// A session on `server` with `query`, the analytics configured.
fn session(server: &TestServer, query: &str) -> Client {
    let mut c = server.client_at(&format!("/ws/video/stream?pipeline=detect_ocr&ocr=detections&track=true&{query}"));
    match c.control(ANALYTICS) {
        Msg::Configured { .. } => c,
        m => panic!("{m:?}"),
    }
}

/// Every frame sent after the previous one's result; then `end_of_stream`'s events.
fn closed_loop(c: &mut Client) -> (Vec<Frame>, Vec<Event>) {
    let results: Vec<Frame> = frames().iter().map(|f| frame(c.round_trip(f))).collect();
    (results, end(c))
}

fn end(c: &mut Client) -> Vec<Event> {
    match c.control(r#"{"type":"end_of_stream"}"#) {
        Msg::EndOfStream { events, .. } => events,
        m => panic!("{m:?}"),
    }
}

/// Each track's label and final reading, from its `track_ended`.
fn endings(events: &[Event]) -> BTreeMap<u64, (String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TrackEnded { track_id, label, text, .. } => Some((*track_id, (label.clone(), text.clone()))),
            _ => None,
        })
        .collect()
}

/// The events of a run that are about lines and zones, without their frame: (kind, where,
/// track, direction), and their frames by that key.
fn crossings(frames: &[Frame], ended: &[Event]) -> BTreeMap<(String, String, u64, String), u64> {
    let mut out = BTreeMap::new();
    for e in frames.iter().flat_map(|f| f.events.iter()).chain(ended) {
        let (key, at) = match e {
            Event::LineCrossed { line, direction, track_id, frame_index, .. } => {
                (("line".into(), line.clone(), *track_id, direction.clone()), *frame_index)
            }
            Event::ZoneEntered { zone, track_id, frame_index, .. } => {
                (("entered".into(), zone.clone(), *track_id, String::new()), *frame_index)
            }
            Event::ZoneExited { zone, track_id, frame_index, .. } => {
                (("exited".into(), zone.clone(), *track_id, String::new()), *frame_index)
            }
            _ => continue,
        };
        assert!(out.insert(key.clone(), at).is_none(), "{key:?} twice");
    }
    out
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

/// The box of track `id` in a frame, if shown.
fn box_of(f: &Frame, id: u64) -> Option<[f32; 4]> {
    f.detections.iter().find(|d| d.track_id == Some(id)).map(|d| d.bbox)
}

/// The three plates, each read to the end, with the reading reused once settled: the same
/// final readings as reading every crop of every frame, for a third of the OCR work or less;
/// the parked and the passing motorcycles are not read again once settled; the approaching
/// one is, as it grows.
#[test]
fn plates_are_read_until_they_settle_and_end_with_the_same_readings() {
    for engine in engines() {
        reuse(engine);
    }
}

fn server(engine: EngineKind) -> TestServer {
    let mut c = config_on(engine);
    // Frames come as fast as the machine answers them here: no re-reading by time in the test.
    c.reuse.reread_after_ms = 3_600_000;
    TestServer::start_with(c, scheduler_on(engine))
}

fn reuse(engine: EngineKind) {
    let server = server(engine);
    let (every, every_end) = closed_loop(&mut session(&server, "ocr_reuse=false"));
    let (once, once_end) = closed_loop(&mut session(&server, ""));
    let want = endings(&every_end);
    let plates: BTreeSet<(String, Option<String>)> = want.values().cloned().collect();
    assert_eq!(
        plates,
        ["HN 264", "KX 705", "MC 318"].map(|t| ("motorcycle".to_string(), Some(t.to_string()))).into(),
        "{engine:?}: every plate read right without reuse: {want:?}"
    );
    assert_eq!(endings(&once_end), want, "{engine:?}: the same tracks, ids and final readings with reuse");
    let read = |frames: &[Frame]| -> usize {
        frames.iter().flat_map(|f| &f.detections).filter(|d| d.text_read == Some(true)).count()
    };
    assert!(every.iter().flat_map(|f| &f.detections).all(|d| d.track_id.is_none() || d.text_read == Some(true)));
    let (all, reused) = (read(&every), read(&once));
    assert!(reused * 3 <= all, "{engine:?}: {reused} crops read with reuse against {all} without");
    eprintln!("{engine:?}: {reused} tracked crops read with reuse, {all} without");
    // Once settled, the parked and the passing ones are never read again; every tracked
    // detection carries its track's reading whether it was read in that frame or not.
    for (id, (label, text)) in &want {
        let mut settled = false;
        let mut reads = Vec::new();
        for f in &once {
            let Some(d) = f.detections.iter().find(|d| d.track_id == Some(*id)) else { continue };
            assert_eq!(d.track_text.is_some(), d.track_text_score.is_some(), "{d:?}");
            if d.text_read == Some(false) {
                settled = true;
                assert!(d.track_text.is_some(), "{engine:?}: a carried reading is shown: {d:?}");
                assert!(d.track_text_score.is_some_and(|s| s > 0.5 && s <= 1.0), "{engine:?}: {d:?}");
            }
            if d.text_read == Some(true) {
                reads.push((f.index, settled, d.bbox));
            }
        }
        assert!(settled, "{engine:?}: {label} {text:?} settled: {reads:?}");
        let again: Vec<_> = reads.iter().filter(|r| r.1).collect();
        match text.as_deref() {
            Some("MC 318") => assert!(!again.is_empty(), "{engine:?}: read again as it came closer: {reads:?}"),
            _ => assert!(again.is_empty(), "{engine:?}: {text:?} read again after settling: {reads:?}"),
        }
    }
    // The OCR that ran is in the timings: absent on a frame that read no crop (an untracked
    // detection, a new object, is always read).
    let mut quiet = 0;
    for f in &once {
        let any = f.detections.iter().any(|d| d.text_read == Some(true) || d.track_id.is_none());
        assert_eq!(f.timings.ocr_detect.is_some(), any, "{engine:?}: frame {}", f.index);
        assert_eq!(f.timings.ocr_recognize.is_some(), any, "{engine:?}: frame {}", f.index);
        quiet += usize::from(!any);
    }
    assert!(quiet > 0, "{engine:?}: some frames needed no OCR at all");
}

/// `detect_every=3`: the detector on frames 0, 3, 6, …, the tracker's prediction on the
/// others; `auto` under a burst of three frames at a time: every frame answered, the ones that
/// waited predicted. Both give the ids, line crossings and zone events of the every-frame run,
/// and predicted boxes stay on the objects.
#[test]
fn skipping_the_detector_keeps_ids_events_and_boxes() {
    for engine in engines() {
        skipping(engine);
    }
}

fn skipping(engine: EngineKind) {
    let server = server(engine);
    let (every, every_end) = closed_loop(&mut session(&server, ""));
    let want_ids = endings(&every_end);
    let want_events = crossings(&every, &every_end);
    assert!(want_events.keys().any(|k| k.0 == "line"), "{engine:?}: HN 264 crosses `mid`: {want_events:?}");
    assert!(want_events.keys().any(|k| k.0 == "entered"), "{engine:?}: HN 264 enters `right`: {want_events:?}");

    // Every third frame detected.
    let (third, third_end) = closed_loop(&mut session(&server, "detect_every=3"));
    let (mut worst, mut early, mut predicted) = (1.0f32, 1.0f32, 0);
    for (f, reference) in third.iter().zip(&every) {
        let skipped = f.index % 3 != 0;
        assert_eq!(f.timings.predict.is_some(), skipped, "{engine:?}: frame {}", f.index);
        assert_eq!(f.timings.decode.is_none() && f.timings.detect.is_none(), skipped, "{engine:?}: not decoded");
        for d in &f.detections {
            assert_eq!(d.predicted == Some(true), skipped, "{engine:?}: frame {}: {d:?}", f.index);
            if skipped {
                let id = d.track_id.expect("a predicted box is a track's");
                assert!(want_ids.contains_key(&id), "{engine:?}: prediction never invents a track: {d:?}");
                assert!(d.track_text.is_some() && d.text_read == Some(false), "{d:?}");
                // Against the box the detector gave in the every-frame run; the smooth part is
                // from the fifth detector run on (frame 12: "MC 318" was confirmed on frame 6,
                // its speed is known after two more runs).
                let b = box_of(reference, id).unwrap_or_else(|| panic!("{engine:?}: {id} in frame {}", f.index));
                if f.index >= 12 {
                    worst = worst.min(iou(&d.bbox, &b));
                    predicted += 1;
                } else {
                    early = early.min(iou(&d.bbox, &b));
                }
            }
        }
    }
    assert!(predicted >= 30, "{engine:?}: {predicted} predicted boxes compared");
    assert!(worst >= 0.8, "{engine:?}: predicted against detected, worst IoU {worst}");
    assert!(early >= 0.5, "{engine:?}: before the speeds are known, worst IoU {early}");
    eprintln!("{engine:?}: detect_every=3: {predicted} predicted boxes from frame 12, worst IoU {worst:.3}; before: {early:.3}");
    assert_eq!(endings(&third_end).keys().collect::<Vec<_>>(), want_ids.keys().collect::<Vec<_>>(), "{engine:?}");
    same_events(engine, &want_events, &crossings(&third, &third_end), 3);

    // `auto`, three frames at a time: the first goes to the detector, the second waits and
    // is replaced by the third, which goes next; the second is answered from the prediction.
    let mut c = session(&server, "detect_every=auto");
    let all = frames();
    let mut auto = Vec::new();
    for burst in all.chunks(3) {
        for f in burst {
            c.ws.write(Message::Binary(f.clone())).expect("write");
        }
        c.ws.flush().expect("flush");
        for _ in burst {
            auto.push(frame(c.next()));
        }
    }
    let auto_end = end(&mut c);
    let indices: Vec<u64> = auto.iter().map(|f| f.index).collect();
    assert_eq!(indices, (0..FRAMES as u64).collect::<Vec<_>>(), "{engine:?}: every frame answered, in order");
    let skipped = auto.iter().filter(|f| f.timings.predict.is_some()).count();
    let mut worst_auto = 1.0f32;
    for (f, reference) in auto.iter().zip(&every).filter(|(f, _)| f.index >= 12 && f.timings.predict.is_some()) {
        for d in &f.detections {
            let id = d.track_id.expect("a predicted box is a track's");
            let b = box_of(reference, id).unwrap_or_else(|| panic!("{engine:?}: {id} in frame {}", f.index));
            worst_auto = worst_auto.min(iou(&d.bbox, &b));
        }
    }
    assert!(worst_auto >= 0.8, "{engine:?}: auto's predicted against detected, worst IoU {worst_auto}");
    assert!(skipped >= 1, "{engine:?}: the frames that waited were predicted");
    eprintln!("{engine:?}: auto in bursts of 3: {skipped} of {FRAMES} frames predicted, worst IoU {worst_auto:.3}");
    assert_eq!(endings(&auto_end).keys().collect::<Vec<_>>(), want_ids.keys().collect::<Vec<_>>(), "{engine:?}");
    same_events(engine, &want_events, &crossings(&auto, &auto_end), 2);
}

/// The same events (kind, line or zone, track, direction), each within `slack` frames.
fn same_events(
    engine: EngineKind,
    want: &BTreeMap<(String, String, u64, String), u64>,
    got: &BTreeMap<(String, String, u64, String), u64>,
    slack: u64,
) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{engine:?}: {got:?} vs {want:?}");
    for (k, at) in got {
        assert!(at.abs_diff(want[k]) <= slack, "{engine:?}: {k:?} at {at}, detected every frame: {}", want[k]);
    }
}

/// Bad values of the two options: 400 before the upgrade, `invalid_config` on `configure`
/// with the configuration in force unchanged.
#[test]
fn bad_work_once_options_are_refused_both_ways() {
    let server = TestServer::start();
    for (query, why) in [
        ("track=true&detect_every=0", "detect_every: a whole number within [1, 30] or \"auto\""),
        ("track=true&detect_every=31", "detect_every: a whole number"),
        ("track=true&detect_every=often", "detect_every: a whole number"),
        ("detect_every=3", "detect_every: needs tracking"),
        ("track=true&pipeline=ocr&detect_every=auto", "detect_every: needs a detector"),
        ("ocr_reuse=yes", "ocr_reuse: true or false"),
    ] {
        crate::support::assert_query_refused(&server, query, why);
    }
    let mut c = server.client_at("/ws/video/stream?track=true&detect_every=2");
    for (msg, why) in [
        (r#"{"type":"configure","detect_every":0}"#, "detect_every: a whole number within [1, 30] or \"auto\""),
        (r#"{"type":"configure","detect_every":"3"}"#, "detect_every: a whole number"),
        (r#"{"type":"configure","track":false}"#, "detect_every: needs tracking"),
        (r#"{"type":"configure","ocr_reuse":"false"}"#, "ocr_reuse: true or false"),
    ] {
        match c.control(msg) {
            Msg::Error { error, detail: Some(d), .. } if error == "invalid_config" => assert!(d.contains(why), "{d}"),
            m => panic!("{msg}: {m:?}"),
        }
    }
    // Unchanged: still every second frame predicted, tracking on.
    let f = fixture("plates/000.jpg");
    let answers: Vec<bool> = (0..4).map(|_| frame(c.round_trip(&f)).timings.predict.is_some()).collect();
    assert_eq!(answers, [false, true, false, true]);
    let (_, metrics) = crate::support::http_status(&server, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    for line in ["framewire_frames_predicted_total 2", "framewire_frames_processed_total 2"] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
    assert!(metrics.contains("framewire_stage_seconds_count{stage=\"predict\"} 2"), "{metrics}");
    match c.control(r#"{"type":"configure","detect_every":"auto","ocr_reuse":false}"#) {
        Msg::Configured { track, options, .. } => {
            assert!(track);
            assert_eq!((options.detect_every, options.ocr_reuse), (serde_json::json!("auto"), false));
        }
        m => panic!("{m:?}"),
    }
}

/// `auto` under a burst far past `--max-predicted-waiting` (here 2): every frame is answered by
/// a result or a `frame_dropped`, results in order, the newest with a result; a `configure` sent
/// in the middle of the burst applies after the frames before it; once it turned tracking off
/// nothing is predicted (a frame still waiting to be is dropped: there is no tracker to predict
/// from).
#[test]
fn a_burst_past_the_bound_is_answered_in_order_and_the_newest_always_runs() {
    let mut config = crate::support::config();
    config.max_predicted_waiting = 2;
    let server = TestServer::start_with(config, crate::support::scheduler());
    let mut c = server.client_at("/ws/video/stream?track=true&detect_every=auto");
    let all = frames();
    for f in &all[..12] {
        c.ws.write(Message::Binary(f.clone())).expect("write");
    }
    c.ws.write(Message::text(r#"{"type":"configure","track":false,"detect_every":1}"#)).expect("write");
    for f in &all[12..16] {
        c.ws.write(Message::Binary(f.clone())).expect("write");
    }
    c.ws.flush().expect("flush");
    let (mut answered, mut configured_after) = (Vec::new(), None);
    while answered.len() < 16 {
        match c.next() {
            Msg::Result { frame_index, timings_ms, result, .. } => {
                let predicted = timings_ms.predict.is_some();
                let tracked = result.detections.iter().flatten().any(|d| d.track_id.is_some());
                answered.push((frame_index, if predicted { "predicted" } else { "detected" }, tracked));
            }
            Msg::FrameDropped { frame_index, .. } => answered.push((frame_index, "dropped", false)),
            Msg::Configured { track, options, .. } => {
                assert!(!track && options.detect_every == serde_json::json!(1));
                configured_after = Some(answered.len());
            }
            // More than half of the burst dropped: the client is told to slow down.
            Msg::SlowDown { .. } => {}
            m => panic!("{m:?}"),
        }
    }
    // Each frame answered once; results in frame order (a drop is told when it happens, as
    // latest-frame-wins always did, so it may come before an older frame's result).
    let mut order: Vec<u64> = answered.iter().map(|a| a.0).collect();
    let results: Vec<u64> = answered.iter().filter(|a| a.1 != "dropped").map(|a| a.0).collect();
    assert!(results.windows(2).all(|w| w[0] < w[1]), "{answered:?}");
    order.sort_unstable();
    assert_eq!(order, (0..16).collect::<Vec<_>>(), "{answered:?}");
    // The configure applied once every frame before it was answered, and from then on nothing
    // was predicted or tracked.
    let at = configured_after.expect("configured");
    assert!(answered[..at].iter().filter(|a| a.0 < 12).count() == 12, "{answered:?}");
    assert!(answered[at..].iter().all(|a| a.0 >= 12 && a.1 != "predicted" && !a.2), "{answered:?}");
    assert_eq!(answered.last().map(|a| (a.0, a.1)), Some((15, "detected")), "the newest runs: {answered:?}");
    assert_eq!(answered.iter().find(|a| a.0 == 0).map(|a| a.1), Some("detected"), "{answered:?}");
    assert!(answered.iter().any(|a| a.1 == "dropped"), "the bound of 2 dropped some: {answered:?}");
}
