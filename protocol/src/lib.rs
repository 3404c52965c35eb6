//! The Rallypoint wire protocol: version 1, and version 2's snapshots.
//!
//! Everything a client, a bot or the server needs to agree on bytes, and nothing else:
//!
//! - [`subprotocol`]: the `Sec-WebSocket-Protocol` names and the pure negotiation rule
//!   (client order wins; a `bearer.<jwt>` entry carries a token and is never chosen).
//! - [`message`]: every v1 message as a serde type (`t` names the type).
//! - [`rows`]: entity rows for any game: the engine's `id, kind, x, y`, then the fields a
//!   game declares in its [`rows::RowSchema`]; the v1 row encoding.
//! - [`entity`]: the arena's rows, typed, and their schema.
//! - [`codec`]: one codec per subprotocol (MessagePack and JSON) with size and nesting
//!   limits, typed decode errors, and the encode-once snapshot layout.
//! - [`inbound`]: strict decoding of client messages: the engine's envelope and a game's
//!   input fields ([`inbound::InputFields`]), with errors that name the field.
//! - [`close`]: close reasons, their WebSocket close codes and `error` message codes.
//! - [`examples`]: the example input and entities behind the golden bytes (tests, docs,
//!   fuzz seeds).
//! - [`v2`]: `rallypoint.v2.msgpack` snapshots: quantization, the server's records and
//!   per-recipient encoder, interest, and the client's state and decoder.
//! - [`rng`] and [`duration`]: small pure pieces every Rallypoint program shares (a seeded
//!   generator; `5s`-style durations for flags).
//!
//! This crate must not do IO, read a clock or depend on an async runtime: it is shared by
//! the server, the bots, the tests and the fuzz targets, and must stay deterministic.
//! `PROTOCOL.md` beside this crate is the human-readable contract and is checked against
//! the encoder by tests.

pub mod close;
pub mod codec;
pub mod duration;
pub mod entity;
pub mod examples;
pub mod inbound;
pub mod message;
pub mod rng;
pub mod rows;
pub mod subprotocol;
pub mod v2;

pub use close::CloseReason;
pub use codec::{DecodeError, DecodeLimits, Encoding};
pub use entity::Entity;
pub use message::{ClientMessage, ServerMessage};
pub use subprotocol::{Negotiation, Subprotocol};

#[cfg(test)]
mod tests;
