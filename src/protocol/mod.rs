//! Wire protocol v1: the JSON messages the server sends, documented beside the types that
//! serialise them. `docs/PROTOCOL.md` is the user-facing copy; `tests/it/protocol.rs` pins the
//! exact shapes by deserialising every message into `deny_unknown_fields` types.
//!
//! This is the one place that turns vision's results ([`vision::Analysis`], at full precision)
//! into wire types, and the only place that rounds: boxes to 0.1 px, scores to 4 decimals,
//! timings to 0.01 ms (the `From` impls at the end).
//!
//! Client → server: each binary message is one JPEG frame; its `frame_index` is the 0-based
//! count of binary messages in the session (dropped and invalid frames use up their index).
//! Text messages are control messages ([`control`]: `configure`, `end_of_stream`); any other
//! text is refused (`unsupported_message`, close 1003). Pings are answered.

use std::borrow::Cow;

use serde::Serialize;

use crate::vision;

pub mod analytics;
pub mod control;
pub mod options;

pub use crate::analytics::{Anchor, Direction, Dwell, Event, LineCount, LineSpec, Named, ZoneCount, ZoneSpec};
pub use analytics::ended;

/// The pipeline names (`detect`, `ocr`, `detect_ocr`) are vision's own: see
/// [`PipelineKind::as_str`].
pub use crate::vision::PipelineKind;

