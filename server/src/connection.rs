//! One game-port connection, phase by phase:
//!
//! accept-time cap → TLS → request head → admission → route, then for `/play`:
//! token (upgrade checks, `Origin`, subprotocol, JWT) → placement (a seat; in cluster mode
//! under this node's claim on the room, or a 421 naming the node that serves it) →
//! upgrade (the `101`) → session. `/match` ([`crate::matching`]) shares the token phase
//! and the error mapping.
//!
//! Each phase is a function with its own error type; [`Rejection`] gathers them and is
//! the one place where a failure becomes its HTTP response, its metric label and its log
//! line. The accept-time cap holds a [`PendingHandshake`] until the `101` is written or
//! the connection is refused; the admission phase holds a [`ConnectionSlot`] for the
//! connection's whole life.
//!
//! [`PendingHandshake`]: crate::admission::PendingHandshake
//!
//! Must not decide anything the pure pieces decide (`handshake`, `admission`, `web`):
//! this module sequences them and does the IO.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tracing::{Instrument, debug, info, info_span};

use crate::admission::{Busy, ConnectionSlot, Refusal};
use crate::auth::{self, Identity, MintClaims, Role};
use crate::cluster::DirectoryError;
use crate::fragments::FragmentCap;
use crate::handshake::{self, RETRY_FULL_SECS, RequestError, TokenError};
use crate::http::{HeadError, Request, Response, read_head, respond_and_close};
use crate::metrics::Metrics;
use crate::node::ClusterError;
use crate::room::{PlaceError, Reservation};
use crate::server::{State, client_ip};
use crate::session::{self, Session};
use crate::socket::SessionStream;
use crate::stream::ClientStream;
use rallypoint_protocol::Subprotocol;

/// Why a connection ended before its session: one variant per phase.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Accept-time cap: the pending-handshake pool, or this address's share of it, is full.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// TLS failed or did not finish within the handshake timeout.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The request head could not be read.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The request head did not arrive within the handshake timeout.
    #[error("the request did not arrive in time")]
    HeadTimedOut,
    /// Connection caps or the per-IP handshake rate.
    #[error("{0:?}")]
    Admission(Refusal),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    Draining,
    /// Not an acceptable `/play` upgrade.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// No valid token.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No seat.
    #[error(transparent)]
    Placement(#[from] PlaceError),
    /// Cluster mode: another live node serves the room; `url` is its `/play` URL there.
    #[error("the room is served by another node")]
    WrongNode {
        /// The room's `/play` URL on its node.
        url: String,
    },
    /// Cluster mode: the directory is needed and did not answer (or refused).
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// Cluster mode: no node can take another room.
    #[error("no node can take another room")]
    NoCapacity,
    /// The `101` could not be written in time.
    #[error("the 101 could not be written")]
    Upgrade,
}

/// TLS phase failures; neither is answered (there is no channel to answer on).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Failed(std::io::Error),
    /// It did not finish within the handshake timeout.
    #[error("TLS handshake timed out")]
    TimedOut,
}

impl From<Refusal> for Rejection {
    fn from(r: Refusal) -> Rejection {
        Rejection::Admission(r)
    }
}

impl From<ClusterError> for Rejection {
    fn from(e: ClusterError) -> Rejection {
        match e {
            ClusterError::WrongNode { url } => Rejection::WrongNode { url },
            ClusterError::Directory(e) => Rejection::Directory(e),
            ClusterError::Place(e) => Rejection::Placement(e),
            ClusterError::NoCapacity => Rejection::NoCapacity,
        }
    }
}

