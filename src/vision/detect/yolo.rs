//! Decoding the raw output of Ultralytics-style YOLO exports a user brings with `--detector`.
//!
//! Three output layouts exist in the wild: YOLOv5 `[1, N, 5+C]` (per anchor cx, cy, w, h,
//! objectness, C class scores), YOLOv8/11 `[1, 4+C, N]` (cx, cy, w, h, C class scores, stored
//! channel-major, no objectness), and end-to-end `[1, N, 6]` (YOLO26's default, YOLOv10,
//! `nms=True` exports: final x1, y1, x2, y2, score, class rows, no NMS to run). The layout comes
//! from the export's metadata ([`ExportMeta`]: `task`, `end2end`, `names`) where it has it and
//! from the shapes otherwise ([`layout_for`]); an output that fits no layout, or two, is refused,
//! never guessed. [`decode`] turns the tensor into [`Candidate`]s in model-input pixels, before
//! NMS and before undoing the letterbox
//! ([`crate::vision::detect::preprocess::Letterbox::unmap`]). Model output is not trusted:
//! NaN/inf scores or coordinates and short tensors never panic.

use crate::vision::detect::nms::Candidate;

/// The output layout of a YOLO export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YoloLayout {
    /// `[1, N, 5+C]`: per anchor cx, cy, w, h, objectness, then C class scores.
    V5 {
        /// N.
        anchors: usize,
        /// C.
        classes: usize,
    },
    /// `[1, 4+C, N]`: cx, cy, w, h then C class scores, each a row of N anchors.
    V8 {
        /// N.
        anchors: usize,
        /// C.
        classes: usize,
    },
    /// `[1, N, 6]`: final detections x1, y1, x2, y2, score, class id (no NMS).
    EndToEnd {
        /// N rows.
        rows: usize,
    },
}

impl YoloLayout {
    /// Classes the output itself tells (none for end-to-end rows).
    pub fn classes(&self) -> Option<usize> {
        match *self {
            YoloLayout::V5 { classes, .. } | YoloLayout::V8 { classes, .. } => Some(classes),
            YoloLayout::EndToEnd { .. } => None,
        }
    }

    /// The family name for the start-up log.
    pub fn family(&self) -> &'static str {
        match self {
            YoloLayout::V5 { .. } => "yolov5",
            YoloLayout::V8 { .. } => "yolov8",
            YoloLayout::EndToEnd { .. } => "yolo-end2end",
        }
    }
}

/// What an Ultralytics export says about itself in its ONNX metadata (`metadata_props`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportMeta {
    /// `task`: `detect`, `segment`, `pose`, `obb`, `classify`.
    pub task: Option<String>,
    /// `end2end`: `True` for an NMS-free end-to-end head.
    pub end2end: Option<bool>,
    /// `args` says `'nms': True` (NMS baked into the graph: final rows too).
    pub nms_in_graph: bool,
    /// `names`: the class names, by id.
    pub names: Option<Vec<String>>,
}

impl ExportMeta {
    /// From a metadata lookup (`key → value`).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> ExportMeta {
        let flag = |v: Option<String>| {
            v.and_then(|v| match v.trim() {
                "True" | "true" => Some(true),
                "False" | "false" => Some(false),
                _ => None,
            })
        };
        ExportMeta {
            task: get("task").map(|t| t.trim().to_string()),
            end2end: flag(get("end2end")),
            nms_in_graph: get("args").is_some_and(|a| a.replace(' ', "").contains("'nms':True")),
            names: get("names").as_deref().and_then(parse_names),
        }
    }
}

