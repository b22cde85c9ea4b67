//! The constant-velocity Kalman filter on boxes that every track of [`super::Tracker`] carries.
//!
//! A port of the filter ByteTrack inherits from DeepSORT (`kalman_filter.py`), so that tracks
//! move, and their uncertainty grows, exactly as the reference's do: the state is
//! `[cx, cy, a, h, vx, vy, va, vh]` (box centre, aspect ratio `w / h`, height, and their
//! velocities), one step is one tracker update (`dt = 1`), and every noise term is proportional
//! to the box height with the reference's weights (position 1/20, velocity 1/160), so a big
//! near object may move more pixels per step than a small far one.
//!
//! Plain `f64` arithmetic on fixed 8×8 and 4×4 arrays: no allocation, no dependency. Robustness
//! beyond the reference: the height the noise is scaled by is floored at one pixel (a sub-pixel
//! box would otherwise give a singular innovation covariance), and a step that cannot be taken
//! (non-positive-definite innovation covariance, non-finite result) is reported rather than
//! allowed to poison the state with NaN.

/// Weight of the position noise, relative to the box height (ByteTrack's `1 / 20`).
pub const STD_WEIGHT_POSITION: f64 = 1.0 / 20.0;
/// Weight of the velocity noise, relative to the box height (ByteTrack's `1 / 160`).
pub const STD_WEIGHT_VELOCITY: f64 = 1.0 / 160.0;
/// The smallest height noise is scaled by, in pixels (not in the reference, which would divide
/// by zero on a zero-height box; boxes at least a pixel high are unaffected).
const MIN_NOISE_HEIGHT: f64 = 1.0;

/// An 8-vector: the state `[cx, cy, a, h, vx, vy, va, vh]`.
pub type Vec8 = [f64; 8];
/// An 8×8 matrix, row-major.
pub type Mat8 = [[f64; 8]; 8];
/// A 4-vector: a measurement `[cx, cy, a, h]`.
pub type Vec4 = [f64; 4];
type Mat4 = [[f64; 4]; 4];

/// The filter's belief about one track: state mean and covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct KalmanState {
    /// `[cx, cy, a, h, vx, vy, va, vh]`.
    pub mean: Vec8,
    /// Covariance of `mean`.
    pub cov: Mat8,
}

/// `[x1, y1, x2, y2]` to the measurement `[cx, cy, w / h, h]`; `None` unless the box is finite
/// with a positive width and height (and the ratio is finite).
pub fn xyah_from_tlbr(b: &[f32; 4]) -> Option<Vec4> {
    let [x1, y1, x2, y2] = b.map(f64::from);
    let (w, h) = (x2 - x1, y2 - y1);
    let m = [x1 + w / 2.0, y1 + h / 2.0, w / h, h];
    (w > 0.0 && h > 0.0 && m.iter().all(|v| v.is_finite())).then_some(m)
}

/// The state's box as `[x1, y1, x2, y2]` (a negative predicted height or aspect gives a swapped,
/// i.e. empty, box).
pub fn tlbr_from_state(mean: &Vec8) -> [f32; 4] {
    let (cx, cy, a, h) = (mean[0], mean[1], mean[2], mean[3]);
    let w = a * h;
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0].map(|v| v as f32)
}

fn diag8(std: [f64; 8]) -> Mat8 {
    let mut m = [[0.0; 8]; 8];
    for i in 0..8 {
        m[i][i] = std[i] * std[i];
    }
    m
}

fn noise_h(h: f64) -> f64 {
    if h.is_finite() {
        h.max(MIN_NOISE_HEIGHT)
    } else {
        MIN_NOISE_HEIGHT
    }
}

impl KalmanState {
    /// A new track at `m` (`[cx, cy, a, h]`) with zero velocity and the reference's initial
    /// uncertainty (twice the position noise, ten times the velocity noise).
    pub fn initiate(m: Vec4) -> KalmanState {
        let h = noise_h(m[3]);
        let (p, v) = (STD_WEIGHT_POSITION * h, STD_WEIGHT_VELOCITY * h);
        let std = [2.0 * p, 2.0 * p, 1e-2, 2.0 * p, 10.0 * v, 10.0 * v, 1e-5, 10.0 * v];
        KalmanState { mean: [m[0], m[1], m[2], m[3], 0.0, 0.0, 0.0, 0.0], cov: diag8(std) }
    }

