//! Rallypoint's native client: what a game client, a bot or a tool uses to play on a
//! Rallypoint server, over `ws://` or `wss://`.
//!
//! ```text
//! Endpoint::resolve(url, trust) ──connect/join(request)──▶ Session ──recv()──▶ Incoming
//!        │                                                    └─ queue_input / ping / chat / close
//!        └─ get / get_json / dev_token (HTTP/1.1)
//! ```
//!
//! The map of the crate:
//!
//! - [`endpoint`]: a URL resolved once with its TLS connector; sessions and HTTP
//!   requests start there.
//! - [`matchmaking`]: `GET /match` on any node of a cluster: where to play ([`Match`]).
//! - [`tls`]: which certificates a `wss://` client trusts ([`Trust`]).
//! - [`upgrade`]: the [`Request`] (token in a header, a subprotocol entry or the query;
//!   room; subprotocols in preference order) and the upgrade, with refusals typed as
//!   [`Rejection`] (status, `error`, `message`, `Retry-After`).
//! - [`session`]: one WebSocket session: batched reads into reused buffers, inputs with
//!   sequence numbers, the highest `ack`, pings with round-trip times, chat, close,
//!   resume checks.
//! - [`decode`]: server messages read as far as needed (type, snapshot header, pong)
//!   without allocating, full decoding on demand; v1 and v2 snapshots behind one
//!   [`Decoder`].
//! - [`v2`]: a `rallypoint.v2.msgpack` session's reconstructed state: every snapshot
//!   frame applied, every state hash checked, `resync` asked for on a desync, counters.
//! - [`frame`]: WebSocket framing (pure).
//! - [`http`]: a small HTTP/1.1 client and response parser.
//! - [`stream`]: plain TCP or TLS as one stream type, shared with the server.
//!
//! The wire types and codecs come from `rallypoint-protocol`, which has no IO; this crate
//! is where the IO lives. Nothing here spawns tasks or logs. `README.md` beside this crate
//! has a complete example.

pub mod decode;
pub mod endpoint;
pub mod frame;
pub mod http;
pub mod matchmaking;
pub mod session;
pub mod stream;
pub mod tls;
pub mod upgrade;
pub mod v2;

pub use decode::{Decoder, Kind};
pub use endpoint::{Endpoint, EndpointError, Url};
pub use http::{HttpError, Response};
pub use matchmaking::{Match, MatchError};
pub use session::{
    Close, Incoming, Received, RecvError, SendError, Session, SessionConfig, Traffic,
};
pub use stream::{ClientStream, MaybeTls};
pub use tls::{TlsError, Trust};
pub use upgrade::{ConnectError, Rejection, Request, TokenIn};
pub use v2::{FrameOutcome, Reconstruction, V2Stats};

pub use rallypoint_protocol as protocol;

/// The README's example, compiled as a doc test so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeExample;
