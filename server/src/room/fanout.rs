//! Fan-out: how a room hands what it says to its members, encoding each message once per
//! encoding in use and sharing the bytes.
//!
//! A [`Member`] is one session in the room (a player's or a spectator's) with its outbox.
//! Broadcasts and snapshots push into outboxes without waiting; a member whose session has
//! ended is collected into `departed` for the room to process, and a member that let its
//! ordered messages pile up is told to close (counted as a slow-consumer disconnect).
//!
//! Must not touch game state or decide anything about members: the core does.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rallypoint_protocol::{Encoding, v2};

use super::outbox::{Gone, Outbox, PendingSnapshot, Pushed};
use super::{Claim, Seat, SessionId};
use crate::game::PlayerId;
use crate::metrics::RoomMetrics;

/// One session in the room.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) encoding: Encoding,
    /// The player entity this session controls; `None` for a spectator.
    pub(crate) player: Option<PlayerId>,
    pub(crate) name: String,
    pub(crate) sub: Arc<str>,
    /// A spectator's seat and directory entry live with its membership; a player's live
    /// with its entity.
    pub(crate) _seat: Option<Seat>,
    pub(crate) _claim: Option<Claim>,
    /// The v2 encoder's state for this recipient; `None` for a v1 session.
    pub(crate) v2: Option<Box<v2::Member>>,
}

/// Index of an encoding in per-encoding arrays.
pub(crate) fn slot(e: Encoding) -> usize {
    match e {
        Encoding::MsgPack => 0,
        Encoding::Json => 1,
    }
}

/// Every encoding, in [`slot`] order.
pub(crate) const ENCODINGS: [Encoding; 2] = [Encoding::MsgPack, Encoding::Json];

/// Members by session, and how many use each encoding (so nobody pays for an encoding
/// nobody uses).
#[derive(Debug, Default)]
pub(crate) struct Members {
    pub(crate) by_session: HashMap<SessionId, Member>,
    /// Members per encoding (what broadcasts are encoded in).
    pub(crate) in_use: [usize; 2],
    /// Members speaking v2 (counted in `in_use` too: their other messages are
    /// MessagePack).
    pub(crate) v2: usize,
}

impl Members {
    pub(crate) fn insert(&mut self, session: SessionId, member: Member) {
        self.count(&member, 1);
        if let Some(old) = self.by_session.insert(session, member) {
            self.count(&old, -1);
        }
    }

    pub(crate) fn remove(&mut self, session: SessionId) -> Option<Member> {
        let m = self.by_session.remove(&session)?;
        self.count(&m, -1);
        Some(m)
    }

    fn count(&mut self, m: &Member, by: isize) {
        let n = &mut self.in_use[slot(m.encoding)];
        *n = n.saturating_add_signed(by);
        if m.v2.is_some() {
            self.v2 = self.v2.saturating_add_signed(by);
        }
    }

    /// Whether some v1 member uses `encoding` (and needs its snapshot body).
    pub(crate) fn v1_uses(&self, encoding: Encoding) -> bool {
        let v2 = if encoding == Encoding::MsgPack {
            self.v2
        } else {
            0
        };
        self.in_use[slot(encoding)] > v2
    }

    pub(crate) fn get_mut(&mut self, session: SessionId) -> Option<&mut Member> {
        self.by_session.get_mut(&session)
    }

    pub(crate) fn get(&self, session: SessionId) -> Option<&Member> {
        self.by_session.get(&session)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_session.is_empty()
    }

    pub(crate) fn spectators(&self) -> usize {
        self.by_session
            .values()
            .filter(|m| m.player.is_none())
            .count()
    }

