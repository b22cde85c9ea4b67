//! Non-maximum suppression for detector outputs, shared by the SSD and YOLO paths.
//!
//! Written here rather than borrowed (tract's YOLO example NMS is wrong) so that it matches the
//! reference `detect_ref.py` and the TF Object Detection API exporter exactly: class-wise greedy
//! NMS, highest score first, a box is suppressed only when its IoU with an already kept box of the
//! same class is strictly greater than the threshold. Everything is deterministic (stable sorts,
//! earlier input wins ties) and garbage from a model (NaN, infinities, degenerate boxes) can
//! neither panic nor poison the result.

use std::cmp::Ordering;

pub use crate::vision::geometry::iou;

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

/// Score descending; callers have removed NaN, so `Equal` only means a genuine tie, which a
/// stable sort resolves by input order.
fn by_score_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal)
}

/// Most candidates NMS looks at: the highest-scoring ones (earlier input first among equal
/// scores). A detector's raw output at a low `min_score` can hold 10^5 candidates (SSD: 1917
/// anchors × 80 classes; YOLO: 8400 anchors), and greedy NMS costs up to candidates × kept IoU
/// tests; Ultralytics (`max_nms`) and the TF Object Detection API cap the same way. With the
/// per-class stop below, a frame's NMS costs at most `MAX_NMS_CANDIDATES × max_det` IoU tests
/// whatever the client asks (3·10^5 for SSD's 100, 9·10^5 for YOLO's 300: about a millisecond).
/// At the default scores a frame has far fewer candidates, so the cap changes nothing there.
pub const MAX_NMS_CANDIDATES: usize = 3000;

