//! The WebSocket upgrade of `/play`: what a client asks for ([`Request`]: token, room,
//! subprotocols in preference order), the HTTP exchange, and what can go wrong
//! ([`ConnectError`], with the server's refusals as a typed [`Rejection`]).
//!
//! The request is written and the `101` checked by hand (RFC 6455 §4.1): the key and
//! `Sec-WebSocket-Accept`, `Upgrade`/`Connection`, and a `Sec-WebSocket-Protocol` that
//! must be one of the offered entries. Bytes that arrive after the head stay in the
//! session's read buffer (the server sends `welcome` right behind its `101`).
//!
//! Must not log anything: requests carry tokens.

use std::io;
use std::time::Duration;

use base64::Engine as _;
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::subprotocol::BEARER_PREFIX;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::http::{self, HttpError, percent_encode};

/// Where the token travels (the server looks in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenIn {
    /// `Authorization: Bearer <jwt>`: native clients, bots.
    Header,
    /// A `bearer.<jwt>` entry in `Sec-WebSocket-Protocol` (what browsers must do); the
    /// server never echoes it.
    Subprotocol,
    /// The `access_token` query parameter (last resort: query strings reach proxy logs).
    Query,
}

/// What one session asks the server for. Build it once and connect with it as often as
/// needed: reconnecting with the same token resumes the player.
#[derive(Clone, Default)]
pub struct Request {
    token: Option<(String, TokenIn)>,
    room: Option<String>,
    offer: Vec<String>,
    headers: Vec<(String, String)>,
    query: Vec<String>,
    recv_buffer: Option<u32>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("token", &self.token.as_ref().map(|(_, at)| at))
            .field("room", &self.room)
            .field(
                "offer",
                &self.offer.iter().map(|o| redact(o)).collect::<Vec<_>>(),
            )
            .field("recv_buffer", &self.recv_buffer)
            .finish_non_exhaustive()
    }
}

fn redact(entry: &str) -> &str {
    if entry.starts_with(BEARER_PREFIX) {
        "bearer.…"
    } else {
        entry
    }
}

impl Request {
    /// A request offering `protocols`, most preferred first.
    pub fn new(protocols: impl IntoIterator<Item = Subprotocol>) -> Request {
        Request::default().protocols(protocols)
    }

    /// Adds subprotocols to the offer, in preference order.
    pub fn protocols(mut self, protocols: impl IntoIterator<Item = Subprotocol>) -> Request {
        self.offer
            .extend(protocols.into_iter().map(|p| p.name().to_owned()));
        self
    }

    /// Adds any entry to the offer as it is (tests and tools that probe the server).
    pub fn offer(mut self, entry: &str) -> Request {
        self.offer.push(entry.to_owned());
        self
    }

    /// The token, and where it travels.
    pub fn token(mut self, token: &str, at: TokenIn) -> Request {
        self.token = Some((token.to_owned(), at));
        self
    }

    /// Asks for this room (`?room=`); a `room` claim in the token wins over it.
    pub fn room(mut self, room: &str) -> Request {
        self.room = Some(room.to_owned());
        self
    }

    /// Adds a header (e.g. `Origin`).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Appends `k=v[&...]` to the query as it is (already encoded).
    pub fn query(mut self, raw: &str) -> Request {
        self.query.push(raw.to_owned());
        self
    }

    /// Shrinks the socket's receive buffer to about `bytes` before connecting (tests and
    /// load tools that want a server to feel a slow reader quickly).
    pub fn recv_buffer(mut self, bytes: u32) -> Request {
        self.recv_buffer = Some(bytes);
        self
    }

