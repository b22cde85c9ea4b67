//! Around the PP-OCR text recognizer (CTC): the input of one text line (perspective crop of its
//! quad, rotation of tall crops, bucketed width, normalisation) and the greedy CTC decoder,
//! exactly as the reference `ocr_ref.py` (`models/PROVENANCE.md` §3).
//!
//! Every public function accepts any input without panicking: degenerate quads and 1×1 images
//! give an all-zero input, short or empty outputs decode to empty text.

use crate::vision::cv;
use crate::vision::image::RgbImage;
use crate::vision::ocr::detection::TextQuad;

/// Recognizer input height (fixed by the model).
pub const REC_HEIGHT: usize = 48;
/// Recognizer input width buckets: one fixed shape each (a symbolic width runs ~3× slower in
/// tract).
pub const REC_BUCKETS: [usize; 4] = [320, 640, 960, 1280];

/// Recognizer input for one quad: perspective warp of the quad to `w = max(top, bottom edge)` ×
/// `h = max(left, right edge)` (bicubic, border replicate: the reference's `cv2.warpPerspective` flags),
/// rotated 90° counter-clockwise (`np.rot90`) if `h/w >= 1.5`, then `n = ceil(48*w/h)`, bucket
/// `W` = smallest of 320/640/960/1280 that is `>= n` (else 1280), bilinear resize to `min(n, W)`×48, BGR,
/// `v = p/255*2-1`, placed at the left of a zero-filled `[3, 48, W]` tensor.
/// Returns `(W, data)` with `data.len() == 3*48*W`; a degenerate quad or image gives an all-zero tensor.
pub fn rec_input(img: &RgbImage, quad: &TextQuad) -> (usize, Vec<f32>) {
    let Some((crop, cw, ch)) = crop_quad(img, &quad.points) else {
        return (REC_BUCKETS[0], vec![0.0; 3 * REC_HEIGHT * REC_BUCKETS[0]]);
    };
    let need = (REC_HEIGHT as f64 * cw as f64 / ch as f64).ceil();
    let need = if need.is_finite() && need >= 1.0 { need as usize } else { 1 };
    let width = REC_BUCKETS.iter().copied().find(|&b| b >= need).unwrap_or(REC_BUCKETS[3]);
    let rw = need.min(width);
    let resized = cv::resize::resize_linear_u8(&crop, cw, ch, rw, REC_HEIGHT);
    let mut data = vec![0.0f32; 3 * REC_HEIGHT * width];
    let plane = REC_HEIGHT * width;
    for y in 0..REC_HEIGHT {
        for x in 0..rw {
            let i = (y * rw + x) * 3;
            for c in 0..3 {
                let p = resized[i + 2 - c] as f32 / 255.0;
                data[c * plane + y * width + x] = (p - 0.5) / 0.5;
            }
        }
    }
    (width, data)
}

/// Greedy CTC: `probs` is `[steps, classes]` row-major softmax output; argmax per step (first maximum),
/// merge repeats, drop blank 0; index `i` in `1..=dict.len()` → `dict[i-1]`, `dict.len()+1` → `' '`,
/// anything larger → `'?'` (as the reference). Confidence = mean of the kept argmax probabilities (0 if
/// none). Rows missing from a short `probs` are ignored. Returns `(text, confidence)`.
pub fn ctc_greedy(probs: &[f32], steps: usize, classes: usize, dict: &[String]) -> (String, f32) {
    let mut text = String::new();
    if classes == 0 {
        return (text, 0.0);
    }
    let mut sum = 0.0f64;
    let mut kept = 0usize;
    let mut prev = usize::MAX;
    for row in probs.chunks_exact(classes).take(steps) {
        let mut best = 0usize;
        let mut best_p = row[0];
        for (i, &p) in row.iter().enumerate().skip(1) {
            if p > best_p || (best_p.is_nan() && !p.is_nan()) {
                best = i;
                best_p = p;
            }
        }
        if best != prev && best != 0 {
            match best.checked_sub(1).and_then(|i| dict.get(i)) {
                Some(s) => text.push_str(s),
                None if best == dict.len() + 1 => text.push(' '),
                None => text.push('?'),
            }
            sum += best_p as f64;
            kept += 1;
        }
        prev = best;
    }
    let conf = if kept > 0 { (sum / kept as f64) as f32 } else { 0.0 };
    (text, conf)
}

