//! Server messages read as far as the caller needs, without IO.
//!
//! Every message a session receives passes through [`Decoder::inspect`], in order: it
//! reads the type and the few numbers a client tracks (a snapshot's `tick` and `ack`, a
//! pong's `id`) straight from the bytes — the server writes `t` first and those keys next,
//! in a fixed order — and allocates nothing. Anything else is decoded on demand:
//! [`Decoder::snapshot_into`] fills a caller's vector with the entities (reusing its
//! memory), [`Decoder::decode`] gives the full [`ServerMessage`]. When a fast path does not
//! recognise the bytes (another key order), the full decoder answers instead: a change
//! on the server costs speed, never correctness.
//!
//! The decoder is chosen by the negotiated subprotocol. v1 snapshots are self-contained;
//! v2's are deltas, so a v2 decoder keeps the reconstructed state ([`Reconstruction`],
//! started from the `welcome`'s schema by [`Decoder::start`]) and `inspect`, which sees
//! every message in order, applies each snapshot frame to it. Its [`Peek`] says what
//! became of the frame and whether the caller must send `resync`; the entities are read
//! from the state on demand, never materialised unasked.
//!
//! Must not do IO or read a clock.

use rallypoint_protocol::codec::{
    DecodeLimits, SnapHeader, decode_server, msgpack_value_len, peek_snap_header, peek_type,
};
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::{Pong, ServerMessage, Welcome};
use rallypoint_protocol::v2::SNAPSHOT_TYPE;
use rallypoint_protocol::{DecodeError, Encoding, Subprotocol};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};

use crate::v2::{FrameOutcome, Reconstruction};

/// What kind of server message a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `welcome`.
    Welcome,
    /// A snapshot: `snap` (v1) or a snapshot frame, `s` (v2).
    Snap,
    /// `pong`.
    Pong,
    /// `chat`.
    Chat,
    /// `event`.
    Event,
    /// `error` (a close with a reason follows).
    Error,
    /// `moved`: the room lives on another node now (close 1012 follows).
    Moved,
    /// A well-formed message whose `t` this library does not know (a newer server).
    Unknown,
    /// Not a message at all: [`Decoder::decode`] says why.
    Unreadable,
}

impl Kind {
    fn from_type(t: &str) -> Kind {
        match t {
            "welcome" => Kind::Welcome,
            "snap" => Kind::Snap,
            "pong" => Kind::Pong,
            "chat" => Kind::Chat,
            "event" => Kind::Event,
            "error" => Kind::Error,
            "moved" => Kind::Moved,
            _ => Kind::Unknown,
        }
    }

    fn of(msg: &ServerMessage) -> Kind {
        match msg {
            ServerMessage::Welcome(_) => Kind::Welcome,
            ServerMessage::Snap(_) => Kind::Snap,
            ServerMessage::Pong(_) => Kind::Pong,
            ServerMessage::Chat(_) => Kind::Chat,
            ServerMessage::Event(_) => Kind::Event,
            ServerMessage::Error(_) => Kind::Error,
            ServerMessage::Moved(_) => Kind::Moved,
        }
    }
}

/// What [`Decoder::inspect`] read from one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    /// The message type.
    pub kind: Kind,
    /// `tick` and `ack`, for a snapshot (for a v2 frame, whenever its header reads).
    pub snap: Option<SnapHeader>,
    /// The pong, for a pong.
    pub pong: Option<Pong>,
    /// v2: what became of the snapshot frame.
    pub frame: Option<FrameOutcome>,
    /// v2: the state was dropped and the caller must send `{"t":"resync"}` now.
    pub resync: bool,
}

impl Peek {
    fn of(kind: Kind) -> Peek {
        Peek {
            kind,
            snap: None,
            pong: None,
            frame: None,
            resync: false,
        }
    }
}

/// Reads server messages of one subprotocol.
#[derive(Debug, Clone)]
pub struct Decoder {
    encoding: Encoding,
    /// v2 only: the reconstructed state.
    v2: Option<Reconstruction>,
}

impl Decoder {
    /// The decoder for a negotiated subprotocol.
    pub fn new(protocol: Subprotocol) -> Decoder {
        Decoder {
            encoding: protocol.encoding(),
            v2: protocol.is_v2().then(Reconstruction::new),
        }
    }

