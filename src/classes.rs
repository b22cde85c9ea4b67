//! A set of class ids, for the `classes` a client may restrict a session, a zone or a line to.
//!
//! Why a type of its own: a client may name up to 1,000 labels, and membership is asked once per
//! detector candidate (about 1.5 · 10^5 of them for the SSD at `min_score=0`) and once per
//! track, zone and line in the analytics. A list scanned each time multiplied a frame's cost by
//! the list's length; here the names are resolved to ids and deduplicated once, when the options
//! are resolved, and membership is one bit test (ids below [`DENSE_IDS`], every model's classes
//! in practice) or a binary search (the `class_N` ids of a nameless export, up to a million).
//!
//! A leaf: vision's detector and the analytics both use it, and it uses nothing of the crate.

/// Ids below this are kept in a bitmap (128 bytes); larger ones in a sorted list.
pub const DENSE_IDS: usize = 1024;

const WORDS: usize = DENSE_IDS / 64;

/// A set of class ids: each id once, membership in O(1) for ids below [`DENSE_IDS`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassSet {
    dense: [u64; WORDS],
    /// Ids of [`DENSE_IDS`] and above, sorted, each once.
    sparse: Vec<usize>,
}

impl ClassSet {
    /// The set of `ids` (repeats count once).
    pub fn from_ids(ids: impl IntoIterator<Item = usize>) -> ClassSet {
        let mut set = ClassSet::default();
        for id in ids {
            if id < DENSE_IDS {
                set.dense[id / 64] |= 1 << (id % 64);
            } else {
                set.sparse.push(id);
            }
        }
        set.sparse.sort_unstable();
        set.sparse.dedup();
        set
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: usize) -> bool {
        if id < DENSE_IDS {
            self.dense[id / 64] & (1 << (id % 64)) != 0
        } else {
            self.sparse.binary_search(&id).is_ok()
        }
    }

    /// The ids, increasing.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..DENSE_IDS).filter(|&id| self.contains(id)).chain(self.sparse.iter().copied())
    }

    /// How many ids.
    pub fn len(&self) -> usize {
        self.dense.iter().map(|w| w.count_ones() as usize).sum::<usize>() + self.sparse.len()
    }

    /// No id at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FromIterator<usize> for ClassSet {
    fn from_iter<I: IntoIterator<Item = usize>>(ids: I) -> ClassSet {
        ClassSet::from_ids(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_count_once_and_ids_come_back_in_order() {
        let ids = [5usize, 2, 5, 1023, 1024, 999_999, 2, 1024, 0];
        let set: ClassSet = ids.into_iter().collect();
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 2, 5, 1023, 1024, 999_999]);
        assert_eq!(set.len(), 6);
        for id in [0, 2, 5, 1023, 1024, 999_999] {
            assert!(set.contains(id), "{id}");
        }
        for id in [1, 3, 63, 64, 1022, 1025, 999_998, usize::MAX] {
            assert!(!set.contains(id), "{id}");
        }
        assert!(ClassSet::default().is_empty() && !set.is_empty());
    }

    #[test]
    fn a_thousand_repeated_names_make_a_small_set() {
        let set = ClassSet::from_ids((0..1000).map(|i| i % 80));
        assert_eq!(set.len(), 80);
        assert_eq!(set, ClassSet::from_ids(0..80), "equal sets compare equal whatever the input order");
    }
}