/// Protocol version announced in `session_started`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close codes the server uses (RFC 6455 numbers).
pub mod close {
    /// Idle timeout (reason `idle_timeout`) or a normal end.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A text message that is not a control message.
    pub const UNSUPPORTED: u16 = 1003;
    /// An invalid frame (with `--on-invalid close`).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A protocol violation by the client at the WebSocket layer.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A frame larger than `max_frame_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// A message did not arrive whole within `--message-timeout` (reason `message_timeout`).
    pub const POLICY: u16 = 1008;
    /// The server could not keep up writing to this client (it does not read its results).
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Every message the server sends, tagged by `type`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message of every session.
    /// `{"type":"session_started","session_id":"…","protocol":1,"pipeline":"detect","limits":{…}}`
    SessionStarted {
        /// UUID v4 of this session (also in the server's log lines).
        session_id: String,
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The pipeline this session runs: `detect`, `ocr` or `detect_ocr`.
        pipeline: &'static str,
        /// What its binary messages are: `jpeg` (one JPEG each) or `h264` (one H.264 access
        /// unit each, Annex B), from `?codec=`; fixed for the session.
        codec: &'static str,
        /// Limits a frame must respect.
        limits: Limits,
        /// The configuration in force: `pipeline` aside, `track`, `options`, `zones`, `lines`,
        /// `anchor` (the query's, else the server's).
        #[serde(flatten)]
        config: ConfigEcho,
        /// The detector this server runs (absent only on a server without one).
        #[serde(skip_serializing_if = "Option::is_none")]
        detector: Option<DetectorInfo>,
    },
    /// A `configure` message was applied: the whole configuration in force from the next frame
    /// a worker takes. With `events` when it ended live tracks (tracking switched off).
    Configured {
        /// The session's pipeline now.
        pipeline: &'static str,
        /// The rest of the configuration, as in `session_started`.
        #[serde(flatten)]
        config: ConfigEcho,
        /// `track_ended` (and `zone_exited`) of the tracks the change ended; absent when none.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        events: Vec<Event>,
    },
    /// The answer to `end_of_stream`: every frame received before it was answered, then every
    /// live track ended.
    EndOfStream {
        /// The last frame answered with a result in this session (`null`: none yet).
        frame_index: Option<u64>,
        /// The `zone_exited` and `track_ended` events of the tracks it ended.
        events: Vec<Event>,
        /// Who is in each zone now (nobody: every track ended), by zone name.
        zones: Named<ZoneCount>,
        /// Each line's crossings since the session began.
        lines: Named<LineCount>,
    },
    /// The result of one frame, sent in increasing `frame_index` order.
    Result {
        /// Which frame this answers.
        frame_index: u64,
        /// What the pipeline found.
        result: FrameResult,
        /// Frames of this session dropped so far (replaced by a newer frame before they ran).
        dropped_frames: u64,
        /// Where the time went, in milliseconds.
        timings_ms: Timings,
        /// With tracking: what this frame changed, in order; absent when nothing did.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        events: Vec<Event>,
        /// With zones: who is in each zone now, by zone name (absent without zones).
        #[serde(skip_serializing_if = "Option::is_none")]
        zones: Option<Named<ZoneCount>>,
        /// With lines: each line's crossings since the session began (absent without lines).
        #[serde(skip_serializing_if = "Option::is_none")]
        lines: Option<Named<LineCount>>,
    },
    /// A frame was replaced by a newer one before the pipeline took it (latest frame wins).
    FrameDropped {
        /// The dropped frame.
        frame_index: u64,
        /// Frames of this session dropped so far, this one included.
        dropped_frames: u64,
    },
    /// H.264 sessions: access unit `frame_index` was not decoded because the decoder has no
    /// keyframe to start from (the session joined mid-stream, or the decoder was reset after it
    /// refused an access unit): send an IDR picture. Every access unit skipped so is answered
    /// with one; decoding resumes at the next IDR.
    KeyframeRequest {
        /// The access unit skipped.
        frame_index: u64,
    },
    /// H.264 sessions: access unit `frame_index` held no picture to decode (`reason`
    /// `no_picture`: parameter sets, SEI or delimiters only; the parameter sets are kept).
    FrameSkipped {
        /// The access unit.
        frame_index: u64,
        /// Why: `no_picture`.
        reason: &'static str,
    },
    /// More than half of the last second's frames were dropped: send slower. At most once a
    /// second.
    SlowDown {
        /// Frames of this session dropped so far.
        dropped_frames: u64,
        /// Results delivered in the last second (≥ 1): a rate this session can sustain.
        suggested_fps: u32,
    },
    /// Something went wrong; `error` is a stable snake_case code.
    Error {
        /// `invalid_frame`, `unsupported_message`, `invalid_message`, `invalid_config`,
        /// `rate_limited` or `internal`.
        error: ErrorCode,
        /// The frame concerned, when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        frame_index: Option<u64>,
        /// For `invalid_frame`: the reason code (`not_jpeg` or on an H.264 session `not_h264`,
        /// `truncated`, `corrupt`, `too_large`, `too_many_pixels`, `unsupported`). For `invalid_config`:
        /// `"<field>: <why>"`; for `invalid_message`: what is wrong with it.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<Cow<'static, str>>,
    },
}

/// Stable error codes of `{"type":"error"}` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame failed validation or decoding; `detail` says why.
    InvalidFrame,
    /// A text message that is not a control message (close 1003).
    UnsupportedMessage,
    /// A text message meant as a control message but malformed (not JSON, over 64 KiB, an
    /// `end_of_stream` with other keys); ignored, the session goes on.
    InvalidMessage,
    /// A `configure` message was refused (`detail` names the field); the configuration in
    /// force stays, the session goes on.
    InvalidConfig,
    /// More control messages than `--max-control-rate` a second (or too many waiting for the
    /// frames before them): this one was ignored; the session goes on.
    RateLimited,
    /// A pipeline stage failed on this frame; the session goes on.
    Internal,
}

/// The per-session options a session runs with, as `session_started` echoes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionOptions {
    /// Lowest detection score reported (`?min_score=`, else `--min-score`).
    pub min_score: f32,
    /// Labels kept (`?classes=a,b`); absent = every class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    /// Most detections per frame (`?max_detections=`, else the detector's cap).
    pub max_detections: usize,
    /// `frame` (OCR on the whole frame) or `detections` (only inside the kept detections).
    pub ocr: &'static str,
    /// With tracking and `ocr=detections`: a track's crop is not read again once its reading
    /// has settled (`true`, the default) or read on every frame (`false`).
    pub ocr_reuse: bool,
    /// The detector runs on every Nth frame (`1`: every frame, the default) or `"auto"` (as
    /// often as the cores allow); the frames between are predicted by the tracker.
    pub detect_every: crate::policy::DetectEvery,
}