    /// The encoding of the messages.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Takes what the `welcome` says about snapshots (v2: the schema and tick rate the
    /// state is reconstructed with). Call it once, before the first snapshot.
    pub fn start(&mut self, welcome: &Welcome) {
        if let Some(r) = self.v2.as_mut() {
            r.start(welcome);
        }
    }

    /// v2: the reconstructed state and its counters; `None` for v1.
    pub fn v2(&self) -> Option<&Reconstruction> {
        self.v2.as_ref()
    }

    /// Called for every message, in order. Allocates nothing unless the bytes are not in
    /// the server's usual key order.
    pub fn inspect(&mut self, payload: &[u8]) -> Peek {
        let fast = match self.encoding {
            Encoding::MsgPack => peek_type(payload),
            Encoding::Json => json_type(payload),
        };
        if fast == Some(SNAPSHOT_TYPE)
            && let Some(peek) = self.apply_frame(payload)
        {
            return peek;
        }
        let kind = fast.map(Kind::from_type);
        let snap = match (kind, self.encoding) {
            (Some(Kind::Snap), Encoding::MsgPack) => peek_snap_header(payload),
            (Some(Kind::Snap), Encoding::Json) => {
                json_u32_pair(payload, br#"{"t":"snap","tick":"#, br#","ack":"#)
                    .map(|(tick, ack)| SnapHeader { tick, ack })
            }
            _ => None,
        };
        let pong = match kind {
            Some(Kind::Pong) => self.peek_pong(payload),
            _ => None,
        };
        match kind {
            Some(Kind::Snap) if snap.is_none() => self.inspect_slowly(payload),
            Some(Kind::Pong) if pong.is_none() => self.inspect_slowly(payload),
            Some(kind) => Peek {
                snap,
                pong,
                ..Peek::of(kind)
            },
            None => self.inspect_slowly(payload),
        }
    }

    /// v2: applies a snapshot frame (`None` for v1, whose `s` is an unknown type).
    fn apply_frame(&mut self, payload: &[u8]) -> Option<Peek> {
        let f = self.v2.as_mut()?.apply(payload);
        Some(Peek {
            snap: f.head,
            frame: Some(f.outcome),
            resync: f.resync,
            ..Peek::of(Kind::Snap)
        })
    }

    fn inspect_slowly(&mut self, payload: &[u8]) -> Peek {
        match self.decode(payload) {
            Ok(msg) => {
                let mut peek = Peek::of(Kind::of(&msg));
                match msg {
                    ServerMessage::Snap(s) => {
                        peek.snap = Some(SnapHeader {
                            tick: s.tick,
                            ack: s.ack,
                        })
                    }
                    ServerMessage::Pong(p) => peek.pong = Some(p),
                    _ => {}
                }
                peek
            }
            // A v2 frame whose `t` is not its first key.
            Err(DecodeError::UnknownType(t)) if t == SNAPSHOT_TYPE => {
                self.apply_frame(payload).unwrap_or(Peek::of(Kind::Unknown))
            }
            Err(DecodeError::UnknownType(_)) => Peek::of(Kind::Unknown),
            Err(_) => Peek::of(Kind::Unreadable),
        }
    }

    fn peek_pong(&self, payload: &[u8]) -> Option<Pong> {
        let (id, tick) = match self.encoding {
            Encoding::MsgPack => msgpack_u32_pair(payload, "pong", "id", "tick")?,
            Encoding::Json => json_u32_pair(payload, br#"{"t":"pong","id":"#, br#","tick":"#)?,
        };
        Some(Pong { id, tick })
    }

    /// The whole message.
    pub fn decode(&self, payload: &[u8]) -> Result<ServerMessage, DecodeError> {
        decode_server(self.encoding, payload)
    }

    /// A snapshot's header, with its entities appended to `ents` (cleared first). Reuses
    /// `ents`' memory: a caller that keeps one vector allocates only when a snapshot has
    /// more entities than any before it. v2: the rows of the reconstructed state at the
    /// frame's tick, which must be the frame [`Decoder::inspect`] applied last.
    pub fn snapshot_into(
        &self,
        payload: &[u8],
        ents: &mut Vec<Entity>,
    ) -> Result<SnapHeader, DecodeError> {
        ents.clear();
        if let Some(r) = &self.v2 {
            return v2_entities(r, payload, ents);
        }
        let fast = match self.encoding {
            Encoding::MsgPack => msgpack_snapshot_into(payload, ents),
            Encoding::Json => json_snapshot_into(payload, ents),
        };
        if let Some(head) = fast {
            return Ok(head);
        }
        ents.clear();
        match self.decode(payload)? {
            ServerMessage::Snap(s) => {
                ents.extend(s.ents);
                Ok(SnapHeader {
                    tick: s.tick,
                    ack: s.ack,
                })
            }
            _ => Err(DecodeError::Schema("not a snapshot".into())),
        }
    }
}

/// The arena's typed rows of the state a v2 frame left, at its tick.
fn v2_entities(
    r: &Reconstruction,
    payload: &[u8],
    ents: &mut Vec<Entity>,
) -> Result<SnapHeader, DecodeError> {
    let not_held =
        || DecodeError::Schema("the v2 frame was not applied: no state at its tick".into());
    let head = rallypoint_protocol::v2::decode::header(payload).map_err(|_| not_held())?;
    let state = r
        .state()
        .filter(|s| s.tick() == Some(head.tick))
        .ok_or_else(not_held)?;
    state.for_each_row_at(head.tick, |row| ents.push(Entity::from_row(row)));
    Ok(SnapHeader {
        tick: head.tick,
        ack: head.ack,
    })
}

/// Pushes every row of a sequence onto a vector.
struct ExtendRows<'a>(&'a mut Vec<Entity>);

impl<'de> DeserializeSeed<'de> for ExtendRows<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ExtendRows<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of entity rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(e) = seq.next_element::<Entity>()? {
            self.0.push(e);
        }
        Ok(())
    }
}