/// Parse Ultralytics' `names` entry, a Python dict literal `{0: 'person', 1: "bicycle", ...}`,
/// into names by id. `None` unless the ids are exactly `0..n` and every name a quoted string.
pub fn parse_names(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut by_id: Vec<(usize, String)> = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (id, after) = rest.split_once(':')?;
        let id: usize = id.trim().parse().ok()?;
        let after = after.trim_start();
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let mut name = String::new();
        let mut chars = after[1..].char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => name.push(chars.next()?.1),
                c if c == quote => break i + 2,
                c => name.push(c),
            }
        };
        by_id.push((id, name));
        rest = after[end..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    by_id.sort_by_key(|(id, _)| *id);
    by_id.iter().enumerate().all(|(i, (id, _))| i == *id).then(|| by_id.into_iter().map(|(_, n)| n).collect())
}

/// The layout of an export with output `shape` and metadata `meta`, or why it is refused.
pub fn layout_for(shape: &[usize], meta: &ExportMeta) -> Result<YoloLayout, String> {
    if let Some(task) = meta.task.as_deref().filter(|t| *t != "detect") {
        return Err(format!("a `{task}` export: only detection (`task=detect`) exports are served"));
    }
    let final_rows = meta.end2end == Some(true) || meta.nms_in_graph;
    match *shape {
        [1, n, 6] if final_rows => Ok(YoloLayout::EndToEnd { rows: n }),
        _ if final_rows => Err(format!("metadata says end-to-end, but output {shape:?} is not [1,N,6]")),
        // [1,N,6] is also YOLOv5 with one class: only the metadata can tell.
        [1, n, 6] if meta.end2end.is_none() && n > 6 => Err(format!(
            "output {shape:?} fits two layouts (end-to-end rows, or YOLOv5 with one class) and the export \
             has no `end2end` metadata to tell them apart"
        )),
        _ => layout_from_shape(shape).ok_or_else(|| {
            format!("output {shape:?} is none of [1,N,5+C] (YOLOv5), [1,4+C,N] (YOLOv8/11), [1,N,6] (end-to-end)")
        }),
    }
}

/// Pick the layout from an output shape; `None` if it matches neither.
///
/// `[1, A, B]` with `B > A` is v8 with `C = A - 4` (real exports have far more anchors than
/// `4 + C` channels, e.g. `[1, 84, 8400]`); otherwise v5 with `C = B - 5` (e.g. `[1, 25200, 85]`).
/// At least one class is required, and the batch must be 1.
pub fn layout_from_shape(shape: &[usize]) -> Option<YoloLayout> {
    match *shape {
        [1, a, b] if b > a => (a > 4).then(|| YoloLayout::V8 { anchors: b, classes: a - 4 }),
        [1, a, b] => (b > 5 && a > 0).then(|| YoloLayout::V5 { anchors: a, classes: b - 5 }),
        _ => None,
    }
}

/// The best finite score and its index; the first one wins ties. NaN and ±inf are skipped.
fn best(scores: impl Iterator<Item = f32>) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (i, s) in scores.enumerate() {
        if s.is_finite() && best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best
}

