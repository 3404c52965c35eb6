//! Strict decoding of what clients send: the engine's envelope (`t`, and `seq` for an
//! `input`) and, for an `input`, the game's own fields.
//!
//! Strict because the input comes from anyone: before serde sees a byte, the size, the
//! structure (truncation, trailing bytes, declared lengths) and the nesting depth are
//! checked, MessagePack `bin` and `ext` values are refused (client messages have none, so
//! a string must be a string), and the top level must be a map. `t` must be a string
//! naming a known type. Every refusal is a typed [`DecodeError`] whose text names what
//! was wrong — the key path (`input.mx`), the limit — with at most a short, sanitised
//! excerpt of the client's data, because it is sent back in the `error` message.
//!
//! Must not panic or allocate in proportion to anything but the (size-checked) input.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use crate::codec::{DecodeError, DecodeLimits, Encoding, json_depth_exceeds, walk_msgpack};
use crate::message::{ChatSend, ClientMessage, Input, InvalidMessage, MessageKind, Ping};

/// The fields of an `input` beyond the engine's `t` and `seq`: a game's input type.
///
/// Decoded from the whole `input` map with the same limits as every client message;
/// keys the type does not declare (the engine's among them) are ignored.
pub trait InputFields: DeserializeOwned {
    /// Checks what serde cannot (finite numbers, ranges). The error names the field.
    fn validate(&self) -> Result<(), InvalidMessage>;

    /// A value standing for fields that are not decoded at all (a reader of the envelope
    /// only); `None`, the default, decodes them.
    fn skipped() -> Option<Self> {
        None
    }
}

impl InputFields for Input {
    fn validate(&self) -> Result<(), InvalidMessage> {
        for (name, v) in [("mx", self.mx), ("my", self.my), ("aim", self.aim)] {
            if !v.is_finite() {
                return Err(InvalidMessage::NotFinite(name));
            }
        }
        Ok(())
    }
}

/// For a reader that only needs the envelope (`t`, `seq`): the fields are skipped, and
/// decoded later with the game's type by [`decode_fields`].
impl InputFields for de::IgnoredAny {
    fn validate(&self) -> Result<(), InvalidMessage> {
        Ok(())
    }

    fn skipped() -> Option<Self> {
        Some(de::IgnoredAny)
    }
}

/// Decodes and validates the game's fields of a whole `input` message whose envelope was
/// already read by [`decode_inbound`]. The same limits apply, and errors name the field
/// as `input.<field>`.
pub fn decode_fields<I: InputFields>(
    encoding: Encoding,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<I, DecodeError> {
    precheck(encoding, bytes, limits)?;
    let fields: I = part(encoding, bytes, limits, "input")?;
    fields.validate()?;
    Ok(fields)
}

/// [`decode_fields`] for bytes that already passed [`decode_inbound`] (the engine's
/// session decodes the envelope; its room decodes the fields): the size and structure
/// checks are not repeated.
pub fn decode_checked_fields<I: InputFields>(
    encoding: Encoding,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<I, DecodeError> {
    let fields: I = part(encoding, bytes, limits, "input")?;
    fields.validate()?;
    Ok(fields)
}

/// A client message as the engine sees it: the envelope, with a game's input fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound<I> {
    /// `input`: the engine's sequence number and the game's fields.
    Input {
        /// Strictly increasing per session.
        seq: u32,
        /// The game's fields, validated.
        fields: I,
    },
    /// `ping`.
    Ping(Ping),
    /// `chat`, its length checked.
    Chat(ChatSend),
    /// `resync` (v2): the client asks for a keyframe.
    Resync,
}

impl<I> Inbound<I> {
    /// The rate-limit class of the message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Inbound::Input { .. } => MessageKind::Input,
            Inbound::Ping(_) => MessageKind::Ping,
            Inbound::Chat(_) => MessageKind::Chat,
            Inbound::Resync => MessageKind::Resync,
        }
    }
}

