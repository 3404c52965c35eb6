//! The cluster: many nodes share one directory of nodes and rooms in Redis, so a player
//! can ask any node where to play and every room has exactly one owner.
//!
//! - [`directory`]: [`ClusterDirectory`], every call to Redis; each is one Lua script
//!   (`lua/*.lua`, with the shared key schema and rules in `lua/common.lua`).
//! - [`agent`]: [`Agent`], the node's side: the heartbeat, the rooms it holds, their leases.
//! - [`lease`]: the lease state machine (held, renewing, lapsed, lost), pure, time as a
//!   parameter.
//! - [`matchmaking`]: where `/match` sends a player, pure, over a [`Snapshot`].
//! - [`snapshot`]: the directory at one instant; `reply`: reading the scripts' replies.
//!
//! Nothing here is built or called without `--redis-url`. This module must not run rooms,
//! read game state (a checkpoint is opaque bytes) or answer HTTP: the edge and the rooms
//! call it.
//!
//! # Keys
//!
//! Every key starts with a prefix (`rp`, [`ClusterTiming::key_prefix`]). The directory
//! is one Redis database (a primary, with replicas or Sentinel if wanted); scripts touch
//! keys they compute, so Redis Cluster is not supported. All times are milliseconds on
//! the Redis clock (`TIME`), never a node's.
//!
//! | Key | Type | Holds | Lives |
//! |---|---|---|---|
//! | `rp:node:ID` | hash | `url`, `instance` (random per process), `capacity` (max rooms), `room_capacity`, `rooms`, `players`, `draining`, `registered`, `renewed` | the node lease (`PEXPIRE`, 3 s), renewed by each heartbeat |
//! | `rp:nodes` | sorted set | node id → lease end | members past their score are pruned by heartbeats |
//! | `rp:room:NAME` | hash | `epoch`, `owner`, `lease_until`, `pending_node`, `pending_until`, `capacity`, `ckpt_epoch`, `ckpt_at`, `ckpt_bytes` | retention (10 min) from the last renewal, placement or release |
//! | `rp:rooms` | sorted set | room → end of retention | pruned like `rp:nodes`; a closed room leaves it at once |
//! | `rp:members:NAME` | set | accounts with a player in the room (resume grace included) | retention |
//! | `rp:resv:NAME` | sorted set | account → reservation end | the reservation time (10 s) |
//! | `rp:acct:ACCOUNT` | string | the account's room | the reservation time; retention once a member |
//! | `rp:ckpt:NAME` | string | the room's last checkpoint (opaque bytes) | retention |
//! | `rp:version` | integer | bumped by claims, releases, placements, reservations, member changes | forever |
//!
//! # Rules
//!
//! **Nodes.** A node registers with its id, public URL, room limit, seats per room,
//! rooms, players and draining flag, under a lease of [`ClusterTiming::lease`] (3 s)
//! renewed by a heartbeat every [`ClusterTiming::heartbeat`] (1 s). A node whose lease
//! lapses is dead to the cluster: it is listed nowhere and chosen for nothing. An id is
//! held by one process (`instance`): a second live process with the same id gets
//! [`DirectoryError::NodeIdInUse`] until the first one's lease lapses.
//!
//! **Room ownership.** A node claims a room atomically before opening it ([`Agent::claim`]).
//! A claim is a lease too, renewed by the node's heartbeat with all its other claims in
//! one script. Of any number of racing claims exactly one wins: the room's `epoch` goes
//! up by one and the winner gets it with the last checkpoint, read in the same step. A
//! room is claimable when nobody owns it under a live lease and it is not placed on
//! another node; otherwise the claimant is told where it is ([`Claim::Elsewhere`]: the
//! edge answers 421 with that URL). Only the process currently registered under the node
//! id can claim, and not while draining. A node claims only rooms it does not run; a live
//! claim of its own is answered [`Claim::Held`], with the checkpoint, and opened the
//! same way.
//!
//! **Fencing.** Every write a room's owner makes (checkpoint, members, renewal, release)
//! carries its epoch and is refused unless that epoch and owner are the room's current
//! claim. A paused or cut-off owner therefore cannot write or renew once another node
//! took the room over, whatever the clocks say. The epoch outlives the claim for the
//! retention period (also after a close), so it only ever grows while anyone may still
//! hold an older one; retention must exceed lease plus lapse grace.
//!
//! **Late calls.** Every call carries a deadline on the Redis clock (the Redis time last
//! read by this node, plus the time since, plus the call timeout). A call that reaches
//! Redis after it, held up in a network that healed later or by a frozen Redis, changes
//! nothing: its caller already counted it as failed. What is left is a call applied
//! within its deadline whose answer was lost; fencing covers it like any other.
//!
//! **Release.** A draining node hands a room over ([`Release::HandOff`]): the claim ends
//! at once and the room, its members and its checkpoint wait for the next claim, which
//! gets the next epoch. A room that ends ([`Release::Close`]) loses its members,
//! reservations and checkpoint; only the epoch stays. Leaving the directory
//! ([`ClusterDirectory::deregister`]) hands over whatever the node still holds.
//!
//! **Seats.** A room's seats taken are its members plus its live reservations, and the
//! `reserve` script never lets them exceed its capacity: concurrent matchers on any
//! nodes cannot overfill a room. `/match` holds a seat for the account for
//! [`ClusterTiming::reservation`] (10 s); when the player joins, the owner records it as
//! a member ([`MemberChange::Join`]), which consumes the reservation and points the
//! account at the room. A member whose grace ended leaves ([`MemberChange::Leave`]); a
//! reopened room replaces its members with those of its checkpoint
//! ([`MemberChange::Sync`]). The room itself still checks its own capacity when the
//! player arrives: the directory never makes a room hold more than it allows.
//!
//! **Placement.** A room nobody serves is placed on a node by the matchmaker (the room
//! record names `pending_node` until the reservation time runs out); other matchers then
//! fill it like a served room, and the placed node claims it when the first player
//! arrives. A placement for a new auto-named room is only made if the directory
//! `version` is still that of the snapshot it was decided on, so matchers deciding at
//! once cannot each open a room; a named room is placed at most once by construction.
//!
//! **Matchmaking** ([`matchmaking::decide`], pure): a returning member goes back to its
//! room (`resume`), reopened elsewhere if its owner died; a named room goes to its host,
//! else is placed on the least-loaded live, non-draining node; any room goes to the
//! fullest served room with a free seat, else a new room on the least-loaded node. A
//! lost race is decided again on a fresh snapshot, up to a bound (twelve attempts, four
//! call timeouts in all). Each attempt reads the whole directory in one script call:
//! its cost grows with the nodes and listed rooms.
//!
//! **Checkpoints.** Opaque bytes per room, written by the owner at least once a second
//! under its epoch ([`Agent::write_checkpoint`]), at most
//! [`ClusterTiming::max_checkpoint_bytes`] (256 KiB; larger is
//! [`DirectoryError::CheckpointTooLarge`] and nothing is written), kept for the
//! retention period, returned by the claim that reopens the room.
//!
//! **When Redis is unreachable.** Every call fails within [`ClusterTiming::call_timeout`]
//! (500 ms) with [`DirectoryError::Unavailable`] (`directory_unavailable`): `/match`, new
//! named rooms and reopening answer 503. Running rooms are not affected: they need the
//! directory only for checkpoints, which fail until it is back. Each room's lease runs
//! out on the node's clock and lapses (see below); when Redis answers again, the next
//! heartbeat (within a second) re-registers the node and renews or re-takes every claim:
//! with the same epoch when nobody claimed the room meanwhile (or when Redis lost its
//! data), so players notice nothing. A re-taken claim counts in [`RoomLease::retaken`]:
//! the room then re-sends its members ([`MemberChange::Sync`]) and a checkpoint, which
//! Redis may have lost.
//!
//! **Never two owners after Redis returns.** The directory holds one epoch per room and
//! the claim with the highest epoch wins: a node whose renewal finds a higher epoch (or
//! its own epoch released) has lost the room and must close its instance and send its
//! players to the owner. If Redis lost its data, a renewal re-creates the record with the
//! node's epoch, and a renewal with a higher epoch replaces a lower one; two different
//! nodes with the same epoch can only happen after such a loss, and then the one already
//! recorded keeps the room.
//!
//! **A node cut off from Redis but not from its players.** Its leases lapse on the Redis
//! clock; other nodes may then claim its rooms (a `/match` or `/play` for them) and
//! reopen them from their last checkpoints, with a higher epoch. The node itself sees
//! only unanswered renewals, like a Redis outage: its [`Lease`]s go renewing → lapsed
//! (from the local end of the lease, which never comes after the Redis one). A lapsed
//! room keeps serving the players it has but takes no new ones and writes nothing. When
//! Redis answers again, a room taken over is lost at once (the higher epoch) and one
//! nobody took is held again. A lapse longer than [`ClusterTiming::lapse_grace`] (30 s)
//! is a loss: the node gives the room up and sends its players elsewhere. The grace is
//! the trade-off between riding out a Redis restart unnoticed and how long a cut-off node
//! keeps a second copy of a room that was reopened elsewhere. (A renewal in flight as the
//! node gives up may still land; the claim then lapses within one lease, and a claim by
//! the node itself meanwhile is answered [`Claim::Held`] with the checkpoint.)

