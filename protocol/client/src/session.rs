//! One WebSocket session with the server, from the `101` to the close.
//!
//! A [`Session`] owns its stream and three buffers, all reused: the read buffer (every
//! read takes whatever the socket has, so one system call can deliver many frames), the
//! write buffer (frames queued with `queue_*` go out together at the next flush) and a
//! scratch buffer for encoding. A received message is handed out as an [`Incoming`] that
//! borrows the read buffer: snapshots, inputs, pings and pongs allocate nothing once the
//! buffers have grown to the traffic.
//!
//! The session keeps the protocol's bookkeeping: input `seq` numbers, the highest `ack`
//! seen, ping ids and their round-trip times, the `welcome`, the last `error` before a
//! close, and traffic counters. It answers the server's WebSocket pings and close frame
//! itself, and on v2 sends `resync` when its decoder dropped the reconstructed state. [`Session::recv`] is cancel-safe (use it in `select!`): partial reads and
//! writes stay in the buffers.
//!
//! Must not spawn tasks or keep timers: time limits are the caller's (`tokio::time`),
//! except that [`crate::Endpoint`] bounds connecting.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use rallypoint_protocol::codec::{SnapHeader, write_client};
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::{
    ChatSend, ClientMessage, ErrorMessage, Input, Ping, Pong, ServerMessage, Welcome,
};
use rallypoint_protocol::v2::ClientState;
use rallypoint_protocol::{DecodeError, DecodeLimits, Encoding, Subprotocol};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::decode::{Decoder, Kind, Peek};
use crate::frame::{self, FrameError, MaskPool, Opcode};
use crate::stream::ClientStream;
use crate::upgrade::{self, ConnectError, Request};
use crate::v2::{FrameOutcome, Reconstruction};

/// Pings remembered for round-trip times: a ping whose pong has not come back after
/// this many newer pings no longer counts.
const PING_SLOTS: usize = 8;

/// Buffer sizes and limits of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Initial read buffer, bytes. 8 KiB holds several snapshots of a full room, so one
    /// read usually drains the socket; a larger message grows it (up to `max_message`).
    pub read_buffer: usize,
    /// Largest message accepted from the server: the protocol crate's limit for server
    /// messages (16 MiB), far above any snapshot.
    pub max_message: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            read_buffer: 8 * 1024,
            max_message: DecodeLimits::SERVER.max_message_bytes,
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The close code: the server's, 1005 when its close frame had none, 1006 when the
    /// connection ended without one, or the code this side sent after a protocol error.
    pub code: u16,
    /// The close frame's reason.
    pub reason: String,
    /// The `error` message the server sent before closing, if any.
    pub error: Option<ErrorMessage>,
}

/// What [`Session::recv`] gives.
#[derive(Debug)]
pub enum Received<'a> {
    /// One server message.
    Message(Incoming<'a>),
    /// The session is over (every later call returns the same).
    Closed(Close),
}

/// Why receiving failed. The session is over either way: reconnect (the player
/// resumes within the server's grace period).
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// The connection ended without a close frame (reset, EOF, network gone).
    #[error("connection lost: {0}")]
    Lost(#[source] io::Error),
    /// The server broke the WebSocket protocol; the session closed with
    /// [`RecvError::close_code`].
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl RecvError {
    /// The close code this stands for: 1006 for a lost connection, else what this side
    /// closed with (1009 too large, 1007 bad UTF-8, 1002 the rest).
    pub fn close_code(&self) -> u16 {
        match self {
            RecvError::Lost(_) => 1006,
            RecvError::Frame(FrameError::TooLarge { .. }) => 1009,
            RecvError::Frame(FrameError::InvalidUtf8) => 1007,
            RecvError::Frame(_) => 1002,
        }
    }
}

/// Why sending failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The connection is broken. The session is over: reconnect.
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    /// The session is closing or closed; nothing more can be sent.
    #[error("the session is closed")]
    Closed,
}