/// Decodes and validates one client message whose `input` fields are `I`.
pub fn decode_inbound<I: InputFields>(
    encoding: Encoding,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Inbound<I>, DecodeError> {
    precheck(encoding, bytes, limits)?;
    let fast = match encoding {
        Encoding::MsgPack => msgpack_envelope(bytes),
        Encoding::Json => None,
    };
    let (t, seq) = match fast {
        Some(envelope) => envelope,
        None => (part::<Envelope>(encoding, bytes, limits, "")?.t, None),
    };
    match t {
        TypeName::Input => {
            let seq = match seq {
                Some(seq) => seq,
                None => part::<SeqOnly>(encoding, bytes, limits, "input")?.seq,
            };
            let fields = match I::skipped() {
                Some(skipped) => skipped,
                None => part(encoding, bytes, limits, "input")?,
            };
            fields.validate()?;
            Ok(Inbound::Input { seq, fields })
        }
        TypeName::Ping => Ok(Inbound::Ping(part(encoding, bytes, limits, "ping")?)),
        TypeName::Chat => {
            let chat: ChatSend = part(encoding, bytes, limits, "chat")?;
            let chars = chat.text.chars().count();
            if chars > limits.max_chat_chars {
                return Err(InvalidMessage::ChatTooLong {
                    chars,
                    limit: limits.max_chat_chars,
                }
                .into());
            }
            Ok(Inbound::Chat(chat))
        }
        TypeName::Resync => Ok(Inbound::Resync),
        TypeName::Unknown(name) => Err(DecodeError::UnknownType(name)),
    }
}

/// Decodes and validates one client message of the arena (the typed view clients,
/// tools and tests use).
pub fn decode_client(
    encoding: Encoding,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<ClientMessage, DecodeError> {
    Ok(match decode_inbound::<Input>(encoding, bytes, limits)? {
        Inbound::Input { fields, .. } => ClientMessage::Input(fields),
        Inbound::Ping(p) => ClientMessage::Ping(p),
        Inbound::Chat(c) => ClientMessage::Chat(c),
        Inbound::Resync => ClientMessage::Resync,
    })
}

/// Size, structure, depth, no binary values, a map at the top.
fn precheck(encoding: Encoding, bytes: &[u8], limits: &DecodeLimits) -> Result<(), DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_message_bytes,
        });
    }
    match encoding {
        Encoding::MsgPack => {
            let len = walk_msgpack(bytes, limits.max_depth, false)?;
            if len != bytes.len() {
                return Err(DecodeError::Malformed {
                    encoding,
                    detail: "trailing bytes after the message".into(),
                });
            }
            if !matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf)) {
                return Err(DecodeError::MissingType);
            }
        }
        Encoding::Json => {
            if json_depth_exceeds(bytes, limits.max_depth) {
                return Err(DecodeError::TooDeep {
                    limit: limits.max_depth,
                });
            }
            match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => {}
                None => {
                    return Err(DecodeError::Malformed {
                        encoding,
                        detail: "empty message".into(),
                    });
                }
                Some(_) => return Err(DecodeError::MissingType),
            }
        }
    }
    Ok(())
}

/// One typed view of the message, with errors naming the key path under `prefix`.
///
/// Decoded without tracking the path first: tracking allocates for every key, and almost
/// every message is valid. Only a message that fails is decoded again, with the path, to
/// say precisely where.
fn part<T: DeserializeOwned>(
    encoding: Encoding,
    bytes: &[u8],
    limits: &DecodeLimits,
    prefix: &str,
) -> Result<T, DecodeError> {
    let fast = match encoding {
        Encoding::MsgPack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            // The structure walk already enforced the depth; rmp-serde counts one level
            // more than it, so give it room rather than a second, different limit.
            de.set_max_depth(limits.max_depth + 1);
            T::deserialize(&mut de).ok()
        }
        Encoding::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            T::deserialize(&mut de).ok().filter(|_| de.end().is_ok())
        }
    };
    match fast {
        Some(value) => Ok(value),
        None => part_explained(encoding, bytes, limits, prefix),
    }
}

/// [`part`] with the key path tracked, for the error's message.
fn part_explained<T: DeserializeOwned>(
    encoding: Encoding,
    bytes: &[u8],
    limits: &DecodeLimits,
    prefix: &str,
) -> Result<T, DecodeError> {
    let at = |path: &serde_path_to_error::Path| {
        let path = path.to_string();
        match (prefix, path.as_str()) {
            (p, ".") => p.to_owned(),
            ("", path) => path.to_owned(),
            (p, path) => format!("{p}.{path}"),
        }
    };
    match encoding {
        Encoding::MsgPack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            de.set_max_depth(limits.max_depth + 1);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = at(e.path());
                crate::codec::classify_msgpack(e.into_inner(), limits.max_depth, &path)
            })
        }
        Encoding::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = at(e.path());
                crate::codec::classify_json(e.into_inner(), &path)
            })?;
            de.end()
                .map_err(|e| crate::codec::classify_json(e, prefix))?;
            Ok(value)
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    t: TypeName,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u32,
}

/// The value of `t`: only a string is accepted (never an integer "variant index", never
/// bytes).
enum TypeName {
    Input,
    Ping,
    Chat,
    Resync,
    /// A string naming no message: a sanitised excerpt of it.
    Unknown(String),
}

impl TypeName {
    fn of(name: &str) -> TypeName {
        match name {
            "input" => TypeName::Input,
            "ping" => TypeName::Ping,
            "chat" => TypeName::Chat,
            "resync" => TypeName::Resync,
            other => TypeName::Unknown(excerpt(other, 32)),
        }
    }
}

