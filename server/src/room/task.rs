//! The room task: owns one [`World`] and runs it at a fixed timestep.
//!
//! Each tick it drains a bounded number of commands (joins, inputs, chat), steps the
//! simulation, and fans out events and snapshots through each member's [`Outbox`]. It
//! never awaits a client: pushes into outboxes are non-blocking, and a session that is
//! gone is noticed on the next push. Snapshot bodies are encoded once per tick per
//! encoding in use and shared as `Bytes`; each recipient adds only its own `ack`.
//!
//! Timing: a late tick catches up at most `max_catchup_steps` steps back to back, then
//! skips the rest (counted as overruns), so one slow tick never snowballs.
//!
//! Must not do socket IO or block; the simulation itself stays in [`crate::sim`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rallypoint_protocol::codec::{encode_ents, encode_server};
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::{ChatRelay, Event, ServerMessage, Welcome};
use rallypoint_protocol::{CloseReason, Encoding};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span};

use super::directory::{Directory, RoomHandle, RoomShared, Seat};
use super::outbox::{Gone, Outbox, PendingSnapshot, Pushed};
use super::{Command, Join, RoomContext, SessionId};
use crate::assets::{Assets, MapDef};
use crate::auth::Role;
use crate::metrics::RoomMetrics;
use crate::sim::{Control, PlayerId, World};

/// Starts a room task and returns its handle.
pub fn spawn(name: Arc<str>, ctx: RoomContext, directory: Arc<Directory>) -> RoomHandle {
    let mut seed = [0u8; 8];
    // A fixed seed is as good as any if the OS RNG fails; the seed is logged either way.
    let _ = getrandom::fill(&mut seed);
    let (handle, room) = build(Arc::clone(&name), ctx, directory, u64::from_le_bytes(seed));
    tokio::spawn(room.run().instrument(info_span!("room", room = %name)));
    handle
}

/// A room and its handle, not yet running: [`spawn`] drives it with a timer, the
/// harness ([`super::harness`]) drives it by hand.
pub(super) fn build(
    name: Arc<str>,
    ctx: RoomContext,
    directory: Arc<Directory>,
    seed: u64,
) -> (RoomHandle, Room) {
    let assets = Arc::clone(&ctx.assets.borrow());
    let game = &assets.game;
    let seats = usize::from(game.room_capacity) + usize::from(game.spectator_capacity);
    let (tx, rx) = mpsc::channel((seats * ctx.limits.room_queue_per_player).max(64));
    let shared = Arc::new(RoomShared {
        tick: 0.into(),
        players: 0.into(),
        spectators: 0.into(),
        player_capacity: u32::from(game.room_capacity).into(),
        spectator_capacity: u32::from(game.spectator_capacity).into(),
    });
    let handle = RoomHandle {
        name: Arc::clone(&name),
        tx,
        shared: Arc::clone(&shared),
    };
    let room = Room::new(name, shared, rx, directory, ctx, assets, seed);
    (handle, room)
}

struct Member {
    outbox: Arc<Outbox>,
    encoding: Encoding,
    player: Option<PlayerId>,
    name: String,
    /// Spectators hold their seat here; a player's seat lives with its entity.
    _seat: Option<Seat>,
}

struct PlayerSlot {
    sub: Arc<str>,
    name: String,
    /// The connected session, `None` while away (inside the resume grace period).
    session: Option<SessionId>,
    control: Control,
    /// A `fire` seen in any input since the last step, so a tap between ticks still
    /// fires.
    fire_latch: bool,
    last_seq: u32,
    away_until: Option<Instant>,
    _seat: Seat,
}