    /// The token when it travels in a header or a subprotocol entry (`/match` carries
    /// both as `Authorization: Bearer`).
    pub(crate) fn bearer(&self) -> Option<&str> {
        match &self.token {
            Some((t, TokenIn::Header | TokenIn::Subprotocol)) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn recv_buffer_size(&self) -> Option<u32> {
        self.recv_buffer
    }

    /// The request target: `path` (with any query it has) plus room, token and raw
    /// query parts.
    pub fn target(&self, path: &str) -> String {
        let mut out = path.to_owned();
        let mut add = |part: &str| {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(part);
        };
        if let Some(room) = &self.room {
            add(&format!("room={}", percent_encode(room)));
        }
        if let Some((token, TokenIn::Query)) = &self.token {
            add(&format!("access_token={}", percent_encode(token)));
        }
        for q in &self.query {
            add(q);
        }
        out
    }

    /// The whole request head for `path` on `host`, with `key` as `Sec-WebSocket-Key`.
    fn head(&self, host: &str, path: &str, key: &str) -> Result<String, ConnectError> {
        let breaks = |s: &str| s.contains(['\r', '\n']);
        if self
            .headers
            .iter()
            .any(|(n, v)| n.is_empty() || breaks(n) || breaks(v))
            || self
                .query
                .iter()
                .chain(&self.offer)
                .any(|q| breaks(q) || q.contains(' '))
            || self
                .token
                .as_ref()
                .is_some_and(|(t, _)| t.is_empty() || t.contains(['\r', '\n', ',', ' ']))
        {
            return Err(ConnectError::InvalidRequest(
                "a header, query part, offer entry or the token contains a line break or space"
                    .into(),
            ));
        }
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
            self.target(path)
        );
        let mut offer: Vec<&str> = self.offer.iter().map(String::as_str).collect();
        let bearer;
        match &self.token {
            Some((t, TokenIn::Subprotocol)) => {
                bearer = format!("{BEARER_PREFIX}{t}");
                offer.push(&bearer);
            }
            Some((t, TokenIn::Header)) => head.push_str(&format!("Authorization: Bearer {t}\r\n")),
            _ => {}
        }
        if !offer.is_empty() {
            head.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", offer.join(", ")));
        }
        for (n, v) in &self.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        Ok(head)
    }

    fn offered(&self, name: &str) -> bool {
        self.offer.iter().any(|o| o == name)
    }
}

/// The server refused the upgrade: its status and what its JSON body said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status (400, 401, 403, 421, 429, 503, ...).
    pub status: u16,
    /// The body's `error` code (`invalid_token`, `room_full`, ...), empty without one.
    pub error: String,
    /// The body's `message`.
    pub message: String,
    /// `Retry-After`, when sent (429 and 503).
    pub retry_after: Option<Duration>,
    /// The whole response, for anything else (`supported`, `url` of a 421).
    pub response: http::Response,
}

impl Rejection {
    pub(crate) fn from_response(response: http::Response) -> Rejection {
        let json = response.json();
        let text = |k: &str| json[k].as_str().unwrap_or_default().to_owned();
        Rejection {
            status: response.status,
            error: text("error"),
            message: text("message"),
            retry_after: response.retry_after(),
            response,
        }
    }

    /// Whether trying again later can succeed: the server is busy (429, 503) or the
    /// room moved (421: connect to the `url` in the body).
    pub fn is_retryable(&self) -> bool {
        matches!(self.status, 421 | 429 | 503)
    }

    /// A 421's `url`: the room's node, where to connect instead.
    pub fn redirect(&self) -> Option<String> {
        (self.status == 421)
            .then(|| self.response.json()["url"].as_str().map(str::to_owned))
            .flatten()
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect or the socket failed during the upgrade. Retry after a pause.
    #[error("connection failed: {0}")]
    Io(#[source] io::Error),
    /// The TLS handshake failed (certificate not trusted, name mismatch, protocol error).
    /// Check the [`crate::Trust`]; retrying will not fix a certificate.
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] io::Error),
    /// Connecting (TCP, TLS, upgrade), or waiting for the `welcome`, took longer than the
    /// endpoint's timeout. Retry after a pause.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The server answered with an HTTP error instead of upgrading. See the status: 401
    /// wants a new token, 429/503 a wait of [`Rejection::retry_after`], 421 the other
    /// node's `url`, 400 a fixed request.
    #[error("HTTP {} {}: {}", .0.status, .0.error, .0.message)]
    Rejected(Box<Rejection>),
    /// The answer was not a valid WebSocket upgrade (bad accept key, a subprotocol that
    /// was not offered, not HTTP): a proxy or another service is in the way. Do not retry.
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    /// The request cannot be sent as given (a line break in a header or the token). Fix it.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Upgraded, but the first message was not a `welcome`. Report it: the server
    /// breaks its protocol, or the connection ended first (see the text).
    #[error("no welcome: {0}")]
    NoWelcome(String),
}

impl ConnectError {
    /// Whether a later attempt can succeed (see each variant).
    pub fn is_retryable(&self) -> bool {
        match self {
            ConnectError::Io(_) | ConnectError::Timeout(_) | ConnectError::NoWelcome(_) => true,
            ConnectError::Rejected(r) => r.is_retryable(),
            ConnectError::Tls(_) | ConnectError::Handshake(_) | ConnectError::InvalidRequest(_) => {
                false
            }
        }
    }
}

/// The GUID of RFC 6455 §1.3.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest response head accepted (the server's own limit for requests).
const MAX_HEAD: usize = 16 * 1024;
/// Largest refusal body read.
const MAX_BODY: usize = 64 * 1024;

