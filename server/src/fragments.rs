//! A cap on the frames one client message may be split into, counted on the bytes as
//! they arrive, before tungstenite assembles them.
//!
//! tungstenite bounds a message's size but not its number of fragments, so a message
//! continued by endless empty frames never grows and never ends. [`FragmentCap`] wraps
//! the session's stream and follows the frame headers in what it reads (a
//! [`FrameCounter`]); the read after the one that completes too many fragments fails with
//! [`TooManyFragments`], which the session closes with 1009. Afterwards it only forwards,
//! so the close handshake can still be read.
//!
//! Must not change, buffer or reorder a byte: tungstenite parses the same stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A message arrived in more frames than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a message in more than {cap} frames")]
pub struct TooManyFragments {
    /// The cap.
    pub cap: usize,
}

impl TooManyFragments {
    /// Whether a stream error is this one.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref()
            .is_some_and(|inner| inner.is::<TooManyFragments>())
    }
}

/// Where the counter is in the frame it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// The first header byte: FIN and opcode.
    Start,
    /// The second: MASK and the 7-bit length.
    Length,
    /// Extended length bytes still to come.
    Extended { left: u8, len: u64, masked: bool },
    /// Masking key bytes still to come, then the payload.
    Mask { left: u8, len: u64 },
    /// Payload bytes still to skip.
    Payload { left: u64 },
}

/// Follows RFC 6455 frame headers in a byte stream and counts the frames of the message
/// in progress. Malformed frames are tungstenite's to refuse; this only counts.
#[derive(Debug, Clone)]
pub struct FrameCounter {
    cap: usize,
    at: At,
    /// Frames of the fragmented message in progress (0 outside one).
    fragments: usize,
}

impl FrameCounter {
    /// A counter allowing `cap` frames per message.
    pub fn new(cap: usize) -> FrameCounter {
        FrameCounter {
            cap,
            at: At::Start,
            fragments: 0,
        }
    }

    /// Reads `bytes`; an error as soon as a frame header takes a message past the cap.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), TooManyFragments> {
        while let Some((&b, rest)) = bytes.split_first() {
            self.at = match self.at {
                At::Payload { left } => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.at = if left == n {
                        At::Start
                    } else {
                        At::Payload { left: left - n }
                    };
                    continue;
                }
                At::Start => {
                    self.count(b & 0x80 != 0, b & 0x0f)?;
                    At::Length
                }
                At::Length => {
                    let masked = b & 0x80 != 0;
                    match b & 0x7f {
                        126 => At::Extended {
                            left: 2,
                            len: 0,
                            masked,
                        },
                        127 => At::Extended {
                            left: 8,
                            len: 0,
                            masked,
                        },
                        len => body(u64::from(len), masked),
                    }
                }
                At::Extended { left, len, masked } => {
                    let len = (len << 8) | u64::from(b);
                    if left == 1 {
                        body(len, masked)
                    } else {
                        At::Extended {
                            left: left - 1,
                            len,
                            masked,
                        }
                    }
                }
                At::Mask { left, len } => {
                    if left == 1 {
                        body(len, false)
                    } else {
                        At::Mask {
                            left: left - 1,
                            len,
                        }
                    }
                }
            };
            bytes = rest;
        }
        Ok(())
    }

    /// A frame header's first byte: data frames advance the message's count.
    fn count(&mut self, fin: bool, opcode: u8) -> Result<(), TooManyFragments> {
        match opcode {
            // Text or binary: a new message, fragmented unless FIN.
            0x1 | 0x2 => self.fragments = usize::from(!fin),
            // Continuation.
            0x0 if self.fragments > 0 => {
                self.fragments += 1;
                if self.fragments > self.cap {
                    return Err(TooManyFragments { cap: self.cap });
                }
                if fin {
                    self.fragments = 0;
                }
            }
            // Control frames may sit between fragments; the rest is tungstenite's to refuse.
            _ => {}
        }
        Ok(())
    }
}

/// After the length: the masking key (if any), then the payload.
fn body(len: u64, masked: bool) -> At {
    match (masked, len) {
        (true, _) => At::Mask { left: 4, len },
        (false, 0) => At::Start,
        (false, left) => At::Payload { left },
    }
}

