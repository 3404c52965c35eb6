//! This process as a node of a cluster (`--redis-url`): its [`Agent`] (registration,
//! heartbeat, leases), how `/play` places a player under a claim or sends it to the
//! room's owner (421), `/match`, the drain that hands every room to other nodes, and
//! what the admin port shows of it.
//!
//! - **Placement** ([`ClusterNode::place`]): a room already open here takes the player
//!   (new players only while the room's claim is serving: a lapsed room keeps those it
//!   has); otherwise the room is claimed first — won: opened here, from its checkpoint
//!   if it has one; served elsewhere: [`ClusterError::WrongNode`] with that node's URL.
//!   Rooms placed without a name get a cluster-unique one. A room closing here is waited
//!   for (briefly) and then claimed again.
//! - **Drain** ([`ClusterNode::drain`]): readiness off, no new players here, the node
//!   reported draining at once (so `/match` stops choosing it), then every room hands
//!   itself over ([`crate::room::cluster`]).
//!
//! The edge (`connection`, `matching`), the admin port and `server` call it; rooms get a
//! [`RoomCluster`] from it. Must not run rooms, decide matchmaking or write HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::auth::Identity;
use crate::cluster::{
    Agent, Assignment, Claim, ClusterConfig, ClusterDirectory, DirectoryError, LeaseStatus,
    MatchOutcome, Release,
};
use crate::metrics::Metrics;
use crate::room::cluster::RoomCluster;
use crate::room::{Directory, Opening, PlaceError, Placement, Reservation};

/// Pause between looks at a room that is closing here, while a handshake waits for it.
const CLOSING_RETRY: Duration = Duration::from_millis(20);

/// Why the cluster could not place a player.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// Another live node serves the room: 421 `wrong_node` with its `/play` URL.
    #[error("the room is served by another node: {url}")]
    WrongNode {
        /// The room's `/play` URL on the node that serves it.
        url: String,
    },
    /// The directory did not answer, or this node is not registered in it: 503
    /// `directory_unavailable`.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// No seat here (full, draining, closing).
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// No node of the cluster can take a room: 503 `no_capacity`.
    #[error("no node can take another room")]
    NoCapacity,
}

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Rooms open here when it began.
    pub rooms: usize,
    /// Rooms still here when it returned (their hand-off outlasted the deadline).
    pub remaining: usize,
}

/// See the module docs.
#[derive(Debug)]
pub struct ClusterNode {
    agent: Arc<Agent>,
    /// Flipped to true once, by the drain; every room's task watches it.
    handoff: watch::Sender<bool>,
}

impl ClusterNode {
    /// This node's client of the directory at `config.redis_url`, announcing
    /// `public_url`, for rooms of `room_capacity` seats, at most `max_rooms` of them.
    /// Nothing is sent yet ([`ClusterNode::run_agent`] registers). Must be called inside a
    /// tokio runtime.
    pub fn new(
        config: &ClusterConfig,
        public_url: String,
        metrics: Arc<Metrics>,
        max_rooms: usize,
        room_capacity: u16,
    ) -> Result<Arc<ClusterNode>, DirectoryError> {
        let directory = ClusterDirectory::new(config, public_url, Arc::clone(&metrics))?;
        let max_rooms = u32::try_from(max_rooms).unwrap_or(u32::MAX);
        let agent = Agent::new(
            Arc::new(directory),
            metrics,
            max_rooms,
            u32::from(room_capacity),
        );
        Ok(Arc::new(ClusterNode {
            agent,
            handoff: watch::channel(false).0,
        }))
    }

    /// Registers the node and heartbeats until `stop`, then leaves the directory
    /// (handing over whatever rooms are still held).
    pub fn run_agent(&self, stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(Arc::clone(&self.agent).run(stop))
    }

