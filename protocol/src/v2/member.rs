//! What the encoder remembers about one recipient: the snapshot it holds (its baseline),
//! the few sent after it that it may take next, and when it last got a state hash.
//!
//! The engine tells [`super::Encoder::encode_for`] which snapshot the session last took
//! from its outbox (newest wins, so a frame may be replaced unread and never reach the
//! client). That tick names the baseline: the recipient's state is the one recorded for
//! it here. A tick this member does not know, a request for a keyframe, or no snapshot
//! taken yet all mean the next frame is a keyframe. Bounded: at most [`SENT_KEPT`] frames
//! are remembered beside the held one.

use std::collections::VecDeque;

use super::bits::IdSet;

/// Frames remembered after the held one. The outbox keeps only the newest snapshot, so
/// the session can only take the newest frame pushed, or one pushed just before it when a
/// take races the next push: a handful covers every interleaving.
pub const SENT_KEPT: usize = 4;

/// One frame as the recipient holds it once taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sent {
    pub(crate) tick: u32,
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
    held: Option<Sent>,
    sent: VecDeque<Sent>,
    spare: Vec<IdSet>,
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
        if let Some(h) = self.held.take() {
            self.spare.push(h.known);
        }
        while let Some(s) = self.sent.pop_front() {
            self.spare.push(s.known);
        }
    }

    /// Whether the next frame will be a keyframe whatever is taken (a resync is pending).
    pub fn keyframe_pending(&self) -> bool {
        self.keyframe_needed
    }

    /// Moves the held state to the frame the session last took.
    pub(crate) fn take(&mut self, taken: Option<u32>) {
        let Some(t) = taken else {
            self.drop_held();
            return;
        };
        if let Some(i) = self.sent.iter().position(|s| s.tick == t) {
            let s = self.sent.remove(i).expect("index in range");
            while self.sent.front().is_some_and(|f| f.tick <= t) {
                let old = self.sent.pop_front().expect("front exists");
                self.spare.push(old.known);
            }
            if s.keyframe {
                self.keyframe_needed = false;
            }
            self.drop_held();
            self.held = Some(s);
        } else if self.held.as_ref().is_none_or(|h| h.tick != t) {
            self.drop_held();
        }
    }

    fn drop_held(&mut self) {
        if let Some(h) = self.held.take() {
            self.spare.push(h.known);
        }
    }

    /// The state a delta may be built against: none while a keyframe is needed, and
    /// never tick 0 (a baseline of 0 means "keyframe" on the wire).
    pub(crate) fn baseline(&self) -> Option<&Sent> {
        if self.keyframe_needed {
            return None;
        }
        self.held.as_ref().filter(|h| h.tick != 0)
    }

    /// Remembers a frame pushed at `tick`.
    pub(crate) fn record(&mut self, tick: u32, known: &IdSet, everything: bool, keyframe: bool) {
        if let Some(i) = self.sent.iter().position(|s| s.tick >= tick) {
            for s in self.sent.drain(i..) {
                self.spare.push(s.known);
            }
        }
        if self.sent.len() >= SENT_KEPT {
            let old = self.sent.pop_front().expect("non-empty");
            self.spare.push(old.known);
        }
        let mut set = self.spare.pop().unwrap_or_default();
        set.copy_from(known);
        self.sent.push_back(Sent {
            tick,
            known: set,
            everything,
            keyframe,
        });
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
        self.sent.back().map(|s| &s.known)
    }
}
