//! Just enough HTTP/1.1 for a WebSocket edge: read one request head with a size cap,
//! write one response, close.
//!
//! Every non-upgrade response closes the connection (`Connection: close`), so there is
//! no keep-alive state, no request bodies and no pipelining to get wrong. Parsing is
//! httparse's; this module adds limits, refuses ambiguous heads (a missing `Host` in
//! HTTP/1.1; a repeated `Host`, `Origin` or `Authorization`: never "first wins"), and
//! small conveniences.
//!
//! Must not log request targets or header values: tokens travel in both.

use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted. Browsers send 1–3 KiB; a JWT in a header or query adds
/// about 1 KiB.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// Headers that may appear at most once: a second one could make two checks read two
/// different values (RFC 9112 §3.2 for `Host`; `Origin` and `Authorization` decide who
/// may connect).
pub const SINGLE_HEADERS: [&str; 3] = ["host", "origin", "authorization"];

/// How long [`respond_and_close`] reads what the peer still sends after a final response.
pub const LINGER_TIME: Duration = Duration::from_millis(500);
/// How much it reads at most: a peer that keeps sending is not waited for.
pub const LINGER_BYTES: usize = 64 * 1024;

/// A parsed request head.
#[derive(Clone)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path without the query, e.g. `/play`.
    pub path: String,
    /// The raw query string (after `?`), if any. May contain a token: never log it.
    pub query: Option<String>,
    /// Minor HTTP version: 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Request {
    // Deliberately omits the query and header values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// First value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header (e.g. `Connection`) contains `token`,
    /// case-insensitively.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// A query parameter, percent-decoded. `None` when absent or not valid UTF-8.
    pub fn query_param(&self, key: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k).as_deref() == Some(key))
                .then(|| percent_decode(v))
                .flatten()
        })
    }
}

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The peer closed before sending a complete head. Nothing to answer.
    #[error("connection closed before the request was complete")]
    Closed,
    /// Head over [`MAX_HEAD_BYTES`] or more than [`MAX_HEADERS`] headers: answer 431.
    #[error("request head too large")]
    TooLarge,
    /// Not HTTP/1.x: answer 400.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The socket failed. Nothing to answer.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one request head. Returns it with any bytes that arrived after it (a client
/// may send its first WebSocket frame without waiting for the 101).
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Request, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        // Only the first MAX_HEAD_BYTES may hold the head, however much has arrived.
        let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
        match req.parse(window) {
            Ok(httparse::Status::Complete(len)) => {
                let target = req.path.unwrap_or("/");
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p, Some(q.to_owned())),
                    None => (target, None),
                };
                let headers = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let request = Request {
                    method: req.method.unwrap_or_default().to_owned(),
                    path: path.to_owned(),
                    query,
                    minor_version: req.version.unwrap_or(0),
                    headers,
                };
                check_unambiguous(&request)?;
                return Ok((request, buf.split_off(len)));
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                return Err(HeadError::TooLarge);
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(e) => return Err(HeadError::Malformed(e.to_string())),
        }
    }
}

/// A missing `Host` (HTTP/1.1) or a repeated [`SINGLE_HEADERS`] entry is malformed.
fn check_unambiguous(req: &Request) -> Result<(), HeadError> {
    for name in SINGLE_HEADERS {
        if req.header_values(name).nth(1).is_some() {
            return Err(HeadError::Malformed(format!("more than one {name} header")));
        }
    }
    if req.minor_version >= 1 && req.header("host").is_none() {
        return Err(HeadError::Malformed("HTTP/1.1 needs a Host header".into()));
    }
    Ok(())
}

/// A response to write once, after which the connection closes (except for 101).
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Answer to `HEAD`: the headers describe `body` but it is not sent.
    pub omit_body: bool,
}

