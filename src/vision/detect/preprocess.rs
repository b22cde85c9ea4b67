//! Model input tensors from decoded frames: resize, normalise and lay out in one pass.
//!
//! This runs for every frame before inference, so it is written for speed: index/weight tables
//! are built once per call, interpolation is separable (each needed source row is interpolated
//! horizontally once into a small row buffer, then rows are blended vertically), every output
//! value is written exactly once, and no full-size intermediate image is made.
//!
//! - [`ssd_input`]: the shipped SSD-MobileNetV2 detector's NHWC input, resized with TF1 *legacy*
//!   bilinear (`align_corners=False, half_pixel_centers=False`), values `pixel*2/255-1`, as
//!   `models/PROVENANCE.md` and the reference `detect_ref.py` define it. The arithmetic follows
//!   the reference's numpy evaluation (float32 source positions, float64 weights and blends, one
//!   rounding to float32 at the end), so the tensors agree to float rounding.
//! - [`letterbox_input`]: Ultralytics YOLO's letterboxed NCHW input for detectors a user brings,
//!   with [`Letterbox::unmap`] to bring boxes back to frame pixels.

use crate::vision::image::RgbImage;

/// Source index pair and blend weight for one output coordinate along one axis.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    /// Weight of `i1`; `i0` gets `1 - w`.
    w: f64,
}

/// TF1 legacy bilinear taps: `s = dst * (in/out)` (float32, like the reference), `i0 = floor(s)`,
/// `i1 = min(i0 + 1, in - 1)`, `w = s - i0`. `input` must be > 0.
fn legacy_taps(input: usize, output: usize) -> Vec<Tap> {
    let scale = (input as f64 / output as f64) as f32;
    (0..output)
        .map(|o| {
            let s = o as f32 * scale;
            let f = s.floor();
            let i0 = (f as usize).min(input - 1);
            Tap { i0, i1: (i0 + 1).min(input - 1), w: f64::from(s - f) }
        })
        .collect()
}

/// Whether `img` is something we can sample: non-empty and with all its bytes.
fn usable(img: &RgbImage) -> bool {
    img.width > 0 && img.height > 0 && img.data.len() >= img.width * img.height * 3
}

/// Horizontal pass for one source row: `dst[x*3 + c] = row[i0][c]*(1-w) + row[i1][c]*w`.
fn interpolate_row(img: &RgbImage, y: usize, xs: &[Tap], dst: &mut [f64]) {
    let stride = img.width * 3;
    let row = &img.data[y * stride..][..stride];
    for (t, px) in xs.iter().zip(dst.chunks_exact_mut(3)) {
        let (a, b) = (&row[t.i0 * 3..][..3], &row[t.i1 * 3..][..3]);
        for c in 0..3 {
            px[c] = f64::from(a[c]) * (1.0 - t.w) + f64::from(b[c]) * t.w;
        }
    }
}

/// Two horizontally interpolated source rows, reused while consecutive output rows need the same
/// source rows (upscaling), so each source row is interpolated at most once per output row pair.
struct RowCache {
    rows: [(Option<usize>, Vec<f64>); 2],
}

impl RowCache {
    fn new(len: usize) -> RowCache {
        RowCache { rows: [(None, vec![0.0; len]), (None, vec![0.0; len])] }
    }

    /// The interpolated rows `y0` and `y1`.
    fn get(&mut self, img: &RgbImage, xs: &[Tap], y0: usize, y1: usize) -> (&[f64], &[f64]) {
        // Slot 0 holds y0 and slot 1 holds y1; when moving down, yesterday's y1 is today's y0.
        if self.rows[0].0 != Some(y0) {
            if self.rows[1].0 == Some(y0) {
                self.rows.swap(0, 1);
            } else {
                interpolate_row(img, y0, xs, &mut self.rows[0].1);
                self.rows[0].0 = Some(y0);
            }
        }
        if self.rows[1].0 != Some(y1) {
            if y1 == y0 {
                let (a, b) = self.rows.split_at_mut(1);
                b[0].1.copy_from_slice(&a[0].1);
            } else {
                interpolate_row(img, y1, xs, &mut self.rows[1].1);
            }
            self.rows[1].0 = Some(y1);
        }
        (&self.rows[0].1, &self.rows[1].1)
    }
}

