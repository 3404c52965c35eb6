//! Wire ids: the small integers that name entities in snapshots and events.
//!
//! Smallest free id first (small ids keep MessagePack rows short), with every freed id
//! quarantined for [`QUARANTINE_S`] of simulated time so a client never mistakes a new
//! entity for one that just vanished. Must not allocate in the steady state: the bitmap
//! and the queue only grow when more ids are live or quarantined at once than ever before.

use std::collections::VecDeque;

use super::hash::StateHasher;

/// Seconds of simulated time before a freed id may be handed out again.
pub(crate) const QUARANTINE_S: f64 = 2.0;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct WireIds {
    /// Ids at or above this have never been handed out.
    next_fresh: u32,
    /// Bit `i` set: id `i` was freed and its quarantine is over.
    reusable: Vec<u64>,
    /// Freed ids with the clock reading at which they become reusable. Release times only
    /// grow (the clock is monotonic and the quarantine constant), so this is a FIFO.
    quarantine: VecDeque<(u32, f64)>,
    clock_s: f64,
}

impl WireIds {
    pub(crate) fn new() -> Self {
        WireIds {
            next_fresh: 1,
            reusable: Vec::new(),
            quarantine: VecDeque::new(),
            clock_s: 0.0,
        }
    }

    pub(crate) fn allocate(&mut self) -> u32 {
        // Every reusable id is below `next_fresh`, so the lowest reusable one, if any, is
        // the smallest free id. A linear scan is fine: a few dozen words at most.
        for (word_index, word) in self.reusable.iter_mut().enumerate() {
            if *word != 0 {
                let bit = word.trailing_zeros();
                *word &= !(1u64 << bit);
                return word_index as u32 * 64 + bit;
            }
        }
        let id = self.next_fresh;
        // Unreachable in practice (it would take four billion entities alive or
        // quarantined at once), but an overflow must not panic.
        self.next_fresh = self.next_fresh.saturating_add(1);
        id
    }

    pub(crate) fn release(&mut self, id: u32) {
        self.quarantine.push_back((id, self.clock_s + QUARANTINE_S));
    }

    /// Moves the clock on by `dt_s` and ends the quarantines that are over.
    pub(crate) fn advance(&mut self, dt_s: f64) {
        self.clock_s += dt_s;
        while let Some(&(id, reusable_at)) = self.quarantine.front() {
            if reusable_at > self.clock_s {
                break;
            }
            self.quarantine.pop_front();
            let word_index = (id / 64) as usize;
            if word_index >= self.reusable.len() {
                self.reusable.resize(word_index + 1, 0);
            }
            self.reusable[word_index] |= 1u64 << (id % 64);
        }
    }

    pub(crate) fn hash_into(&self, h: &mut StateHasher) {
        h.u32(self.next_fresh);
        h.usize(self.reusable.len());
        for &word in &self.reusable {
            h.u64(word);
        }
        h.usize(self.quarantine.len());
        for &(id, at) in &self.quarantine {
            h.u32(id);
            h.f64(at);
        }
        h.f64(self.clock_s);
    }
}

#[cfg(test)]
mod tests {
    use super::WireIds;

    #[test]
    fn smallest_free_first_and_quarantined_for_two_seconds() {
        let mut ids = WireIds::new();
        assert_eq!((ids.allocate(), ids.allocate(), ids.allocate()), (1, 2, 3));
        ids.release(2);
        ids.release(1);
        assert_eq!(ids.allocate(), 4, "freed ids are quarantined");
        ids.advance(1.99);
        assert_eq!(ids.allocate(), 5, "still quarantined just before 2 s");
        ids.advance(0.01);
        assert_eq!(ids.allocate(), 1, "smallest first once released");
        assert_eq!(ids.allocate(), 2);
        assert_eq!(ids.allocate(), 6);
    }

    #[test]
    fn ids_above_64_are_reused() {
        let mut ids = WireIds::new();
        let all: Vec<u32> = (0..200).map(|_| ids.allocate()).collect();
        assert_eq!(all[199], 200);
        ids.release(130);
        ids.release(70);
        ids.advance(2.0);
        assert_eq!(ids.allocate(), 70);
        assert_eq!(ids.allocate(), 130);
        assert_eq!(ids.allocate(), 201);
    }
}
