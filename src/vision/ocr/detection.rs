//! Around the PP-OCR text detector (DB): its input (resize, BGR, ImageNet normalisation) and the
//! DB post-process that turns its probability map into text quadrilaterals in frame pixels,
//! exactly as the reference `ocr_ref.py` (PaddleOCR conventions, `models/PROVENANCE.md` §2).
//!
//! Every public function accepts any input without panicking: empty or mis-sized maps, NaN
//! probabilities and degenerate boxes give empty results.

use crate::vision::cv::{self, fcmp};
use crate::vision::image::RgbImage;

/// Binarisation threshold of the probability map.
const DB_THRESH: f32 = 0.2;
/// Minimum mean probability inside a candidate box.
const DB_BOX_THRESH: f64 = 0.4;
/// Unclip (polygon growth) ratio.
const DB_UNCLIP_RATIO: f64 = 1.4;
/// Maximum number of contours examined.
const DB_MAX_CANDIDATES: usize = 1000;
/// Minimum short side of a box before unclip (after unclip: `DB_MIN_SIZE + 2`).
const DB_MIN_SIZE: f32 = 3.0;
/// Detector normalisation, applied to channels in B, G, R order (PaddleOCR convention).
const DET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const DET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Detector input plan for a frame: H, W multiples of 32 per the reference rule
/// (`ratio = min(1, max_side / max(h, w))`; `H = max(32, round(h*ratio/32)*32)`; W likewise; Python's
/// `round`, i.e. ties to even). Returns `(W, H)`.
pub fn det_input_size(frame_w: usize, frame_h: usize, max_side: usize) -> (usize, usize) {
    let long = frame_w.max(frame_h) as f64;
    let ratio = (max_side as f64 / long).min(1.0);
    let side = |s: usize| -> usize {
        let r = (s as f64 * ratio / 32.0).round_ties_even() * 32.0;
        if r.is_finite() && r > 32.0 {
            r as usize
        } else {
            32
        }
    };
    (side(frame_w), side(frame_h))
}

/// Fill `out` (len `3*h*w`, NCHW) with the text detector input: OpenCV `INTER_LINEAR` resize of the whole
/// frame to `w`×`h` (8-bit fixed point, half-pixel centres), channels in B, G, R order,
/// `v = (p/255 - mean[c]) / std[c]` with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) taken
/// in B, G, R order. A mis-sized `out` or an inconsistent image leaves `out` zero-filled.
pub fn det_input(img: &RgbImage, w: usize, h: usize, out: &mut [f32]) {
    out.iter_mut().for_each(|v| *v = 0.0);
    let plane = match w.checked_mul(h) {
        Some(p) if p > 0 && p.checked_mul(3) == Some(out.len()) => p,
        _ => return,
    };
    if !cv::image_ok(img) {
        return;
    }
    let resized = cv::resize::resize_linear_u8(&img.data, img.width, img.height, w, h);
    for (i, px) in resized.chunks_exact(3).enumerate().take(plane) {
        // px is R, G, B; channel 0 of the tensor is B.
        for c in 0..3 {
            let p = px[2 - c] as f32 / 255.0;
            out[c * plane + i] = (p - DET_MEAN[c]) / DET_STD[c];
        }
    }
}

/// A detected text line in frame pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct TextQuad {
    /// Corners clockwise from top-left (x, y).
    pub points: [[f32; 2]; 4],
    /// Mean detector probability inside the (pre-unclip) box.
    pub score: f32,
}