    /// Sends the message `encode` produces to every member but `skip`, encoding it at most
    /// once per encoding.
    pub(crate) fn broadcast(
        &self,
        skip: Option<SessionId>,
        encode: impl Fn(Encoding) -> Bytes,
        departed: &mut Vec<(SessionId, Gone)>,
        metrics: &RoomMetrics,
    ) {
        let mut encoded: [Option<Bytes>; 2] = [None, None];
        for (&session, m) in &self.by_session {
            if Some(session) == skip {
                continue;
            }
            let bytes = encoded[slot(m.encoding)].get_or_insert_with(|| encode(m.encoding));
            match m.outbox.push_message(bytes.clone()) {
                Pushed::Overflow => {
                    metrics.slow_disconnects.inc();
                }
                Pushed::Gone(g) => departed.push((session, g)),
                Pushed::Queued | Pushed::ReplacedUnread | Pushed::Written(_) | Pushed::Stale => {}
            }
        }
    }

    /// Sends one member an ordered message; false if it overflowed its queue.
    pub(crate) fn send_to(&self, session: SessionId, bytes: Bytes, metrics: &RoomMetrics) -> bool {
        let Some(m) = self.by_session.get(&session) else {
            return false;
        };
        if m.outbox.push_message(bytes) == Pushed::Overflow {
            metrics.slow_disconnects.inc();
            return false;
        }
        true
    }

    /// Hands every member the snapshot body of its encoding with its own `ack`. Returns
    /// the snapshots and payload bytes written straight to sockets, per encoding (the
    /// sessions count the rest as they write it).
    pub(crate) fn snapshot(
        &self,
        tick: u32,
        bodies: &[Option<Bytes>; 2],
        ack_of: impl Fn(&Member) -> u32,
        departed: &mut Vec<(SessionId, Gone)>,
        metrics: &RoomMetrics,
    ) -> [(u64, u64); 2] {
        let mut written = [(0u64, 0u64); 2];
        for (&session, m) in &self.by_session {
            if m.v2.is_some() {
                continue;
            }
            let Some(ents) = bodies[slot(m.encoding)].clone() else {
                continue;
            };
            let pending = PendingSnapshot::v1(m.encoding, tick, ack_of(m), ents);
            match m.outbox.push_snapshot(pending) {
                Pushed::Written(bytes) => {
                    let w = &mut written[slot(m.encoding)];
                    w.0 += 1;
                    w.1 += bytes as u64;
                }
                Pushed::ReplacedUnread => {
                    metrics.slow_drops.inc();
                }
                Pushed::Gone(g) => departed.push((session, g)),
                Pushed::Queued | Pushed::Overflow | Pushed::Stale => {}
            }
        }
        written
    }

    /// Hands every v2 member its frame from `encoder` (after `begin_tick`): a delta
    /// against the snapshot its session last took, or a keyframe. A frame the session
    /// made stale by taking another snapshot meanwhile is dropped; the next one is built
    /// against what it took. Returns the frames and bytes written straight to sockets.
    pub(crate) fn snapshot_v2(
        &mut self,
        encoder: &mut v2::Encoder,
        view_of: impl Fn(&Member) -> (v2::View, u32),
        departed: &mut Vec<(SessionId, Gone)>,
        metrics: &RoomMetrics,
    ) -> (u64, u64) {
        let mut written = (0u64, 0u64);
        for (&session, m) in &mut self.by_session {
            let (view, ack) = view_of(m);
            let (Some(state), outbox) = (m.v2.as_deref_mut(), &m.outbox) else {
                continue;
            };
            let taken = outbox.taken();
            let frame = encoder.encode_for(state, taken, view, ack);
            match outbox.push_snapshot_if(PendingSnapshot::v2(&frame), Some(taken)) {
                Pushed::Written(bytes) => {
                    written.0 += 1;
                    written.1 += bytes as u64;
                }
                Pushed::ReplacedUnread => {
                    metrics.slow_drops.inc();
                }
                Pushed::Gone(g) => departed.push((session, g)),
                Pushed::Queued | Pushed::Overflow | Pushed::Stale => {}
            }
        }
        written
    }
}
