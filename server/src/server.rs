//! The game edge: accept loop, handshakes, routing, and the shutdown sequence.
//!
//! Per connection: take a pending-handshake permit (refused at once past the cap), do
//! TLS and read the request head within the handshake timeout, find the client address
//! (trusting `X-Forwarded-For` only from configured proxies), apply admission (connection
//! caps, per-IP handshake rate), then route: `/play` upgrades to a session, `/dev/token`
//! serves dev tokens to loopback clients in dev mode, everything else is static files or
//! 404. Every refusal is an HTTP status with a JSON body.
//!
//! Shutdown: readiness drops, new handshakes get 503 `draining`, every session closes
//! with 1001, and [`serve`] returns once all connections are gone or the drain deadline
//! passes.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::admission::{Admission, Refusal};
use crate::auth::{self, MintClaims, Role, Verifier};
use crate::config::Config;
use crate::handshake::{self, HandshakeCtx};
use crate::http::{HeadError, Request, Response, read_head, respond_and_close};
use crate::metrics::Metrics;
use crate::reload::AssetControl;
use crate::room::{Directory, RoomContext, RoomOpener};
use crate::session::{self, Session};
use crate::shutdown::Tracker;
use crate::stream::ClientStream;
use crate::web;

/// Everything the edge and the admin port share.
pub struct State {
    /// Configuration.
    pub config: Config,
    /// Token checks.
    pub verifier: Verifier,
    /// Dev mode secret (only in dev mode).
    pub dev_secret: Option<Vec<u8>>,
    /// `wss://` when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Connection caps and rates.
    pub admission: Arc<Admission>,
    /// Rooms.
    pub directory: Arc<Directory>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Assets in force.
    pub assets: Arc<dyn AssetControl>,
    /// Readiness (`/readyz`).
    pub ready: AtomicBool,
    /// True once shutdown has begun.
    pub shutdown: watch::Receiver<bool>,
    next_session: AtomicU64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("listen", &self.config.listen)
            .field("tls", &self.tls.is_some())
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// Bound sockets, so callers (tests) can listen on port 0 and learn the address first.
#[derive(Debug)]
pub struct Listeners {
    /// Game port.
    pub game: TcpListener,
    /// Admin port.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both ports from the configuration. The game socket gets the configured
    /// kernel send buffer, which accepted connections inherit.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        let socket = if config.listen.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if config.limits.tcp_send_buffer > 0 {
            socket.set_send_buffer_size(
                u32::try_from(config.limits.tcp_send_buffer).unwrap_or(u32::MAX),
            )?;
        }
        socket.bind(config.listen)?;
        let game = socket.listen(1024)?;
        Ok(Listeners {
            game,
            admin: TcpListener::bind(config.admin_listen).await?,
        })
    }
}

/// What a server is made of, prepared before it binds anything.
pub struct Setup {
    /// Configuration.
    pub config: Config,
    /// Assets in force.
    pub assets: Arc<dyn AssetControl>,
    /// How rooms of the game are opened (see [`crate::room::task::opener`]): the game's
    /// type stops here, so the edge is the same for every game.
    pub rooms: Box<dyn FnOnce(RoomContext) -> RoomOpener + Send>,
    /// Token checks.
    pub verifier: Verifier,
    /// Dev-mode secret, if in dev mode.
    pub dev_secret: Option<Vec<u8>>,
    /// TLS configuration for `wss://`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setup")
            .field("config", &self.config)
            .field("assets", &self.assets)
            .finish_non_exhaustive()
    }
}

/// Runs the server until `shutdown_signal` completes, then drains and returns.
pub async fn serve(
    setup: Setup,
    listeners: Listeners,
    shutdown_signal: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Setup {
        config,
        assets,
        rooms,
        verifier,
        dev_secret,
        tls,
        metrics,
    } = setup;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let directory = Directory::new(
        config.limits.max_rooms,
        rooms(RoomContext {
            limits: config.limits.clone(),
            metrics: Arc::clone(&metrics),
            shutdown: shutdown_rx.clone(),
        }),
    );
    let admission = Admission::new(&config.limits, config.dev_mode());
    let state = Arc::new(State {
        tls: tls.map(tokio_rustls::TlsAcceptor::from),
        verifier,
        dev_secret,
        admission,
        directory,
        metrics,
        assets: Arc::clone(&assets),
        ready: AtomicBool::new(true),
        shutdown: shutdown_rx.clone(),
        next_session: AtomicU64::new(1),
        config,
    });
    let _watcher = if state.config.hot_reload {
        match crate::reload::watch_dir(Arc::clone(&assets), shutdown_rx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(error = %e, "cannot watch the assets directory; hot reload is off");
                None
            }
        }
    } else {
        None
    };
    let game_addr = listeners.game.local_addr()?;
    let admin_addr = listeners.admin.local_addr()?;
    info!(
        game = %game_addr,
        admin = %admin_addr,
        tls = state.tls.is_some(),
        dev_mode = state.config.dev_mode(),
        assets = %assets.version(),
        "listening"
    );
    // Every connection task is tracked; the drain is complete when none is left.
    let connections = Arc::new(Tracker::default());
    let game = tokio::spawn(accept_loop(
        listeners.game,
        Arc::clone(&state),
        Arc::clone(&connections),
        stop_rx.clone(),
    ));
    let admin = tokio::spawn(crate::admin::serve(
        listeners.admin,
        Arc::clone(&state),
        stop_rx,
    ));
    let maintenance = tokio::spawn(maintenance(Arc::clone(&state), shutdown_rx));

    shutdown_signal.await;
    info!(
        open = state.metrics.connections_open.get(),
        "shutting down: draining connections"
    );
    state.ready.store(false, Ordering::Release);
    state.directory.start_draining();
    let _ = shutdown_tx.send(true);
    let drained = tokio::time::timeout(state.config.limits.drain_timeout, connections.wait_idle())
        .await
        .is_ok();
    if !drained {
        warn!(
            open = state.metrics.connections_open.get(),
            "drain deadline passed; exiting with connections open"
        );
    }
    let _ = stop_tx.send(true);
    let _ = game.await;
    let _ = admin.await;
    maintenance.abort();
    info!("stopped");
    Ok(())
}