impl Rejection {
    /// The HTTP response to send, `None` when there is nothing to answer.
    pub fn response(&self) -> Option<Response> {
        let full = |code, message| {
            Response::error(503, code, message).header("Retry-After", RETRY_FULL_SECS.to_string())
        };
        Some(match self {
            Rejection::Busy(Busy::Server) => {
                Response::error(503, "server_busy", "too many handshakes in progress")
                    .header("Retry-After", "1")
            }
            Rejection::Busy(Busy::Address) => Response::error(
                429,
                "too_many_pending_handshakes",
                "too many handshakes in progress from this address",
            )
            .header("Retry-After", "1"),
            Rejection::Tls(_) | Rejection::Upgrade => return None,
            Rejection::Head(HeadError::Closed | HeadError::Io(_)) => return None,
            Rejection::Head(HeadError::TooLarge) => {
                Response::error(431, "request_too_large", "request head too large")
            }
            Rejection::Head(HeadError::Malformed(why)) => Response::error(400, "bad_request", why),
            Rejection::HeadTimedOut => Response::error(
                408,
                "handshake_timeout",
                "the request did not arrive in time",
            ),
            Rejection::Admission(r) => admission_response(*r),
            Rejection::Draining | Rejection::Placement(PlaceError::Draining) => {
                Response::error(503, "draining", "the server is shutting down")
                    .header("Retry-After", "10")
            }
            Rejection::Request(e) => request_response(e),
            Rejection::Token(e) => token_response(e),
            Rejection::Placement(PlaceError::RoomFull) => full("room_full", "the room is full"),
            Rejection::Placement(PlaceError::NoRoom) => full(
                "server_full",
                "no room has space and no new room can be opened",
            ),
            Rejection::Placement(PlaceError::Closing) => {
                Response::error(503, "room_closing", "the room is closing; try again")
                    .header("Retry-After", "1")
            }
            Rejection::WrongNode { url } => Response::json(
                421,
                &serde_json::json!({
                    "error": "wrong_node",
                    "message": "another node serves this room: connect to `url`",
                    "url": url,
                }),
            ),
            Rejection::Directory(e) => directory_response(e),
            Rejection::NoCapacity => full("no_capacity", "no node can take another room"),
        })
    }

    /// The `outcome` label of `rallypoint_handshakes_total`: the response's error code,
    /// or what happened when nothing is answered.
    pub fn outcome(&self) -> String {
        match self {
            Rejection::Busy(Busy::Server) => "too_many_pending".into(),
            Rejection::Tls(TlsError::Failed(_)) => "tls_error".into(),
            Rejection::Tls(TlsError::TimedOut) => "handshake_timeout".into(),
            Rejection::Head(HeadError::Closed | HeadError::Io(_)) | Rejection::Upgrade => {
                "client_closed".into()
            }
            _ => self
                .response()
                .and_then(|r| r.error_code())
                .unwrap_or_else(|| "refused".into()),
        }
    }
}

fn admission_response(refusal: Refusal) -> Response {
    match refusal {
        Refusal::ServerFull => {
            Response::error(503, "server_full", "the server is at its connection limit")
                .header("Retry-After", RETRY_FULL_SECS.to_string())
        }
        Refusal::TooManyConnections => Response::error(
            429,
            "too_many_connections",
            "too many open connections from this address",
        )
        .header("Retry-After", RETRY_FULL_SECS.to_string()),
        Refusal::TooManyHandshakes(wait) => Response::error(
            429,
            "too_many_handshakes",
            "connecting too fast from this address",
        )
        .header("Retry-After", wait.as_secs().max(1).to_string()),
    }
}

fn directory_response(e: &DirectoryError) -> Response {
    match e {
        DirectoryError::Invalid { .. } => Response::error(400, "bad_request", &e.to_string()),
        _ => Response::error(
            503,
            e.code(),
            "the cluster directory is unavailable; try again",
        )
        .header("Retry-After", RETRY_DIRECTORY_SECS.to_string()),
    }
}

fn request_response(e: &RequestError) -> Response {
    let message = e.to_string();
    match e {
        RequestError::Method => {
            Response::error(405, "method_not_allowed", &message).header("Allow", "GET")
        }
        RequestError::Origin => Response::error(403, "origin_not_allowed", &message),
        RequestError::WebSocketVersion => {
            Response::error(400, "bad_request", &message).header("Sec-WebSocket-Version", "13")
        }
        RequestError::Subprotocol { .. } => Response::json(
            400,
            &serde_json::json!({
                "error": "unsupported_subprotocol",
                "message": message,
                "supported": Subprotocol::supported_names(),
            }),
        ),
        RequestError::HttpVersion
        | RequestError::NotAnUpgrade
        | RequestError::Key
        | RequestError::RoomName => Response::error(400, "bad_request", &message),
    }
}

