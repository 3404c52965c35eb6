//! Messages on the wire, as cheaply as the behaviour allows.
//!
//! Outgoing messages use the protocol crate's encoder. Incoming snapshots are the bulk of
//! the traffic, so a bot that does not look at entities (idle, wander) reads only `t`,
//! `tick` and `ack` ([`peek_type`], [`peek_snap_header`] for MessagePack; the equivalent
//! prefix scan for JSON, which the server also writes in a fixed key order) and never
//! decodes `ents`. Events and chat are only counted, except that a bot watching the game
//! state (fight, or checking its state across resumes) decodes events for the round
//! number. Everything else (welcome, pong, error) is decoded fully, and anything a fast path does not recognise falls back to the
//! full decoder, so a change in the server's key order costs speed, not correctness.
//!
//! Must not do IO.

use bytes::Bytes;
use rallypoint_protocol::codec::{
    SnapHeader, decode_server, encode_client, peek_snap_header, peek_type,
};
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::{
    ChatSend, ClientMessage, ErrorMessage, Event, Input, Ping, Pong, ServerMessage, Welcome,
};
use rallypoint_protocol::{DecodeError, Encoding};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::behavior::Control;

/// A server message, decoded as far as the bot needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// A snapshot; `ents` only when asked for.
    Snap {
        /// Snapshot tick.
        tick: u32,
        /// Acknowledged input `seq`.
        ack: u32,
        /// Entities, decoded only for behaviours that look at them.
        ents: Option<Vec<Entity>>,
    },
    /// The first message of a session.
    Welcome(Welcome),
    /// Answer to a ping.
    Pong(Pong),
    /// Sent before a close with a reason.
    Error(ErrorMessage),
    /// A `round_start` event (only decoded when asked for the game state).
    RoundStart(u32),
    /// Other events and chat: counted, not decoded.
    Other,
}

/// Decodes `bytes` (one frame's payload) as far as needed: with `want_state`, snapshot
/// entities and `round_start` events too.
pub fn classify(
    encoding: Encoding,
    bytes: &[u8],
    want_state: bool,
) -> Result<Inbound, DecodeError> {
    let want_ents = want_state;
    let kind = match encoding {
        Encoding::MsgPack => peek_type(bytes),
        Encoding::Json => json_peek_type(bytes),
    };
    match kind {
        Some("chat") => return Ok(Inbound::Other),
        Some("event") if !want_state => return Ok(Inbound::Other),
        Some("snap") if !want_ents => {
            let head = match encoding {
                Encoding::MsgPack => peek_snap_header(bytes),
                Encoding::Json => json_snap_header(bytes),
            };
            if let Some(SnapHeader { tick, ack }) = head {
                return Ok(Inbound::Snap {
                    tick,
                    ack,
                    ents: None,
                });
            }
        }
        _ => {}
    }
    Ok(match decode_server(encoding, bytes)? {
        ServerMessage::Snap(s) => Inbound::Snap {
            tick: s.tick,
            ack: s.ack,
            ents: want_ents.then_some(s.ents),
        },
        ServerMessage::Welcome(w) => Inbound::Welcome(w),
        ServerMessage::Pong(p) => Inbound::Pong(p),
        ServerMessage::Error(e) => Inbound::Error(e),
        ServerMessage::Event(Event::RoundStart { round, .. }) if want_state => {
            Inbound::RoundStart(round)
        }
        ServerMessage::Chat(_) | ServerMessage::Event(_) | ServerMessage::Moved(_) => {
            Inbound::Other
        }
    })
}

