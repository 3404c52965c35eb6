//! What the encoder remembers about one recipient: the snapshot it holds (its baseline),
//! the few sent after it that it may take next, and when it last got a state hash.
//!
//! The engine tells [`super::Encoder::encode_for`] which snapshot the session last took
//! from its outbox (newest wins, so a frame may be replaced unread and never reach the
//! client). That tick names the baseline: the recipient's state is the one recorded for
//! it here. A tick this member does not know, a request for a keyframe, or no snapshot
//! taken yet all mean the next frame is a keyframe. Bounded: at most [`SENT_KEPT`] frames
//! are remembered beside the held one. Bookkeeping only: it must not look at entities or
//! the outbox itself (the engine hands it the taken tick).

use super::bits::IdSet;

/// Frames remembered after the held one. The outbox keeps only the newest snapshot, so
/// the session can only take the newest frame pushed, or one pushed just before it when a
/// take races the next push: a handful covers every interleaving.
pub const SENT_KEPT: usize = 4;

/// One frame as the recipient holds it once taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent {
    /// The frame's tick; `None` for a free slot.
    pub(crate) tick: Option<u32>,
    /// Entities the recipient holds after this frame.
    pub(crate) known: IdSet,
    /// Built for the everything view: `known` is every live entity at `tick`.
    pub(crate) everything: bool,
    pub(crate) keyframe: bool,
}

/// The encoder's per-recipient state (one per session speaking v2). A new session (join
/// or resume) starts with a new one, so its first frame is a keyframe.
#[derive(Debug, Clone, Default)]
pub struct Member {
    /// The held frame and those sent after it, in no order; a fixed set of slots whose
    /// id sets are reused, so steady operation allocates nothing.
    slots: [Sent; SENT_KEPT + 1],
    held: Option<usize>,
    keyframe_needed: bool,
    pub(crate) last_hash: Option<u32>,
    pub(crate) center: Option<[i64; 2]>,
}

impl Member {
    /// A recipient that holds nothing yet.
    pub fn new() -> Member {
        Member::default()
    }

    /// The client asked for a keyframe (`resync`): frames until it takes one are
    /// keyframes, and nothing sent before counts as a baseline any more.
    pub fn request_keyframe(&mut self) {
        self.keyframe_needed = true;
        self.held = None;
        self.slots.iter_mut().for_each(|s| s.tick = None);
    }

    /// Whether the next frame will be a keyframe whatever is taken (a resync is pending).
    pub fn keyframe_pending(&self) -> bool {
        self.keyframe_needed
    }

    /// Moves the held state to the frame the session last took; frames older than it can
    /// no longer be taken and are forgotten.
    pub(crate) fn take(&mut self, taken: Option<u32>) {
        let found = taken.and_then(|t| self.slots.iter().position(|s| s.tick == Some(t)));
        self.held = found;
        let Some(i) = found else {
            return;
        };
        let t = self.slots[i].tick;
        for s in &mut self.slots {
            if s.tick < t {
                s.tick = None;
            }
        }
        if self.slots[i].keyframe {
            self.keyframe_needed = false;
        }
    }

    /// The state a delta may be built against: none while a keyframe is needed.
    pub(crate) fn baseline(&self) -> Option<(u32, &Sent)> {
        if self.keyframe_needed {
            return None;
        }
        let held = &self.slots[self.held?];
        held.tick.map(|t| (t, held))
    }

    /// Remembers a frame pushed at `tick`: in the slot of an earlier frame of the same tick,
    /// else a free slot, else the oldest one that is not held.
    pub(crate) fn record(&mut self, tick: u32, known: &IdSet, everything: bool, keyframe: bool) {
        let mut pick = usize::from(self.held == Some(0));
        for (i, s) in self.slots.iter().enumerate() {
            if Some(i) == self.held {
                continue;
            }
            if s.tick == Some(tick) {
                pick = i;
                break;
            }
            if s.tick < self.slots[pick].tick {
                pick = i;
            }
        }
        let s = &mut self.slots[pick];
        s.tick = Some(tick);
        s.known.copy_from(known);
        s.everything = everything;
        s.keyframe = keyframe;
    }

    /// Whether a frame at `tick` should carry the state hash.
    pub(crate) fn hash_due(&self, tick: u32, interval: u32) -> bool {
        self.last_hash
            .is_none_or(|last| tick.wrapping_sub(last) >= interval)
    }
}

#[cfg(test)]
impl Member {
    pub(crate) fn last_sent(&self) -> Option<&IdSet> {
        self.slots
            .iter()
            .filter(|s| s.tick.is_some())
            .max_by_key(|s| s.tick)
            .map(|s| &s.known)
    }
}
