//! Getting a bot onto the server: the parsed target, TCP (+ TLS) streams, the WebSocket
//! upgrade with `Authorization: Bearer`, and `/dev/token` requests.
//!
//! The target is resolved and the TLS client configuration built once per run; each bot
//! then only connects. Every failure is a [`ConnectFailure`] whose [`ConnectFailure::key`]
//! is what the report counts (the HTTP status, or a short name for failures before HTTP)
//! and whose [`ConnectFailure::retry_in`] says whether a bot should try again.
//!
//! Must not log tokens; must not keep per-connection state beyond the stream it returns.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rallypoint_protocol::Subprotocol;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::config::TlsOptions;

/// Why the target cannot be used at all (the run does not start).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The URL is not `ws://host[:port]/path` or `wss://...`.
    #[error("--url `{url}`: {why}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// Host name.
        host: String,
        /// Resolver error.
        source: io::Error,
    },
    /// TLS could not be configured (CA file unreadable, no trust roots).
    #[error("TLS: {0}")]
    Tls(String),
}

/// Where the bots connect, resolved once.
pub struct Target {
    host: String,
    port: u16,
    /// Path and query as given (`/play`, `/play?x=1`).
    path: String,
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// `scheme`, host (without IPv6 brackets), port and path+query of a `ws(s)://` URL.
pub fn parse_url(url: &str) -> Result<(bool, String, u16, String), TargetError> {
    let bad = |why: &str| TargetError::Url {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    let tls = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("the scheme must be ws:// or wss://")),
    };
    let host = uri
        .host()
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    Ok((tls, host, port, path))
}

