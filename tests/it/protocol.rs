//! The wire protocol pinned from the client's side: independent copies of every server
//! message with `deny_unknown_fields`, so a renamed, added or missing field fails these tests.
//! Keep in sync with `docs/PROTOCOL.md`.

use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Msg {
    SessionStarted {
        session_id: String,
        protocol: u32,
        pipeline: String,
        limits: Limits,
        track: bool,
        options: SessionOptions,
        detector: Option<DetectorInfo>,
    },
    Result {
        frame_index: u64,
        result: FrameResult,
        dropped_frames: u64,
        timings_ms: Timings,
    },
    FrameDropped {
        frame_index: u64,
        dropped_frames: u64,
    },
    SlowDown {
        dropped_frames: u64,
        suggested_fps: u32,
    },
    Error {
        error: String,
        frame_index: Option<u64>,
        detail: Option<String>,
    },
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SessionOptions {
    pub min_score: f32,
    /// Only when the session asked for some.
    pub classes: Option<Vec<String>>,
    pub max_detections: usize,
    pub ocr: String,
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
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timings {
    pub queue: f64,
    pub decode: f64,
    pub detect: Option<f64>,
    pub ocr_detect: Option<f64>,
    pub ocr_recognize: Option<f64>,
    pub total: f64,
}

#[test]
fn pinned_types_refuse_unknown_fields() {
    let ok = r#"{"type":"frame_dropped","frame_index":3,"dropped_frames":1}"#;
    assert_eq!(serde_json::from_str::<Msg>(ok).unwrap(), Msg::FrameDropped { frame_index: 3, dropped_frames: 1 });
    let extra = r#"{"type":"frame_dropped","frame_index":3,"dropped_frames":1,"x":0}"#;
    assert!(serde_json::from_str::<Msg>(extra).is_err());
    let nested = r#"{"type":"session_started","session_id":"a","protocol":1,"pipeline":"detect","limits":{"max_frame_bytes":1,"max_pixels":2,"y":3},"track":false,"options":{"min_score":0.5,"max_detections":100,"ocr":"frame"}}"#;
    assert!(serde_json::from_str::<Msg>(nested).is_err());
}

/// Every server message, serialised by the server's own types, parses into the pinned types.
#[test]
fn server_types_serialise_to_the_pinned_shapes() {
    use framewire::protocol as p;
    let msgs = [
        p::ServerMessage::SessionStarted {
            session_id: "id".into(),
            protocol: 1,
            pipeline: "detect",
            limits: p::Limits { max_frame_bytes: 1, max_pixels: 2 },
            track: false,
            options: p::SessionOptions {
                min_score: 0.5,
                classes: Some(vec!["cat".into()]),
                max_detections: 100,
                ocr: "frame",
            },
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
        },
        p::ServerMessage::FrameDropped { frame_index: 1, dropped_frames: 1 },
        p::ServerMessage::SlowDown { dropped_frames: 5, suggested_fps: 7 },
        p::ServerMessage::Error { error: p::ErrorCode::InvalidFrame, frame_index: Some(3), detail: Some("corrupt") },
        p::ServerMessage::Error { error: p::ErrorCode::UnsupportedMessage, frame_index: None, detail: None },
        p::ServerMessage::Error { error: p::ErrorCode::Internal, frame_index: Some(9), detail: None },
    ];
    for m in msgs {
        let json = m.to_json();
        serde_json::from_str::<Msg>(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    }
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
        decode: 1.23456,
        detect: Some(47.999),
        ocr_detect: None,
        ocr_recognize: Some(0.004),
        total: 60.125,
    };
    let v = serde_json::to_value(t).unwrap();
    assert_eq!(v, serde_json::json!({"queue":0.04,"decode":1.23,"detect":48.0,"ocr_recognize":0.0,"total":60.13}));
}