async fn maintenance(state: Arc<State>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            () = crate::shutdown::signalled(&mut shutdown) => return,
            _ = every.tick() => state.admission.forget_quiet_ips(),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    connections: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            () = crate::shutdown::signalled(&mut stop) => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(5);
                let state = Arc::clone(&state);
                let tracked = connections.track();
                tokio::spawn(async move {
                    handle_connection(tcp, peer, &state).await;
                    drop(tracked);
                });
            }
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Counts a handshake in progress for as long as it lives.
struct PendingGuard<'a>(&'a Metrics);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.handshakes_pending.dec();
    }
}

async fn handle_connection(tcp: TcpStream, peer: SocketAddr, state: &State) {
    let _ = tcp.set_nodelay(true);
    let Some(permit) = state.admission.try_begin_handshake() else {
        state.metrics.handshake("too_many_pending");
        if state.tls.is_none() {
            // Best effort and non-blocking: the point is to shed load, not to wait.
            let r = Response::error(503, "server_busy", "too many handshakes in progress")
                .header("Retry-After", "1");
            let _ = tcp.try_write(&r.to_bytes());
        }
        return;
    };
    state.metrics.handshakes_pending.inc();
    let pending = PendingGuard(&state.metrics);
    let deadline = Instant::now() + state.config.limits.handshake_timeout;
    let mut stream = match &state.tls {
        None => ClientStream::Plain(tcp),
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => ClientStream::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                state.metrics.handshake("tls_error");
                debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                state.metrics.handshake("handshake_timeout");
                debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
    };
    let (req, leftover) = match tokio::time::timeout_at(deadline, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(HeadError::TooLarge)) => {
            return reject(
                state,
                &mut stream,
                peer,
                "-",
                Response::error(431, "request_too_large", "request head too large"),
            )
            .await;
        }
        Ok(Err(HeadError::Malformed(why))) => {
            return reject(
                state,
                &mut stream,
                peer,
                "-",
                Response::error(400, "bad_request", &why),
            )
            .await;
        }
        Ok(Err(HeadError::Closed | HeadError::Io(_))) => {
            state.metrics.handshake("client_closed");
            return;
        }
        Err(_) => {
            let r = Response::error(
                408,
                "handshake_timeout",
                "the request did not arrive in time",
            );
            return reject(state, &mut stream, peer, "-", r).await;
        }
    };
    let client = client_ip(peer, &req, &state.config.trusted_proxies);
    let handshake = matches!(req.path.as_str(), "/play" | "/dev/token");
    let slot = match state.admission.admit(client, handshake) {
        Ok(slot) => slot,
        Err(refusal) => {
            let r = match refusal {
                Refusal::ServerFull => {
                    Response::error(503, "server_full", "the server is at its connection limit")
                        .header("Retry-After", handshake::RETRY_FULL_SECS.to_string())
                }
                Refusal::TooManyConnections => Response::error(
                    429,
                    "too_many_connections",
                    "too many open connections from this address",
                )
                .header("Retry-After", handshake::RETRY_FULL_SECS.to_string()),
                Refusal::TooManyHandshakes(wait) => Response::error(
                    429,
                    "too_many_handshakes",
                    "connecting too fast from this address",
                )
                .header("Retry-After", wait.as_secs().max(1).to_string()),
            };
            return reject(state, &mut stream, peer, &req.path, r).await;
        }
    };
    match req.path.as_str() {
        "/play" => {}
        "/dev/token" => return dev_token(state, &mut stream, peer, &req).await,
        _ => {
            let r = web::respond(&req);
            debug!(%peer, method = %req.method, path = %req.path, status = r.status, "http");
            respond_and_close(&mut stream, &r).await;
            return;
        }
    }
    if *state.shutdown.borrow() {
        return reject(state, &mut stream, peer, &req.path, handshake::draining()).await;
    }
    let ctx = HandshakeCtx {
        verifier: &state.verifier,
        allowed_origins: &state.config.allowed_origins,
        directory: &state.directory,
    };
    let accepted = match handshake::evaluate(&req, &ctx) {
        Ok(a) => a,
        Err(r) => return reject(state, &mut stream, peer, &req.path, r).await,
    };
    let written = tokio::time::timeout_at(deadline, async {
        stream.write_all(&accepted.response.to_bytes()).await?;
        stream.flush().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        state.metrics.handshake("client_closed");
        return;
    }
    state.metrics.handshake("accepted");
    drop(pending);
    drop(permit);
    let ws = WebSocketStream::from_partially_read(
        stream,
        leftover,
        WsRole::Server,
        Some(session::websocket_config(&state.config.limits)),
    )
    .await;
    let id = state.next_session.fetch_add(1, Ordering::Relaxed);
    let span = info_span!(
        "session",
        id,
        peer = %client,
        sub = %accepted.identity.sub,
        subprotocol = accepted.subprotocol.name(),
        room = %accepted.reservation.room.name,
    );
    let tick_rate = state.assets.engine().tick_rate;
    let session = Session {
        id,
        identity: accepted.identity,
        subprotocol: accepted.subprotocol,
        reservation: accepted.reservation,
        token_leeway: state.config.auth.leeway,
    };
    async {
        info!(role = session.identity.role.as_str(), "session started");
        session::run(
            ws,
            session,
            &state.config.limits,
            &state.metrics,
            state.shutdown.clone(),
            tick_rate,
        )
        .await;
    }
    .instrument(span)
    .await;
    drop(slot);
}

