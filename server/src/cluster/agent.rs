//! [`Agent`]: the node's side of the cluster, driving [`Lease`]s from the heartbeat.
//!
//! It keeps what this node holds (its registration and each claimed room, with its epoch
//! and lease), sends one heartbeat per `heartbeat` period that renews all of them at
//! once, and feeds each answer to the rooms' leases: renewed, re-taken after an outage
//! (Redis restarted, or the node was cut off and nobody claimed the room meanwhile), or
//! lost to a higher epoch. When Redis is unreachable every lease is told so and runs out
//! on the node's clock (held → renewing → lapsed → lost past the grace).
//!
//! The node registers with its first heartbeat ([`Agent::beat`], then [`Agent::run`]
//! every period); claims need that registration. Rooms read their lease with
//! [`Agent::status`] (on their own tick: it only takes a lock); [`Agent::changes`] wakes
//! whoever waits for a change. Checkpoints and member changes go through the agent so a
//! refusal (a higher epoch) ends the lease at once.
//!
//! Must not run rooms or decide matchmaking; it never holds its lock across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::watch;
use tracing::{info, warn};

use super::lease::{Lease, LeaseRules, LeaseStatus};
use super::{
    Claim, ClusterDirectory, DirectoryError, FencedWrite, HeldClaim, MemberChange, NodeReport,
    Registration, Release, RenewOutcome,
};
use crate::metrics::Metrics;

/// A room this node holds.
#[derive(Debug)]
struct HeldRoom {
    lease: Lease,
    capacity: u32,
    players: u32,
    /// Status at the last refresh, to see changes.
    status: LeaseStatus,
    retaken: u64,
}

#[derive(Debug)]
struct AgentState {
    /// The registration's lease, once the directory confirmed one, and its status at the
    /// last refresh.
    node: Option<(Lease, LeaseStatus)>,
    rooms: BTreeMap<String, HeldRoom>,
    max_rooms: u32,
    room_capacity: u32,
    draining: bool,
}

/// A room's claim as the agent holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLease {
    /// Fencing epoch of the claim.
    pub epoch: u64,
    /// Its status now.
    pub status: LeaseStatus,
    /// Times the claim was re-taken after a lapse or a loss of Redis' data. When it
    /// changes, the directory may have missed member changes: send
    /// [`MemberChange::Sync`] and a checkpoint.
    pub retaken: u64,
}

/// See the module docs.
#[derive(Debug)]
pub struct Agent {
    directory: Arc<ClusterDirectory>,
    rules: LeaseRules,
    metrics: Arc<Metrics>,
    state: Mutex<AgentState>,
    /// Bumped whenever a room's lease status changes. A `watch`: one value, the newest
    /// wins, so a slow reader only sees that something changed and reads the statuses.
    changes: watch::Sender<u64>,
}

