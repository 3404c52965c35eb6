//! `GET /match[?room=NAME]` on the game port: where a player should connect, asked of
//! any node.
//!
//! The token travels as for `/play` (the `Authorization` header, else `access_token`)
//! and is checked the same way; a room the token pins wins over the query's. The answer
//! is `{"url","room","node","resume"}`:
//!
//! - in cluster mode, the matchmaker's assignment: the room's node (a returning player's
//!   own room first), with a seat held for the account for a few seconds;
//! - on a single node, this node (as the request addressed it: `Host`, else the bound
//!   address) and the room its directory would seat the player in; nothing is held, the
//!   `/play` that follows places the player as always. `node` is `local`.
//!
//! Refusals are [`Rejection`]s, answered by the edge's one mapping; each answer is counted
//! in `rallypoint_matches_total{outcome}`. Must not write to the socket: the edge does.

use serde_json::json;
use tracing::info;

use crate::connection::Rejection;
use crate::handshake::{self, RequestError};
use crate::http::{Request, Response};
use crate::server::State;

/// Where a player goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    url: String,
    room: String,
    node: String,
    resume: bool,
}

/// The response to a `/match` request, counted and (when refused) logged.
pub(crate) async fn respond(state: &State, req: &Request) -> Response {
    match answer(state, req).await {
        Ok(a) => {
            state
                .metrics
                .match_outcome(if a.resume { "resumed" } else { "assigned" });
            let body = json!({ "url": a.url, "room": a.room, "node": a.node, "resume": a.resume });
            let response = Response::json(200, &body);
            if req.method == "HEAD" {
                response.head()
            } else {
                response
            }
        }
        Err(rejection) => {
            let outcome = rejection.outcome();
            state.metrics.match_outcome(&outcome);
            info!(error = %outcome, "match refused");
            rejection.response().unwrap_or_else(|| {
                Response::error(500, "internal_error", "no answer for this refusal")
            })
        }
    }
}

async fn answer(state: &State, req: &Request) -> Result<Answer, Rejection> {
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        return Err(RequestError::Method.into());
    }
    if *state.shutdown.borrow() {
        return Err(Rejection::Draining);
    }
    let identity = handshake::authenticate_request(req, &state.verifier)?;
    let placement = handshake::placement(req, &identity)?;
    let wanted = match &placement {
        crate::room::Placement::Named(name) => Some(name.as_str()),
        crate::room::Placement::Auto => None,
    };
    if let Some(node) = &state.cluster {
        let a = node.match_player(&identity.sub, wanted).await?;
        return Ok(Answer {
            url: a.play_url(),
            room: a.room,
            node: a.node,
            resume: a.resume,
        });
    }
    let (room, resume) = state
        .directory
        .peek(&identity.sub, identity.role, &placement)?;
    Ok(Answer {
        url: format!("{}/play?room={room}", local_base(state, req)),
        room,
        node: "local".into(),
        resume,
    })
}

/// This node's base URL as the client addressed it (`Host`), when that is a plain host
/// and port; else the URL it is reachable at by its bound address.
fn local_base(state: &State, req: &Request) -> String {
    let scheme = if state.tls.is_some() { "wss" } else { "ws" };
    match req.header("host").map(str::trim) {
        Some(host) if plain_host(host) => format!("{scheme}://{host}"),
        _ => state.public_url.clone(),
    }
}

/// A `Host` value made of a name or address and an optional port, nothing else.
fn plain_host(host: &str) -> bool {
    (1..=255).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_hosts_are_echoed() {
        assert!(plain_host("play.example.com:7777"));
        assert!(plain_host("[::1]:7777"));
        assert!(plain_host("127.0.0.1"));
        for bad in ["", "evil.example/x", "a b", "h@x", "x?y", &"a".repeat(256)] {
            assert!(!plain_host(bad), "{bad}");
        }
    }
}