/// Walks a MessagePack `snap` map: `tick`, `ack`, and `ents` decoded into `out`; other
/// keys skipped. `None`: not a snapshot this walk understands.
fn msgpack_snapshot_into(payload: &[u8], out: &mut Vec<Entity>) -> Option<SnapHeader> {
    let depth = DecodeLimits::SERVER.max_depth;
    let mut rd = payload;
    let len = rmp::decode::read_map_len(&mut rd).ok()?;
    let (mut tick, mut ack, mut ents, mut is_snap) = (None, None, false, false);
    for _ in 0..len {
        match read_str(&mut rd)? {
            "t" => is_snap = read_str(&mut rd)? == "snap",
            "tick" => tick = Some(rmp::decode::read_int::<u32, _>(&mut rd).ok()?),
            "ack" => ack = Some(rmp::decode::read_int::<u32, _>(&mut rd).ok()?),
            key => {
                let n = msgpack_value_len(rd, depth).ok()?;
                if key == "ents" {
                    let mut de = rmp_serde::Deserializer::from_read_ref(&rd[..n]);
                    de.set_max_depth(depth);
                    ExtendRows(out).deserialize(&mut de).ok()?;
                    ents = true;
                }
                rd = &rd[n..];
            }
        }
    }
    (is_snap && ents && rd.is_empty()).then_some(SnapHeader {
        tick: tick?,
        ack: ack?,
    })
}

