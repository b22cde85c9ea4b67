//! Pre- and post-processing around the PP-OCRv6 tiny text detector (DB) and recognizer (CTC).
//!
//! The models themselves run in tract elsewhere; this module holds everything around them, in pure Rust:
//! the detector input (resize + BGR + ImageNet normalisation), the DB post-process that turns the
//! probability map into text quadrilaterals, the recognizer input (perspective crop of one quad, bucketed
//! width) and the greedy CTC decoder.
//!
//! Why it reimplements OpenCV/pyclipper pieces instead of approximating them: the reference pipeline
//! (`ocr_ref.py`, PaddleOCR conventions, see `models/PROVENANCE.md` §2–3) truncates and rounds box corners
//! in several places (`astype(int)`, `floor`/`ceil`, `np.round`), so a box that is off by a float ulp can
//! move by a whole pixel. To return the same boxes as the reference, the steps that feed those roundings
//! are ported closely: `findContours` (Suzuki–Abe border following, `RETR_LIST`, `CHAIN_APPROX_SIMPLE`),
//! `convexHull` (Sklansky) + `minAreaRect` (rotating calipers in f32) + `boxPoints`, `fillPoly`-style
//! masks for the box score, Clipper's round-join offset ("unclip"), and OpenCV's fixed-point bilinear
//! `resize` / bicubic `warpPerspective` for 8-bit images.
//!
//! Every public function accepts any input without panicking: empty or mis-sized maps, 1×1 images, NaN
//! probabilities and degenerate quads give empty / zero results instead.

use crate::image::RgbImage;
use std::cmp::Ordering;

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
/// Recognizer input height and width buckets.
const REC_H: usize = 48;
const REC_BUCKETS: [usize; 4] = [320, 640, 960, 1280];

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
    if !image_ok(img) {
        return;
    }
    let resized = resize_linear_u8(&img.data, img.width, img.height, w, h);
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
    let contours = find_contours(&bitmap, map_w, map_h);
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
    // Reading order: stable sort by the first corner (y, x), then the reference's 10 px bubble pass.
    out.sort_by(|a, b| fcmp(a.points[0][1], b.points[0][1]).then_with(|| fcmp(a.points[0][0], b.points[0][0])));
    for i in 0..out.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            let (a, b) = (&out[j].points[0], &out[j + 1].points[0]);
            if (b[1] - a[1]).abs() < 10.0 && b[0] < a[0] {
                out.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
    out
}

/// Recognizer input for one quad: perspective warp of the quad to `w = max(top, bottom edge)` ×
/// `h = max(left, right edge)` (bicubic, border replicate: the reference's `cv2.warpPerspective` flags),
/// rotated 90° counter-clockwise (`np.rot90`) if `h/w >= 1.5`, then `n = ceil(48*w/h)`, bucket
/// `W` = smallest of 320/640/960/1280 that is `>= n` (else 1280), bilinear resize to `min(n, W)`×48, BGR,
/// `v = p/255*2-1`, placed at the left of a zero-filled `[3, 48, W]` tensor.
/// Returns `(W, data)` with `data.len() == 3*48*W`; a degenerate quad or image gives an all-zero tensor.
pub fn rec_input(img: &RgbImage, quad: &TextQuad) -> (usize, Vec<f32>) {
    let Some((crop, cw, ch)) = crop_quad(img, &quad.points) else {
        return (REC_BUCKETS[0], vec![0.0; 3 * REC_H * REC_BUCKETS[0]]);
    };
    let need = (REC_H as f64 * cw as f64 / ch as f64).ceil();
    let need = if need.is_finite() && need >= 1.0 { need as usize } else { 1 };
    let width = REC_BUCKETS.iter().copied().find(|&b| b >= need).unwrap_or(REC_BUCKETS[3]);
    let rw = need.min(width);
    let resized = resize_linear_u8(&crop, cw, ch, rw, REC_H);
    let mut data = vec![0.0f32; 3 * REC_H * width];
    let plane = REC_H * width;
    for y in 0..REC_H {
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

// ------------------------------------------------------------------------------------------------------
// Small helpers

/// Total order on f32 for sorting (NaN last, -0 == +0 like Python's comparison).
fn fcmp(a: f32, b: f32) -> Ordering {
    (a + 0.0).total_cmp(&(b + 0.0))
}

fn image_ok(img: &RgbImage) -> bool {
    img.width > 0
        && img.height > 0
        && img.width.checked_mul(img.height).and_then(|n| n.checked_mul(3)).is_some_and(|n| n <= img.data.len())
}

fn sign_f64(v: f64) -> i32 {
    (v > 0.0) as i32 - (v < 0.0) as i32
}

// ------------------------------------------------------------------------------------------------------
// OpenCV-compatible 8-bit resize (INTER_LINEAR, with its exact-2× INTER_AREA shortcut)

const RESIZE_COEF_BITS: u32 = 11;
const RESIZE_COEF_SCALE: f32 = (1 << RESIZE_COEF_BITS) as f32;

/// Per output index: source index and the two fixed-point weights, OpenCV `resize` style.
fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, i32, i32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            f -= s as f32;
            if s < 0 {
                f = 0.0;
                s = 0;
            }
            if s >= src as i64 - 1 {
                f = 0.0;
                s = src as i64 - 1;
            }
            let a0 = ((1.0 - f) * RESIZE_COEF_SCALE).round_ties_even() as i32;
            let a1 = (f * RESIZE_COEF_SCALE).round_ties_even() as i32;
            let s = s.max(0) as usize;
            (s, (s + 1).min(src - 1), a0, a1)
        })
        .collect()
}