fn token_response(e: &TokenError) -> Response {
    let (code, message) = match e {
        TokenError::Missing => ("missing_token", e.to_string()),
        TokenError::Invalid { check, .. } => ("invalid_token", check.to_string()),
    };
    let challenge = format!(
        "Bearer realm=\"rallypoint\", error=\"invalid_token\", error_description=\"{}\"",
        message.replace('"', "'")
    );
    Response::error(401, code, &message).header("WWW-Authenticate", challenge)
}

/// Seconds suggested in `Retry-After` when the cluster directory is unavailable: Redis
/// restarts and failovers take seconds, and the node re-registers within one heartbeat.
const RETRY_DIRECTORY_SECS: u64 = 2;

/// Counts a handshake in progress in the `handshakes_pending` gauge while it lives.
struct PendingGauge<'a>(&'a Metrics);

impl<'a> PendingGauge<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.handshakes_pending.inc();
        PendingGauge(metrics)
    }
}

impl Drop for PendingGauge<'_> {
    fn drop(&mut self) {
        self.0.handshakes_pending.dec();
    }
}

/// An accepted `/play` handshake, its `101` written.
#[derive(Debug)]
struct Accepted {
    subprotocol: Subprotocol,
    identity: Identity,
    reservation: Reservation,
}

/// Serves one game-port connection to its end.
pub(crate) async fn handle(tcp: TcpStream, peer: SocketAddr, state: &State) {
    let _ = tcp.set_nodelay(true);
    let pending = match state.admission.begin_handshake(peer.ip()) {
        Ok(p) => p,
        Err(busy) => return shed(&tcp, state, &Rejection::Busy(busy)),
    };
    let gauge = PendingGauge::new(&state.metrics);
    let deadline = Instant::now() + state.config.limits.handshake_timeout;
    let mut stream = match tls(tcp, state, deadline).await {
        Ok(s) => s,
        Err(e) => return refuse(state, None, peer, "-", &e.into()).await,
    };
    let (req, leftover) = match request_head(&mut stream, deadline).await {
        Ok(head) => head,
        Err(e) => return refuse(state, Some(&mut stream), peer, "-", &e).await,
    };
    let (client, slot) = match admit(state, peer, &req) {
        Ok(admitted) => admitted,
        Err(e) => return refuse(state, Some(&mut stream), peer, &req.path, &e.into()).await,
    };
    match req.path.as_str() {
        "/play" => {}
        "/match" => {
            let r = crate::matching::respond(state, &req).await;
            return respond_and_close(&mut stream, &r).await;
        }
        "/dev/token" => {
            let r = dev_token(state, client, &req);
            debug!(%peer, status = r.status, "dev token request");
            return respond_and_close(&mut stream, &r).await;
        }
        _ => {
            let r = crate::web::respond(&req);
            debug!(%peer, method = %req.method, path = %req.path, status = r.status, "http");
            return respond_and_close(&mut stream, &r).await;
        }
    }
    let accepted = match accept(&mut stream, &req, state, deadline).await {
        Ok(a) => a,
        Err(e) => return refuse(state, Some(&mut stream), peer, &req.path, &e).await,
    };
    state.metrics.handshake("accepted");
    drop((gauge, pending));
    run_session(stream, leftover, accepted, client, state).await;
    drop(slot);
}

/// Refuses a socket at accept time, unread: best effort and non-blocking (the point is
/// to shed load, not to wait), and only without TLS, where a plain answer is readable.
fn shed(tcp: &TcpStream, state: &State, rejection: &Rejection) {
    state.metrics.handshake(&rejection.outcome());
    if state.tls.is_none()
        && let Some(r) = rejection.response()
    {
        let _ = tcp.try_write(&r.to_bytes());
    }
}

/// Answers a refused request (when there is an answer), counts it and logs it without
/// the query or headers.
async fn refuse(
    state: &State,
    stream: Option<&mut ClientStream>,
    peer: SocketAddr,
    path: &str,
    rejection: &Rejection,
) {
    let outcome = rejection.outcome();
    state.metrics.handshake(&outcome);
    let Some(response) = rejection.response() else {
        debug!(%peer, error = %rejection, "connection ended before the upgrade");
        return;
    };
    match rejection {
        Rejection::Token(TokenError::Invalid { check, kid }) => info!(
            %peer, path, status = response.status, error = %outcome, %check,
            kid = kid.as_deref().unwrap_or("-"), "request refused"
        ),
        _ => info!(%peer, path, status = response.status, error = %outcome, "request refused"),
    }
    if let Some(stream) = stream {
        respond_and_close(stream, &response).await;
    }
}

