//! Raw HTTP and WebSocket over a plain `TcpStream`, for tests that send odd bytes: any
//! request text ([`http`]), the WebSocket upgrade done by hand,
//! a frame writer that can break every rule a real client library refuses to break
//! (unmasked client frames, reserved bits and opcodes, oversized control frames, lengths
//! that lie), and a reader that parses the server's frames itself so a test sees exactly
//! which close code arrived, and whether an `{"t":"error"}` preceded it.
//!
//! Every read is bounded by [`STEP_TIMEOUT`]; write errors are returned, never panicked on,
//! because a server that has already closed is an expected outcome of abuse.

use std::net::SocketAddr;
use std::time::Duration;

use rallypoint_protocol::codec::decode_server;
use rallypoint_protocol::message::ServerMessage;
use rallypoint_protocol::{Encoding, Subprotocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinHandle;

use crate::{HttpResponse, STEP_TIMEOUT};

/// Sends raw bytes and reads the whole response (the server closes after answering).
pub async fn http(addr: SocketAddr, raw: &str) -> HttpResponse {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(raw.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(STEP_TIMEOUT, s.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .expect("read");
    parse_http(&buf)
}

/// Parses an HTTP/1.1 response head; everything after it is the body.
pub fn parse_http(buf: &[u8]) -> HttpResponse {
    let (head, at) = rallypoint_client::http::parse_head(buf)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(buf)));
    HttpResponse {
        status: head.status,
        headers: head.headers,
        body: buf[at..].to_vec(),
    }
}

/// Frame opcodes (RFC 6455 §5.2).
pub mod op {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// Text data.
    pub const TEXT: u8 = 0x1;
    /// Binary data.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// The `RSV1` bit of the first header byte, as accepted by [`Frame::rsv`].
pub const RSV1: u8 = 0b100;
/// `RSV2`.
pub const RSV2: u8 = 0b010;
/// `RSV3`.
pub const RSV3: u8 = 0b001;

/// The masking key used unless a test picks another. Any value works; a fixed one keeps
/// failures reproducible.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One client frame, described bit by bit.
#[derive(Debug, Clone)]
pub struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    declared_len: Option<u64>,
}

impl Frame {
    /// A final, masked frame with this opcode (the low 4 bits are used as they are, so
    /// reserved opcodes can be sent).
    pub fn new(opcode: u8) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode: opcode & 0x0f,
            mask: Some(MASK),
            declared_len: None,
        }
    }

    /// Sets or clears FIN.
    pub fn fin(mut self, fin: bool) -> Frame {
        self.fin = fin;
        self
    }

    /// Sets the reserved bits ([`RSV1`] | [`RSV2`] | [`RSV3`]).
    pub fn rsv(mut self, bits: u8) -> Frame {
        self.rsv = bits & 0b111;
        self
    }

    /// Sends the payload in clear, as only a server may.
    pub fn unmasked(mut self) -> Frame {
        self.mask = None;
        self
    }

    /// Masks with this key.
    pub fn mask(mut self, key: [u8; 4]) -> Frame {
        self.mask = Some(key);
        self
    }

    /// Announces this payload length whatever the payload really is (to claim a huge frame
    /// without sending it).
    pub fn declared_len(mut self, len: u64) -> Frame {
        self.declared_len = Some(len);
        self
    }

    /// The frame's bytes: header (7-, 16- or 64-bit length, the shortest that fits),
    /// masking key, masked payload.
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let len = self.declared_len.unwrap_or(payload.len() as u64);
        let mut out = Vec::with_capacity(payload.len() + 14);
        out.push(u8::from(self.fin) << 7 | self.rsv << 4 | self.opcode);
        let masked = if self.mask.is_some() { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(masked | len as u8),
            126..=0xffff => {
                out.push(masked | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(masked | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        match self.mask {
            Some(key) => {
                out.extend_from_slice(&key);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }
}

/// A well-formed, masked, final frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    Frame::new(opcode).encode(payload)
}

/// A masked close frame with a code and a reason.
pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(op::CLOSE, &payload)
}

/// The request head of a `/play` upgrade, token in the `Authorization` header.
pub fn upgrade_request(addr: SocketAddr, path: &str, protocol: &str, token: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\n\
         Host: {addr}\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {protocol}\r\n\
         Authorization: Bearer {token}\r\n\
         \r\n"
    )
}

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// FIN bit.
    pub fin: bool,
    /// Opcode.
    pub opcode: u8,
    /// Payload (servers never mask).
    pub payload: Vec<u8>,
}

/// How the session ended, as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawClosed {
    /// The close frame's code: 1005 for a close frame without one, 1006 when the
    /// connection ended without any close frame.
    pub code: u16,
    /// `code` of the last `{"t":"error"}` received before the close, if any.
    pub error: Option<String>,
}

/// A raw WebSocket client connection after a successful upgrade.
#[derive(Debug)]
pub struct RawWs {
    reader: OwnedReadHalf,
    writer: Option<OwnedWriteHalf>,
    buf: Vec<u8>,
    /// Encoding of the subprotocol the server chose.
    pub encoding: Encoding,
}