pub(super) struct Room {
    name: Arc<str>,
    shared: Arc<RoomShared>,
    rx: mpsc::Receiver<Command>,
    directory: Arc<Directory>,
    ctx: RoomContext,
    assets: Arc<Assets>,
    world: World,
    tick_rate: u16,
    snap_every: u32,
    dt: f32,
    rotation: usize,
    members: HashMap<SessionId, Member>,
    players: BTreeMap<PlayerId, PlayerSlot>,
    by_sub: HashMap<Arc<str>, PlayerId>,
    /// Members per encoding, so nobody pays for an encoding nobody uses.
    in_use: [usize; 2],
    metrics: RoomMetrics,
    last_snapshot_tick: Option<u32>,
    empty_since: Option<Instant>,
    // Scratch buffers reused every tick.
    controls: Vec<(PlayerId, Control)>,
    ents: Vec<Entity>,
    events: Vec<Event>,
    departed: Vec<(SessionId, Gone)>,
}

fn slot(e: Encoding) -> usize {
    match e {
        Encoding::MsgPack => 0,
        Encoding::Json => 1,
    }
}

const ENCODINGS: [Encoding; 2] = [Encoding::MsgPack, Encoding::Json];

impl Room {
    fn new(
        name: Arc<str>,
        shared: Arc<RoomShared>,
        rx: mpsc::Receiver<Command>,
        directory: Arc<Directory>,
        ctx: RoomContext,
        assets: Arc<Assets>,
        seed: u64,
    ) -> Room {
        let game = &assets.game;
        let map = first_map(&assets);
        let mut world = World::new(map, game.tuning.clone(), seed);
        let dt = 1.0 / f32::from(game.tick_rate.max(1));
        // Round 1 starts on the first step; take it now, before anyone is welcomed, so
        // `welcome` and `round_start` describe a running round. Nobody is listening yet.
        world.step(&[], dt);
        world.drain_events().for_each(drop);
        let tick_rate = game.tick_rate.max(1);
        let snap_every = u32::from(tick_rate / game.snapshot_rate.clamp(1, tick_rate)).max(1);
        let metrics = ctx.metrics.room(&name);
        ctx.metrics.rooms_open.inc();
        info!(seed, tick_rate, map = %world.map().name, "room opened");
        Room {
            name,
            shared,
            rx,
            directory,
            world,
            tick_rate,
            snap_every,
            dt: 1.0 / f32::from(tick_rate),
            rotation: 0,
            members: HashMap::new(),
            players: BTreeMap::new(),
            by_sub: HashMap::new(),
            in_use: [0; 2],
            metrics,
            last_snapshot_tick: None,
            empty_since: None,
            controls: Vec::new(),
            ents: Vec::new(),
            events: Vec::new(),
            departed: Vec::new(),
            assets,
            ctx,
        }
    }

