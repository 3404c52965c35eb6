//! A growable set of wire ids as a bitset: what a client knows, which entities are live.
//!
//! Word-level operations only; must not allocate once a set has grown to the largest id
//! seen, nor know what the ids stand for.

/// A set of ids below [`super::ID_LIMIT`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    pub(crate) fn contains(&self, id: u32) -> bool {
        let (w, b) = (id as usize / 64, id % 64);
        self.words.get(w).is_some_and(|word| word & (1 << b) != 0)
    }

    pub(crate) fn insert(&mut self, id: u32) {
        let (w, b) = (id as usize / 64, id % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << b;
    }

    pub(crate) fn remove(&mut self, id: u32) {
        if let Some(word) = self.words.get_mut(id as usize / 64) {
            *word &= !(1 << (id % 64));
        }
    }

    /// Empties the set, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    /// Makes `self` equal to `other`, reusing the allocation.
    pub(crate) fn copy_from(&mut self, other: &IdSet) {
        self.words.resize(other.words.len(), 0);
        for (w, &o) in self.words.iter_mut().zip(&other.words) {
            *w = o;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Ids in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        ones(self.words.iter().copied())
    }

    /// Ids in `self` and not in `other`, ascending.
    pub(crate) fn minus<'a>(&'a self, other: &'a IdSet) -> impl Iterator<Item = u32> + 'a {
        ones(
            self.words
                .iter()
                .enumerate()
                .map(|(i, w)| w & !other.words.get(i).copied().unwrap_or(0)),
        )
    }
}

fn ones(words: impl Iterator<Item = u64>) -> impl Iterator<Item = u32> {
    words.enumerate().flat_map(|(i, mut w)| {
        std::iter::from_fn(move || {
            if w == 0 {
                return None;
            }
            let b = w.trailing_zeros();
            w &= w - 1;
            Some(i as u32 * 64 + b)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn set_operations_work_across_words() {
        let mut a = IdSet::default();
        for id in [0, 63, 64, 200, 5] {
            a.insert(id);
        }
        let mut b = IdSet::default();
        b.insert(63);
        b.insert(1000);
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 5, 63, 64, 200]);
        assert_eq!(a.minus(&b).collect::<Vec<_>>(), [0, 5, 64, 200]);
        assert_eq!(b.minus(&a).collect::<Vec<_>>(), [1000]);
        assert_eq!(a.len(), 5);
        a.remove(64);
        a.remove(99_999);
        assert!(!a.contains(64) && a.contains(200) && !a.contains(99_999));
        b.copy_from(&a);
        assert_eq!(a, b);
        a.clear();
        assert_eq!(a.len(), 0);
    }
}
