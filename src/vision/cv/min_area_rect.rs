//! OpenCV `convexHull` (Sklansky, clockwise), `minAreaRect` (rotating calipers, in f32 as
//! OpenCV computes it) and `boxPoints`: the DB post-process fits a rotated rectangle to each
//! contour, and the reference's later rounding makes f32-exactness matter.

use super::fcmp;

fn sign_f64(v: f64) -> i32 {
    (v > 0.0) as i32 - (v < 0.0) as i32
}

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
pub fn convex_hull(pts: &[[f32; 2]]) -> Vec<[f32; 2]> {
    convex_hull_oriented(pts, true)
}

/// OpenCV `convexHull(points, hull, clockwise, returnPoints=true)`: `clockwise` picks the order
/// (`minAreaRect` asks for the counter-clockwise one).
pub fn convex_hull_oriented(pts: &[[f32; 2]], clockwise: bool) -> Vec<[f32; 2]> {
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
        let tl0 = sklansky(&ptr, pts, 0, maxy, -1, 1);
        let tr0 = sklansky(&ptr, pts, total - 1, maxy, -1, -1);
        // counter-clockwise: swap the upper halves (before `stop` is taken, as OpenCV does)
        let (tl, tr) = if clockwise { (tl0, tr0) } else { (tr0, tl0) };
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
        let (mut bl, mut br) = if clockwise { (br0, bl0) } else { (bl0, br0) };
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
/// OpenCV 4.x runs the calipers on the counter-clockwise hull.
pub fn min_area_rect(pts: &[[f32; 2]]) -> ([f32; 2], [f32; 2], f32) {
    let hull = convex_hull_oriented(pts, false);
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
    // `(float)(box.angle*180/CV_PI)`: `box.angle` is a float, so `*180` is an f32 product.
    (center, size, ((angle * 180.0) as f64 / std::f64::consts::PI) as f32)
}

/// OpenCV `firstVecIsRight`: `rotate90CW(vec1) · vec2 < 0`, in f32.
fn first_vec_is_right(vec1: [f32; 2], vec2: [f32; 2]) -> bool {
    let tmp = [vec1[1], -vec1[0]];
    tmp[0] * vec2[0] + tmp[1] * vec2[1] < 0.0
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
    // OpenCV asserts a non-zero orientation; it starts the base at (orientation, 0), which 4.x's
    // direction test no longer reads (the first rotation overwrites it).
    if orientation == 0.0 {
        return None;
    }
    let mut seq = [bottom, right, top, left];
    let mut minarea = f32::MAX;
    let mut best: Option<(usize, f32, f32, f32, f32, usize)> = None;
    for _ in 0..n {
        // OpenCV 4.x: the caliper edges turned into a common frame (as is, 90° clockwise, 180°,
        // 90° counter-clockwise); the main one is the right-most by `firstVecIsRight`.
        let (v0, v1, v2, v3) = (vect[seq[0]], vect[seq[1]], vect[seq[2]], vect[seq[3]]);
        let rot = [v0, [v1[1], -v1[0]], [-v2[0], -v2[1]], [-v3[1], v3[0]]];
        let mut main = 0usize;
        for i in 1..4 {
            if first_vec_is_right(rot[i], rot[main]) {
                main = i;
            }
        }
        let pi = seq[main];
        let lx = vect[pi][0] * inv[pi];
        let ly = vect[pi][1] * inv[pi];
        let (base_a, base_b) = match main {
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
pub fn box_points(center: [f32; 2], size: [f32; 2], angle: f32) -> [[f32; 2]; 4] {
    let ang = angle as f64 * std::f64::consts::PI / 180.0;
    let b = ang.cos() as f32 * 0.5;
    let a = ang.sin() as f32 * 0.5;
    let p0 = [center[0] - a * size[1] - b * size[0], center[1] + b * size[1] - a * size[0]];
    let p1 = [center[0] + a * size[1] - b * size[0], center[1] - b * size[1] - a * size[0]];
    let p2 = [2.0 * center[0] - p0[0], 2.0 * center[1] - p0[1]];
    let p3 = [2.0 * center[0] - p1[0], 2.0 * center[1] - p1[1]];
    [p0, p1, p2, p3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::ocr::detection::mini_box;

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
}
