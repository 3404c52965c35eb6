//! Getting a bot onto the server, through the client library: the target resolved once
//! ([`target`]), and what a failed attempt means for the report and for the bot
//! ([`ConnectFailure`]: the key the report counts, and whether to try again).
//!
//! Must not log tokens; must not keep per-connection state.

use std::time::Duration;

use rallypoint_client::{ConnectError, Endpoint, EndpointError, HttpError, SessionConfig};

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
            ConnectFailure::Connect(_) | ConnectFailure::DevToken(_) | ConnectFailure::Token(_) => {
                None
            }
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
