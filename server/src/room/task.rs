//! The room task: the thin async driver of a [`RoomCore`].
//!
//! It sleeps until the core's next deadline (or shutdown), then, at that tick boundary,
//! hands the core any new asset version, the commands waiting in the room's bounded queue
//! (at most one queue's worth per tick, so a flood cannot starve the tick) and the
//! current time. It measures how long each tick takes, for the metrics. Everything the
//! room decides is in the core; nothing here awaits a client.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tracing::{Instrument, info, info_span};

use super::core::{Parts, RoomCore};
use super::directory::{Directory, RoomHandle, RoomShared};
use super::{Command, RoomContext};
use crate::assets::Assets;
use crate::game::Game;

/// The assets a room of game `G` follows.
pub type AssetWatch<G> = watch::Receiver<Arc<Assets<<G as Game>::Assets>>>;

/// Starts a room task and returns its handle.
pub fn spawn<G: Game>(
    name: Arc<str>,
    ctx: RoomContext,
    mut assets: AssetWatch<G>,
    directory: &Arc<Directory>,
) -> RoomHandle {
    let mut seed = [0u8; 8];
    // A fixed seed is as good as any if the OS RNG fails; the seed is logged either way.
    let _ = getrandom::fill(&mut seed);
    let current = Arc::clone(&assets.borrow_and_update());
    let (handle, rx, core) = build::<G>(
        Arc::clone(&name),
        &ctx,
        current,
        directory,
        u64::from_le_bytes(seed),
        Instant::now(),
    );
    ctx.metrics.rooms_open.inc();
    let span = info_span!("room", room = %name);
    tokio::spawn(run(core, rx, assets, ctx).instrument(span));
    handle
}

/// How the server opens rooms of game `G`: the one place the game's type meets the
/// directory, which only sees [`RoomHandle`]s.
pub fn opener<G: Game>(ctx: RoomContext, assets: AssetWatch<G>) -> super::RoomOpener {
    Box::new(move |name, directory| spawn::<G>(name, ctx.clone(), assets.clone(), directory))
}

/// A room and its handle, not yet running: [`spawn`] drives it with a timer, the harness
/// drives it by hand.
pub(super) fn build<G: Game>(
    name: Arc<str>,
    ctx: &RoomContext,
    assets: Arc<Assets<G::Assets>>,
    directory: &Arc<Directory>,
    seed: u64,
    now: Instant,
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
    (handle, rx, RoomCore::new(parts, assets, seed, now))
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
) {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let deadline = tokio::time::Instant::from_std(core.poll_timeout());
        tokio::select! {
            biased;
            () = crate::shutdown::signalled(&mut shutdown) => break,
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
        if core.is_closed() {
            break;
        }
    }
    ctx.metrics.rooms_open.dec();
    info!("room closed");
}