/// Which detector runs, as `session_started` tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DetectorInfo {
    /// `ssd`, `yolov5`, `yolov8` or `yolo-end2end`.
    pub family: &'static str,
    /// Model input `[width, height]`.
    pub input: [usize; 2],
    /// Class names by class id.
    pub classes: Vec<String>,
    /// Most detections a frame gets (`--max-detections`, else the family's default).
    pub max_detections: usize,
}

/// Limits announced in `session_started`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// Largest accepted frame in bytes.
    pub max_frame_bytes: usize,
    /// Largest accepted width × height.
    pub max_pixels: u64,
}

/// What the pipeline found in one frame.
#[derive(Debug, Clone, Serialize)]
pub struct FrameResult {
    /// Frame width in pixels (from the JPEG).
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Detections, highest score first (pipelines `detect` and `detect_ocr` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detections: Option<Vec<Detection>>,
    /// Text lines in reading order (pipelines `ocr` and `detect_ocr` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub texts: Option<Vec<TextLine>>,
}

/// One recognised line of text.
#[derive(Debug, Clone, Serialize)]
pub struct TextLine {
    /// The text (CTC greedy decode of the PP-OCR recognizer).
    pub text: String,
    /// Recognition confidence in 0..1 (mean of the kept time steps' probabilities; ≥ 0.5).
    pub score: f32,
    /// Axis-aligned hull `[x1, y1, x2, y2]` of `polygon`, frame pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The line's quadrilateral, clockwise from top-left, frame pixels.
    pub polygon: [[f32; 2]; 4],
    /// Index in `detections` of the smallest detection box containing the line's centre
    /// (the detect → OCR link), or null (always null in the `ocr` pipeline).
    pub detection: Option<usize>,
    /// With tracking: the `track_id` of the linked detection (absent without tracking or
    /// without a tracked link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
}

/// One detected object.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// Class name (`coco.names`).
    pub label: String,
    /// Class id (line number in `coco.names`, 0-based).
    pub class_id: usize,
    /// Confidence in 0..1.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in frame pixels, clipped to the frame.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// With tracking (`?track=true`): the object's id, unique within the session and never
    /// reused, the same while the object is followed (absent without tracking, and for a
    /// detection no track took).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
    /// With tracking in `detect_ocr`: the track's best reading so far (the text of its linked
    /// lines seen most often over its life, ties to the higher confidence); absent before any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_text: Option<String>,
    /// With `track_text`: that reading's best recognition confidence over the track's life
    /// (as `track_ended`'s `text_score`), rounded to 4 decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub track_text_score: Option<f32>,
    /// With tracking and `ocr=detections`, on a tracked detection: whether its crop was read
    /// in this frame (`true`: its lines, if any, are in `texts`) or not (`false`: its
    /// `track_text` is carried from earlier frames, the reading had settled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_read: Option<bool>,
    /// `true` on a frame the detector did not run on (`detect_every`): the track's box as its
    /// motion model predicts it, with its label and last score. Absent on detected boxes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub predicted: bool,
}

