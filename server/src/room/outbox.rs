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
//! Memory per connection is therefore bounded whatever the client does.
//!
//! The direct path: on a plain TCP connection the outbox also holds the socket, and a
//! snapshot that finds nothing ahead of it (no queued message, no pending snapshot, no
//! frame of the session's half written, no remainder) is written by the room straight to
//! the socket, header and shared body in one vectored write, without waking the session.
//! The socket is written by two parties, so the outbox is also its write gate: the
//! session writes only through [`Outbox::session_write`] and [`Outbox::session_flush`],
//! which first finish the rest of a direct write the socket took only in part, and mark
//! the session as writing until its flush. A snapshot the socket would not take at once
//! falls back to the pending slot (newest wins) and the session, whose writes carry the
//! send timeout that cuts stuck clients off: the rules for slow consumers are the same on
//! both paths.
//!
//! The lock is held to move a few pointers, or for one non-blocking write; never across
//! an await.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use rallypoint_protocol::codec::{SNAP_HEADER_MAX, snap_header, snap_trailer};
use rallypoint_protocol::{CloseReason, Encoding};
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

/// A snapshot message for one recipient: its own header, then a body shared by every
/// recipient of the same bytes, then a fixed trailer. v1: the `snap` header with this
/// player's `ack`, the `ents` encoded once per tick, and `}` in JSON; v2: the frame header
/// and the frame body.
#[derive(Debug, Clone)]
pub struct PendingSnapshot {
    /// Snapshot tick.
    pub tick: u32,
    head: [u8; SNAP_HEADER_MAX],
    head_len: u8,
    /// The shared part.
    pub body: Bytes,
    /// Bytes after the body.
    pub trailer: &'static [u8],
}

impl PendingSnapshot {
    /// A v1 `snap`: `ents` is the body encoded once per tick for `encoding`.
    pub fn v1(encoding: Encoding, tick: u32, ack: u32, ents: Bytes) -> PendingSnapshot {
        let mut head = [0u8; SNAP_HEADER_MAX];
        let n = snap_header(encoding, tick, ack, &mut head);
        PendingSnapshot {
            tick,
            head,
            head_len: n as u8,
            body: ents,
            trailer: snap_trailer(encoding),
        }
    }

    /// A v2 frame.
    pub fn v2(frame: &rallypoint_protocol::v2::Frame) -> PendingSnapshot {
        let mut head = [0u8; SNAP_HEADER_MAX];
        let h = frame.header();
        head[..h.len()].copy_from_slice(h);
        PendingSnapshot {
            tick: frame.tick,
            head,
            head_len: h.len() as u8,
            body: frame.body.clone(),
            trailer: b"",
        }
    }

    /// The recipient's own bytes before the body.
    pub fn head(&self) -> &[u8] {
        &self.head[..usize::from(self.head_len)]
    }

    /// Length of the whole message.
    pub fn len(&self) -> usize {
        usize::from(self.head_len) + self.body.len() + self.trailer.len()
    }

    /// Never true: a snapshot has a header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the whole message.
    pub fn write_to(&self, out: &mut bytes::BytesMut) {
        out.reserve(self.len());
        out.extend_from_slice(self.head());
        out.extend_from_slice(&self.body);
        out.extend_from_slice(self.trailer);
    }
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
    /// Written straight to the socket: this many payload bytes (the socket may still hold
    /// the end of the frame as a remainder for the session to finish).
    Written(usize),
    /// Queued.
    Queued,
    /// Queued, replacing a snapshot the client had not taken yet.
    ReplacedUnread,
    /// The message queue was full: the session has been told to close as a slow consumer.
    Overflow,
    /// The session has ended.
    Gone(Gone),
    /// Not handed over: the session took another snapshot since the caller looked (a v2
    /// frame built against what the client held then would be against the wrong state).
    Stale,
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
    /// The session holds messages it took and has not flushed yet: only it may write.
    session_writing: bool,
    /// The unwritten end of a direct write: it goes out before anything else.
    remainder: Option<Bytes>,
    /// The write side of the session's plain TCP socket, for direct snapshot writes and
    /// the session's own (none with TLS).
    socket: Option<OwnedWriteHalf>,
    /// The tick of the last snapshot that left for the socket (taken by the session or
    /// written directly): what a v2 client holds next.
    taken: Option<u32>,
}

/// What the session takes in one go.
#[derive(Debug, Default)]
pub struct Batch {
    /// A close request, acted on once `messages` (all queued before it) are written;
    /// the snapshot is dropped.
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
    /// The WebSocket opcode of snapshot frames on the socket (binary or text).
    opcode: u8,
}

impl Outbox {
    /// An empty outbox holding at most `max_messages` ordered messages, without a direct
    /// path (TLS, tests).
    pub fn new(max_messages: usize) -> Outbox {
        Outbox::with_socket(max_messages, None, Encoding::MsgPack)
    }