    async fn run(mut self) {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.tick_rate));
        let mut next = Instant::now() + period;
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                () = crate::shutdown::signalled(&mut shutdown) => break,
                () = tokio::time::sleep_until(next) => {}
            }
            let now = Instant::now();
            let plan = catch_up(
                now.saturating_duration_since(next),
                period,
                self.ctx.limits.max_catchup_steps,
            );
            if plan.skipped > 0 {
                self.metrics.overruns.inc_by(u64::from(plan.skipped));
            }
            next += period * (plan.steps + plan.skipped);
            let steps = plan.steps;
            let started = std::time::Instant::now();
            self.tick(steps);
            self.metrics
                .tick_seconds
                .observe(started.elapsed().as_secs_f64());
            if self.should_close(now) {
                break;
            }
        }
        self.ctx.metrics.rooms_open.dec();
        info!("room closed");
    }

    /// One tick: apply new assets, drain commands, run `steps` simulation steps, then
    /// snapshot, expire away players and process departures.
    pub(super) fn tick(&mut self, steps: u32) {
        self.apply_new_assets();
        self.drain_commands();
        for _ in 0..steps {
            self.step();
        }
        let tick = self.world.tick();
        self.shared.tick.store(tick, Ordering::Release);
        // Departures and expiries first, so this tick's snapshot already reflects them.
        self.expire_away(Instant::now());
        self.process_departures();
        if self
            .last_snapshot_tick
            .is_none_or(|last| tick.wrapping_sub(last) >= self.snap_every)
        {
            self.last_snapshot_tick = Some(tick);
            self.snapshot(tick);
        }
        self.process_departures();
        self.metrics.players.set(self.players.len() as i64);
        self.metrics
            .spectators
            .set(self.members.values().filter(|m| m.player.is_none()).count() as i64);
    }

    fn step(&mut self) {
        self.controls.clear();
        for (&id, p) in &mut self.players {
            if p.session.is_some() {
                let mut c = p.control;
                c.fire |= p.fire_latch;
                p.fire_latch = false;
                self.controls.push((id, c));
            }
        }
        self.world.step(&self.controls, self.dt);
        self.events.clear();
        self.events.extend(self.world.drain_events());
        let events = std::mem::take(&mut self.events);
        for event in &events {
            if matches!(event, Event::RoundEnd { .. }) {
                self.queue_next_map();
            }
            self.broadcast(&ServerMessage::Event(event.clone()));
        }
        self.events = events;
    }

    fn queue_next_map(&mut self) {
        let rotation = &self.assets.game.maps;
        if rotation.is_empty() {
            return;
        }
        self.rotation = (self.rotation + 1) % rotation.len();
        if let Some(map) = self.assets.maps.get(&rotation[self.rotation]) {
            self.world.set_next_map(Arc::clone(map));
        }
    }

    fn apply_new_assets(&mut self) {
        if !self.ctx.assets.has_changed().unwrap_or(false) {
            return;
        }
        let assets = Arc::clone(&self.ctx.assets.borrow_and_update());
        let game = &assets.game;
        self.world.set_tuning(game.tuning.clone());
        self.shared
            .player_capacity
            .store(u32::from(game.room_capacity), Ordering::Release);
        self.shared
            .spectator_capacity
            .store(u32::from(game.spectator_capacity), Ordering::Release);
        // Map edits (including the map in play) take effect at the next round start.
        if !game.maps.is_empty() {
            self.rotation %= game.maps.len();
            let next = &game.maps[(self.rotation + 1) % game.maps.len()];
            if let Some(map) = assets.maps.get(next) {
                self.world.set_next_map(Arc::clone(map));
            }
        }
        debug!(version = %assets.version, "assets applied");
        self.assets = assets;
    }

    fn drain_commands(&mut self) {
        let budget = self.rx.max_capacity();
        for _ in 0..budget {
            let Ok(cmd) = self.rx.try_recv() else { break };
            match cmd {
                Command::Join(join) => self.join(*join),
                Command::Input { session, input } => {
                    let Some(pid) = self.members.get(&session).and_then(|m| m.player) else {
                        continue;
                    };
                    let Some(p) = self.players.get_mut(&pid) else {
                        continue;
                    };
                    if p.session != Some(session) || input.seq <= p.last_seq {
                        self.metrics.inputs_dropped.inc();
                        continue;
                    }
                    let (mx, my) = input.clamped_move();
                    p.last_seq = input.seq;
                    p.control = Control {
                        mx,
                        my,
                        aim: input.aim,
                        fire: input.fire,
                    };
                    p.fire_latch |= input.fire;
                    self.metrics.inputs_applied.inc();
                }
                Command::Chat { session, text } => {
                    let Some(m) = self.members.get(&session) else {
                        continue;
                    };
                    let from = m.player.map_or(0, |p| p.0);
                    let msg = ServerMessage::Chat(ChatRelay {
                        from,
                        name: m.name.clone(),
                        text,
                    });
                    self.broadcast(&msg);
                }
                Command::Kick { sub, reply } => {
                    let session = self
                        .by_sub
                        .get(sub.as_str())
                        .and_then(|p| self.players.get(p))
                        .and_then(|p| p.session);
                    let kicked = session
                        .and_then(|s| self.members.get(&s))
                        .map(|m| m.outbox.request_close(CloseReason::Kicked));
                    let _ = reply.send(kicked.is_some());
                }
                Command::Describe(reply) => {
                    let _ = reply.send(self.describe());
                }
            }
        }
    }

    fn join(&mut self, j: Join) {
        if j.outbox.gone().is_some() {
            return;
        }
        let (player, resumed) = match j.role {
            Role::Spectator => (None, false),
            Role::Player => match self.by_sub.get(&j.sub).copied() {
                Some(pid) => {
                    let Some(p) = self.players.get_mut(&pid) else {
                        return;
                    };
                    if let Some(old) = p.session.take()
                        && let Some(m) = self.members.remove(&old)
                    {
                        self.in_use[slot(m.encoding)] -= 1;
                        m.outbox.request_close(CloseReason::Replaced);
                    }
                    p.session = Some(j.session);
                    p.away_until = None;
                    // `seq` is per session: the new connection counts from scratch.
                    p.last_seq = 0;
                    p.control = Control::default();
                    p.name = j.name.clone();
                    self.world.set_away(pid, false);
                    (Some(pid), true)
                }
                None => {
                    let pid = self.world.add_player();
                    self.by_sub.insert(Arc::clone(&j.sub), pid);
                    self.players.insert(
                        pid,
                        PlayerSlot {
                            sub: Arc::clone(&j.sub),
                            name: j.name.clone(),
                            session: Some(j.session),
                            control: Control::default(),
                            fire_latch: false,
                            last_seq: 0,
                            away_until: None,
                            _seat: j.seat,
                        },
                    );
                    self.members.insert(
                        j.session,
                        Member {
                            outbox: Arc::clone(&j.outbox),
                            encoding: j.encoding,
                            player: Some(pid),
                            name: j.name.clone(),
                            _seat: None,
                        },
                    );
                    self.in_use[slot(j.encoding)] += 1;
                    self.introduce(j.session, j.encoding, j.protocol, Role::Player, false);
                    // The newcomer's roster already names it.
                    self.broadcast_except(
                        Some(j.session),
                        &ServerMessage::Event(Event::Player {
                            id: pid.0,
                            name: j.name,
                        }),
                    );
                    return;
                }
            },
        };
        // Spectators keep their seat with the membership; a resumed player already holds
        // one with its entity, so the seat reserved for this connection is released.
        let seat = if player.is_none() { Some(j.seat) } else { None };
        self.members.insert(
            j.session,
            Member {
                outbox: Arc::clone(&j.outbox),
                encoding: j.encoding,
                player,
                name: j.name.clone(),
                _seat: seat,
            },
        );
        self.in_use[slot(j.encoding)] += 1;
        let role = if player.is_some() {
            Role::Player
        } else {
            Role::Spectator
        };
        self.introduce(j.session, j.encoding, j.protocol, role, resumed);
        if let Some(pid) = player {
            self.broadcast_except(
                Some(j.session),
                &ServerMessage::Event(Event::Player {
                    id: pid.0,
                    name: j.name,
                }),
            );
        }
    }

    /// Sends a newcomer `welcome`, the map, the round and the roster, in that order.
    fn introduce(
        &mut self,
        session: SessionId,
        encoding: Encoding,
        protocol: &str,
        role: Role,
        resumed: bool,
    ) {
        let Some(m) = self.members.get(&session) else {
            return;
        };
        let game = &self.assets.game;
        let mut intro = vec![
            ServerMessage::Welcome(Welcome {
                you: m.player.map_or(0, |p| p.0),
                room: self.name.to_string(),
                tick: self.world.tick(),
                tick_rate: self.tick_rate,
                map: self.world.map().name.clone(),
                protocol: protocol.to_owned(),
                snap_rate: game.snapshot_rate,
                role: role.as_str().to_owned(),
                resumed,
                game: "arena".into(),
                schema: None,
                info: serde_json::json!({
                    "player_radius": self.world.tuning().player.radius,
                    "max_hp": self.world.tuning().player.max_health,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            }),
            ServerMessage::Event(Event::Map(self.world.map_info())),
            ServerMessage::Event(self.world.round_start_event()),
        ];
        intro.extend(self.players.iter().map(|(id, p)| {
            ServerMessage::Event(Event::Player {
                id: id.0,
                name: p.name.clone(),
            })
        }));
        for msg in intro {
            if m.outbox.push_message(encode_server(encoding, &msg)) == Pushed::Overflow {
                self.metrics.slow_disconnects.inc();
                break;
            }
        }
    }

    fn broadcast(&mut self, msg: &ServerMessage) {
        self.broadcast_except(None, msg);
    }

    /// Sends `msg` to every member but `skip` (who already has it, e.g. in its intro).
    fn broadcast_except(&mut self, skip: Option<SessionId>, msg: &ServerMessage) {
        let mut encoded: [Option<Bytes>; 2] = [None, None];
        for (&session, m) in &self.members {
            if Some(session) == skip {
                continue;
            }
            let bytes =
                encoded[slot(m.encoding)].get_or_insert_with(|| encode_server(m.encoding, msg));
            match m.outbox.push_message(bytes.clone()) {
                Pushed::Overflow => {
                    self.metrics.slow_disconnects.inc();
                }
                Pushed::Gone(g) => self.departed.push((session, g)),
                Pushed::Queued | Pushed::ReplacedUnread => {}
            }
        }
    }

    fn snapshot(&mut self, tick: u32) {
        self.ents.clear();
        self.world.write_entities(&mut self.ents);
        let mut bodies: [Option<Bytes>; 2] = [None, None];
        for enc in ENCODINGS {
            if self.in_use[slot(enc)] > 0 {
                let body = encode_ents(enc, &self.ents);
                self.metrics.snapshot_bytes.inc_by(body.len() as u64);
                bodies[slot(enc)] = Some(body);
            }
        }
        for (&session, m) in &self.members {
            let Some(ents) = bodies[slot(m.encoding)].clone() else {
                continue;
            };
            let ack = m
                .player
                .and_then(|p| self.players.get(&p))
                .map_or(0, |p| p.last_seq);
            match m.outbox.push_snapshot(PendingSnapshot { tick, ack, ents }) {
                Pushed::ReplacedUnread => {
                    self.metrics.slow_drops.inc();
                }
                Pushed::Gone(g) => self.departed.push((session, g)),
                Pushed::Queued | Pushed::Overflow => {}
            }
        }
    }

    fn process_departures(&mut self) {
        while let Some((session, gone)) = self.departed.pop() {
            let Some(m) = self.members.remove(&session) else {
                continue;
            };
            self.in_use[slot(m.encoding)] -= 1;
            let Some(pid) = m.player else { continue };
            let Some(p) = self.players.get_mut(&pid) else {
                continue;
            };
            if p.session != Some(session) {
                continue;
            }
            let grace = Duration::from_secs_f32(self.assets.game.resume_grace_s.max(0.0));
            if gone == Gone::Dropped && !grace.is_zero() {
                p.session = None;
                p.away_until = Some(Instant::now() + grace);
                self.world.set_away(pid, true);
                debug!(player = pid.0, "player away, awaiting resume");
            } else {
                self.remove_player(pid);
            }
        }
    }

    fn expire_away(&mut self, now: Instant) {
        let expired: Vec<PlayerId> = self
            .players
            .iter()
            .filter(|(_, p)| p.away_until.is_some_and(|t| t <= now))
            .map(|(&id, _)| id)
            .collect();
        for pid in expired {
            self.remove_player(pid);
        }
    }

    fn remove_player(&mut self, pid: PlayerId) {
        let Some(p) = self.players.remove(&pid) else {
            return;
        };
        self.by_sub.remove(&p.sub);
        self.world.remove_player(pid);
        self.directory.forget_sub(&p.sub, &self.name);
        self.broadcast(&ServerMessage::Event(Event::Leave { id: pid.0 }));
    }

    /// The simulation (read-only).
    pub(super) fn world(&self) -> &World {
        &self.world
    }

    /// The room's metric handles.
    pub(super) fn metrics(&self) -> &RoomMetrics {
        &self.metrics
    }

    fn should_close(&mut self, now: Instant) -> bool {
        if !self.members.is_empty() || !self.players.is_empty() {
            self.empty_since = None;
            return false;
        }
        let since = *self.empty_since.get_or_insert(now);
        let ttl = Duration::from_secs_f32(self.assets.game.empty_room_close_s.max(0.0));
        now.duration_since(since) >= ttl && self.directory.close_if_idle(&self.name)
    }

    fn describe(&self) -> serde_json::Value {
        let players: Vec<_> = self
            .players
            .iter()
            .map(|(id, p)| {
                let view = self.world.player(*id);
                serde_json::json!({
                    "id": id.0,
                    "sub": &*p.sub,
                    "name": p.name,
                    "connected": p.session.is_some(),
                    "score": view.map_or(0, |v| v.score),
                    "hp": view.map_or(0, |v| v.hp),
                    "ack": p.last_seq,
                })
            })
            .collect();
        serde_json::json!({
            "name": &*self.name,
            "tick": self.world.tick(),
            "tick_rate": self.tick_rate,
            "map": self.world.map().name,
            "players": players,
            "spectators": self.members.values().filter(|m| m.player.is_none()).count(),
            "capacity": self.shared.player_capacity.load(Ordering::Acquire),
            "encodings": { "msgpack": self.in_use[0], "json": self.in_use[1] },
        })
    }
}

/// What a tick that woke `late` after its deadline should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CatchUp {
    /// Simulation steps to run now (at least one).
    pub steps: u32,
    /// Steps given up on (overruns).
    pub skipped: u32,
}

