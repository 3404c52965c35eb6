//! An in-memory room harness: a real [`RoomCore`] driven by hand, with a virtual clock,
//! without sockets, timers or a runtime.
//!
//! Joins, inputs and chat go through the room's own bounded command queue; time moves
//! only when the caller says so ([`RoomHarness::tick`] jumps to the next tick's deadline,
//! [`RoomHarness::advance`] by any amount), so a test of a 15 s grace period takes
//! microseconds and is exactly repeatable for a given seed. What the room sends is read
//! back from each client's [`Outbox`] and decoded, exactly as a session would frame it.
//!
//! Built only for tests and tools (`#[cfg(test)]` or the `harness` feature, which the
//! fuzz targets enable): it is not in the shipped binary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rallypoint_protocol::codec::{decode_server, encode_client};
use rallypoint_protocol::message::{ClientMessage, Input, ServerMessage};
use rallypoint_protocol::{CloseReason, Encoding, Subprotocol};
use tokio::sync::{mpsc, watch};

use super::core::{Parts, RoomCheckpoint, RoomCore};
use super::directory::{Directory, RoomHandle, Seat};
use super::outbox::{CloseRequest, Gone, Outbox};
use super::task::{build, feed};
use super::{Command, Join, RoomContext, SessionId};
use crate::arena::Arena;
use crate::arena::assets::ArenaAssets;
use crate::assets::Assets;
use crate::auth::Role;
use crate::config::Limits;
use crate::game::{Game, RestoreError};
use crate::metrics::{Metrics, RoomMetrics};

/// See the module docs. Generic over the game; the arena's is the default.
pub struct RoomHarness<G: Game = Arena> {
    core: RoomCore<G>,
    rx: mpsc::Receiver<Command>,
    handle: RoomHandle,
    directory: Arc<Directory>,
    assets: Option<Arc<Assets<G::Assets>>>,
    now: Instant,
    _shutdown: watch::Sender<bool>,
    next_session: SessionId,
}

impl<G: Game> std::fmt::Debug for RoomHarness<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHarness")
            .field("room", &self.handle.name)
            .finish_non_exhaustive()
    }
}

/// A client of the harness: a session id and its outbox.
#[derive(Debug, Clone)]
pub struct TestClient {
    /// Session id.
    pub session: SessionId,
    /// What the room sends this client.
    pub outbox: Arc<Outbox>,
    /// The client's encoding.
    pub encoding: Encoding,
}

/// Something a client received.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// A message (snapshots are assembled with this client's header, as on the wire).
    Message(ServerMessage),
    /// The room asked the session to close.
    Close(CloseReason),
}

impl TestClient {
    /// Takes everything pending: the close request (with its detail), then the raw
    /// messages, then the snapshot framed as the session frames it (none when the room
    /// asked for a close: the session does not send it).
    pub fn take_raw(&self) -> (Option<CloseRequest>, Vec<Bytes>) {
        let batch = self.outbox.take();
        let mut out: Vec<Bytes> = batch.messages.into_iter().collect();
        if let Some(s) = batch.snapshot.filter(|_| batch.close.is_none()) {
            let mut frame = bytes::BytesMut::new();
            s.write_to(&mut frame);
            out.push(frame.freeze());
        }
        (batch.close, out)
    }

    /// Takes and decodes everything pending: close request, ordered messages, snapshot.
    pub fn take(&self) -> Vec<Delivered> {
        let (close, raw) = self.take_raw();
        let mut out: Vec<Delivered> = close
            .map(|c| Delivered::Close(c.reason))
            .into_iter()
            .collect();
        out.extend(raw.iter().map(|m| {
            Delivered::Message(decode_server(self.encoding, m).expect("room output decodes"))
        }));
        out
    }

    /// Only the messages of [`TestClient::take`].
    pub fn messages(&self) -> Vec<ServerMessage> {
        self.take()
            .into_iter()
            .filter_map(|d| match d {
                Delivered::Message(m) => Some(m),
                Delivered::Close(_) => None,
            })
            .collect()
    }

    /// The connection drops abruptly (the player may resume).
    pub fn drop_connection(&self) {
        self.outbox.mark_gone(Gone::Dropped);
    }

    /// The session ends on purpose (the player leaves).
    pub fn leave(&self) {
        self.outbox.mark_gone(Gone::Left);
    }
}

impl RoomHarness<Arena> {
    /// An arena room named `harness` over `assets`, with a fixed seed.
    pub fn new(assets: Assets<ArenaAssets>, limits: Limits, seed: u64) -> RoomHarness<Arena> {
        RoomHarness::with_game(assets, limits, seed)
    }

    /// The arena's simulation.
    pub fn world(&self) -> &crate::arena::sim::World {
        self.core.game().world()
    }
}

impl<G: Game> RoomHarness<G> {
    /// A room of game `G` named `harness` over `assets`, with a fixed seed.
    pub fn with_game(assets: Assets<G::Assets>, limits: Limits, seed: u64) -> RoomHarness<G> {
        RoomHarness::open(assets, limits, |parts, assets, now| {
            RoomCore::new(parts, assets, seed, now)
        })
    }

    /// A room of game `G` named `harness` reopened from `checkpoint` (a
    /// [`RoomHarness::checkpoint`]), with its own clock and directory, as on another node.
    pub fn restore(
        assets: Assets<G::Assets>,
        limits: Limits,
        checkpoint: &[u8],
    ) -> Result<RoomHarness<G>, RestoreError> {
        let saved = RoomCheckpoint::read(checkpoint, &assets)?;
        Ok(RoomHarness::open(assets, limits, |parts, assets, now| {
            RoomCore::restore(parts, assets, saved, now)
        }))
    }