/// A stream whose reads fail once a client message exceeds the fragment cap.
#[derive(Debug)]
pub struct FragmentCap<S> {
    inner: S,
    /// `None` once the cap was hit: from then on bytes are only forwarded.
    counter: Option<FrameCounter>,
    /// Set when the bytes just returned crossed the cap: the next read fails.
    tripped: Option<TooManyFragments>,
}

impl<S> FragmentCap<S> {
    /// Wraps `inner`; `already_read` are bytes read from it before (after the request
    /// head), which the WebSocket layer will parse first.
    pub fn new(inner: S, already_read: &[u8], cap: usize) -> FragmentCap<S> {
        let mut counter = FrameCounter::new(cap);
        let tripped = counter.feed(already_read).err();
        FragmentCap {
            inner,
            counter: tripped.is_none().then_some(counter),
            tripped,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FragmentCap<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.tripped.take() {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(counter) = &mut this.counter
            && let Err(e) = counter.feed(&buf.filled()[before..])
        {
            // These bytes are valid frames: deliver them, fail the next read.
            this.tripped = Some(e);
            this.counter = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FragmentCap<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt as _;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode;
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

    use super::*;

    /// A masked client frame, as tungstenite's own encoder writes it.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            is_final: fin,
            opcode: OpCode::from(opcode),
            mask: Some([1, 2, 3, 4]),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        Frame::from_payload(header, payload.to_vec().into())
            .format(&mut out)
            .expect("a Vec takes any frame");
        out
    }

    /// A message in `n` frames, with a ping between the first two.
    fn message(n: usize, payload: &[u8]) -> Vec<u8> {
        let mut out = frame(n == 1, 0x2, payload);
        out.extend(frame(true, 0x9, b"ping"));
        for i in 1..n {
            out.extend(frame(i == n - 1, 0x0, payload));
        }
        out
    }

    #[test]
    fn messages_up_to_the_cap_pass_in_any_chunking() {
        // Lengths in all three widths, so the header parser is exercised fully.
        for payload in [&b""[..], &[7; 100], &[7; 300], &[7; 70_000]] {
            let mut stream = message(4, payload);
            stream.extend(frame(true, 0x1, b"whole"));
            stream.extend(message(4, payload));
            for chunk in [1, 3, 7, 4096, stream.len()] {
                let mut c = FrameCounter::new(4);
                for piece in stream.chunks(chunk) {
                    c.feed(piece).unwrap();
                }
                assert_eq!(c.at, At::Start, "ends on a frame boundary");
            }
        }
    }

    #[test]
    fn the_frame_past_the_cap_is_refused() {
        let mut c = FrameCounter::new(4);
        assert_eq!(c.feed(&message(5, b"")), Err(TooManyFragments { cap: 4 }));
        // Endless empty continuations: refused at the fifth frame's first byte.
        let mut c = FrameCounter::new(4);
        let mut bytes = frame(false, 0x2, b"x");
        for _ in 0..3 {
            bytes.extend(frame(false, 0x0, b""));
        }
        c.feed(&bytes).unwrap();
        assert!(c.feed(&[0x00]).is_err());
    }

    #[tokio::test]
    async fn the_stream_delivers_every_byte_then_fails_once_then_forwards() {
        let mut bytes = message(3, b"abc");
        bytes.extend(frame(true, 0x8, &[0x03, 0xe8]));
        let mut capped = FragmentCap::new(&bytes[..], &[], 2);
        let mut got = vec![0u8; bytes.len()];
        let n = capped.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], &bytes[..n], "delivered unchanged");
        let e = capped.read(&mut got).await.unwrap_err();
        assert!(TooManyFragments::is(&e), "{e}");
        let mut rest = Vec::new();
        capped.read_to_end(&mut rest).await.unwrap();
        assert_eq!([&got[..n], &rest[..]].concat(), bytes, "then forwarded");
    }

    #[tokio::test]
    async fn bytes_read_with_the_head_count_too() {
        let bytes = message(3, b"");
        let mut capped = FragmentCap::new(&b""[..], &bytes, 2);
        let e = capped.read(&mut [0u8; 16]).await.unwrap_err();
        assert!(TooManyFragments::is(&e));
    }
}