pub mod agent;
pub mod directory;
pub mod lease;
pub mod matchmaking;
mod reply;
pub mod snapshot;

pub use agent::{Agent, RoomLease};
pub use directory::{ClusterDirectory, check_redis_url};
pub use lease::{Lease, LeaseRules, LeaseStatus, LossReason};
pub use snapshot::{AccountRoom, Host, NodeEntry, RoomEntry, Snapshot};

pub use crate::config::{ClusterConfig, ClusterTiming};

/// Why a directory call did not happen. Every variant but the last two answers clients
/// with 503 `directory_unavailable` ([`DirectoryError::code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// No answer in time: Redis is down, unreachable or stalled. Running rooms go on;
    /// retry later.
    #[error("cluster directory unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error or a reply this version does not understand (another
    /// program's keys under the prefix, a Redis without Lua, a permission). Log it.
    #[error("cluster directory refused the call: {0}")]
    Rejected(String),
    /// Another live process is registered under this node id: give each node its own.
    #[error("node id `{0}` is registered by another live process")]
    NodeIdInUse(String),
    /// The Redis URL cannot be used.
    #[error("invalid Redis URL: {0}")]
    Config(String),
    /// A checkpoint over the limit: nothing was written.
    #[error("checkpoint of {size} bytes is over the {limit}-byte limit")]
    CheckpointTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A room name or account the directory does not store.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// `room` or `account`.
        what: &'static str,
        /// The value (cut to 64 characters).
        value: String,
    },
}

