//! Where a client connects: a `ws://`, `wss://`, `http://` or `https://` URL parsed and
//! resolved once, with its TLS connector. From an [`Endpoint`] come sessions
//! ([`Endpoint::connect`], [`Endpoint::join`]) and one-off HTTP requests
//! ([`Endpoint::get`], [`Endpoint::dev_token`]).
//!
//! Resolving once matters to load tools that open thousands of connections: no lookup
//! per connection, and when a name has several addresses (`localhost` → `::1` and
//! `127.0.0.1`) the first that accepts a connection is kept.
//!
//! Must not log request targets or tokens.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;

use crate::http::{self, HttpError, Response, percent_encode};
use crate::session::{Session, SessionConfig};
use crate::stream::{ClientStream, MaybeTls};
use crate::tls::{TlsError, Trust};
use crate::upgrade::{ConnectError, Request};

/// Why an endpoint cannot be used at all. Fix the URL, the name or the TLS option.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL is not `ws://host[:port]/path` (or `wss`, `http`, `https`).
    #[error("`{url}`: {why}")]
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
    /// TLS could not be configured.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A parsed URL: TLS or not, host (without IPv6 brackets), port, path and query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `wss://` or `https://`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port (the scheme's default when absent).
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
}

impl Url {
    /// Parses `ws://`, `wss://`, `http://` and `https://` URLs.
    pub fn parse(url: &str) -> Result<Url, EndpointError> {
        let bad = |why: &str| EndpointError::Url {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("not a URL"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "ws" | "http" => false,
            "wss" | "https" => true,
            _ => return Err(bad("the scheme must be ws://, wss://, http:// or https://")),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'?' => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        };
        if authority.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => {
                (h, Some(p.parse::<u16>().map_err(|_| bad("bad port"))?))
            }
            _ => (authority, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(bad("no host"));
        }
        if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(bad("spaces or control characters in the path"));
        }
        Ok(Url {
            tls,
            host: host.to_owned(),
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            path,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A resolved server address with what it takes to connect to it.
#[derive(Clone)]
pub struct Endpoint {
    url: Url,
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    session: SessionConfig,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("addr", &self.addr)
            .field("host", &self.url.host)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Connects, upgrades and waits for the `welcome` within this by default. Ten
    /// seconds: far beyond a healthy handshake, short enough for a user to wait.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Parses and resolves `url`, and prepares TLS (with `trust`) for `wss://`/`https://`.
    pub async fn resolve(url: &str, trust: &Trust) -> Result<Endpoint, EndpointError> {
        let url = Url::parse(url)?;
        let resolve_err = |source| EndpointError::Resolve {
            host: url.host.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(resolve_err)?
            .collect();
        let mut addr = *addrs
            .first()
            .ok_or_else(|| resolve_err(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        if addrs.len() > 1 {
            for candidate in &addrs {
                let probe = TcpStream::connect(candidate);
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), probe).await {
                    addr = *candidate;
                    break;
                }
            }
        }
        let tls = if url.tls {
            let name = ServerName::try_from(url.host.clone()).map_err(|e| EndpointError::Url {
                url: url.host.clone(),
                why: format!("not a valid server name: {e}"),
            })?;
            Some((TlsConnector::from(trust.client_config()?), name))
        } else {
            None
        };
        Ok(Endpoint {
            url,
            addr,
            tls,
            timeout: Endpoint::DEFAULT_TIMEOUT,
            session: SessionConfig::default(),
        })
    }

    /// Another URL (`/match`'s answer, a 421's or a `moved` URL: another node of the same
    /// cluster) with this endpoint's trust, time limit and session settings. The host is
    /// looked up (first address); no connection is made.
    pub async fn elsewhere(&self, url: &str) -> Result<Endpoint, EndpointError> {
        let url = Url::parse(url)?;
        let resolve_err = |source| EndpointError::Resolve {
            host: url.host.clone(),
            source,
        };
        let addr = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(resolve_err)?
            .next()
            .ok_or_else(|| resolve_err(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        let tls = match (&self.tls, url.tls) {
            (_, false) => None,
            (Some((connector, _)), true) => {
                let name =
                    ServerName::try_from(url.host.clone()).map_err(|e| EndpointError::Url {
                        url: url.host.clone(),
                        why: format!("not a valid server name: {e}"),
                    })?;
                Some((connector.clone(), name))
            }
            (None, true) => {
                return Err(EndpointError::Url {
                    url: url.host.clone(),
                    why: "a wss:// URL from a plain ws:// endpoint: resolve it with a trust".into(),
                });
            }
        };
        Ok(Endpoint {
            url,
            addr,
            tls,
            timeout: self.timeout,
            session: self.session,
        })
    }

    /// A plain `ws://`/`http://` endpoint at an address, path `/play` (no lookup).
    pub fn plain(addr: SocketAddr) -> Endpoint {
        let host = addr.ip().to_string();
        Endpoint {
            url: Url {
                tls: false,
                host,
                port: addr.port(),
                path: "/play".into(),
            },
            addr,
            tls: None,
            timeout: Endpoint::DEFAULT_TIMEOUT,
            session: SessionConfig::default(),
        }
    }

    /// The same endpoint with another time limit for connecting and for HTTP requests.
    pub fn with_timeout(mut self, timeout: Duration) -> Endpoint {
        self.timeout = timeout;
        self
    }

    /// The same endpoint with other session settings.
    pub fn with_session(mut self, config: SessionConfig) -> Endpoint {
        self.session = config;
        self
    }

    /// The same endpoint reached through another address (a relay on the way to the
    /// server): the URL, `Host` header and TLS server name stay the server's.
    pub fn via(mut self, addr: SocketAddr) -> Endpoint {
        self.addr = addr;
        self
    }

    /// The resolved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the server is on this machine (where dev tokens are handed out).
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }

    /// The session URL a request resolves to (token left out unless it is in the query).
    pub fn play_url(&self, request: &Request) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!(
            "{scheme}://{}{}",
            self.url.host_header(),
            request.target(&self.url.path)
        )
    }

    /// Opens TCP (`TCP_NODELAY`: inputs are small and latency matters) and TLS.
    /// `recv_buffer` sets `SO_RCVBUF` first.
    pub async fn open(&self, recv_buffer: Option<u32>) -> Result<ClientStream, ConnectError> {
        let socket = if self.addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(ConnectError::Io)?;
        if let Some(size) = recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(ConnectError::Io)?;
        }
        let tcp = socket.connect(self.addr).await.map_err(ConnectError::Io)?;
        tcp.set_nodelay(true).map_err(ConnectError::Io)?;
        match &self.tls {
            None => Ok(MaybeTls::Plain(tcp)),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(ConnectError::Tls)?;
                Ok(MaybeTls::Tls(Box::new(tls)))
            }
        }
    }

    /// Opens a session: TCP, TLS, the upgrade. Nothing is read after the `101`; see
    /// [`Session::read_welcome`], or use [`Endpoint::join`].
    pub async fn connect(&self, request: &Request) -> Result<Session, ConnectError> {
        let opening = async {
            let stream = self.open(request.recv_buffer_size()).await?;
            self.upgrade(stream, request).await
        };
        tokio::time::timeout(self.timeout, opening)
            .await
            .map_err(|_| ConnectError::Timeout(self.timeout))?
    }

    /// Upgrades an already open stream (a socket set up by the caller, a proxy tunnel).
    pub async fn upgrade<S>(&self, stream: S, request: &Request) -> Result<Session<S>, ConnectError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        Session::handshake(
            stream,
            &self.url.host_header(),
            &self.url.path,
            request,
            &self.session,
        )
        .await
    }

    /// [`Endpoint::connect`], then the `welcome` (within the timeout again).
    pub async fn join(&self, request: &Request) -> Result<Session, ConnectError> {
        let mut session = self.connect(request).await?;
        tokio::time::timeout(self.timeout, session.read_welcome())
            .await
            .map_err(|_| ConnectError::Timeout(self.timeout))??;
        Ok(session)
    }

    /// One body-less request (`GET`, `POST`, ...) to `path`; any status is returned.
    /// Responses are bounded to 64 MiB (a metrics page of many rooms is a few MiB).
    pub async fn request(&self, method: &str, path: &str) -> Result<Response, HttpError> {
        self.request_with(method, path, &[]).await
    }

    /// [`Endpoint::request`] with extra headers (checked for line breaks by the caller).
    pub(crate) async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, HttpError> {
        const MAX: usize = 64 << 20;
        let exchange = async {
            let mut stream = self.open(None).await.map_err(|e| match e {
                ConnectError::Io(e) | ConnectError::Tls(e) => HttpError::Io(e),
                other => HttpError::Io(io::Error::other(other.to_string())),
            })?;
            let host = self.url.host_header();
            http::exchange(&mut stream, method, &host, path, headers, MAX).await
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }

    /// `GET path`; only a 2xx answer is `Ok`.
    pub async fn get(&self, path: &str) -> Result<Response, HttpError> {
        self.request("GET", path).await?.success()
    }

    /// `GET path` as JSON; only a 2xx answer is `Ok`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, HttpError> {
        let r = self.get(path).await?;
        serde_json::from_slice(&r.body).map_err(|e| HttpError::Malformed(format!("JSON: {e}")))
    }

    /// A token from a dev-mode server's `/dev/token` (loopback clients only).
    pub async fn dev_token(&self, sub: &str, name: &str) -> Result<String, HttpError> {
        let path = format!(
            "/dev/token?sub={}&name={}",
            percent_encode(sub),
            percent_encode(name)
        );
        let json = self.get(&path).await?.json();
        json["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| HttpError::Malformed("/dev/token: no `token` in the answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("ws://127.0.0.1:7777/play").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (false, "127.0.0.1", 7777, "/play")
        );
        let u = Url::parse("wss://example.com/play?x=1").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/play?x=1"));
        let u = Url::parse("ws://[::1]:9/play").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.host_header()),
            ("::1", 9, "[::1]:9".to_owned())
        );
        let u = Url::parse("http://h?x").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/?x"));
        for bad in [
            "ftp://x/play",
            "not a url",
            "ws:///play",
            "ws://h:99999/",
            "ws://u@h/",
            "ws://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }
}
