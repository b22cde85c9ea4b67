//! OpenCV `findContours` (Suzuki–Abe border following, `RETR_LIST`, `CHAIN_APPROX_SIMPLE`):
//! the DB post-process turns the binarised text map into polygons with it. Ported rather than
//! re-derived because the reference's boxes depend on OpenCV's exact vertex order and
//! compression.

const CODE_DELTAS: [[i32; 2]; 8] = [[1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1]];

/// All borders (outer borders and hole borders) of the 8-connected foreground of `bitmap` (`w*h`),
/// as pixel-centre polygons with collinear runs compressed, in OpenCV's output order.
pub fn find_contours(bitmap: &[bool], w: usize, h: usize) -> Vec<Vec<[i32; 2]>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bm(rows: &[&str]) -> (Vec<bool>, usize, usize) {
        let h = rows.len();
        let w = rows[0].len();
        (rows.iter().flat_map(|r| r.bytes().map(|b| b == b'#')).collect(), w, h)
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
}