impl DirectoryError {
    /// The `error` code a client is answered with.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::CheckpointTooLarge { .. } => "checkpoint_too_large",
            DirectoryError::Invalid { .. } => "invalid_name",
            _ => "directory_unavailable",
        }
    }

    /// Metric label of a failed call.
    pub fn kind(&self) -> &'static str {
        match self {
            DirectoryError::Unavailable(_) => "unavailable",
            DirectoryError::Rejected(_) => "rejected",
            DirectoryError::NodeIdInUse(_) => "node_id_in_use",
            DirectoryError::Config(_) => "config",
            DirectoryError::CheckpointTooLarge { .. } => "checkpoint_too_large",
            DirectoryError::Invalid { .. } => "invalid",
        }
    }
}

/// What a node reports about itself with each heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeReport {
    /// Rooms it may host at once.
    pub max_rooms: u32,
    /// Seats of a room it opens.
    pub room_capacity: u32,
    /// Rooms it hosts.
    pub rooms: u32,
    /// Players in them.
    pub players: u32,
    /// Draining: no new rooms for it.
    pub draining: bool,
}

/// A claim a node holds and renews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClaim {
    /// Room.
    pub room: String,
    /// Its fencing epoch.
    pub epoch: u64,
    /// Its player seats.
    pub capacity: u32,
}