/// DB post-process of the probability map (`map_w*map_h`, row-major) → quads in frame pixels, in reading
/// order (top-to-bottom, then left-to-right within 10 px), exactly as the reference: binarise `> 0.2`,
/// contours, min-area rect (drop short side < 3), box score = mean prob inside (drop < 0.4), unclip 1.4,
/// min-area rect again (drop short side < 5), scale to the frame, round, clip. At most 1000 contours.
pub fn db_postprocess(map: &[f32], map_w: usize, map_h: usize, frame_w: usize, frame_h: usize) -> Vec<TextQuad> {
    match map_w.checked_mul(map_h) {
        Some(n) if n > 0 && n == map.len() => {}
        _ => return Vec::new(),
    }
    let bitmap: Vec<bool> = map.iter().map(|&p| p > DB_THRESH).collect();
    let contours = cv::contours::find_contours(&bitmap, map_w, map_h);
    let scale_x = (frame_w as f64 / map_w as f64) as f32;
    let scale_y = (frame_h as f64 / map_h as f64) as f32;
    let max_x = (map_w as f64 * (frame_w as f64 / map_w as f64)).round_ties_even() as f32;
    let max_y = (map_h as f64 * (frame_h as f64 / map_h as f64)).round_ties_even() as f32;
    let mut out: Vec<TextQuad> = Vec::new();
    for c in contours.iter().take(DB_MAX_CANDIDATES) {
        let pts: Vec<[f32; 2]> = c.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
        let (bx, sside) = mini_box(&pts);
        if sside.is_nan() || sside < DB_MIN_SIZE {
            continue;
        }
        let score = box_score(map, map_w, map_h, &bx);
        // NaN scores (NaN probabilities) are dropped; the reference would keep them.
        if score.is_nan() || score < DB_BOX_THRESH {
            continue;
        }
        let Some(poly) = unclip(&bx, DB_UNCLIP_RATIO) else { continue };
        let pts2: Vec<[f32; 2]> = poly.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
        let (mut b2, sside2) = mini_box(&pts2);
        if sside2.is_nan() || sside2 < DB_MIN_SIZE + 2.0 {
            continue;
        }
        for p in b2.iter_mut() {
            p[0] = (p[0] * scale_x).round_ties_even().clamp(0.0, max_x);
            p[1] = (p[1] * scale_y).round_ties_even().clamp(0.0, max_y);
        }
        out.push(TextQuad { points: b2, score: score as f32 });
    }
    reading_order(&mut out, |q| q.points[0]);
    out
}

