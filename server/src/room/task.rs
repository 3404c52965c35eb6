//! The room task: the thin async driver of a [`RoomCore`].
//!
//! It sleeps until the core's next deadline (or shutdown), then, at that tick boundary,
//! hands the core any new asset version, the commands waiting in the room's bounded queue
//! (at most one queue's worth per tick, so a flood cannot starve the tick) and the
//! current time. It measures how long each tick takes, for the metrics. Everything the
//! room decides is in the core; nothing here awaits a client.
//!
//! In cluster mode it also keeps the room's [`ClusterRoom`]: after each tick it hands
//! the room's members and checkpoints to the room's directory writer and reads its claim;
//! a lost claim moves the room out, the node's drain hands it over, and an idle room
//! releases its claim as it ends. Those awaits happen only when the room is ending.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tracing::{Instrument, info, info_span, warn};

use super::cluster::{ClusterRoom, Ending, RoomCluster};
use super::core::{Parts, RoomCheckpoint, RoomCore};
use super::directory::{Directory, Opening, RoomHandle, RoomShared};
use super::{Command, RoomContext};
use crate::assets::Assets;
use crate::game::Game;

/// The assets a room of game `G` follows.
pub type AssetWatch<G> = watch::Receiver<Arc<Assets<<G as Game>::Assets>>>;

/// Starts a room task and returns its handle: a new game, or (cluster mode) the room
/// reopened from its checkpoint, afresh when the checkpoint cannot be used.
pub fn spawn<G: Game>(
    name: Arc<str>,
    ctx: RoomContext,
    mut assets: AssetWatch<G>,
    directory: &Arc<Directory>,
    opening: Opening,
    cluster: Option<RoomCluster>,
) -> RoomHandle {
    let mut seed = [0u8; 8];
    // A fixed seed is as good as any if the OS RNG fails; the seed is logged either way.
    let _ = getrandom::fill(&mut seed);
    let current = Arc::clone(&assets.borrow_and_update());
    let seed = u64::from_le_bytes(seed);
    let span = info_span!("room", room = %name);
    let restored = match opening {
        Opening::Fresh => None,
        Opening::Restore(bytes) => {
            let limit = cluster.as_ref().map_or(usize::MAX, |c| {
                c.agent.directory().timing().max_checkpoint_bytes
            });
            span.in_scope(|| read_checkpoint::<G>(&bytes, limit, &current, &ctx))
        }
    };
    let (handle, rx, core) = build::<G>(
        Arc::clone(&name),
        &ctx,
        current,
        directory,
        Instant::now(),
        |parts, assets, now| match restored {
            Some(checkpoint) => RoomCore::restore(parts, assets, checkpoint, now),
            None => RoomCore::new(parts, assets, seed, now),
        },
    );
    ctx.metrics.rooms_open.inc();
    let cluster = cluster.map(|c| {
        let room = ClusterRoom::start(
            Arc::clone(&name),
            &c,
            Arc::clone(&ctx.metrics),
            Instant::now(),
        );
        (room, c.handoff)
    });
    let directory = Arc::clone(directory);
    tokio::spawn(run(core, rx, assets, ctx, directory, cluster).instrument(span));
    handle
}

/// A room's checkpoint, if it can be used: within the cluster's size limit (checkpoints
/// are trusted, but bounded on read too), of this game, restorable over the assets in
/// force. Otherwise the room opens afresh, and says so.
fn read_checkpoint<G: Game>(
    bytes: &[u8],
    limit: usize,
    assets: &Assets<G::Assets>,
    ctx: &RoomContext,
) -> Option<RoomCheckpoint<G>> {
    let read = if bytes.len() > limit {
        Err(format!(
            "{} bytes, over the {limit}-byte limit",
            bytes.len()
        ))
    } else {
        RoomCheckpoint::read(bytes, assets).map_err(|e| e.to_string())
    };
    match read {
        Ok(checkpoint) => {
            ctx.metrics.room_reopened("restored");
            Some(checkpoint)
        }
        Err(why) => {
            warn!(%why, "the room's checkpoint cannot be used; it opens afresh");
            ctx.metrics.room_reopened("unreadable");
            None
        }
    }
}