/// Resize an interleaved 3-channel image like `cv2.resize(..., interpolation=cv2.INTER_LINEAR)`.
/// `src` must hold `sw*sh*3` bytes and all sizes must be > 0 (otherwise an all-zero image is returned).
fn resize_linear_u8(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh * 3];
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 || src.len() < sw * sh * 3 {
        return out;
    }
    if sw == dw && sh == dh {
        out.copy_from_slice(&src[..sw * sh * 3]);
        return out;
    }
    if sw == 2 * dw && sh == 2 * dh {
        // OpenCV switches INTER_LINEAR to INTER_AREA for an exact 2× shrink: mean of each 2×2 block.
        for y in 0..dh {
            for x in 0..dw {
                for c in 0..3 {
                    let at = |yy: usize, xx: usize| src[(yy * sw + xx) * 3 + c] as u32;
                    let s = at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1);
                    out[(y * dw + x) * 3 + c] = ((s + 2) >> 2) as u8;
                }
            }
        }
        return out;
    }
    let xt = linear_taps(sw, dw);
    let yt = linear_taps(sh, dh);
    // Horizontal pass per source row (cached for the two rows in use).
    let hrow = |y: usize, buf: &mut Vec<i32>| {
        buf.clear();
        let row = &src[y * sw * 3..(y + 1) * sw * 3];
        for &(s0, s1, a0, a1) in &xt {
            for c in 0..3 {
                buf.push(row[s0 * 3 + c] as i32 * a0 + row[s1 * 3 + c] as i32 * a1);
            }
        }
    };
    let (mut r0, mut r1) = (Vec::with_capacity(dw * 3), Vec::with_capacity(dw * 3));
    let (mut k0, mut k1) = (usize::MAX, usize::MAX);
    for (dy, &(s0, s1, b0, b1)) in yt.iter().enumerate() {
        if k0 != s0 {
            if k1 == s0 {
                std::mem::swap(&mut r0, &mut r1);
                k1 = usize::MAX;
            } else {
                hrow(s0, &mut r0);
            }
            k0 = s0;
        }
        if k1 != s1 {
            hrow(s1, &mut r1);
            k1 = s1;
        }
        let dst = &mut out[dy * dw * 3..(dy + 1) * dw * 3];
        for (i, d) in dst.iter_mut().enumerate() {
            // OpenCV's SIMD vertical pass (VResizeLinearVec_32s8u): >>4, mulhi, +2 >>2.
            let v = (((r0[i] >> 4) * b0) >> 16) + (((r1[i] >> 4) * b1) >> 16);
            *d = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------------
// Contours: OpenCV findContours (Suzuki–Abe), RETR_LIST, CHAIN_APPROX_SIMPLE

const CODE_DELTAS: [[i32; 2]; 8] = [[1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1]];

/// All borders (outer borders and hole borders) of the 8-connected foreground of `bitmap` (`w*h`),
/// as pixel-centre polygons with collinear runs compressed, in OpenCV's output order.
fn find_contours(bitmap: &[bool], w: usize, h: usize) -> Vec<Vec<[i32; 2]>> {
    let mut contours = Vec::new();
    if w == 0 || h == 0 || bitmap.len() != w * h {
        return contours;
    }
    // One-pixel zero frame, like OpenCV (so borders touching the image edge are traced).
    let pw = w + 2;
    let ph = h + 2;
    let mut img = vec![0i8; pw * ph];
    for y in 0..h {
        for x in 0..w {
            if bitmap[y * w + x] {
                img[(y + 1) * pw + x + 1] = 1;
            }
        }
    }
    for y in 1..ph - 1 {
        let row = y * pw;
        let mut prev: i8 = 0;
        let mut x = 1;
        while x < pw - 1 {
            let mut p = img[row + x];
            while p == prev {
                x += 1;
                if x >= pw - 1 {
                    break;
                }
                p = img[row + x];
            }
            if x >= pw - 1 {
                break;
            }
            let is_hole = if prev == 0 && p == 1 {
                false
            } else if p == 0 && prev >= 1 {
                true
            } else {
                prev = p;
                x += 1;
                continue;
            };
            let ox = x - is_hole as usize;
            let c = fetch_contour(&mut img, pw, row + ox, [ox as i32 - 1, y as i32 - 1], is_hole);
            contours.push(c);
            prev = img[row + x];
            x += 1;
        }
    }
    contours.reverse();
    contours
}

/// Follow one border starting at padded index `i0` (OpenCV `icvFetchContour`, approx SIMPLE).
fn fetch_contour(img: &mut [i8], step: usize, i0: usize, mut pt: [i32; 2], hole: bool) -> Vec<[i32; 2]> {
    const NBD: i8 = 2;
    const RIGHT: i8 = NBD | -128;
    let st = step as isize;
    let d8 = [1, 1 - st, -st, -st - 1, -1, st - 1, st, st + 1];
    let delta = |s: usize| d8[s & 7];
    let at = |i: usize, d: isize| i.wrapping_add_signed(d);
    let mut out = Vec::new();
    let s_end0 = if hole { 0usize } else { 4 };
    let mut s = s_end0;
    let mut i1;
    loop {
        s = (s + 7) & 7;
        i1 = at(i0, delta(s));
        if img.get(i1).copied().unwrap_or(0) != 0 || s == s_end0 {
            break;
        }
    }
    if s == s_end0 {
        if let Some(v) = img.get_mut(i0) {
            *v = RIGHT;
        }
        out.push(pt);
        return out;
    }
    let mut i3 = i0;
    let mut prev_s = s ^ 4;
    // The border is closed, so the walk ends; the cap only guards against a logic error.
    let mut guard = img.len() * 8 + 16;
    loop {
        let s_end = s;
        let mut i4 = i3;
        while s < 15 {
            s += 1;
            i4 = at(i3, delta(s));
            if img.get(i4).copied().unwrap_or(0) != 0 {
                break;
            }
        }
        s &= 7;
        if let Some(v) = img.get_mut(i3) {
            if s.wrapping_sub(1) < s_end {
                *v = RIGHT;
            } else if *v == 1 {
                *v = NBD;
            }
        }
        if s != prev_s {
            out.push(pt);
            prev_s = s;
        }
        pt[0] += CODE_DELTAS[s][0];
        pt[1] += CODE_DELTAS[s][1];
        guard -= 1;
        if (i4 == i0 && i3 == i1) || guard == 0 {
            break;
        }
        i3 = i4;
        s = (s + 4) & 7;
    }
    out
}

// ------------------------------------------------------------------------------------------------------
// Convex hull (OpenCV Sklansky, clockwise) + minAreaRect (rotating calipers, f32) + boxPoints

fn sklansky(ptr: &[usize], pts: &[[f32; 2]], start: usize, end: usize, nsign: i32, sign2: i32) -> Vec<usize> {
    let p = |i: isize| pts[ptr[i as usize]];
    let (start, end) = (start as isize, end as isize);
    let incr: isize = if end > start { 1 } else { -1 };
    if start == end || p(start) == p(end) {
        return vec![start as usize];
    }
    let (mut pprev, mut pcur, mut pnext) = (start, start + incr, start + 2 * incr);
    let mut stack: Vec<isize> = vec![pprev, pcur, pnext];
    let mut size = 3usize;
    let after = end + incr;
    let set = |stack: &mut Vec<isize>, i: usize, v: isize| {
        if i < stack.len() {
            stack[i] = v;
        } else {
            stack.push(v);
        }
    };
    while pnext != after {
        let (c, n) = (p(pcur), p(pnext));
        let by = n[1] - c[1];
        if sign_f64(by as f64) != nsign {
            let pv = p(pprev);
            let ax = c[0] - pv[0];
            let bx = n[0] - c[0];
            let ay = c[1] - pv[1];
            let convexity = ay as f64 * bx as f64 - ax as f64 * by as f64;
            if sign_f64(convexity) == sign2 && (ax != 0.0 || ay != 0.0) {
                pprev = pcur;
                pcur = pnext;
                pnext += incr;
                set(&mut stack, size, pnext);
                size += 1;
            } else if pprev == start {
                pcur = pnext;
                stack[1] = pcur;
                pnext += incr;
                stack[2] = pnext;
            } else {
                stack[size - 2] = pnext;
                pcur = pprev;
                pprev = stack[size.saturating_sub(4)];
                size -= 1;
            }
        } else {
            pnext += incr;
            stack[size - 1] = pnext;
        }
    }
    stack.truncate(size - 1);
    stack.into_iter().map(|v| v as usize).collect()
}

/// Convex hull vertices in OpenCV's `convexHull(points, clockwise=true)` order.
fn convex_hull(pts: &[[f32; 2]]) -> Vec<[f32; 2]> {
    let total = pts.len();
    if total == 0 || pts.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
        return Vec::new();
    }
    let mut ptr: Vec<usize> = (0..total).collect();
    ptr.sort_by(|&a, &b| fcmp(pts[a][0], pts[b][0]).then(fcmp(pts[a][1], pts[b][1])).then(a.cmp(&b)));
    let (mut miny, mut maxy) = (0usize, 0usize);
    for i in 1..total {
        let y = pts[ptr[i]][1];
        if pts[ptr[miny]][1] > y {
            miny = i;
        }
        if pts[ptr[maxy]][1] < y {
            maxy = i;
        }
    }
    let mut hull: Vec<usize> = Vec::new();
    if pts[ptr[0]] == pts[ptr[total - 1]] {
        hull.push(ptr[0]);
    } else {
        let tl = sklansky(&ptr, pts, 0, maxy, -1, 1);
        let tr = sklansky(&ptr, pts, total - 1, maxy, -1, -1);
        for &i in &tl[..tl.len() - 1] {
            hull.push(ptr[i]);
        }
        for i in (1..tr.len()).rev() {
            hull.push(ptr[tr[i]]);
        }
        let stop = if tr.len() > 2 {
            Some(tr[1])
        } else if tl.len() > 2 {
            Some(tl[tl.len() - 2])
        } else {
            None
        };
        let bl0 = sklansky(&ptr, pts, 0, miny, 1, -1);
        let br0 = sklansky(&ptr, pts, total - 1, miny, 1, 1);
        // clockwise: swap the lower halves
        let (mut bl, mut br) = (br0, bl0);
        if let Some(stop) = stop {
            let check = if bl.len() > 2 {
                Some(bl[1])
            } else if bl.len() + br.len() > 2 {
                br.get(2 - bl.len()).copied()
            } else {
                None
            };
            if let Some(check) = check {
                if check == stop || pts[ptr[check]] == pts[ptr[stop]] {
                    bl.truncate(2);
                    br.truncate(2);
                }
            }
        }
        for &i in &bl[..bl.len() - 1] {
            hull.push(ptr[i]);
        }
        for i in (1..br.len()).rev() {
            hull.push(ptr[br[i]]);
        }
        cyclic_shift(&mut hull);
    }
    hull.into_iter().map(|i| pts[i]).collect()
}

/// OpenCV's "make the hull indices an ascending or descending sequence by a cyclic shift".
fn cyclic_shift(h: &mut Vec<usize>) {
    let n = h.len();
    if n < 3 {
        return;
    }
    let (mut min_i, mut max_i, mut lt) = (0usize, 0usize, 0usize);
    for i in 1..n {
        let idx = h[i];
        lt += (h[i - 1] < idx) as usize;
        if lt > 1 && lt + 2 <= i {
            break;
        }
        if idx < h[min_i] {
            min_i = i;
        }
        if idx > h[max_i] {
            max_i = i;
        }
    }
    let mm = min_i.abs_diff(max_i);
    if (mm == 1 || mm == n - 1) && (lt <= 1 || lt + 2 >= n) {
        let asc = (max_i + 1) % n == min_i;
        let i0 = if asc { min_i } else { max_i };
        if i0 > 0 {
            let mut tmp = Vec::with_capacity(n);
            let mut j = i0;
            for i in 0..n {
                let cur = h[j];
                tmp.push(cur);
                let nj = if j + 1 < n { j + 1 } else { 0 };
                if i < n - 1 && (asc != (cur < h[nj])) {
                    return;
                }
                j = nj;
            }
            *h = tmp;
        }
    }
}

/// `cv2.minAreaRect`: (centre, (width, height), angle in degrees), all f32 like OpenCV.
fn min_area_rect(pts: &[[f32; 2]]) -> ([f32; 2], [f32; 2], f32) {
    let hull = convex_hull(pts);
    let n = hull.len();
    let (center, size, angle) = if n > 2 {
        match rotating_calipers(&hull) {
            Some(o) => {
                let c = [o[0] + (o[2] + o[4]) * 0.5, o[1] + (o[3] + o[5]) * 0.5];
                let w = (o[2] as f64 * o[2] as f64 + o[3] as f64 * o[3] as f64).sqrt() as f32;
                let h = (o[4] as f64 * o[4] as f64 + o[5] as f64 * o[5] as f64).sqrt() as f32;
                (c, [w, h], (o[3] as f64).atan2(o[2] as f64) as f32)
            }
            None => ([0.0; 2], [0.0; 2], 0.0),
        }
    } else if n == 2 {
        let (a, b) = (hull[0], hull[1]);
        let dx = (b[0] - a[0]) as f64;
        let dy = (b[1] - a[1]) as f64;
        ([(a[0] + b[0]) * 0.5, (a[1] + b[1]) * 0.5], [(dx * dx + dy * dy).sqrt() as f32, 0.0], dy.atan2(dx) as f32)
    } else if n == 1 {
        (hull[0], [0.0; 2], 0.0)
    } else {
        ([0.0; 2], [0.0; 2], 0.0)
    };
    (center, size, (angle as f64 * 180.0 / std::f64::consts::PI) as f32)
}

/// OpenCV `rotatingCalipers(..., CALIPERS_MINAREARECT)`: corner, side vector 1, side vector 2.
fn rotating_calipers(p: &[[f32; 2]]) -> Option<[f32; 6]> {
    let n = p.len();
    let mut vect = vec![[0f32; 2]; n];
    let mut inv = vec![0f32; n];
    let (mut left, mut bottom, mut right, mut top) = (0usize, 0usize, 0usize, 0usize);
    let mut pt0 = p[0];
    let (mut left_x, mut right_x, mut top_y, mut bottom_y) = (pt0[0], pt0[0], pt0[1], pt0[1]);
    for i in 0..n {
        if pt0[0] < left_x {
            left_x = pt0[0];
            left = i;
        }
        if pt0[0] > right_x {
            right_x = pt0[0];
            right = i;
        }
        if pt0[1] > top_y {
            top_y = pt0[1];
            top = i;
        }
        if pt0[1] < bottom_y {
            bottom_y = pt0[1];
            bottom = i;
        }
        let pt = p[if i + 1 < n { i + 1 } else { 0 }];
        let dx = (pt[0] - pt0[0]) as f64;
        let dy = (pt[1] - pt0[1]) as f64;
        vect[i] = [dx as f32, dy as f32];
        inv[i] = (1.0 / (dx * dx + dy * dy).sqrt()) as f32;
        pt0 = pt;
    }
    let mut orientation = 0f32;
    {
        let (mut ax, mut ay) = (vect[n - 1][0] as f64, vect[n - 1][1] as f64);
        for v in &vect {
            let (bx, by) = (v[0] as f64, v[1] as f64);
            let convexity = ax * by - ay * bx;
            if convexity != 0.0 {
                orientation = if convexity > 0.0 { 1.0 } else { -1.0 };
                break;
            }
            ax = bx;
            ay = by;
        }
    }
    if orientation == 0.0 {
        return None;
    }
    let mut base_a = orientation;
    let mut base_b = 0f32;
    let mut seq = [bottom, right, top, left];
    let mut minarea = f32::MAX;
    let mut best: Option<(usize, f32, f32, f32, f32, usize)> = None;
    for _ in 0..n {
        let dp = [
            base_a * vect[seq[0]][0] + base_b * vect[seq[0]][1],
            -base_b * vect[seq[1]][0] + base_a * vect[seq[1]][1],
            -base_a * vect[seq[2]][0] - base_b * vect[seq[2]][1],
            base_b * vect[seq[3]][0] - base_a * vect[seq[3]][1],
        ];
        let mut maxcos = dp[0] * inv[seq[0]];
        let mut main = 0usize;
        for i in 1..4 {
            let c = dp[i] * inv[seq[i]];
            if c > maxcos {
                main = i;
                maxcos = c;
            }
        }
        let pi = seq[main];
        let lx = vect[pi][0] * inv[pi];
        let ly = vect[pi][1] * inv[pi];
        (base_a, base_b) = match main {
            0 => (lx, ly),
            1 => (ly, -lx),
            2 => (-lx, -ly),
            _ => (-ly, lx),
        };
        seq[main] += 1;
        if seq[main] == n {
            seq[main] = 0;
        }
        let dx = p[seq[1]][0] - p[seq[3]][0];
        let dy = p[seq[1]][1] - p[seq[3]][1];
        let width = dx * base_a + dy * base_b;
        let dx = p[seq[2]][0] - p[seq[0]][0];
        let dy = p[seq[2]][1] - p[seq[0]][1];
        let height = -dx * base_b + dy * base_a;
        let area = width * height;
        if area <= minarea {
            minarea = area;
            best = Some((seq[3], base_a, width, base_b, height, seq[0]));
        }
    }
    let (l, a, width, b, height, bo) = best?;
    let (a1, b1, a2, b2) = (a, b, -b, a);
    let c1 = a1 * p[l][0] + p[l][1] * b1;
    let c2 = a2 * p[bo][0] + p[bo][1] * b2;
    let idet = 1.0f32 / (a1 * b2 - a2 * b1);
    let px = (c1 * b2 - c2 * b1) * idet;
    let py = (a1 * c2 - a2 * c1) * idet;
    Some([px, py, a1 * width, b1 * width, a2 * height, b2 * height])
}

/// `cv2.boxPoints` (OpenCV `RotatedRect::points`).
fn box_points(center: [f32; 2], size: [f32; 2], angle: f32) -> [[f32; 2]; 4] {
    let ang = angle as f64 * std::f64::consts::PI / 180.0;
    let b = ang.cos() as f32 * 0.5;
    let a = ang.sin() as f32 * 0.5;
    let p0 = [center[0] - a * size[1] - b * size[0], center[1] + b * size[1] - a * size[0]];
    let p1 = [center[0] + a * size[1] - b * size[0], center[1] - b * size[1] - a * size[0]];
    let p2 = [2.0 * center[0] - p0[0], 2.0 * center[1] - p0[1]];
    let p3 = [2.0 * center[0] - p1[0], 2.0 * center[1] - p1[1]];
    [p0, p1, p2, p3]
}

/// Reference `_mini_box`: min-area rect corners ordered clockwise from top-left, and its short side.
fn mini_box(pts: &[[f32; 2]]) -> ([[f32; 2]; 4], f32) {
    let (c, s, a) = min_area_rect(pts);
    let mut p = box_points(c, s, a);
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
    let mask = fill_poly(&poly, mw, mh);
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

/// `cv2.fillPoly(mask, [poly], 1)` with the default LINE_8: polygon outline (Bresenham) + scanline fill.
fn fill_poly(poly: &[[i64; 2]], w: usize, h: usize) -> Vec<bool> {
    const SHIFT: u32 = 16;
    let mut mask = vec![false; w * h];
    let mut set = |x: i64, y: i64| {
        if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
            mask[y as usize * w + x as usize] = true;
        }
    };
    let n = poly.len();
    // edges: (y0, y1, x at y0 in 16.16, dx per row)
    let mut edges: Vec<(i64, i64, i64, i64)> = Vec::new();
    for i in 0..n {
        let p0 = poly[(i + n - 1) % n];
        let p1 = poly[i];
        line8(p0, p1, &mut set);
        if p0[1] == p1[1] {
            continue;
        }
        let x0 = (p0[0] << SHIFT) + (1 << (SHIFT - 1));
        let x1 = (p1[0] << SHIFT) + (1 << (SHIFT - 1));
        let dx = (x1 - x0) / (p1[1] - p0[1]);
        if p0[1] < p1[1] {
            edges.push((p0[1], p1[1], x0, dx));
        } else {
            edges.push((p1[1], p0[1], x1, dx));
        }
    }
    let ymin = edges.iter().map(|e| e.0).min().unwrap_or(0).max(0);
    let ymax = edges.iter().map(|e| e.1).max().unwrap_or(0).min(h as i64);
    let mut xs: Vec<i64> = Vec::new();
    for y in ymin..ymax {
        xs.clear();
        for e in &edges {
            if e.0 <= y && y < e.1 {
                xs.push(e.2 + (y - e.0) * e.3);
            }
        }
        xs.sort_unstable();
        for pair in xs.chunks_exact(2) {
            let (x1, x2) = ((pair[0] >> SHIFT).max(0), (pair[1] >> SHIFT).min(w as i64 - 1));
            for x in x1..=x2 {
                set(x, y);
            }
        }
    }
    mask
}

/// OpenCV `LineIterator` with 8-connectivity, left to right.
fn line8(mut a: [i64; 2], mut b: [i64; 2], set: &mut impl FnMut(i64, i64)) {
    if a[0] > b[0] {
        std::mem::swap(&mut a, &mut b);
    }
    let dx = b[0] - a[0];
    let dy = (b[1] - a[1]).abs();
    let sy = if b[1] < a[1] { -1 } else { 1 };
    let (major_x, dmaj, dmin) = if dy > dx { (false, dy, dx) } else { (true, dx, dy) };
    let mut err = dmaj - (dmin + dmin);
    let (mut x, mut y) = (a[0], a[1]);
    for _ in 0..=dmaj.min(1 << 20) {
        set(x, y);
        let minor = err < 0;
        err += -(dmin + dmin) + if minor { dmaj + dmaj } else { 0 };
        if major_x {
            x += 1;
            if minor {
                y += sy;
            }
        } else {
            y += sy;
            if minor {
                x += 1;
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------------
// Unclip: pyclipper PyclipperOffset(JT_ROUND, ET_CLOSEDPOLYGON).Execute(area * ratio / perimeter)

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
    if clipper_area(&path) < 0.0 {
        path.reverse();
    }
    let raw = if delta.abs() < 1e-20 { path } else { offset_round(&path, delta) };
    let poly = clean_polygon(raw);
    if poly.len() < 3 {
        return None;
    }
    Some(poly)
}

fn clipper_area(p: &[[i64; 2]]) -> f64 {
    let n = p.len();
    let mut a = 0.0;
    let mut j = n - 1;
    for i in 0..n {
        a += (p[j][0] as f64 + p[i][0] as f64) * (p[j][1] as f64 - p[i][1] as f64);
        j = i;
    }
    -a * 0.5
}

fn clipper_round(v: f64) -> i64 {
    if v < 0.0 {
        (v - 0.5) as i64
    } else {
        (v + 0.5) as i64
    }
}

/// Clipper 6 `ClipperOffset::DoOffset` for one closed polygon with round joins (arc tolerance 0.25).
fn offset_round(src: &[[i64; 2]], delta: f64) -> Vec<[i64; 2]> {
    use std::f64::consts::PI;
    let n = src.len();
    let y = if 0.25 > delta.abs() * 0.25 { delta.abs() * 0.25 } else { 0.25 };
    let mut steps = PI / (1.0 - y / delta.abs()).acos();
    if steps > delta.abs() * PI {
        steps = delta.abs() * PI;
    }
    let steps = steps.min(1e5);
    let (mut sin, cos) = ((2.0 * PI / steps).sin(), (2.0 * PI / steps).cos());
    let steps_per_rad = steps / (2.0 * PI);
    if delta < 0.0 {
        sin = -sin;
    }
    let normal = |a: [i64; 2], b: [i64; 2]| -> [f64; 2] {
        if a == b {
            return [0.0, 0.0];
        }
        let dx = (b[0] - a[0]) as f64;
        let dy = (b[1] - a[1]) as f64;
        let f = 1.0 / (dx * dx + dy * dy).sqrt();
        [dy * f, -dx * f]
    };
    let normals: Vec<[f64; 2]> = (0..n).map(|j| normal(src[j], src[(j + 1) % n])).collect();
    let at = |p: [i64; 2], nv: [f64; 2]| {
        [clipper_round(p[0] as f64 + nv[0] * delta), clipper_round(p[1] as f64 + nv[1] * delta)]
    };
    let mut out = Vec::new();
    let mut k = n - 1;
    for j in 0..n {
        let (nk, nj) = (normals[k], normals[j]);
        let mut sin_a = nk[0] * nj[1] - nj[0] * nk[1];
        let cos_a = nk[0] * nj[0] + nk[1] * nj[1];
        if (sin_a * delta).abs() < 1.0 {
            if cos_a > 0.0 {
                out.push(at(src[j], nk));
                k = j;
                continue;
            }
        } else {
            sin_a = sin_a.clamp(-1.0, 1.0);
        }
        if sin_a * delta < 0.0 {
            out.push(at(src[j], nk));
            out.push(src[j]);
            out.push(at(src[j], nj));
        } else {
            let a = sin_a.atan2(cos_a);
            let st = clipper_round(steps_per_rad * a.abs()).clamp(1, 100_000);
            let (mut x, mut yv) = (nk[0], nk[1]);
            for _ in 0..st {
                out.push(at(src[j], [x, yv]));
                let x2 = x;
                x = x * cos - sin * yv;
                yv = x2 * sin + yv * cos;
            }
            out.push(at(src[j], nj));
        }
        k = j;
    }
    out
}

/// What Clipper's union leaves of a simple offset polygon: no duplicate or collinear vertices, oriented
/// like its output, starting right after the top-most (then right-most) vertex.
fn clean_polygon(mut p: Vec<[i64; 2]>) -> Vec<[i64; 2]> {
    loop {
        let n = p.len();
        if n < 3 {
            return p;
        }
        let mut removed = false;
        let mut i = 0;
        while i < p.len() && p.len() >= 3 {
            let n = p.len();
            let a = p[(i + n - 1) % n];
            let b = p[i];
            let c = p[(i + 1) % n];
            let cross = (b[0] - a[0]) as i128 * (c[1] - b[1]) as i128 - (b[1] - a[1]) as i128 * (c[0] - b[0]) as i128;
            if a == b || cross == 0 {
                p.remove(i);
                removed = true;
            } else {
                i += 1;
            }
        }
        if !removed {
            break;
        }
    }
    if p.len() < 3 {
        return p;
    }
    // Clipper's output here runs along the top edge towards +x (positive shoelace with y down).
    let shoelace: i128 = (0..p.len())
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % p.len()]);
            a[0] as i128 * b[1] as i128 - b[0] as i128 * a[1] as i128
        })
        .sum();
    if shoelace < 0 {
        p.reverse();
    }
    let mut top = 0;
    for (i, q) in p.iter().enumerate() {
        if q[1] < p[top][1] || (q[1] == p[top][1] && q[0] > p[top][0]) {
            top = i;
        }
    }
    let n = p.len();
    p.rotate_left((top + 1) % n);
    p
}

