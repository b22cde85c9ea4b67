//! The optimal assignment behind both association steps: a maximum-weight matching of tracks to
//! detections, solved per connected group by the Hungarian method (the shortest-augmenting-path
//! form Jonker-Volgenant uses, as ByteTrack's `lapjv`).

/// Added to every admissible pair's weight, so a pair exactly at the gate still counts as a
/// match (lapjv's `cost_limit` is inclusive only up to rounding, too).
pub(super) const ASSIGN_EPS: f64 = 1e-6;

/// A maximum-weight matching between `rows` and `cols`, where `weight(r, c)` is `Some(w)` with
/// `w > 0` for an admissible pair and `None` otherwise. Returns `(row, col)` pairs.
///
/// The pairs are split into connected groups (union-find over admissible pairs) and each group
/// is solved exactly by the Hungarian method, so isolated objects cost nothing beyond the
/// `weight` calls.
pub(super) fn assign(rows: usize, cols: usize, weight: impl Fn(usize, usize) -> Option<f64>) -> Vec<(usize, usize)> {
    let mut edges = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            if let Some(w) = weight(r, c) {
                if w > 0.0 && w.is_finite() {
                    edges.push((r, c, w));
                }
            }
        }
    }
    // Nodes: rows 0..rows, columns rows..rows + cols.
    let mut parent: Vec<usize> = (0..rows + cols).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for &(r, c, _) in &edges {
        let (a, b) = (find(&mut parent, r), find(&mut parent, rows + c));
        if a != b {
            parent[a] = b;
        }
    }
    // Group the edges by component root, keeping their order.
    let mut groups: Vec<Vec<(usize, usize, f64)>> = Vec::new();
    let mut group_of = vec![usize::MAX; rows + cols];
    for &(r, c, w) in &edges {
        let root = find(&mut parent, r);
        if group_of[root] == usize::MAX {
            group_of[root] = groups.len();
            groups.push(Vec::new());
        }
        groups[group_of[root]].push((r, c, w));
    }
    let mut out = Vec::new();
    for group in groups {
        if let [(r, c, _)] = group[..] {
            out.push((r, c));
            continue;
        }
        let mut rs: Vec<usize> = group.iter().map(|e| e.0).collect();
        let mut cs: Vec<usize> = group.iter().map(|e| e.1).collect();
        rs.sort_unstable();
        rs.dedup();
        cs.sort_unstable();
        cs.dedup();
        // Minimise -w over admissible pairs, 0 elsewhere (= left unmatched).
        let mut cost = vec![vec![0.0; cs.len()]; rs.len()];
        for &(r, c, w) in &group {
            if let (Ok(i), Ok(j)) = (rs.binary_search(&r), cs.binary_search(&c)) {
                cost[i][j] = -w;
            }
        }
        let admissible = |i: usize, j: usize| cost[i][j] < 0.0;
        if rs.len() <= cs.len() {
            for (i, j) in hungarian(&cost, rs.len(), cs.len()) {
                if admissible(i, j) {
                    out.push((rs[i], cs[j]));
                }
            }
        } else {
            let t: Vec<Vec<f64>> = (0..cs.len()).map(|j| (0..rs.len()).map(|i| cost[i][j]).collect()).collect();
            for (j, i) in hungarian(&t, cs.len(), rs.len()) {
                if admissible(i, j) {
                    out.push((rs[i], cs[j]));
                }
            }
        }
    }
    out.sort_unstable();
    out
}

/// The minimum-cost assignment of every one of `n` rows to a distinct one of `m >= n` columns
/// (finite costs), by shortest augmenting paths with potentials, O(n² m). Returns `(row, col)`.
fn hungarian(cost: &[Vec<f64>], n: usize, m: usize) -> Vec<(usize, usize)> {
    // 1-based, column 0 is the virtual start of each augmenting path.
    let mut u = vec![0.0f64; n + 1];
    let mut v = vec![0.0f64; m + 1];
    let mut p = vec![0usize; m + 1];
    let mut way = vec![0usize; m + 1];
    let a = |i: usize, j: usize| cost.get(i - 1).and_then(|row| row.get(j - 1)).copied().unwrap_or(0.0);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; m + 1];
        let mut used = vec![false; m + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=m {
                if !used[j] {
                    let cur = a(i0, j) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            if j1 == 0 {
                // Only with non-finite costs, which callers never pass: give up on this row.
                break;
            }
            for j in 0..=m {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                loop {
                    let j1 = way[j0];
                    p[j0] = p[j1];
                    j0 = j1;
                    if j0 == 0 {
                        break;
                    }
                }
                break;
            }
        }
    }
    (1..=m).filter(|&j| p[j] != 0).map(|j| (p[j] - 1, j - 1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_is_optimal_not_greedy() {
        // Greedy would take (0, 0) = 0.9 and leave row 1 unmatched; the optimum is 0.8 + 0.8.
        let w = [[Some(0.9), Some(0.8)], [Some(0.8), None]];
        assert_eq!(assign(2, 2, |r, c| w[r][c]), vec![(0, 1), (1, 0)]);
        // Rectangular both ways, isolated pairs, and nothing admissible.
        let w = [[Some(0.5), Some(0.4), None], [None, None, Some(0.3)]];
        assert_eq!(assign(2, 3, |r, c| w[r][c]), vec![(0, 0), (1, 2)]);
        assert_eq!(assign(3, 2, |r, c| w[c][r]), vec![(0, 0), (2, 1)]);
        let w = [[Some(0.5)], [Some(0.6)], [Some(0.1)]];
        assert_eq!(assign(3, 1, |r, c| w[r][c]), vec![(1, 0)]);
        assert!(assign(2, 2, |_, _| None).is_empty());
        assert!(assign(0, 5, |_, _| Some(1.0)).is_empty());
        assert!(assign(2, 2, |_, _| Some(f64::NAN)).is_empty());
    }
}
