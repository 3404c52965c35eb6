//! One WebSocket session, from the `welcome` to the close: the only owner of its socket.
//!
//! A single task `select!`s over the socket, its outbox, the heartbeat, the token's
//! expiry and server shutdown. Reads are decoded and checked here (frame type, size,
//! schema, per-kind rate limits) so rooms only ever see valid, rate-limited input, sent
//! with `try_send` (a full room queue drops the input and counts it). Writes take
//! whatever the room left in the outbox: ordered messages, then the newest snapshot, with
//! the per-player `snap` header written here. A write that cannot finish within the send
//! timeout marks the client stuck and ends the session.
//!
//! Every close with a reason sends `{"t":"error"}` then a close frame, then reads until
//! the peer answers (bounded), so the peer sees the code rather than a reset.
//!
//! Must not touch game state; the room owns it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use governor::{DefaultDirectRateLimiter, Quota as GovernorQuota};
use rallypoint_protocol::codec::encode_server;
use rallypoint_protocol::inbound::{Inbound, decode_inbound};
use rallypoint_protocol::message::{ErrorMessage, MessageKind, Pong, ServerMessage};
use rallypoint_protocol::{CloseReason, DecodeLimits, Encoding, Subprotocol};
use serde::de::IgnoredAny;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tracing::{debug, info, warn};

use crate::auth::{Identity, Role, unix_now};
use crate::config::{Limits, Quota};
use crate::fragments::{FragmentCap, TooManyFragments};
use crate::metrics::{KindLabels, Metrics, Traffic};
use crate::room::{Command, Gone, Join, Outbox, Reservation, RoomHandle, SessionId};
use crate::socket::SessionStream;
use prometheus_client::metrics::counter::Counter;

/// How long a close handshake may take before the connection is dropped anyway.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Everything a session starts with.
#[derive(Debug)]
pub struct Session {
    /// Unique per connection.
    pub id: SessionId,
    /// Who.
    pub identity: Identity,
    /// Negotiated subprotocol.
    pub subprotocol: Subprotocol,
    /// The seat won during the handshake.
    pub reservation: Reservation,
    /// Clock skew tolerated on the token's `exp`, as at the handshake.
    pub token_leeway: Duration,
}

/// Why the loop stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// We close, with a reason.
    Close(CloseReason),
    /// We close, with a reason and the precise text of what was wrong.
    Refuse(CloseReason, String),
    /// The peer sent a close frame.
    PeerClosed,
    /// The connection is gone (EOF, reset, IO error) or stuck.
    Lost(&'static str),
}

struct Limiters {
    input: DefaultDirectRateLimiter,
    chat: DefaultDirectRateLimiter,
    ping: DefaultDirectRateLimiter,
    /// Budget of dropped messages; exhausting it is sustained abuse.
    abuse: DefaultDirectRateLimiter,
}

fn limiter(q: Quota) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(q.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(q.burst).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::direct(GovernorQuota::per_second(rate).allow_burst(burst))
}

impl Limiters {
    fn new(limits: &Limits, tick_rate: u16) -> Limiters {
        Limiters {
            input: limiter(limits.input_quota(tick_rate)),
            chat: limiter(limits.chat_quota),
            ping: limiter(limits.ping_quota),
            abuse: limiter(limits.abuse_quota(tick_rate)),
        }
    }

    fn for_kind(&self, kind: MessageKind) -> &DefaultDirectRateLimiter {
        match kind {
            MessageKind::Input => &self.input,
            MessageKind::Chat => &self.chat,
            MessageKind::Ping | MessageKind::Resync => &self.ping,
        }
    }
}

/// WebSocket settings for server-side sessions under these limits.
pub fn websocket_config(
    limits: &Limits,
) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        // Writes go out as soon as they are flushed; batching happens in the outbox.
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_write_buffer_bytes)
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes))
}

