//! Client → server control messages (text): `configure` and `end_of_stream`, parsed here into
//! typed requests with errors that name the offending field (`zones[1].polygon[3]: …`).
//!
//! Parsing goes through a `serde_json::Value` and is walked by hand rather than derived, so
//! every problem (an unknown key, a wrong type, a value out of range) is reported as
//! `"<field>: <why>"` with the path the client wrote, not as serde's internal wording. Only
//! what a field *is* is checked here (types, ranges, names of enums); what it means for this
//! session (labels of its detector, `ocr=detections` without `detect_ocr`, zones without
//! tracking, polygon shapes) is checked when the session applies it.
//!
//! A text message is a control message when it is a JSON object whose `type` is `configure` or
//! `end_of_stream`. Any other text keeps protocol v1's answer (`unsupported_message`, close
//! 1003). Text that starts with `{` but is not valid JSON, or an `end_of_stream` with other
//! keys, is `invalid_message` (the session goes on): it was meant as a control message.

use serde_json::{Map, Value};

use super::options::{Asked, Raw};
use crate::analytics::{Anchor, LineSpec, SpecError, ZoneSpec, DEFAULT_INERTIA};

/// Largest control message, in bytes (64 KiB: 32 zones of 64 points written out in full take
/// about 60 KiB with generous formatting). A bigger text message is `invalid_message`.
pub const MAX_CONTROL_BYTES: usize = 64 * 1024;

/// A `configure` message: every field is optional; the ones given replace what the session has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Configure {
    /// The per-session options (`pipeline`, `track`, `min_score`, `classes`, `max_detections`,
    /// `ocr`, `ocr_reuse`, `detect_every`), checked as the query string's are ([`super::options`]).
    pub options: Asked,
    /// `zones` (the whole list; `[]` removes every zone).
    pub zones: Option<Vec<ZoneSpec>>,
    /// `lines` (the whole list).
    pub lines: Option<Vec<LineSpec>>,
    /// `anchor`.
    pub anchor: Option<Anchor>,
}

/// A control message.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// `{"type":"configure", …}`.
    Configure(Configure),
    /// `{"type":"end_of_stream"}`.
    EndOfStream,
}

/// Why a text message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Not a control message at all: protocol v1's `unsupported_message` (close 1003).
    #[error("not a control message")]
    NotControl,
    /// Meant as a control message but malformed (not JSON, too big, an `end_of_stream` with
    /// other keys): `invalid_message` with this detail; the session goes on.
    #[error("{0}")]
    Malformed(String),
    /// A `configure` message with a bad field: `invalid_config` with `"<field>: <why>"`.
    #[error("{0}")]
    Config(SpecError),
}

fn bad<T>(field: impl Into<String>, why: impl Into<String>) -> Result<T, ControlError> {
    Err(ControlError::Config(SpecError { field: field.into(), why: why.into() }))
}

/// Parse one text message (see the module docs for what counts as a control message).
pub fn parse(text: &str) -> Result<Control, ControlError> {
    let looks_like_json = text.trim_start().starts_with('{');
    if !looks_like_json {
        return Err(ControlError::NotControl);
    }
    if text.len() > MAX_CONTROL_BYTES {
        return Err(ControlError::Malformed(format!("a control message is at most {MAX_CONTROL_BYTES} bytes")));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ControlError::Malformed(format!("not valid JSON (line {}, column {})", e.line(), e.column())))?;
    let Value::Object(map) = value else { return Err(ControlError::NotControl) };
    match map.get("type").and_then(Value::as_str) {
        Some("configure") => configure(&map).map(Control::Configure),
        Some("end_of_stream") => match map.keys().find(|k| *k != "type") {
            Some(k) => Err(ControlError::Malformed(format!("{k}: end_of_stream takes no other field"))),
            None => Ok(Control::EndOfStream),
        },
        _ => Err(ControlError::NotControl),
    }
}

fn configure(map: &Map<String, Value>) -> Result<Configure, ControlError> {
    let mut c = Configure::default();
    for (key, v) in map {
        if c.options.take(key, Raw::Json(v)).map_err(ControlError::Config)? {
            continue;
        }
        match key.as_str() {
            "type" => {}
            "anchor" => {
                c.anchor = Some(match v.as_str() {
                    Some("bottom_center") => Anchor::BottomCenter,
                    Some("center") => Anchor::Center,
                    _ => return bad(key, "\"bottom_center\" or \"center\""),
                })
            }
            "zones" => {
                c.zones = Some(list(v, key)?.iter().enumerate().map(|(i, z)| zone(z, i)).collect::<Result<_, _>>()?)
            }
            "lines" => {
                c.lines = Some(list(v, key)?.iter().enumerate().map(|(i, l)| line(l, i)).collect::<Result<_, _>>()?)
            }
            _ => return bad(key, "unknown field"),
        }
    }
    Ok(c)
}

