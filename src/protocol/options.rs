//! A session's options, asked for in two ways: in the stream endpoint's query string before the
//! upgrade (`?pipeline=detect&classes=car,person`) and in a `configure` message at any time
//! (`{"type":"configure","classes":["car"]}`). Both go through this one module, so the two can
//! never disagree on what a value may be or what it means:
//!
//! - [`Asked::take`] checks one field's value, written either way ([`Raw`]), with the same
//!   bounds and the same `"<field>: <why>"` answer;
//! - [`Settings::apply`] merges what was asked onto the settings in force and resolves it
//!   against the detector (labels to class ids, each id once; `ocr=detections` needs
//!   `detect_ocr`): the query applies it to the server's defaults, a `configure` to the
//!   session's current settings;
//! - [`Settings::echo`] is how `session_started` and `configured` show the result.
//!
//! What is particular to each syntax stays with it: a repeated query key, and `configure`'s
//! zones, lines and anchor ([`super::control`]).

use serde_json::Value;

use super::{DetectorInfo, SessionOptions};
use crate::analytics::SpecError;
use crate::policy::{DetectEvery, MAX_DETECT_EVERY};
use crate::vision::h264::Codec;
use crate::vision::{class_id, ClassSet, FrameOptions, OcrScope, PipelineKind};

/// Most labels a `classes` list may name.
pub const MAX_CLASSES: usize = 1000;
/// Longest label, in bytes.
pub const MAX_LABEL_BYTES: usize = 100;
/// Largest `max_detections`.
pub const MAX_DETECTIONS: usize = 10_000;

/// The option names, as the query string and `configure` spell them.
pub const NAMES: [&str; 9] =
    ["pipeline", "track", "min_score", "classes", "max_detections", "ocr", "ocr_reuse", "detect_every", "codec"];

/// One option's value as the client wrote it.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    /// A query string's value, still percent-encoded (`classes` is split on `,` first).
    Query(&'a str),
    /// A `configure` message's JSON value.
    Json(&'a Value),
}

impl Raw<'_> {
    /// The value as text: a query value decoded, a JSON string.
    fn text(self) -> Option<String> {
        match self {
            Raw::Query(v) => percent_decode(v),
            Raw::Json(v) => v.as_str().map(str::to_owned),
        }
    }

    fn number(self) -> Option<f64> {
        match self {
            Raw::Query(v) => percent_decode(v)?.parse::<f64>().ok().filter(|f| f.is_finite()),
            Raw::Json(v) => v.as_f64(),
        }
    }

    fn whole(self) -> Option<u64> {
        match self {
            Raw::Query(v) => percent_decode(v)?.parse().ok(),
            Raw::Json(v) => v.as_u64(),
        }
    }

    fn boolean(self) -> Option<bool> {
        match self {
            Raw::Query(_) => match self.text()?.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            Raw::Json(v) => v.as_bool(),
        }
    }

    /// A `classes` list named `field`: `None` for JSON `null` (every class again), else the
    /// labels; the zones' and lines' `classes` take the same.
    pub fn labels(self, field: &str) -> Result<Option<Vec<String>>, SpecError> {
        let items: Vec<Option<String>> = match self {
            Raw::Json(Value::Null) => return Ok(None),
            Raw::Query(v) => v.split(',').map(percent_decode).collect(),
            Raw::Json(Value::Array(items)) => items.iter().map(|l| l.as_str().map(str::to_owned)).collect(),
            Raw::Json(_) => return refuse(field, format!("a list of 1 to {MAX_CLASSES} labels (null: every class)")),
        };
        if items.is_empty() || items.len() > MAX_CLASSES {
            return refuse(field, format!("1 to {MAX_CLASSES} labels (null: every class)"));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, l)| match l {
                Some(s) if !s.is_empty() && s.len() <= MAX_LABEL_BYTES => Ok(s),
                _ => refuse(&format!("{field}[{i}]"), format!("a label (a string of 1 to {MAX_LABEL_BYTES} bytes)")),
            })
            .collect::<Result<Vec<String>, _>>()
            .map(Some)
    }
}