impl Response {
    /// A response with a body of the given content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.into(),
            omit_body: false,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Response::new(status, "application/json", body).header("Cache-Control", "no-store")
    }

    /// The error shape of every rejection: `{"error": code, "message": text}`.
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            &serde_json::json!({ "error": code, "message": message }),
        )
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The same response as an answer to `HEAD`: same headers, no body.
    pub fn head(mut self) -> Response {
        self.omit_body = true;
        self
    }

    /// The `error` code of a JSON error body, for metrics and logs.
    pub fn error_code(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        v.get("error")?.as_str().map(str::to_owned)
    }

    /// Serialises status line, headers and body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if self.status != 101 {
            let _ = write!(
                head,
                "Content-Length: {}\r\nConnection: close\r\n",
                self.body.len()
            );
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !self.omit_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Writes a final response and closes the connection politely: shut down our side, then
/// read and discard what the peer still sends for a moment (at most [`LINGER_TIME`] and
/// [`LINGER_BYTES`]), so the kernel does not answer unread data with a reset that could
/// destroy the response in flight.
pub async fn respond_and_close<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
) {
    if stream.write_all(&response.to_bytes()).await.is_err() {
        return;
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut total = 0usize;
        while let Ok(n) = stream.read(&mut sink).await {
            total += n;
            if n == 0 || total > LINGER_BYTES {
                break;
            }
        }
    })
    .await;
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Decodes `%XX` escapes and `+` (as space). `None` if the result is not UTF-8 or an
/// escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_a_head_and_keeps_what_follows() {
        let raw = b"GET /play?room=a%20b&access_token=x.y.z HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Protocol: a\r\nsec-websocket-protocol: b\r\n\r\n\x81\x80";
        let (req, rest) = read_head(&mut &raw[..]).await.unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/play");
        assert_eq!(req.query_param("room").as_deref(), Some("a b"));
        assert_eq!(req.query_param("access_token").as_deref(), Some("x.y.z"));
        assert_eq!(req.query_param("missing"), None);
        assert!(req.header_has_token("connection", "upgrade"));
        assert_eq!(
            req.header_values("sec-websocket-protocol")
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(rest, b"\x81\x80");
        assert!(!format!("{req:?}").contains("x.y.z"));
    }

    #[tokio::test]
    async fn limits_and_garbage() {
        let huge = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(matches!(
            read_head(&mut huge.as_bytes()).await,
            Err(HeadError::TooLarge)
        ));
        let many: String = (0..100).map(|i| format!("H{i}: v\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(
            read_head(&mut many.as_bytes()).await,
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(
            read_head(&mut &b"\x16\x03\x01garbage\r\n\r\n"[..]).await,
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            read_head(&mut &b"GET / HT"[..]).await,
            Err(HeadError::Closed)
        ));
    }

    #[tokio::test]
    async fn ambiguous_heads_are_malformed() {
        let head = |extra: &str| format!("GET /play HTTP/1.1\r\n{extra}\r\n");
        for (extra, why) in [
            ("", "HTTP/1.1 needs a Host header"),
            ("Host: a\r\nHost: b\r\n", "more than one host header"),
            (
                "Host: a\r\nOrigin: https://ok\r\norigin: https://evil\r\n",
                "more than one origin header",
            ),
            (
                "Host: a\r\nAuthorization: Bearer x\r\nAuthorization: Bearer y\r\n",
                "more than one authorization header",
            ),
        ] {
            match read_head(&mut head(extra).as_bytes()).await {
                Err(HeadError::Malformed(m)) => assert_eq!(m, why, "{extra:?}"),
                other => panic!("{extra:?}: {other:?}"),
            }
        }
        assert!(read_head(&mut &b"GET / HTTP/1.0\r\n\r\n"[..]).await.is_ok());
        assert!(read_head(&mut head("Host: a\r\n").as_bytes()).await.is_ok());
    }

    /// `respond_and_close` against three peers: one that sends a body and closes after
    /// reading (the whole response arrives, then EOF), one that never stops sending (the
    /// drain stops after `LINGER_BYTES`), one that never answers (the drain gives up after
    /// `LINGER_TIME`).
    #[tokio::test]
    async fn a_refused_request_is_answered_then_drained_within_bounds() {
        use tokio::io::duplex;
        let response = Response::error(400, "bad_request", "no");
        let ten_s = Duration::from_secs(10);

        let (mut ours, mut peer) = duplex(4096);
        let reader = tokio::spawn(async move {
            peer.write_all(&[b'x'; 3000]).await.unwrap();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            got
        });
        tokio::time::timeout(ten_s, respond_and_close(&mut ours, &response))
            .await
            .unwrap();
        assert_eq!(reader.await.unwrap(), response.to_bytes());

        let (mut ours, mut peer) = duplex(4096);
        let flood = tokio::spawn(async move {
            let mut sent = 0;
            while peer.write_all(&[0; 1024]).await.is_ok() {
                sent += 1024;
            }
            sent
        });
        tokio::time::timeout(ten_s, respond_and_close(&mut ours, &response))
            .await
            .unwrap();
        drop(ours);
        let sent = flood.await.unwrap();
        assert!(
            (LINGER_BYTES..=LINGER_BYTES + 16 * 1024).contains(&sent),
            "{sent} bytes drained"
        );

        let (mut ours, _silent) = duplex(4096);
        let started = std::time::Instant::now();
        tokio::time::timeout(ten_s, respond_and_close(&mut ours, &response))
            .await
            .unwrap();
        assert!(started.elapsed() >= LINGER_TIME);
    }

    #[test]
    fn error_responses_are_json_and_close() {
        let r = Response::error(429, "too_many_handshakes", "slow down").header("Retry-After", "1");
        let text = String::from_utf8(r.to_bytes()).unwrap();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(text.contains("Retry-After: 1\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.ends_with("{\"error\":\"too_many_handshakes\",\"message\":\"slow down\"}\n"));
        assert_eq!(r.error_code().as_deref(), Some("too_many_handshakes"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%e2%9c%93").as_deref(), Some("✓"));
        assert_eq!(percent_decode("%ff"), None);
    }
}