fn list<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>, ControlError> {
    v.as_array().map_or_else(|| bad(field, "a list"), Ok)
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, ControlError> {
    v.as_object().map_or_else(|| bad(field, "an object"), Ok)
}

/// A zone's or line's `classes`: as the session's own ([`Raw::labels`]).
fn labels(v: &Value, field: &str) -> Result<Option<Vec<String>>, ControlError> {
    Raw::Json(v).labels(field).map_err(ControlError::Config)
}

fn name(map: &Map<String, Value>, at: &str) -> Result<String, ControlError> {
    match map.get("name") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => bad(format!("{at}.name"), "a string"),
        None => bad(format!("{at}.name"), "missing"),
    }
}

/// `[x, y]`, two numbers (their range is checked with the rest of the geometry).
fn point(v: &Value, field: &str) -> Result<[f64; 2], ControlError> {
    match v.as_array().map(Vec::as_slice) {
        Some([x, y]) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => Ok([x, y]),
            _ => bad(field, "a point [x, y] of two numbers"),
        },
        _ => bad(field, "a point [x, y] of two numbers"),
    }
}

fn zone(v: &Value, i: usize) -> Result<ZoneSpec, ControlError> {
    let at = format!("zones[{i}]");
    let map = object(v, &at)?;
    let mut z = ZoneSpec {
        name: name(map, &at)?,
        polygon: Vec::new(),
        classes: None,
        inertia: DEFAULT_INERTIA,
        loiter_s: None,
    };
    let mut polygon = false;
    for (key, v) in map {
        let field = format!("{at}.{key}");
        match key.as_str() {
            "name" => {}
            "polygon" => {
                let points = list(v, &field)?;
                // Bounded before the points are read (the count rule itself is the session's).
                if points.len() > 4 * crate::analytics::MAX_POLYGON_POINTS {
                    return bad(field, format!("3 to {} points", crate::analytics::MAX_POLYGON_POINTS));
                }
                z.polygon = points
                    .iter()
                    .enumerate()
                    .map(|(j, p)| point(p, &format!("{field}[{j}]")))
                    .collect::<Result<_, _>>()?;
                polygon = true;
            }
            "classes" => z.classes = labels(v, &field)?,
            "inertia" => {
                z.inertia = match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) => n,
                    None => return bad(field, "a whole number of frames"),
                }
            }
            "loiter_s" => {
                z.loiter_s = if v.is_null() {
                    None
                } else {
                    Some(v.as_f64().map_or_else(|| bad(&field, "a number of seconds"), Ok)?)
                }
            }
            _ => return bad(field, "unknown field"),
        }
    }
    if !polygon {
        return bad(format!("{at}.polygon"), "missing");
    }
    Ok(z)
}