/// TLS phase: the stream as it will be read, TLS accepted when configured.
async fn tls(tcp: TcpStream, state: &State, deadline: Instant) -> Result<ClientStream, TlsError> {
    let Some(acceptor) = &state.tls else {
        return Ok(ClientStream::Plain(tcp));
    };
    match tokio::time::timeout_at(deadline, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Ok(ClientStream::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(TlsError::Failed(e)),
        Err(_) => Err(TlsError::TimedOut),
    }
}

/// Request head phase: the head, and what arrived after it, within the deadline.
async fn request_head(
    stream: &mut ClientStream,
    deadline: Instant,
) -> Result<(Request, Vec<u8>), Rejection> {
    match tokio::time::timeout_at(deadline, read_head(stream)).await {
        Ok(head) => Ok(head?),
        Err(_) => Err(Rejection::HeadTimedOut),
    }
}

/// Admission phase: the client's address and a connection slot, or a refusal.
fn admit(
    state: &State,
    peer: SocketAddr,
    req: &Request,
) -> Result<(IpAddr, ConnectionSlot), Refusal> {
    let client = client_ip(peer, req, &state.config.trusted_proxies);
    // A `/match` costs a directory call: it counts like a handshake.
    let handshake = matches!(req.path.as_str(), "/play" | "/match" | "/dev/token");
    Ok((client, state.admission.admit(client, handshake)?))
}

/// Token → placement → upgrade, for `/play`.
async fn accept(
    stream: &mut ClientStream,
    req: &Request,
    state: &State,
    deadline: Instant,
) -> Result<Accepted, Rejection> {
    if *state.shutdown.borrow() {
        return Err(Rejection::Draining);
    }
    let upgrade = handshake::check_request(req, &state.config.allowed_origins)?;
    let identity = handshake::authenticate(req, &upgrade, &state.verifier)?;
    let placement = handshake::placement(req, &identity)?;
    let reservation = match &state.cluster {
        None => state
            .directory
            .reserve(&identity.sub, identity.role, &placement)?,
        Some(node) => {
            let until = deadline.into_std();
            node.place(&state.directory, &identity, &placement, until)
                .await?
        }
    };
    let response = handshake::switching_protocols(&upgrade).to_bytes();
    let written = tokio::time::timeout_at(deadline, async {
        stream.write_all(&response).await?;
        stream.flush().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return Err(Rejection::Upgrade);
    }
    Ok(Accepted {
        subprotocol: upgrade.subprotocol,
        identity,
        reservation,
    })
}

/// Session phase: the WebSocket from the upgraded stream, run to its end.
async fn run_session(
    stream: ClientStream,
    leftover: Vec<u8>,
    accepted: Accepted,
    client: IpAddr,
    state: &State,
) {
    let limits = &state.config.limits;
    let (stream, outbox) = SessionStream::upgrade(
        stream,
        limits.max_queued_messages,
        accepted.subprotocol.encoding(),
    );
    let ws = WebSocketStream::from_partially_read(
        FragmentCap::new(stream, &leftover, limits.max_fragments),
        leftover,
        WsRole::Server,
        Some(session::websocket_config(limits)),
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
            outbox,
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
}

/// `GET /dev/token`: a signed token for a loopback client, only in dev mode. The client
/// is the address every other check uses (behind a trusted proxy, the forwarded one).
fn dev_token(state: &State, client: IpAddr, req: &Request) -> Response {
    let Some(secret) = &state.dev_secret else {
        return Response::error(404, "not_found", "dev tokens exist only in dev mode");
    };
    if !client.is_loopback() {
        return Response::error(
            403,
            "forbidden",
            "dev tokens are only handed to loopback clients",
        );
    }
    let sub = req
        .query_param("sub")
        .filter(|s| !s.is_empty() && s.len() <= auth::MAX_SUB_BYTES)
        .unwrap_or_else(|| {
            let id = state.next_session.fetch_add(1, Ordering::Relaxed);
            let random = String::from_utf8_lossy(&auth::generate_secret()[..8]).into_owned();
            format!("dev-{random}-{id}")
        });
    let ttl = Duration::from_secs(3600);
    let mut claims = MintClaims::new(sub.clone(), state.config.auth.audience.clone(), ttl);
    claims.iss = state.config.auth.issuer.clone();
    claims.name = req
        .query_param("name")
        .and_then(|n| crate::text::clean_name(&n));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answered_rejection_is_a_json_error_whose_code_is_its_outcome() {
        let rejections = [
            Rejection::Busy(Busy::Address),
            Rejection::Head(HeadError::TooLarge),
            Rejection::Head(HeadError::Malformed("x".into())),
            Rejection::HeadTimedOut,
            Rejection::Admission(Refusal::ServerFull),
            Rejection::Admission(Refusal::TooManyConnections),
            Rejection::Admission(Refusal::TooManyHandshakes(Duration::from_millis(10))),
            Rejection::Draining,
            Rejection::Request(RequestError::Method),
            Rejection::Request(RequestError::Origin),
            Rejection::Request(RequestError::Subprotocol { none_offered: true }),
            Rejection::Token(TokenError::Missing),
            Rejection::Token(TokenError::Invalid {
                check: auth::AuthError::Expired,
                kid: None,
            }),
            Rejection::Placement(PlaceError::RoomFull),
            Rejection::Placement(PlaceError::NoRoom),
            Rejection::Placement(PlaceError::Closing),
            Rejection::WrongNode {
                url: "ws://n2:7777/play?room=r".into(),
            },
            Rejection::Directory(DirectoryError::Unavailable("down".into())),
            Rejection::NoCapacity,
        ];
        for r in rejections {
            let response = r.response().expect("answered");
            assert!(response.status >= 400, "{r:?}");
            assert_eq!(response.error_code(), Some(r.outcome()), "{r:?}");
        }
    }

    #[test]
    fn silent_rejections_keep_their_labels() {
        let io = || std::io::Error::other("x");
        for (r, label) in [
            (Rejection::Tls(TlsError::Failed(io())), "tls_error"),
            (Rejection::Tls(TlsError::TimedOut), "handshake_timeout"),
            (Rejection::Head(HeadError::Closed), "client_closed"),
            (Rejection::Upgrade, "client_closed"),
        ] {
            assert!(r.response().is_none(), "{r:?}");
            assert_eq!(r.outcome(), label);
        }
        // Answered, but counted under its historical label.
        assert_eq!(Rejection::Busy(Busy::Server).outcome(), "too_many_pending");
        assert_eq!(
            Rejection::Busy(Busy::Server).response().map(|r| r.status),
            Some(503)
        );
    }

    #[test]
    fn the_cluster_answers_421_with_the_owners_url_and_503_with_a_retry() {
        let r = Rejection::WrongNode {
            url: "ws://n2:7777/play?room=r".into(),
        }
        .response()
        .unwrap();
        assert_eq!(r.status, 421);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["url"], "ws://n2:7777/play?room=r");
        for (rejection, code) in [
            (
                Rejection::Directory(DirectoryError::Unavailable("down".into())),
                "directory_unavailable",
            ),
            (Rejection::NoCapacity, "no_capacity"),
        ] {
            let r = rejection.response().unwrap();
            assert_eq!((r.status, r.error_code().as_deref()), (503, Some(code)));
            assert!(r.headers.iter().any(|(n, _)| *n == "Retry-After"));
        }
        let from: Rejection = ClusterError::Place(PlaceError::RoomFull).into();
        assert_eq!(from.outcome(), "room_full");
    }

    #[test]
    fn a_401_names_the_check_and_challenges() {
        let r = Rejection::Token(TokenError::Invalid {
            check: auth::AuthError::WrongAudience,
            kid: Some("k1".into()),
        })
        .response()
        .unwrap();
        assert_eq!(r.status, 401);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["message"], "wrong_audience");
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| *n == "WWW-Authenticate" && v.contains("invalid_token"))
        );
    }
}
