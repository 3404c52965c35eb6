//! The `/play` handshake: everything decided between the request head and the `101`.
//!
//! Checks run in a fixed order, each rejection a JSON response: a well-formed WebSocket
//! upgrade (400), an allowed `Origin` (403), a supported subprotocol (400 with the list),
//! a token from the header, the `bearer.` subprotocol entry or the query, verified (401),
//! a valid room name (400), and a seat (503). Only then is a seat held and the `101`
//! built, echoing just the chosen subprotocol (never the bearer entry).
//!
//! Must not write to the socket or log tokens; the edge does the IO.

use std::sync::Arc;

use base64::Engine as _;
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::subprotocol::negotiate;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::auth::{AuthError, Identity, Verifier};
use crate::http::{Request, Response};
use crate::room::directory::valid_room_name;
use crate::room::{Directory, PlaceError, Placement, Reservation};

/// What the handshake needs from the server.
#[derive(Debug)]
pub struct HandshakeCtx<'a> {
    /// Token checks.
    pub verifier: &'a Verifier,
    /// `Origin` allowlist; empty = any.
    pub allowed_origins: &'a [String],
    /// Rooms and seats.
    pub directory: &'a Arc<Directory>,
}

/// An accepted handshake, ready for the `101`.
#[derive(Debug)]
pub struct Accepted {
    /// The subprotocol to echo.
    pub subprotocol: Subprotocol,
    /// Who connected.
    pub identity: Identity,
    /// The seat won.
    pub reservation: Reservation,
    /// The `101 Switching Protocols` response.
    pub response: Response,
}

/// Seconds suggested in `Retry-After` when the server or a room is full.
pub const RETRY_FULL_SECS: u64 = 5;

/// Decides a `/play` request.
pub fn evaluate(req: &Request, ctx: &HandshakeCtx<'_>) -> Result<Accepted, Response> {
    let key = check_upgrade(req)?;
    if !ctx.allowed_origins.is_empty()
        && let Some(origin) = req.header("origin")
        && !ctx
            .allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin.trim()))
    {
        return Err(Response::error(
            403,
            "origin_not_allowed",
            "this Origin may not open a game session",
        ));
    }
    let offer = negotiate(req.header_values("sec-websocket-protocol"));
    let Some(subprotocol) = offer.chosen else {
        let message = if offer.offered == 0 || (offer.offered == 1 && offer.bearer.is_some()) {
            "no subprotocol offered in Sec-WebSocket-Protocol"
        } else {
            "none of the offered subprotocols is supported"
        };
        return Err(Response::json(
            400,
            &serde_json::json!({
                "error": "unsupported_subprotocol",
                "message": message,
                "supported": Subprotocol::supported_names(),
            }),
        ));
    };
    let token = bearer_header(req)
        .or_else(|| offer.bearer.map(str::to_owned))
        .or_else(|| req.query_param("access_token"))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized(
            "missing_token",
            "no token: send Authorization: Bearer, a bearer.<jwt> subprotocol entry, or access_token",
        ));
    };
    let identity = ctx
        .verifier
        .verify(&token)
        .map_err(|e: AuthError| unauthorized("invalid_token", &e.to_string()))?;
    let room = identity.room.clone().or_else(|| req.query_param("room"));
    let placement = match room {
        Some(name) if valid_room_name(&name) => Placement::Named(name),
        Some(_) => {
            return Err(Response::error(
                400,
                "bad_request",
                "room names are 1-32 characters of A-Z a-z 0-9 - _ .",
            ));
        }
        None => Placement::Auto,
    };
    let reservation = ctx
        .directory
        .reserve(&identity.sub, identity.role, &placement)
        .map_err(|e| match e {
            PlaceError::RoomFull => Response::error(503, "room_full", "the room is full")
                .header("Retry-After", RETRY_FULL_SECS.to_string()),
            PlaceError::NoRoom => Response::error(
                503,
                "server_full",
                "no room has space and no new room can be opened",
            )
            .header("Retry-After", RETRY_FULL_SECS.to_string()),
            PlaceError::Draining => draining(),
        })?;
    let response = Response {
        status: 101,
        headers: Vec::new(),
        body: Vec::new(),
        omit_body: false,
    }
    .header("Upgrade", "websocket")
    .header("Connection", "Upgrade")
    .header("Sec-WebSocket-Accept", derive_accept_key(key.as_bytes()))
    .header("Sec-WebSocket-Protocol", subprotocol.name());
    Ok(Accepted {
        subprotocol,
        identity,
        reservation,
        response,
    })
}

/// The 503 sent while shutting down.
pub fn draining() -> Response {
    Response::error(503, "draining", "the server is shutting down").header("Retry-After", "10")
}

fn unauthorized(code: &str, message: &str) -> Response {
    let challenge = format!(
        "Bearer realm=\"rallypoint\", error=\"invalid_token\", error_description=\"{}\"",
        message.replace('"', "'")
    );
    Response::error(401, code, message).header("WWW-Authenticate", challenge)
}

fn bad_request(message: &str) -> Response {
    Response::error(400, "bad_request", message)
}

/// Checks the RFC 6455 upgrade headers and returns the client's key.
fn check_upgrade(req: &Request) -> Result<String, Response> {
    if req.method != "GET" {
        return Err(
            Response::error(405, "method_not_allowed", "/play only accepts GET")
                .header("Allow", "GET"),
        );
    }
    if req.minor_version < 1 {
        return Err(bad_request("WebSocket needs HTTP/1.1"));
    }
    if !req.header_has_token("upgrade", "websocket")
        || !req.header_has_token("connection", "upgrade")
    {
        return Err(bad_request(
            "expected a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade)",
        ));
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(bad_request("unsupported WebSocket version; use 13")
            .header("Sec-WebSocket-Version", "13"));
    }
    let key = req
        .header("sec-websocket-key")
        .map(str::trim)
        .unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .unwrap_or_default();
    if decoded.len() != 16 {
        return Err(bad_request(
            "Sec-WebSocket-Key must be 16 random bytes in base64",
        ));
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
