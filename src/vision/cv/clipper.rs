//! Clipper 6's round-join offset of one closed integer polygon (what pyclipper's
//! `PyclipperOffset(JT_ROUND, ET_CLOSEDPOLYGON)` runs), and the clean-up its union applies: the
//! DB "unclip" step grows each text box with it.

pub fn clipper_area(p: &[[i64; 2]]) -> f64 {
    let n = p.len();
    let mut a = 0.0;
    let mut j = n - 1;
    for i in 0..n {
        a += (p[j][0] as f64 + p[i][0] as f64) * (p[j][1] as f64 - p[i][1] as f64);
        j = i;
    }
    -a * 0.5
}

pub fn clipper_round(v: f64) -> i64 {
    if v < 0.0 {
        (v - 0.5) as i64
    } else {
        (v + 0.5) as i64
    }
}

/// Clipper 6 `ClipperOffset::DoOffset` for one closed polygon with round joins (arc tolerance 0.25).
pub fn offset_round(src: &[[i64; 2]], delta: f64) -> Vec<[i64; 2]> {
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
                // Clipper's `OffsetPoint` returns here without `k = j`: the next vertex joins
                // against this one's incoming normal.
                out.push(at(src[j], nk));
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
pub fn clean_polygon(mut p: Vec<[i64; 2]>) -> Vec<[i64; 2]> {
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
