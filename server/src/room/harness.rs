//! An in-memory room harness: a real [`Room`] driven by hand, without sockets, timers or
//! a runtime.
//!
//! Joins, inputs and chat go through the room's own command queue, ticks run when the
//! caller says so, and what the room sends is read back from each client's [`Outbox`]
//! and decoded, exactly as a session would frame it. Tests, fuzz targets and benchmarks
//! use it to exercise room logic deterministically (given a seed) and fast.
//!
//! Must not be used by the server itself.

use std::sync::Arc;

use rallypoint_protocol::codec::{decode_server, snap_frame};
use rallypoint_protocol::message::{Input, ServerMessage};
use rallypoint_protocol::{CloseReason, Encoding};
use tokio::sync::watch;

use super::directory::{Directory, RoomHandle, Seat};
use super::outbox::{Gone, Outbox};
use super::task::{Room, build};
use super::{Command, Join, RoomContext, SessionId};
use crate::assets::Assets;
use crate::auth::Role;
use crate::config::Limits;
use crate::metrics::{Metrics, RoomMetrics};
use crate::sim::World;

/// See the module docs.
pub struct RoomHarness {
    room: Room,
    handle: RoomHandle,
    assets_tx: watch::Sender<Arc<Assets>>,
    _shutdown: watch::Sender<bool>,
    next_session: SessionId,
}

impl std::fmt::Debug for RoomHarness {
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
    /// Takes and decodes everything pending: close request, ordered messages, snapshot.
    pub fn take(&self) -> Vec<Delivered> {
        let batch = self.outbox.take();
        let mut out = Vec::new();
        if let Some(reason) = batch.close {
            out.push(Delivered::Close(reason));
        }
        for m in batch.messages {
            out.push(Delivered::Message(
                decode_server(self.encoding, &m).expect("room output decodes"),
            ));
        }
        if let Some(s) = batch.snapshot {
            let frame = snap_frame(self.encoding, s.tick, s.ack, &s.ents);
            out.push(Delivered::Message(
                decode_server(self.encoding, &frame).expect("snapshot decodes"),
            ));
        }
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

impl RoomHarness {
    /// A room named `harness` over `assets`, with a fixed seed.
    pub fn new(assets: Assets, limits: Limits, seed: u64) -> RoomHarness {
        let (assets_tx, assets_rx) = watch::channel(Arc::new(assets));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let ctx = RoomContext {
            assets: assets_rx,
            limits,
            metrics: Arc::new(Metrics::new()),
            shutdown: shutdown_rx,
        };
        let directory = Directory::new(ctx.clone());
        let (handle, room) = build(Arc::from("harness"), ctx, directory, seed);
        RoomHarness {
            room,
            handle,
            assets_tx,
            _shutdown: shutdown_tx,
            next_session: 1,
        }
    }

    /// Queues a join (applied on the next tick); returns the client.
    pub fn join(&mut self, sub: &str, role: Role, encoding: Encoding) -> TestClient {
        let session = self.next_session;
        self.next_session += 1;
        let outbox = Arc::new(Outbox::new(256));
        let join = Join {
            session,
            sub: Arc::from(sub),
            name: sub.to_owned(),
            role,
            encoding,
            protocol: match encoding {
                Encoding::MsgPack => "rallypoint.v1.msgpack",
                Encoding::Json => "rallypoint.v1.json",
            },
            outbox: Arc::clone(&outbox),
            seat: Seat::force(&self.handle.shared, role == Role::Spectator),
        };
        self.send(Command::Join(Box::new(join)));
        TestClient {
            session,
            outbox,
            encoding,
        }
    }

    /// Queues an input; `false` when the room's queue is full (the input is dropped, as
    /// a session would drop it).
    pub fn input(&self, client: &TestClient, input: Input) -> bool {
        self.handle
            .tx
            .try_send(Command::Input {
                session: client.session,
                input,
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

    /// Runs one tick.
    pub fn tick(&mut self) {
        self.room.tick(1);
    }

    /// Runs `n` ticks.
    pub fn ticks(&mut self, n: u32) {
        for _ in 0..n {
            self.tick();
        }
    }

    /// Publishes a new asset version; the room applies it on its next tick.
    pub fn publish_assets(&self, assets: Assets) {
        self.assets_tx.send_replace(Arc::new(assets));
    }

    /// The room's simulation.
    pub fn world(&self) -> &World {
        self.room.world()
    }

    /// The room's handle (seat counters, tick).
    pub fn handle(&self) -> &RoomHandle {
        &self.handle
    }

    /// The room's metrics.
    pub fn metrics(&self) -> &RoomMetrics {
        self.room.metrics()
    }
}