/// Per-stage times of one frame, in milliseconds. Stages a pipeline does not run are absent.
/// In `detect_ocr` the detector and the text detector run in parallel, so `total` is less than
/// the sum when cores are free.
/// Sent rounded to 0.01 ms (a value like `0.035042000000000004` helps nobody).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Timings {
    /// From arrival to a frame worker taking it (on an H.264 session, less the decode, which
    /// comes first).
    #[serde(serialize_with = "centi")]
    pub queue: f64,
    /// JPEG decode (absent on a predicted JPEG frame: it is not decoded); on an H.264 session
    /// the access unit's decode and its conversion to RGB (a predicted picture is decoded too,
    /// for the pictures after it, but not converted).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "centi_opt")]
    pub decode: Option<f64>,
    /// Detector: preprocessing, model and post-processing.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "centi_opt")]
    pub detect: Option<f64>,
    /// Text detector: preprocessing, model and DB post-processing.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "centi_opt")]
    pub ocr_detect: Option<f64>,
    /// Recognition of every line (crops, recognizer, CTC decode).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "centi_opt")]
    pub ocr_recognize: Option<f64>,
    /// A frame the detector did not run on (`detect_every`): the tracker's prediction, the
    /// analytics and building the result, on the session's own thread (no model, no decode).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "centi_opt")]
    pub predict: Option<f64>,
    /// From arrival of the frame to its result being ready to send.
    #[serde(serialize_with = "centi")]
    pub total: f64,
}

/// `v` rounded to two decimals.
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn centi<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round2(*v))
}

fn centi_opt<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(&round2(*v)),
        None => s.serialize_none(),
    }
}

/// The configuration a session runs with, as `session_started` and `configured` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigEcho {
    /// Whether detections carry `track_id` (and `track_text`) and events are sent.
    pub track: bool,
    /// The per-frame options in force.
    pub options: SessionOptions,
    /// The zones, in configuration order (`[]`: none), every default filled in.
    pub zones: Vec<ZoneSpec>,
    /// The lines, in configuration order (`[]`: none).
    pub lines: Vec<LineSpec>,
    /// `bottom_center` or `center`.
    pub anchor: Anchor,
}

impl ConfigEcho {
    /// The echo of a session's settings and its analytics' configuration.
    pub fn new(options: SessionOptions, track: bool, spec: &crate::analytics::Spec) -> ConfigEcho {
        ConfigEcho { track, options, zones: spec.zones.clone(), lines: spec.lines.clone(), anchor: spec.anchor }
    }
}

