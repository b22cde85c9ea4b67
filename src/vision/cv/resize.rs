//! OpenCV's 8-bit bilinear `resize` (`INTER_LINEAR`, fixed point, with the exact-2× `INTER_AREA`
//! shortcut), ported so the OCR inputs match the reference pixel for pixel: a float resize
//! differs by one grey level here and there, enough to move a DB box corner by a pixel.

const RESIZE_COEF_BITS: u32 = 11;
const RESIZE_COEF_SCALE: f32 = (1 << RESIZE_COEF_BITS) as f32;

/// Per output index: the two source indices and their fixed-point weights, as OpenCV `resize`
/// computes them. Horizontally (`clamp_weight`) a tap left of the first or right of the last
/// source pixel gets weight 0 on the outer side (`fx = 0, sx = 0` / `sx = width-1`); vertically
/// OpenCV keeps the weights and clips each row index (`resizeGeneric_`), so at the top and bottom
/// both taps read the same row with the split weights.
fn linear_taps(src: usize, dst: usize, clamp_weight: bool) -> Vec<(usize, usize, i32, i32)> {
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as i64 - 1;
    (0..dst)
        .map(|d| {
            let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            f -= s as f32;
            if clamp_weight {
                if s < 0 {
                    f = 0.0;
                    s = 0;
                }
                if s >= last {
                    f = 0.0;
                    s = last;
                }
            }
            let a0 = ((1.0 - f) * RESIZE_COEF_SCALE).round_ties_even() as i32;
            let a1 = (f * RESIZE_COEF_SCALE).round_ties_even() as i32;
            (s.clamp(0, last) as usize, (s + 1).clamp(0, last) as usize, a0, a1)
        })
        .collect()
}

/// Resize an interleaved 3-channel image like `cv2.resize(..., interpolation=cv2.INTER_LINEAR)`.
/// `src` must hold `sw*sh*3` bytes and all sizes must be > 0 (otherwise an all-zero image is returned).
pub fn resize_linear_u8(src: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
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
    let xt = linear_taps(sw, dw, true);
    let yt = linear_taps(sh, dh, false);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_matches_opencv_fixed_point() {
        // 2→4 upscale of a ramp: OpenCV gives [0, 64, 191, 255] for [0, 255].
        let src = [0u8, 0, 0, 255, 255, 255];
        let out = resize_linear_u8(&src, 2, 1, 4, 1);
        let r: Vec<u8> = out.chunks(3).map(|c| c[0]).collect();
        assert_eq!(r, vec![0, 64, 191, 255]);
    }
}