/// Data messages and payload bytes that crossed the session so far (control frames
/// are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages received.
    pub messages_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
}

#[derive(Debug)]
enum State {
    Open,
    /// Our close frame is queued or sent; waiting for the server's.
    CloseSent,
    Closed(Close),
}

/// One server message, borrowed from the session's buffers until the next `recv`.
#[derive(Debug)]
pub struct Incoming<'a> {
    payload: &'a [u8],
    peek: Peek,
    decoder: &'a Decoder,
    rtt: Option<Duration>,
}

impl<'a> Incoming<'a> {
    /// The message type.
    pub fn kind(&self) -> Kind {
        self.peek.kind
    }

    /// The frame's payload, as the server sent it.
    pub fn bytes(&self) -> &'a [u8] {
        self.payload
    }

    /// `tick` and `ack` of a snapshot (read without decoding the entities).
    pub fn snap_header(&self) -> Option<SnapHeader> {
        self.peek.snap
    }

    /// The pong, for a pong.
    pub fn pong(&self) -> Option<Pong> {
        self.peek.pong
    }

    /// For a pong that answers one of this session's pings: the round-trip time.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The whole message, decoded (allocates).
    pub fn decode(&self) -> Result<ServerMessage, DecodeError> {
        self.decoder.decode(self.payload)
    }

    /// A snapshot's entities, into `ents` (cleared first; its memory is reused). v2: the
    /// reconstructed state's rows at this frame's tick, typed as the arena's (an error
    /// when the frame was not applied).
    pub fn snapshot_into(&self, ents: &mut Vec<Entity>) -> Result<SnapHeader, DecodeError> {
        self.decoder.snapshot_into(self.payload, ents)
    }

    /// v2: what became of this snapshot frame (`None` for v1 and other messages).
    pub fn frame(&self) -> Option<FrameOutcome> {
        self.peek.frame
    }

    /// v2: the reconstructed state after this message: rows at any tick
    /// (`rows_at`, `for_each_row_at`), one entity (`with_row_at`), the hash. Its `tick()`
    /// is `None` while it waits for a keyframe. `None` for v1.
    pub fn state(&self) -> Option<&'a ClientState> {
        self.decoder.v2().and_then(Reconstruction::state)
    }
}

/// Where the message [`Session::recv`] is about to hand out lies.
#[derive(Clone, Copy)]
enum Found {
    /// A whole frame in the read buffer.
    Buffer { at: usize, len: usize },
    /// The assembled fragments.
    Fragments,
}

impl Found {
    fn slice<'b>(self, rbuf: &'b [u8], frag: &'b [u8]) -> &'b [u8] {
        match self {
            Found::Buffer { at, len } => &rbuf[at..at + len],
            Found::Fragments => frag,
        }
    }
}

/// What the read buffer gave.
enum Step {
    /// A message to hand out.
    Message(Found),
    /// A control frame or a fragment was taken; look again.
    Control,
    /// The next frame is not complete.
    NeedMore,
}