impl Agent {
    /// An agent for this node: rooms of `room_capacity` seats, at most `max_rooms`.
    pub fn new(
        directory: Arc<ClusterDirectory>,
        metrics: Arc<Metrics>,
        max_rooms: u32,
        room_capacity: u32,
    ) -> Arc<Agent> {
        let t = directory.timing();
        let rules = LeaseRules {
            lease: t.lease,
            margin: t.lease_margin,
            lapse_grace: t.lapse_grace,
        };
        Arc::new(Agent {
            directory,
            rules,
            metrics,
            state: Mutex::new(AgentState {
                node: None,
                rooms: BTreeMap::new(),
                max_rooms,
                room_capacity,
                draining: false,
            }),
            changes: watch::channel(0).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, AgentState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The directory this agent drives.
    pub fn directory(&self) -> &Arc<ClusterDirectory> {
        &self.directory
    }

    /// A receiver woken when any room's lease status changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Claims `room` and, when won, holds it from now on. A checkpoint in the answer is
    /// the state to reopen the room from.
    pub async fn claim(&self, room: &str) -> Result<Claim, DirectoryError> {
        let capacity = self.lock().room_capacity;
        let sent = Instant::now();
        let claim = self.directory.claim(room, capacity).await?;
        if let Claim::Won { epoch, .. } | Claim::Held { epoch, .. } = &claim {
            let lease = Lease::granted(*epoch, sent, self.rules);
            let held = HeldRoom {
                lease,
                capacity,
                players: 0,
                status: LeaseStatus::Held,
                retaken: 0,
            };
            self.lock().rooms.insert(room.to_owned(), held);
        }
        Ok(claim)
    }

    /// Stops renewing `room` and releases it. Without an answer from Redis the claim
    /// still ends: it is no longer renewed and lapses within the lease.
    pub async fn release(&self, room: &str, how: Release) -> Result<(), DirectoryError> {
        let Some(held) = self.lock().rooms.remove(room) else {
            return Ok(());
        };
        self.directory
            .release(room, held.lease.epoch(), how)
            .await
            .map(drop)
    }

    /// Forgets a room whose lease is lost, once the room has stopped.
    pub fn forget(&self, room: &str) {
        self.lock().rooms.remove(room);
    }

    /// `room`'s claim now, if this node holds it.
    pub fn status(&self, room: &str, now: Instant) -> Option<RoomLease> {
        let mut state = self.lock();
        let held = state.rooms.get_mut(room)?;
        Some(RoomLease {
            epoch: held.lease.epoch(),
            status: held.lease.poll(now),
            retaken: held.retaken,
        })
    }

    /// Every room held, with its claim now.
    pub fn rooms(&self, now: Instant) -> Vec<(String, RoomLease)> {
        let mut state = self.lock();
        state
            .rooms
            .iter_mut()
            .map(|(name, held)| {
                let lease = RoomLease {
                    epoch: held.lease.epoch(),
                    status: held.lease.poll(now),
                    retaken: held.retaken,
                };
                (name.clone(), lease)
            })
            .collect()
    }

    /// The registration's status now (`None` before the first confirmed heartbeat).
    pub fn node_status(&self, now: Instant) -> Option<LeaseStatus> {
        self.lock().node.as_mut().map(|(l, _)| l.poll(now))
    }

    /// Players in `room`, reported with the next heartbeat.
    pub fn set_players(&self, room: &str, players: u32) {
        if let Some(held) = self.lock().rooms.get_mut(room) {
            held.players = players;
        }
    }

    /// Draining: reported with the next heartbeat; the directory then gives this node no
    /// new rooms.
    pub fn set_draining(&self, draining: bool) {
        self.lock().draining = draining;
    }

    /// Writes `room`'s checkpoint under its claim. A refusal by a higher epoch loses the
    /// lease at once. `None` (nothing sent) unless the room's lease is serving (held or
    /// renewing): a lapsed room writes nothing.
    pub async fn write_checkpoint(
        &self,
        room: &str,
        bytes: &[u8],
    ) -> Result<Option<FencedWrite>, DirectoryError> {
        self.fenced(room, |epoch| {
            self.directory.write_checkpoint(room, epoch, bytes)
        })
        .await
    }

    /// Records a member change of `room` under its claim; like [`Agent::write_checkpoint`].
    pub async fn members(
        &self,
        room: &str,
        change: MemberChange<'_>,
    ) -> Result<Option<FencedWrite>, DirectoryError> {
        self.fenced(room, |epoch| self.directory.members(room, epoch, change))
            .await
    }

    async fn fenced<F, Fut>(
        &self,
        room: &str,
        write: F,
    ) -> Result<Option<FencedWrite>, DirectoryError>
    where
        F: FnOnce(u64) -> Fut,
        Fut: Future<Output = Result<FencedWrite, DirectoryError>>,
    {
        let Some(epoch) = self.serving_epoch(room) else {
            return Ok(None);
        };
        let outcome = write(epoch).await?;
        self.note_fenced(room, epoch, &outcome);
        Ok(Some(outcome))
    }

    fn serving_epoch(&self, room: &str) -> Option<u64> {
        let mut state = self.lock();
        let held = state.rooms.get_mut(room)?;
        let serving = held.lease.poll(Instant::now()).serving();
        serving.then(|| held.lease.epoch())
    }

    fn note_fenced(&self, room: &str, epoch: u64, outcome: &FencedWrite) {
        if let FencedWrite::Superseded { epoch: current, .. } = outcome {
            let mut state = self.lock();
            if let Some(held) = state
                .rooms
                .get_mut(room)
                .filter(|h| h.lease.epoch() == epoch)
            {
                held.lease.superseded(*current);
            }
            drop(state);
            self.refresh(Instant::now());
        }
    }

    /// Sends one heartbeat now and applies its answer.
    pub async fn beat(&self) {
        let sent = Instant::now();
        let (report, claims) = self.report(sent);
        let answer = self.directory.heartbeat(&report, &claims).await;
        match answer {
            Ok(registration) => self.apply(sent, &claims, &registration),
            Err(e) => {
                if matches!(e, DirectoryError::NodeIdInUse(_)) {
                    warn!(error = %e, "cluster: heartbeat refused");
                }
                let now = Instant::now();
                let mut state = self.lock();
                if let Some((node, _)) = state.node.as_mut() {
                    node.unanswered(now);
                }
                for held in state.rooms.values_mut() {
                    held.lease.unanswered(now);
                }
            }
        }
        self.refresh(Instant::now());
    }

    fn report(&self, now: Instant) -> (NodeReport, Vec<HeldClaim>) {
        let mut state = self.lock();
        let claims: Vec<HeldClaim> = state
            .rooms
            .iter_mut()
            .filter_map(|(room, h)| {
                let lost = matches!(h.lease.poll(now), LeaseStatus::Lost(_));
                (!lost).then(|| HeldClaim {
                    room: room.clone(),
                    epoch: h.lease.epoch(),
                    capacity: h.capacity,
                })
            })
            .collect();
        let report = NodeReport {
            max_rooms: state.max_rooms,
            room_capacity: state.room_capacity,
            rooms: u32::try_from(claims.len()).unwrap_or(u32::MAX),
            players: state.rooms.values().map(|h| h.players).sum(),
            draining: state.draining,
        };
        (report, claims)
    }

    fn apply(&self, sent: Instant, claims: &[HeldClaim], answer: &Registration) {
        let mut state = self.lock();
        match state.node.as_mut() {
            Some((node, LeaseStatus::Held | LeaseStatus::Renewing | LeaseStatus::Lapsed)) => {
                node.confirmed(sent);
            }
            // First registration, or one given up after a long outage: a fresh lease.
            _ => state.node = Some((Lease::granted(0, sent, self.rules), LeaseStatus::Held)),
        }
        if answer.registered_anew {
            info!(node = self.directory.node_id(), "cluster: registered");
        }
        let mut renewed = 0;
        for (claim, outcome) in claims.iter().zip(&answer.rooms) {
            // The room may have been released, or claimed again, while the call ran.
            let Some(held) = state
                .rooms
                .get_mut(&claim.room)
                .filter(|h| h.lease.epoch() == claim.epoch)
            else {
                continue;
            };
            match outcome {
                RenewOutcome::Renewed => {
                    held.lease.confirmed(sent);
                    renewed += 1;
                }
                RenewOutcome::Reacquired => {
                    info!(room = %claim.room, epoch = claim.epoch, "cluster: claim re-taken");
                    held.lease.confirmed(sent);
                    held.retaken += 1;
                    renewed += 1;
                }
                RenewOutcome::Lost { epoch, owner } => {
                    warn!(room = %claim.room, mine = claim.epoch, epoch, ?owner,
                        "cluster: room claimed by another node");
                    held.lease.superseded(*epoch);
                }
            }
        }
        drop(state);
        self.metrics.lease_renewed("node", 1);
        self.metrics.lease_renewed("room", renewed);
    }

    /// Re-reads every lease at `now`; counts and announces the changes.
    fn refresh(&self, now: Instant) {
        let mut changed = false;
        let mut state = self.lock();
        if let Some((node, seen)) = state.node.as_mut() {
            let status = node.poll(now);
            if let LeaseStatus::Lost(reason) = status
                && *seen != status
            {
                self.metrics.lease_lost("node", reason.label());
                warn!(?reason, "cluster: node registration lost");
            }
            *seen = status;
        }
        for (room, held) in &mut state.rooms {
            let status = held.lease.poll(now);
            if status == held.status {
                continue;
            }
            changed = true;
            if let LeaseStatus::Lost(reason) = status
                && reason != super::lease::LossReason::Released
            {
                self.metrics.lease_lost("room", reason.label());
                warn!(room = %room, ?reason, "cluster: room lease lost");
            }
            held.status = status;
        }
        drop(state);
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Heartbeats every period until `shutdown`, then hands over whatever is still held
    /// and leaves the directory.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.directory.timing().heartbeat);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = crate::shutdown::signalled(&mut shutdown) => break,
                _ = every.tick() => self.beat().await,
            }
        }
        let (_, claims) = self.report(Instant::now());
        match self.directory.deregister(&claims).await {
            Ok(n) => info!(handed_over = n, "cluster: left the directory"),
            Err(e) => warn!(error = %e, "cluster: could not leave the directory; its leases lapse"),
        }
        self.lock().rooms.clear();
    }
}
