//! The stream of a client connection, plain TCP or TLS, so the HTTP edge and the
//! WebSocket session are written once. The type is the client library's
//! [`MaybeTls`](rallypoint_client::MaybeTls) with rustls' server side: one enum for both
//! ends of the wire. Its plain variant is the bare `TcpStream`, so a writer can reach the
//! socket directly.
//!
//! Must not buffer: it only forwards to the underlying stream.

use tokio::net::TcpStream;

/// A client connection, with or without TLS: `ClientStream::Plain(TcpStream)` for `ws://`,
/// `ClientStream::Tls(Box<TlsStream>)` for `wss://`.
pub type ClientStream = rallypoint_client::MaybeTls<tokio_rustls::server::TlsStream<TcpStream>>;
