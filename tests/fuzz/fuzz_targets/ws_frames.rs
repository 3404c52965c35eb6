//! Arbitrary bytes as everything a peer sends after the `101`, into a server-role
//! tungstenite connection configured exactly as sessions are
//! ([`rallypoint::session::websocket_config`] with the default limits), over an in-memory
//! stream. The session's own pattern is followed: read; after each message write a
//! snapshot-sized frame; when reading stops, close with a reason and linger (reading on
//! only if reading stopped for want of bytes, not on an error).
//!
//! Input layout: byte 0 sets the largest read the stream returns at once (1 to 256
//! bytes, to split frames anywhere); byte 1 sets how many bytes the peer accepts before
//! its receive window closes (0 to 16320, in steps of 64); the first read's worth of the
//! rest arrives together with the request head (the session's `from_partially_read`
//! path), the remainder through the stream.
//!
//! Properties: no panic; no message above the configured message size; control payloads
//! of at most 125 bytes; close codes handed to the session are ones a peer may send;
//! never more messages than the input could encode.

#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use rallypoint::config::Limits;
use rallypoint::session::websocket_config;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocket};
use tokio_tungstenite::tungstenite::{Error, Message};

/// The peer, seen from the server: bytes to read, then `WouldBlock`; a receive window
/// that closes after a budget.
struct Peer<'a> {
    input: &'a [u8],
    max_read: usize,
    window: usize,
}

impl Read for Peer<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.max_read).min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Peer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.window == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.window);
        self.window -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// About the size of a small room's snapshot.
const SNAPSHOT: [u8; 120] = [0x90; 120];

fuzz_target!(|data: &[u8]| {
    let [max_read, window, rest @ ..] = data else {
        return;
    };
    let max_read = usize::from(*max_read) + 1;
    let (early, later) = rest.split_at(max_read.min(rest.len()));
    let limits = Limits::default();
    let peer = Peer {
        input: later,
        max_read,
        window: usize::from(*window) * 64,
    };
    let mut ws = WebSocket::from_partially_read(
        peer,
        early.to_vec(),
        Role::Server,
        Some(websocket_config(&limits)),
    );
    let mut messages = 0usize;
    // tokio-tungstenite's stream is fused by any error but WouldBlock: the session never
    // reads through tungstenite again after one (it would find the frame reader mid-frame).
    let mut failed = false;
    loop {
        match ws.read() {
            Ok(msg) => {
                messages += 1;
                // Every message costs at least a two-byte header.
                assert!(
                    messages <= rest.len() / 2,
                    "{messages} messages from {} bytes",
                    rest.len()
                );
                match &msg {
                    Message::Text(t) => assert!(t.len() <= limits.max_message_bytes),
                    Message::Binary(b) => assert!(b.len() <= limits.max_message_bytes),
                    Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
                    Message::Close(Some(f)) => {
                        assert!(f.reason.len() <= 123);
                        assert!(
                            f.code.is_allowed(),
                            "close code {} reached the session",
                            f.code
                        );
                    }
                    Message::Close(None) => {}
                    Message::Frame(_) => panic!("raw frames are never read"),
                }
                if ws.can_write() {
                    // A snapshot between reads; a full window is the session's business.
                    let _ = ws.send(Message::binary(&SNAPSHOT[..]));
                }
            }
            // Nothing more to read now, or the connection failed: either way the session
            // stops reading and closes.
            Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    let _ = ws.close(Some(CloseFrame {
        code: CloseCode::Policy,
        reason: "fuzz".into(),
    }));
    let _ = ws.flush();
    if failed {
        return;
    }
    for _ in 0..3 {
        if ws.read().is_err() {
            break;
        }
    }
});