/// Answers a refused request, counts it and logs it without the query or headers.
async fn reject(
    state: &State,
    stream: &mut ClientStream,
    peer: SocketAddr,
    path: &str,
    response: Response,
) {
    let code = response
        .error_code()
        .unwrap_or_else(|| response.status.to_string());
    state.metrics.handshake(&code);
    info!(%peer, path, status = response.status, error = %code, "request refused");
    respond_and_close(stream, &response).await;
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy, in which case
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: SocketAddr, req: &Request, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer.ip()) {
        return peer.ip();
    }
    req.header_values("x-forwarded-for")
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer.ip())
}

/// `GET /dev/token`: a signed token for a loopback client, only in dev mode.
async fn dev_token(state: &State, stream: &mut ClientStream, peer: SocketAddr, req: &Request) {
    let response = match &state.dev_secret {
        None => Response::error(404, "not_found", "dev tokens exist only in dev mode"),
        Some(_) if !peer.ip().is_loopback() => Response::error(
            403,
            "forbidden",
            "dev tokens are only handed to loopback clients",
        ),
        Some(secret) => {
            let sub = req
                .query_param("sub")
                .filter(|s| !s.is_empty() && s.len() <= auth::MAX_SUB_BYTES)
                .unwrap_or_else(|| {
                    let id = state.next_session.fetch_add(1, Ordering::Relaxed);
                    let random =
                        String::from_utf8_lossy(&auth::generate_secret()[..8]).into_owned();
                    format!("dev-{random}-{id}")
                });
            let ttl = Duration::from_secs(3600);
            let mut claims = MintClaims::new(sub.clone(), state.config.auth.audience.clone(), ttl);
            claims.iss = state.config.auth.issuer.clone();
            claims.name = req.query_param("name").filter(|n| !n.is_empty());
            claims.room = req.query_param("room").filter(|r| !r.is_empty());
            claims.role = match req.query_param("role").as_deref() {
                Some("spectator") => Some(Role::Spectator),
                _ => None,
            };
            Response::json(
                200,
                &serde_json::json!({
                    "token": auth::mint(secret, &claims),
                    "token_type": "Bearer",
                    "sub": sub,
                    "expires_in": ttl.as_secs(),
                }),
            )
        }
    };
    debug!(%peer, status = response.status, "dev token request");
    respond_and_close(stream, &response).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req_with_xff(xff: &str) -> Request {
        Request {
            method: "GET".into(),
            path: "/play".into(),
            query: None,
            minor_version: 1,
            headers: vec![("x-forwarded-for".into(), xff.into())],
        }
    }

    #[test]
    fn forwarded_addresses_are_trusted_only_from_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let req = req_with_xff("203.0.113.9, 198.51.100.7");
        let from_proxy = SocketAddr::new(proxy, 1234);
        assert_eq!(
            client_ip(from_proxy, &req, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let direct = SocketAddr::new("192.0.2.5".parse().unwrap(), 1234);
        assert_eq!(client_ip(direct, &req, &[proxy]), direct.ip());
        // A chain of trusted proxies is skipped from the right.
        let req = req_with_xff("203.0.113.9, 10.0.0.1");
        assert_eq!(
            client_ip(from_proxy, &req, &[proxy]),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // Garbage falls back to the peer.
        let req = req_with_xff("not an address");
        assert_eq!(client_ip(from_proxy, &req, &[proxy]), proxy);
    }
}