impl Target {
    /// Parses and resolves `url` and prepares TLS if it is `wss://`.
    pub async fn resolve(url: &str, tls: &TlsOptions) -> Result<Target, TargetError> {
        let (is_tls, host, port, path) = parse_url(url)?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|source| TargetError::Resolve {
                host: host.clone(),
                source,
            })?
            .collect();
        // `localhost` may resolve to ::1 first while the server only listens on
        // 127.0.0.1: use the first address that accepts a connection, so thousands of
        // bots do not each try a dead address first.
        let mut addr = *addrs.first().ok_or_else(|| TargetError::Resolve {
            host: host.clone(),
            source: io::Error::new(io::ErrorKind::NotFound, "no address"),
        })?;
        if addrs.len() > 1 {
            for candidate in &addrs {
                let probe = TcpStream::connect(candidate);
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), probe).await {
                    addr = *candidate;
                    break;
                }
            }
        }
        let tls = if is_tls {
            let config = client_config(tls)?;
            let name = ServerName::try_from(host.clone()).map_err(|e| {
                TargetError::Tls(format!("`{host}` is not a valid server name: {e}"))
            })?;
            Some((TlsConnector::from(config), name))
        } else {
            None
        };
        Ok(Target {
            host,
            port,
            path,
            addr,
            tls,
        })
    }

    /// The resolved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the target is on this machine (where `/dev/token` is available).
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }

    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The upgrade URL for one bot: the configured path plus `room=` when it asks for one.
    pub fn play_url(&self, room: Option<&str>) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        let mut url = format!("{scheme}://{}{}", self.host_header(), self.path);
        if let Some(room) = room {
            url.push(if self.path.contains('?') { '&' } else { '?' });
            url.push_str("room=");
            url.push_str(&percent_encode(room));
        }
        url
    }

    /// Opens TCP (and TLS). `recv_buffer` shrinks the socket's receive buffer, which the
    /// slow-reader abuser uses so the server feels its backpressure within seconds.
    pub async fn connect(&self, recv_buffer: Option<u32>) -> Result<BotStream, ConnectFailure> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(ConnectFailure::Tcp)?;
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(ConnectFailure::Tcp)?;
        }
        let tcp = socket
            .connect(self.addr)
            .await
            .map_err(ConnectFailure::Tcp)?;
        // Inputs are tiny and latency is what we measure: no Nagle delay.
        tcp.set_nodelay(true).map_err(ConnectFailure::Tcp)?;
        match &self.tls {
            None => Ok(BotStream::Plain(tcp)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(ConnectFailure::Tls)?;
                Ok(BotStream::Tls(Box::new(tls)))
            }
        }
    }

    /// Asks the server's `/dev/token` for a token for `sub` (dev mode, loopback only).
    pub async fn dev_token(&self, sub: &str, name: &str) -> Result<String, ConnectFailure> {
        /// A token answer is a few hundred bytes; anything much larger is not one.
        const MAX_RESPONSE: u64 = 64 * 1024;
        let mut stream = self.connect(None).await?;
        let request = format!(
            "GET /dev/token?sub={}&name={} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            percent_encode(sub),
            percent_encode(name),
            self.host_header()
        );
        let mut raw = Vec::new();
        async {
            stream.write_all(request.as_bytes()).await?;
            stream.flush().await?;
            (&mut stream).take(MAX_RESPONSE).read_to_end(&mut raw).await
        }
        .await
        .map_err(|e| ConnectFailure::Token(format!("/dev/token: {e}")))?;
        let (status, body) = split_http(&raw)
            .ok_or_else(|| ConnectFailure::Token("/dev/token: not an HTTP response".into()))?;
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        if status != 200 {
            return Err(ConnectFailure::DevToken {
                status,
                message: json["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
        json["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ConnectFailure::Token("/dev/token: no `token` in the answer".into()))
    }
}

/// Status and body of a complete HTTP/1.x response (no chunked encoding: the server
/// answers with a length and closes).
fn split_http(raw: &[u8]) -> Option<(u16, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, &raw[end + 4..]))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// WebSocket settings for a bot: small eager buffers (thousands of connections; the
/// read buffer is also zeroed before every read, so its size is CPU too), no
/// write batching (each input goes out at once: we measure latency), and limits on what
/// the server may send that match the protocol crate's.
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Performs the WebSocket upgrade on an open stream.
pub async fn upgrade(
    stream: BotStream,
    url: &str,
    protocol: Subprotocol,
    token: &str,
) -> Result<WebSocketStream<BotStream>, ConnectFailure> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectFailure::Protocol(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(protocol.name()),
    );
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ConnectFailure::Token("the token is not a valid header value".into()))?;
    headers.insert("Authorization", bearer);
    match tokio_tungstenite::client_async_with_config(request, stream, Some(websocket_config()))
        .await
    {
        Ok((ws, _response)) => Ok(ws),
        Err(WsError::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let error = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            Err(ConnectFailure::Http {
                status: response.status().as_u16(),
                error,
                retry_after,
            })
        }
        Err(WsError::Io(e)) => Err(ConnectFailure::Tcp(e)),
        Err(e) => Err(ConnectFailure::Protocol(e.to_string())),
    }
}

/// Why one connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// TCP connect or IO during the upgrade failed. Retry.
    #[error("connection failed: {0}")]
    Tcp(io::Error),
    /// The TLS handshake failed (certificate not trusted, protocol error). Retry, though
    /// a certificate problem will not fix itself.
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    /// The server refused the upgrade with an HTTP status.
    #[error("HTTP {status} {error}")]
    Http {
        /// Status code.
        status: u16,
        /// The body's `error` code, if any.
        error: String,
        /// `Retry-After`, if sent.
        retry_after: Option<Duration>,
    },
    /// The upgrade response was not a valid WebSocket handshake (e.g. a subprotocol the
    /// bot did not offer).
    #[error("WebSocket handshake failed: {0}")]
    Protocol(String),
    /// TCP + TLS + upgrade did not finish within the connect timeout.
    #[error("handshake timed out")]
    Timeout,
    /// Upgraded, but the first message was not a `welcome` (or none came in time).
    #[error("no welcome: {0}")]
    NoWelcome(String),
    /// `/dev/token` refused.
    #[error("/dev/token answered {status}: {message}")]
    DevToken {
        /// Status code.
        status: u16,
        /// The body's `message`.
        message: String,
    },
    /// No token could be obtained.
    #[error("token: {0}")]
    Token(String),
}