/// Perspective-rectify the quad (and rotate tall crops) → (RGB bytes, width, height).
fn crop_quad(img: &RgbImage, q: &[[f32; 2]; 4]) -> Option<(Vec<u8>, usize, usize)> {
    if !cv::image_ok(img) || q.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return None;
    }
    let d =
        |a: [f32; 2], b: [f32; 2]| ((a[0] as f64 - b[0] as f64).powi(2) + (a[1] as f64 - b[1] as f64).powi(2)).sqrt();
    let w = d(q[0], q[1]).max(d(q[2], q[3]));
    let h = d(q[0], q[3]).max(d(q[1], q[2]));
    // int() truncation as in the reference; a zero side is raised to 1 (OpenCV would warp the whole frame).
    // Sides are capped at the frame diagonal: quads from `db_postprocess` never exceed it, and arbitrary
    // quads must not allocate huge crops.
    let diag = ((img.width as f64).hypot(img.height as f64)).ceil();
    let w = (w.min(diag) as usize).max(1);
    let h = (h.min(diag) as usize).max(1);
    let src = q.map(|p| [p[0] as f64, p[1] as f64]);
    let dst = [[0.0, 0.0], [w as f64, 0.0], [w as f64, h as f64], [0.0, h as f64]];
    // Inverse map (output pixel → source position) directly.
    let m = cv::warp::perspective_transform(&dst, &src)?;
    let crop = cv::warp::warp_perspective_cubic(img, &m, w, h);
    if h as f64 / w as f64 >= 1.5 {
        // np.rot90 (counter-clockwise): out(r, c) = in(c, w-1-r), out is h wide and w tall.
        let mut rot = vec![0u8; w * h * 3];
        for r in 0..w {
            for c in 0..h {
                let s = (c * w + (w - 1 - r)) * 3;
                rot[(r * h + c) * 3..(r * h + c) * 3 + 3].copy_from_slice(&crop[s..s + 3]);
            }
        }
        return Some((rot, h, w));
    }
    Some((crop, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_image(w: usize, h: usize) -> RgbImage {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 200]);
            }
        }
        RgbImage { width: w, height: h, data }
    }

    #[test]
    fn rec_input_axis_aligned() {
        let img = test_image(400, 100);
        // 200 × 40 box → n = ceil(48*200/40) = 240 → bucket 320
        let quad = TextQuad { points: [[100.0, 20.0], [300.0, 20.0], [300.0, 60.0], [100.0, 60.0]], score: 1.0 };
        let (w, t) = rec_input(&img, &quad);
        assert_eq!(w, 320);
        assert_eq!(t.len(), 3 * 48 * 320);
        let plane = 48 * 320;
        // B channel (constant 200) inside the crop, zero padding after column 240
        for y in 0..48 {
            assert!((t[y * 320] - (200.0 / 255.0 * 2.0 - 1.0)).abs() < 1e-6);
            assert!((t[y * 320 + 239] - (200.0 / 255.0 * 2.0 - 1.0)).abs() < 1e-6);
            assert_eq!(t[y * 320 + 240], 0.0);
            assert_eq!(t[2 * plane + y * 320 + 319], 0.0);
        }
        // R channel (= x) increases left to right: leftmost ~ 100, rightmost ~ 299
        let r0 = (t[2 * plane] + 1.0) / 2.0 * 255.0;
        let r1 = (t[2 * plane + 239] + 1.0) / 2.0 * 255.0;
        assert!((r0 - 100.0).abs() <= 1.5 && (r1 - 299.0 % 256.0).abs() > 0.0, "{r0} {r1}");
        // G channel (= y) increases top to bottom
        let g0 = (t[plane] + 1.0) / 2.0 * 255.0;
        let g1 = (t[plane + 47 * 320] + 1.0) / 2.0 * 255.0;
        assert!((g0 - 20.0).abs() <= 1.5 && (g1 - 59.0).abs() <= 1.5, "{g0} {g1}");
        // wide box → larger bucket: 380 × 20 → n = 912 → 960
        let wide = TextQuad { points: [[10.0, 10.0], [390.0, 10.0], [390.0, 30.0], [10.0, 30.0]], score: 1.0 };
        assert_eq!(rec_input(&img, &wide).0, 960);
    }

    #[test]
    fn rec_input_tall_quad_rotates() {
        let img = test_image(100, 300);
        // 20 wide × 200 tall → rotated to 200 × 20 → n = 480 → bucket 640
        let quad = TextQuad { points: [[40.0, 50.0], [60.0, 50.0], [60.0, 250.0], [40.0, 250.0]], score: 1.0 };
        let (w, t) = rec_input(&img, &quad);
        assert_eq!(w, 640);
        let plane = 48 * 640;
        // After np.rot90 (CCW) the crop's left column is the original top row... no: out(r,c) = in(c, w-1-r),
        // so along the output x axis we walk down the original y: G (= y) increases left to right.
        let g_left = (t[plane + 24 * 640] + 1.0) / 2.0 * 255.0;
        let g_right = (t[plane + 24 * 640 + 479] + 1.0) / 2.0 * 255.0;
        assert!((g_left - 50.0).abs() <= 2.0 && (g_right - 249.0).abs() <= 2.0, "{g_left} {g_right}");
        // and the output's top row is the original right column: R (= x) is ~59 at the top, ~40 at the bottom.
        let r_top = (t[2 * plane + 240] + 1.0) / 2.0 * 255.0;
        let r_bot = (t[2 * plane + 47 * 640 + 240] + 1.0) / 2.0 * 255.0;
        assert!((r_top - 59.0).abs() <= 2.0 && (r_bot - 40.0).abs() <= 2.0, "{r_top} {r_bot}");
        assert_eq!(t[480], 0.0);
    }

    #[test]
    fn rec_input_degenerate() {
        let img = test_image(1, 1);
        let q = TextQuad { points: [[0.0, 0.0]; 4], score: 0.0 };
        let (w, t) = rec_input(&img, &q);
        assert_eq!((w, t.len()), (320, 3 * 48 * 320));
        let q = TextQuad { points: [[f32::NAN, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], score: 0.0 };
        assert_eq!(rec_input(&img, &q).1.len(), 3 * 48 * 320);
        let q = TextQuad { points: [[-50.0, -50.0], [1e6, 0.0], [1e6, 3.0], [0.0, 1e6]], score: 0.0 };
        let (w, t) = rec_input(&test_image(8, 8), &q);
        assert_eq!(t.len(), 3 * 48 * w);
        let empty = RgbImage { width: 0, height: 0, data: vec![] };
        assert_eq!(
            rec_input(&empty, &TextQuad { points: [[0.0, 0.0], [9.0, 0.0], [9.0, 9.0], [0.0, 9.0]], score: 0.0 }).0,
            320
        );
    }

    #[test]
    fn ctc_decoding() {
        let dict: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let c = 5; // blank, a, b, c, space
        let row = |i: usize, p: f32| {
            let mut r = vec![(1.0 - p) / 4.0; c];
            r[i] = p;
            r
        };
        // a a _ a b b space c 6(?) blank
        let rows =
            [row(1, 0.9), row(1, 0.8), row(0, 0.9), row(1, 0.7), row(2, 0.6), row(2, 0.9), row(4, 0.5), row(3, 1.0)];
        let probs: Vec<f32> = rows.concat();
        let (t, conf) = ctc_greedy(&probs, rows.len(), c, &dict);
        assert_eq!(t, "aab c");
        let want = (0.9 + 0.7 + 0.6 + 0.5 + 1.0) / 5.0;
        assert!((conf - want).abs() < 1e-6);
        // nothing kept
        let (t, conf) = ctc_greedy(&row(0, 0.9), 1, c, &dict);
        assert_eq!((t.as_str(), conf), ("", 0.0));
        // out-of-dict index → '?'; short buffer and zero classes do not panic
        let (t, _) = ctc_greedy(&[0.0, 0.0, 1.0], 1, 3, &[]);
        assert_eq!(t, "?");
        assert_eq!(ctc_greedy(&[0.1; 7], 5, 5, &dict).0, "");
        assert_eq!(ctc_greedy(&[], 5, 0, &dict), (String::new(), 0.0));
        let (_, conf) = ctc_greedy(&[f32::NAN, f32::NAN, 0.5], 1, 3, &dict);
        assert!((conf - 0.5).abs() < 1e-6);
    }
}