/// A WebSocket session over `S` (by default plain TCP or TLS).
#[derive(Debug)]
pub struct Session<S = ClientStream> {
    stream: S,
    protocol: Subprotocol,
    decoder: Decoder,
    config: SessionConfig,
    rbuf: Vec<u8>,
    /// Unread bytes are `rbuf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of the frame handed out last, released at the next `recv`.
    release: usize,
    /// Length of the next frame when its header is in and its payload is not.
    need: usize,
    frag: Vec<u8>,
    frag_op: Option<Opcode>,
    frag_handed_out: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    scratch: Vec<u8>,
    masks: MaskPool,
    state: State,
    welcome: Option<Welcome>,
    last_error: Option<ErrorMessage>,
    seq: u32,
    acked: u32,
    pings: [(u32, Option<Instant>); PING_SLOTS],
    next_ping: u32,
    traffic: Traffic,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Upgrades `stream` (see [`crate::Endpoint::upgrade`]).
    pub(crate) async fn handshake(
        mut stream: S,
        host: &str,
        path: &str,
        request: &Request,
        config: &SessionConfig,
    ) -> Result<Session<S>, ConnectError> {
        let mut rbuf = Vec::with_capacity(config.read_buffer);
        let protocol = upgrade::upgrade(&mut stream, host, path, request, &mut rbuf).await?;
        let end = rbuf.len();
        rbuf.resize(config.read_buffer.max(end), 0);
        Ok(Session {
            stream,
            protocol,
            decoder: Decoder::new(protocol),
            config: *config,
            rbuf,
            start: 0,
            end,
            release: 0,
            need: 0,
            frag: Vec::new(),
            frag_op: None,
            frag_handed_out: false,
            wbuf: Vec::with_capacity(256),
            wpos: 0,
            scratch: Vec::with_capacity(128),
            masks: MaskPool::default(),
            state: State::Open,
            welcome: None,
            last_error: None,
            seq: 0,
            acked: 0,
            pings: [(0, None); PING_SLOTS],
            next_ping: 1,
            traffic: Traffic::default(),
        })
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Subprotocol {
        self.protocol
    }

    /// The encoding of its messages.
    pub fn encoding(&self) -> Encoding {
        self.protocol.encoding()
    }

    /// The `welcome`, once received.
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// Whether this session re-attached to the player `you` of an earlier session (after
    /// a dropped connection): `welcome.resumed` with the same id.
    pub fn resumed_from(&self, you: u32) -> bool {
        self.welcome
            .as_ref()
            .is_some_and(|w| w.resumed && w.you == you)
    }

    /// The last input `seq` sent (0: none yet).
    pub fn last_seq(&self) -> u32 {
        self.seq
    }

    /// The highest `ack` received: inputs up to it have been applied.
    pub fn acked(&self) -> u32 {
        self.acked
    }

    /// Data traffic so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// v2: the reconstructed state, its counters ([`Reconstruction::stats`]: keyframes,
    /// deltas, bytes of each, desyncs, resyncs) and the last refusal. `None` for v1.
    pub fn v2(&self) -> Option<&Reconstruction> {
        self.decoder.v2()
    }

    /// The stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// How the session ended, once it has.
    pub fn closed(&self) -> Option<&Close> {
        match &self.state {
            State::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// Whether the session is closing or closed.
    pub fn is_closed(&self) -> bool {
        !matches!(self.state, State::Open)
    }

    /// Reads the first message, which must be the `welcome`.
    pub async fn read_welcome(&mut self) -> Result<&Welcome, ConnectError> {
        if self.welcome.is_none() {
            let failure = match self.recv().await {
                Ok(Received::Message(m)) if m.kind() == Kind::Welcome => None,
                Ok(Received::Message(m)) => Some(format!("the first message was {:?}", m.kind())),
                Ok(Received::Closed(c)) => Some(format!("closed with {}", c.code)),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failure {
                return Err(ConnectError::NoWelcome(why));
            }
        }
        self.welcome
            .as_ref()
            .ok_or_else(|| ConnectError::NoWelcome("the welcome does not decode".into()))
    }

    /// The next server message, or the end of the session. Answers the server's pings
    /// and close frame on the way.
    pub async fn recv(&mut self) -> Result<Received<'_>, RecvError> {
        let found = loop {
            self.release_previous();
            if let State::Closed(close) = &self.state {
                return Ok(Received::Closed(close.clone()));
            }
            match self.next_frame() {
                Ok(Step::Message(found)) => break found,
                Ok(Step::Control) => {
                    // Answers (pongs, the close echo) leave without blocking the read.
                    if self.try_flush().is_err() {
                        self.lose();
                    }
                }
                Ok(Step::NeedMore) => {
                    if let Err(e) = self.fill().await {
                        self.lose();
                        return Err(RecvError::Lost(e));
                    }
                }
                Err(e) => return Err(self.fail(e).await),
            }
        };
        let payload = found.slice(&self.rbuf, &self.frag);
        self.traffic.messages_in += 1;
        self.traffic.bytes_in += payload.len() as u64;
        let peek = self.decoder.inspect(payload);
        let mut rtt = None;
        match peek.kind {
            Kind::Snap => {
                if let Some(h) = peek.snap {
                    self.acked = self.acked.max(h.ack);
                }
            }
            Kind::Pong => {
                if let Some(p) = peek.pong {
                    let slot = &mut self.pings[p.id as usize % PING_SLOTS];
                    if let (id, Some(sent)) = *slot
                        && id == p.id
                    {
                        slot.1 = None;
                        rtt = Some(sent.elapsed());
                    }
                }
            }
            Kind::Welcome if self.welcome.is_none() => {
                if let Ok(ServerMessage::Welcome(w)) = self.decoder.decode(payload) {
                    self.decoder.start(&w);
                    self.welcome = Some(w);
                }
            }
            Kind::Error => {
                if let Ok(ServerMessage::Error(e)) = self.decoder.decode(payload) {
                    self.last_error = Some(e);
                }
            }
            _ => {}
        }
        if peek.resync {
            self.ask_for_keyframe();
        }
        Ok(Received::Message(Incoming {
            payload: found.slice(&self.rbuf, &self.frag),
            peek,
            decoder: &self.decoder,
            rtt,
        }))
    }

    /// v2: the state was dropped; `resync` leaves without blocking the read (like the
    /// answers to control frames).
    fn ask_for_keyframe(&mut self) {
        if self.queue(&ClientMessage::Resync).is_ok() && self.try_flush().is_err() {
            self.lose();
        }
    }

    fn release_previous(&mut self) {
        self.start += std::mem::take(&mut self.release);
        if std::mem::take(&mut self.frag_handed_out) {
            self.frag.clear();
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Takes the next frame from the read buffer.
    fn next_frame(&mut self) -> Result<Step, FrameError> {
        let Some(head) =
            frame::parse_head(&self.rbuf[self.start..self.end], self.config.max_message)?
        else {
            self.need = 0;
            return Ok(Step::NeedMore);
        };
        if self.end - self.start < head.frame_len() {
            self.need = head.frame_len();
            return Ok(Step::NeedMore);
        }
        self.need = 0;
        let at = self.start + head.header_len;
        let len = head.payload_len;
        if head.opcode.is_control() {
            self.start += head.frame_len();
            self.control(head.opcode, at, len)?;
            return Ok(Step::Control);
        }
        match (head.opcode, self.frag_op, head.fin) {
            (Opcode::Continuation, None, _) => {
                Err(FrameError::Fragmentation("nothing to continue"))
            }
            (Opcode::Text | Opcode::Binary, Some(_), _) => Err(FrameError::Fragmentation(
                "a new message inside a fragmented one",
            )),
            (op, None, true) => {
                if op == Opcode::Text && std::str::from_utf8(&self.rbuf[at..at + len]).is_err() {
                    return Err(FrameError::InvalidUtf8);
                }
                self.release = head.frame_len();
                Ok(Step::Message(Found::Buffer { at, len }))
            }
            (op, _, fin) => {
                if self.frag.len() + len > self.config.max_message {
                    return Err(FrameError::TooLarge {
                        len: (self.frag.len() + len) as u64,
                        limit: self.config.max_message,
                    });
                }
                let first = self.frag_op.get_or_insert(op);
                let is_text = *first == Opcode::Text;
                self.frag.extend_from_slice(&self.rbuf[at..at + len]);
                self.start += head.frame_len();
                if !fin {
                    return Ok(Step::Control);
                }
                self.frag_op = None;
                self.frag_handed_out = true;
                if is_text && std::str::from_utf8(&self.frag).is_err() {
                    return Err(FrameError::InvalidUtf8);
                }
                Ok(Step::Message(Found::Fragments))
            }
        }
    }

    /// A ping is answered, a pong ignored, a close answered and recorded.
    fn control(&mut self, op: Opcode, at: usize, len: usize) -> Result<(), FrameError> {
        match op {
            Opcode::Ping => {
                if matches!(self.state, State::Open) {
                    let mask = self.masks.next_key();
                    frame::write_frame(
                        &mut self.wbuf,
                        Opcode::Pong,
                        &self.rbuf[at..at + len],
                        mask,
                    );
                }
            }
            Opcode::Close => {
                let (code, reason) = frame::parse_close(&self.rbuf[at..at + len])?;
                let reason = reason.to_owned();
                if matches!(self.state, State::Open) {
                    // Echo the code, as RFC 6455 §5.5.1 asks.
                    let payload = if code == 1005 {
                        Vec::new()
                    } else {
                        code.to_be_bytes().to_vec()
                    };
                    let mask = self.masks.next_key();
                    frame::write_frame(&mut self.wbuf, Opcode::Close, &payload, mask);
                }
                self.state = State::Closed(Close {
                    code,
                    reason,
                    error: self.last_error.take(),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// Reads more bytes into the buffer, making room (and growing it for a large frame).
    async fn fill(&mut self) -> io::Result<()> {
        let want = self.need.max(1);
        if self.rbuf.len() - self.start < want || self.end == self.rbuf.len() {
            self.rbuf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.rbuf.len() < want {
                self.rbuf.resize(want, 0);
            }
        }
        let n = poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut self.rbuf[self.end..]);
            ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf))?;
            Poll::Ready(Ok::<_, io::Error>(buf.filled().len()))
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// After a protocol error: send the matching close, end the session.
    async fn fail(&mut self, e: FrameError) -> RecvError {
        let e = RecvError::Frame(e);
        if matches!(self.state, State::Open) {
            let mask = self.masks.next_key();
            frame::write_frame(
                &mut self.wbuf,
                Opcode::Close,
                &e.close_code().to_be_bytes(),
                mask,
            );
            let _ = self.flush_out().await;
        }
        self.state = State::Closed(Close {
            code: e.close_code(),
            reason: e.to_string(),
            error: self.last_error.take(),
        });
        e
    }

    fn lose(&mut self) {
        if !matches!(self.state, State::Closed(_)) {
            self.state = State::Closed(Close {
                code: 1006,
                reason: String::new(),
                error: self.last_error.take(),
            });
        }
    }

    // ---- sending ----

    fn check_open(&self) -> Result<(), SendError> {
        match self.state {
            State::Open => Ok(()),
            _ => Err(SendError::Closed),
        }
    }

    /// Queues one message in the negotiated encoding (sent at the next flush).
    pub fn queue(&mut self, msg: &ClientMessage) -> Result<(), SendError> {
        self.check_open()?;
        self.scratch.clear();
        write_client(self.encoding(), msg, &mut self.scratch);
        let op = match self.encoding() {
            Encoding::MsgPack => Opcode::Binary,
            Encoding::Json => Opcode::Text,
        };
        self.traffic.messages_out += 1;
        self.traffic.bytes_out += self.scratch.len() as u64;
        let mask = self.masks.next_key();
        frame::write_frame(&mut self.wbuf, op, &self.scratch, mask);
        Ok(())
    }

    /// Queues an input with the next sequence number (replacing `input.seq`); returns it.
    pub fn queue_input(&mut self, mut input: Input) -> Result<u32, SendError> {
        self.check_open()?;
        input.seq = self.seq.wrapping_add(1);
        self.queue(&ClientMessage::Input(input))?;
        self.seq = input.seq;
        Ok(input.seq)
    }

    /// Queues a `ping` whose `pong` will carry its round-trip time; returns its id.
    pub fn queue_ping(&mut self) -> Result<u32, SendError> {
        let id = self.next_ping;
        self.queue(&ClientMessage::Ping(Ping { id }))?;
        self.next_ping = self.next_ping.wrapping_add(1);
        self.pings[id as usize % PING_SLOTS] = (id, Some(Instant::now()));
        Ok(id)
    }

    /// Queues a frame with any opcode and payload, unchecked: for tests and tools that
    /// must send what the protocol forbids. Counted as traffic when it is data.
    pub fn queue_raw(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if !opcode.is_control() {
            self.traffic.messages_out += 1;
            self.traffic.bytes_out += payload.len() as u64;
        }
        let mask = self.masks.next_key();
        frame::write_frame(&mut self.wbuf, opcode, payload, mask);
        Ok(())
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), SendError> {
        self.flush_out().await.map_err(|e| {
            self.lose();
            SendError::Io(e)
        })
    }

    async fn flush_out(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush_out(cx)).await
    }

    /// Writes what is queued if the socket takes it now; the rest waits for the next
    /// flush. Fails only on a broken connection.
    fn try_flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let waker = std::task::Waker::noop();
        match self.poll_flush_out(&mut Context::from_waker(waker)) {
            Poll::Ready(r) => r,
            Poll::Pending => Ok(()),
        }
    }

    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wbuf.len() {
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &self.wbuf[self.wpos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wbuf.clear();
        self.wpos = 0;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Sends one message.
    pub async fn send(&mut self, msg: &ClientMessage) -> Result<(), SendError> {
        self.queue(msg)?;
        self.flush().await
    }

    /// Sends an input with the next sequence number; returns it.
    pub async fn send_input(&mut self, input: Input) -> Result<u32, SendError> {
        let seq = self.queue_input(input)?;
        self.flush().await?;
        Ok(seq)
    }

    /// Sends a `ping`; its `pong` carries the round-trip time ([`Incoming::rtt`]).
    pub async fn ping(&mut self) -> Result<u32, SendError> {
        let id = self.queue_ping()?;
        self.flush().await?;
        Ok(id)
    }

    /// Sends a chat line.
    pub async fn chat(&mut self, text: &str) -> Result<(), SendError> {
        self.send(&ClientMessage::Chat(ChatSend {
            text: text.to_owned(),
        }))
        .await
    }

    /// Sends a raw frame (see [`Session::queue_raw`]).
    pub async fn send_raw(&mut self, opcode: Opcode, payload: &[u8]) -> Result<(), SendError> {
        self.queue_raw(opcode, payload)?;
        self.flush().await
    }

    /// Closes with `code` and `reason` (at most 123 bytes), reads until the server's
    /// close frame and then until it closes TCP (so its side keeps the `TIME_WAIT`), and
    /// returns how the session ended. Bound it with a timeout: a server that never
    /// answers is not waited for by the session itself.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<Close, RecvError> {
        if matches!(self.state, State::Open) {
            let mut payload = code.to_be_bytes().to_vec();
            payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
            let mask = self.masks.next_key();
            frame::write_frame(&mut self.wbuf, Opcode::Close, &payload, mask);
            self.state = State::CloseSent;
            if let Err(e) = self.flush_out().await {
                self.lose();
                return Err(RecvError::Lost(e));
            }
        }
        let close = loop {
            match self.recv().await? {
                Received::Closed(c) => break c,
                Received::Message(_) => {}
            }
        };
        let _ = self.flush_out().await;
        // Drain until the server's FIN.
        while self.fill().await.is_ok() {
            self.start = self.end;
        }
        Ok(close)
    }
}

impl Session<ClientStream> {
    /// Ends the session like a phone losing its network: a TCP reset, no close frame.
    /// The server keeps the player for its resume grace period.
    pub fn abort(self) {
        let _ = self.stream.tcp().set_zero_linger();
    }
}