// ------------------------------------------------------------------------------------------------------
// Recognizer crop: cv2.getPerspectiveTransform + cv2.warpPerspective(INTER_CUBIC, BORDER_REPLICATE)

/// Solve the homography mapping `src[i]` → `dst[i]` (8×8 Gauss–Jordan with partial pivoting).
fn perspective_transform(src: &[[f64; 2]; 4], dst: &[[f64; 2]; 4]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (src[i], dst[i]);
        a[i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[i + 4] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    for col in 0..8 {
        let piv = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[piv][col].abs().is_nan() || a[piv][col].abs() <= 1e-12 {
            return None;
        }
        a.swap(col, piv);
        let d = a[col][col];
        for v in a[col].iter_mut() {
            *v /= d;
        }
        for r in 0..8 {
            if r != col {
                let f = a[r][col];
                if f != 0.0 {
                    let pivot_row = a[col];
                    for (v, pv) in a[r].iter_mut().zip(pivot_row.iter()).skip(col) {
                        *v -= f * pv;
                    }
                }
            }
        }
    }
    let m = [a[0][8], a[1][8], a[2][8], a[3][8], a[4][8], a[5][8], a[6][8], a[7][8], 1.0];
    m.iter().all(|v| v.is_finite()).then_some(m)
}

fn cubic_coeffs(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// OpenCV's fixed-point 4×4 bicubic kernel for sub-pixel position (`fx`/32, `fy`/32), summing to 32768.
fn cubic_tab(fx: usize, fy: usize) -> [i32; 16] {
    let vx = cubic_coeffs(fx as f32 / 32.0);
    let vy = cubic_coeffs(fy as f32 / 32.0);
    let mut t = [0i32; 16];
    let mut sum = 0;
    for k1 in 0..4 {
        for k2 in 0..4 {
            let v = (vy[k1] * vx[k2] * 32768.0).round_ties_even() as i32;
            t[k1 * 4 + k2] = v;
            sum += v;
        }
    }
    let diff = sum - 32768;
    if diff != 0 {
        let (mut mk, mut mx) = (5usize, 5usize);
        for k1 in 1..3 {
            for k2 in 1..3 {
                let i = k1 * 4 + k2;
                if t[i] < t[mk] {
                    mk = i;
                } else if t[i] > t[mx] {
                    mx = i;
                }
            }
        }
        if diff < 0 {
            t[mx] -= diff;
        } else {
            t[mk] -= diff;
        }
    }
    t
}

/// Perspective-rectify the quad (and rotate tall crops) → (RGB bytes, width, height).
fn crop_quad(img: &RgbImage, q: &[[f32; 2]; 4]) -> Option<(Vec<u8>, usize, usize)> {
    if !image_ok(img) || q.iter().any(|p| !p[0].is_finite() || !p[1].is_finite()) {
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
    let m = perspective_transform(&dst, &src)?;
    let (iw, ih) = (img.width as i64, img.height as i64);
    let mut crop = vec![0u8; w * h * 3];
    for y in 0..h {
        let (x0, y0, w0) = (m[1] * y as f64 + m[2], m[4] * y as f64 + m[5], m[7] * y as f64 + m[8]);
        for x in 0..w {
            let ww = w0 + m[6] * x as f64;
            let ww = if ww != 0.0 { 32.0 / ww } else { 0.0 };
            let fx = ((x0 + m[0] * x as f64) * ww).clamp(i32::MIN as f64, i32::MAX as f64);
            let fy = ((y0 + m[3] * x as f64) * ww).clamp(i32::MIN as f64, i32::MAX as f64);
            let (ix, iy) = (fx.round_ties_even() as i64, fy.round_ties_even() as i64);
            let tab = cubic_tab((ix & 31) as usize, (iy & 31) as usize);
            let (sx, sy) = ((ix >> 5) - 1, (iy >> 5) - 1);
            for c in 0..3 {
                let mut sum = 0i64;
                for k1 in 0..4 {
                    let yy = (sy + k1 as i64).clamp(0, ih - 1) as usize;
                    for k2 in 0..4 {
                        let xx = (sx + k2 as i64).clamp(0, iw - 1) as usize;
                        sum += img.data[(yy * img.width + xx) * 3 + c] as i64 * tab[k1 * 4 + k2] as i64;
                    }
                }
                crop[(y * w + x) * 3 + c] = ((sum + (1 << 14)) >> 15).clamp(0, 255) as u8;
            }
        }
    }
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

    fn bm(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let h = rows.len();
        let w = rows[0].len();
        (rows.iter().flat_map(|r| r.bytes().map(|b| b == b'#')).collect(), w, h)
    }

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
    fn resize_matches_opencv_fixed_point() {
        // 2→4 upscale of a ramp: OpenCV gives [0, 64, 191, 255] for [0, 255].
        let src = [0u8, 0, 0, 255, 255, 255];
        let out = resize_linear_u8(&src, 2, 1, 4, 1);
        let r: Vec<u8> = out.chunks(3).map(|c| c[0]).collect();
        assert_eq!(r, vec![0, 64, 191, 255]);
    }

    #[test]
    fn contour_filled_rect() {
        let (b, w, h) = bm(&["......", ".####.", ".####.", ".####.", "......"]);
        let c = find_contours(&b, w, h);
        assert_eq!(c, vec![vec![[1, 1], [1, 3], [4, 3], [4, 1]]]);
    }

    #[test]
    fn contour_l_shape_and_single_pixel() {
        let (b, w, h) = bm(&["#....", "#....", "###..", ".....", "....#"]);
        let c = find_contours(&b, w, h);
        assert_eq!(c.len(), 2);
        // reverse discovery order: the lone pixel comes first
        assert_eq!(c[0], vec![[4, 4]]);
        assert_eq!(c[1], vec![[0, 0], [0, 2], [2, 2], [1, 2], [0, 1]]);
    }

    #[test]
    fn contour_ring_has_hole() {
        let (b, w, h) = bm(&["#####", "#...#", "#...#", "#...#", "#####"]);
        let c = find_contours(&b, w, h);
        assert_eq!(c.len(), 2);
        // outer border (discovered first) is last
        assert_eq!(c[1], vec![[0, 0], [0, 4], [4, 4], [4, 0]]);
        // hole border: traced through the ring pixels around the hole
        // (same points as cv2.findContours(RETR_LIST, CHAIN_APPROX_SIMPLE))
        assert_eq!(c[0], vec![[0, 1], [1, 0], [3, 0], [4, 1], [4, 3], [3, 4], [1, 4], [0, 3]]);
    }

    #[test]
    fn contour_diagonal_pixels_are_one_component() {
        let (b, w, h) = bm(&["#..", ".#.", "..#"]);
        let c = find_contours(&b, w, h);
        assert_eq!(c, vec![vec![[0, 0], [2, 2]]]);
        // anti-diagonal as well
        let (b, w, h) = bm(&["..#", ".#.", "#.."]);
        assert_eq!(find_contours(&b, w, h).len(), 1);
    }

    #[test]
    fn contour_border_touching_and_empty() {
        let (b, w, h) = bm(&["##", "##"]);
        assert_eq!(find_contours(&b, w, h), vec![vec![[0, 0], [0, 1], [1, 1], [1, 0]]]);
        assert!(find_contours(&[], 0, 0).is_empty());
        assert!(find_contours(&[false], 1, 1).is_empty());
        assert_eq!(find_contours(&[true], 1, 1), vec![vec![[0, 0]]]);
    }

    #[test]
    fn min_area_rect_axis_aligned() {
        let pts = [[2.0, 3.0], [10.0, 3.0], [10.0, 7.0], [2.0, 7.0], [5.0, 5.0]];
        let (b, s) = mini_box(&pts);
        assert_eq!(s, 4.0);
        let want = [[2.0, 3.0], [10.0, 3.0], [10.0, 7.0], [2.0, 7.0]];
        for (p, q) in b.iter().zip(want.iter()) {
            assert!((p[0] - q[0]).abs() < 1e-4 && (p[1] - q[1]).abs() < 1e-4, "{b:?}");
        }
    }

    #[test]
    fn min_area_rect_rotated() {
        // A 20×4 rectangle rotated by 30° around (50, 50), sampled densely.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let mut pts = Vec::new();
        for i in 0..=20 {
            for j in 0..=4 {
                let (u, v) = (i as f64 - 10.0, j as f64 - 2.0);
                pts.push([(50.0 + u * c - v * s) as f32, (50.0 + u * s + v * c) as f32]);
            }
        }
        let (center, size, angle) = min_area_rect(&pts);
        assert!((center[0] - 50.0).abs() < 1e-3 && (center[1] - 50.0).abs() < 1e-3);
        let (lo, hi) = (size[0].min(size[1]), size[0].max(size[1]));
        assert!((lo - 4.0).abs() < 1e-3 && (hi - 20.0).abs() < 1e-3, "{size:?}");
        let a = angle.rem_euclid(90.0);
        assert!((a - 30.0).abs() < 1e-2 || (a - 60.0).abs() < 1e-2, "{angle}");
        let (b, _) = mini_box(&pts);
        // clockwise from top-left: first corner is the left-most of the upper pair
        assert!(b[0][0] < b[1][0] && b[3][1] > b[0][1]);
    }

    #[test]
    fn min_area_rect_degenerate() {
        assert_eq!(mini_box(&[]).1, 0.0);
        assert_eq!(mini_box(&[[1.0, 1.0]]).1, 0.0);
        assert_eq!(mini_box(&[[1.0, 1.0], [5.0, 1.0], [3.0, 1.0]]).1, 0.0);
        assert_eq!(mini_box(&[[f32::NAN, 1.0], [5.0, 1.0], [3.0, 4.0]]).1, 0.0);
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
