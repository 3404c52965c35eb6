//! One small HTTP/1.1 client for what tools ask a Rallypoint server outside a session:
//! `/dev/token` on the game port, `/metrics`, `/healthz` and the `/admin/*` JSON on the
//! admin port. One request per connection (`Connection: close`), body-less requests,
//! responses bounded in size and time.
//!
//! [`Response::parse`] reads a complete response from bytes; it is also what handshake
//! rejections and tests use.
//!
//! Must not follow redirects, keep connections or log request targets (they may carry
//! tokens).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a request got no usable response. Each is final for that request; a retry later
/// may succeed for [`HttpError::Io`] and [`HttpError::Timeout`].
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, TLS, or reading and writing the socket failed. Retry later.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// No complete response within the time limit. Retry later or raise the limit.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The answer is not HTTP/1.x this client can read. Check the address: it may be
    /// another service.
    #[error("not an HTTP response: {0}")]
    Malformed(String),
    /// The response is larger than the limit. Raise it or ask for less.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The server answered, but not with a success; `message` is the JSON body's
    /// `message` when there is one.
    #[error("HTTP {status}: {message}")]
    Status {
        /// Status code.
        status: u16,
        /// What the server said.
        message: String,
    },
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

/// The first value of a header in a lower-cased list.
fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

impl Response {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// `Retry-After` in seconds, when present.
    pub fn retry_after(&self) -> Option<Duration> {
        let secs = self.header("retry-after")?.trim().parse::<u64>().ok()?;
        Some(Duration::from_secs(secs))
    }

    /// `Ok(self)` for 2xx, else [`HttpError::Status`] with the body's `message`.
    pub fn success(self) -> Result<Response, HttpError> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let json = self.json();
        let message = match json["message"].as_str() {
            Some(m) => m.to_owned(),
            None => self.text().chars().take(200).collect(),
        };
        Err(HttpError::Status {
            status: self.status,
            message,
        })
    }

    /// Parses a complete response (head and whole body). `Ok(None)`: incomplete.
    pub fn parse(raw: &[u8]) -> Result<Option<Response>, HttpError> {
        let Some((head, at)) = parse_head(raw)? else {
            return Ok(None);
        };
        let rest = &raw[at..];
        let body = if head.chunked {
            match dechunk(rest)? {
                Some(b) => b,
                None => return Ok(None),
            }
        } else {
            match head.content_length {
                Some(n) if rest.len() < n => return Ok(None),
                Some(n) => rest[..n].to_vec(),
                None => rest.to_vec(),
            }
        };
        Ok(Some(Response {
            status: head.status,
            headers: head.headers,
            body,
        }))
    }

    /// Parses what a connection delivered before it closed: the body runs to the end
    /// when no length was given.
    pub fn parse_complete(raw: &[u8]) -> Result<Response, HttpError> {
        Response::parse(raw)?.ok_or_else(|| HttpError::Malformed("truncated".into()))
    }
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// `Content-Length`, when sent.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
}

impl Head {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

/// The head at the start of `raw` and where the body starts; `Ok(None)`: incomplete.
pub fn parse_head(raw: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let at = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).trim().to_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let content_length = match find(&headers, "content-length") {
        Some(v) => Some(
            v.parse()
                .map_err(|_| HttpError::Malformed(format!("content-length `{v}`")))?,
        ),
        None => None,
    };
    let chunked =
        find(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let status = resp.code.unwrap_or_default();
    Ok(Some((
        Head {
            status,
            headers,
            content_length,
            chunked,
        },
        at,
    )))
}

/// A chunked body, when complete.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..eol]).unwrap_or("");
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| HttpError::Malformed(format!("chunk size `{size}`")))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Sends one body-less request over `stream` (with `headers`, already checked for line
/// breaks) and reads the response, bounded by `max_bytes` (the server is asked to close
/// after answering).
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    max_bytes: usize,
) -> Result<Response, HttpError> {
    let length = if method == "GET" || method == "HEAD" {
        ""
    } else {
        "Content-Length: 0\r\n"
    };
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{length}");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Response::parse_complete(&raw);
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > max_bytes {
            return Err(HttpError::TooLarge(max_bytes));
        }
        // A server that keeps the connection open after a complete response is not
        // waited for.
        if let Some(r) = Response::parse(&raw)?
            && (r.header("content-length").is_some() || r.header("transfer-encoding").is_some())
        {
            return Ok(r);
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_chunks_and_incomplete_responses() {
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nX-A: b\r\n\r\n{}";
        let r = Response::parse(raw).unwrap().unwrap();
        assert_eq!(
            (r.status, r.header("x-a"), r.body.as_slice()),
            (404, Some("b"), &b"{}"[..])
        );
        assert_eq!(Response::parse(&raw[..raw.len() - 1]).unwrap(), None);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(Response::parse(chunked).unwrap().unwrap().text(), "abcde");
        assert_eq!(Response::parse(&chunked[..60]).unwrap(), None);
        let to_close = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        assert_eq!(
            Response::parse_complete(to_close).unwrap().text(),
            "all of it"
        );
        assert!(Response::parse(b"\x16\x03\x01garbage\r\n\r\n").is_err());
    }

    #[test]
    fn failures_carry_the_servers_message() {
        let raw = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 38\r\n\r\n{\"error\":\"draining\",\"message\":\"later\"}";
        let r = Response::parse(raw).unwrap().unwrap();
        assert_eq!(r.retry_after(), Some(Duration::from_secs(2)));
        match r.success() {
            Err(HttpError::Status { status, message }) => {
                assert_eq!((status, message.as_str()), (503, "later"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(percent_encode("bot a/1"), "bot%20a%2F1");
    }
}
