//! Box geometry shared by every stage that compares boxes (NMS, the tracker, the detect → OCR
//! link): one [`area`], one [`iou`]. A box is `[x1, y1, x2, y2]` in any consistent unit.

/// Area of a box; a swapped box (`x2 < x1` or `y2 < y1`) counts as empty, NaN gives NaN.
pub fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// Intersection over union, in `[0, 1]` and never NaN.
///
/// 0 when either box has zero area, which includes degenerate boxes (`x1 == x2`), swapped boxes
/// (`x2 < x1` or `y2 < y1`: treated as empty rather than re-ordered, since a model that emits them
/// has not found an object) and boxes with NaN or infinite coordinates. For ordinary boxes this is
/// the reference's `inter / max(union, 1e-12)`.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let (aa, ab) = (area(a), area(b));
    if !(aa > 0.0 && ab > 0.0 && aa.is_finite() && ab.is_finite()) {
        return 0.0;
    }
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let v = inter / (aa + ab - inter).max(1e-12);
    if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    }
}