/// A heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The node had no live registration (first start, a lapse, or Redis lost its data).
    pub registered_anew: bool,
    /// The Redis clock, ms.
    pub now_ms: u64,
    /// One outcome per claim sent, in order.
    pub rooms: Vec<RenewOutcome>,
}

/// What became of a claim's renewal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewOutcome {
    /// Renewed.
    Renewed,
    /// Re-taken with the same epoch: its lease had lapsed or Redis had lost it, and
    /// nobody claimed the room since. Re-send members ([`MemberChange::Sync`]) and a
    /// checkpoint.
    Reacquired,
    /// Another claim holds the room: close it and send its players to the owner.
    Lost {
        /// The room's epoch now.
        epoch: u64,
        /// Its owner, if it has one.
        owner: Option<String>,
    },
}

/// A claim's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node owns the room now; open it (from the checkpoint, if any).
    Won {
        /// Fencing epoch of the claim.
        epoch: u64,
        /// The room's last checkpoint.
        checkpoint: Option<Checkpoint>,
    },
    /// This node already owns the room, under this epoch: a claim sent twice, or the
    /// leftover of an instance it gave up (a renewal that landed as it did). Open it
    /// like [`Claim::Won`].
    Held {
        /// Its epoch.
        epoch: u64,
        /// The room's last checkpoint.
        checkpoint: Option<Checkpoint>,
    },
    /// Another node serves it (owns it, or it was placed there): send the player there.
    Elsewhere {
        /// That node.
        node: String,
        /// Its public base URL.
        url: String,
        /// Placed by a matchmaker, not yet claimed.
        placed: bool,
    },
    /// This process is not the node's registered one (no heartbeat confirmed yet, its
    /// lease lapsed, or another process registered the id).
    Unregistered,
    /// This node is draining and takes no rooms.
    Draining,
}

/// A room's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Opaque bytes, as the room wrote them.
    pub bytes: Vec<u8>,
    /// Epoch of the claim that wrote them.
    pub epoch: u64,
    /// When, Redis clock, ms.
    pub written_ms: u64,
}

/// How a claim ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The room goes on elsewhere (drain): keep its members and checkpoint.
    HandOff,
    /// The room ended: forget it.
    Close,
}

/// A release's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Released.
    Released,
    /// The claim was not this node's current one; nothing changed.
    NotOwner {
        /// The room's epoch now.
        epoch: u64,
        /// Its owner.
        owner: Option<String>,
    },
}

/// The answer to a fenced write (checkpoint, members).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FencedWrite {
    /// Written.
    Written,
    /// Refused: another claim holds the room (or this one was released).
    Superseded {
        /// The room's epoch now.
        epoch: u64,
        /// Its owner.
        owner: Option<String>,
    },
    /// Refused: the directory has no record of this claim yet (Redis lost its data);
    /// the next heartbeat re-takes it.
    Unclaimed,
}

/// A change to a room's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange<'a> {
    /// This account has a player in the room now.
    Join(&'a str),
    /// This account's player is gone for good (its resume grace ended).
    Leave(&'a str),
    /// Exactly these accounts have players in the room (after a reopen or a re-take).
    Sync(&'a [String]),
}

/// Where to place a room nobody serves, when reserving a seat in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Node to open it.
    pub node: String,
    /// Its seats (that node's room capacity).
    pub capacity: u32,
    /// Place it only if the directory version is still this one.
    pub if_version: Option<u64>,
}

/// A seat reservation's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Held (or the account is a member already: `resume`).
    Reserved(Assignment),
    /// Every seat is taken.
    Full,
    /// Nobody serves the room and no placement was given.
    Gone,
    /// The directory changed since the snapshot the placement was decided on.
    Stale,
    /// The node to serve it is gone or draining.
    NodeGone,
}