impl ServerMessage {
    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail (no maps with non-string keys, no
        // custom serialisers); an empty object is a safe fallback all the same.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

/// One live session as `GET /sessions` lists it: the body is a JSON array of these, e.g.
/// `[{"session_id":"…","frame_index":120,"dropped_frames":3,"last_processed_timestamp":1764541234567,
/// "backpressure_state":"normal","pipeline":"detect_ocr","peer":"10.0.0.7:51234",
/// "zones":{"bay":{"count":1,"by_label":{"car":1}}},"lines":{"gate":{"in":3,"out":1}}}]`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// The id `session_started` gave the client (UUID v4).
    pub session_id: String,
    /// Binary messages received so far (the next frame's index).
    pub frame_index: u64,
    /// Frames dropped so far (latest frame wins).
    pub dropped_frames: u64,
    /// Unix time in ms of the last result sent; `null` before the first.
    pub last_processed_timestamp: Option<u64>,
    /// `normal`, `dropping` or `slow_down`.
    pub backpressure_state: &'static str,
    /// `detect`, `ocr` or `detect_ocr`.
    pub pipeline: &'static str,
    /// The client's address (`ip:port`) as the server sees it (a proxy's, behind one).
    pub peer: String,
    /// Who is in each of its zones, as its last result said (absent without zones).
    #[serde(skip_serializing_if = "Named::is_empty")]
    pub zones: Named<ZoneCount>,
    /// Each of its lines' crossings (absent without lines).
    #[serde(skip_serializing_if = "Named::is_empty")]
    pub lines: Named<LineCount>,
}

/// `v` rounded to one decimal (box coordinates: 0.1 px is finer than any detector's accuracy).
fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

/// `v` rounded to four decimals (scores).
fn round4(v: f32) -> f32 {
    (v * 10_000.0).round() / 10_000.0
}

impl From<vision::Detection> for Detection {
    /// Rounded for the wire; no track fields (the session adds them).
    fn from(d: vision::Detection) -> Detection {
        Detection {
            label: d.label,
            class_id: d.class_id,
            score: round4(d.score),
            bbox: d.bbox.map(round1),
            track_id: None,
            track_text: None,
            track_text_score: None,
            text_read: None,
            predicted: false,
        }
    }
}

impl From<vision::TextLine> for TextLine {
    /// The score rounded for the wire (the quad's points are whole pixels already); no track.
    fn from(t: vision::TextLine) -> TextLine {
        TextLine {
            text: t.text,
            score: round4(t.score),
            bbox: t.bbox,
            polygon: t.polygon,
            detection: t.detection,
            track_id: None,
        }
    }
}

impl From<vision::Analysis> for FrameResult {
    /// Moves the labels and texts (no copy); the low detections (tracker only) are left out.
    fn from(a: vision::Analysis) -> FrameResult {
        FrameResult {
            width: a.width,
            height: a.height,
            detections: a.detections.map(|d| d.into_iter().map(Detection::from).collect()),
            texts: a.texts.map(|t| t.into_iter().map(TextLine::from).collect()),
        }
    }
}

impl From<vision::DetectorInfo> for DetectorInfo {
    fn from(d: vision::DetectorInfo) -> DetectorInfo {
        let vision::DetectorInfo { family, input, classes, max_detections } = d;
        DetectorInfo { family, input, classes, max_detections }
    }
}

impl Detection {
    /// Set the track fields: its id, and its best reading with that reading's score (rounded
    /// here, as every score on the wire).
    pub fn set_track(&mut self, track_id: Option<u64>, reading: Option<(&str, f32)>) {
        self.track_id = track_id;
        self.track_text = reading.map(|r| r.0.to_owned());
        self.track_text_score = reading.map(|r| round4(r.1));
    }
}

impl Timings {
    /// A frame's timings: its stage times, the time it waited for a worker (`queue`) and from
    /// its arrival to its result (`total`), all in ms.
    pub fn new(stages: &vision::StageTimes, queue: f64, total: f64) -> Timings {
        let vision::StageTimes { decode, detect, ocr_detect, ocr_recognize } = *stages;
        Timings { queue, decode: Some(decode), detect, ocr_detect, ocr_recognize, predict: None, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_wire_rounds() {
        let a = vision::Analysis {
            width: 640,
            height: 480,
            detections: Some(vec![vision::Detection {
                label: "cat".into(),
                class_id: 17,
                score: 0.876_543,
                bbox: [10.04, 20.06, 300.149, 479.99],
            }]),
            texts: Some(vec![vision::TextLine {
                text: "KX 705".into(),
                score: 0.912_345_6,
                bbox: [1.0, 2.0, 30.0, 12.0],
                polygon: [[1.0, 2.0], [30.0, 2.0], [30.0, 12.0], [1.0, 12.0]],
                detection: Some(0),
            }]),
            low_detections: None,
            read: None,
        };
        let r = FrameResult::from(a.clone());
        let d = &r.detections.as_ref().unwrap()[0];
        assert_eq!(d.bbox, [10.0, 20.1, 300.1, 480.0]);
        assert_eq!(d.score, 0.8765);
        assert_eq!((d.label.as_str(), d.class_id, d.track_id), ("cat", 17, None));
        let t = &r.texts.as_ref().unwrap()[0];
        assert_eq!((t.text.as_str(), t.score, t.detection, t.track_id), ("KX 705", 0.9123, Some(0), None));
        assert_eq!(a.detections.as_ref().unwrap()[0].bbox[2], 300.149, "vision keeps full precision");
        let json = ServerMessage::Result {
            frame_index: 0,
            result: r,
            dropped_frames: 0,
            timings_ms: Timings::new(&vision::StageTimes { decode: 1.234_56, ..Default::default() }, 0.5, 2.0),
            events: Vec::new(),
            zones: None,
            lines: None,
        }
        .to_json();
        assert!(json.contains(r#""decode":1.23"#), "{json}");
    }
}
