//! Rooms: where players meet and a game runs.
//!
//! - [`directory`]: which rooms exist, placement of new sessions, seats (capacity), and
//!   which room holds each account, so a reconnect resumes in the right place.
//! - [`core`]: the room itself as a state machine over any [`crate::game::Game`]: joins,
//!   inputs, chat, the fixed tick with bounded catch-up, fan-out, resume, replacement,
//!   hot reload. Time is a parameter (`handle_timeout(now)`, `poll_timeout()`); it never
//!   reads a clock or touches tokio.
//! - [`fanout`]: how a room's messages and snapshots are encoded once and handed to each
//!   member's outbox.
//! - [`task`]: the thin async driver: one task per room, sleeping until the core's next
//!   deadline, feeding it commands.
//! - [`cluster`]: a room's side of the cluster (cluster mode): its directory writer
//!   (members, checkpoints), its claim's status, the hand-off on a drain.
//! - [`outbox`]: the mailbox from a room to one session; never blocks the room.
//! - `saved`: what a room's checkpoint holds (the game's bytes and every player), for
//!   reopening it on this or another node.
//! - `harness` (tests and tools, feature `harness`): a room driven by hand with a virtual
//!   clock.
//!
//! Sessions talk to rooms through a bounded command channel ([`Command`]); rooms talk to
//! sessions through outboxes. Nothing here touches a socket.

pub mod cluster;
pub mod core;
pub mod directory;
pub mod fanout;
#[cfg(any(test, feature = "harness"))]
pub mod harness;
pub mod outbox;
mod saved;
pub mod task;

use std::sync::Arc;

use bytes::Bytes;
use rallypoint_protocol::Subprotocol;
use tokio::sync::oneshot;

use crate::auth::Role;
use crate::config::Limits;
use crate::metrics::Metrics;

pub use directory::{
    Claim, Directory, Opening, PlaceError, Placement, Reservation, RoomHandle, RoomOpener, Seat,
};
pub use outbox::{Gone, Outbox};

/// What every room needs from the server besides its game's assets.
#[derive(Debug, Clone)]
pub struct RoomContext {
    /// Limits (queue sizes, catch-up, message sizes).
    pub limits: Limits,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Becomes true when the server shuts down.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// A unique id per connection, so a room can tell a replaced session from its successor.
pub type SessionId = u64;

/// A session joining its room.
#[derive(Debug)]
pub struct Join {
    /// The connection.
    pub session: SessionId,
    /// Account id.
    pub sub: Arc<str>,
    /// Display name.
    pub name: String,
    /// Player or spectator.
    pub role: Role,
    /// The negotiated subprotocol (its encoding, its snapshots), echoed in `welcome`.
    pub subprotocol: Subprotocol,
    /// Where the room writes to this session.
    pub outbox: Arc<Outbox>,
    /// The seat reserved during the handshake.
    pub seat: Seat,
    /// The account's directory entry, when the reservation made one.
    pub claim: Option<Claim>,
}

/// Messages from sessions (and the admin API, and the directory) to a room.
#[derive(Debug)]
pub enum Command {
    /// A session joins (sent once, first).
    Join(Box<Join>),
    /// One `input` from a session: the envelope checked and rate-limited by the session,
    /// the game's fields still encoded (the room decodes them with its game's type).
    Input {
        /// From.
        session: SessionId,
        /// The input's sequence number.
        seq: u32,
        /// The whole message, as received.
        payload: Bytes,
    },
    /// A chat line.
    Chat {
        /// From.
        session: SessionId,
        /// Validated text.
        text: String,
    },
    /// Close the session of this account with 4002.
    Kick {
        /// Account id.
        sub: String,
        /// Whether someone was kicked.
        reply: oneshot::Sender<bool>,
    },
    /// The account has a new session elsewhere: close this room's one with 4004.
    Replace {
        /// Account id.
        sub: String,
    },
    /// A v2 client found its state wrong and asks for a keyframe.
    Resync {
        /// From.
        session: SessionId,
    },
    /// Describe the room for `/admin/rooms`.
    Describe(oneshot::Sender<serde_json::Value>),
}

#[cfg(test)]
mod tests;
