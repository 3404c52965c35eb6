//! A session's mailbox: how a room hands messages to one connection without ever waiting
//! for it.
//!
//! The room is the only writer, the session task the only reader. It holds at most:
//! - the newest snapshot: a newer one replaces an unread one (counted as a drop), so a
//!   client that falls behind gets fresh state, never a backlog;
//! - up to `max_messages` ordered messages (welcome, events, chat): if a client lets them
//!   pile up past that, it is a slow consumer and the session is told to close;
//! - a close request (replaced, kicked, slow consumer).
//!
//! The session marks the outbox gone when it ends, and the room notices on its next push.
//! Memory per connection is therefore bounded whatever the client does. The lock is held
//! only to move a few pointers; it is never held across an await.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use rallypoint_protocol::CloseReason;
use tokio::sync::Notify;

/// A snapshot for one recipient: the shared entity body plus this recipient's header.
#[derive(Debug, Clone)]
pub struct PendingSnapshot {
    /// Snapshot tick.
    pub tick: u32,
    /// This player's acknowledged input `seq`.
    pub ack: u32,
    /// `ents`, encoded once per tick for every recipient with this encoding.
    pub ents: Bytes,
}

/// How a session ended, as far as its room cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// On purpose (client close, policy close, kick): the player leaves for good.
    Left,
    /// The connection was lost (reset, silence, stuck): the player may resume.
    Dropped,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, replacing a snapshot the client had not taken yet.
    ReplacedUnread,
    /// The message queue was full: the session has been told to close as a slow consumer.
    Overflow,
    /// The session has ended.
    Gone(Gone),
}

/// Why the room wants a session closed: the reason, and what exactly was wrong when
/// there is more to say than the reason's own description (the `error` message's text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// The reason (close code and `error.code`).
    pub reason: CloseReason,
    /// The `error.message`, when more precise than the reason's description.
    pub detail: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    snapshot: Option<PendingSnapshot>,
    messages: VecDeque<Bytes>,
    close: Option<CloseRequest>,
    gone: Option<Gone>,
}

/// What the session takes in one go.
#[derive(Debug, Default)]
pub struct Batch {
    /// A close request, to act on before anything else.
    pub close: Option<CloseRequest>,
    /// Ordered messages.
    pub messages: VecDeque<Bytes>,
    /// The newest snapshot.
    pub snapshot: Option<PendingSnapshot>,
}

/// See the module docs.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    notify: Notify,
    max_messages: usize,
}

impl Outbox {
    /// An empty outbox holding at most `max_messages` ordered messages.
    pub fn new(max_messages: usize) -> Outbox {
        Outbox {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            max_messages: max_messages.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room side: replaces the pending snapshot.
    pub fn push_snapshot(&self, snapshot: PendingSnapshot) -> Pushed {
        let mut s = self.lock();
        if let Some(g) = s.gone {
            return Pushed::Gone(g);
        }
        let replaced = s.snapshot.replace(snapshot).is_some();
        drop(s);
        self.notify.notify_one();
        if replaced {
            Pushed::ReplacedUnread
        } else {
            Pushed::Queued
        }
    }

    /// Room side: queues an ordered message.
    pub fn push_message(&self, message: Bytes) -> Pushed {
        let mut s = self.lock();
        if let Some(g) = s.gone {
            return Pushed::Gone(g);
        }
        if s.close.is_some() {
            return Pushed::Overflow;
        }
        if s.messages.len() >= self.max_messages {
            s.messages.clear();
            s.snapshot = None;
            s.close = Some(CloseRequest {
                reason: CloseReason::SlowConsumer,
                detail: None,
            });
            drop(s);
            self.notify.notify_one();
            return Pushed::Overflow;
        }
        s.messages.push_back(message);
        drop(s);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Room side: asks the session to close with a reason (first request wins).
    pub fn request_close(&self, reason: CloseReason) {
        self.request_close_because(reason, None);
    }

    /// Room side: asks the session to close with a reason and the precise text of the
    /// `error` message (first request wins).
    pub fn request_close_because(&self, reason: CloseReason, detail: Option<String>) {
        let mut s = self.lock();
        if s.close.is_none() {
            s.close = Some(CloseRequest { reason, detail });
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Room side: whether the session has ended.
    pub fn gone(&self) -> Option<Gone> {
        self.lock().gone
    }

    /// Session side: waits until something may be pending.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Session side: takes everything pending.
    pub fn take(&self) -> Batch {
        let mut s = self.lock();
        Batch {
            close: s.close.take(),
            messages: std::mem::take(&mut s.messages),
            snapshot: s.snapshot.take(),
        }
    }

    /// Session side: the session has ended; later pushes report it.
    pub fn mark_gone(&self, how: Gone) {
        let mut s = self.lock();
        s.gone.get_or_insert(how);
        s.snapshot = None;
        s.messages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(tick: u32) -> PendingSnapshot {
        PendingSnapshot {
            tick,
            ack: 0,
            ents: Bytes::from_static(b"\x90"),
        }
    }

    #[test]
    fn only_the_newest_snapshot_is_kept() {
        let o = Outbox::new(4);
        assert_eq!(o.push_snapshot(snap(1)), Pushed::Queued);
        assert_eq!(o.push_snapshot(snap(2)), Pushed::ReplacedUnread);
        assert_eq!(o.take().snapshot.unwrap().tick, 2);
        assert!(o.take().snapshot.is_none());
    }

    #[test]
    fn message_overflow_asks_for_a_slow_consumer_close() {
        let o = Outbox::new(2);
        assert_eq!(o.push_message(Bytes::from_static(b"a")), Pushed::Queued);
        assert_eq!(o.push_message(Bytes::from_static(b"b")), Pushed::Queued);
        assert_eq!(o.push_message(Bytes::from_static(b"c")), Pushed::Overflow);
        let b = o.take();
        assert_eq!(b.close.map(|c| c.reason), Some(CloseReason::SlowConsumer));
        assert!(b.messages.is_empty());
    }

    #[test]
    fn messages_keep_their_order_and_gone_is_sticky() {
        let o = Outbox::new(8);
        for m in [&b"1"[..], b"2", b"3"] {
            o.push_message(Bytes::copy_from_slice(m));
        }
        let got: Vec<_> = o.take().messages.into_iter().collect();
        assert_eq!(got, [&b"1"[..], b"2", b"3"]);
        o.mark_gone(Gone::Dropped);
        o.mark_gone(Gone::Left);
        assert_eq!(o.push_snapshot(snap(3)), Pushed::Gone(Gone::Dropped));
        assert_eq!(o.gone(), Some(Gone::Dropped));
    }

    #[tokio::test]
    async fn a_push_wakes_the_reader_even_if_it_was_not_waiting_yet() {
        let o = Outbox::new(2);
        o.push_message(Bytes::from_static(b"x"));
        tokio::time::timeout(std::time::Duration::from_secs(1), o.ready())
            .await
            .unwrap();
    }
}
