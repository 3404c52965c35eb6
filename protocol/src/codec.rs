//! One codec per subprotocol: MessagePack (binary frames) and JSON (text frames).
//!
//! Decoding is defensive because its input comes from anyone on the internet: the size is
//! checked first, MessagePack structure is walked without recursion before serde sees it
//! (nesting depth, truncation, declared lengths that cannot fit, trailing bytes), and
//! every failure is a typed [`DecodeError`] that maps to a close code. Nothing here panics
//! on any input.
//!
//! Snapshots are the hot path, so they are built in two parts: the entity list is encoded
//! once per tick and shared ([`encode_ents`]), and each recipient's frame is that shared
//! body behind a few header bytes that carry its own `ack` ([`write_snap`]). The result is
//! byte-for-byte what encoding a [`Snap`] message gives.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::close::CloseReason;
use crate::entity::Entity;
use crate::message::{ClientMessage, InvalidMessage, ServerMessage, Snap};
use crate::rows::{RowSchema, Rows, V1Rows};

pub use crate::inbound::decode_client;

/// How messages are written on a connection; each subprotocol fixes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// MessagePack, one message per binary frame, structs as maps with string keys.
    MsgPack,
    /// JSON, one message per text frame.
    Json,
}

impl Encoding {
    /// Lower-case name, used in metrics labels and errors.
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::MsgPack => "msgpack",
            Encoding::Json => "json",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits applied to every message a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted message, in bytes. The largest legitimate message is a chat line:
    /// 200 characters of up to 4 UTF-8 bytes plus a few keys fit comfortably in 4 KiB.
    pub max_message_bytes: usize,
    /// Deepest accepted nesting of arrays and maps. Client messages are flat maps (depth
    /// 1); 16 leaves room for unknown extra keys while keeping any recursive decoder far
    /// from the stack limit (rmp-serde's own default of 1024 overflows a 2 MiB stack in
    /// debug builds).
    pub max_depth: usize,
    /// Longest accepted chat text, in Unicode scalar values.
    pub max_chat_chars: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_message_bytes: 4096,
            max_depth: 16,
            max_chat_chars: 200,
        }
    }
}

impl DecodeLimits {
    /// Limits for decoding what a server sends (snapshots are large and nested three deep).
    pub const SERVER: DecodeLimits = DecodeLimits {
        max_message_bytes: 16 << 20,
        max_depth: 16,
        max_chat_chars: usize::MAX,
    };
}

/// Why a message could not be accepted. Every variant maps to a close reason through
/// [`DecodeError::close_reason`]; none of them should ever take a server down.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message is bigger than [`DecodeLimits::max_message_bytes`]. Close with 1009.
    #[error("message is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Bytes received.
        size: usize,
        /// Bytes allowed.
        limit: usize,
    },
    /// Arrays or maps nest deeper than [`DecodeLimits::max_depth`]. Close with 1007.
    #[error("message nests deeper than {limit} levels")]
    TooDeep {
        /// Levels allowed.
        limit: usize,
    },
    /// The bytes are not one well-formed value in the encoding (truncated, bad marker,
    /// invalid UTF-8, trailing bytes, a length that cannot fit). Close with 1007.
    #[error("malformed {encoding}: {detail}")]
    Malformed {
        /// The encoding that was expected.
        encoding: Encoding,
        /// What was wrong.
        detail: String,
    },
    /// Well-formed, but not a map with a string `t`. Close with 1007.
    #[error("message is missing its type key `t`")]
    MissingType,
    /// `t` names no message of this protocol version (a sanitised excerpt of it).
    /// Close with 1007.
    #[error("unknown message type \"{0}\"")]
    UnknownType(String),
    /// A required key is missing, duplicated, or a value has the wrong type; the text
    /// starts with the key path (`input.mx: ...`). Close with 1007.
    #[error("{0}")]
    Schema(String),
    /// A MessagePack `bin` or `ext` value in a client message, which has none (a string
    /// sent as bytes, say). Close with 1007.
    #[error("binary and extension values are not accepted; strings must be MessagePack str")]
    Binary,
    /// Decoded, but a value is out of bounds (NaN, text too long). Close with 1007.
    #[error(transparent)]
    Invalid(#[from] InvalidMessage),
}

impl DecodeError {
    /// How a connection that sent this must be closed.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            DecodeError::TooLarge { .. } => CloseReason::MessageTooLarge,
            _ => CloseReason::InvalidMessage,
        }
    }
}

/// Decodes one server message (for clients, bots and tests).
pub fn decode_server(encoding: Encoding, bytes: &[u8]) -> Result<ServerMessage, DecodeError> {
    decode(encoding, bytes, &DecodeLimits::SERVER)
}

