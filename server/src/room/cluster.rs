//! A room's side of the cluster (cluster mode only): what its driver ([`super::task`])
//! does with the directory on the room's behalf, so the core stays pure and the tick
//! never waits for Redis.
//!
//! - [`Writer`]: one task per room that writes the room's members and checkpoints
//!   through the node's [`Agent`], one call at a time. The room hands it the newest of
//!   each without waiting and an older one not yet written is replaced (newest wins):
//!   members go as the whole list ([`MemberChange::Sync`]), so whichever write lands last
//!   is right. Every write is fenced by the room's claim; the agent writes nothing once
//!   the claim has lapsed or is lost.
//! - [`ClusterRoom::after_tick`]: a checkpoint every `checkpoint_interval`, the player
//!   count for the heartbeat, and the claim's status: re-taken after an outage (members
//!   and a checkpoint again, Redis may have lost them), or lost (the room moves out to
//!   where it lives now: `moved`, close 1012).
//! - [`ClusterRoom::hand_off`]: the drain: final members and checkpoint under the claim,
//!   release, placement on another node, `moved`.
//!
//! Must not decide anything about players or the game (the core does), nor where rooms
//! go (the matchmaker does).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::core::RoomCore;
use super::directory::Directory;
use crate::cluster::matchmaking::{Decision, decide};
use crate::cluster::{
    Agent, DirectoryError, FencedWrite, LeaseStatus, LossReason, MatchOutcome, MemberChange,
    Release, RoomState,
};
use crate::game::Game;
use crate::metrics::Metrics;

/// What a room needs to live in a cluster.
#[derive(Debug, Clone)]
pub struct RoomCluster {
    /// The node's agent: claims, leases, fenced writes.
    pub agent: Arc<Agent>,
    /// Becomes true when the node drains: every room hands itself over.
    pub handoff: watch::Receiver<bool>,
}

/// Members and a checkpoint waiting to be written.
#[derive(Debug, Default)]
struct Pending {
    members: Option<Vec<String>>,
    checkpoint: Option<Vec<u8>>,
    /// Write what is pending, then stop.
    finished: bool,
    /// An over-size checkpoint was reported once already.
    too_large_said: bool,
}

/// See the module docs. Shared by the room's driver (which hands work over) and the
/// writer task (which does it).
#[derive(Debug)]
struct Writer {
    room: Arc<str>,
    agent: Arc<Agent>,
    pending: Mutex<Pending>,
    wake: Notify,
}

/// Pause after a failed member write before it is tried again.
const MEMBER_RETRY: Duration = Duration::from_millis(500);

impl Writer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn members(&self, list: Vec<String>) {
        self.lock().members = Some(list);
        self.wake.notify_one();
    }

    fn checkpoint(&self, bytes: Vec<u8>) {
        self.lock().checkpoint = Some(bytes);
        self.wake.notify_one();
    }

    fn finish(&self) {
        self.lock().finished = true;
        self.wake.notify_one();
    }

    async fn run(self: Arc<Self>) {
        loop {
            let (members, checkpoint, finished) = {
                let mut p = self.lock();
                (p.members.take(), p.checkpoint.take(), p.finished)
            };
            if members.is_none() && checkpoint.is_none() {
                if finished {
                    return;
                }
                self.wake.notified().await;
                continue;
            }
            if let Some(list) = members
                && let Err(e) = self
                    .agent
                    .members(&self.room, MemberChange::Sync(&list))
                    .await
            {
                debug!(error = %e, "cluster: members not written");
                // Tried again later, unless newer ones came meanwhile; a re-take after an
                // outage sends them again anyway.
                if !finished {
                    self.lock().members.get_or_insert(list);
                    tokio::time::sleep(MEMBER_RETRY).await;
                }
            }
            if let Some(bytes) = checkpoint {
                self.write_checkpoint(&bytes).await;
            }
        }
    }

    async fn write_checkpoint(&self, bytes: &[u8]) {
        match self.agent.write_checkpoint(&self.room, bytes).await {
            Ok(_) => {}
            Err(e @ DirectoryError::CheckpointTooLarge { .. }) => {
                if !std::mem::replace(&mut self.lock().too_large_said, true) {
                    warn!(error = %e, "cluster: the room's checkpoint is over the limit; it cannot move");
                }
            }
            Err(e) => debug!(error = %e, "cluster: checkpoint not written"),
        }
    }
}

