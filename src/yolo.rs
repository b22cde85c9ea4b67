//! Decoding Ultralytics-style YOLO exports a user brings with `--detector`.
//!
//! Two output layouts exist in the wild: YOLOv5 `[1, N, 5+C]` (cx, cy, w, h, objectness, C
//! class scores per anchor) and YOLOv8/11 `[1, 4+C, N]` (cx, cy, w, h, C class scores, stored
//! channel-major, no objectness). The layout is chosen from the output shape; boxes come out in
//! model-input pixels, before NMS and before undoing the letterbox.

use crate::nms::Candidate;

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
}

/// Pick the layout from an output shape. `[1, A, B]` with `B > A` is v8 (`A = 4+C`: real
/// exports have thousands of anchors, e.g. `[1,84,8400]`), otherwise v5 (`B = 5+C`, e.g.
/// `[1,25200,85]`). `None` when it is neither or leaves no class.
pub fn layout_from_shape(shape: &[usize]) -> Option<YoloLayout> {
    match *shape {
        [1, a, b] if b > a && a > 4 => Some(YoloLayout::V8 { anchors: b, classes: a - 4 }),
        [1, a, b] if b > 5 && a > 0 => Some(YoloLayout::V5 { anchors: a, classes: b - 5 }),
        _ => None,
    }
}

fn best(scores: impl Iterator<Item = f32>) -> Option<(usize, f32)> {
    scores.enumerate().filter(|(_, s)| s.is_finite()).fold(None, |acc, (i, s)| match acc {
        Some((_, bs)) if bs >= s => acc,
        _ => Some((i, s)),
    })
}

fn corners(cx: f32, cy: f32, w: f32, h: f32) -> [f32; 4] {
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

/// One candidate per anchor: its best class (v5: objectness × class score), kept when the
/// score is above `score_thr`. `output` is the raw output in row-major order; a slice shorter
/// than the layout needs yields no candidates.
pub fn decode(output: &[f32], layout: YoloLayout, score_thr: f32) -> Vec<Candidate> {
    let mut out = Vec::new();
    match layout {
        YoloLayout::V5 { anchors, classes } => {
            let row = 5 + classes;
            if output.len() < anchors * row {
                return out;
            }
            for r in output.chunks_exact(row).take(anchors) {
                let obj = r[4];
                if obj.is_nan() || obj <= score_thr {
                    continue;
                }
                if let Some((class_id, s)) = best(r[5..].iter().map(|&s| s * obj)) {
                    if s > score_thr {
                        out.push(Candidate { class_id, score: s, bbox: corners(r[0], r[1], r[2], r[3]) });
                    }
                }
            }
        }
        YoloLayout::V8 { anchors, classes } => {
            if output.len() < anchors * (4 + classes) {
                return out;
            }
            let at = |ch: usize, a: usize| output[ch * anchors + a];
            for a in 0..anchors {
                if let Some((class_id, s)) = best((0..classes).map(|c| at(4 + c, a))) {
                    if s > score_thr {
                        let bbox = corners(at(0, a), at(1, a), at(2, a), at(3, a));
                        out.push(Candidate { class_id, score: s, bbox });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_told_apart_by_shape() {
        assert_eq!(layout_from_shape(&[1, 84, 8400]), Some(YoloLayout::V8 { anchors: 8400, classes: 80 }));
        assert_eq!(layout_from_shape(&[1, 25200, 85]), Some(YoloLayout::V5 { anchors: 25200, classes: 80 }));
        assert_eq!(layout_from_shape(&[1, 5, 8400]), Some(YoloLayout::V8 { anchors: 8400, classes: 1 }));
        assert_eq!(layout_from_shape(&[1, 8400]), None);
        assert_eq!(layout_from_shape(&[2, 84, 8400]), None);
        assert_eq!(layout_from_shape(&[1, 10, 5]), None);
    }

    #[test]
    fn v5_multiplies_objectness_and_picks_the_best_class() {
        // 3 anchors, 2 classes: rows of cx, cy, w, h, obj, c0, c1.
        let out = [
            100.0,
            50.0,
            20.0,
            10.0,
            0.9,
            0.2,
            0.8, // → class 1, 0.72
            10.0,
            10.0,
            4.0,
            4.0,
            0.4,
            1.0,
            0.0, // objectness too low
            30.0,
            30.0,
            10.0,
            10.0,
            0.8,
            0.7,
            f32::NAN, // NaN class ignored → class 0, 0.56
        ];
        let c = decode(&out, YoloLayout::V5 { anchors: 3, classes: 2 }, 0.5);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].class_id, c[0].bbox), (1, [90.0, 45.0, 110.0, 55.0]));
        assert!((c[0].score - 0.72).abs() < 1e-6);
        assert_eq!(c[1].class_id, 0);
        assert!((c[1].score - 0.56).abs() < 1e-6);
    }

    #[test]
    fn v8_reads_channel_major_rows() {
        // 3 anchors, 2 classes: rows cx, cy, w, h, c0, c1 of 3 values each.
        let out = [
            100.0,
            10.0,
            30.0, // cx
            50.0,
            10.0,
            30.0, // cy
            20.0,
            4.0,
            10.0, // w
            10.0,
            4.0,
            10.0, // h
            0.1,
            0.3,
            f32::NAN, // c0
            0.9,
            0.2,
            0.6, // c1
        ];
        let c = decode(&out, YoloLayout::V8 { anchors: 3, classes: 2 }, 0.5);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].class_id, c[0].score, c[0].bbox), (1, 0.9, [90.0, 45.0, 110.0, 55.0]));
        assert_eq!((c[1].class_id, c[1].score, c[1].bbox), (1, 0.6, [25.0, 25.0, 35.0, 35.0]));
        assert!(decode(&out[..10], YoloLayout::V8 { anchors: 3, classes: 2 }, 0.5).is_empty());
    }
}
