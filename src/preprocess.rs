//! Model input tensors from decoded frames, written in one pass with no intermediate image.
//!
//! - [`ssd_input`]: the SSD detector's NHWC `[1,300,300,3]` input, resized with TF1 *legacy*
//!   bilinear (`align_corners=False, half_pixel_centers=False`), values `pixel*2/255-1`, exactly as
//!   `models/PROVENANCE.md` and the reference `detect_ref.py` (float32 arithmetic in the same
//!   order, so tensors agree to float rounding).
//! - [`letterbox_input`]: Ultralytics YOLO's letterboxed NCHW input for user-supplied detectors.

use crate::image::RgbImage;

/// Source index pair and weight for one output coordinate (TF1 legacy bilinear).
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w: f32,
}

fn legacy_taps(input: usize, output: usize) -> Vec<Tap> {
    let scale = (input as f64 / output as f64) as f32;
    (0..output)
        .map(|o| {
            let s = o as f32 * scale;
            let f = s.floor();
            let i0 = (f as usize).min(input - 1);
            Tap { i0, i1: (i0 + 1).min(input - 1), w: s - f }
        })
        .collect()
}

/// SSD-MobileNetV2 input: the whole frame resized to `out_w`×`out_h` (aspect not kept) with TF1
/// legacy bilinear, `value = pixel * (2/255) - 1`, NHWC RGB into `out` (`out_h*out_w*3` values).
pub fn ssd_input(img: &RgbImage, out_w: usize, out_h: usize, out: &mut [f32]) {
    debug_assert_eq!(out.len(), out_w * out_h * 3);
    let xs = legacy_taps(img.width, out_w);
    let ys = legacy_taps(img.height, out_h);
    let stride = img.width * 3;
    let k = (2.0f64 / 255.0) as f32;
    for (ty, row_out) in ys.iter().zip(out.chunks_exact_mut(out_w * 3)) {
        let r0 = &img.data[ty.i0 * stride..][..stride];
        let r1 = &img.data[ty.i1 * stride..][..stride];
        for (tx, px) in xs.iter().zip(row_out.chunks_exact_mut(3)) {
            let (a, b) = (tx.i0 * 3, tx.i1 * 3);
            for c in 0..3 {
                let top = f32::from(r0[a + c]) * (1.0 - tx.w) + f32::from(r0[b + c]) * tx.w;
                let bot = f32::from(r1[a + c]) * (1.0 - tx.w) + f32::from(r1[b + c]) * tx.w;
                px[c] = (top * (1.0 - ty.w) + bot * ty.w) * k - 1.0;
            }
        }
    }
}

/// How a letterboxed model input maps back to the frame.
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
    /// A box in model-input pixels → frame pixels, clipped to `[0,w]×[0,h]`.
    pub fn unmap(&self, b: [f32; 4], frame_w: usize, frame_h: usize) -> [f32; 4] {
        let (w, h) = (frame_w as f32, frame_h as f32);
        let x = |v: f32| ((v - self.pad_x) / self.scale).clamp(0.0, w);
        let y = |v: f32| ((v - self.pad_y) / self.scale).clamp(0.0, h);
        [x(b[0]), y(b[1]), x(b[2]), y(b[3])]
    }
}

/// Half-pixel-centre bilinear taps (OpenCV `INTER_LINEAR`).
fn half_pixel_taps(input: usize, output: usize) -> Vec<Tap> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|o| {
            let s = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
            let f = s.floor();
            let i0 = (f as usize).min(input - 1);
            Tap { i0, i1: (i0 + 1).min(input - 1), w: s - f }
        })
        .collect()
}