impl ConnectFailure {
    /// The report's key: the HTTP status for refusals, else a short name.
    pub fn key(&self) -> String {
        match self {
            ConnectFailure::Http { status, .. } => status.to_string(),
            ConnectFailure::Tcp(_) => "connect_error".into(),
            ConnectFailure::Tls(_) => "tls_error".into(),
            ConnectFailure::Protocol(_) => "ws_error".into(),
            ConnectFailure::Timeout => "timeout".into(),
            ConnectFailure::NoWelcome(_) => "no_welcome".into(),
            ConnectFailure::DevToken { status, .. } => format!("dev_token_{status}"),
            ConnectFailure::Token(_) => "token_error".into(),
        }
    }

    /// How long to wait before trying again; `None` when retrying cannot help (a refused
    /// token, a bad request, a missing endpoint).
    pub fn retry_in(&self) -> Option<Duration> {
        /// `Retry-After` is honoured up to this, so a run of seconds does not stall.
        const MAX_WAIT: Duration = Duration::from_secs(5);
        match self {
            ConnectFailure::Http {
                status: 429 | 503,
                retry_after,
                ..
            } => Some(retry_after.unwrap_or(Duration::from_secs(1)).min(MAX_WAIT)),
            ConnectFailure::Http { .. }
            | ConnectFailure::DevToken { .. }
            | ConnectFailure::Token(_) => None,
            _ => Some(Duration::from_secs(1)),
        }
    }
}

/// A bot's connection: plain TCP or TLS over TCP.
#[derive(Debug)]
pub enum BotStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`. Boxed: the TLS state is large.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl BotStream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            BotStream::Plain(s) => s,
            BotStream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for BotStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BotStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            BotStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for BotStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            BotStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            BotStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BotStream::Plain(s) => Pin::new(s).poll_flush(cx),
            BotStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            BotStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            BotStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Where the system keeps its CA bundle, by distribution family.
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The rustls client configuration: the ring provider (as the server), trusting `--ca`,
/// else the system bundle; or, with `--insecure`, any certificate.
fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, TargetError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TargetError::Tls(e.to_string()))?;
    if opts.insecure {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        return Ok(Arc::new(config));
    }
    let mut roots = RootCertStore::empty();
    match &opts.ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TargetError::Tls(format!("{}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(TargetError::Tls(format!(
                    "{}: no usable CA certificate",
                    path.display()
                )));
            }
        }
        None => {
            for bundle in SYSTEM_CA_BUNDLES {
                if let Ok(it) = CertificateDer::pem_file_iter(bundle) {
                    roots.add_parsable_certificates(it.filter_map(Result::ok));
                }
            }
            if roots.is_empty() {
                return Err(TargetError::Tls(
                    "no system CA bundle found; pass --ca PATH or --insecure".into(),
                ));
            }
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// `--insecure`: any certificate for any name is accepted, but the handshake signatures
/// are still verified, so the connection is at least to whoever holds that key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let (tls, host, port, path) = parse_url("ws://127.0.0.1:7777/play").unwrap();
        assert_eq!(
            (tls, host.as_str(), port, path.as_str()),
            (false, "127.0.0.1", 7777, "/play")
        );
        let (tls, host, port, path) = parse_url("wss://example.com/play?x=1").unwrap();
        assert_eq!(
            (tls, host.as_str(), port, path.as_str()),
            (true, "example.com", 443, "/play?x=1")
        );
        let (_, host, port, _) = parse_url("ws://[::1]:9/play").unwrap();
        assert_eq!((host.as_str(), port), ("::1", 9));
        assert!(parse_url("http://x/play").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn http_split_and_encoding() {
        let raw = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(split_http(raw), Some((404, &b"{}"[..])));
        assert_eq!(percent_encode("bot a/1"), "bot%20a%2F1");
    }

    #[test]
    fn failure_keys_and_retries() {
        let f = ConnectFailure::Http {
            status: 429,
            error: "too_many_handshakes".into(),
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(f.key(), "429");
        assert_eq!(f.retry_in(), Some(Duration::from_secs(5)));
        let f = ConnectFailure::Http {
            status: 401,
            error: "invalid_token".into(),
            retry_after: None,
        };
        assert_eq!(f.retry_in(), None);
        assert_eq!(ConnectFailure::Timeout.key(), "timeout");
    }
}