/// Encodes a server message.
pub fn encode_server(encoding: Encoding, msg: &ServerMessage) -> Bytes {
    encode(encoding, msg)
}

/// Encodes a client message.
pub fn encode_client(encoding: Encoding, msg: &ClientMessage) -> Bytes {
    encode(encoding, msg)
}

/// Appends an encoded client message to `out`: for clients that reuse one buffer for
/// every message they send.
pub fn write_client(encoding: Encoding, msg: &ClientMessage, out: &mut Vec<u8>) {
    write(encoding, msg, out);
}

fn encode<T: Serialize>(encoding: Encoding, value: &T) -> Bytes {
    let mut out = Vec::with_capacity(64);
    write(encoding, value, &mut out);
    Bytes::from(out)
}

fn write<T: Serialize>(encoding: Encoding, value: &T, out: &mut Vec<u8>) {
    match encoding {
        // Writing into a Vec cannot fail and our types contain no maps with non-string
        // keys, so both encoders are infallible here.
        Encoding::MsgPack => rmp_serde::encode::write_named(&mut *out, value)
            .expect("MessagePack encoding of protocol types is infallible"),
        Encoding::Json => serde_json::to_writer(&mut *out, value)
            .expect("JSON encoding of protocol types is infallible"),
    }
}

fn decode<T: DeserializeOwned>(
    encoding: Encoding,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<T, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_message_bytes,
        });
    }
    match encoding {
        Encoding::MsgPack => {
            let len = msgpack_value_len(bytes, limits.max_depth)?;
            if len != bytes.len() {
                return Err(malformed(encoding, "trailing bytes after the message"));
            }
            if !matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
                return Err(DecodeError::MissingType);
            }
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            de.set_max_depth(limits.max_depth);
            T::deserialize(&mut de).map_err(|e| classify_msgpack(e, limits.max_depth, ""))
        }
        Encoding::Json => {
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'{') {
                return Err(if first.is_none() {
                    malformed(encoding, "empty message")
                } else if json_depth_exceeds(bytes, limits.max_depth) {
                    DecodeError::TooDeep {
                        limit: limits.max_depth,
                    }
                } else {
                    DecodeError::MissingType
                });
            }
            if json_depth_exceeds(bytes, limits.max_depth) {
                return Err(DecodeError::TooDeep {
                    limit: limits.max_depth,
                });
            }
            serde_json::from_slice(bytes).map_err(|e| classify_json(e, ""))
        }
    }
}

fn malformed(encoding: Encoding, detail: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        encoding,
        detail: detail.into(),
    }
}

/// Sorts a serde data error into our variants, naming the key path `at` (empty for the
/// whole message). serde reports a missing type key through its own fixed wording, which
/// is what we match on.
fn classify_data_error(msg: &str, at: &str) -> DecodeError {
    if msg.starts_with("missing field `t`") && !at.contains('.') {
        return DecodeError::MissingType;
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let name = rest.split('`').next().unwrap_or_default();
        return DecodeError::UnknownType(crate::inbound::excerpt(name, 32));
    }
    let msg = crate::inbound::sanitise(msg);
    DecodeError::Schema(if at.is_empty() {
        msg
    } else {
        format!("{at}: {msg}")
    })
}

pub(crate) fn classify_msgpack(
    e: rmp_serde::decode::Error,
    max_depth: usize,
    at: &str,
) -> DecodeError {
    use rmp_serde::decode::Error as E;
    match e {
        E::DepthLimitExceeded => DecodeError::TooDeep { limit: max_depth },
        E::Syntax(msg) => classify_data_error(&msg, at),
        E::TypeMismatch(marker) => classify_data_error(&format!("unexpected value {marker:?}"), at),
        E::OutOfRange => classify_data_error("number out of range", at),
        E::LengthMismatch(n) => classify_data_error(&format!("wrong number of elements ({n})"), at),
        E::Utf8Error(e) => malformed(Encoding::MsgPack, format!("invalid UTF-8: {e}")),
        other => malformed(Encoding::MsgPack, other.to_string()),
    }
}

pub(crate) fn classify_json(e: serde_json::Error, at: &str) -> DecodeError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            // serde_json appends " at line L column C"; the position is noise here.
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            classify_data_error(msg, at)
        }
        Category::Eof => malformed(Encoding::Json, "truncated"),
        Category::Syntax | Category::Io => malformed(Encoding::Json, e.to_string()),
    }
}