/// Class-wise greedy NMS, then the global top `max_det` by score.
///
/// Candidates with a non-finite score or coordinate are dropped first, then all but the
/// [`MAX_NMS_CANDIDATES`] best. Per class, candidates are
/// visited by score descending (stable: equal scores keep their input order, so the earlier one
/// wins) and one is kept unless its IoU with an already kept box of the same class is `> iou_thr`;
/// IoU exactly equal to `iou_thr` is kept, as in the reference. Zero-area and swapped boxes have
/// IoU 0 with everything, so (for `iou_thr >= 0`) they never suppress and are never suppressed.
/// Different classes never suppress each other. The kept boxes of all classes are then sorted by
/// score descending (stable) and truncated to `max_det`. A class stops being visited once it
/// has `max_det` kept boxes: any later one would rank below `max_det` boxes of its own class, so
/// it could never be in the result (exact, and it bounds the work).
pub fn nms_classwise(cands: Vec<Candidate>, iou_thr: f32, max_det: usize) -> Vec<Candidate> {
    let mut cands: Vec<Candidate> =
        cands.into_iter().filter(|c| c.score.is_finite() && c.bbox.iter().all(|v| v.is_finite())).collect();
    if cands.len() > MAX_NMS_CANDIDATES {
        // The best by (score desc, input order), in O(n); then back to input order, so the
        // stable sorts below keep "the earlier one wins ties".
        let mut ranked: Vec<(usize, Candidate)> = cands.into_iter().enumerate().collect();
        ranked.select_nth_unstable_by(MAX_NMS_CANDIDATES - 1, |(i, a), (j, b)| {
            by_score_desc(a, b).then_with(|| i.cmp(j))
        });
        ranked.truncate(MAX_NMS_CANDIDATES);
        ranked.sort_unstable_by_key(|(i, _)| *i);
        cands = ranked.into_iter().map(|(_, c)| c).collect();
    }
    // Group by class, then score descending; stable, so ties keep input order.
    cands.sort_by(|a, b| a.class_id.cmp(&b.class_id).then_with(|| by_score_desc(a, b)));
    let mut kept: Vec<Candidate> = Vec::new();
    let mut class_start = 0;
    for c in cands {
        if kept.get(class_start).is_some_and(|k| k.class_id != c.class_id) {
            class_start = kept.len();
        }
        if kept.len() - class_start >= max_det && kept.get(class_start).is_some_and(|k| k.class_id == c.class_id) {
            continue; // this class is full
        }
        // Written as "not suppressed" so that a NaN threshold suppresses nothing.
        if !kept[class_start..].iter().any(|k| iou(&k.bbox, &c.bbox) > iou_thr) {
            kept.push(c);
        }
    }
    // Classes were visited in id order, each in score order: the stable merge sort keeps the
    // input order among equal scores of one class.
    kept.sort_by(by_score_desc);
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
        assert_eq!(iou(&a, &[2.0, 2.0, 4.0, 4.0]), 0.04); // contained
        assert_eq!(iou(&a, &[3.0, 3.0, 3.0, 8.0]), 0.0); // zero width
        assert_eq!(iou(&a, &[3.0, 3.0, 8.0, 3.0]), 0.0); // zero height
        assert_eq!(iou(&[0.0; 4], &[0.0; 4]), 0.0);
        assert_eq!(iou(&a, &[f32::NAN, 0.0, 5.0, 5.0]), 0.0);
        assert_eq!(iou(&[f32::NAN; 4], &[f32::NAN; 4]), 0.0);
        assert_eq!(iou(&a, &[0.0, 0.0, f32::INFINITY, 10.0]), 0.0);
        assert_eq!(iou(&[-f32::INFINITY, 0.0, f32::INFINITY, 1.0], &a), 0.0);
        // Symmetric.
        let b = [3.0, -2.0, 12.5, 7.0];
        assert_eq!(iou(&a, &b), iou(&b, &a));
    }

    #[test]
    fn swapped_box_is_treated_as_empty() {
        let a = [0.0, 0.0, 10.0, 10.0];
        // Both axes swapped: the naive area would be positive ((-10)*(-10)); we say 0.
        assert_eq!(iou(&a, &[10.0, 10.0, 0.0, 0.0]), 0.0);
        assert_eq!(iou(&[10.0, 10.0, 0.0, 0.0], &[10.0, 10.0, 0.0, 0.0]), 0.0);
        assert_eq!(iou(&a, &[10.0, 0.0, 0.0, 10.0]), 0.0); // x swapped only
        let swapped = c(0, 0.99, [10.0, 10.0, 0.0, 0.0]);
        let good = c(0, 0.5, a);
        // Kept (not dropped: its coordinates are finite), and it does not suppress `good`.
        assert_eq!(nms_classwise(vec![swapped, good], 0.5, 10), vec![swapped, good]);
    }

    #[test]
    fn suppresses_overlaps_within_a_class_only() {
        let out = nms_classwise(
            vec![
                c(0, 0.8, [0.0, 0.0, 10.0, 10.0]),
                c(0, 0.9, [1.0, 0.0, 11.0, 10.0]),
                c(1, 0.7, [0.0, 0.0, 10.0, 10.0]),
                c(0, 0.6, [50.0, 50.0, 60.0, 60.0]),
                c(2, 0.65, [1.0, 0.0, 11.0, 10.0]),
            ],
            0.6,
            100,
        );
        let got: Vec<(usize, f32)> = out.iter().map(|c| (c.class_id, c.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.7), (2, 0.65), (0, 0.6)]);
    }

    #[test]
    fn identical_boxes_of_different_classes_all_survive() {
        let b = [0.0, 0.0, 10.0, 10.0];
        let cands: Vec<Candidate> = (0..5).map(|k| c(k, 0.5, b)).collect();
        assert_eq!(nms_classwise(cands.clone(), 0.0, 10), cands);
    }

    #[test]
    fn iou_exactly_at_the_threshold_is_kept() {
        // IoU of these two is exactly 0.5 (intersection 200, union 400).
        let a = c(0, 0.9, [0.0, 0.0, 30.0, 10.0]);
        let b = c(0, 0.8, [10.0, 0.0, 40.0, 10.0]);
        assert_eq!(iou(&a.bbox, &b.bbox), 0.5);
        assert_eq!(nms_classwise(vec![a, b], 0.5, 10), vec![a, b]);
        assert_eq!(nms_classwise(vec![a, b], 0.49, 10), vec![a]);
        // Touching boxes (IoU 0) survive even a zero threshold.
        let d = c(0, 0.7, [30.0, 0.0, 40.0, 10.0]);
        assert_eq!(nms_classwise(vec![a, d], 0.0, 10), vec![a, d]);
    }

    #[test]
    fn suppression_is_greedy_not_transitive() {
        // b overlaps a (suppressed); c overlaps b but not a, so c stays: b was never kept.
        let a = c(0, 0.9, [0.0, 0.0, 10.0, 10.0]);
        let b = c(0, 0.8, [3.0, 0.0, 13.0, 10.0]);
        let d = c(0, 0.7, [10.0, 0.0, 20.0, 10.0]);
        assert_eq!(nms_classwise(vec![d, b, a], 0.5, 10), vec![a, d]);
    }

    #[test]
    fn ties_keep_the_earlier_candidate() {
        let a = c(3, 0.5, [0.0, 0.0, 10.0, 10.0]);
        let b = c(3, 0.5, [0.5, 0.0, 10.5, 10.0]);
        assert_eq!(nms_classwise(vec![a, b], 0.6, 10), vec![a]);
        assert_eq!(nms_classwise(vec![b, a], 0.6, 10), vec![b]);
        // Non-overlapping ties keep input order in the output too, also across classes.
        let p = c(1, 0.5, [0.0, 0.0, 1.0, 1.0]);
        let q = c(0, 0.5, [5.0, 5.0, 6.0, 6.0]);
        let r = c(1, 0.5, [9.0, 9.0, 10.0, 10.0]);
        assert_eq!(nms_classwise(vec![p, r], 0.5, 10), vec![p, r]);
        assert_eq!(nms_classwise(vec![r, p], 0.5, 10), vec![r, p]);
        // Across classes the merged order is by class then input order among equal scores.
        assert_eq!(nms_classwise(vec![p, q, r], 0.5, 10), vec![q, p, r]);
        // Signed zeros are a tie, not an order.
        let z1 = c(0, -0.0, [0.0, 0.0, 1.0, 1.0]);
        let z2 = c(0, 0.0, [5.0, 5.0, 6.0, 6.0]);
        assert_eq!(nms_classwise(vec![z1, z2], 0.5, 10), vec![z1, z2]);
    }

    #[test]
    fn nan_and_infinite_candidates_are_dropped_and_zero_area_never_suppresses() {
        let good = c(0, 0.9, [0.0, 0.0, 10.0, 10.0]);
        let point = c(0, 0.97, [5.0, 5.0, 5.0, 5.0]);
        let out = nms_classwise(
            vec![
                c(0, f32::NAN, [0.0, 0.0, 10.0, 10.0]),
                c(0, 0.95, [f32::NAN, 0.0, 10.0, 10.0]),
                c(0, 0.99, [0.0, 0.0, f32::INFINITY, 10.0]),
                c(0, f32::INFINITY, [0.0, 0.0, 10.0, 10.0]),
                c(0, f32::NEG_INFINITY, [0.0, 0.0, 10.0, 10.0]),
                point,
                good,
            ],
            0.6,
            10,
        );
        assert_eq!(out, vec![point, good]);
        // A zero-area box is never suppressed either, even when it lies inside a kept box.
        let line = c(0, 0.5, [2.0, 2.0, 8.0, 2.0]);
        assert_eq!(nms_classwise(vec![good, line], 0.0, 10), vec![good, line]);
    }

    #[test]
    fn nan_threshold_suppresses_nothing() {
        let a = c(0, 0.9, [0.0, 0.0, 10.0, 10.0]);
        assert_eq!(nms_classwise(vec![a, a], f32::NAN, 10), vec![a, a]);
    }

    #[test]
    fn max_det_keeps_the_global_top() {
        let cands: Vec<Candidate> = (0..10).map(|i| c(i, i as f32 / 10.0, [0.0, 0.0, 1.0, 1.0])).collect();
        let out = nms_classwise(cands.clone(), 0.6, 3);
        assert_eq!(out.iter().map(|c| c.class_id).collect::<Vec<_>>(), vec![9, 8, 7]);
        assert!(nms_classwise(cands.clone(), 0.6, 0).is_empty());
        assert_eq!(nms_classwise(cands, 0.6, 100).len(), 10);
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert!(nms_classwise(vec![], 0.6, 3).is_empty());
        assert!(nms_classwise(vec![c(0, f32::NAN, [0.0; 4])], 0.6, 3).is_empty());
    }

    #[test]
    fn a_flood_of_candidates_is_capped_by_score_and_the_result_is_the_uncapped_one() {
        // 80 classes × 1917 anchors at min_score 0: the SSD's worst case.
        let mut cands = Vec::new();
        for a in 0..1917usize {
            for class_id in 0..80usize {
                let x = (a % 40) as f32 * 10.0;
                let y = (a / 40) as f32 * 10.0;
                // A permutation of 0..n (7919 is prime to n): every score distinct.
                let n = 1917 * 80;
                let score = ((a * 80 + class_id) * 7919 % n) as f32 / n as f32;
                cands.push(c(class_id, score, [x, y, x + 8.0, y + 8.0]));
            }
        }
        let kept = nms_classwise(cands.clone(), 0.6, 100);
        assert_eq!(kept.len(), 100);
        // The same as NMS over only the best MAX_NMS_CANDIDATES (no box overlaps another of its
        // class here, so the best 100 are the best 100 candidates).
        let mut best = cands;
        best.sort_by(by_score_desc);
        best.truncate(100);
        assert_eq!(kept, best);
    }

    #[test]
    fn a_full_class_stops_without_changing_the_answer() {
        // 300 disjoint boxes of class 0, scores descending, max_det 5: the 5 best.
        let cands: Vec<Candidate> = (0..300)
            .map(|i| c(0, 1.0 - i as f32 / 1000.0, [i as f32 * 10.0, 0.0, i as f32 * 10.0 + 5.0, 5.0]))
            .collect();
        let kept = nms_classwise(cands.clone(), 0.5, 5);
        assert_eq!(kept, cands[..5].to_vec());
        // A second class is still visited after the first is full.
        let mut two = cands;
        two.push(c(1, 0.9995, [0.0, 0.0, 5.0, 5.0]));
        let kept = nms_classwise(two, 0.5, 5);
        assert_eq!(kept.iter().filter(|k| k.class_id == 1).count(), 1);
    }
}