/// `%XX` and `+` decoded; `None` if malformed or not UTF-8.
pub fn percent_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                // Exactly two hex digits (`from_str_radix` alone would take `%+5` as 5).
                let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The options a client asked for: every field left out keeps what is in force.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asked {
    /// `pipeline`.
    pub pipeline: Option<PipelineKind>,
    /// `track`.
    pub track: Option<bool>,
    /// `min_score`, within [0, 1].
    pub min_score: Option<f32>,
    /// `classes`: `Some(None)` = every class again (`null`); `Some(Some(labels))` = only these.
    pub classes: Option<Option<Vec<String>>>,
    /// `max_detections`, within [1, [`MAX_DETECTIONS`]].
    pub max_detections: Option<usize>,
    /// `ocr`.
    pub ocr: Option<OcrScope>,
    /// `ocr_reuse`.
    pub ocr_reuse: Option<bool>,
    /// `detect_every`: a whole number within [1, [`MAX_DETECT_EVERY`]] or `auto`.
    pub detect_every: Option<DetectEvery>,
    /// `codec`: `jpeg` or `h264`; the query string's only (a session's codec is fixed).
    pub codec: Option<Codec>,
}

fn refuse<T>(field: &str, why: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError { field: field.into(), why: why.into() })
}

impl Asked {
    /// Take option `key` with its value: `Ok(true)` when taken, `Ok(false)` when `key` is not
    /// an option (the caller's own field, or unknown), `Err` with the field and why when the
    /// value is not one the option takes. A key given again replaces the earlier value.
    pub fn take(&mut self, key: &str, raw: Raw<'_>) -> Result<bool, SpecError> {
        match key {
            "pipeline" => {
                let p = raw.text().and_then(|t| PipelineKind::parse(&t));
                self.pipeline = Some(p.map_or_else(|| refuse(key, "one of \"detect\", \"ocr\", \"detect_ocr\""), Ok)?);
            }
            "track" => self.track = Some(raw.boolean().map_or_else(|| refuse(key, "true or false"), Ok)?),
            "min_score" => {
                self.min_score = Some(match raw.number() {
                    Some(f) if (0.0..=1.0).contains(&f) => f as f32,
                    _ => return refuse(key, "a number within [0, 1]"),
                })
            }
            "max_detections" => {
                self.max_detections = Some(match raw.whole() {
                    Some(n) if (1..=MAX_DETECTIONS as u64).contains(&n) => n as usize,
                    _ => return refuse(key, format!("a whole number within [1, {MAX_DETECTIONS}]")),
                })
            }
            "ocr" => {
                self.ocr = Some(match raw.text().as_deref() {
                    Some("frame") => OcrScope::Frame,
                    Some("detections") => OcrScope::Detections,
                    _ => return refuse(key, "\"frame\" or \"detections\""),
                })
            }
            "classes" => self.classes = Some(raw.labels(key)?),
            "ocr_reuse" => self.ocr_reuse = Some(raw.boolean().map_or_else(|| refuse(key, "true or false"), Ok)?),
            "detect_every" => {
                let auto =
                    matches!(raw, Raw::Query(_) | Raw::Json(Value::String(_))) && raw.text().as_deref() == Some("auto");
                self.detect_every = Some(match raw.whole() {
                    _ if auto => DetectEvery::Auto,
                    Some(n) if (1..=u64::from(MAX_DETECT_EVERY)).contains(&n) => DetectEvery::Every(n as u32),
                    _ => return refuse(key, format!("a whole number within [1, {MAX_DETECT_EVERY}] or \"auto\"")),
                })
            }
            "codec" => {
                self.codec = Some(match (raw, raw.text().as_deref()) {
                    (Raw::Json(_), _) => return refuse(key, "set in the query string only (fixed for the session)"),
                    (_, Some("jpeg")) => Codec::Jpeg,
                    (_, Some("h264")) => Codec::H264,
                    _ => return refuse(key, "\"jpeg\" or \"h264\""),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A session's options in force: its pipeline, whether it tracks, and what each frame runs
/// with.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The pipeline.
    pub kind: PipelineKind,
    /// Tracking on.
    pub track: bool,
    /// The per-frame options (`track_low` and `settled` are the session's, set from its
    /// tracker).
    pub frame: FrameOptions,
    /// With tracking and `ocr=detections`: settled readings are not read again (default on).
    pub ocr_reuse: bool,
    /// How often the detector runs (needs tracking and a detector unless every frame).
    pub detect_every: DetectEvery,
    /// What the session's binary messages are (the query's; never changes).
    pub codec: Codec,
}

impl Settings {
    /// The server's defaults: `kind` and `track`, every frame option the server's.
    pub fn new(kind: PipelineKind, track: bool) -> Settings {
        Settings {
            kind,
            track,
            frame: FrameOptions::default(),
            ocr_reuse: true,
            detect_every: DetectEvery::default(),
            codec: Codec::default(),
        }
    }

    /// `asked` merged onto these settings and resolved against the detector's labels (asked of
    /// `labels` only when `classes` names some): each label to its class id (each id once),
    /// then the rules between fields. The first field that is wrong is the answer, and nothing
    /// changes.
    pub fn apply(&self, asked: &Asked, labels: impl FnOnce() -> Vec<String>) -> Result<Settings, SpecError> {
        let mut s = self.clone();
        s.kind = asked.pipeline.unwrap_or(s.kind);
        s.track = asked.track.unwrap_or(s.track);
        s.ocr_reuse = asked.ocr_reuse.unwrap_or(s.ocr_reuse);
        s.detect_every = asked.detect_every.unwrap_or(s.detect_every);
        s.codec = asked.codec.unwrap_or(s.codec);
        let f = &mut s.frame;
        f.min_score = asked.min_score.or(f.min_score);
        f.max_detections = asked.max_detections.or(f.max_detections);
        f.ocr = asked.ocr.unwrap_or(f.ocr);
        if let Some(classes) = &asked.classes {
            f.classes = match classes {
                None => None,
                Some(names) => Some({
                    let labels = labels();
                    names
                        .iter()
                        .enumerate()
                        .map(|(i, l)| match class_id(&labels, l) {
                            Some(id) => Ok(id),
                            None => refuse(&format!("classes[{i}]"), format!("unknown label {l:?} for this detector")),
                        })
                        .collect::<Result<ClassSet, _>>()?
                }),
            };
        }
        if f.ocr == OcrScope::Detections && s.kind != PipelineKind::DetectOcr {
            return refuse("ocr", "\"detections\" needs pipeline detect_ocr");
        }
        if !s.detect_every.is_every_frame() {
            if !s.track {
                return refuse("detect_every", "needs tracking (track=true; 1: every frame)");
            }
            if !s.kind.detects() {
                return refuse("detect_every", "needs a detector (pipeline detect or detect_ocr; 1: every frame)");
            }
        }
        Ok(s)
    }

    /// The options as `session_started` and `configured` show them: every default filled in
    /// (`default_min_score` is the server's `--min-score`), the classes by name, each once, in
    /// the detector's order.
    pub fn echo(&self, detector: Option<&DetectorInfo>, default_min_score: f32) -> SessionOptions {
        let o = &self.frame;
        let name =
            |id: usize| detector.and_then(|d| d.classes.get(id).cloned()).unwrap_or_else(|| format!("class_{id}"));
        let cap = detector.map_or(usize::MAX, |d| d.max_detections);
        SessionOptions {
            min_score: o.min_score.unwrap_or(default_min_score),
            classes: o.classes.as_ref().map(|ids| ids.iter().map(name).collect()),
            max_detections: o.max_detections.unwrap_or(cap).min(cap),
            ocr: o.ocr.as_str(),
            ocr_reuse: self.ocr_reuse,
            detect_every: self.detect_every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["person", "car", "traffic light"].map(String::from).to_vec()
    }

    fn from_query(pairs: &[(&str, &str)]) -> Result<Asked, String> {
        let mut a = Asked::default();
        for (k, v) in pairs {
            a.take(k, Raw::Query(v)).map_err(|e| e.to_string())?;
        }
        Ok(a)
    }

    fn from_json(text: &str) -> Result<Asked, String> {
        let v: Value = serde_json::from_str(text).unwrap();
        let mut a = Asked::default();
        for (k, v) in v.as_object().unwrap() {
            a.take(k, Raw::Json(v)).map_err(|e| e.to_string())?;
        }
        Ok(a)
    }

    #[test]
    fn the_query_and_a_configure_ask_the_same_thing_the_same_way() {
        let q = from_query(&[
            ("pipeline", "detect_ocr"),
            ("track", "true"),
            ("min_score", "0.25"),
            ("classes", "car,traffic%20light,car"),
            ("max_detections", "7"),
            ("ocr", "detections"),
        ]);
        let j = from_json(
            r#"{"pipeline":"detect_ocr","track":true,"min_score":0.25,"classes":["car","traffic light","car"],
                "max_detections":7,"ocr":"detections"}"#,
        );
        assert_eq!(q, j);
        let s = Settings::new(PipelineKind::Detect, false).apply(&q.unwrap(), labels).unwrap();
        assert_eq!((s.kind, s.track, s.frame.ocr), (PipelineKind::DetectOcr, true, OcrScope::Detections));
        assert_eq!(s.frame.classes.as_ref().map(|c| c.iter().collect::<Vec<_>>()), Some(vec![1, 2]), "each id once");
    }

    #[test]
    fn every_bad_value_gets_the_same_answer_both_ways() {
        for (key, query, json, why) in [
            ("pipeline", "x", r#""x""#, "pipeline: one of \"detect\", \"ocr\", \"detect_ocr\""),
            ("track", "yes", r#""true""#, "track: true or false"),
            ("min_score", "1.5", "1.5", "min_score: a number within [0, 1]"),
            ("min_score", "NaN", "-0.1", "min_score: a number within [0, 1]"),
            ("max_detections", "0", "0", "max_detections: a whole number within [1, 10000]"),
            ("max_detections", "2.5", "2.5", "max_detections: a whole number within [1, 10000]"),
            ("ocr", "everywhere", "1", "ocr: \"frame\" or \"detections\""),
            ("classes", "car,,person", r#"["car",""]"#, "classes[1]: a label (a string of 1 to 100 bytes)"),
            ("classes", "car,%C3", r#"["car",3]"#, "classes[1]: a label (a string of 1 to 100 bytes)"),
            ("ocr_reuse", "1", "1", "ocr_reuse: true or false"),
            ("detect_every", "0", "0", "detect_every: a whole number within [1, 30] or \"auto\""),
            ("detect_every", "31", "31", "detect_every: a whole number within [1, 30] or \"auto\""),
            ("detect_every", "2.5", "2.5", "detect_every: a whole number within [1, 30] or \"auto\""),
            ("detect_every", "Auto", r#""3""#, "detect_every: a whole number within [1, 30] or \"auto\""),
        ] {
            assert_eq!(from_query(&[(key, query)]), Err(why.to_string()), "query {key}={query}");
            assert_eq!(from_json(&format!("{{\"{key}\":{json}}}")), Err(why.to_string()), "json {key}: {json}");
        }
        assert_eq!(from_json(r#"{"classes":[]}"#), Err("classes: 1 to 1000 labels (null: every class)".into()));
        let many = vec!["car"; 1001].join(",");
        assert_eq!(from_query(&[("classes", &many)]), Err("classes: 1 to 1000 labels (null: every class)".into()));
        assert_eq!(Asked::default().take("zones", Raw::Query("x")), Ok(false), "not an option: the caller's");
    }

    #[test]
    fn resolving_checks_labels_and_the_rules_between_fields() {
        let base = Settings::new(PipelineKind::DetectOcr, false);
        let refused = |a: &str| base.apply(&from_json(a).unwrap(), labels).unwrap_err().to_string();
        assert_eq!(
            refused(r#"{"classes":["car","unicorn"]}"#),
            "classes[1]: unknown label \"unicorn\" for this detector"
        );
        assert_eq!(
            refused(r#"{"pipeline":"detect","ocr":"detections"}"#),
            "ocr: \"detections\" needs pipeline detect_ocr"
        );
        assert_eq!(refused(r#"{"detect_every":3}"#), "detect_every: needs tracking (track=true; 1: every frame)");
        assert_eq!(
            refused(r#"{"detect_every":"auto","track":true,"pipeline":"ocr"}"#),
            "detect_every: needs a detector (pipeline detect or detect_ocr; 1: every frame)"
        );
        let s = base.apply(&from_query(&[("track", "true"), ("detect_every", "auto")]).unwrap(), labels).unwrap();
        assert_eq!((s.detect_every, s.ocr_reuse), (DetectEvery::Auto, true));
        let e = s.apply(&from_json(r#"{"track":false}"#).unwrap(), labels).unwrap_err();
        assert_eq!(e.field, "detect_every", "tracking cannot go while the detector skips frames");
        let s = s.apply(&from_json(r#"{"track":false,"detect_every":1,"ocr_reuse":false}"#).unwrap(), labels).unwrap();
        assert_eq!((s.track, s.detect_every, s.ocr_reuse), (false, DetectEvery::Every(1), false));
        // Merged onto what is in force: a later pipeline change is checked against the ocr kept.
        let s = base.apply(&from_json(r#"{"ocr":"detections"}"#).unwrap(), labels).unwrap();
        let e = s.apply(&from_json(r#"{"pipeline":"ocr"}"#).unwrap(), labels).unwrap_err();
        assert_eq!(e.field, "ocr");
        // null: every class again; fields left out are kept.
        let s = base.apply(&from_json(r#"{"classes":["car"],"min_score":0.2}"#).unwrap(), labels).unwrap();
        let s = s.apply(&from_json(r#"{"classes":null}"#).unwrap(), labels).unwrap();
        assert_eq!((s.frame.classes.is_none(), s.frame.min_score), (true, Some(0.2)));
    }

    #[test]
    fn the_echo_fills_every_default_and_names_each_class_once() {
        let d = DetectorInfo { family: "ssd", input: [300, 300], classes: labels(), max_detections: 100 };
        let s = Settings::new(PipelineKind::Detect, false)
            .apply(
                &from_query(&[("classes", "traffic+light,person,person"), ("max_detections", "500")]).unwrap(),
                labels,
            )
            .unwrap();
        let e = s.echo(Some(&d), 0.5);
        assert_eq!(e.classes, Some(vec!["person".to_string(), "traffic light".to_string()]));
        assert_eq!((e.min_score, e.max_detections, e.ocr), (0.5, 100, "frame"), "capped at the detector's");
    }

    #[test]
    fn percent_decoding_takes_exactly_two_hex_digits() {
        assert_eq!(percent_decode("traffic%20light").as_deref(), Some("traffic light"));
        assert_eq!(percent_decode("traffic+light").as_deref(), Some("traffic light"));
        assert_eq!(percent_decode("%41%62").as_deref(), Some("Ab"));
        for bad in ["%+5", "%-5", "% 5", "%5", "%", "%g0", "%C3"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }
}