/// `t` and `seq` of a plain, well-formed MessagePack message, read straight off the bytes
/// (the structure walk already checked them): the common case, without serde's passes.
/// `None` for anything unusual — a key that is not a string, a repeated or mistyped `t` or
/// `seq` — which the serde path then decodes and, if wrong, explains.
fn msgpack_envelope(bytes: &[u8]) -> Option<(TypeName, Option<u32>)> {
    let mut rd = bytes;
    let entries = rmp::decode::read_map_len(&mut rd).ok()?;
    let (mut t, mut seq) = (None, None);
    for _ in 0..entries {
        match crate::codec::read_str(&mut rd)? {
            "t" if t.is_none() => t = Some(TypeName::of(crate::codec::read_str(&mut rd)?)),
            "seq" if seq.is_none() => seq = Some(rmp::decode::read_int::<u32, _>(&mut rd).ok()?),
            "t" | "seq" => return None,
            _ => rd = rd.get(value_len(rd)?..)?,
        }
    }
    Some((t?, seq))
}

/// Length of the MessagePack value at the start of `rd`: scalars by their marker (an
/// input's values), anything else by the structure walk.
fn value_len(rd: &[u8]) -> Option<usize> {
    let len = match *rd.first()? {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 1,
        0xcc | 0xd0 => 2,
        0xcd | 0xd1 => 3,
        0xca | 0xce | 0xd2 => 5,
        0xcb | 0xcf | 0xd3 => 9,
        m @ 0xa0..=0xbf => 1 + usize::from(m & 0x1f),
        _ => return crate::codec::msgpack_value_len(rd, usize::MAX).ok(),
    };
    (len <= rd.len()).then_some(len)
}

impl<'de> Deserialize<'de> for TypeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TypeNameVisitor)
    }
}

struct TypeNameVisitor;

impl Visitor<'_> for TypeNameVisitor {
    type Value = TypeName;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string naming the message type")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<TypeName, E> {
        Ok(TypeName::of(v))
    }
}

/// At most `max` characters of client text, safe to show: control, bidi and zero-width
/// characters become U+FFFD, and a cut is marked with `…`.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(visible).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

fn visible(c: char) -> char {
    let invisible = c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}');
    if invisible { '\u{FFFD}' } else { c }
}

/// A decoder's message made safe to send back: quoted client strings cut to a short
/// excerpt, invisible characters replaced, the whole bounded.
pub(crate) fn sanitise(message: &str) -> String {
    const QUOTED: usize = 24;
    let mut out = String::with_capacity(message.len().min(256));
    let (mut in_quote, mut quoted) = (false, 0usize);
    for c in message.chars() {
        if c == '"' {
            if in_quote && quoted > QUOTED {
                out.push('…');
            }
            in_quote = !in_quote;
            quoted = 0;
            out.push(c);
            continue;
        }
        if in_quote {
            quoted += 1;
            if quoted > QUOTED {
                continue;
            }
        }
        out.push(visible(c));
    }
    excerpt(&out, 240)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_client;
    use crate::message::Ping;
    use crate::rng::SplitMix64;

    /// Wherever the fast envelope reader answers, the serde path answers the same.
    #[test]
    fn the_fast_envelope_agrees_with_serde() {
        let limits = DecodeLimits::default();
        let seeds: Vec<Vec<u8>> = [
            ClientMessage::Input(crate::examples::input()),
            ClientMessage::Ping(Ping { id: 7 }),
            ClientMessage::Resync,
        ]
        .iter()
        .map(|m| encode_client(Encoding::MsgPack, m).to_vec())
        .collect();
        let mut rng = SplitMix64::new(11);
        let mut answered = 0;
        for i in 0..50_000 {
            let mut bytes = seeds[i % seeds.len()].clone();
            for _ in 0..rng.below(3) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next_u64() as u8;
            }
            if precheck(Encoding::MsgPack, &bytes, &limits).is_err() {
                continue;
            }
            let Some((t, seq)) = msgpack_envelope(&bytes) else {
                continue;
            };
            answered += 1;
            let slow = part::<Envelope>(Encoding::MsgPack, &bytes, &limits, "").map(|e| e.t);
            assert_eq!(
                Ok(std::mem::discriminant(&t)),
                slow.map(|s| std::mem::discriminant(&s))
            );
            if let (TypeName::Input, Some(seq)) = (t, seq) {
                let slow = part::<SeqOnly>(Encoding::MsgPack, &bytes, &limits, "input");
                assert_eq!(slow.map(|s| s.seq), Ok(seq), "{bytes:02x?}");
            }
        }
        assert!(answered > 10_000, "{answered}");
    }
}
