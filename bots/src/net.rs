//! Getting a bot onto the server, through the client library: the target resolved once
//! ([`target`]), and what a failed attempt means for the report and for the bot
//! ([`ConnectFailure`]: the key the report counts, and whether to try again). A failed
//! attempt may also be a `/match` that gave no room, a URL it (or a 421, or `moved`)
//! named that does not resolve, or too many 421s in a row.
//!
//! Must not log tokens; must not keep per-connection state.

use std::time::Duration;

use rallypoint_client::{
    ConnectError, Endpoint, EndpointError, HttpError, MatchError, SessionConfig,
};

use crate::config::TlsOptions;

/// Resolves the run's `--url` (and prepares TLS) once; each bot then only connects.
/// `connect_timeout` bounds TCP + TLS + upgrade, then the wait for `welcome`, and every
/// `/dev/token` request.
pub async fn target(
    url: &str,
    tls: &TlsOptions,
    connect_timeout: Duration,
) -> Result<Endpoint, EndpointError> {
    let endpoint = Endpoint::resolve(url, &tls.trust()).await?;
    Ok(endpoint
        .with_timeout(connect_timeout)
        .with_session(session_config()))
}

/// Session buffers for a bot: 4 KiB to start (thousands of connections; one snapshot of a
/// full room is well under it), growing only for a larger message.
fn session_config() -> SessionConfig {
    SessionConfig {
        read_buffer: 4 * 1024,
        ..SessionConfig::default()
    }
}

/// Why one connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectFailure {
    /// Connecting, the upgrade or the `welcome` failed (see the library's error).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// `/dev/token` did not hand out a token.
    #[error("/dev/token: {0}")]
    DevToken(#[source] HttpError),
    /// No token could be obtained otherwise (minting failed, no token for this bot).
    #[error("token: {0}")]
    Token(String),
    /// `/match` named no room.
    #[error(transparent)]
    Match(#[from] MatchError),
    /// A URL from `/match`, a 421 or `moved` cannot be used.
    #[error("a node's URL: {0}")]
    Url(#[from] EndpointError),
    /// 421 after 421: the nodes disagree about who owns the room.
    #[error("{0} redirects (421) in a row")]
    Redirects(u32),
    /// `--latency`: no relay could listen on the loopback for another node.
    #[error("--latency relay: {0}")]
    Relay(#[source] std::io::Error),
}

impl ConnectFailure {
    /// The report's key: the HTTP status for refusals, else a short name.
    pub fn key(&self) -> String {
        match self {
            ConnectFailure::Connect(e) => match e {
                ConnectError::Rejected(r) => r.status.to_string(),
                ConnectError::Io(_) => "connect_error".into(),
                ConnectError::Tls(_) => "tls_error".into(),
                ConnectError::Handshake(_) | ConnectError::InvalidRequest(_) => "ws_error".into(),
                ConnectError::Timeout(_) => "timeout".into(),
                ConnectError::NoWelcome(_) => "no_welcome".into(),
            },
            ConnectFailure::DevToken(HttpError::Status { status, .. }) => {
                format!("dev_token_{status}")
            }
            ConnectFailure::DevToken(HttpError::Io(_)) => "connect_error".into(),
            ConnectFailure::DevToken(HttpError::Timeout(_)) => "timeout".into(),
            ConnectFailure::DevToken(_) | ConnectFailure::Token(_) => "token_error".into(),
            ConnectFailure::Match(MatchError::Refused(r)) => format!("match_{}", r.status),
            ConnectFailure::Match(MatchError::Http(HttpError::Io(_))) => "connect_error".into(),
            ConnectFailure::Match(MatchError::Http(HttpError::Timeout(_))) => "timeout".into(),
            ConnectFailure::Match(_) => "match_error".into(),
            ConnectFailure::Url(_) => "bad_url".into(),
            ConnectFailure::Redirects(_) => "redirects".into(),
            ConnectFailure::Relay(_) => "relay_error".into(),
        }
    }

    /// How long to wait before trying again; `None` when retrying cannot help (a refused
    /// token, a bad request, a missing endpoint, an untrusted certificate).
    pub fn retry_in(&self) -> Option<Duration> {
        /// `Retry-After` is honoured up to this, so a run of seconds does not stall.
        const MAX_WAIT: Duration = Duration::from_secs(5);
        const PAUSE: Duration = Duration::from_secs(1);
        match self {
            ConnectFailure::Connect(ConnectError::Rejected(r)) => match r.status {
                429 | 503 => Some(r.retry_after.unwrap_or(PAUSE).min(MAX_WAIT)),
                _ => None,
            },
            ConnectFailure::Connect(e) if e.is_retryable() => Some(PAUSE),
            ConnectFailure::Match(MatchError::Refused(r)) if r.status != 429 && r.status != 503 => {
                None
            }
            ConnectFailure::Match(MatchError::Refused(r)) => {
                Some(r.retry_after.unwrap_or(PAUSE).min(MAX_WAIT))
            }
            ConnectFailure::Match(e) if e.is_retryable() => Some(PAUSE),
            // A node that went away between naming a URL and the lookup; the nodes'
            // ownership settling after a 421 loop; file descriptors for a relay.
            ConnectFailure::Url(EndpointError::Resolve { .. })
            | ConnectFailure::Redirects(_)
            | ConnectFailure::Relay(_) => Some(PAUSE),
            ConnectFailure::Connect(_)
            | ConnectFailure::DevToken(_)
            | ConnectFailure::Token(_)
            | ConnectFailure::Match(_)
            | ConnectFailure::Url(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rallypoint_client::{Rejection, Response};

    fn refused(status: u16, retry_after: Option<u64>) -> ConnectFailure {
        ConnectFailure::Connect(ConnectError::Rejected(Box::new(Rejection {
            status,
            error: String::new(),
            message: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
            response: Response {
                status,
                headers: Vec::new(),
                body: Vec::new(),
            },
        })))
    }

    #[test]
    fn failure_keys_and_retries() {
        let f = refused(429, Some(60));
        assert_eq!(f.key(), "429");
        assert_eq!(f.retry_in(), Some(Duration::from_secs(5)));
        assert_eq!(refused(503, None).retry_in(), Some(Duration::from_secs(1)));
        assert_eq!(refused(401, None).retry_in(), None);
        let t = ConnectFailure::Connect(ConnectError::Timeout(Duration::from_secs(1)));
        assert_eq!(
            (t.key().as_str(), t.retry_in()),
            ("timeout", Some(Duration::from_secs(1)))
        );
        let dev = ConnectFailure::DevToken(HttpError::Status {
            status: 404,
            message: "not found".into(),
        });
        assert_eq!(
            (dev.key().as_str(), dev.retry_in()),
            ("dev_token_404", None)
        );
    }
}