/// SSD-MobileNetV2 input: the whole frame resized to `out_w`×`out_h` (aspect not kept) with TF1
/// legacy bilinear (`align_corners=False, half_pixel_centers=False`: `src = dst*in/out`,
/// `i0 = floor(src)`, `i1 = min(i0+1, in-1)`, `w = src - i0`, separable), `value = pixel*(2/255) - 1`,
/// written NHWC, RGB order, into `out` (`out_h*out_w*3` values).
///
/// An empty image or one with too few bytes gives an all-black tensor (`-1`) rather than a panic.
///
/// # Panics
/// If `out.len() != out_w * out_h * 3` (a caller bug: the buffer is sized from the model input).
pub fn ssd_input(img: &RgbImage, out_w: usize, out_h: usize, out: &mut [f32]) {
    assert_eq!(out.len(), out_w * out_h * 3, "ssd_input: output buffer size");
    if !usable(img) {
        out.fill(-1.0);
        return;
    }
    let xs = legacy_taps(img.width, out_w);
    let ys = legacy_taps(img.height, out_h);
    // numpy evaluates `x * (2.0 / 255.0) - 1.0` on float64 here; keep the same constant.
    let k = 2.0f64 / 255.0;
    let mut cache = RowCache::new(out_w * 3);
    for (ty, row_out) in ys.iter().zip(out.chunks_exact_mut(out_w * 3)) {
        let (top, bot) = cache.get(img, &xs, ty.i0, ty.i1);
        let (w0, w1) = (1.0 - ty.w, ty.w);
        for ((o, &t), &b) in row_out.iter_mut().zip(top).zip(bot) {
            *o = ((t * w0 + b * w1) * k - 1.0) as f32;
        }
    }
}

/// How a letterboxed model input maps back to the frame: `model = frame * scale + pad`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Frame → model scale.
    pub scale: f32,
    /// Left padding in model pixels.
    pub pad_x: f32,
    /// Top padding in model pixels.
    pub pad_y: f32,
}

impl Letterbox {
    /// A box in frame pixels → model-input pixels (the inverse of [`Letterbox::unmap`]).
    pub fn map(&self, b: [f32; 4]) -> [f32; 4] {
        let (x, y) = (|v: f32| v * self.scale + self.pad_x, |v: f32| v * self.scale + self.pad_y);
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }

    /// A box `[x1, y1, x2, y2]` in model-input pixels → frame pixels, clipped to
    /// `[0, frame_w] × [0, frame_h]`. NaN coordinates stay NaN (NMS has dropped those already).
    pub fn unmap(&self, b: [f32; 4], frame_w: usize, frame_h: usize) -> [f32; 4] {
        let (w, h) = (frame_w as f32, frame_h as f32);
        let x = |v: f32| ((v - self.pad_x) / self.scale).clamp(0.0, w);
        let y = |v: f32| ((v - self.pad_y) / self.scale).clamp(0.0, h);
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }
}