/// `Sec-WebSocket-Accept` for a key.
pub fn accept_key(key: &str) -> String {
    let digest = Sha1::new()
        .chain_update(key.as_bytes())
        .chain_update(WS_GUID.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn new_key() -> String {
    let mut nonce = [0u8; 16];
    // The key only has to differ between connections; a failing generator leaves zeros,
    // which the server accepts as well.
    let _ = getrandom::fill(&mut nonce);
    base64::engine::general_purpose::STANDARD.encode(nonce)
}

/// Performs the upgrade on `stream`. On success returns the negotiated subprotocol;
/// `buf` then holds the bytes that came after the `101` head (the first frames).
pub(crate) async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    path: &str,
    request: &Request,
    buf: &mut Vec<u8>,
) -> Result<Subprotocol, ConnectError> {
    let key = new_key();
    let head = request.head(host, path, &key)?;
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(ConnectError::Io)?;
    stream.flush().await.map_err(ConnectError::Io)?;
    buf.clear();
    let (head, at) = loop {
        if let Some(parsed) = http::parse_head(buf).map_err(bad_http)? {
            break parsed;
        }
        if buf.len() > MAX_HEAD {
            return Err(ConnectError::Handshake("response head too large".into()));
        }
        if read_some(stream, buf).await? == 0 {
            return Err(ConnectError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
    };
    if head.status != 101 {
        return Err(ConnectError::Rejected(Box::new(
            refusal(stream, buf).await?,
        )));
    }
    let protocol = check_upgrade(&head, &key, request)?;
    buf.drain(..at);
    Ok(protocol)
}

fn bad_http(e: HttpError) -> ConnectError {
    ConnectError::Handshake(e.to_string())
}

async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<usize, ConnectError> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.map_err(ConnectError::Io)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Reads the rest of a refusal (bounded) and types it.
async fn refusal<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Rejection, ConnectError> {
    loop {
        if let Some(r) = http::Response::parse(buf).map_err(bad_http)?
            && (r.header("content-length").is_some() || r.header("transfer-encoding").is_some())
        {
            return Ok(Rejection::from_response(r));
        }
        // No length: the body runs until the server closes. A reset after the answer
        // (the server closing with unread request bytes) ends it the same way.
        let n = read_some(stream, buf).await.unwrap_or(0);
        if n == 0 || buf.len() > MAX_HEAD + MAX_BODY {
            let r = http::Response::parse_complete(buf).map_err(bad_http)?;
            return Ok(Rejection::from_response(r));
        }
    }
}

fn check_upgrade(
    head: &http::Head,
    key: &str,
    request: &Request,
) -> Result<Subprotocol, ConnectError> {
    let has = |name: &str, token: &str| {
        head.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has("upgrade", "websocket") || !has("connection", "upgrade") {
        return Err(ConnectError::Handshake(
            "101 without Upgrade: websocket".into(),
        ));
    }
    if head.header("sec-websocket-accept") != Some(accept_key(key).as_str()) {
        return Err(ConnectError::Handshake("wrong Sec-WebSocket-Accept".into()));
    }
    let chosen = head
        .header("sec-websocket-protocol")
        .ok_or_else(|| ConnectError::Handshake("the server chose no subprotocol".into()))?;
    if !request.offered(chosen) {
        return Err(ConnectError::Handshake(format!(
            "the server chose `{}`, which was not offered",
            redact(chosen)
        )));
    }
    Subprotocol::from_name(chosen).ok_or_else(|| {
        ConnectError::Handshake(format!("`{chosen}` is not a protocol this client speaks"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_ne!(new_key(), new_key());
    }

    #[test]
    fn the_token_goes_where_it_is_told() {
        let base = Request::new([Subprotocol::V1Json, Subprotocol::V1MsgPack]).room("a b");
        let h = base
            .clone()
            .token("t.k.n", TokenIn::Header)
            .head("h:1", "/play", "K")
            .unwrap();
        assert!(
            h.starts_with("GET /play?room=a%20b HTTP/1.1\r\nHost: h:1\r\n"),
            "{h}"
        );
        assert!(h.contains("Authorization: Bearer t.k.n\r\n"));
        assert!(
            h.contains("Sec-WebSocket-Protocol: rallypoint.v1.json, rallypoint.v1.msgpack\r\n")
        );
        let s = base
            .clone()
            .token("t.k.n", TokenIn::Subprotocol)
            .head("h", "/play", "K")
            .unwrap();
        assert!(s.contains("rallypoint.v1.msgpack, bearer.t.k.n\r\n"), "{s}");
        assert!(!s.contains("Authorization"));
        let q = base
            .token("t.k.n", TokenIn::Query)
            .head("h", "/play?x=1", "K")
            .unwrap();
        assert!(
            q.starts_with("GET /play?x=1&room=a%20b&access_token=t.k.n HTTP/1.1"),
            "{q}"
        );
        assert!(
            !format!("{:?}", Request::new([]).token("secret", TokenIn::Header)).contains("secret")
        );
    }

    #[test]
    fn line_breaks_are_refused() {
        let r = Request::new([Subprotocol::V1MsgPack]).header("X-A", "1\r\nEvil: 2");
        assert!(matches!(
            r.head("h", "/", "K"),
            Err(ConnectError::InvalidRequest(_))
        ));
        let r = Request::new([]).token("a\nb", TokenIn::Header);
        assert!(matches!(
            r.head("h", "/", "K"),
            Err(ConnectError::InvalidRequest(_))
        ));
    }
}