/// Whether `[`/`{` nesting in a JSON text goes deeper than `limit`, ignoring brackets
/// inside strings. serde_json has its own hard limit of 128; this enforces ours first.
pub(crate) fn json_depth_exceeds(bytes: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Length in bytes of the single MessagePack value at the start of `buf`, walking it
/// without recursion. Fails on truncation, reserved markers, nesting beyond `max_depth`
/// and containers that declare more elements than bytes remain (each element takes at
/// least one byte), so a 5-byte "array of 4 Gi elements" is rejected before anything
/// allocates.
pub fn msgpack_value_len(buf: &[u8], max_depth: usize) -> Result<usize, DecodeError> {
    walk_msgpack(buf, max_depth, true)
}

/// [`msgpack_value_len`], refusing `bin` and `ext` values unless `allow_binary`.
pub(crate) fn walk_msgpack(
    buf: &[u8],
    max_depth: usize,
    allow_binary: bool,
) -> Result<usize, DecodeError> {
    let truncated = || malformed(Encoding::MsgPack, "truncated");
    // Remaining values to read at each open container level; the outermost level holds
    // the single top-level value.
    let mut stack = Levels::default();
    stack.push(1);
    let mut pos = 0usize;
    let be = |at: usize, n: usize| -> Result<u64, DecodeError> {
        let s = buf.get(at..at + n).ok_or_else(truncated)?;
        Ok(s.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    };
    while let Some(top) = stack.last_mut() {
        if *top == 0 {
            stack.pop();
            continue;
        }
        *top -= 1;
        let marker = *buf.get(pos).ok_or_else(truncated)?;
        pos += 1;
        if !allow_binary && matches!(marker, 0xc4..=0xc9 | 0xd4..=0xd8) {
            return Err(DecodeError::Binary);
        }
        // (payload bytes to skip, elements of a new container)
        let (skip, children): (u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc1 => return Err(malformed(Encoding::MsgPack, "reserved marker 0xc1")),
            0xc4 | 0xd9 => (be(pos, 1)? + 1, 0),
            0xc5 | 0xda => (be(pos, 2)? + 2, 0),
            0xc6 | 0xdb => (be(pos, 4)? + 4, 0),
            0xc7 => (be(pos, 1)? + 2, 0),
            0xc8 => (be(pos, 2)? + 3, 0),
            0xc9 => (be(pos, 4)? + 5, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (2, be(pos, 2)?),
            0xdd => (4, be(pos, 4)?),
            0xde => (2, 2 * be(pos, 2)?),
            0xdf => (4, 2 * be(pos, 4)?),
        };
        let remaining = (buf.len() - pos) as u64;
        if skip > remaining {
            return Err(truncated());
        }
        pos += skip as usize;
        let is_container = matches!(marker, 0x80..=0x9f | 0xdc..=0xdf);
        if is_container {
            if children > (buf.len() - pos) as u64 {
                return Err(malformed(
                    Encoding::MsgPack,
                    format!("container declares {children} elements but the message is shorter"),
                ));
            }
            // The outermost entry is not a container level, so depth = stack.len().
            if stack.len() > max_depth {
                return Err(DecodeError::TooDeep { limit: max_depth });
            }
            stack.push(children);
        }
    }
    Ok(pos)
}

/// The open-container counts of [`msgpack_value_len`]: inline up to the protocol's depth
/// limit (16, plus the outermost value), so measuring a message allocates nothing; on the
/// heap past it.
#[derive(Default)]
struct Levels {
    inline: [u64; 17],
    len: usize,
    spill: Vec<u64>,
}

impl Levels {
    fn push(&mut self, v: u64) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = v,
            None => self.spill.push(v),
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        if self.len > self.inline.len() {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }

    fn last_mut(&mut self) -> Option<&mut u64> {
        let top = self.len.checked_sub(1)?;
        match self.inline.get_mut(top) {
            Some(slot) => Some(slot),
            None => self.spill.last_mut(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// Encodes a snapshot's entity list once, for every recipient using `encoding`.
pub fn encode_ents(encoding: Encoding, ents: &[Entity]) -> Bytes {
    encode(encoding, &ents)
}

/// Encodes a snapshot's rows once (the v1 `ents` body), for any game's schema. Equal to
/// [`encode_ents`] of the typed rows for the arena.
pub fn encode_rows(encoding: Encoding, schema: &RowSchema, rows: &Rows) -> Bytes {
    encode(encoding, &V1Rows { schema, rows })
}

/// Encodes a game event as `{"t":"event", <the event's own keys>}`: the engine's envelope
/// around any game's event type (which serializes as a map with its tag `e` first).
pub fn encode_event<E: Serialize>(encoding: Encoding, event: &E) -> Bytes {
    #[derive(Serialize)]
    struct Envelope<'a, E> {
        t: &'static str,
        #[serde(flatten)]
        event: &'a E,
    }
    encode(encoding, &Envelope { t: "event", event })
}

/// Bytes of a snapshot header before `ents`, at most.
pub const SNAP_HEADER_MAX: usize = 64;

/// Writes a complete `snap` frame for one recipient: its header (with its `ack`) followed
/// by the shared `ents` body from [`encode_ents`]. The result equals
/// `encode_server(encoding, &ServerMessage::Snap(..))` byte for byte.
pub fn write_snap(encoding: Encoding, tick: u32, ack: u32, ents: &[u8], out: &mut BytesMut) {
    let mut head = [0u8; SNAP_HEADER_MAX];
    let n = snap_header(encoding, tick, ack, &mut head);
    out.reserve(n + ents.len() + 1);
    out.put_slice(&head[..n]);
    out.put_slice(ents);
    out.put_slice(snap_trailer(encoding));
}

/// Writes the part of a `snap` frame before the shared body into `out` and returns its
/// length: a recipient's frame is this, the body, then [`snap_trailer`].
pub fn snap_header(
    encoding: Encoding,
    tick: u32,
    ack: u32,
    out: &mut [u8; SNAP_HEADER_MAX],
) -> usize {
    let mut w: &mut [u8] = &mut out[..];
    let before = w.len();
    match encoding {
        Encoding::MsgPack => {
            // The buffer is larger than the longest header, so writes cannot fail.
            let _ = rmp::encode::write_map_len(&mut w, 4);
            let _ = rmp::encode::write_str(&mut w, "t");
            let _ = rmp::encode::write_str(&mut w, "snap");
            let _ = rmp::encode::write_str(&mut w, "tick");
            let _ = rmp::encode::write_uint(&mut w, u64::from(tick));
            let _ = rmp::encode::write_str(&mut w, "ack");
            let _ = rmp::encode::write_uint(&mut w, u64::from(ack));
            let _ = rmp::encode::write_str(&mut w, "ents");
        }
        Encoding::Json => {
            use std::io::Write as _;
            let _ = write!(w, r#"{{"t":"snap","tick":{tick},"ack":{ack},"ents":"#);
        }
    }
    before - w.len()
}

/// What follows the shared body in a `snap` frame.
pub const fn snap_trailer(encoding: Encoding) -> &'static [u8] {
    match encoding {
        Encoding::MsgPack => b"",
        Encoding::Json => b"}",
    }
}

/// Builds a whole snapshot frame (see [`write_snap`]).
pub fn snap_frame(encoding: Encoding, tick: u32, ack: u32, ents: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    write_snap(encoding, tick, ack, ents, &mut out);
    out.freeze()
}

/// `tick` and `ack` of a snapshot, read without decoding its entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapHeader {
    /// Snapshot tick.
    pub tick: u32,
    /// Acknowledged input `seq`.
    pub ack: u32,
}

/// The value of `t` of a MessagePack server message, when `t` is its first key (the
/// server always writes it first). `None` for anything else.
pub fn peek_type(bytes: &[u8]) -> Option<&str> {
    let mut rd = bytes;
    let len = rmp::decode::read_map_len(&mut rd).ok()?;
    if len == 0 || read_str(&mut rd)? != "t" {
        return None;
    }
    read_str(&mut rd)
}

/// Reads `tick` and `ack` from a MessagePack `snap` without touching `ents`: what a
/// client that only tracks acknowledgements needs, at a fraction of a full decode.
pub fn peek_snap_header(bytes: &[u8]) -> Option<SnapHeader> {
    let mut rd = bytes;
    let len = rmp::decode::read_map_len(&mut rd).ok()?;
    let (mut tick, mut ack, mut is_snap) = (None, None, false);
    for _ in 0..len {
        match read_str(&mut rd)? {
            "t" => is_snap = read_str(&mut rd)? == "snap",
            "tick" => tick = Some(rmp::decode::read_int::<u32, _>(&mut rd).ok()?),
            "ack" => ack = Some(rmp::decode::read_int::<u32, _>(&mut rd).ok()?),
            _ => break,
        }
        if let (true, Some(tick), Some(ack)) = (is_snap, tick, ack) {
            return Some(SnapHeader { tick, ack });
        }
    }
    None
}

pub(crate) fn read_str<'a>(rd: &mut &'a [u8]) -> Option<&'a str> {
    let n = rmp::decode::read_str_len(rd).ok()? as usize;
    let s = rd.get(..n)?;
    *rd = &rd[n..];
    std::str::from_utf8(s).ok()
}

/// Convenience for tests and tools: the full `snap` message for one recipient.
pub fn snap_message(tick: u32, ack: u32, ents: Vec<Entity>) -> ServerMessage {
    ServerMessage::Snap(Snap { tick, ack, ents })
}