/// Ultralytics letterbox: scale the frame by `min(dst_w/w, dst_h/h)` to
/// `round(w*scale)`×`round(h*scale)` (ties to even, as Python's `round`) with `cv2.resize`'s
/// 8-bit `INTER_LINEAR` (the exact port in [`crate::vision::cv::resize`]), centre it
/// (`pad = round(slack/2 - 0.1)`, as Ultralytics) on a `114/255` grey canvas, values `pixel/255`,
/// NCHW RGB into `out` (`3*dst_h*dst_w` values). Returns the mapping back to frame pixels.
///
/// An empty image or one with too few bytes gives an all-grey tensor and the identity mapping.
///
/// # Panics
/// If `out.len() != 3 * dst_w * dst_h` (a caller bug: the buffer is sized from the model input).
pub fn letterbox_input(img: &RgbImage, dst_w: usize, dst_h: usize, out: &mut [f32]) -> Letterbox {
    assert_eq!(out.len(), dst_w * dst_h * 3, "letterbox_input: output buffer size");
    const PAD: f32 = (114.0f64 / 255.0) as f32;
    if !usable(img) || dst_w == 0 || dst_h == 0 {
        out.fill(PAD);
        return Letterbox { scale: 1.0, pad_x: 0.0, pad_y: 0.0 };
    }
    let scale = (dst_w as f64 / img.width as f64).min(dst_h as f64 / img.height as f64);
    let new_w = ((img.width as f64 * scale).round_ties_even() as usize).clamp(1, dst_w);
    let new_h = ((img.height as f64 * scale).round_ties_even() as usize).clamp(1, dst_h);
    let left = (((dst_w - new_w) as f64 / 2.0 - 0.1).round_ties_even().max(0.0) as usize).min(dst_w - new_w);
    let top = (((dst_h - new_h) as f64 / 2.0 - 0.1).round_ties_even().max(0.0) as usize).min(dst_h - new_h);
    let right = dst_w - new_w - left;

    // cv2.resize(INTER_LINEAR) on the 8-bit frame, exactly (the port in `cv::resize`), as
    // Ultralytics does before dividing by 255.
    let resized = crate::vision::cv::resize::resize_linear_u8(&img.data, img.width, img.height, new_w, new_h);
    let plane = dst_w * dst_h;
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    let mut planes = [r_plane, g_plane, b_plane];
    for p in planes.iter_mut() {
        p.fill(PAD);
    }
    for (y, row) in resized.chunks_exact(new_w * 3).enumerate() {
        let at = (top + y) * dst_w + left;
        for (x, px) in row.chunks_exact(3).enumerate() {
            for (c, p) in planes.iter_mut().enumerate() {
                p[at + x] = f32::from(px[c]) / 255.0;
            }
        }
    }
    debug_assert_eq!(left + new_w + right, dst_w);
    Letterbox { scale: scale as f32, pad_x: left as f32, pad_y: top as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize, f: impl Fn(usize, usize, usize) -> u8) -> RgbImage {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    data.push(f(x, y, c));
                }
            }
        }
        RgbImage { width: w, height: h, data }
    }

    #[test]
    fn ssd_input_7x5_to_3x4_matches_hand_computed_values() {
        // Pixel value = 10*x + 40*y + c. x scale 7/3, y scale 5/4:
        //   x taps: ox=0 → (0,1,w=0); ox=1 → s=2.3333 (2,3,w=1/3); ox=2 → s=4.6667 (4,5,w=2/3)
        //   y taps: oy=0 → (0,1,0); oy=1 → 1.25 (1,2,.25); oy=2 → 2.5 (2,3,.5); oy=3 → 3.75 (3,4,.75)
        // The image is linear in x and y, so bilinear = 10*sx + 40*sy + c exactly.
        let img = image(7, 5, |x, y, c| (10 * x + 40 * y + c) as u8);
        let mut out = vec![0.0; 4 * 3 * 3];
        ssd_input(&img, 3, 4, &mut out);
        let sx = [0.0, 7.0 / 3.0, 14.0 / 3.0];
        let sy = [0.0, 1.25, 2.5, 3.75];
        for (oy, y) in sy.iter().enumerate() {
            for (ox, x) in sx.iter().enumerate() {
                for c in 0..3 {
                    let want = (10.0 * x + 40.0 * y + c as f64) * 2.0 / 255.0 - 1.0;
                    let got = f64::from(out[(oy * 3 + ox) * 3 + c]);
                    assert!((got - want).abs() < 1e-6, "({ox},{oy},{c}): {got} vs {want}");
                }
            }
        }
        // Spot checks written out by hand: (0,0,r) = 0 → -1; (2,3,b) = 10*14/3+40*3.75+2 = 198.667.
        assert_eq!(out[0], -1.0);
        assert!((out[(3 * 3 + 2) * 3 + 2] - (198.666_67f32 * 2.0 / 255.0 - 1.0)).abs() < 1e-6);
    }

    #[test]
    fn ssd_input_clamps_the_last_neighbour_and_upscales() {
        // 2×1 → 4×2 upscaling: x taps s = 0, .5, 1, 1.5 → (0,1,0) (0,1,.5) (1,1,0) (1,1,.5);
        // y: single row, both taps row 0.
        let img = image(2, 1, |x, _, _| if x == 0 { 0 } else { 255 });
        let mut out = vec![0.0; 4 * 2 * 3];
        ssd_input(&img, 4, 2, &mut out);
        let want = [-1.0, 0.0, 1.0, 1.0];
        for y in 0..2 {
            for (x, w) in want.iter().enumerate() {
                for c in 0..3 {
                    assert!((out[(y * 4 + x) * 3 + c] - w).abs() < 1e-6, "{x},{y},{c}");
                }
            }
        }
    }

    #[test]
    fn ssd_input_keeps_channel_order() {
        let img = image(5, 3, |_, _, c| [255, 0, 51][c]);
        let mut out = vec![0.0; 2 * 2 * 3];
        ssd_input(&img, 2, 2, &mut out);
        for px in out.chunks_exact(3) {
            assert!((px[0] - 1.0).abs() < 1e-6 && (px[1] + 1.0).abs() < 1e-6 && (px[2] + 0.6).abs() < 1e-6);
        }
    }

    #[test]
    fn uniform_stays_uniform_and_range_is_minus_one_to_one() {
        let mut out = vec![0.0; 300 * 300 * 3];
        for (v, want) in [(255u8, 1.0f32), (0, -1.0), (100, (100.0f64 * 2.0 / 255.0 - 1.0) as f32)] {
            ssd_input(&image(640, 480, |_, _, _| v), 300, 300, &mut out);
            assert!(out.iter().all(|&o| o == want), "{v}");
            ssd_input(&image(33, 17, |_, _, _| v), 300, 300, &mut out);
            assert!(out.iter().all(|&o| o == want), "{v} upscaled");
        }
    }

    #[test]
    fn ssd_input_tolerates_a_broken_image() {
        let mut out = vec![0.5; 2 * 2 * 3];
        ssd_input(&RgbImage { width: 0, height: 0, data: vec![] }, 2, 2, &mut out);
        assert!(out.iter().all(|&v| v == -1.0));
        let short = RgbImage { width: 4, height: 4, data: vec![7; 5] };
        ssd_input(&short, 2, 2, &mut out);
        assert!(out.iter().all(|&v| v == -1.0));
    }

    #[test]
    fn letterbox_pads_centres_and_maps_back() {
        let img = image(640, 480, |_, _, _| 255);
        let mut out = vec![0.0; 3 * 640 * 640];
        let lb = letterbox_input(&img, 640, 640, &mut out);
        assert_eq!(lb, Letterbox { scale: 1.0, pad_x: 0.0, pad_y: 80.0 });
        let grey = (114.0f64 / 255.0) as f32;
        assert_eq!(out[0], grey); // top padding
        assert_eq!(out[80 * 640 - 1], grey); // last padding row
        assert_eq!(out[80 * 640], 1.0); // first image row
        assert_eq!(out[2 * 640 * 640 + 560 * 640 - 1], 1.0); // last image row, blue
        assert_eq!(out[2 * 640 * 640 + 560 * 640], grey); // bottom padding
        assert_eq!(out.iter().filter(|&&v| v == grey).count(), 3 * 2 * 80 * 640);
        // 1280×720 into 640×640: scale 0.5, 140 px bars top and bottom.
        let lb = letterbox_input(&image(1280, 720, |_, _, _| 0), 640, 640, &mut out);
        assert_eq!(lb, Letterbox { scale: 0.5, pad_x: 0.0, pad_y: 140.0 });
        assert_eq!(lb.unmap([-5.0, 0.0, 700.0, 700.0], 1280, 720), [0.0, 0.0, 1280.0, 720.0]);
        // Portrait 300×600 into 320×320: scale 0.5333, 160×320, bars of 80 left and right.
        let lb = letterbox_input(&image(300, 600, |_, _, c| [10, 20, 30][c]), 320, 320, &mut out[..3 * 320 * 320]);
        assert_eq!((lb.pad_x, lb.pad_y), (80.0, 0.0));
        let plane = 320 * 320;
        for c in 0..3 {
            let p = &out[c * plane..(c + 1) * plane];
            let v = [10.0f64, 20.0, 30.0][c] / 255.0;
            assert_eq!(p[79], grey);
            assert!((f64::from(p[80]) - v).abs() < 1e-6 && (f64::from(p[239]) - v).abs() < 1e-6);
            assert_eq!(p[240], grey);
        }
    }

    #[test]
    fn letterbox_interpolates_with_half_pixel_centres() {
        // 2×2 → 4×4 (scale 2, no padding): x taps s = -.25→0, .25, .75, 1.25→1 (clamped), in
        // cv2's 8-bit arithmetic: 0, 63.75 → 64, 191.25 → 191, 255.
        let img = image(2, 2, |x, _, _| if x == 0 { 0 } else { 255 });
        let mut out = vec![0.0; 3 * 4 * 4];
        let lb = letterbox_input(&img, 4, 4, &mut out);
        assert_eq!(lb, Letterbox { scale: 2.0, pad_x: 0.0, pad_y: 0.0 });
        let want = [0.0, 64.0 / 255.0, 191.0 / 255.0, 1.0];
        for (i, v) in out.iter().enumerate() {
            assert!((v - want[i % 4]).abs() < 1e-6, "{i}: {v}");
        }
    }

    #[test]
    fn letterbox_round_trip_640x480_into_640x640() {
        // A gradient frame so the content is not trivially uniform.
        let img = image(640, 480, |x, y, c| ((x + 2 * y + 50 * c) % 256) as u8);
        let mut out = vec![0.0; 3 * 640 * 640];
        let lb = letterbox_input(&img, 640, 640, &mut out);
        for b in [[100.0, 50.0, 300.0, 400.0], [0.0, 0.0, 640.0, 480.0], [10.5, 470.25, 20.75, 479.5]] {
            let m = lb.map(b);
            let back = lb.unmap(m, 640, 480);
            assert!(back.iter().zip(b.iter()).all(|(a, b)| (a - b).abs() < 0.5), "{b:?} → {m:?} → {back:?}");
        }
        // And with a non-trivial scale: 1920×1080 into 640×640 (scale 1/3, 140 px bars).
        let big = image(1920, 1080, |x, y, _| ((x ^ y) & 0xff) as u8);
        let lb = letterbox_input(&big, 640, 640, &mut out);
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 140.0));
        let b = [333.0f32, 17.0, 1500.0, 1079.0];
        let m = lb.map(b);
        let back = lb.unmap(m, 1920, 1080);
        assert!(back.iter().zip(b.iter()).all(|(a, b)| (a - b).abs() < 0.5), "{back:?}");
    }

    #[test]
    fn letterbox_tolerates_a_broken_image() {
        let mut out = vec![0.0; 3 * 4 * 4];
        let lb = letterbox_input(&RgbImage { width: 3, height: 0, data: vec![] }, 4, 4, &mut out);
        assert_eq!(lb, Letterbox { scale: 1.0, pad_x: 0.0, pad_y: 0.0 });
        assert!(out.iter().all(|&v| v == (114.0f64 / 255.0) as f32));
    }
}