    fn open(
        assets: Assets<G::Assets>,
        limits: Limits,
        core: impl FnOnce(Parts, Arc<Assets<G::Assets>>, Instant) -> RoomCore<G>,
    ) -> RoomHarness<G> {
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let ctx = RoomContext {
            limits: limits.clone(),
            metrics: Arc::new(Metrics::new()),
            shutdown: shutdown_rx,
        };
        let directory = Directory::new(
            limits.max_rooms,
            Box::new(|_, _, _| unreachable!("the harness opens its one room itself")),
        );
        let now = Instant::now();
        let (handle, rx, core) = build::<G>(
            Arc::from("harness"),
            &ctx,
            Arc::new(assets),
            &directory,
            now,
            core,
        );
        RoomHarness {
            core,
            rx,
            handle,
            directory,
            assets: None,
            now,
            _shutdown: shutdown_tx,
            next_session: 1,
        }
    }

    /// Queues a join (applied on the next tick); returns the client.
    pub fn join(&mut self, sub: &str, role: Role, encoding: Encoding) -> TestClient {
        let subprotocol = match encoding {
            Encoding::MsgPack => Subprotocol::V1MsgPack,
            Encoding::Json => Subprotocol::V1Json,
        };
        self.join_with(sub, role, subprotocol)
    }

    /// Queues a join over `subprotocol` (v2 included; read its snapshots with
    /// [`TestClient::take_raw`]).
    pub fn join_with(&mut self, sub: &str, role: Role, subprotocol: Subprotocol) -> TestClient {
        let encoding = subprotocol.encoding();
        let session = self.next_session;
        self.next_session += 1;
        let outbox = Arc::new(Outbox::new(256));
        let claim = Some(self.directory.claim(sub, "harness", role == Role::Player));
        let join = Join {
            session,
            sub: Arc::from(sub),
            name: sub.to_owned(),
            role,
            subprotocol,
            outbox: Arc::clone(&outbox),
            seat: Seat::force(&self.handle.shared, role == Role::Spectator),
            claim,
        };
        self.send(Command::Join(Box::new(join)));
        TestClient {
            session,
            outbox,
            encoding,
        }
    }

    /// Queues an arena-style input; `false` when the room's queue is full (the input is
    /// dropped, as a session would drop it).
    pub fn input(&self, client: &TestClient, input: Input) -> bool {
        let payload = encode_client(client.encoding, &ClientMessage::Input(input));
        self.input_bytes(client, input.seq, payload)
    }

    /// Queues an input whose fields are `payload` (a whole encoded `input` message).
    pub fn input_bytes(&self, client: &TestClient, seq: u32, payload: Bytes) -> bool {
        self.handle
            .tx
            .try_send(Command::Input {
                session: client.session,
                seq,
                payload,
            })
            .is_ok()
    }

    /// Queues a chat line.
    pub fn chat(&self, client: &TestClient, text: &str) -> bool {
        self.handle
            .tx
            .try_send(Command::Chat {
                session: client.session,
                text: text.to_owned(),
            })
            .is_ok()
    }

    /// Queues any command.
    pub fn send(&self, cmd: Command) -> bool {
        self.handle.tx.try_send(cmd).is_ok()
    }

    /// Moves the virtual clock to the next tick's deadline and runs it.
    pub fn tick(&mut self) {
        let due = self.core.poll_timeout();
        self.run_at(due.max(self.now));
    }

    /// Runs `n` ticks.
    pub fn ticks(&mut self, n: u32) {
        for _ in 0..n {
            self.tick();
        }
    }

    /// Moves the virtual clock forward by `by` and runs whatever is due then (a late
    /// tick catches up within its bound, as a real room would).
    pub fn advance(&mut self, by: Duration) {
        let now = self.now + by;
        self.run_at(now);
    }

    fn run_at(&mut self, now: Instant) {
        self.now = now;
        if let Some(assets) = self.assets.take() {
            self.core.apply_assets(assets);
        }
        feed(&mut self.core, &mut self.rx, now);
        self.core.handle_timeout(now);
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Publishes a new asset version; the room applies it on its next tick.
    pub fn publish_assets(&mut self, assets: Assets<G::Assets>) {
        self.assets = Some(Arc::new(assets));
    }

    /// The room's game.
    pub fn game(&self) -> &G {
        self.core.game()
    }

    /// The room's handle (seat counters, tick).
    pub fn handle(&self) -> &RoomHandle {
        &self.handle
    }

    /// The room's metrics.
    pub fn metrics(&self) -> &RoomMetrics {
        self.core.metrics()
    }

    /// The directory the room's accounts are claimed in.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.directory
    }

    /// Whether the room closed itself (idle).
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The room's checkpoint now (see [`RoomCore::checkpoint`]).
    pub fn checkpoint(&self) -> Vec<u8> {
        self.core.checkpoint()
    }

    /// The room's accounts with a player, if they changed (see
    /// [`RoomCore::poll_members`]).
    pub fn poll_members(&mut self) -> Option<Vec<String>> {
        self.core.poll_members()
    }

    /// The room moves to `to` (see [`RoomCore::move_out`]).
    pub fn move_out(&mut self, to: Option<&str>) {
        self.core.move_out(to);
    }
}
