//! What bots put on the wire beyond the client library's messages: their inputs built
//! from a behaviour's controls, and the messages abusers send on purpose (one too large
//! for the server's limit, one that does not decode).
//!
//! Reading is the library's (`rallypoint_client::Incoming`): a snapshot's header and a
//! pong come without decoding, entities only for behaviours that look at them.
//!
//! Must not do IO.

use rallypoint_client::frame::Opcode;
use rallypoint_protocol::Encoding;
use rallypoint_protocol::message::{ChatSend, ClientMessage, Input};

use crate::behavior::Control;

/// An `input` carrying `c`; the session numbers it.
pub fn input(c: Control) -> Input {
    Input {
        seq: 0,
        mx: c.mx,
        my: c.my,
        aim: c.aim,
        fire: c.fire,
        view: c.view,
    }
}

/// A well-formed `chat` message of about `bytes` bytes: too large for the server's limit
/// when `bytes` exceeds it, and for no other reason.
pub fn oversize(bytes: usize) -> ClientMessage {
    ClientMessage::Chat(ChatSend {
        text: "x".repeat(bytes),
    })
}

/// A frame of the right type whose payload does not decode in the encoding.
pub fn garbage(encoding: Encoding) -> (Opcode, &'static [u8]) {
    match encoding {
        // 0xc1 is the one marker MessagePack reserves: never valid anywhere.
        Encoding::MsgPack => (Opcode::Binary, &[0xc1, 0xff, 0x00, 0x13, 0x37]),
        Encoding::Json => (Opcode::Text, br#"{"t":"input","seq":"#),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rallypoint_protocol::codec::{DecodeLimits, decode_client, encode_client};

    const BOTH: [Encoding; 2] = [Encoding::MsgPack, Encoding::Json];

    #[test]
    fn abusive_messages_are_refused_for_the_intended_reason() {
        let limits = DecodeLimits::default();
        for enc in BOTH {
            let (op, junk) = garbage(enc);
            assert_eq!(op == Opcode::Binary, enc == Encoding::MsgPack);
            assert!(decode_client(enc, junk, &limits).is_err());
            let big = encode_client(enc, &oversize(16 * 1024));
            assert!(big.len() > limits.max_message_bytes);
            let fits = encode_client(enc, &oversize(100));
            assert!(decode_client(enc, &fits, &limits).is_ok(), "{enc}");
        }
        let c = Control {
            mx: 1.0,
            my: 0.0,
            aim: 0.25,
            fire: true,
            view: None,
        };
        let bytes = encode_client(Encoding::MsgPack, &ClientMessage::Input(input(c)));
        assert!(matches!(
            decode_client(Encoding::MsgPack, &bytes, &limits),
            Ok(ClientMessage::Input(Input { fire: true, .. }))
        ));
    }
}
