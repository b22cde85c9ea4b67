//! Decoding the raw output of Ultralytics-style YOLO exports a user brings with `--detector`.
//!
//! The shipped detector is SSD, but users may bring their own YOLO ONNX export, and two output
//! layouts exist in the wild: YOLOv5 `[1, N, 5+C]` (per anchor cx, cy, w, h, objectness, C class
//! scores) and YOLOv8/11 `[1, 4+C, N]` (cx, cy, w, h, C class scores, stored channel-major, no
//! objectness). The layout is chosen from the output shape alone ([`layout_from_shape`]), and
//! [`decode`] turns the tensor into one [`Candidate`] per anchor in model-input pixels, before NMS
//! and before undoing the letterbox ([`crate::vision::detect::preprocess::Letterbox::unmap`]). Model output is not
//! trusted: NaN/inf scores or coordinates and short tensors never panic.

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
