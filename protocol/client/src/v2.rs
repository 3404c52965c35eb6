//! The state a `rallypoint.v2.msgpack` session reconstructs, and what became of every
//! snapshot frame.
//!
//! [`Reconstruction`] holds the session's [`ClientState`] (made from the `welcome`'s
//! schema) and applies every snapshot frame to it, in order, checking the state hash
//! whenever a frame carries one. A frame that cannot be applied (a delta against a tick
//! this client does not hold, a hash mismatch, an undecodable body) drops the state and
//! asks for a keyframe: the caller sends `{"t":"resync"}` when the outcome says so, which
//! happens at most once per wait for a keyframe (deltas that arrive meanwhile are
//! ignored), and again only if [`RESYNC_RETRY_FRAMES`] frames pass without the keyframe
//! (a request the server never saw must not leave the client blind for good). Counters
//! ([`V2Stats`]) say how many keyframes, deltas and bytes of each came, and how many
//! desyncs there were.
//!
//! Rows are not materialised here: a caller reads what it needs from [`ClientState`]
//! (`rows_at`, `for_each_row_at`, one entity with `with_row_at`). Applying a frame
//! allocates nothing once the state has grown to the room (see
//! [`rallypoint_protocol::v2::decode`]). Must not do IO or read a clock.

use rallypoint_protocol::codec::SnapHeader;
use rallypoint_protocol::message::Welcome;
use rallypoint_protocol::v2::decode::header;
use rallypoint_protocol::v2::{Applied, ClientState, FrameKind, V2Error};

/// Frames that may arrive after a `resync` before it is sent again: about a second at
/// the usual tick rates, far more than a round trip, so a second request means the first
/// was lost (a server may drop a request when its room is overloaded).
pub const RESYNC_RETRY_FRAMES: u32 = 30;

/// What became of one snapshot frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameOutcome {
    /// Applied; the state now holds its tick (its hash was checked when it carried one).
    Applied(Applied),
    /// A delta that arrived while the client holds no state (it waits for a keyframe).
    Ignored,
    /// Refused: the state was dropped.
    Refused,
}

/// One frame, read and applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameResult {
    /// Its `tick` and `ack`, when its header reads (applied or not).
    pub head: Option<SnapHeader>,
    /// What became of it.
    pub outcome: FrameOutcome,
    /// The caller must send `{"t":"resync"}` now.
    pub resync: bool,
}

/// Snapshot frames of one session, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct V2Stats {
    /// Keyframes applied.
    pub keyframes: u64,
    /// Deltas applied.
    pub deltas: u64,
    /// Bytes of keyframes received (whole messages, refused ones included).
    pub keyframe_bytes: u64,
    /// Bytes of deltas received (whole messages, refused and ignored ones included).
    pub delta_bytes: u64,
    /// Frames whose state hash was checked and matched.
    pub hashes_checked: u64,
    /// Frames refused after which the state was dropped: the sum of the three below.
    pub desyncs: u64,
    /// Frames whose state hash did not match.
    pub hash_mismatches: u64,
    /// Deltas against a tick this client did not hold.
    pub baseline_mismatches: u64,
    /// Frames that could not be read or applied (malformed, unknown entities, values out
    /// of range, no usable schema).
    pub undecodable: u64,
    /// Deltas ignored while waiting for a keyframe.
    pub ignored: u64,
    /// `resync` requests asked for.
    pub resyncs: u64,
}

impl V2Stats {
    /// Adds another session's counts.
    pub fn add(&mut self, o: &V2Stats) {
        self.keyframes += o.keyframes;
        self.deltas += o.deltas;
        self.keyframe_bytes += o.keyframe_bytes;
        self.delta_bytes += o.delta_bytes;
        self.hashes_checked += o.hashes_checked;
        self.desyncs += o.desyncs;
        self.hash_mismatches += o.hash_mismatches;
        self.baseline_mismatches += o.baseline_mismatches;
        self.undecodable += o.undecodable;
        self.ignored += o.ignored;
        self.resyncs += o.resyncs;
    }
}

/// A v2 session's reconstructed state; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Reconstruction {
    /// `None` until a `welcome` with a usable schema.
    state: Option<ClientState>,
    stats: V2Stats,
    /// Why the last frame was refused (or why there is no state).
    last_error: Option<V2Error>,
    /// Frames received since the last `resync` was asked for, while still waiting for
    /// the keyframe; `None` when not waiting.
    waiting: Option<u32>,
}