/// The `t` of a JSON message written as `{"t":"...` (how the server writes every message).
fn json_peek_type(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.strip_prefix(br#"{"t":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()
}

/// `tick` and `ack` of a JSON snapshot written as `{"t":"snap","tick":N,"ack":M,...`.
fn json_snap_header(bytes: &[u8]) -> Option<SnapHeader> {
    let rest = bytes.strip_prefix(br#"{"t":"snap","tick":"#)?;
    let (tick, rest) = json_u32(rest)?;
    let rest = rest.strip_prefix(br#","ack":"#)?;
    let (ack, rest) = json_u32(rest)?;
    matches!(rest.first(), Some(b',' | b'}')).then_some(SnapHeader { tick, ack })
}

fn json_u32(bytes: &[u8]) -> Option<(u32, &[u8])> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 10 {
        return None;
    }
    let value = std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()?;
    Some((value, &bytes[digits..]))
}

/// A frame of the type the encoding requires (binary for MessagePack, text for JSON).
pub fn frame(encoding: Encoding, bytes: Bytes) -> Message {
    match encoding {
        Encoding::MsgPack => Message::Binary(bytes),
        // The JSON encoder writes UTF-8, so this never falls back; the check is what
        // avoiding `unsafe` costs.
        Encoding::Json => Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default()),
    }
}

/// An `input` frame.
pub fn input(encoding: Encoding, seq: u32, c: Control) -> Message {
    let msg = ClientMessage::Input(Input {
        seq,
        mx: c.mx,
        my: c.my,
        aim: c.aim,
        fire: c.fire,
    });
    frame(encoding, encode_client(encoding, &msg))
}

/// A `ping` frame.
pub fn ping(encoding: Encoding, id: u32) -> Message {
    frame(
        encoding,
        encode_client(encoding, &ClientMessage::Ping(Ping { id })),
    )
}

/// A well-formed `chat` message of about `bytes` bytes: too large for the server's limit
/// when `bytes` exceeds it, and for no other reason.
pub fn oversize(encoding: Encoding, bytes: usize) -> Message {
    let msg = ClientMessage::Chat(ChatSend {
        text: "x".repeat(bytes),
    });
    frame(encoding, encode_client(encoding, &msg))
}

/// A frame of the right type whose payload does not decode in the encoding.
pub fn garbage(encoding: Encoding) -> Message {
    match encoding {
        // 0xc1 is the one marker MessagePack reserves: never valid anywhere.
        Encoding::MsgPack => Message::Binary(Bytes::from_static(&[0xc1, 0xff, 0x00, 0x13, 0x37])),
        Encoding::Json => Message::Text(Utf8Bytes::from_static(r#"{"t":"input","seq":"#)),
    }
}

/// Payload length of a data frame (0 for control frames).
pub fn payload_len(m: &Message) -> usize {
    match m {
        Message::Binary(b) => b.len(),
        Message::Text(t) => t.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rallypoint_protocol::codec::{DecodeLimits, decode_client, encode_server, snap_message};

    const BOTH: [Encoding; 2] = [Encoding::MsgPack, Encoding::Json];

    fn ents() -> Vec<Entity> {
        vec![Entity::Player {
            id: 3,
            x: 1.0,
            y: 2.0,
            aim: 0.5,
            hp: 100,
            score: 1,
            flags: 0,
        }]
    }

    fn round_start(round: u32) -> Event {
        Event::RoundStart {
            round,
            map: "courtyard".into(),
            end_tick: 9000,
            score_limit: 20,
        }
    }

    #[test]
    fn fast_snap_headers_match_the_full_decoder() {
        for enc in BOTH {
            let bytes = encode_server(enc, &snap_message(4_000_000_000, 77, ents()));
            assert_eq!(
                classify(enc, &bytes, false).unwrap(),
                Inbound::Snap {
                    tick: 4_000_000_000,
                    ack: 77,
                    ents: None
                },
                "{enc}"
            );
            assert_eq!(
                classify(enc, &bytes, true).unwrap(),
                Inbound::Snap {
                    tick: 4_000_000_000,
                    ack: 77,
                    ents: Some(ents())
                }
            );
        }
        assert_eq!(
            json_snap_header(br#"{"t":"snap","tick":5,"ack":6,"ents":[]}"#),
            Some(SnapHeader { tick: 5, ack: 6 })
        );
        // Another key order still works, through the full decoder.
        let reordered = br#"{"ack":6,"t":"snap","ents":[],"tick":5}"#;
        assert_eq!(json_snap_header(reordered), None);
        assert_eq!(
            classify(Encoding::Json, reordered, false).unwrap(),
            Inbound::Snap {
                tick: 5,
                ack: 6,
                ents: None
            }
        );
    }

    #[test]
    fn events_are_not_decoded_and_garbage_is_an_error() {
        for enc in BOTH {
            let ev = encode_server(enc, &ServerMessage::Event(Event::Leave { id: 4 }));
            assert_eq!(classify(enc, &ev, true).unwrap(), Inbound::Other);
            let start = encode_server(enc, &ServerMessage::Event(round_start(7)));
            assert_eq!(classify(enc, &start, false).unwrap(), Inbound::Other);
            assert_eq!(
                classify(enc, &start, true).unwrap(),
                Inbound::RoundStart(7),
                "{enc}"
            );
            let pong = encode_server(enc, &ServerMessage::Pong(Pong { id: 9, tick: 1 }));
            assert_eq!(
                classify(enc, &pong, false).unwrap(),
                Inbound::Pong(Pong { id: 9, tick: 1 })
            );
            let junk = match garbage(enc) {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_bytes().to_vec(),
                _ => unreachable!(),
            };
            assert!(classify(enc, &junk, false).is_err());
            assert!(decode_client(enc, &junk, &DecodeLimits::default()).is_err());
        }
    }

    #[test]
    fn outgoing_frames_decode_on_the_server_side() {
        let limits = DecodeLimits::default();
        for enc in BOTH {
            let m = input(
                enc,
                12,
                Control {
                    mx: 1.0,
                    my: 0.0,
                    aim: 0.25,
                    fire: true,
                },
            );
            let (bytes, binary) = match &m {
                Message::Binary(b) => (b.to_vec(), true),
                Message::Text(t) => (t.as_bytes().to_vec(), false),
                _ => unreachable!(),
            };
            assert_eq!(binary, enc == Encoding::MsgPack);
            assert!(matches!(
                decode_client(enc, &bytes, &limits),
                Ok(ClientMessage::Input(Input { seq: 12, .. }))
            ));
            let big = oversize(enc, 16 * 1024);
            assert!(payload_len(&big) > limits.max_message_bytes);
        }
    }
}