/// How a clustered room ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Idle: its claim is released for good.
    Idle,
    /// The server shuts down: a last checkpoint; leaving the directory hands it over.
    Shutdown,
    /// It lives elsewhere now (lost or handed over): nothing more is written.
    MovedOut,
}

/// A room's cluster state, kept by its driver.
#[derive(Debug)]
pub(super) struct ClusterRoom {
    name: Arc<str>,
    agent: Arc<Agent>,
    metrics: Arc<Metrics>,
    writer: Arc<Writer>,
    task: Option<JoinHandle<()>>,
    interval: Duration,
    next_checkpoint: Instant,
    /// The claim's re-take count last seen.
    retaken: u64,
    /// The members last reported, to send again after a re-take.
    members: Vec<String>,
    /// The claim was serving at the last tick: writes made while it was not were
    /// dropped, and go again when it serves again.
    serving: bool,
}

impl ClusterRoom {
    /// Starts the room's writer. Must be called inside a tokio runtime.
    pub(super) fn start(
        name: Arc<str>,
        cluster: &RoomCluster,
        metrics: Arc<Metrics>,
        now: Instant,
    ) -> Self {
        let agent = Arc::clone(&cluster.agent);
        let writer = Arc::new(Writer {
            room: Arc::clone(&name),
            agent: Arc::clone(&agent),
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        });
        let task = tokio::spawn(Arc::clone(&writer).run());
        let interval = agent.directory().timing().checkpoint_interval;
        let retaken = agent.status(&name, now).map_or(0, |l| l.retaken);
        ClusterRoom {
            name,
            agent,
            metrics,
            writer,
            task: Some(task),
            interval,
            next_checkpoint: now,
            retaken,
            members: Vec::new(),
            serving: true,
        }
    }

    /// After each tick: members when they changed, a checkpoint when one is due (or when
    /// the claim was re-taken, or serves again after a lapse: both again), the player
    /// count. `Some` when the claim is lost: the room must move out.
    pub(super) fn after_tick<G: Game>(
        &mut self,
        core: &mut RoomCore<G>,
        now: Instant,
    ) -> Option<LossReason> {
        let lease = self.agent.status(&self.name, now)?;
        if let LeaseStatus::Lost(reason) = lease.status {
            return Some(reason);
        }
        let retaken = std::mem::replace(&mut self.retaken, lease.retaken) != lease.retaken;
        let serving = lease.status.serving();
        let resend = retaken || (serving && !std::mem::replace(&mut self.serving, serving));
        self.serving = serving;
        if let Some(members) = core.poll_members() {
            self.members = members;
            self.writer.members(self.members.clone());
        } else if resend {
            self.writer.members(self.members.clone());
        }
        if serving && (resend || now >= self.next_checkpoint) {
            self.next_checkpoint = now + self.interval;
            self.writer.checkpoint(core.checkpoint());
            let players = u32::try_from(core.player_count()).unwrap_or(u32::MAX);
            self.agent.set_players(&self.name, players);
        }
        None
    }

    /// The claim is lost (another node holds the room, or it lapsed past the grace): the
    /// room leaves this node and its members are sent where it lives now, if that can be
    /// found out.
    pub(super) async fn move_out<G: Game>(
        &mut self,
        core: &mut RoomCore<G>,
        directory: &Directory,
        reason: LossReason,
    ) {
        directory.evict(&self.name);
        self.finish_writer().await;
        let to = self.where_it_lives().await;
        warn!(
            ?reason,
            to = to.as_deref().unwrap_or("-"),
            "cluster: room lost; moving its players"
        );
        core.move_out(to.as_deref());
        self.agent.forget(&self.name);
        self.metrics.room_moved_out("lease_lost", to.is_some());
    }