/// Where a player goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Room.
    pub room: String,
    /// Node serving it.
    pub node: String,
    /// That node's public base URL.
    pub url: String,
    /// The account has a player in the room: it resumes.
    pub resume: bool,
}

impl Assignment {
    /// The room's `/play` URL on its node.
    pub fn play_url(&self) -> String {
        format!("{}/play?room={}", self.url, self.room)
    }
}

/// `/match`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchOutcome {
    /// Go there; a seat is held for the reservation time.
    Assigned(Assignment),
    /// The named room has no free seat: 503 `room_full`.
    RoomFull,
    /// No node can take a room (or every attempt lost a race): 503 `no_capacity`.
    NoCapacity,
}

/// How a listed room is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomState {
    /// By its owner, under a live claim.
    Owned,
    /// Placed on a node that has not claimed it yet.
    Placed,
    /// By nobody: its owner's lease lapsed; it reopens on the next match or `/play`.
    Orphan,
}

/// Where a room is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLocation {
    /// Room.
    pub room: String,
    /// How it is served.
    pub state: RoomState,
    /// The node serving it (owner or placement).
    pub node: Option<String>,
    /// That node's public base URL.
    pub url: Option<String>,
    /// Epoch of its latest claim.
    pub epoch: u64,
    /// Player seats.
    pub capacity: u32,
    /// Members.
    pub members: u32,
    /// Live reservations.
    pub reserved: u32,
    /// When its last checkpoint was written, Redis clock, ms (0: none).
    pub checkpoint_ms: u64,
}

fn check_room(room: &str) -> Result<(), DirectoryError> {
    if crate::room::directory::valid_room_name(room) {
        Ok(())
    } else {
        Err(DirectoryError::Invalid {
            what: "room",
            value: room.chars().take(64).collect(),
        })
    }
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without OS randomness ids and jitter fall back to the clock: still distinct
    // enough for a name, never a secret.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return nanos as u64;
    }
    u64::from_le_bytes(bytes)
}

/// A name for a room nobody named (opened by `/match`, or by `/play` without a room in
/// cluster mode): `m-` and 12 random hex digits, unique across the cluster in practice
/// (and a claim settles the rare collision).
pub fn new_room_name() -> String {
    format!("m-{:012x}", random_u64() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_room_names_are_valid_and_distinct() {
        let a = new_room_name();
        let b = new_room_name();
        assert!(crate::room::directory::valid_room_name(&a), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn play_urls() {
        let a = Assignment {
            room: "arena".into(),
            node: "n1".into(),
            url: "wss://eu1.example:443".into(),
            resume: false,
        };
        assert_eq!(a.play_url(), "wss://eu1.example:443/play?room=arena");
    }

    #[test]
    fn errors_answer_directory_unavailable() {
        assert_eq!(
            DirectoryError::Unavailable("x".into()).code(),
            "directory_unavailable"
        );
        assert_eq!(DirectoryError::Rejected("x".into()).kind(), "rejected");
        assert!(matches!(
            check_room("a b"),
            Err(DirectoryError::Invalid { .. })
        ));
        assert!(check_room("arena-1").is_ok());
    }

    #[test]
    fn timing_defaults_keep_the_epoch_longer_than_any_lapse() {
        let t = ClusterTiming::default();
        assert!(t.retention > t.lease + t.lapse_grace);
        assert!(t.call_timeout < t.heartbeat);
        assert!(t.heartbeat * 2 < t.lease);
    }
}