    /// An outbox through which the room may also write snapshots straight to `socket`, as
    /// `encoding` frames; the session then writes through [`Outbox::session_write`].
    pub fn with_socket(
        max_messages: usize,
        socket: Option<OwnedWriteHalf>,
        encoding: Encoding,
    ) -> Outbox {
        Outbox {
            state: Mutex::new(State {
                socket,
                ..State::default()
            }),
            notify: Notify::new(),
            max_messages: max_messages.max(1),
            opcode: match encoding {
                Encoding::MsgPack => 0x2,
                Encoding::Json => 0x1,
            },
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room side: the tick of the last snapshot that left for the socket.
    pub fn taken(&self) -> Option<u32> {
        self.lock().taken
    }

    /// Room side: hands over a snapshot, written at once when the way is clear (see the
    /// module docs), else replacing the pending one.
    pub fn push_snapshot(&self, snapshot: PendingSnapshot) -> Pushed {
        self.push_snapshot_if(snapshot, None)
    }

    /// [`Outbox::push_snapshot`], only if the last snapshot taken is still `taken` (when
    /// given): a v2 frame is built against it.
    pub fn push_snapshot_if(
        &self,
        snapshot: PendingSnapshot,
        taken: Option<Option<u32>>,
    ) -> Pushed {
        let mut s = self.lock();
        if let Some(g) = s.gone {
            return Pushed::Gone(g);
        }
        if taken.is_some_and(|t| t != s.taken) {
            return Pushed::Stale;
        }
        let clear = s.messages.is_empty()
            && s.snapshot.is_none()
            && s.close.is_none()
            && !s.session_writing
            && s.remainder.is_none();
        if let (true, Some(socket)) = (clear, &s.socket) {
            match write_direct(socket, self.opcode, &snapshot) {
                Ok((payload, None)) => {
                    s.taken = Some(snapshot.tick);
                    return Pushed::Written(payload);
                }
                Ok((payload, Some(rest))) => {
                    s.taken = Some(snapshot.tick);
                    s.remainder = Some(rest);
                    drop(s);
                    self.notify.notify_one();
                    return Pushed::Written(payload);
                }
                // Would block, or failed: the session's path takes it (and the error).
                Err(_) => {}
            }
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

    /// Session side: takes everything pending. Until the session flushes what it took, the
    /// room writes nothing directly.
    pub fn take(&self) -> Batch {
        let mut s = self.lock();
        let batch = Batch {
            close: s.close.take(),
            messages: std::mem::take(&mut s.messages),
            snapshot: s.snapshot.take(),
        };
        if let Some(snap) = &batch.snapshot {
            s.taken = Some(snap.tick);
        }
        s.session_writing |= !batch.messages.is_empty() || batch.snapshot.is_some();
        batch
    }

    /// Session side: whether the end of a direct write waits to be finished.
    pub fn has_remainder(&self) -> bool {
        self.lock().remainder.is_some()
    }

    /// Session side: writes `buf` to the socket, after any remainder of a direct write.
    /// The session counts as writing until [`Outbox::session_flush`].
    pub fn session_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(socket) = s.socket.as_mut() else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        ready!(finish_remainder(socket, cx, &mut s.remainder))?;
        s.session_writing = true;
        Pin::new(socket).poll_write(cx, buf)
    }

    /// Session side: everything the session wrote is out; so is any remainder.
    pub fn session_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(socket) = s.socket.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        ready!(finish_remainder(socket, cx, &mut s.remainder))?;
        s.session_writing = false;
        Poll::Ready(Ok(()))
    }

    /// Session side: flushes, then shuts the socket's write side down (for both writers).
    pub fn session_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.session_flush(cx))?;
        match self.lock().socket.as_mut() {
            Some(socket) => Pin::new(socket).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
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

/// Writes a snapshot frame in one non-blocking vectored write: the payload length and,
/// when the socket took only part of it, the rest (copied) for the session to finish.
fn write_direct(
    socket: &OwnedWriteHalf,
    opcode: u8,
    snap: &PendingSnapshot,
) -> io::Result<(usize, Option<Bytes>)> {
    let payload = snap.len();
    let mut frame_head = [0u8; 10];
    let head_len = ws_frame_head(opcode, payload, &mut frame_head);
    let parts = [
        &frame_head[..head_len],
        snap.head(),
        &snap.body[..],
        snap.trailer,
    ];
    let slices = parts.map(IoSlice::new);
    let written = socket.try_write_vectored(&slices)?;
    let total = head_len + payload;
    if written == total {
        return Ok((payload, None));
    }
    let mut rest = Vec::with_capacity(total - written);
    let mut skip = written;
    for part in parts {
        let from = skip.min(part.len());
        rest.extend_from_slice(&part[from..]);
        skip -= from;
    }
    Ok((payload, Some(Bytes::from(rest))))
}

/// Writes what is left of a direct write; `Pending` (with the socket registered) while
/// the socket will not take it.
fn finish_remainder(
    socket: &mut OwnedWriteHalf,
    cx: &mut Context<'_>,
    remainder: &mut Option<Bytes>,
) -> Poll<io::Result<()>> {
    while let Some(rest) = remainder.as_mut() {
        let n = ready!(Pin::new(&mut *socket).poll_write(cx, rest))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        if n == rest.len() {
            *remainder = None;
        } else {
            let _ = rest.split_to(n);
        }
    }
    Poll::Ready(Ok(()))
}

/// The header of an unmasked server frame with FIN set (RFC 6455 §5.2); its length.
fn ws_frame_head(opcode: u8, len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x80 | opcode;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(tick: u32) -> PendingSnapshot {
        PendingSnapshot::v1(Encoding::MsgPack, tick, 0, Bytes::from_static(b"\x90"))
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

    use tokio::net::TcpStream;

    /// A connected pair: the server end's write half (as the outbox holds it) and the
    /// client end.
    async fn pair() -> (OwnedWriteHalf, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (read, write) = server.into_split();
        drop(read);
        (write, client)
    }

    fn body_snap(tick: u32, len: usize) -> PendingSnapshot {
        let mut body = Vec::with_capacity(len);
        // An array of `len - 3` nils: a valid MessagePack value of about `len` bytes.
        body.push(0xdc);
        body.extend_from_slice(&((len - 3) as u16).to_be_bytes());
        body.resize(len, 0xc0);
        PendingSnapshot::v1(Encoding::MsgPack, tick, 7, Bytes::from(body))
    }

    /// What the session would write for `snap`: the frame header and the message.
    fn expected_frame(snap: &PendingSnapshot) -> Vec<u8> {
        let mut msg = bytes::BytesMut::new();
        snap.write_to(&mut msg);
        let mut head = [0u8; 10];
        let n = ws_frame_head(0x2, msg.len(), &mut head);
        [&head[..n], &msg[..]].concat()
    }

    async fn read_exactly(client: &mut TcpStream, n: usize) -> Vec<u8> {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; n];
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.read_exact(&mut buf),
        )
        .await
        .unwrap()
        .unwrap();
        buf
    }

    #[tokio::test]
    async fn a_snapshot_with_nothing_ahead_goes_straight_to_the_socket() {
        let (server, mut client) = pair().await;
        let o = Outbox::with_socket(4, Some(server), Encoding::MsgPack);
        let snap = body_snap(3, 300);
        let want = expected_frame(&snap);
        assert!(matches!(o.push_snapshot(snap), Pushed::Written(_)));
        assert!(o.take().snapshot.is_none(), "nothing left for the session");
        assert_eq!(read_exactly(&mut client, want.len()).await, want);
    }

    #[tokio::test]
    async fn queued_messages_and_unflushed_session_writes_keep_their_place() {
        let (server, _client) = pair().await;
        let o = Outbox::with_socket(4, Some(server), Encoding::MsgPack);
        o.push_message(Bytes::from_static(b"welcome"));
        // The welcome waits for the session: the snapshot must not overtake it.
        assert_eq!(o.push_snapshot(body_snap(1, 50)), Pushed::Queued);
        let batch = o.take();
        assert_eq!(batch.messages.len(), 1);
        // Taken but not yet flushed by the session: still not the room's turn.
        assert_eq!(o.push_snapshot(body_snap(2, 50)), Pushed::Queued);
    }

    #[tokio::test]
    async fn a_socket_that_takes_part_leaves_the_rest_first_in_line() {
        let (server, mut client) = pair().await;
        let o = Outbox::with_socket(4, Some(server), Encoding::MsgPack);
        // Fill the send buffer until a direct write is cut short or refused.
        let mut sent = Vec::new();
        let mut tick = 0;
        loop {
            tick += 1;
            let snap = body_snap(tick, 60_000);
            let frame = expected_frame(&snap);
            match o.push_snapshot(snap) {
                Pushed::Written(_) => sent.push(frame),
                other => {
                    assert!(matches!(other, Pushed::Queued), "{other:?}");
                    break;
                }
            }
            assert!(tick < 10_000, "the socket never filled up");
        }
        // The last direct write may have been cut: everything else now waits behind it.
        let partial = o.has_remainder();
        // The session's flush finishes the remainder; then its pending snapshot follows.
        let reader = tokio::spawn(async move {
            let total: usize = sent.iter().map(Vec::len).sum();
            let got = read_exactly(&mut client, total).await;
            (got == sent.concat(), client)
        });
        std::future::poll_fn(|cx| o.session_flush(cx))
            .await
            .unwrap();
        let (intact, _client) = reader.await.unwrap();
        assert!(
            intact,
            "frames arrive whole and in order (remainder: {partial})"
        );
        assert!(
            o.take().snapshot.is_some(),
            "the refused snapshot is pending"
        );
    }

    #[test]
    fn a_frame_built_against_a_snapshot_no_longer_held_is_dropped() {
        let o = Outbox::new(4);
        assert_eq!(o.push_snapshot(snap(1)), Pushed::Queued);
        let seen = o.taken();
        // The session takes snapshot 1 while the room builds frame 2 against `seen`.
        o.take();
        assert_eq!(o.taken(), Some(1));
        assert_eq!(o.push_snapshot_if(snap(2), Some(seen)), Pushed::Stale);
        assert!(o.take().snapshot.is_none());
        assert_eq!(o.push_snapshot_if(snap(3), Some(Some(1))), Pushed::Queued);
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
