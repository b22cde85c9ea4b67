//! The wire protocol pinned from the client's side: independent copies of every server
//! message with `deny_unknown_fields`, so a renamed, added or missing field fails these tests.
//! Keep in sync with `docs/PROTOCOL.md`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Msg {
    SessionStarted {
        session_id: String,
        protocol: u32,
        pipeline: String,
        codec: String,
        limits: Limits,
        track: bool,
        options: SessionOptions,
        zones: Vec<Zone>,
        lines: Vec<Line>,
        anchor: String,
        detector: Option<DetectorInfo>,
    },
    Configured {
        pipeline: String,
        track: bool,
        options: SessionOptions,
        zones: Vec<Zone>,
        lines: Vec<Line>,
        anchor: String,
        /// Only when the change ended live tracks.
        #[serde(default)]
        events: Vec<Event>,
    },
    Result {
        frame_index: u64,
        result: FrameResult,
        dropped_frames: u64,
        timings_ms: Timings,
        /// With tracking, when the frame changed something.
        #[serde(default)]
        events: Vec<Event>,
        /// With zones.
        zones: Option<BTreeMap<String, ZoneCount>>,
        /// With lines.
        lines: Option<BTreeMap<String, LineCount>>,
    },
    EndOfStream {
        frame_index: Option<u64>,
        events: Vec<Event>,
        zones: BTreeMap<String, ZoneCount>,
        lines: BTreeMap<String, LineCount>,
    },
    FrameDropped {
        frame_index: u64,
        dropped_frames: u64,
    },
    SlowDown {
        dropped_frames: u64,
        suggested_fps: u32,
    },
    KeyframeRequest {
        frame_index: u64,
    },
    FrameSkipped {
        frame_index: u64,
        reason: String,
    },
    Error {
        error: String,
        frame_index: Option<u64>,
        detail: Option<String>,
    },
}

