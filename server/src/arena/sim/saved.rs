//! Slotmaps as checkpoints hold them: their slots and the order of their free list, so a
//! restored map hands out the same slots next, in the same order, as the original would.
//!
//! slotmap's own serde keeps every slot and its version but rebuilds the free list in
//! index order, and where the next entity lands decides the world's iteration order (who
//! is hit first when two shots land in one step). The order is read off a clone (insert
//! until every free slot is used) and re-imposed after loading (fill every free slot,
//! then vacate them last-first). Vacating bumps a free slot's version by two, which no
//! key in the world can observe: nothing refers to a vacant slot, and the state hash
//! covers slot indices only.
//!
//! Must not change a live map: saving works on a clone.

use serde::{Deserialize, Serialize};
use slotmap::{Key, SlotMap};

/// See the module docs.
#[derive(Serialize, Deserialize)]
#[serde(bound(serialize = "V: Serialize", deserialize = "V: Deserialize<'de>"))]
pub(super) struct SavedSlots<K: Key, V> {
    map: SlotMap<K, V>,
    /// Slot indices of the free list, head first.
    free: Vec<u32>,
}

/// A checkpoint of `map`.
pub(super) fn save<K: Key, V: Clone + Default>(map: &SlotMap<K, V>) -> SavedSlots<K, V> {
    let mut probe = map.clone();
    let mut free = Vec::new();
    loop {
        let key = probe.insert(V::default());
        // A slot never used before has version 1: the free list is exhausted.
        if key.data().as_ffi() >> 32 == 1 {
            break;
        }
        free.push(key.data().as_ffi() as u32);
    }
    SavedSlots {
        map: map.clone(),
        free,
    }
}

/// The map [`save`] saw, handing out free slots in the same order.
pub(super) fn load<K: Key, V: Default>(saved: SavedSlots<K, V>) -> SlotMap<K, V> {
    let SavedSlots { mut map, free } = saved;
    let fillers: Vec<K> = free.iter().map(|_| map.insert(V::default())).collect();
    let mut by_index: Vec<(u32, K)> = fillers
        .into_iter()
        .map(|k| (k.data().as_ffi() as u32, k))
        .collect();
    by_index.sort_unstable_by_key(|&(i, _)| i);
    // Vacate last-first: the last slot vacated becomes the head.
    for index in free.iter().rev() {
        if let Ok(at) = by_index.binary_search_by_key(index, |&(i, _)| i) {
            map.remove(by_index[at].1);
        }
    }
    map
}
