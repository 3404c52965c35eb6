//! WebSocket framing for the client side of RFC 6455 §5, without IO.
//!
//! [`parse_head`] reads the header of one server frame from the front of a buffer and
//! checks everything a client must refuse (masked server frames, reserved bits and
//! opcodes, fragmented or oversized control frames, lengths beyond the limit);
//! [`write_frame`] appends one masked client frame to an output buffer. Masks come from a
//! [`MaskPool`] refilled from the operating system's generator in blocks, so a frame costs
//! no system call.
//!
//! Must not do IO or allocate beyond growing the caller's output buffer.

/// Frame opcodes this library sends or accepts (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// Continuation of a fragmented message.
    Continuation,
    /// UTF-8 text (the JSON subprotocol).
    Text,
    /// Binary (the MessagePack subprotocol).
    Binary,
    /// Close, with an optional code and reason.
    Close,
    /// Ping, to be answered by a pong with the same payload.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    /// The 4-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Close, ping and pong.
    pub const fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A frame the server must not have sent. The session fails with it (and closes with
/// 1002, or 1009 for [`FrameError::TooLarge`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// RSV1–3 set: no extension was negotiated.
    #[error("reserved bits set in a frame header")]
    ReservedBits,
    /// An opcode RFC 6455 reserves.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// Servers must not mask their frames.
    #[error("the server masked a frame")]
    Masked,
    /// A control frame over 125 bytes or without FIN.
    #[error("invalid control frame (fragmented, or over 125 bytes)")]
    BadControl,
    /// The payload is longer than the configured limit.
    #[error("frame of {len} bytes, the limit is {limit}")]
    TooLarge {
        /// Declared payload length.
        len: u64,
        /// Largest accepted.
        limit: usize,
    },
    /// A continuation without a message to continue, or a new message before the last
    /// one finished.
    #[error("bad fragmentation: {0}")]
    Fragmentation(&'static str),
    /// A text message that is not UTF-8.
    #[error("text frame is not valid UTF-8")]
    InvalidUtf8,
    /// A close frame whose payload is one byte, or whose reason is not UTF-8.
    #[error("malformed close frame")]
    BadClose,
}

/// The header of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Last frame of its message.
    pub fin: bool,
    /// What it carries.
    pub opcode: Opcode,
    /// Bytes of header before the payload.
    pub header_len: usize,
    /// Payload bytes.
    pub payload_len: usize,
}

impl Head {
    /// Header plus payload.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Reads the header of the server frame at the start of `buf`. `Ok(None)`: not enough
/// bytes for the header yet.
pub fn parse_head(buf: &[u8], max_payload: usize) -> Result<Option<Head>, FrameError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = Opcode::from_bits(b0 & 0x0f).ok_or(FrameError::ReservedOpcode(b0 & 0x0f))?;
    if b1 & 0x80 != 0 {
        return Err(FrameError::Masked);
    }
    let fin = b0 & 0x80 != 0;
    let (len, header_len) = match b1 & 0x7f {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode.is_control() && (len > 125 || !fin) {
        return Err(FrameError::BadControl);
    }
    if len > max_payload as u64 {
        return Err(FrameError::TooLarge {
            len,
            limit: max_payload,
        });
    }
    Ok(Some(Head {
        fin,
        opcode,
        header_len,
        payload_len: len as usize,
    }))
}

/// Appends one final, masked client frame carrying `payload` to `out`.
pub fn write_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode.bits());
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-byte `mask` (masking and unmasking are the same).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask) {
        *b ^= m;
    }
}

/// The payload of a close frame: the code and reason. An empty payload is 1005 ("no
/// status"), as RFC 6455 §7.1.5 says.
pub fn parse_close(payload: &[u8]) -> Result<(u16, &str), FrameError> {
    match payload {
        [] => Ok((1005, "")),
        [_] => Err(FrameError::BadClose),
        [a, b, reason @ ..] => {
            let reason = std::str::from_utf8(reason).map_err(|_| FrameError::BadClose)?;
            Ok((u16::from_be_bytes([*a, *b]), reason))
        }
    }
}