/// One connection's state for the length of its session.
struct Conn<'a> {
    ws: WebSocketStream<FragmentCap<SessionStream>>,
    limits: &'a Limits,
    traffic: Traffic,
    /// Per-kind drop counters, created once so a flood costs no label lookups.
    dropped: Dropped,
    encoding: Encoding,
    decode: DecodeLimits,
    outbox: Arc<Outbox>,
    room: RoomHandle,
    session: SessionId,
    role: Role,
    limiters: Limiters,
    /// Reused for every snapshot frame: its allocation comes back once the frame is sent.
    frame_buf: BytesMut,
    /// Whether the session speaks v2 (snapshot frames, `resync`).
    v2: bool,
    /// Whether `welcome` has been written. Until then nothing else may reach the client:
    /// no heartbeat is sent, and `pong`s wait in `early_pongs`.
    welcomed: bool,
    /// Pongs owed from before `welcome`, written right after it. Bounded by the ping
    /// quota's burst; a ping past it is dropped like any over-quota ping.
    early_pongs: Vec<Bytes>,
}

struct Dropped {
    input: Counter,
    chat: Counter,
    ping: Counter,
    room_queue_full: Counter,
}

impl Dropped {
    fn new(metrics: &Metrics) -> Dropped {
        let c = |kind: &str| {
            metrics
                .rate_limited
                .get_or_create_owned(&KindLabels { kind: kind.into() })
        };
        Dropped {
            input: c("input"),
            chat: c("chat"),
            ping: c("ping"),
            room_queue_full: c("room_queue_full"),
        }
    }

    fn of(&self, kind: MessageKind) -> &Counter {
        match kind {
            MessageKind::Input => &self.input,
            MessageKind::Chat => &self.chat,
            MessageKind::Ping | MessageKind::Resync => &self.ping,
        }
    }
}

/// Runs a session to its end.
pub async fn run(
    ws: WebSocketStream<FragmentCap<SessionStream>>,
    outbox: Arc<Outbox>,
    session: Session,
    limits: &Limits,
    metrics: &Metrics,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    tick_rate: u16,
) {
    let encoding = session.subprotocol.encoding();
    let join = Join {
        session: session.id,
        sub: Arc::from(session.identity.sub.as_str()),
        name: session.identity.name.clone(),
        role: session.identity.role,
        subprotocol: session.subprotocol,
        outbox: Arc::clone(&outbox),
        seat: session.reservation.seat,
        claim: session.reservation.claim,
    };
    let mut conn = Conn {
        ws,
        limits,
        traffic: metrics.traffic(encoding),
        dropped: Dropped::new(metrics),
        encoding,
        decode: DecodeLimits {
            max_message_bytes: limits.max_message_bytes,
            ..DecodeLimits::default()
        },
        outbox,
        room: session.reservation.room,
        session: session.id,
        role: session.identity.role,
        limiters: Limiters::new(limits, tick_rate),
        frame_buf: BytesMut::new(),
        welcomed: false,
        early_pongs: Vec::new(),
        v2: session.subprotocol.is_v2(),
    };
    metrics.connections_open.inc();
    let started = Instant::now();
    let end = if conn
        .room
        .tx
        .send(Command::Join(Box::new(join)))
        .await
        .is_err()
    {
        End::Close(CloseReason::Internal)
    } else {
        // Expiry is honoured with the same leeway as at the handshake; capped so a
        // far-future `exp` stays within the timer's range.
        let deadline = session
            .identity
            .expires_at
            .saturating_add(session.token_leeway.as_secs());
        let expires_in = Duration::from_secs(deadline.saturating_sub(unix_now()).min(365 * 86_400));
        conn.serve(&mut shutdown, expires_in).await
    };
    let gone = match end {
        End::Close(CloseReason::SlowConsumer | CloseReason::HeartbeatTimeout) | End::Lost(_) => {
            Gone::Dropped
        }
        _ => Gone::Left,
    };
    conn.outbox.mark_gone(gone);
    let reason = match end {
        End::Close(reason) => {
            conn.close(reason, None).await;
            reason.error_code()
        }
        End::Refuse(reason, detail) => {
            conn.close(reason, Some(detail)).await;
            reason.error_code()
        }
        End::PeerClosed => {
            // tungstenite has queued its reply; drive it out and wait for the end.
            conn.linger().await;
            "peer_closed"
        }
        End::Lost(why) => why,
    };
    metrics.connections_open.dec();
    metrics.close(reason);
    info!(reason, secs = started.elapsed().as_secs(), "session ended");
}