impl RawWs {
    /// Connects to `/play` (with `path` carrying any query) and upgrades.
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        protocol: Subprotocol,
        token: &str,
    ) -> Result<RawWs, HttpResponse> {
        let tcp = TcpStream::connect(addr).await.expect("tcp connect");
        RawWs::upgrade(tcp, &upgrade_request(addr, path, protocol.name(), token)).await
    }

    /// Sends `request` on `tcp` and reads the answer: `Ok` on `101`, else the response.
    pub async fn upgrade(tcp: TcpStream, request: &str) -> Result<RawWs, HttpResponse> {
        RawWs::upgrade_with(tcp, request, &[]).await
    }

    /// [`RawWs::upgrade`] with `frames` written in the same write as the request head, as
    /// a client that does not wait for the 101 would.
    pub async fn upgrade_with(
        tcp: TcpStream,
        request: &str,
        frames: &[u8],
    ) -> Result<RawWs, HttpResponse> {
        let (mut reader, mut writer) = tcp.into_split();
        let mut bytes = request.as_bytes().to_vec();
        bytes.extend_from_slice(frames);
        writer.write_all(&bytes).await.expect("write upgrade");
        let mut buf = Vec::new();
        let head_end = tokio::time::timeout(STEP_TIMEOUT, async {
            loop {
                if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return p + 4;
                }
                let mut chunk = [0u8; 1024];
                let n = reader.read(&mut chunk).await.unwrap_or(0);
                assert!(
                    n > 0,
                    "connection closed before a response head: {:?}",
                    String::from_utf8_lossy(&buf)
                );
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("response head in time");
        let head = parse_http(&buf[..head_end]);
        if head.status != 101 {
            // Error responses carry a body and close: read the rest.
            let _ = tokio::time::timeout(STEP_TIMEOUT, reader.read_to_end(&mut buf)).await;
            return Err(parse_http(&buf));
        }
        let encoding = head
            .header("sec-websocket-protocol")
            .and_then(Subprotocol::from_name)
            .map_or(Encoding::MsgPack, Subprotocol::encoding);
        Ok(RawWs {
            reader,
            writer: Some(writer),
            buf: buf.split_off(head_end),
            encoding,
        })
    }

    /// Writes bytes (one or many frames, or garbage) and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the writer was handed to a flood"))?;
        w.write_all(bytes).await?;
        w.flush().await
    }

    /// Hands the write half to a task that writes `chunk` over and over until the server
    /// goes away or `limit` passes; the task returns how many chunks went out. Reading
    /// stays here, so the close can be observed while the flood is still running.
    pub fn flood(&mut self, chunk: Vec<u8>, limit: Duration) -> JoinHandle<u64> {
        let mut w = self.writer.take().expect("one flood per connection");
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + limit;
            let mut sent = 0u64;
            while tokio::time::Instant::now() < until {
                match tokio::time::timeout_at(until, w.write_all(&chunk)).await {
                    Ok(Ok(())) => sent += 1,
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            sent
        })
    }

    /// The next frame from the server, `None` on EOF, reset or a malformed frame.
    pub async fn read_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(STEP_TIMEOUT, self.reader.read(&mut chunk))
                .await
                .expect("server frame in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until the close frame (or the end of the connection) and reports the code
    /// and the last `error` message seen.
    pub async fn closed(&mut self) -> RawClosed {
        let mut error = None;
        while let Some(f) = self.read_frame().await {
            match f.opcode {
                op::CLOSE => {
                    let code = match f.payload.get(..2) {
                        Some(c) => u16::from_be_bytes([c[0], c[1]]),
                        None => 1005,
                    };
                    return RawClosed { code, error };
                }
                op::TEXT | op::BINARY => {
                    if let Ok(ServerMessage::Error(e)) = decode_server(self.encoding, &f.payload) {
                        error = Some(e.code);
                    }
                }
                _ => {}
            }
        }
        RawClosed { code: 1006, error }
    }
}

/// One complete server frame at the start of `buf` and the bytes it used.
fn parse_server_frame(buf: &[u8]) -> Option<(ServerFrame, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => (u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let key = if b1 & 0x80 != 0 {
        let k: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(k)
    } else {
        None
    };
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    let mut payload = buf.get(at..end)?.to_vec();
    if let Some(k) = key {
        payload
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b ^= k[i % 4]);
    }
    Some((
        ServerFrame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            payload,
        },
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_all_three_widths() {
        let f = Frame::new(op::BINARY).unmasked();
        assert_eq!(f.encode(&[1, 2])[..2], [0x82, 2]);
        assert_eq!(f.encode(&[0; 200])[..4], [0x82, 126, 0, 200]);
        let big = f.encode(&vec![0; 70_000]);
        assert_eq!(big[..10], [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        let lie = Frame::new(op::BINARY).declared_len(1 << 40).encode(&[]);
        assert_eq!(lie[..10], [0x82, 0xff, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn masking_round_trips_and_bits_land_where_they_should() {
        let bytes = Frame::new(op::PING)
            .fin(false)
            .rsv(RSV1 | RSV3)
            .encode(b"hello");
        assert_eq!(bytes[0], 0b0101_1001);
        let (f, used) = parse_server_frame(&bytes).unwrap();
        assert_eq!((f.payload.as_slice(), used), (&b"hello"[..], bytes.len()));
        assert!(parse_server_frame(&bytes[..bytes.len() - 1]).is_none());
    }
}
