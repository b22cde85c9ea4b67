//! Non-maximum suppression, written and tested here (tract's YOLO example NMS is wrong).
//!
//! Class-wise greedy NMS as in the TF Object Detection API exporter and the reference
//! `detect_ref.py`: per class, highest score first, a box is suppressed when its IoU with an
//! already kept box of the same class is strictly greater than the threshold.

/// A scored box before or after NMS; `bbox` = `[x1, y1, x2, y2]` in any consistent unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Class id.
    pub class_id: usize,
    /// Score (higher is better).
    pub score: f32,
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
}

fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Intersection over union. 0 when either box has zero area (including swapped corners,
/// which count as empty) or when anything is NaN; never NaN itself.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let (aa, ab) = (area(a), area(b));
    if !(aa > 0.0 && ab > 0.0) {
        return 0.0;
    }
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = aa + ab - inter;
    let v = inter / union;
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Class-wise greedy NMS, then the global top `max_det` by score.
///
/// Candidates with a non-finite score or coordinate are dropped first. Sorting is stable, so
/// equal scores keep their input order (the earlier candidate wins), and the output is
/// deterministic. A box whose IoU with a kept box is exactly `iou_thr` is kept.
pub fn nms_classwise(cands: Vec<Candidate>, iou_thr: f32, max_det: usize) -> Vec<Candidate> {
    let mut cands: Vec<Candidate> =
        cands.into_iter().filter(|c| c.score.is_finite() && c.bbox.iter().all(|v| v.is_finite())).collect();
    // Group by class, score descending, input order on ties.
    cands.sort_by(|a, b| a.class_id.cmp(&b.class_id).then(b.score.total_cmp(&a.score)));
    let mut kept: Vec<Candidate> = Vec::new();
    let mut class_start = 0;
    for c in cands {
        if kept.get(class_start).is_some_and(|k| k.class_id != c.class_id) {
            class_start = kept.len();
        }
        if kept[class_start..].iter().all(|k| iou(&k.bbox, &c.bbox) <= iou_thr) {
            kept.push(c);
        }
    }
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept.truncate(max_det);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(class_id: usize, score: f32, bbox: [f32; 4]) -> Candidate {
        Candidate { class_id, score, bbox }
    }

    #[test]
    fn iou_basics_and_edges() {
        let a = [0.0, 0.0, 10.0, 10.0];
        assert_eq!(iou(&a, &a), 1.0);
        assert_eq!(iou(&a, &[10.0, 0.0, 20.0, 10.0]), 0.0); // touching edges
        assert!((iou(&a, &[5.0, 0.0, 15.0, 10.0]) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(iou(&a, &[3.0, 3.0, 3.0, 8.0]), 0.0); // zero area
        assert_eq!(iou(&a, &[10.0, 10.0, 0.0, 0.0]), 0.0); // swapped = empty
        assert_eq!(iou(&a, &[f32::NAN, 0.0, 5.0, 5.0]), 0.0);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 0.0], &[0.0, 0.0, 0.0, 0.0]), 0.0);
    }

    #[test]
    fn suppresses_overlaps_within_a_class_only() {
        let out = nms_classwise(
            vec![
                c(0, 0.8, [0.0, 0.0, 10.0, 10.0]),
                c(0, 0.9, [1.0, 0.0, 11.0, 10.0]),
                c(1, 0.7, [0.0, 0.0, 10.0, 10.0]),
                c(0, 0.6, [50.0, 50.0, 60.0, 60.0]),
            ],
            0.6,
            100,
        );
        let got: Vec<(usize, f32)> = out.iter().map(|c| (c.class_id, c.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.7), (0, 0.6)]);
    }

    #[test]
    fn iou_exactly_at_the_threshold_is_kept() {
        // IoU of these two is exactly 0.5.
        let a = c(0, 0.9, [0.0, 0.0, 30.0, 10.0]);
        let b = c(0, 0.8, [10.0, 0.0, 40.0, 10.0]);
        assert_eq!(iou(&a.bbox, &b.bbox), 0.5);
        assert_eq!(nms_classwise(vec![a, b], 0.5, 10).len(), 2);
        assert_eq!(nms_classwise(vec![a, b], 0.49, 10).len(), 1);
    }

    #[test]
    fn ties_keep_the_earlier_candidate() {
        let a = c(3, 0.5, [0.0, 0.0, 10.0, 10.0]);
        let b = c(3, 0.5, [0.5, 0.0, 10.5, 10.0]);
        assert_eq!(nms_classwise(vec![a, b], 0.6, 10), vec![a]);
        assert_eq!(nms_classwise(vec![b, a], 0.6, 10), vec![b]);
    }

    #[test]
    fn nan_and_infinite_candidates_are_dropped_and_zero_area_never_suppresses() {
        let good = c(0, 0.9, [0.0, 0.0, 10.0, 10.0]);
        let out = nms_classwise(
            vec![
                c(0, f32::NAN, [0.0, 0.0, 10.0, 10.0]),
                c(0, 0.95, [f32::NAN, 0.0, 10.0, 10.0]),
                c(0, 0.99, [0.0, 0.0, f32::INFINITY, 10.0]),
                c(0, 0.97, [5.0, 5.0, 5.0, 5.0]),
                good,
            ],
            0.6,
            10,
        );
        assert_eq!(out, vec![c(0, 0.97, [5.0, 5.0, 5.0, 5.0]), good]);
    }

    #[test]
    fn max_det_keeps_the_global_top() {
        let cands: Vec<Candidate> = (0..10).map(|i| c(i, i as f32 / 10.0, [0.0, 0.0, 1.0, 1.0])).collect();
        let out = nms_classwise(cands, 0.6, 3);
        assert_eq!(out.iter().map(|c| c.class_id).collect::<Vec<_>>(), vec![9, 8, 7]);
        assert!(nms_classwise(vec![], 0.6, 3).is_empty());
    }
}
