//! Wire protocol v2 (`rallypoint.v2.msgpack`): quantized, delta-encoded, interest-managed,
//! self-verifying snapshots. Every other message is v1's MessagePack message; PROTOCOL.md
//! ("Protocol v2") is the contract, checked against this code by its tests.
//!
//! - [`quant`]: the schema compiled for v2 ([`quant::MAX_FIELDS`]), quantization, the
//!   per-entity records a client holds, dead reckoning and the state hash: the arithmetic
//!   both sides must share bit for bit.
//! - [`state`]: the server's one global record per entity, with change ticks, and the
//!   rule for issuing a new motion record ([`state::POSITION_TOLERANCE`]).
//! - [`interest`]: who sees what: a grid over the entities and radius hysteresis.
//! - [`member`]: per recipient, which snapshot it holds (its baseline) and what was sent.
//! - [`encode`]: the per-tick encoder the room drives ([`Encoder::begin_tick`], then
//!   [`Encoder::encode_for`] per member) with its piece and body caches.
//! - [`decode`]: the client's state ([`ClientState::apply`], [`ClientState::rows_at`]).
//! - [`error`]: [`V2Error`] for every way a frame can be wrong, [`EncodeError`] for rows
//!   the encoder cannot take.
//! - `piece`, `wire`, `bits`: a body's entity pieces, varints, id sets.
//!
//! Pure code: no IO, no clock, no async runtime. The room measures encode time around
//! these calls.

mod bits;
pub mod decode;
pub mod encode;
pub mod error;
pub mod interest;
pub mod member;
mod piece;
pub mod quant;
pub mod state;
mod wire;

#[cfg(test)]
mod tests;

pub use decode::{Applied, ClientState};
pub use encode::{Encoder, EncoderConfig, EncoderStats, Frame, FrameBytes, FrameKind, View};
pub use error::{EncodeError, V2Error};
pub use interest::Interest;
pub use member::Member;

/// The subprotocol name v2 is negotiated by.
pub const SUBPROTOCOL: &str = "rallypoint.v2.msgpack";

/// The `t` of a v2 snapshot frame.
pub const SNAPSHOT_TYPE: &str = "s";

/// Wire ids must be below this in v2 (the engine hands out the smallest free id).
pub const ID_LIMIT: u32 = 1 << 16;
