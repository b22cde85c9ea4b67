//! OpenCV `fillPoly` with the default `LINE_8` edges: the mask the DB box score averages the
//! probability map over. Which border pixels count is what makes the score match the reference.
//!
//! OpenCV 4.10's `fillPoly` runs `CollectPolyEdges` + `FillEdgeCollection` (for one polygon
//! too): each edge's outline is drawn by `Line` (a `LineIterator`, which first clips the segment
//! to the image with `clipLine` and then runs Bresenham from the clipped ends), and an edge that
//! leaves the image is filled from its clipped end points (`clipLine` again), not from its
//! vertices. All of that is ported here, so vertices outside the mask give OpenCV's pixels.

const XY_SHIFT: u32 = 16;
const XY_ONE: i64 = 1 << XY_SHIFT;

/// `cv2.fillPoly(mask, [poly.astype(np.int32)], 1)` with the default LINE_8 on a `w × h` mask.
pub fn fill_poly(poly: &[[i64; 2]], w: usize, h: usize) -> Vec<bool> {
    let mut mask = vec![false; w * h];
    let n = poly.len();
    if n == 0 || w == 0 || h == 0 {
        return mask;
    }
    let (wi, hi) = (w as i64, h as i64);
    // OpenCV takes `Point` (int32) vertices, as the reference's `astype(np.int32)` makes them.
    let poly: Vec<[i64; 2]> = poly.iter().map(|p| [p[0] as i32 as i64, p[1] as i32 as i64]).collect();
    let inside = |p: [i64; 2]| p[0] >= 0 && p[0] < wi && p[1] >= 0 && p[1] < hi;

    // CollectPolyEdges (shift = 0, no offset): edges as (y0, y1, x at y0 in 16.16, dx per row).
    let mut edges: Vec<(i64, i64, i64, i64)> = Vec::with_capacity(n);
    let mut pt0 = poly[n - 1];
    for &pt1 in &poly {
        line8(&mut mask, wi, hi, pt0, pt1);
        let (mut c0, mut c1) = ([pt0[0] << XY_SHIFT, pt0[1]], [pt1[0] << XY_SHIFT, pt1[1]]);
        if inside(pt0) && inside(pt1) {
            c0[0] += XY_ONE >> 1;
            c1[0] += XY_ONE >> 1;
        } else {
            // "use clipped endpoints to create a more accurate PolyEdge"
            let (mut t0, mut t1) = (pt0, pt1);
            clip_line(wi, hi, &mut t0, &mut t1);
            if t0[1] != t1[1] {
                c0 = [t0[0] << XY_SHIFT, t0[1]];
                c1 = [t1[0] << XY_SHIFT, t1[1]];
            }
        }
        if pt0[1] != pt1[1] {
            // int64 arithmetic as OpenCV's (division truncates toward zero, as C's does).
            let dx = (c1[0] - c0[0]) / (c1[1] - c0[1]);
            if pt0[1] < pt1[1] {
                edges.push((pt0[1], pt1[1], c0[0].wrapping_add((pt0[1] - c0[1]).wrapping_mul(dx)), dx));
            } else {
                edges.push((pt1[1], pt0[1], c1[0].wrapping_add((pt1[1] - c1[1]).wrapping_mul(dx)), dx));
            }
        }
        pt0 = pt1;
    }

    // FillEdgeCollection: scanlines y0 <= y < y1 of each edge, spans between pairs of edges in x
    // order. (OpenCV keeps an x-sorted active list and steps each x by dx; x at row y is the same
    // `x + (y - y0) * dx`.) The edges carry the +½, so both span ends are floors.
    if edges.len() < 2 {
        return mask;
    }
    let end_x = |e: &(i64, i64, i64, i64)| e.2.wrapping_add((e.1 - e.0).wrapping_mul(e.3));
    let y_min = edges.iter().map(|e| e.0).min().unwrap_or(0);
    let y_max = edges.iter().map(|e| e.1).max().unwrap_or(0);
    let x_min = edges.iter().map(|e| e.2.min(end_x(e))).min().unwrap_or(0);
    let x_max = edges.iter().map(|e| e.2.max(end_x(e))).max().unwrap_or(0);
    if y_max < 0 || y_min >= hi || x_max < 0 || x_min >= wi << XY_SHIFT {
        return mask;
    }
    let mut xs: Vec<i64> = Vec::new();
    for y in y_min.max(0)..y_max.min(hi) {
        xs.clear();
        for e in &edges {
            if e.0 <= y && y < e.1 {
                xs.push(e.2.wrapping_add((y - e.0).wrapping_mul(e.3)));
            }
        }
        xs.sort_unstable();
        let row = &mut mask[y as usize * w..(y as usize + 1) * w];
        for pair in xs.chunks_exact(2) {
            let (x1, x2) = (pair[0] >> XY_SHIFT, pair[1] >> XY_SHIFT);
            if x1 < wi && x2 >= 0 {
                let (x1, x2) = (x1.max(0) as usize, x2.min(wi - 1) as usize);
                if x1 <= x2 {
                    row[x1..=x2].fill(true);
                }
            }
        }
    }
    mask
}