/// How the server opens rooms of game `G`: the one place the game's type meets the
/// directory, which only sees [`RoomHandle`]s.
pub fn opener<G: Game>(ctx: RoomContext, assets: AssetWatch<G>) -> super::RoomOpener {
    clustered_opener::<G>(ctx, assets, None)
}

/// [`opener`] for a node of a cluster (`cluster` is `Some`) or a single node.
pub fn clustered_opener<G: Game>(
    ctx: RoomContext,
    assets: AssetWatch<G>,
    cluster: Option<RoomCluster>,
) -> super::RoomOpener {
    Box::new(move |name, directory, opening| {
        spawn::<G>(
            name,
            ctx.clone(),
            assets.clone(),
            directory,
            opening,
            cluster.clone(),
        )
    })
}

/// A room and its handle, not yet running: [`spawn`] drives it with a timer, the harness
/// drives it by hand. `core` makes the room from its parts (new, or restored).
pub(super) fn build<G: Game>(
    name: Arc<str>,
    ctx: &RoomContext,
    assets: Arc<Assets<G::Assets>>,
    directory: &Arc<Directory>,
    now: Instant,
    core: impl FnOnce(Parts, Arc<Assets<G::Assets>>, Instant) -> RoomCore<G>,
) -> (RoomHandle, mpsc::Receiver<Command>, RoomCore<G>) {
    let engine = &assets.engine;
    let seats = usize::from(engine.room_capacity) + usize::from(engine.spectator_capacity);
    let (tx, rx) = mpsc::channel((seats * ctx.limits.room_queue_per_player).max(64));
    let shared = Arc::new(RoomShared::new(
        engine.room_capacity,
        engine.spectator_capacity,
    ));
    let handle = RoomHandle {
        name: Arc::clone(&name),
        tx,
        shared: Arc::clone(&shared),
    };
    let parts = Parts {
        metrics: ctx.metrics.room(&name),
        traffic: super::fanout::ENCODINGS.map(|e| ctx.metrics.traffic(e)),
        stopwatch: Instant::now,
        name,
        shared,
        directory: Arc::clone(directory),
        limits: ctx.limits.clone(),
    };
    (handle, rx, core(parts, assets, now))
}

/// Feeds `core` the commands waiting in `rx`, one queue's worth at most.
pub(super) fn feed<G: Game>(
    core: &mut RoomCore<G>,
    rx: &mut mpsc::Receiver<Command>,
    now: Instant,
) {
    for _ in 0..rx.max_capacity() {
        let Ok(cmd) = rx.try_recv() else { break };
        core.handle_command(cmd, now);
    }
}

async fn run<G: Game>(
    mut core: RoomCore<G>,
    mut rx: mpsc::Receiver<Command>,
    mut assets: AssetWatch<G>,
    ctx: RoomContext,
    directory: Arc<Directory>,
    mut cluster: Option<(ClusterRoom, watch::Receiver<bool>)>,
) {
    let mut shutdown = ctx.shutdown.clone();
    // A single node never hands over: its "hand-off" signal never fires.
    let (_never, idle) = watch::channel(false);
    let mut handoff = cluster.as_ref().map_or(idle, |(_, h)| h.clone());
    let ending = loop {
        let deadline = tokio::time::Instant::from_std(core.poll_timeout());
        tokio::select! {
            biased;
            () = crate::shutdown::signalled(&mut shutdown) => break Ending::Shutdown,
            () = crate::shutdown::signalled(&mut handoff) => {
                if let Some((room, _)) = cluster.as_mut() {
                    room.hand_off(&mut core, &directory).await;
                }
                break Ending::MovedOut;
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
        let now = Instant::now();
        if assets.has_changed().unwrap_or(false) {
            core.apply_assets(Arc::clone(&assets.borrow_and_update()));
        }
        feed(&mut core, &mut rx, now);
        core.handle_timeout(now);
        core.metrics()
            .tick_seconds
            .observe(now.elapsed().as_secs_f64());
        if let Some((room, _)) = cluster.as_mut()
            && let Some(lost) = room.after_tick(&mut core, now)
        {
            room.move_out(&mut core, &directory, lost).await;
            break Ending::MovedOut;
        }
        if core.is_closed() {
            break Ending::Idle;
        }
    };
    if let Some((room, _)) = cluster {
        room.end(&mut core, &directory, ending).await;
    }
    ctx.metrics.rooms_open.dec();
    info!("room closed");
}