/// `[x1, y1, x2, y2]` from centre and size; `None` if any of it is not finite.
fn corners(cx: f32, cy: f32, w: f32, h: f32) -> Option<[f32; 4]> {
    let b = [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
    b.iter().all(|v| v.is_finite()).then_some(b)
}

/// Decode the raw output (`output` is the flat tensor in the shape's row-major order) into
/// candidates in model-input pixels, one per anchor at most: the anchor's best class (v5: score =
/// objectness × class score; ties go to the lower class id), kept when the score is strictly
/// greater than `score_thr`. Anchors are emitted in order.
///
/// Robustness: non-finite class scores are ignored when picking the class, anchors whose score or
/// box is not finite are dropped, and a slice shorter than the layout needs yields no candidates
/// (extra trailing values are ignored).
pub fn decode(output: &[f32], layout: YoloLayout, score_thr: f32) -> Vec<Candidate> {
    let mut out = Vec::new();
    match layout {
        YoloLayout::EndToEnd { rows } => {
            let Some(need) = rows.checked_mul(6) else { return out };
            for r in output.get(..need).unwrap_or(&[]).chunks_exact(6) {
                let (score, class) = (r[4], r[5]);
                let b = [r[0], r[1], r[2], r[3]];
                let class_ok = (0.0..1e6).contains(&class) && class.fract() == 0.0;
                if score > score_thr && score.is_finite() && class_ok && b.iter().all(|v| v.is_finite()) {
                    out.push(Candidate { class_id: class as usize, score, bbox: b });
                }
            }
        }
        YoloLayout::V5 { anchors, classes } => {
            let row = 5 + classes;
            let Some(need) = anchors.checked_mul(row) else { return out };
            if classes == 0 || output.len() < need {
                return out;
            }
            for r in output[..need].chunks_exact(row) {
                let obj = r[4];
                if !obj.is_finite() {
                    continue;
                }
                let Some((class_id, score)) = best(r[5..].iter().map(|&s| obj * s)) else { continue };
                if score > score_thr {
                    if let Some(bbox) = corners(r[0], r[1], r[2], r[3]) {
                        out.push(Candidate { class_id, score, bbox });
                    }
                }
            }
        }
        YoloLayout::V8 { anchors, classes } => {
            let Some(need) = anchors.checked_mul(4 + classes) else { return out };
            if classes == 0 || output.len() < need {
                return out;
            }
            let channel = |ch: usize| &output[ch * anchors..(ch + 1) * anchors];
            let (cx, cy, w, h) = (channel(0), channel(1), channel(2), channel(3));
            for a in 0..anchors {
                let Some((class_id, score)) = best((0..classes).map(|c| output[(4 + c) * anchors + a])) else {
                    continue;
                };
                if score > score_thr {
                    if let Some(bbox) = corners(cx[a], cy[a], w[a], h[a]) {
                        out.push(Candidate { class_id, score, bbox });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod meta_tests {
    use super::*;

    #[test]
    fn names_parse_from_the_python_dict_literal() {
        assert_eq!(
            parse_names("{0: 'license_plate', 1: \"sign\", 2: 'person'}"),
            Some(vec!["license_plate".to_string(), "sign".into(), "person".into()])
        );
        assert_eq!(parse_names("{0: 'it\\'s', 1: 'a, b'}"), Some(vec!["it's".to_string(), "a, b".into()]));
        assert_eq!(parse_names("{}"), Some(vec![]));
        assert_eq!(parse_names("{1: 'a'}"), None, "ids must be 0..n");
        assert_eq!(parse_names("{0: a}"), None);
        assert_eq!(parse_names("[0, 1]"), None);
        assert_eq!(parse_names("{0: 'unterminated}"), None);
    }

    fn meta(pairs: &[(&str, &str)]) -> ExportMeta {
        ExportMeta::read(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_layout_comes_from_the_metadata_then_the_shapes_and_ambiguity_is_refused() {
        let e2e = meta(&[("task", "detect"), ("end2end", "True")]);
        assert_eq!(layout_for(&[1, 300, 6], &e2e), Ok(YoloLayout::EndToEnd { rows: 300 }));
        assert!(layout_for(&[1, 84, 8400], &e2e).is_err(), "end2end metadata with a raw head");
        let nms = meta(&[("args", "{'imgsz': 640, 'nms': True}")]);
        assert_eq!(layout_for(&[1, 100, 6], &nms), Ok(YoloLayout::EndToEnd { rows: 100 }));
        let raw = meta(&[("task", "detect"), ("end2end", "False")]);
        assert_eq!(layout_for(&[1, 84, 8400], &raw), Ok(YoloLayout::V8 { anchors: 8400, classes: 80 }));
        assert_eq!(layout_for(&[1, 25200, 6], &raw), Ok(YoloLayout::V5 { anchors: 25200, classes: 1 }));
        let none = ExportMeta::default();
        assert!(layout_for(&[1, 300, 6], &none).unwrap_err().contains("two layouts"));
        assert_eq!(layout_for(&[1, 7, 8400], &none), Ok(YoloLayout::V8 { anchors: 8400, classes: 3 }));
        for task in ["segment", "pose", "obb", "classify"] {
            let e = layout_for(&[1, 84, 8400], &meta(&[("task", task)])).unwrap_err();
            assert!(e.contains(task) && e.contains("only detection"), "{e}");
        }
        assert!(layout_for(&[1, 3], &none).is_err());
    }

    #[test]
    fn end_to_end_rows_are_final_detections() {
        let rows = [
            10.0,
            20.0,
            110.0,
            220.0,
            0.9,
            2.0, // kept
            0.0,
            0.0,
            5.0,
            5.0,
            0.2,
            1.0, // below the threshold
            1.0,
            1.0,
            2.0,
            2.0,
            f32::NAN,
            0.0, // NaN score
            1.0,
            1.0,
            2.0,
            2.0,
            0.8,
            -1.0, // bad class
            1.0,
            1.0,
            2.0,
            2.0,
            0.8,
            1.5, // bad class
            30.0,
            30.0,
            40.0,
            40.0,
            0.6,
            0.0, // kept
        ];
        let c = decode(&rows, YoloLayout::EndToEnd { rows: 6 }, 0.25);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].class_id, c[0].score, c[0].bbox), (2, 0.9, [10.0, 20.0, 110.0, 220.0]));
        assert_eq!(c[1].class_id, 0);
        assert!(decode(&rows[..5], YoloLayout::EndToEnd { rows: 6 }, 0.25).is_empty(), "short tensor");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::detect::nms::nms_classwise;
    use crate::vision::detect::preprocess::letterbox_input;
    use crate::vision::image::RgbImage;

    #[test]
    fn layouts_are_told_apart_by_shape() {
        assert_eq!(layout_from_shape(&[1, 84, 8400]), Some(YoloLayout::V8 { anchors: 8400, classes: 80 }));
        assert_eq!(layout_from_shape(&[1, 25200, 85]), Some(YoloLayout::V5 { anchors: 25200, classes: 80 }));
        assert_eq!(layout_from_shape(&[1, 5, 8400]), Some(YoloLayout::V8 { anchors: 8400, classes: 1 }));
        assert_eq!(layout_from_shape(&[1, 6300, 6]), Some(YoloLayout::V5 { anchors: 6300, classes: 1 }));
        assert_eq!(layout_from_shape(&[1, 8400]), None);
        assert_eq!(layout_from_shape(&[2, 84, 8400]), None);
        assert_eq!(layout_from_shape(&[1, 84, 8400, 1]), None);
        assert_eq!(layout_from_shape(&[]), None);
        // No class left: v8 needs A > 4, v5 needs B > 5.
        assert_eq!(layout_from_shape(&[1, 4, 8400]), None);
        assert_eq!(layout_from_shape(&[1, 25200, 5]), None);
        assert_eq!(layout_from_shape(&[1, 10, 5]), None);
        assert_eq!(layout_from_shape(&[1, 0, 0]), None);
        // Square: B is not > A, so v5.
        assert_eq!(layout_from_shape(&[1, 7, 7]), Some(YoloLayout::V5 { anchors: 7, classes: 2 }));
    }

    #[test]
    fn v5_multiplies_objectness_and_picks_the_best_class() {
        // 4 anchors, 3 classes: rows of cx, cy, w, h, obj, c0, c1, c2.
        #[rustfmt::skip]
        let out = [
            100.0, 50.0, 20.0, 10.0, 0.9, 0.2, 0.8, 0.1,        // → class 1, 0.72
            10.0, 10.0, 4.0, 4.0, 0.4, 1.0, 0.0, 0.0,           // 0.4 × 1.0 = 0.4: below 0.5
            30.0, 30.0, 10.0, 10.0, 0.8, 0.7, f32::NAN, 0.7,    // NaN ignored; tie → class 0, 0.56
            f32::NAN, 30.0, 10.0, 10.0, 0.99, 0.99, 0.0, 0.0,   // NaN coordinate: dropped
        ];
        let layout = YoloLayout::V5 { anchors: 4, classes: 3 };
        let c = decode(&out, layout, 0.5);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].class_id, c[0].bbox), (1, [90.0, 45.0, 110.0, 55.0]));
        assert!((c[0].score - 0.72).abs() < 1e-6);
        assert_eq!((c[1].class_id, c[1].bbox), (0, [25.0, 25.0, 35.0, 35.0]));
        assert!((c[1].score - 0.56).abs() < 1e-6);
        // Threshold is strict and applies to the product: at 0.3 the second anchor comes in.
        let c = decode(&out, layout, 0.3);
        assert_eq!(c.iter().map(|c| c.class_id).collect::<Vec<_>>(), vec![1, 0, 0]);
        assert_eq!(decode(&out, layout, 0.6).len(), 1);
        // NaN objectness kills the anchor; short tensors give nothing.
        let mut bad = out;
        bad[4] = f32::NAN;
        assert_eq!(decode(&bad, layout, 0.5).len(), 1);
        assert!(decode(&out[..31], layout, 0.5).is_empty());
        assert!(decode(&[], layout, 0.5).is_empty());
    }

    #[test]
    fn v8_reads_channel_major_rows() {
        // 3 anchors, 2 classes: rows cx, cy, w, h, c0, c1 of 3 values each.
        #[rustfmt::skip]
        let out = [
            100.0, 10.0, 30.0,      // cx
            50.0, 10.0, 30.0,       // cy
            20.0, 4.0, 10.0,        // w
            10.0, 4.0, 10.0,        // h
            0.1, 0.3, f32::NAN,     // c0
            0.9, 0.2, 0.6,          // c1
        ];
        let layout = YoloLayout::V8 { anchors: 3, classes: 2 };
        let c = decode(&out, layout, 0.5);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].class_id, c[0].score, c[0].bbox), (1, 0.9, [90.0, 45.0, 110.0, 55.0]));
        assert_eq!((c[1].class_id, c[1].score, c[1].bbox), (1, 0.6, [25.0, 25.0, 35.0, 35.0]));
        // No objectness in v8: the middle anchor's best is class 0 at 0.3.
        let c = decode(&out, layout, 0.25);
        assert_eq!((c[1].class_id, c[1].score, c[1].bbox), (0, 0.3, [8.0, 8.0, 12.0, 12.0]));
        // Strict threshold.
        assert_eq!(decode(&out, layout, 0.6).len(), 1);
        assert!(decode(&out[..17], layout, 0.5).is_empty());
        // All-NaN scores or an infinite size drop the anchor.
        let mut bad = out;
        bad[12] = f32::NAN;
        bad[15] = f32::NAN;
        bad[8] = f32::INFINITY;
        assert!(decode(&bad, layout, 0.5).is_empty());
    }

    #[test]
    fn decode_then_nms_then_unmap_lands_in_the_frame() {
        // A 640×480 frame into 640×640: the object at frame box [100, 50, 300, 400] shows up at
        // model box [100, 130, 300, 480] twice (two anchors), and NMS keeps the stronger one.
        let img = RgbImage { width: 640, height: 480, data: vec![90; 640 * 480 * 3] };
        let mut input = vec![0.0; 3 * 640 * 640];
        let lb = letterbox_input(&img, 640, 640, &mut input);
        #[rustfmt::skip]
        let out = [
            200.0, 305.0, 200.0, 350.0, 0.9, 0.0, 0.95,
            201.0, 306.0, 200.0, 350.0, 0.9, 0.0, 0.90,
        ];
        let kept = nms_classwise(decode(&out, YoloLayout::V5 { anchors: 2, classes: 2 }, 0.25), 0.45, 100);
        assert_eq!(kept.len(), 1);
        let back = lb.unmap(kept[0].bbox, 640, 480);
        let want = [100.0, 50.0, 300.0, 400.0];
        assert!(back.iter().zip(want.iter()).all(|(a, b)| (a - b).abs() < 0.5), "{back:?}");
    }
}
