//! The `/play` handshake: everything decided between the request head and the `101`, as
//! three pure phases, each with its own error:
//!
//! 1. [`check_request`]: a well-formed WebSocket upgrade, an allowed `Origin`, a supported
//!    subprotocol ([`RequestError`]);
//! 2. [`authenticate`]: a token from the header, the `bearer.` subprotocol entry or the
//!    query, verified ([`TokenError`]);
//! 3. [`placement`]: where the token or the query sends the player ([`RequestError`] for
//!    an invalid room name); the edge then reserves the seat with the directory.
//!
//! [`switching_protocols`] builds the `101`, echoing just the chosen subprotocol (never
//! the bearer entry). The edge (`connection`) turns every error into its response in
//! one place.
//!
//! Must not write to the socket or log tokens; the edge does the IO.

use base64::Engine as _;
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::subprotocol::negotiate;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::auth::{self, AuthError, Identity, Verifier};
use crate::http::{Request, Response};
use crate::room::Placement;
use crate::room::directory::valid_room_name;

/// Seconds suggested in `Retry-After` when the server or a room is full.
pub const RETRY_FULL_SECS: u64 = 5;

/// A `/play` request that is a valid upgrade from an allowed origin.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// `Sec-WebSocket-Key`.
    key: String,
    /// The subprotocol to echo.
    pub subprotocol: Subprotocol,
    /// A `bearer.<jwt>` entry offered in `Sec-WebSocket-Protocol`.
    bearer: Option<String>,
}

/// Why a `/play` request is not an acceptable upgrade (phase 1), or names an invalid
/// room (phase 3). Each maps to a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not `GET`: 405.
    #[error("only GET is accepted here")]
    Method,
    /// HTTP/1.0: 400.
    #[error("WebSocket needs HTTP/1.1")]
    HttpVersion,
    /// No `Upgrade: websocket` / `Connection: Upgrade`: 400.
    #[error("expected a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade)")]
    NotAnUpgrade,
    /// `Sec-WebSocket-Version` is not 13: 400 with `Sec-WebSocket-Version: 13`.
    #[error("unsupported WebSocket version; use 13")]
    WebSocketVersion,
    /// `Sec-WebSocket-Key` is not 16 bytes in base64: 400.
    #[error("Sec-WebSocket-Key must be 16 random bytes in base64")]
    Key,
    /// An `Origin` outside the allowlist: 403.
    #[error("this Origin may not open a game session")]
    Origin,
    /// No supported subprotocol: 400 with the supported list.
    #[error("{}", if *.none_offered {
        "no subprotocol offered in Sec-WebSocket-Protocol"
    } else {
        "none of the offered subprotocols is supported"
    })]
    Subprotocol {
        /// Nothing (or only a bearer entry) was offered.
        none_offered: bool,
    },
    /// An invalid room name: 400.
    #[error("room names are 1-32 characters of A-Z a-z 0-9 - _ .")]
    RoomName,
}

/// Why no identity came out of the token phase: 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No token in any carriage.
    #[error(
        "no token: send Authorization: Bearer, a bearer.<jwt> subprotocol entry, or access_token"
    )]
    Missing,
    /// A token that fails a check; `kid` is the header's, for the log line.
    #[error("{check}")]
    Invalid {
        /// The check that failed.
        check: AuthError,
        /// The header's `kid`, if printable.
        kid: Option<String>,
    },
}

/// Phase 1: the RFC 6455 upgrade headers, the `Origin` allowlist (empty = any) and the
/// subprotocol.
pub fn check_request(req: &Request, allowed_origins: &[String]) -> Result<Upgrade, RequestError> {
    let key = check_upgrade(req)?;
    if !allowed_origins.is_empty()
        && let Some(origin) = req.header("origin")
        && !allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin.trim()))
    {
        return Err(RequestError::Origin);
    }
    let offer = negotiate(req.header_values("sec-websocket-protocol"));
    let Some(subprotocol) = offer.chosen else {
        return Err(RequestError::Subprotocol {
            none_offered: offer.offered == 0 || (offer.offered == 1 && offer.bearer.is_some()),
        });
    };
    Ok(Upgrade {
        key,
        subprotocol,
        bearer: offer.bearer.map(str::to_owned),
    })
}

/// Phase 2: the token, from the first carriage that has one, verified.
pub fn authenticate(
    req: &Request,
    upgrade: &Upgrade,
    verifier: &Verifier,
) -> Result<Identity, TokenError> {
    verify(req, upgrade.bearer.clone(), verifier)
}

/// The token of a plain HTTP request (`/match`): the `Authorization` header, else
/// `access_token`, verified as [`authenticate`] does.
pub fn authenticate_request(req: &Request, verifier: &Verifier) -> Result<Identity, TokenError> {
    verify(req, None, verifier)
}

fn verify(
    req: &Request,
    subprotocol_bearer: Option<String>,
    verifier: &Verifier,
) -> Result<Identity, TokenError> {
    let token = bearer_header(req)
        .or(subprotocol_bearer)
        .or_else(|| req.query_param("access_token"))
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)?;
    verifier
        .verify(&token)
        .map_err(|check| TokenError::Invalid {
            check,
            kid: auth::header_kid(&token),
        })
}

/// Phase 3: the room the token pins, else the one the query asks for, else automatic.
pub fn placement(req: &Request, identity: &Identity) -> Result<Placement, RequestError> {
    match identity.room.clone().or_else(|| req.query_param("room")) {
        Some(name) if valid_room_name(&name) => Ok(Placement::Named(name)),
        Some(_) => Err(RequestError::RoomName),
        None => Ok(Placement::Auto),
    }
}

/// The `101 Switching Protocols` for an accepted upgrade.
pub fn switching_protocols(upgrade: &Upgrade) -> Response {
    Response {
        status: 101,
        headers: Vec::new(),
        body: Vec::new(),
        omit_body: false,
    }
    .header("Upgrade", "websocket")
    .header("Connection", "Upgrade")
    .header(
        "Sec-WebSocket-Accept",
        derive_accept_key(upgrade.key.as_bytes()),
    )
    .header("Sec-WebSocket-Protocol", upgrade.subprotocol.name())
}

/// Checks the RFC 6455 upgrade headers and returns the client's key.
fn check_upgrade(req: &Request) -> Result<String, RequestError> {
    if req.method != "GET" {
        return Err(RequestError::Method);
    }
    if req.minor_version < 1 {
        return Err(RequestError::HttpVersion);
    }
    if !req.header_has_token("upgrade", "websocket")
        || !req.header_has_token("connection", "upgrade")
    {
        return Err(RequestError::NotAnUpgrade);
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(RequestError::WebSocketVersion);
    }
    let key = req
        .header("sec-websocket-key")
        .map(str::trim)
        .unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap_or_default();
    if decoded.len() != 16 {
        return Err(RequestError::Key);
    }
    Ok(key.to_owned())
}

fn bearer_header(req: &Request) -> Option<String> {
    let value = req.header("authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}