/// Masking keys drawn from the operating system's generator, 256 at a time: RFC 6455
/// asks for unpredictable masks, and one `getrandom` call per frame would cost a system
/// call per message.
#[derive(Debug)]
pub struct MaskPool {
    keys: [u8; 1024],
    next: usize,
}

impl Default for MaskPool {
    fn default() -> Self {
        MaskPool {
            keys: [0; 1024],
            next: 1024,
        }
    }
}

impl MaskPool {
    /// The next key.
    pub fn next_key(&mut self) -> [u8; 4] {
        if self.next >= self.keys.len() {
            // A failing OS generator leaves the previous block in place: masks are then
            // repeated, which weakens nothing a native client relies on.
            let _ = getrandom::fill(&mut self.keys);
            self.next = 0;
        }
        let k = &self.keys[self.next..self.next + 4];
        self.next += 4;
        [k[0], k[1], k[2], k[3]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![b0];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn heads_of_every_length_form() {
        for n in [0usize, 125, 126, 65_535, 65_536] {
            let f = server_frame(0x82, &vec![7; n]);
            let h = parse_head(&f, 1 << 20).unwrap().unwrap();
            assert_eq!(h.opcode, Opcode::Binary);
            assert!(h.fin);
            assert_eq!(h.payload_len, n);
            assert_eq!(h.frame_len(), f.len());
            // Every strict prefix of the header asks for more bytes.
            for cut in 0..h.header_len {
                assert_eq!(parse_head(&f[..cut], 1 << 20), Ok(None), "{n} cut at {cut}");
            }
        }
    }

    #[test]
    fn what_a_client_refuses() {
        assert_eq!(parse_head(&[0xC2, 0], 99), Err(FrameError::ReservedBits));
        assert_eq!(
            parse_head(&[0x83, 0], 99),
            Err(FrameError::ReservedOpcode(3))
        );
        assert_eq!(parse_head(&[0x82, 0x80], 99), Err(FrameError::Masked));
        assert_eq!(parse_head(&[0x09, 0], 99), Err(FrameError::BadControl));
        assert_eq!(
            parse_head(&server_frame(0x89, &[0; 126]), 999),
            Err(FrameError::BadControl)
        );
        assert_eq!(
            parse_head(&server_frame(0x82, &[0; 100]), 99),
            Err(FrameError::TooLarge {
                len: 100,
                limit: 99
            })
        );
    }

    #[test]
    fn client_frames_are_masked_and_round_trip() {
        let mut pool = MaskPool::default();
        for n in [0usize, 5, 125, 126, 70_000] {
            let payload: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mask = pool.next_key();
            let mut out = Vec::new();
            write_frame(&mut out, Opcode::Text, &payload, mask);
            assert_eq!(out[0], 0x81);
            assert_ne!(out[1] & 0x80, 0, "masked");
            // Read it back the way a server does: clear the mask bit, unmask.
            let mut unmasked = out.clone();
            unmasked[1] &= 0x7f;
            let h = parse_head(&unmasked, 1 << 20).unwrap().unwrap();
            assert_eq!(h.payload_len, n);
            let key_at = h.header_len;
            let mut body = out[key_at + 4..].to_vec();
            apply_mask(&mut body, mask);
            assert_eq!(body, payload);
        }
        assert_ne!(pool.next_key(), pool.next_key());
    }

    #[test]
    fn close_payloads() {
        assert_eq!(parse_close(&[]), Ok((1005, "")));
        assert_eq!(parse_close(&[0x03, 0xe8, b'o', b'k']), Ok((1000, "ok")));
        assert_eq!(parse_close(&[3]), Err(FrameError::BadClose));
        assert_eq!(parse_close(&[3, 0xe8, 0xff]), Err(FrameError::BadClose));
    }
}