    /// One step of constant-velocity motion: `x = F x`, `P = F P Fᵀ + Q`, with `F` adding each
    /// velocity to its position once, whatever wall time passed.
    pub fn predict(&mut self) {
        let h = noise_h(self.mean[3]);
        let (p, v) = (STD_WEIGHT_POSITION * h, STD_WEIGHT_VELOCITY * h);
        let q = diag8([p, p, 1e-2, p, v, v, 1e-5, v]);
        for i in 0..4 {
            self.mean[i] += self.mean[i + 4];
        }
        // F P: row i (< 4) gains row i + 4.
        let mut fp = self.cov;
        let (pos, vel) = fp.split_at_mut(4);
        for (row, v) in pos.iter_mut().zip(vel.iter()) {
            for (a, b) in row.iter_mut().zip(v) {
                *a += b;
            }
        }
        // (F P) Fᵀ: column j (< 4) gains column j + 4.
        let mut fpf = fp;
        for row in fpf.iter_mut() {
            for j in 0..4 {
                row[j] += row[j + 4];
            }
        }
        for ((c, f), q) in self.cov.iter_mut().flatten().zip(fpf.iter().flatten()).zip(q.iter().flatten()) {
            *c = f + q;
        }
    }

    /// The measurement-space prediction: `H x` and `S = H P Hᵀ + R`.
    fn project(&self) -> (Vec4, Mat4) {
        let h = noise_h(self.mean[3]);
        let p = STD_WEIGHT_POSITION * h;
        let r = [p, p, 1e-1, p];
        let mut s = [[0.0; 4]; 4];
        for (i, (row, cov)) in s.iter_mut().zip(&self.cov).enumerate() {
            row.copy_from_slice(&cov[..4]);
            row[i] += r[i] * r[i];
        }
        ([self.mean[0], self.mean[1], self.mean[2], self.mean[3]], s)
    }

    /// Correct the state with the measurement `z` (`[cx, cy, a, h]`). Returns `false`, leaving
    /// the state as it was, when the step cannot be taken (the caller re-initiates).
    pub fn update(&mut self, z: Vec4) -> bool {
        let (proj, s) = self.project();
        let Some(l) = cholesky4(&s) else { return false };
        // K = P Hᵀ S⁻¹, i.e. S Kᵀ = (P Hᵀ)ᵀ: each row of K solves S k = (row of P Hᵀ).
        let mut k = [[0.0; 4]; 8];
        for (i, row) in k.iter_mut().enumerate() {
            let b = [self.cov[i][0], self.cov[i][1], self.cov[i][2], self.cov[i][3]];
            *row = cholesky_solve(&l, b);
        }
        let y = [z[0] - proj[0], z[1] - proj[1], z[2] - proj[2], z[3] - proj[3]];
        let mut mean = self.mean;
        for (m, k) in mean.iter_mut().zip(&k) {
            *m += k.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>();
        }
        // P - K S Kᵀ, where K S = P Hᵀ (exactly, by construction): P - (P Hᵀ) Kᵀ.
        let mut cov = self.cov;
        for (row, p) in cov.iter_mut().zip(&self.cov) {
            for (c, k) in row.iter_mut().zip(&k) {
                *c -= p[..4].iter().zip(k).map(|(a, b)| a * b).sum::<f64>();
            }
        }
        // Keep it exactly symmetric, so rounding cannot accumulate into asymmetry.
        let raw = cov;
        for (i, row) in cov.iter_mut().enumerate() {
            for (j, c) in row.iter_mut().enumerate() {
                *c = (raw[i][j] + raw[j][i]) / 2.0;
            }
        }
        let finite = mean.iter().all(|v| v.is_finite()) && cov.iter().flatten().all(|v| v.is_finite());
        if !finite {
            return false;
        }
        self.mean = mean;
        self.cov = cov;
        true
    }

    /// Whether mean and covariance are all finite.
    pub fn is_finite(&self) -> bool {
        self.mean.iter().all(|v| v.is_finite()) && self.cov.iter().flatten().all(|v| v.is_finite())
    }
}

/// Lower-triangular `L` with `L Lᵀ = s`; `None` unless `s` is (numerically) positive definite.
fn cholesky4(s: &Mat4) -> Option<Mat4> {
    let mut l = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..=i {
            let sum = s[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if !(sum > 0.0 && sum.is_finite()) {
                    return None;
                }
                l[i][i] = sum.sqrt();
            } else {
                l[i][j] = sum / l[j][j];
            }
        }
    }
    Some(l)
}

