//! OpenCV `getPerspectiveTransform` and `warpPerspective` with `INTER_CUBIC` and
//! `BORDER_REPLICATE` for 8-bit RGB: the recognizer's crop of a text quad, in OpenCV's fixed
//! point (a 32-step sub-pixel table) so the crop matches the reference's.

use crate::vision::image::RgbImage;

/// OpenCV `getPerspectiveTransform(src, dst)` (default `DECOMP_LU`): the homography mapping
/// `src[i]` → `dst[i]`. The points are taken as `Point2f` (rounded to f32, as the reference's
/// `float32` arrays are), the 8×8 system is built as OpenCV builds it (the `-x*u` terms are f32
/// products stored as doubles) and solved by OpenCV's LU (`hal::LU64f`). `None` where OpenCV's
/// LU reports a singular system (OpenCV would return a zero matrix).
pub fn perspective_transform(src: &[[f64; 2]; 4], dst: &[[f64; 2]; 4]) -> Option<[f64; 9]> {
    let mut a = [[0f64; 8]; 8];
    let mut b = [0f64; 8];
    for i in 0..4 {
        let (x, y) = (src[i][0] as f32, src[i][1] as f32);
        let (u, v) = (dst[i][0] as f32, dst[i][1] as f32);
        a[i] = [x as f64, y as f64, 1.0, 0.0, 0.0, 0.0, (-x * u) as f64, (-y * u) as f64];
        a[i + 4] = [0.0, 0.0, 0.0, x as f64, y as f64, 1.0, (-x * v) as f64, (-y * v) as f64];
        b[i] = u as f64;
        b[i + 4] = v as f64;
    }
    lu_solve(&mut a, &mut b)?;
    let m = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], 1.0];
    m.iter().all(|v| v.is_finite()).then_some(m)
}

/// OpenCV `hal::LU64f` (`LUImpl`, eps = 100·DBL_EPSILON) for one right-hand side: Gaussian
/// elimination with partial pivoting and back substitution, in place; `None` if singular.
fn lu_solve<const M: usize>(a: &mut [[f64; M]; M], b: &mut [f64; M]) -> Option<()> {
    let eps = f64::EPSILON * 100.0;
    for i in 0..M {
        let mut k = i;
        for j in i + 1..M {
            if a[j][i].abs() > a[k][i].abs() {
                k = j;
            }
        }
        if a[k][i].abs() < eps {
            return None;
        }
        if k != i {
            // OpenCV swaps columns i.. only; the columns before i are never read again.
            a.swap(i, k);
            b.swap(i, k);
        }
        let d = -1.0 / a[i][i];
        for j in i + 1..M {
            let alpha = a[j][i] * d;
            let pivot_row = a[i];
            for (v, pv) in a[j].iter_mut().zip(pivot_row.iter()).skip(i + 1) {
                *v += alpha * pv;
            }
            b[j] += alpha * b[i];
        }
    }
    for i in (0..M).rev() {
        let mut s = b[i];
        for k in i + 1..M {
            s -= a[i][k] * b[k];
        }
        b[i] = s / a[i][i];
    }
    Some(())
}

fn cubic_coeffs(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// OpenCV's fixed-point 4×4 bicubic kernel for sub-pixel position (`fx`/32, `fy`/32), summing to 32768.
pub fn cubic_tab(fx: usize, fy: usize) -> [i32; 16] {
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
        // `initInterTab2D`: ksize2 = ksize/2 = 2, k1 and k2 in ksize2..ksize2+2 (taps 2..3),
        // starting from (ksize2, ksize2) = index 10.
        let (mut mk, mut mx) = (10usize, 10usize);
        for k1 in 2..4 {
            for k2 in 2..4 {
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

/// `cv2.warpPerspective(img, m, (w, h), flags=INTER_CUBIC | WARP_INVERSE_MAP,
/// borderMode=BORDER_REPLICATE)`: `m` maps each output pixel to its source position. `img` must
/// be consistent ([`super::image_ok`]); returns `w × h` interleaved RGB bytes.
pub fn warp_perspective_cubic(img: &RgbImage, m: &[f64; 9], w: usize, h: usize) -> Vec<u8> {
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
    crop
}