/// What a frame changed (`events` of results, `configured` and `end_of_stream`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    TrackStarted {
        track_id: u64,
        label: String,
        frame_index: u64,
    },
    ZoneEntered {
        zone: String,
        track_id: u64,
        label: String,
        frame_index: u64,
    },
    ZoneExited {
        zone: String,
        track_id: u64,
        label: String,
        frame_index: u64,
        dwell_frames: u64,
        dwell_ms: u64,
    },
    LineCrossed {
        line: String,
        direction: String,
        track_id: u64,
        label: String,
        frame_index: u64,
    },
    Loitering {
        zone: String,
        track_id: u64,
        label: String,
        frame_index: u64,
        dwell_ms: u64,
    },
    TrackEnded {
        track_id: u64,
        label: String,
        first_frame_index: u64,
        last_frame_index: u64,
        frames: u64,
        /// Absent without a reading.
        text: Option<String>,
        text_score: Option<f32>,
        zones: BTreeMap<String, Dwell>,
        lines: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dwell {
    pub dwell_frames: u64,
    pub dwell_ms: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ZoneCount {
    pub count: u64,
    pub by_label: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LineCount {
    #[serde(rename = "in")]
    pub into: u64,
    pub out: u64,
}

/// A zone as `session_started` and `configured` echo it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub name: String,
    pub polygon: Vec<[f64; 2]>,
    pub classes: Option<Vec<String>>,
    pub inertia: u32,
    pub loiter_s: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub name: String,
    pub points: [[f64; 2]; 2],
    pub classes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionOptions {
    pub min_score: f32,
    /// Only when the session asked for some.
    pub classes: Option<Vec<String>>,
    pub max_detections: usize,
    pub ocr: String,
    pub ocr_reuse: bool,
    /// A number within [1, 30], or `"auto"`.
    pub detect_every: serde_json::Value,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DetectorInfo {
    pub family: String,
    pub input: [usize; 2],
    pub classes: Vec<String>,
    pub max_detections: usize,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub max_frame_bytes: u64,
    pub max_pixels: u64,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FrameResult {
    pub width: u32,
    pub height: u32,
    /// Present in `detect` and `detect_ocr`.
    pub detections: Option<Vec<Detection>>,
    /// Present in `ocr` and `detect_ocr`.
    pub texts: Option<Vec<TextLine>>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TextLine {
    pub text: String,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub polygon: [[f32; 2]; 4],
    pub detection: Option<usize>,
    /// With tracking only: the linked detection's track.
    pub track_id: Option<u64>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Detection {
    pub label: String,
    pub class_id: usize,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// With tracking only.
    pub track_id: Option<u64>,
    /// With tracking only, once the track has a reading.
    pub track_text: Option<String>,
    /// With `track_text`.
    pub track_text_score: Option<f32>,
    /// With tracking and `ocr=detections`, on tracked detections.
    pub text_read: Option<bool>,
    /// Only on a predicted frame's boxes (`true`); absent otherwise.
    pub predicted: Option<bool>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    pub queue: f64,
    /// Absent on a predicted frame.
    pub decode: Option<f64>,
    pub detect: Option<f64>,
    pub ocr_detect: Option<f64>,
    pub ocr_recognize: Option<f64>,
    /// Only on a predicted frame.
    pub predict: Option<f64>,
    pub total: f64,
}

#[test]
fn pinned_types_refuse_unknown_fields() {
    let ok = r#"{"type":"frame_dropped","frame_index":3,"dropped_frames":1}"#;
    assert_eq!(serde_json::from_str::<Msg>(ok).unwrap(), Msg::FrameDropped { frame_index: 3, dropped_frames: 1 });
    let extra = r#"{"type":"frame_dropped","frame_index":3,"dropped_frames":1,"x":0}"#;
    assert!(serde_json::from_str::<Msg>(extra).is_err());
    let nested = r#"{"type":"session_started","session_id":"a","protocol":1,"pipeline":"detect","codec":"jpeg","limits":{"max_frame_bytes":1,"max_pixels":2,"y":3},"track":false,"options":{"min_score":0.5,"max_detections":100,"ocr":"frame","ocr_reuse":true,"detect_every":1},"zones":[],"lines":[],"anchor":"center"}"#;
    assert!(serde_json::from_str::<Msg>(nested).is_err());
    assert!(serde_json::from_str::<Msg>(&nested.replace(r#","y":3"#, "")).is_ok(), "only for the unknown field");
}

/// Every server message, serialised by the server's own types, parses into the pinned types.
#[test]
fn server_types_serialise_to_the_pinned_shapes() {
    use framewire::protocol as p;
    let config = p::ConfigEcho {
        track: true,
        options: p::SessionOptions {
            min_score: 0.5,
            classes: Some(vec!["cat".into()]),
            max_detections: 100,
            ocr: "frame",
            ocr_reuse: true,
            detect_every: framewire::policy::DetectEvery::Auto,
        },
        zones: vec![p::ZoneSpec {
            name: "bay".into(),
            polygon: vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]],
            classes: Some(vec!["car".into()]),
            inertia: 2,
            loiter_s: Some(60.0),
        }],
        lines: vec![p::LineSpec { name: "gate".into(), points: [[0.0, 5.0], [10.0, 5.0]], classes: None }],
        anchor: p::Anchor::BottomCenter,
    };
    let ended = p::Event::TrackEnded {
        track_id: 4,
        label: "car".into(),
        first_frame_index: 12,
        last_frame_index: 51,
        frames: 38,
        text: Some("KX 705".into()),
        text_score: Some(0.97),
        zones: p::Named(vec![("bay".into(), p::Dwell { frames: 30, ms: 1012 })]),
        lines: p::Named(vec![("gate".into(), p::Direction::In)]),
    };
    let events = vec![
        p::Event::TrackStarted { track_id: 4, label: "car".into(), frame_index: 12 },
        p::Event::ZoneEntered { zone: "bay".into(), track_id: 4, label: "car".into(), frame_index: 14 },
        p::Event::ZoneExited {
            zone: "bay".into(),
            track_id: 4,
            label: "car".into(),
            frame_index: 44,
            dwell: p::Dwell { frames: 30, ms: 1012 },
        },
        p::Event::LineCrossed {
            line: "gate".into(),
            direction: p::Direction::In,
            track_id: 4,
            label: "car".into(),
            frame_index: 20,
        },
        p::Event::Loitering { zone: "bay".into(), track_id: 4, label: "car".into(), frame_index: 30, dwell_ms: 60020 },
        ended.clone(),
    ];
    let zones = p::Named(vec![(
        "bay".to_string(),
        p::ZoneCount { count: 1, by_label: [("car".to_string(), 1)].into_iter().collect() },
    )]);
    let lines = p::Named(vec![("gate".to_string(), p::LineCount { r#in: 1, out: 0 })]);
    let msgs = [
        p::ServerMessage::SessionStarted {
            session_id: "id".into(),
            protocol: 1,
            pipeline: "detect",
            codec: "h264",
            limits: p::Limits { max_frame_bytes: 1, max_pixels: 2 },
            config: config.clone(),
            detector: Some(p::DetectorInfo {
                family: "ssd",
                input: [300, 300],
                classes: vec!["person".into()],
                max_detections: 100,
            }),
        },
        p::ServerMessage::Result {
            frame_index: 4,
            result: p::FrameResult {
                width: 640,
                height: 480,
                detections: Some(vec![p::Detection {
                    label: "cat".into(),
                    class_id: 15,
                    score: 0.9,
                    bbox: [1.0, 2.0, 3.0, 4.0],
                    track_id: Some(7),
                    track_text: Some("GARAGE 3".into()),
                    track_text_score: Some(0.96),
                    text_read: Some(false),
                    predicted: true,
                }]),
                texts: Some(vec![p::TextLine {
                    text: "GARAGE 3".into(),
                    score: 0.96,
                    bbox: [1.0, 2.0, 3.0, 4.0],
                    polygon: [[1.0, 2.0], [3.0, 2.0], [3.0, 4.0], [1.0, 4.0]],
                    detection: Some(0),
                    track_id: Some(7),
                }]),
            },
            dropped_frames: 2,
            timings_ms: p::Timings::default(),
            events: events.clone(),
            zones: Some(zones.clone()),
            lines: Some(lines.clone()),
        },
        p::ServerMessage::Configured { pipeline: "detect", config, events: vec![ended.clone()] },
        p::ServerMessage::EndOfStream { frame_index: Some(51), events: vec![ended], zones, lines },
        p::ServerMessage::EndOfStream {
            frame_index: None,
            events: vec![],
            zones: p::Named(vec![]),
            lines: p::Named(vec![]),
        },
        p::ServerMessage::FrameDropped { frame_index: 1, dropped_frames: 1 },
        p::ServerMessage::SlowDown { dropped_frames: 5, suggested_fps: 7 },
        p::ServerMessage::KeyframeRequest { frame_index: 2 },
        p::ServerMessage::FrameSkipped { frame_index: 3, reason: "no_picture" },
        p::ServerMessage::Error {
            error: p::ErrorCode::InvalidFrame,
            frame_index: Some(3),
            detail: Some("corrupt".into()),
        },
        p::ServerMessage::Error {
            error: p::ErrorCode::InvalidConfig,
            frame_index: None,
            detail: Some("zones[1].polygon: the polygon crosses or touches itself".into()),
        },
        p::ServerMessage::Error {
            error: p::ErrorCode::InvalidMessage,
            frame_index: None,
            detail: Some("not valid JSON (line 1, column 8)".into()),
        },
        p::ServerMessage::Error { error: p::ErrorCode::RateLimited, frame_index: None, detail: None },
        p::ServerMessage::Error { error: p::ErrorCode::UnsupportedMessage, frame_index: None, detail: None },
        p::ServerMessage::Error { error: p::ErrorCode::Internal, frame_index: Some(9), detail: None },
    ];
    for m in msgs {
        let json = m.to_json();
        serde_json::from_str::<Msg>(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    }
    // The issue's examples, exactly.
    let v = |e: &p::Event| serde_json::to_value(e).unwrap();
    assert_eq!(
        v(&events[5]),
        serde_json::json!({"type":"track_ended","track_id":4,"label":"car","first_frame_index":12,
            "last_frame_index":51,"frames":38,"text":"KX 705","text_score":0.97f32,
            "zones":{"bay":{"dwell_frames":30,"dwell_ms":1012}},"lines":{"gate":"in"}})
    );
    assert_eq!(
        v(&events[2]),
        serde_json::json!({"type":"zone_exited","zone":"bay","track_id":4,"label":"car","frame_index":44,
            "dwell_frames":30,"dwell_ms":1012})
    );
    // Named maps keep the configuration's order (not alphabetical).
    let two = p::Named(vec![("z".to_string(), 1), ("a".to_string(), 2)]);
    assert_eq!(serde_json::to_string(&two).unwrap(), r#"{"z":1,"a":2}"#);
    let v: serde_json::Value = serde_json::from_str(
        &p::ServerMessage::Error { error: p::ErrorCode::Internal, frame_index: Some(9), detail: None }.to_json(),
    )
    .unwrap();
    assert_eq!(v, serde_json::json!({"type":"error","error":"internal","frame_index":9}));
}

/// Without tracking the track fields are absent from the JSON (not null).
#[test]
fn track_fields_are_absent_without_tracking() {
    use framewire::protocol as p;
    let d = p::Detection {
        label: "cat".into(),
        class_id: 15,
        score: 0.9,
        bbox: [1.0, 2.0, 3.0, 4.0],
        track_id: None,
        track_text: None,
        track_text_score: None,
        text_read: None,
        predicted: false,
    };
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v, serde_json::json!({"label":"cat","class_id":15,"score":0.9f32,"box":[1.0,2.0,3.0,4.0]}));
}

/// Stage times go out rounded to 0.01 ms.
#[test]
fn timings_are_rounded_to_a_hundredth_of_a_millisecond() {
    use framewire::protocol as p;
    let t = p::Timings {
        queue: 0.035042000000000004,
        decode: Some(1.23456),
        detect: Some(47.999),
        ocr_detect: None,
        ocr_recognize: Some(0.004),
        predict: None,
        total: 60.125,
    };
    let v = serde_json::to_value(t).unwrap();
    assert_eq!(v, serde_json::json!({"queue":0.04,"decode":1.23,"detect":48.0,"ocr_recognize":0.0,"total":60.13}));
    // A predicted frame: no decode, no model; what it took is `predict`.
    let t = p::Timings { queue: 0.5, predict: Some(0.0123), total: 0.52, ..p::Timings::default() };
    let v = serde_json::to_value(t).unwrap();
    assert_eq!(v, serde_json::json!({"queue":0.5,"predict":0.01,"total":0.52}));
}