/// `x` with `L Lᵀ x = b`.
fn cholesky_solve(l: &Mat4, b: Vec4) -> Vec4 {
    let mut y = [0.0; 4];
    for i in 0..4 {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = [0.0; 4];
    for i in (0..4).rev() {
        x[i] = (y[i] - (i + 1..4).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn box_conversions_round_trip_and_refuse_garbage() {
        let m = xyah_from_tlbr(&[10.0, 20.0, 50.0, 100.0]).unwrap();
        assert_eq!(m, [30.0, 60.0, 0.5, 80.0]);
        let mut mean = [0.0; 8];
        mean[..4].copy_from_slice(&m);
        assert_eq!(tlbr_from_state(&mean), [10.0, 20.0, 50.0, 100.0]);
        assert!(xyah_from_tlbr(&[0.0, 0.0, 0.0, 10.0]).is_none());
        assert!(xyah_from_tlbr(&[0.0, 0.0, 10.0, 0.0]).is_none());
        assert!(xyah_from_tlbr(&[10.0, 0.0, 0.0, 10.0]).is_none());
        assert!(xyah_from_tlbr(&[f32::NAN, 0.0, 10.0, 10.0]).is_none());
        assert!(xyah_from_tlbr(&[0.0, 0.0, f32::INFINITY, 10.0]).is_none());
        assert!(xyah_from_tlbr(&[-f32::MAX, 0.0, f32::MAX, 10.0]).is_some());
    }

    #[test]
    fn initiate_matches_the_reference_covariance() {
        let k = KalmanState::initiate([100.0, 100.0, 0.5, 80.0]);
        assert_eq!(k.mean, [100.0, 100.0, 0.5, 80.0, 0.0, 0.0, 0.0, 0.0]);
        // std = 2 * h / 20 = 8 for positions, 10 * h / 160 = 5 for velocities.
        assert!(close(k.cov[0][0], 64.0, 1e-9) && close(k.cov[3][3], 64.0, 1e-9));
        assert!(close(k.cov[4][4], 25.0, 1e-9) && close(k.cov[2][2], 1e-4, 1e-12));
        assert_eq!(k.cov[0][1], 0.0);
    }

    #[test]
    fn predict_moves_by_the_velocity_and_grows_uncertainty() {
        let mut k = KalmanState::initiate([100.0, 100.0, 0.5, 80.0]);
        k.mean[4] = 3.0;
        k.mean[5] = -2.0;
        let before = k.cov[0][0];
        k.predict();
        assert_eq!(&k.mean[..4], &[103.0, 98.0, 0.5, 80.0]);
        // P00 + 2 P04 + P44 + Q00 = 64 + 0 + 25 + 16.
        assert!(close(k.cov[0][0], before + 25.0 + 16.0, 1e-9));
        assert!(close(k.cov[0][4], 25.0, 1e-9) && close(k.cov[4][0], 25.0, 1e-9));
    }

    #[test]
    fn learns_a_constant_velocity() {
        let mut k = KalmanState::initiate([0.0, 0.0, 0.5, 100.0]);
        for t in 1..=30 {
            k.predict();
            assert!(k.update([5.0 * t as f64, 2.0 * t as f64, 0.5, 100.0]));
        }
        assert!(close(k.mean[4], 5.0, 0.05), "vx {}", k.mean[4]);
        assert!(close(k.mean[5], 2.0, 0.05), "vy {}", k.mean[5]);
        k.predict();
        assert!(close(k.mean[0], 155.0, 0.5) && close(k.mean[1], 62.0, 0.5));
        for i in 0..8 {
            assert!(k.cov[i][i] > 0.0);
            for j in 0..8 {
                assert_eq!(k.cov[i][j], k.cov[j][i]);
            }
        }
    }

    #[test]
    fn update_pulls_toward_the_measurement() {
        let mut k = KalmanState::initiate([0.0, 0.0, 1.0, 50.0]);
        k.predict();
        assert!(k.update([10.0, 0.0, 1.0, 50.0]));
        assert!(k.mean[0] > 5.0 && k.mean[0] < 10.0, "cx {}", k.mean[0]);
        assert!(k.mean[4] > 0.0);
    }

    #[test]
    fn degenerate_steps_are_refused_not_poisoned() {
        let mut k = KalmanState::initiate([0.0, 0.0, 1.0, 1e-30]);
        k.predict();
        assert!(k.update([1.0, 1.0, 1.0, 1e-30]));
        assert!(k.is_finite());
        let before = k.clone();
        assert!(!k.update([f64::NAN, 0.0, 1.0, 1.0]));
        assert_eq!(k, before);
        let mut bad = KalmanState::initiate([0.0, 0.0, 1.0, 10.0]);
        bad.cov[1][1] = f64::NAN;
        assert!(!bad.update([0.0, 0.0, 1.0, 10.0]));
        bad.predict(); // no panic
        assert!(!bad.is_finite());
    }
}