/// A JSON `snap` written as `{"t":"snap","tick":N,"ack":M,"ents":[...]}`.
fn json_snapshot_into(payload: &[u8], out: &mut Vec<Entity>) -> Option<SnapHeader> {
    // The object's closing brace is cut off first, so the array must be all that is left.
    let end = payload.iter().rposition(|b| !b.is_ascii_whitespace())?;
    let body = payload[..=end].strip_suffix(b"}")?;
    let rest = body.strip_prefix(br#"{"t":"snap","tick":"#)?;
    let (tick, rest) = json_u32(rest)?;
    let (ack, rest) = json_u32(rest.strip_prefix(br#","ack":"#)?)?;
    let rest = rest.strip_prefix(br#","ents":"#)?;
    let mut de = serde_json::Deserializer::from_slice(rest);
    ExtendRows(out).deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(SnapHeader { tick, ack })
}

/// The first two keys after `t` of a MessagePack map, when `t` is `ty` and both are the
/// named unsigned integers.
fn msgpack_u32_pair(payload: &[u8], ty: &str, a: &str, b: &str) -> Option<(u32, u32)> {
    let mut rd = payload;
    if rmp::decode::read_map_len(&mut rd).ok()? < 3
        || read_str(&mut rd)? != "t"
        || read_str(&mut rd)? != ty
    {
        return None;
    }
    let mut pair = [0u32; 2];
    for (slot, key) in pair.iter_mut().zip([a, b]) {
        if read_str(&mut rd)? != key {
            return None;
        }
        *slot = rmp::decode::read_int(&mut rd).ok()?;
    }
    Some((pair[0], pair[1]))
}

fn read_str<'a>(rd: &mut &'a [u8]) -> Option<&'a str> {
    let n = rmp::decode::read_str_len(rd).ok()? as usize;
    let s = rd.get(..n)?;
    *rd = &rd[n..];
    std::str::from_utf8(s).ok()
}

/// The `t` of a JSON message written as `{"t":"...` (how the server writes every message).
fn json_type(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(br#"{"t":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// Two unsigned integers of a JSON message written as `<head>N<middle>M` followed by `,`
/// or `}`.
fn json_u32_pair(bytes: &[u8], head: &[u8], middle: &[u8]) -> Option<(u32, u32)> {
    let (a, rest) = json_u32(bytes.strip_prefix(head)?)?;
    let (b, rest) = json_u32(rest.strip_prefix(middle)?)?;
    matches!(rest.first(), Some(b',' | b'}')).then_some((a, b))
}

fn json_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return None;
    }
    let value = std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()?;
    Some((value, &bytes[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rallypoint_protocol::codec::{encode_server, snap_message};
    use rallypoint_protocol::examples;
    use rallypoint_protocol::message::Event;

    const BOTH: [Subprotocol; 2] = [Subprotocol::V1MsgPack, Subprotocol::V1Json];

    #[test]
    fn fast_paths_agree_with_the_full_decoder() {
        for p in BOTH {
            let mut d = Decoder::new(p);
            let snap = encode_server(
                p.encoding(),
                &snap_message(4_000_000_000, 77, examples::entities()),
            );
            let peek = d.inspect(&snap);
            assert_eq!(peek.kind, Kind::Snap);
            assert_eq!(
                peek.snap,
                Some(SnapHeader {
                    tick: 4_000_000_000,
                    ack: 77
                })
            );
            let mut ents = vec![Entity::Other {
                id: 1,
                kind: 9,
                x: 0.0,
                y: 0.0,
            }];
            assert_eq!(d.snapshot_into(&snap, &mut ents).unwrap().ack, 77);
            assert_eq!(ents, examples::entities(), "{p}");
            let pong = encode_server(p.encoding(), &ServerMessage::Pong(Pong { id: 9, tick: 3 }));
            assert_eq!(d.inspect(&pong).pong, Some(Pong { id: 9, tick: 3 }));
            let ev = encode_server(p.encoding(), &ServerMessage::Event(Event::Leave { id: 4 }));
            assert_eq!(d.inspect(&ev).kind, Kind::Event);
        }
    }

    #[test]
    fn another_key_order_still_decodes() {
        let mut d = Decoder::new(Subprotocol::V1Json);
        let reordered = br#"{"ack":6,"t":"snap","ents":[[5,2,1.0,2.0,1]],"tick":5}"#;
        let peek = d.inspect(reordered);
        assert_eq!(peek.snap, Some(SnapHeader { tick: 5, ack: 6 }));
        let mut ents = Vec::new();
        assert_eq!(d.snapshot_into(reordered, &mut ents).unwrap().tick, 5);
        assert_eq!(ents.len(), 1);
        let pong = br#"{"tick":1,"id":2,"t":"pong"}"#;
        assert_eq!(d.inspect(pong).pong, Some(Pong { id: 2, tick: 1 }));
    }

    #[test]
    fn unknown_and_unreadable() {
        for p in BOTH {
            let mut d = Decoder::new(p);
            let newer = match p.encoding() {
                Encoding::Json => br#"{"t":"teleport","x":1}"#.to_vec(),
                Encoding::MsgPack => vec![0x81, 0xa1, b't', 0xa3, b'n', b'e', b'w'],
            };
            assert_eq!(d.inspect(&newer).kind, Kind::Unknown, "{p}");
            assert_eq!(d.inspect(&[0xc1, 0x00]).kind, Kind::Unreadable, "{p}");
            assert!(d.snapshot_into(&[0xc1], &mut Vec::new()).is_err());
            assert!(json_u32(b"12345678901").is_none());
        }
    }
}
