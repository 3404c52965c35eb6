//! Where to play in a cluster: `GET /match` on any node ([`Endpoint::find_match`]), and
//! what its answer and refusals mean ([`Match`], [`MatchError`]). The token travels as the
//! [`Request`] says it would for `/play` (`Authorization: Bearer` for a header or
//! subprotocol token, `access_token` for a query token); the room too.
//!
//! Following the answer is the caller's: connect to [`Match::url`] (with
//! [`Endpoint::elsewhere`]), and after a 421 to the URL in its body
//! ([`Rejection::redirect`]).
//!
//! Must not log request targets: they may carry tokens.

use serde::Deserialize;

use crate::endpoint::Endpoint;
use crate::http::HttpError;
use crate::upgrade::{Rejection, Request};

/// `/match`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Match {
    /// The `/play` URL of the room on its node: connect there.
    pub url: String,
    /// The room.
    pub room: String,
    /// The node serving it (`local` on a single node).
    pub node: String,
    /// The account still has a player in that room: connecting resumes it.
    pub resume: bool,
}

/// Why `/match` gave no place to play.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// No usable HTTP answer (connection refused, timeout, not HTTP). Retry after a pause.
    #[error("/match: {0}")]
    Http(#[from] HttpError),
    /// The node refused: 401 (the token), 400 (the room name), 429, or 503 (`no_capacity`,
    /// `directory_unavailable`, `draining`, `room_full`) with `Retry-After`.
    #[error("/match: HTTP {} {}: {}", .0.status, .0.error, .0.message)]
    Refused(Box<Rejection>),
    /// The request cannot be sent as given (a line break in the token). Fix it.
    #[error("/match: invalid request: {0}")]
    InvalidRequest(String),
}

impl MatchError {
    /// Whether asking again later can succeed (a busy or unreachable node, a directory
    /// that does not answer).
    pub fn is_retryable(&self) -> bool {
        match self {
            MatchError::Http(HttpError::Io(_) | HttpError::Timeout(_)) => true,
            MatchError::Http(_) | MatchError::InvalidRequest(_) => false,
            MatchError::Refused(r) => matches!(r.status, 429 | 503),
        }
    }
}

impl Endpoint {
    /// `GET /match` on this endpoint's node for `request`'s token and room.
    pub async fn find_match(&self, request: &Request) -> Result<Match, MatchError> {
        let bearer = request.bearer();
        if bearer.is_some_and(|t| t.contains(['\r', '\n'])) {
            return Err(MatchError::InvalidRequest(
                "the token contains a line break".into(),
            ));
        }
        let authorization = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|v| ("Authorization", v.as_str()))
            .collect();
        let response = self
            .request_with("GET", &request.target("/match"), &headers)
            .await?;
        if !(200..300).contains(&response.status) {
            return Err(MatchError::Refused(Box::new(Rejection::from_response(
                response,
            ))));
        }
        serde_json::from_slice(&response.body)
            .map_err(|e| MatchError::Http(HttpError::Malformed(format!("/match JSON: {e}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upgrade::TokenIn;
    use rallypoint_protocol::Subprotocol;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-shot HTTP server: answers `response` and hands back the request head.
    async fn answer(response: &'static str) -> (Endpoint, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(response.as_bytes()).await.unwrap();
            String::from_utf8(head).unwrap()
        });
        (Endpoint::plain(addr), task)
    }

    #[tokio::test]
    async fn a_match_carries_the_token_as_play_would_and_reads_the_answer() {
        let body =
            r#"{"url":"ws://10.0.0.2:7777/play?room=a","room":"a","node":"n2","resume":true}"#;
        let response: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let (endpoint, head) = answer(response).await;
        let request = Request::new([Subprotocol::V1Json])
            .token("tok", TokenIn::Header)
            .room("a");
        let m = endpoint.find_match(&request).await.unwrap();
        assert_eq!(
            (m.url.as_str(), m.node.as_str(), m.resume),
            ("ws://10.0.0.2:7777/play?room=a", "n2", true)
        );
        let head = head.await.unwrap();
        assert!(head.starts_with("GET /match?room=a HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nAuthorization: Bearer tok\r\n"), "{head}");

        let (endpoint, head) = answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
        let query = Request::new([Subprotocol::V1Json]).token("tok", TokenIn::Query);
        assert!(matches!(
            endpoint.find_match(&query).await,
            Err(MatchError::Http(HttpError::Malformed(_)))
        ));
        let head = head.await.unwrap();
        assert!(head.starts_with("GET /match?access_token=tok "), "{head}");
        assert!(!head.contains("Authorization"), "{head}");
    }

    #[tokio::test]
    async fn refusals_keep_their_code_and_retry_after() {
        let (endpoint, _head) = answer(
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 59\r\n\r\n\
             {\"error\":\"directory_unavailable\",\"message\":\"redis is gone\"}",
        )
        .await;
        let request = Request::new([Subprotocol::V1Json]).token("tok", TokenIn::Header);
        match endpoint.find_match(&request).await {
            Err(e @ MatchError::Refused(_)) => {
                assert!(e.is_retryable());
                let MatchError::Refused(r) = e else {
                    unreachable!()
                };
                assert_eq!(r.error, "directory_unavailable");
                assert_eq!(r.retry_after, Some(std::time::Duration::from_secs(2)));
            }
            other => panic!("{other:?}"),
        }
    }
}
