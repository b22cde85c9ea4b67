//! The shipped SSD-MobileNetV2-COCO's output decoding (TF Object Detection API exporter
//! conventions, `models/PROVENANCE.md` §1): per-anchor class scores above the threshold become
//! candidates for class-wise NMS.

use super::nms::Candidate;

/// Input side (fixed by the model).
pub const SIDE: usize = 300;
/// Score columns per anchor.
pub const CLASSES: usize = 80;
/// Output shapes: `boxes` then `scores`.
pub const OUTPUTS: [[usize; 3]; 2] = [[1, 1917, 4], [1, 1917, CLASSES]];
/// Class-wise NMS IoU threshold (TF OD API exporter).
pub const IOU: f32 = 0.6;

/// Decoding before NMS: every (anchor, class) with a score above `min_score` becomes a
/// candidate, box clipped to [0, 1] (normalised coordinates). One anchor may yield several
/// classes, as in the TF OD API exporter.
pub fn candidates(boxes: &[f32], scores: &[f32], stride: usize, classes: usize, min_score: f32) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (b, s) in boxes.chunks_exact(4).zip(scores.chunks_exact(stride)) {
        for (class_id, &score) in s.iter().take(classes).enumerate() {
            if score > min_score {
                let c = |v: f32| v.clamp(0.0, 1.0);
                out.push(Candidate { class_id, score, bbox: [c(b[0]), c(b[1]), c(b[2]), c(b[3])] });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssd_candidates_keep_every_class_above_threshold_and_clip() {
        let boxes = [-0.1, 0.2, 0.5, 1.2, 0.0, 0.0, 0.1, 0.1];
        let mut scores = vec![0.0f32; 160];
        scores[2] = 0.9; // anchor 0, class 2
        scores[3] = 0.6; // anchor 0, class 3 (same box, second label)
        scores[80 + 5] = 0.5; // anchor 1, class 5: not strictly above 0.5
        let c = candidates(&boxes, &scores, 80, 80, 0.5);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].class_id, 2);
        assert_eq!(c[0].bbox, [0.0, 0.2, 0.5, 1.0]);
        assert_eq!(c[1].class_id, 3);
    }
}
