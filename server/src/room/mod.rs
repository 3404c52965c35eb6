//! Rooms: where players meet and the game runs.
//!
//! - [`directory`]: which rooms exist, placement of new players, seats (capacity), and
//!   which room holds each account (`sub`) so a reconnect resumes in the right place.
//! - [`task`]: one task per room owning its [`crate::sim::World`], stepping it at a
//!   fixed rate and fanning snapshots and events out.
//! - [`outbox`]: the mailbox from a room to one session; never blocks the room.
//!
//! Sessions talk to rooms through a bounded command channel ([`Command`]); rooms talk to
//! sessions through outboxes. Nothing here touches a socket.

pub mod directory;
pub mod harness;
pub mod outbox;
pub mod task;

use std::sync::Arc;

use rallypoint_protocol::Encoding;
use rallypoint_protocol::message::Input;
use tokio::sync::{oneshot, watch};

use crate::assets::Assets;
use crate::auth::Role;
use crate::config::Limits;
use crate::metrics::Metrics;

pub use directory::{Directory, PlaceError, Placement, Reservation, RoomHandle, Seat};
pub use outbox::{Gone, Outbox};

/// What every room needs from the server.
#[derive(Debug, Clone)]
pub struct RoomContext {
    /// The assets in force; rooms apply new versions at a tick boundary.
    pub assets: watch::Receiver<Arc<Assets>>,
    /// Limits (queue sizes, catch-up).
    pub limits: Limits,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Becomes true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
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
    /// The connection's encoding.
    pub encoding: Encoding,
    /// The negotiated subprotocol name, echoed in `welcome`.
    pub protocol: &'static str,
    /// Where the room writes to this session.
    pub outbox: Arc<Outbox>,
    /// The seat reserved during the handshake.
    pub seat: Seat,
}

/// Messages from sessions (and the admin API) to a room.
#[derive(Debug)]
pub enum Command {
    /// A session joins (sent once, first).
    Join(Box<Join>),
    /// One input sample from a session.
    Input {
        /// From.
        session: SessionId,
        /// The validated input.
        input: Input,
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
    /// Describe the room for `/admin/rooms`.
    Describe(oneshot::Sender<serde_json::Value>),
}

#[cfg(test)]
mod tests;