/// The fixed-timestep rule: every period that has fully elapsed since the deadline is
/// owed a step, up to `max_steps` back to back; the rest are skipped so that a stall
/// (a descheduled process, a slow tick) never turns into a burst that makes things worse.
pub(super) fn catch_up(late: Duration, period: Duration, max_steps: u32) -> CatchUp {
    let owed = late.as_nanos() / period.as_nanos().max(1);
    let due = 1 + u32::try_from(owed).unwrap_or(u32::MAX - 1);
    let steps = due.min(max_steps.max(1));
    CatchUp {
        steps,
        skipped: due - steps,
    }
}

fn first_map(assets: &Assets) -> Arc<MapDef> {
    assets
        .game
        .maps
        .first()
        .and_then(|name| assets.maps.get(name))
        .or_else(|| assets.maps.values().next())
        .cloned()
        .expect("validated assets always contain the maps their rotation names")
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_micros(33_333);

    #[test]
    fn an_on_time_tick_runs_one_step() {
        assert_eq!(
            catch_up(Duration::ZERO, P, 5),
            CatchUp {
                steps: 1,
                skipped: 0
            }
        );
        assert_eq!(
            catch_up(P / 2, P, 5),
            CatchUp {
                steps: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn a_late_tick_catches_up_within_the_bound() {
        assert_eq!(
            catch_up(P * 3, P, 5),
            CatchUp {
                steps: 4,
                skipped: 0
            }
        );
        assert_eq!(
            catch_up(P * 4 + P / 2, P, 5),
            CatchUp {
                steps: 5,
                skipped: 0
            }
        );
    }

    #[test]
    fn beyond_the_bound_steps_are_skipped_and_counted() {
        assert_eq!(
            catch_up(P * 30, P, 5),
            CatchUp {
                steps: 5,
                skipped: 26
            }
        );
        assert_eq!(catch_up(Duration::from_secs(3600), P, 5).steps, 5);
        assert_eq!(
            catch_up(Duration::MAX, P, 0),
            CatchUp {
                steps: 1,
                skipped: u32::MAX - 1
            }
        );
    }
}