/// OpenCV `clipLine(Size2l, Point2l&, Point2l&)` (Cohen–Sutherland, int64 with the double
/// divisions truncated): clips the segment to `[0, w-1] × [0, h-1]` in place; false if it lies
/// outside. Like OpenCV it may move the points even when it returns false.
fn clip_line(w: i64, h: i64, p1: &mut [i64; 2], p2: &mut [i64; 2]) -> bool {
    let (right, bottom) = (w - 1, h - 1);
    if w <= 0 || h <= 0 {
        return false;
    }
    let code = |p: &[i64; 2]| {
        (p[0] < 0) as i32 + (p[0] > right) as i32 * 2 + (p[1] < 0) as i32 * 4 + (p[1] > bottom) as i32 * 8
    };
    let (mut c1, mut c2) = (code(p1), code(p2));
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let a = if c1 < 8 { 0 } else { bottom };
            p1[0] += ((a - p1[1]) as f64 * (p2[0] - p1[0]) as f64 / (p2[1] - p1[1]) as f64) as i64;
            p1[1] = a;
            c1 = (p1[0] < 0) as i32 + (p1[0] > right) as i32 * 2;
        }
        if c2 & 12 != 0 {
            let a = if c2 < 8 { 0 } else { bottom };
            p2[0] += ((a - p2[1]) as f64 * (p2[0] - p1[0]) as f64 / (p2[1] - p1[1]) as f64) as i64;
            p2[1] = a;
            c2 = (p2[0] < 0) as i32 + (p2[0] > right) as i32 * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let a = if c1 == 1 { 0 } else { right };
                p1[1] += ((a - p1[0]) as f64 * (p2[1] - p1[1]) as f64 / (p2[0] - p1[0]) as f64) as i64;
                p1[0] = a;
                c1 = 0;
            }
            if c2 != 0 {
                let a = if c2 == 1 { 0 } else { right };
                p2[1] += ((a - p2[0]) as f64 * (p2[1] - p1[1]) as f64 / (p2[0] - p1[0]) as f64) as i64;
                p2[0] = a;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// OpenCV `Line` with 8-connectivity: a `LineIterator(img, a, b, 8, leftToRight = true)`, which
/// clips the segment to the image first and walks Bresenham from the clipped ends.
fn line8(mask: &mut [bool], w: i64, h: i64, mut a: [i64; 2], mut b: [i64; 2]) {
    let inside = |p: [i64; 2]| p[0] >= 0 && p[0] < w && p[1] >= 0 && p[1] < h;
    let outside = !inside(a) || !inside(b);
    if outside && !clip_line(w, h, &mut a, &mut b) {
        return;
    }
    if a[0] > b[0] {
        std::mem::swap(&mut a, &mut b);
    }
    let dx = b[0] - a[0];
    let dy = (b[1] - a[1]).abs();
    let sy = if b[1] < a[1] { -1 } else { 1 };
    let (major_x, dmaj, dmin) = if dy > dx { (false, dy, dx) } else { (true, dx, dy) };
    let mut err = dmaj - (dmin + dmin);
    let (mut x, mut y) = (a[0], a[1]);
    for _ in 0..=dmaj {
        // The clipped segment stays inside; the check only guards against a bad clip.
        if x >= 0 && x < w && y >= 0 && y < h {
            mask[(y * w + x) as usize] = true;
        }
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