/// Ultralytics letterbox: scale the frame by `min(dst_w/w, dst_h/h)` (bilinear, half-pixel
/// centres), centre it on a `114` grey canvas, values `pixel/255`, NCHW RGB into `out`
/// (`3*dst_h*dst_w` values). Returns the mapping back to frame pixels.
pub fn letterbox_input(img: &RgbImage, dst_w: usize, dst_h: usize, out: &mut [f32]) -> Letterbox {
    debug_assert_eq!(out.len(), dst_w * dst_h * 3);
    let scale = (dst_w as f32 / img.width as f32).min(dst_h as f32 / img.height as f32);
    let new_w = ((img.width as f32 * scale).round() as usize).clamp(1, dst_w);
    let new_h = ((img.height as f32 * scale).round() as usize).clamp(1, dst_h);
    let left = ((dst_w - new_w) as f32 / 2.0 - 0.1).round().max(0.0) as usize;
    let top = ((dst_h - new_h) as f32 / 2.0 - 0.1).round().max(0.0) as usize;
    out.fill(114.0 / 255.0);
    let xs = half_pixel_taps(img.width, new_w);
    let ys = half_pixel_taps(img.height, new_h);
    let stride = img.width * 3;
    let plane = dst_w * dst_h;
    for (y, ty) in ys.iter().enumerate() {
        let r0 = &img.data[ty.i0 * stride..][..stride];
        let r1 = &img.data[ty.i1 * stride..][..stride];
        let row = (top + y) * dst_w + left;
        for (x, tx) in xs.iter().enumerate() {
            let (a, b) = (tx.i0 * 3, tx.i1 * 3);
            for c in 0..3 {
                let t = f32::from(r0[a + c]) * (1.0 - tx.w) + f32::from(r0[b + c]) * tx.w;
                let u = f32::from(r1[a + c]) * (1.0 - tx.w) + f32::from(r1[b + c]) * tx.w;
                out[c * plane + row + x] = (t * (1.0 - ty.w) + u * ty.w) / 255.0;
            }
        }
    }
    Letterbox { scale, pad_x: left as f32, pad_y: top as f32 }
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
    fn ssd_input_follows_the_tf_legacy_formula() {
        // 7×5 → 3×4: x scale 7/3, y scale 5/4; value = bilinear(pixel)*2/255-1.
        let img = image(7, 5, |x, y, c| (x * 30 + y * 7 + c) as u8);
        let mut out = vec![0.0; 4 * 3 * 3];
        ssd_input(&img, 3, 4, &mut out);
        let px = |x: usize, y: usize, c: usize| (x * 30 + y * 7 + c) as f64;
        for oy in 0..4 {
            for ox in 0..3 {
                for c in 0..3 {
                    let sy = oy as f64 * 5.0 / 4.0;
                    let sx = ox as f64 * 7.0 / 3.0;
                    let (y0, x0) = (sy.floor() as usize, sx.floor() as usize);
                    let (y1, x1) = ((y0 + 1).min(4), (x0 + 1).min(6));
                    let (wy, wx) = (sy - y0 as f64, sx - x0 as f64);
                    let top = px(x0, y0, c) * (1.0 - wx) + px(x1, y0, c) * wx;
                    let bot = px(x0, y1, c) * (1.0 - wx) + px(x1, y1, c) * wx;
                    let want = (top * (1.0 - wy) + bot * wy) * 2.0 / 255.0 - 1.0;
                    let got = out[(oy * 3 + ox) * 3 + c] as f64;
                    assert!((got - want).abs() < 1e-5, "({ox},{oy},{c}): {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn uniform_stays_uniform_and_range_is_minus_one_to_one() {
        let mut out = vec![0.0; 300 * 300 * 3];
        ssd_input(&image(640, 480, |_, _, _| 255), 300, 300, &mut out);
        assert!(out.iter().all(|&v| (v - 1.0).abs() < 1e-6));
        ssd_input(&image(33, 17, |_, _, _| 0), 300, 300, &mut out);
        assert!(out.iter().all(|&v| (v + 1.0).abs() < 1e-6));
    }

    #[test]
    fn letterbox_pads_centres_and_maps_back() {
        let img = image(640, 480, |_, _, _| 255);
        let mut out = vec![0.0; 3 * 640 * 640];
        let lb = letterbox_input(&img, 640, 640, &mut out);
        assert_eq!(lb, Letterbox { scale: 1.0, pad_x: 0.0, pad_y: 80.0 });
        assert!((out[0] - 114.0 / 255.0).abs() < 1e-6); // top padding
        assert!((out[80 * 640] - 1.0).abs() < 1e-6); // first image row
        assert!((out[2 * 640 * 640 + 560 * 640 - 1] - 1.0).abs() < 1e-6); // last image row, blue
        assert!((out[2 * 640 * 640 + 560 * 640] - 114.0 / 255.0).abs() < 1e-6); // bottom padding
        let b = [100.0, 50.0, 300.0, 400.0];
        let m = [
            b[0] * lb.scale + lb.pad_x,
            b[1] * lb.scale + lb.pad_y,
            b[2] * lb.scale + lb.pad_x,
            b[3] * lb.scale + lb.pad_y,
        ];
        let back = lb.unmap(m, 640, 480);
        assert!(back.iter().zip(b.iter()).all(|(a, b)| (a - b).abs() < 0.5), "{back:?}");
        // 1280×720 into 640×640: scale 0.5, 140 px bars top and bottom.
        let lb = letterbox_input(&image(1280, 720, |_, _, _| 0), 640, 640, &mut out);
        assert_eq!(lb, Letterbox { scale: 0.5, pad_x: 0.0, pad_y: 140.0 });
        assert_eq!(lb.unmap([-5.0, 0.0, 700.0, 700.0], 1280, 720), [0.0, 0.0, 1280.0, 720.0]);
    }
}
