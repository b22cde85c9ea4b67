//! The plane geometry of zones and lines, in frame pixels (x right, y down), in `f64`: which
//! side of a line a point is on, whether two segments cross, whether a point is inside a
//! polygon, whether a polygon crosses itself. Pure functions, no allocation.

/// A point in frame pixels.
pub type Point = [f64; 2];

/// Twice the signed area of the triangle `a b p`: positive when `p` is on the right of the
/// directed line `a → b` as seen in the image (y grows downwards), negative on its left, zero on
/// the line.
pub fn cross(a: Point, b: Point, p: Point) -> f64 {
    (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
}

/// Which side of the directed line `a → b` the point `p` is on: 1 right, -1 left, 0 on it.
pub fn side(a: Point, b: Point, p: Point) -> i8 {
    let c = cross(a, b, p);
    if c > 0.0 {
        1
    } else if c < 0.0 {
        -1
    } else {
        0
    }
}

/// Whether the segments `p1 p2` and `q1 q2` cross properly: each one's ends strictly on the two
/// sides of the other's line. Touching at an end or lying along each other is not a crossing.
pub fn segments_cross(p1: Point, p2: Point, q1: Point, q2: Point) -> bool {
    side(p1, p2, q1) * side(p1, p2, q2) < 0 && side(q1, q2, p1) * side(q1, q2, p2) < 0
}

/// Whether `p` is inside `polygon` (even-odd rule, so a point on an edge may fall either way;
/// an anchor is rarely exactly on an edge, and inertia absorbs it when it is).
pub fn inside(polygon: &[Point], p: Point) -> bool {
    let mut inside = false;
    let n = polygon.len();
    for i in 0..n {
        let (a, b) = (polygon[i], polygon[(i + 1) % n]);
        if (a[1] > p[1]) != (b[1] > p[1]) {
            let x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
            if p[0] < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// Whether the closed polygon crosses or touches itself: two of its edges that are not
/// neighbours meet, or two neighbours fold back onto each other. O(n²) for n ≤ 64 points.
pub fn self_intersects(polygon: &[Point]) -> bool {
    let n = polygon.len();
    let edge = |i: usize| (polygon[i], polygon[(i + 1) % n]);
    for i in 0..n {
        let (a, b) = edge(i);
        for j in i + 1..n {
            let (c, d) = edge(j);
            let neighbours = j == i + 1 || (i == 0 && j == n - 1);
            if neighbours {
                // Neighbours share one end; they overlap only if they fold back along one line.
                let (shared, other_a, other_b) = if j == i + 1 { (b, a, d) } else { (a, b, c) };
                if cross(shared, other_a, other_b) == 0.0 && dot(shared, other_a, other_b) > 0.0 {
                    return true;
                }
            } else if segments_meet(a, b, c, d) {
                return true;
            }
        }
    }
    false
}

/// `(a - o) · (b - o)`.
fn dot(o: Point, a: Point, b: Point) -> f64 {
    (a[0] - o[0]) * (b[0] - o[0]) + (a[1] - o[1]) * (b[1] - o[1])
}

/// Whether the closed segments `a b` and `c d` have any point in common.
fn segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool {
    let (d1, d2, d3, d4) = (side(c, d, a), side(c, d, b), side(a, b, c), side(a, b, d));
    if d1 * d2 < 0 && d3 * d4 < 0 {
        return true;
    }
    let on = |p: Point, q: Point, r: Point| {
        // r on the segment p q, given that the three are collinear.
        r[0] >= p[0].min(q[0]) && r[0] <= p[0].max(q[0]) && r[1] >= p[1].min(q[1]) && r[1] <= p[1].max(q[1])
    };
    (d1 == 0 && on(c, d, a)) || (d2 == 0 && on(c, d, b)) || (d3 == 0 && on(a, b, c)) || (d4 == 0 && on(a, b, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_are_as_seen_in_the_image() {
        // A line drawn left to right: below it (y larger) is its right.
        assert_eq!(side([0.0, 0.0], [10.0, 0.0], [5.0, 3.0]), 1);
        assert_eq!(side([0.0, 0.0], [10.0, 0.0], [5.0, -3.0]), -1);
        assert_eq!(side([0.0, 0.0], [10.0, 0.0], [20.0, 0.0]), 0);
    }

    #[test]
    fn segments_cross_only_within_both_extents() {
        let (a, b) = ([0.0, 0.0], [10.0, 0.0]);
        assert!(segments_cross(a, b, [5.0, -1.0], [5.0, 1.0]));
        assert!(!segments_cross(a, b, [15.0, -1.0], [15.0, 1.0]), "past the end: the infinite line only");
        assert!(!segments_cross(a, b, [5.0, 0.0], [5.0, 1.0]), "from on the line is no crossing");
        assert!(!segments_cross(a, b, [2.0, 0.0], [8.0, 0.0]), "along the line");
    }

    #[test]
    fn points_in_a_concave_polygon() {
        // A "U": the notch (4..6, 0..8) is outside.
        let u = [[0.0, 0.0], [4.0, 0.0], [4.0, 8.0], [6.0, 8.0], [6.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!(inside(&u, [2.0, 2.0]));
        assert!(inside(&u, [8.0, 2.0]));
        assert!(!inside(&u, [5.0, 2.0]));
        assert!(inside(&u, [5.0, 9.0]));
        assert!(!inside(&u, [11.0, 5.0]));
    }

    #[test]
    fn self_intersection_and_folds_are_found() {
        let square = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        assert!(!self_intersects(&square));
        let bowtie = [[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]];
        assert!(self_intersects(&bowtie));
        let fold = [[0.0, 0.0], [10.0, 0.0], [5.0, 0.0], [5.0, 5.0]];
        assert!(self_intersects(&fold), "an edge that doubles back on its neighbour");
        let touch = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [5.0, 0.0], [0.0, 10.0]];
        assert!(self_intersects(&touch), "a vertex on another edge");
        let triangle = [[0.0, 0.0], [10.0, 0.0], [5.0, 8.0]];
        assert!(!self_intersects(&triangle));
    }
}