fn line(v: &Value, i: usize) -> Result<LineSpec, ControlError> {
    let at = format!("lines[{i}]");
    let map = object(v, &at)?;
    let name = name(map, &at)?;
    let mut points = None;
    let mut classes = None;
    for (key, v) in map {
        let field = format!("{at}.{key}");
        match key.as_str() {
            "name" => {}
            "points" => {
                points = Some(match v.as_array().map(Vec::as_slice) {
                    Some([a, b]) => [point(a, &format!("{field}[0]"))?, point(b, &format!("{field}[1]"))?],
                    _ => return bad(field, "two points [[x1, y1], [x2, y2]]"),
                })
            }
            "classes" => classes = labels(v, &field)?,
            _ => return bad(field, "unknown field"),
        }
    }
    let Some(points) = points else { return bad(format!("{at}.points"), "missing") };
    Ok(LineSpec { name, points, classes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{OcrScope, PipelineKind};

    fn config_error(text: &str) -> String {
        match parse(text) {
            Err(ControlError::Config(e)) => e.to_string(),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn a_full_configure_message() {
        let text = r#"{"type":"configure","pipeline":"detect","track":true,"min_score":0.3,
            "classes":["car","person"],"max_detections":50,"ocr":"frame","anchor":"center",
            "zones":[{"name":"bay","polygon":[[0,0],[100,0],[100,50]],"classes":["car"],"inertia":3,"loiter_s":2.5}],
            "lines":[{"name":"gate","points":[[0,10],[200,10.5]]}]}"#;
        let Ok(Control::Configure(c)) = parse(text) else { panic!("{text}") };
        let o = &c.options;
        assert_eq!(o.pipeline, Some(PipelineKind::Detect));
        assert_eq!((o.track, o.min_score, o.max_detections), (Some(true), Some(0.3), Some(50)));
        assert_eq!(o.classes, Some(Some(vec!["car".into(), "person".into()])));
        assert_eq!((o.ocr, c.anchor), (Some(OcrScope::Frame), Some(Anchor::Center)));
        let z = &c.zones.as_ref().unwrap()[0];
        assert_eq!((z.name.as_str(), z.polygon.len(), z.inertia, z.loiter_s), ("bay", 3, 3, Some(2.5)));
        assert_eq!(z.classes, Some(vec!["car".into()]));
        let l = &c.lines.as_ref().unwrap()[0];
        assert_eq!((l.name.as_str(), l.points, l.classes.clone()), ("gate", [[0.0, 10.0], [200.0, 10.5]], None));
    }

    #[test]
    fn fields_left_out_are_left_alone_and_null_resets_classes() {
        let Ok(Control::Configure(c)) = parse(r#"{"type":"configure"}"#) else { panic!() };
        assert_eq!(c, Configure::default());
        let Ok(Control::Configure(c)) = parse(r#"{"type":"configure","classes":null,"zones":[]}"#) else { panic!() };
        assert_eq!((c.options.classes, c.zones), (Some(None), Some(vec![])));
        let Ok(Control::Configure(c)) = parse(r#"{"type":"configure","zones":[{"name":"a","polygon":[]}]}"#) else {
            panic!()
        };
        assert_eq!(c.zones.unwrap()[0].inertia, DEFAULT_INERTIA);
    }

    #[test]
    fn each_bad_field_is_named() {
        for (text, want) in [
            (r#"{"type":"configure","bogus":1}"#, "bogus: unknown field"),
            (r#"{"type":"configure","pipeline":"x"}"#, "pipeline: one of \"detect\", \"ocr\", \"detect_ocr\""),
            (r#"{"type":"configure","track":"yes"}"#, "track: true or false"),
            (r#"{"type":"configure","min_score":1.5}"#, "min_score: a number within [0, 1]"),
            (r#"{"type":"configure","max_detections":0}"#, "max_detections: a whole number within [1, 10000]"),
            (r#"{"type":"configure","max_detections":2.5}"#, "max_detections: a whole number within [1, 10000]"),
            (r#"{"type":"configure","ocr":1}"#, "ocr: \"frame\" or \"detections\""),
            (r#"{"type":"configure","anchor":"top"}"#, "anchor: \"bottom_center\" or \"center\""),
            (r#"{"type":"configure","classes":[]}"#, "classes: 1 to 1000 labels (null: every class)"),
            (r#"{"type":"configure","classes":["car",3]}"#, "classes[1]: a label (a string of 1 to 100 bytes)"),
            (r#"{"type":"configure","zones":{}}"#, "zones: a list"),
            (
                r#"{"type":"configure","zones":[{"name":"a","polygon":[],"classes":"car"}]}"#,
                "zones[0].classes: a list of 1 to 1000 labels (null: every class)",
            ),
            (r#"{"type":"configure","zones":[3]}"#, "zones[0]: an object"),
            (r#"{"type":"configure","zones":[{"polygon":[]}]}"#, "zones[0].name: missing"),
            (r#"{"type":"configure","zones":[{"name":"a"}]}"#, "zones[0].polygon: missing"),
            (
                r#"{"type":"configure","zones":[{"name":"a","polygon":[[0,0],[1]]}]}"#,
                "zones[0].polygon[1]: a point [x, y] of two numbers",
            ),
            (
                r#"{"type":"configure","zones":[{"name":"a","polygon":[],"inertia":-1}]}"#,
                "zones[0].inertia: a whole number of frames",
            ),
            (
                r#"{"type":"configure","zones":[{"name":"a","polygon":[],"color":"red"}]}"#,
                "zones[0].color: unknown field",
            ),
            (
                r#"{"type":"configure","lines":[{"name":"g","points":[[0,0]]}]}"#,
                "lines[0].points: two points [[x1, y1], [x2, y2]]",
            ),
            (r#"{"type":"configure","lines":[{"name":"g"}]}"#, "lines[0].points: missing"),
            (r#"{"type":"configure","lines":[{"name":7,"points":[]}]}"#, "lines[0].name: a string"),
        ] {
            assert_eq!(config_error(text), want, "{text}");
        }
    }

    #[test]
    fn what_is_not_a_control_message_and_what_is_malformed() {
        for text in ["hello", "[1,2]", r#"  {"type":"hello"}"#, r#"{"kind":"configure"}"#, "", "42"] {
            assert_eq!(parse(text), Err(ControlError::NotControl), "{text:?}");
        }
        assert_eq!(parse("{\"type\":"), Err(ControlError::Malformed("not valid JSON (line 1, column 8)".into())));
        assert_eq!(
            parse(r#"{"type":"end_of_stream","now":true}"#),
            Err(ControlError::Malformed("now: end_of_stream takes no other field".into()))
        );
        assert_eq!(parse(r#"{"type":"end_of_stream"}"#), Ok(Control::EndOfStream));
        let big = format!(r#"{{"type":"configure","pad":"{}"}}"#, "x".repeat(MAX_CONTROL_BYTES));
        assert!(matches!(parse(&big), Err(ControlError::Malformed(m)) if m.contains("65536")));
        // Deep nesting is refused by the JSON parser's own limit, not by a stack overflow.
        let deep = format!(r#"{{"type":"configure","zones":{}{}}}"#, "[".repeat(20_000), "]".repeat(20_000));
        assert!(matches!(parse(&deep), Err(ControlError::Malformed(_))));
    }
}