impl Reconstruction {
    /// Nothing held until [`Reconstruction::start`].
    pub fn new() -> Reconstruction {
        Reconstruction::default()
    }

    /// Makes the state from the `welcome`'s schema and tick rate. Without a usable one,
    /// every frame is refused as undecodable (and no `resync` is asked for: a keyframe
    /// would not help).
    pub fn start(&mut self, welcome: &Welcome) {
        match ClientState::from_welcome(welcome) {
            Ok(state) => {
                self.state = Some(state);
                self.last_error = None;
            }
            Err(e) => {
                self.state = None;
                self.last_error = Some(e);
            }
        }
        self.waiting = None;
    }

    /// The state: `None` before the `welcome`; its `tick()` is `None` while waiting
    /// for a keyframe.
    pub fn state(&self) -> Option<&ClientState> {
        self.state.as_ref()
    }

    /// Counts so far.
    pub fn stats(&self) -> V2Stats {
        self.stats
    }

    /// Why the last refused frame was refused.
    pub fn last_error(&self) -> Option<&V2Error> {
        self.last_error.as_ref()
    }

    /// Applies one snapshot frame (a message whose `t` is `"s"`).
    pub fn apply(&mut self, frame: &[u8]) -> FrameResult {
        let result = match self.state.as_mut() {
            Some(state) => state.apply(frame),
            None => Err(V2Error::Malformed("no welcome with a usable schema")),
        };
        match result {
            Ok(applied) => self.applied(applied, frame.len()),
            Err(e) => self.refuse(e, frame),
        }
    }

    fn applied(&mut self, applied: Applied, len: usize) -> FrameResult {
        match applied.kind {
            FrameKind::Keyframe => {
                self.stats.keyframes += 1;
                self.stats.keyframe_bytes += len as u64;
                self.waiting = None;
            }
            FrameKind::Delta => {
                self.stats.deltas += 1;
                self.stats.delta_bytes += len as u64;
            }
        }
        self.stats.hashes_checked += u64::from(applied.hash_checked);
        FrameResult {
            head: Some(SnapHeader {
                tick: applied.tick,
                ack: applied.ack,
            }),
            outcome: FrameOutcome::Applied(applied),
            resync: false,
        }
    }

    /// Counts a frame that was not applied and decides whether to ask for a keyframe:
    /// when not already waiting for one, when the keyframe waited for was itself
    /// refused, or when the wait has lasted [`RESYNC_RETRY_FRAMES`] frames.
    fn refuse(&mut self, e: V2Error, frame: &[u8]) -> FrameResult {
        let header = header(frame).ok();
        let len = frame.len() as u64;
        match header.map(|h| h.kind()) {
            Some(FrameKind::Keyframe) => self.stats.keyframe_bytes += len,
            Some(FrameKind::Delta) => self.stats.delta_bytes += len,
            None => {}
        }
        let waited = self.waiting.map(|frames| frames + 1);
        self.waiting = waited;
        let overdue = waited.is_none_or(|frames| frames >= RESYNC_RETRY_FRAMES);
        let outcome = if e == V2Error::AwaitingKeyframe {
            self.stats.ignored += 1;
            FrameOutcome::Ignored
        } else {
            self.stats.desyncs += 1;
            match e {
                V2Error::HashMismatch { .. } => self.stats.hash_mismatches += 1,
                V2Error::BaselineMismatch { .. } => self.stats.baseline_mismatches += 1,
                _ => self.stats.undecodable += 1,
            }
            // Without a state, the reason the schema was refused stays the one to tell.
            if self.state.is_some() {
                self.last_error = Some(e);
            } else {
                self.last_error.get_or_insert(e);
            }
            FrameOutcome::Refused
        };
        let keyframe_refused = matches!(outcome, FrameOutcome::Refused)
            && header.is_some_and(|h| h.baseline.is_none());
        // Without a schema no keyframe can help: nothing to ask for.
        let resync = self.state.is_some() && (overdue || keyframe_refused);
        if resync {
            self.waiting = Some(0);
            self.stats.resyncs += 1;
        }
        FrameResult {
            head: header.map(|h| SnapHeader {
                tick: h.tick,
                ack: h.ack,
            }),
            outcome,
            resync,
        }
    }
}

#[cfg(test)]
mod tests;