    /// The node drains: the room's final state is written under its claim, the claim is
    /// handed over, a node is chosen to reopen the room, and every member is sent there.
    /// When a step fails the members are closed with 1012 alone; the room then reopens
    /// from its last checkpoint when they come back through `/match`.
    pub(super) async fn hand_off<G: Game>(
        &mut self,
        core: &mut RoomCore<G>,
        directory: &Directory,
    ) {
        directory.evict(&self.name);
        self.finish_writer().await;
        if core.player_count() == 0 && core.session_count() == 0 {
            let _ = self.agent.release(&self.name, Release::Close).await;
            core.move_out(None);
            return;
        }
        let members = core.member_accounts();
        let saved = self.save_final(&members, &core.checkpoint()).await;
        let to = match saved {
            Ok(()) => {
                if let Err(e) = self.agent.release(&self.name, Release::HandOff).await {
                    warn!(error = %e, "cluster: hand-off not confirmed; the claim lapses instead");
                }
                self.destination(members.first().map(String::as_str)).await
            }
            Err(why) => {
                warn!(%why, "cluster: the room's final state was not saved; it reopens from its last checkpoint");
                self.agent.forget(&self.name);
                None
            }
        };
        info!(
            to = to.as_deref().unwrap_or("-"),
            players = members.len(),
            "cluster: room handed over"
        );
        core.move_out(to.as_deref());
        self.metrics.room_moved_out("handoff", to.is_some());
    }

    /// The room's task ends: what is left to do with its claim.
    pub(super) async fn end<G: Game>(
        mut self,
        core: &mut RoomCore<G>,
        directory: &Directory,
        ending: Ending,
    ) {
        match ending {
            Ending::Idle => {
                self.finish_writer().await;
                if let Err(e) = self.agent.release(&self.name, Release::Close).await {
                    debug!(error = %e, "cluster: release not confirmed; the claim lapses instead");
                }
            }
            Ending::Shutdown => {
                if self
                    .agent
                    .status(&self.name, Instant::now())
                    .is_some_and(|l| l.status.serving())
                {
                    self.writer.checkpoint(core.checkpoint());
                }
                self.finish_writer().await;
            }
            Ending::MovedOut => self.finish_writer().await,
        }
        directory.closed(&self.name);
    }

    /// Lets the writer write what is pending and waits for it to stop (bounded: each call
    /// gives up within the call timeout).
    async fn finish_writer(&mut self) {
        self.writer.finish();
        if let Some(task) = self.task.take() {
            let bound = self.agent.directory().timing().call_timeout * 4;
            if tokio::time::timeout(bound, task).await.is_err() {
                debug!("cluster: the room's writer did not finish in time");
            }
        }
    }

    async fn save_final(&self, members: &[String], checkpoint: &[u8]) -> Result<(), String> {
        let written = |r: Result<Option<FencedWrite>, DirectoryError>| match r {
            Ok(Some(FencedWrite::Written)) => Ok(()),
            Ok(other) => Err(format!("refused: {other:?}")),
            Err(e) => Err(e.to_string()),
        };
        written(
            self.agent
                .members(&self.name, MemberChange::Sync(members))
                .await,
        )?;
        written(self.agent.write_checkpoint(&self.name, checkpoint).await)
    }

    /// Where the room reopens: placed by the matchmaker for one of its members (who is
    /// then told to resume there), else the node it would choose.
    async fn destination(&self, member: Option<&str>) -> Option<String> {
        let directory = self.agent.directory();
        if let Some(account) = member {
            return match directory.match_player(account, Some(&self.name)).await {
                Ok(MatchOutcome::Assigned(a)) => Some(a.play_url()),
                other => {
                    debug!(?other, "cluster: no node to hand the room to");
                    None
                }
            };
        }
        let snap = directory.snapshot(None).await.ok()?;
        match decide(&snap, Some(&self.name), snap.now_ms) {
            Decision::Join { node, .. } | Decision::Open { node, .. } => snap
                .node(&node)
                .map(|n| format!("{}/play?room={}", n.url, self.name)),
            Decision::OpenNew { .. } | Decision::NoCapacity => None,
        }
    }

    /// The `/play` URL of the room on the node that serves it now, if another does.
    async fn where_it_lives(&self) -> Option<String> {
        let directory = self.agent.directory();
        let at = directory.where_is(&self.name).await.ok()??;
        let served = matches!(at.state, RoomState::Owned | RoomState::Placed);
        let elsewhere = at.node.as_deref().is_some_and(|n| n != directory.node_id());
        let url = at.url.filter(|_| served && elsewhere)?;
        Some(format!("{url}/play?room={}", self.name))
    }
}