/// Sort `items` into the reference's reading order by their first corner (`corner`: the
/// top-left point): a stable sort by (y, x), then its bubble pass that puts boxes whose
/// corners are within 10 px vertically (one line) left to right.
pub fn reading_order<T>(items: &mut [T], corner: impl Fn(&T) -> [f32; 2]) {
    items.sort_by(|a, b| {
        let (a, b) = (corner(a), corner(b));
        fcmp(a[1], b[1]).then_with(|| fcmp(a[0], b[0]))
    });
    for i in 0..items.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            let (a, b) = (corner(&items[j]), corner(&items[j + 1]));
            if (b[1] - a[1]).abs() < 10.0 && b[0] < a[0] {
                items.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

/// Reference `_mini_box`: min-area rect corners ordered clockwise from top-left, and its short side.
pub(crate) fn mini_box(pts: &[[f32; 2]]) -> ([[f32; 2]; 4], f32) {
    let (c, s, a) = cv::min_area_rect::min_area_rect(pts);
    let mut p = cv::min_area_rect::box_points(c, s, a);
    p.sort_by(|u, v| fcmp(u[0], v[0])); // stable, like Python's sorted
    let (i1, i4) = if p[1][1] > p[0][1] { (0, 1) } else { (1, 0) };
    let (i2, i3) = if p[3][1] > p[2][1] { (2, 3) } else { (3, 2) };
    ([p[i1], p[i2], p[i3], p[i4]], s[0].min(s[1]))
}

// ------------------------------------------------------------------------------------------------------
// Box score: mean probability inside the box (cv2.fillPoly mask with LINE_8 edges + cv2.mean)

fn box_score(map: &[f32], w: usize, h: usize, b: &[[f32; 2]; 4]) -> f64 {
    let clampi = |v: f32, hi: usize| -> i64 {
        if v.is_nan() {
            0
        } else {
            (v as f64).clamp(0.0, hi as f64) as i64
        }
    };
    let minx = b.iter().map(|p| p[0]).fold(f32::INFINITY, f32::min);
    let maxx = b.iter().map(|p| p[0]).fold(f32::NEG_INFINITY, f32::max);
    let miny = b.iter().map(|p| p[1]).fold(f32::INFINITY, f32::min);
    let maxy = b.iter().map(|p| p[1]).fold(f32::NEG_INFINITY, f32::max);
    let xmin = clampi(minx.floor(), w - 1);
    let xmax = clampi(maxx.ceil(), w - 1);
    let ymin = clampi(miny.floor(), h - 1);
    let ymax = clampi(maxy.ceil(), h - 1);
    if xmax < xmin || ymax < ymin {
        return 0.0;
    }
    let mw = (xmax - xmin + 1) as usize;
    let mh = (ymax - ymin + 1) as usize;
    // Vertices relative to the crop, truncated toward zero like `astype(np.int32)`.
    let poly: Vec<[i64; 2]> = b
        .iter()
        .map(|p| {
            let t = |v: f32, o: i64| {
                let d = (v as f64 - o as f64).trunc();
                if d.is_finite() {
                    d.clamp(-1e9, 1e9) as i64
                } else {
                    0
                }
            };
            [t(p[0], xmin), t(p[1], ymin)]
        })
        .collect();
    let mask = cv::fill_poly::fill_poly(&poly, mw, mh);
    let (mut sum, mut cnt) = (0.0f64, 0usize);
    for y in 0..mh {
        let row = (ymin as usize + y) * w + xmin as usize;
        for x in 0..mw {
            if mask[y * mw + x] {
                sum += map[row + x] as f64;
                cnt += 1;
            }
        }
    }
    if cnt == 0 {
        0.0
    } else {
        sum / cnt as f64
    }
}

/// Grow the box; returns the integer offset polygon (in the vertex order Clipper's union would output),
/// or `None` when the reference would not get exactly one polygon.
fn unclip(b: &[[f32; 2]; 4], ratio: f64) -> Option<Vec<[i64; 2]>> {
    // cv2.contourArea (double) and cv2.arcLength (float segments summed in double)
    let mut area = 0.0f64;
    let mut len = 0.0f64;
    let mut prev = b[3];
    for &p in b {
        area += prev[0] as f64 * p[1] as f64 - prev[1] as f64 * p[0] as f64;
        let (dx, dy) = (p[0] - prev[0], p[1] - prev[1]);
        len += (dx * dx + dy * dy).sqrt() as f64;
        prev = p;
    }
    let delta = (area * 0.5).abs() * ratio / len;
    if !delta.is_finite() || b.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return None;
    }
    // astype(np.int64): truncation toward zero; AddPath strips consecutive duplicates.
    let mut path: Vec<[i64; 2]> = Vec::with_capacity(4);
    for p in b {
        let q = [p[0].trunc() as i64, p[1].trunc() as i64];
        if path.last() != Some(&q) {
            path.push(q);
        }
    }
    while path.len() > 1 && path.first() == path.last() {
        path.pop();
    }
    if path.len() < 3 {
        return None;
    }
    if cv::clipper::clipper_area(&path) < 0.0 {
        path.reverse();
    }
    let raw = if delta.abs() < 1e-20 { path } else { cv::clipper::offset_round(&path, delta) };
    let poly = cv::clipper::clean_polygon(raw);
    if poly.len() < 3 {
        return None;
    }
    Some(poly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn det_size_cases() {
        assert_eq!(det_input_size(640, 480, 960), (640, 480));
        assert_eq!(det_input_size(1280, 720, 960), (960, 544));
        assert_eq!(det_input_size(1920, 1080, 960), (960, 544));
        assert_eq!(det_input_size(100, 20, 960), (96, 32));
        assert_eq!(det_input_size(1, 1, 960), (32, 32));
        assert_eq!(det_input_size(0, 0, 960), (32, 32));
        assert_eq!(det_input_size(48, 80, 960), (64, 64)); // 1.5 → 2, 2.5 → 2 (ties to even)
        assert_eq!(det_input_size(640, 480, 0), (32, 32));
    }

    #[test]
    fn det_input_identity_and_channels() {
        let img = RgbImage { width: 2, height: 1, data: vec![255, 0, 0, 0, 0, 255] };
        let mut out = vec![0.0; 6];
        det_input(&img, 2, 1, &mut out);
        // channel 0 = B: pixel 0 has B=0, pixel 1 has B=255
        assert!((out[0] - (0.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((out[1] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        // channel 2 = R
        assert!((out[4] - (1.0 - 0.406) / 0.225).abs() < 1e-6);
        assert!((out[5] - (0.0 - 0.406) / 0.225).abs() < 1e-6);
        // wrong length: zero filled, no panic
        let mut bad = vec![1.0; 5];
        det_input(&img, 2, 1, &mut bad);
        assert!(bad.iter().all(|&v| v == 0.0));
        // 1×1 image upscaled
        let one = RgbImage { width: 1, height: 1, data: vec![10, 20, 30] };
        let mut o = vec![0.0; 3 * 32 * 32];
        det_input(&one, 32, 32, &mut o);
        assert!((o[0] - (30.0 / 255.0 - 0.485) / 0.229).abs() < 1e-6);
    }

    #[test]
    fn unclip_rectangle_grows_by_distance() {
        let b = [[10.0, 10.0], [50.0, 10.0], [50.0, 20.0], [10.0, 20.0]];
        let d = 400.0 * 1.4 / 100.0; // 5.6
        let poly = unclip(&b, 1.4).expect("one polygon");
        let pts: Vec<[f32; 2]> = poly.iter().map(|p| [p[0] as f32, p[1] as f32]).collect();
        let (bx, _) = mini_box(&pts);
        // Clipper rounds the offset vertices to integers
        let want = [[10.0 - d, 10.0 - d], [50.0 + d, 10.0 - d], [50.0 + d, 20.0 + d], [10.0 - d, 20.0 + d]];
        for (p, q) in bx.iter().zip(want.iter()) {
            assert!((p[0] as f64 - q[0]).abs() <= 0.6 && (p[1] as f64 - q[1]).abs() <= 0.6, "{bx:?}");
        }
    }

    fn synth_map(w: usize, h: usize, rects: &[(usize, usize, usize, usize, f32)]) -> Vec<f32> {
        let mut m = vec![0.0f32; w * h];
        for &(x0, y0, x1, y1, p) in rects {
            for y in y0..=y1 {
                for x in x0..=x1 {
                    m[y * w + x] = p;
                }
            }
        }
        m
    }

    #[test]
    fn db_two_rects_sorted_and_grown() {
        let (w, h) = (128, 96);
        let map = synth_map(
            w,
            h,
            &[
                (60, 50, 109, 59, 0.9), // lower line
                (10, 10, 49, 21, 0.9),  // upper line
                (80, 10, 99, 25, 0.3),  // weak blob: score 0.3 < 0.4
                (5, 80, 6, 81, 0.9),    // tiny blob: short side 1 < 3
            ],
        );
        let q = db_postprocess(&map, w, h, w, h);
        assert_eq!(q.len(), 2, "{q:?}");
        // Box of the upper rect: contour hull 10..49 × 10..21 → 39 × 11, distance = area*1.4/perimeter.
        for (quad, (x0, y0, x1, y1)) in q.iter().zip([(10.0, 10.0, 49.0, 21.0), (60.0, 50.0, 109.0, 59.0)]) {
            let (bw, bh) = (x1 - x0, y1 - y0);
            let d: f64 = bw * bh * 1.4 / (2.0 * (bw + bh));
            let want = [[x0 - d, y0 - d], [x1 + d, y0 - d], [x1 + d, y1 + d], [x0 - d, y1 + d]];
            for (p, e) in quad.points.iter().zip(want.iter()) {
                assert!((p[0] as f64 - e[0]).abs() <= 1.0 && (p[1] as f64 - e[1]).abs() <= 1.0, "{quad:?} {want:?}");
            }
            assert!((quad.score - 0.9).abs() < 1e-6);
        }
        // scaled to a frame twice as large
        let q2 = db_postprocess(&map, w, h, 2 * w, 2 * h);
        assert_eq!(q2.len(), 2);
        assert!((q2[0].points[2][0] - 2.0 * q[0].points[2][0]).abs() <= 1.0);
    }

    #[test]
    fn db_reading_order_same_line() {
        let (w, h) = (128, 64);
        // Two boxes on one line, the right one 3 px higher: left one must come first.
        let map = synth_map(w, h, &[(70, 17, 110, 27, 0.9), (10, 20, 50, 30, 0.9)]);
        let q = db_postprocess(&map, w, h, w, h);
        assert_eq!(q.len(), 2);
        assert!(q[0].points[0][0] < q[1].points[0][0]);
    }

    #[test]
    fn db_garbage_inputs() {
        assert!(db_postprocess(&[], 0, 0, 640, 480).is_empty());
        assert!(db_postprocess(&[0.9], 1, 1, 1, 1).is_empty());
        assert!(db_postprocess(&[0.9; 10], 4, 4, 1, 1).is_empty());
        let mut map = synth_map(64, 64, &[(0, 0, 63, 63, 0.9)]);
        map[100] = f32::NAN;
        map[200] = f32::INFINITY;
        let q = db_postprocess(&map, 64, 64, 64, 64);
        assert!(q.len() <= 1);
        let nan = vec![f32::NAN; 64 * 64];
        assert!(db_postprocess(&nan, 64, 64, 64, 64).is_empty());
        // full map: box clipped to the frame
        let full = vec![0.9f32; 32 * 32];
        let q = db_postprocess(&full, 32, 32, 32, 32);
        assert_eq!(q.len(), 1);
        assert!(q[0].points.iter().all(|p| (0.0..=32.0).contains(&p[0]) && (0.0..=32.0).contains(&p[1])));
    }

    #[test]
    fn db_random_maps_do_not_panic() {
        let mut s = 12345u64;
        for _ in 0..30 {
            let (w, h) = (40, 30);
            let map: Vec<f32> = (0..w * h)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((s >> 33) % 100) as f32 / 100.0
                })
                .collect();
            for q in db_postprocess(&map, w, h, 400, 300) {
                assert!(q.points.iter().all(|p| (0.0..=400.0).contains(&p[0]) && (0.0..=300.0).contains(&p[1])));
            }
        }
    }
}