fn read_error(e: &WsError) -> End {
    match e {
        WsError::Capacity(_) => End::Close(CloseReason::MessageTooLarge),
        WsError::Io(e) if TooManyFragments::is(e) => End::Close(CloseReason::MessageTooLarge),
        WsError::Utf8(_) => End::Close(CloseReason::InvalidMessage),
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::Lost("peer_gone"),
        WsError::Protocol(_) => End::Close(CloseReason::ProtocolViolation),
        WsError::ConnectionClosed | WsError::AlreadyClosed => End::Lost("peer_gone"),
        _ => End::Lost("io_error"),
    }
}

fn data_message(encoding: Encoding, bytes: Bytes) -> Message {
    match encoding {
        Encoding::MsgPack => Message::Binary(bytes),
        // Our encoder writes UTF-8; the check is the price of not using `unsafe`.
        Encoding::Json => Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default()),
    }
}

impl Conn<'_> {
    async fn serve(
        &mut self,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
        expires_in: Duration,
    ) -> End {
        let period = self.limits.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let expiry = tokio::time::sleep(expires_in);
        tokio::pin!(expiry);
        let mut last_heard = Instant::now();
        let outbox = Arc::clone(&self.outbox);
        // Both stay registered across iterations: re-creating them on every message would
        // register and unregister a waiter per input.
        let stop = crate::shutdown::signalled(shutdown);
        tokio::pin!(stop);
        let ready = outbox.ready();
        tokio::pin!(ready);
        loop {
            let step = tokio::select! {
                biased;
                () = &mut stop => Err(End::Close(CloseReason::ShuttingDown)),
                () = &mut ready => {
                    ready.set(outbox.ready());
                    self.flush_outbox().await
                }
                msg = self.ws.next() => {
                    last_heard = Instant::now();
                    match msg {
                        None => Err(End::Lost("peer_gone")),
                        Some(Err(e)) => Err(read_error(&e)),
                        Some(Ok(m)) => self.handle_message(m).await,
                    }
                }
                _ = heartbeat.tick(), if self.welcomed => {
                    if last_heard.elapsed() >= self.limits.heartbeat_timeout {
                        Err(End::Close(CloseReason::HeartbeatTimeout))
                    } else {
                        self.send(std::iter::once(Message::Ping(Bytes::new()))).await
                    }
                }
                () = &mut expiry => Err(End::Close(CloseReason::TokenExpired)),
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn handle_message(&mut self, msg: Message) -> Result<(), End> {
        let payload: Bytes = match (msg, self.encoding) {
            (Message::Binary(b), Encoding::MsgPack) => b,
            (Message::Text(t), Encoding::Json) => Bytes::from(t),
            (Message::Binary(_) | Message::Text(_), _) => {
                return Err(End::Close(CloseReason::WrongFrameType));
            }
            // tungstenite answers pings itself; a flood of them still costs us. Pongs share
            // the quota: an honest client sends one per heartbeat ping (or a rare
            // unsolicited one as a keepalive), and a free pong would be an unlimited way
            // to keep a connection busy.
            (Message::Ping(_) | Message::Pong(_), _) => {
                return self.admit(MessageKind::Ping).map(drop);
            }
            (Message::Frame(_), _) => return Ok(()),
            (Message::Close(_), _) => return Err(End::PeerClosed),
        };
        self.traffic.messages_in.inc();
        self.traffic.bytes_in.inc_by(payload.len() as u64);
        // The envelope only; an input's fields are the game's, decoded by the room.
        let msg =
            decode_inbound::<IgnoredAny>(self.encoding, &payload, &self.decode).map_err(|e| {
                debug!(error = %e, "undecodable message");
                End::Refuse(e.close_reason(), e.to_string())
            })?;
        if self.role == Role::Spectator && msg.kind() == MessageKind::Input {
            return Err(End::Close(CloseReason::SpectatorInput));
        }
        if !self.admit(msg.kind())? {
            return Ok(());
        }
        let session = self.session;
        match msg {
            // Only v2 has keyframes to ask for.
            Inbound::Resync if !self.v2 => Err(End::Refuse(
                CloseReason::InvalidMessage,
                "resync: only rallypoint.v2 sends keyframes".into(),
            )),
            Inbound::Resync => {
                let _ = self.room.tx.try_send(Command::Resync { session });
                Ok(())
            }
            Inbound::Input { seq, .. } => {
                let cmd = Command::Input {
                    session,
                    seq,
                    payload,
                };
                if let Err(TrySendError::Full(_)) = self.room.tx.try_send(cmd) {
                    // The room is saturated: drop; the next input supersedes this one.
                    self.dropped.room_queue_full.inc();
                }
                Ok(())
            }
            Inbound::Chat(chat) => {
                let text = crate::text::clean_chat(&chat.text);
                if !text.is_empty() {
                    let _ = self.room.tx.try_send(Command::Chat { session, text });
                }
                Ok(())
            }
            Inbound::Ping(ping) => {
                let tick = self
                    .room
                    .shared
                    .tick
                    .load(std::sync::atomic::Ordering::Acquire);
                let pong = encode_server(
                    self.encoding,
                    &ServerMessage::Pong(Pong { id: ping.id, tick }),
                );
                if !self.welcomed {
                    if self.early_pongs.len() < self.limits.ping_quota.burst as usize {
                        self.early_pongs.push(pong);
                    }
                    return Ok(());
                }
                self.send(std::iter::once(data_message(self.encoding, pong)))
                    .await
            }
        }
    }

    /// Charges one message to its kind's quota. `Ok(true)`: deliver it; `Ok(false)`: drop
    /// it (counted); `Err`: the drop budget is exhausted, which is sustained abuse.
    fn admit(&self, kind: MessageKind) -> Result<bool, End> {
        if self.limiters.for_kind(kind).check().is_ok() {
            return Ok(true);
        }
        self.dropped.of(kind).inc();
        if self.limiters.abuse.check().is_err() {
            return Err(End::Close(CloseReason::RateLimited));
        }
        Ok(false)
    }

    /// Sends what the room left: ordered messages, then the newest snapshot framed with
    /// this player's header; or, when the room asked for a close, the messages queued
    /// before it and then the close.
    async fn flush_outbox(&mut self) -> Result<(), End> {
        let batch = self.outbox.take();
        if batch.messages.is_empty() && batch.snapshot.is_none() && self.outbox.has_remainder() {
            // The room wrote a snapshot the socket took only in part: finish it.
            return match tokio::time::timeout(self.limits.send_timeout, self.ws.flush()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Lost("write_failed")),
                Err(_) => Err(End::Close(CloseReason::SlowConsumer)),
            };
        }
        // The messages queued before a close request still go out first (a `moved`
        // says where to reconnect); a snapshot does not.
        let close = batch.close.map(|close| match close.detail {
            Some(detail) => End::Refuse(close.reason, detail),
            None => End::Close(close.reason),
        });
        let snapshot = batch.snapshot.filter(|_| close.is_none()).map(|s| {
            s.write_to(&mut self.frame_buf);
            self.frame_buf.split().freeze()
        });
        if batch.messages.is_empty() && snapshot.is_none() {
            return close.map_or(Ok(()), Err);
        }
        let encoding = self.encoding;
        // The room's first message to a session is always its `welcome`; pongs owed from
        // before it follow it.
        let early = if !self.welcomed && !batch.messages.is_empty() {
            self.welcomed = true;
            std::mem::take(&mut self.early_pongs)
        } else {
            Vec::new()
        };
        let mut messages = batch.messages.into_iter();
        let welcome = messages.next();
        self.send(
            welcome
                .into_iter()
                .chain(early)
                .chain(messages)
                .chain(snapshot)
                .map(|m| data_message(encoding, m)),
        )
        .await?;
        close.map_or(Ok(()), Err)
    }

    /// Writes messages and flushes, within the send timeout.
    async fn send(&mut self, messages: impl Iterator<Item = Message>) -> Result<(), End> {
        let (ws, traffic) = (&mut self.ws, &self.traffic);
        let write = async {
            for m in messages {
                if let Message::Binary(_) | Message::Text(_) = &m {
                    traffic.messages_out.inc();
                    traffic.bytes_out.inc_by(m.len() as u64);
                }
                ws.feed(m).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(self.limits.send_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Lost("write_failed")),
            Err(_) => Err(End::Close(CloseReason::SlowConsumer)),
        }
    }

    /// Sends `error` (with `detail` as its message when given) and a close frame, then
    /// waits (bounded) for the peer's answer.
    async fn close(&mut self, reason: CloseReason, detail: Option<String>) {
        let frame = CloseFrame {
            code: CloseCode::from(reason.code()),
            reason: Utf8Bytes::from_static(reason.description()),
        };
        let (ws, encoding) = (&mut self.ws, self.encoding);
        let goodbye = async {
            if reason.sends_error() {
                let msg = ServerMessage::Error(ErrorMessage {
                    code: reason.error_code().to_owned(),
                    message: detail.unwrap_or_else(|| reason.description().to_owned()),
                });
                ws.feed(data_message(encoding, encode_server(encoding, &msg)))
                    .await?;
            }
            ws.send(Message::Close(Some(frame))).await
        };
        // A stuck client gets the short version: it cannot read anyway.
        let budget = if reason == CloseReason::SlowConsumer {
            Duration::from_millis(200)
        } else {
            CLOSE_LINGER
        };
        match tokio::time::timeout(budget, goodbye).await {
            Ok(Ok(())) => self.linger().await,
            Ok(Err(e)) => debug!(error = %e, "close frame not delivered"),
            Err(_) => warn!(reason = reason.error_code(), "close frame timed out"),
        }
    }

    /// Reads until the peer finishes the close handshake or the linger time is up; reading
    /// (rather than just dropping the socket) keeps the kernel from answering unread data
    /// with a reset that would destroy the close frame in flight.
    async fn linger(&mut self) {
        let ws = &mut self.ws;
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            while let Some(Ok(_)) = ws.next().await {}
            // The frames are over: the close handshake finished, or a read error fused
            // the stream with the rest of a refused frame still coming. Whatever else
            // arrives is read away, so that dropping the socket sends a FIN, not a reset.
            drain(ws.get_mut()).await;
        })
        .await;
    }
}

/// How long the peer may be silent before a drain stops waiting for more.
const DRAIN_QUIET: Duration = Duration::from_millis(100);

/// Ends this side of the connection (a FIN, after TLS's close_notify), then reads and
/// discards what the peer still sends until it closes, fails, or is quiet for
/// [`DRAIN_QUIET`]; the caller bounds the whole. The FIN first: a client that waits for
/// the server to close TCP, as RFC 6455 §7.1.1 asks, closes at once instead of waiting out
/// the quiet time.
async fn drain(stream: &mut FragmentCap<SessionStream>) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 512];
    loop {
        match tokio::time::timeout(DRAIN_QUIET, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => {}
            // The fragment cap reports once, then only forwards.
            Ok(Err(e)) if TooManyFragments::is(&e) => {}
            _ => return,
        }
    }
}