    /// What a room of this node needs to live in the cluster.
    pub fn room_cluster(&self) -> RoomCluster {
        RoomCluster {
            agent: Arc::clone(&self.agent),
            handoff: self.handoff.subscribe(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        self.agent.directory().node_id()
    }

    /// Bound on one directory call.
    pub fn call_timeout(&self) -> Duration {
        self.agent.directory().timing().call_timeout
    }

    /// A seat for `identity` as `placement` asks, in a room this node serves: see the
    /// module docs. Waits for a room closing here until `deadline` at most.
    pub async fn place(
        &self,
        directory: &Arc<Directory>,
        identity: &Identity,
        placement: &Placement,
        deadline: Instant,
    ) -> Result<Reservation, ClusterError> {
        loop {
            match self.try_place(directory, identity, placement).await {
                Err(ClusterError::Place(PlaceError::Closing))
                    if Instant::now() + CLOSING_RETRY < deadline =>
                {
                    tokio::time::sleep(CLOSING_RETRY).await;
                }
                other => return other,
            }
        }
    }

    async fn try_place(
        &self,
        directory: &Arc<Directory>,
        identity: &Identity,
        placement: &Placement,
    ) -> Result<Reservation, ClusterError> {
        let (sub, role) = (identity.sub.as_str(), identity.role);
        if let Some(r) = directory.reserve_here(sub, role, placement)? {
            return self.admitted(r);
        }
        let (name, opening) = match placement {
            Placement::Named(name) => (name.clone(), self.claim(name).await?),
            Placement::Auto => self.claim_new(directory).await?,
        };
        directory
            .reserve_opening(sub, role, &name, opening)
            .map_err(|e| {
                if !directory.is_open(&name) {
                    // Claimed but not opened (this node is at its room limit): give the
                    // claim back rather than hold a room nobody serves.
                    let agent = Arc::clone(&self.agent);
                    tokio::spawn(async move { agent.release(&name, Release::Close).await });
                }
                e.into()
            })
    }

    /// A reservation in a room open here: new players only while its claim serves.
    fn admitted(&self, r: Reservation) -> Result<Reservation, ClusterError> {
        if r.claim.is_none() {
            // The account's player is in this room already: it resumes.
            return Ok(r);
        }
        match self.agent.status(&r.room.name, Instant::now()) {
            Some(lease) if lease.status.serving() => Ok(r),
            _ => Err(DirectoryError::Unavailable(
                "the room's claim is not confirmed by the directory; it takes no new players until it is"
                    .into(),
            )
            .into()),
        }
    }

    /// Claims `room` for this node: how to open it, or where it is served.
    async fn claim(&self, room: &str) -> Result<Opening, ClusterError> {
        match self.agent.claim(room).await? {
            Claim::Won { checkpoint, .. } | Claim::Held { checkpoint, .. } => {
                Ok(checkpoint.map_or(Opening::Fresh, |c| Opening::Restore(c.bytes)))
            }
            Claim::Elsewhere { url, .. } => Err(ClusterError::WrongNode {
                url: format!("{url}/play?room={room}"),
            }),
            Claim::Unregistered => Err(DirectoryError::Unavailable(
                "this node is not registered in the cluster directory".into(),
            )
            .into()),
            Claim::Draining => Err(PlaceError::Draining.into()),
        }
    }

    /// A new room with a cluster-unique name, claimed.
    async fn claim_new(&self, directory: &Directory) -> Result<(String, Opening), ClusterError> {
        if !directory.has_room_for_another() {
            return Err(PlaceError::NoRoom.into());
        }
        // A random name is taken elsewhere only by a freak collision: try another.
        for _ in 0..3 {
            let name = crate::cluster::new_room_name();
            match self.claim(&name).await {
                Err(ClusterError::WrongNode { .. }) => continue,
                claimed => return claimed.map(|opening| (name, opening)),
            }
        }
        Err(ClusterError::NoCapacity)
    }

    /// `/match`: where `account` should play (`room`, or any room), with a seat held.
    pub async fn match_player(
        &self,
        account: &str,
        room: Option<&str>,
    ) -> Result<Assignment, ClusterError> {
        match self.agent.directory().match_player(account, room).await? {
            MatchOutcome::Assigned(a) => Ok(a),
            MatchOutcome::RoomFull => Err(PlaceError::RoomFull.into()),
            MatchOutcome::NoCapacity => Err(ClusterError::NoCapacity),
        }
    }

    /// Hands every room to other nodes: see the module docs. Returns once no room is
    /// left here, or after `within`.
    pub async fn drain(
        &self,
        directory: &Directory,
        ready: &AtomicBool,
        within: Duration,
    ) -> Drained {
        ready.store(false, Ordering::Release);
        directory.start_draining();
        self.agent.set_draining(true);
        // Reported now rather than at the next heartbeat: the hand-offs place the rooms
        // on other nodes, and `/match` must already pass this one by.
        self.agent.beat().await;
        let rooms = directory.rooms().len();
        info!(rooms, "cluster: draining; handing every room over");
        self.handoff.send_replace(true);
        let deadline = tokio::time::Instant::now() + within;
        while !directory.is_idle() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let remaining = directory.rooms().len();
        info!(rooms, remaining, "cluster: drained");
        Drained { rooms, remaining }
    }

    /// Whether the node is draining (or drained).
    pub fn draining(&self) -> bool {
        *self.handoff.borrow()
    }

    /// What `/admin/cluster` shows: this node, the claims it holds, and the whole
    /// directory as Redis has it now.
    pub async fn describe(&self) -> Result<serde_json::Value, DirectoryError> {
        let snapshot = self.agent.directory().snapshot(None).await?;
        let now = Instant::now();
        let held: Vec<_> = self
            .agent
            .rooms(now)
            .into_iter()
            .map(|(room, lease)| {
                json!({
                    "room": room,
                    "epoch": lease.epoch,
                    "lease": lease_label(lease.status),
                    "retaken": lease.retaken,
                })
            })
            .collect();
        let registration = self
            .agent
            .node_status(now)
            .map_or("unregistered", lease_label);
        Ok(json!({
            "node": self.node_id(),
            "url": self.agent.directory().public_url(),
            "registration": registration,
            "draining": self.draining(),
            "held": held,
            "directory": snapshot,
        }))
    }
}

/// A lease's status as the admin API names it.
fn lease_label(status: LeaseStatus) -> &'static str {
    match status {
        LeaseStatus::Held => "held",
        LeaseStatus::Renewing => "renewing",
        LeaseStatus::Lapsed => "lapsed",
        LeaseStatus::Lost(reason) => reason.label(),
    }
}
