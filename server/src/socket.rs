//! A session's socket once upgraded: what tungstenite reads and writes, sharing a plain
//! TCP socket with the room that writes snapshots straight to it.
//!
//! On `ws://` the socket is split: the session reads its half directly, and the write
//! half lives in the outbox, where the room writes snapshots straight to it and every
//! write the session makes goes through the outbox's write gate, so frames from the two
//! writers never interleave (see [`crate::room::outbox`]). On `wss://` each session
//! encrypts its own frames, so the session is the only writer and the stream is the TLS
//! stream as is.
//!
//! Must not buffer or reorder bytes: it only forwards, and orders writes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio_rustls::server::TlsStream;

use crate::room::Outbox;
use crate::stream::ClientStream;

/// The upgraded connection.
#[derive(Debug)]
pub enum SessionStream {
    /// `ws://`: shared with the room's direct writes.
    Plain(Shared),
    /// `wss://`: the session's alone.
    Tls(Box<TlsStream<TcpStream>>),
}

/// A plain TCP socket: read here, written through the outbox's gate.
#[derive(Debug)]
pub struct Shared {
    read: OwnedReadHalf,
    outbox: Arc<Outbox>,
}

impl SessionStream {
    /// The session stream for an upgraded connection, and the outbox the room will use to
    /// reach it: with the socket for direct snapshot writes on plain TCP.
    pub fn upgrade(
        stream: ClientStream,
        max_messages: usize,
        encoding: rallypoint_protocol::Encoding,
    ) -> (SessionStream, Arc<Outbox>) {
        match stream {
            ClientStream::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                let outbox = Arc::new(Outbox::with_socket(max_messages, Some(write), encoding));
                let shared = Shared {
                    read,
                    outbox: Arc::clone(&outbox),
                };
                (SessionStream::Plain(shared), outbox)
            }
            ClientStream::Tls(tls) => {
                (SessionStream::Tls(tls), Arc::new(Outbox::new(max_messages)))
            }
        }
    }
}

impl AsyncRead for SessionStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SessionStream::Plain(s) => Pin::new(&mut s.read).poll_read(cx, buf),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SessionStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            SessionStream::Plain(s) => s.outbox.session_write(cx, buf),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SessionStream::Plain(s) => s.outbox.session_flush(cx),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            SessionStream::Plain(s) => s.outbox.session_shutdown(cx),
            SessionStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
