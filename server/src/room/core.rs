//! The room as a state machine: one game, its members and players, and the fixed tick,
//! with time as a parameter.
//!
//! Inputs are [`RoomCore::handle_command`] (joins, inputs, chat, kicks, replacements,
//! descriptions) and [`RoomCore::handle_timeout`] (run the ticks that are due at `now`);
//! [`RoomCore::poll_timeout`] says when the next one is due. Each tick steps the game a
//! bounded number of times, expires players whose resume grace ran out, processes
//! departures, and fans out events and snapshots through each member's outbox. A late
//! tick catches up at most `max_catchup_steps` steps back to back and skips the rest
//! (counted as overruns), so one slow tick never snowballs.
//!
//! For the cluster, the core also produces what its driver writes to the directory and
//! accepts what it learns there: [`RoomCore::checkpoint`] is the whole room as bytes (the
//! game's checkpoint and every player, see [`super::saved`]) and [`RoomCore::restore`]
//! reopens a room from them, every player away and resumable; [`RoomCore::poll_members`]
//! says which accounts have a player here whenever that changes; [`RoomCore::move_out`]
//! sends every member where the room lives now (`moved`, then close 1012) and ends it.
//!
//! Must not read a clock, touch tokio, or block: the async driver ([`super::task`]) and
//! the test harness both feed it time and commands. Its only IO is through outboxes: on
//! plain TCP an outbox writes a snapshot to its socket at once if the socket takes it
//! without blocking, else keeps it for the session (see [`super::outbox`]); the harness's
//! outboxes have no socket.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rallypoint_protocol::codec::{encode_event, encode_rows, encode_server};
use rallypoint_protocol::inbound::decode_checked_fields;
use rallypoint_protocol::message::{ChatRelay, Event, Moved, ServerMessage, Welcome};
use rallypoint_protocol::rows::{RowSchema, Rows};
use rallypoint_protocol::{CloseReason, DecodeLimits, Encoding, Subprotocol, v2};
use tracing::{debug, info, warn};

use super::directory::{Directory, RoomShared};
use super::fanout::{ENCODINGS, Member, Members, slot};
use super::outbox::Gone;
use super::saved::{SavedPlayer, SavedRoom};
use super::{Claim, Command, Join, Seat, SessionId};
use crate::assets::{Assets, EngineSettings};
use crate::auth::Role;
use crate::config::Limits;
use crate::game::{Game, GameAssets, InputContext, PlayerId, RestoreError};
use crate::metrics::{RoomMetrics, Traffic};

/// A player entity and who controls it.
#[derive(Debug)]
struct PlayerSlot {
    sub: Arc<str>,
    name: String,
    /// The connected session, `None` while away (inside the resume grace period).
    session: Option<SessionId>,
    /// Last input `seq` applied; `seq` counts per session.
    last_seq: u32,
    /// Tick of the last snapshot handed to the connected session; `None` before its first.
    sent_tick: Option<u32>,
    away_until: Option<Instant>,
    _seat: Seat,
    _claim: Option<Claim>,
}

/// What the room holds of one account: its entity and its live session, each optional.
#[derive(Debug, Default, Clone, Copy)]
struct Account {
    player: Option<PlayerId>,
    session: Option<SessionId>,
}

/// The fixed-tick schedule.
#[derive(Debug)]
struct Clock {
    period: Duration,
    /// When the next tick is due.
    next: Instant,
    /// A snapshot every this many ticks.
    snap_every: u32,
    last_snapshot_tick: Option<u32>,
}

/// See the module docs.
pub struct RoomCore<G: Game> {
    name: Arc<str>,
    shared: Arc<RoomShared>,
    directory: Arc<Directory>,
    limits: Limits,
    decode: DecodeLimits,
    metrics: RoomMetrics,
    /// Traffic counters per encoding, for what the room writes itself (counted per tick).
    traffic: [Traffic; 2],
    assets: Arc<Assets<G::Assets>>,
    game: G,
    schema: RowSchema,
    /// The v2 encoder, `None` if the game's schema cannot be encoded (v2 sessions are then
    /// refused at join).
    encoder: Option<v2::Encoder>,
    /// Reads the wall clock for the encode-time metric only: nothing the room decides
    /// depends on it.
    stopwatch: fn() -> Instant,
    tick_rate: u16,
    dt: f32,
    clock: Clock,
    rotation: usize,
    members: Members,
    players: BTreeMap<PlayerId, PlayerSlot>,
    accounts: HashMap<Arc<str>, Account>,
    empty_since: Option<Instant>,
    closed: bool,
    /// The accounts with a player here changed since [`RoomCore::poll_members`] last
    /// said so.
    members_changed: bool,
    /// Restored players still to be entered in the directory.
    claims_owed: bool,
    // Scratch buffers reused every tick.
    rows: Rows,
    events: Vec<G::Event>,
    departed: Vec<(SessionId, Gone)>,
}

impl<G: Game> std::fmt::Debug for RoomCore<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomCore")
            .field("name", &self.name)
            .field("game", &G::NAME)
            .field("tick", &self.game.tick())
            .finish_non_exhaustive()
    }
}

/// What a room is made of, besides its game.
#[derive(Debug)]
pub struct Parts {
    /// Room name.
    pub name: Arc<str>,
    /// Counters shared with the directory and sessions.
    pub shared: Arc<RoomShared>,
    /// The directory (to close when idle and to claim accounts).
    pub directory: Arc<Directory>,
    /// Limits.
    pub limits: Limits,
    /// The room's metric handles.
    pub metrics: RoomMetrics,
    /// Traffic counters per encoding, in [`super::fanout::slot`] order.
    pub traffic: [Traffic; 2],
    /// The clock the encode-time metric is read from.
    pub stopwatch: fn() -> Instant,
}

impl<G: Game> RoomCore<G> {
    /// A room playing the first map of the rotation, its first tick due one period after
    /// `now`.
    pub fn new(parts: Parts, assets: Arc<Assets<G::Assets>>, seed: u64, now: Instant) -> Self {
        let dt = 1.0 / f32::from(assets.engine.tick_rate.max(1));
        let game = G::new(&assets.game, &first_map(&assets), seed, dt);
        let tick_rate = assets.engine.tick_rate;
        info!(seed, tick_rate, game = G::NAME, map = %game.map_name(), "room opened");
        RoomCore::with_game(parts, assets, game, now)
    }

    /// A room reopened from a [`RoomCore::checkpoint`] (taken here or on another node),
    /// read with [`RoomCheckpoint::read`]: the game continues where it was, and every
    /// player is away, as after a dropped connection, resumable by its account for the
    /// grace period from `now` with the same wire id and everything the game kept.
    pub fn restore(
        parts: Parts,
        assets: Arc<Assets<G::Assets>>,
        checkpoint: RoomCheckpoint<G>,
        now: Instant,
    ) -> Self {
        let RoomCheckpoint { game, saved } = checkpoint;
        let mut room = RoomCore::with_game(parts, assets, game, now);
        let maps = room.assets.engine.maps.len().max(1);
        room.rotation = saved.rotation as usize % maps;
        let players = saved.players.len();
        for p in saved.players {
            room.restore_player(p, now);
        }
        room.members_changed = true;
        info!(game = G::NAME, map = %room.game.map_name(), tick = room.game.tick(), players,
            "room reopened from a checkpoint");
        room
    }

    fn with_game(parts: Parts, assets: Arc<Assets<G::Assets>>, game: G, now: Instant) -> Self {
        let engine = &assets.engine;
        let tick_rate = engine.tick_rate.max(1);
        let dt = 1.0 / f32::from(tick_rate);
        let snap_every = u32::from(tick_rate / engine.snapshot_rate.clamp(1, tick_rate)).max(1);
        let period = Duration::from_secs_f64(1.0 / f64::from(tick_rate));
        let decode = DecodeLimits {
            max_message_bytes: parts.limits.max_message_bytes,
            ..DecodeLimits::default()
        };
        parts.shared.tick.store(game.tick(), Ordering::Release);
        let schema = G::schema();
        let encoder = v2_encoder(&schema, engine);
        RoomCore {
            name: parts.name,
            shared: parts.shared,
            directory: parts.directory,
            limits: parts.limits,
            decode,
            metrics: parts.metrics,
            traffic: parts.traffic,
            stopwatch: parts.stopwatch,
            encoder,
            schema,
            tick_rate,
            dt,
            clock: Clock {
                period,
                next: now + period,
                snap_every,
                last_snapshot_tick: None,
            },
            rotation: 0,
            members: Members::default(),
            players: BTreeMap::new(),
            accounts: HashMap::new(),
            empty_since: None,
            closed: false,
            members_changed: false,
            claims_owed: false,
            rows: Rows::new(),
            events: Vec::new(),
            departed: Vec::new(),
            game,
            assets,
        }
    }

    /// A player of a checkpoint, away from `now` on: its seat and its account's place in
    /// the directory are taken again, as its first join took them.
    fn restore_player(&mut self, p: SavedPlayer, now: Instant) {
        let pid = PlayerId(p.id);
        let grace = self.grace();
        if grace.is_zero() {
            // Nobody can come back to it: gone at once, as after any drop.
            self.game.remove_player(pid);
            return;
        }
        if p.connected {
            self.game.set_away(pid, true);
        }
        let sub: Arc<str> = Arc::from(p.sub.as_str());
        // The account's place in the directory is taken on the first tick: a room is
        // restored while the directory opens it, under the directory's lock. Until then
        // the directory knows it from the room's shared state.
        self.claims_owed = true;
        self.shared.mark_restored(Arc::clone(&sub));
        self.players.insert(
            pid,
            PlayerSlot {
                sub: Arc::clone(&sub),
                name: p.name,
                session: None,
                last_seq: p.last_seq,
                sent_tick: None,
                away_until: Some(now + grace),
                _seat: Seat::force(&self.shared, false),
                _claim: None,
            },
        );
        self.accounts.insert(
            sub,
            Account {
                player: Some(pid),
                session: None,
            },
        );
    }

    /// Enters every restored player that has no entry yet (none resumed meanwhile) in
    /// the directory, as its first join did.
    fn claim_restored(&mut self) {
        for p in self.players.values_mut().filter(|p| p._claim.is_none()) {
            p._claim = Some(self.directory.claim(&p.sub, &self.name, true));
        }
        self.shared.restored_entered();
    }

    /// The whole room as bytes, for [`RoomCore::restore`] here or on another node: the
    /// game's checkpoint and every player. Spectators and sessions are not in it: they
    /// connect again.
    pub fn checkpoint(&self) -> Vec<u8> {
        let players = self
            .players
            .iter()
            .map(|(id, p)| SavedPlayer {
                id: id.0,
                sub: p.sub.to_string(),
                name: p.name.clone(),
                last_seq: p.last_seq,
                connected: p.session.is_some(),
            })
            .collect();
        SavedRoom::new(G::NAME, self.rotation, players, self.game.checkpoint()).encode()
    }

    /// The accounts with a player entity here (resume grace included), when they changed
    /// since the last call; `None` when they did not.
    pub fn poll_members(&mut self) -> Option<Vec<String>> {
        if !std::mem::take(&mut self.members_changed) {
            return None;
        }
        Some(self.players.values().map(|p| p.sub.to_string()).collect())
    }

    /// Every account with a player entity here.
    pub fn member_accounts(&self) -> Vec<String> {
        self.players.values().map(|p| p.sub.to_string()).collect()
    }

    /// Player entities here, away ones included.
    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    /// Sessions here, players' and spectators'.
    pub fn session_count(&self) -> usize {
        self.members.by_session.len()
    }

    /// The room lives elsewhere now (its lease went to another node, or it was handed
    /// over): every member is told where (`moved`, when `to` is known) and closed with
    /// 1012, and the room ends. Without `to`, clients find the room again through
    /// `/match`.
    pub fn move_out(&mut self, to: Option<&str>) {
        if let Some(url) = to {
            let moved = ServerMessage::Moved(Moved {
                url: url.to_owned(),
            });
            self.broadcast(None, &moved);
        }
        for m in self.members.by_session.values() {
            m.outbox.request_close(CloseReason::Moved);
        }
        self.closed = true;
        info!(to = to.unwrap_or("-"), "room moved out");
    }

    /// When [`RoomCore::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Instant {
        self.clock.next
    }

    /// Whether the room has closed (idle past its time); its driver should stop.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Runs the ticks due at `now`, if any.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.clock.next || self.closed {
            return;
        }
        if std::mem::take(&mut self.claims_owed) {
            self.claim_restored();
        }
        let plan = catch_up(
            now.duration_since(self.clock.next),
            self.clock.period,
            self.limits.max_catchup_steps,
        );
        if plan.skipped > 0 {
            self.metrics.overruns.inc_by(u64::from(plan.skipped));
        }
        self.clock.next += self.clock.period * (plan.steps + plan.skipped);
        self.tick(plan.steps, now);
        if self.should_close(now) {
            self.closed = true;
        }
    }

    /// A new asset version, applied whole: call it at a tick boundary.
    pub fn apply_assets(&mut self, assets: Arc<Assets<G::Assets>>) {
        self.game.reload(&assets.game);
        let engine = &assets.engine;
        self.shared
            .player_capacity
            .store(u32::from(engine.room_capacity), Ordering::Release);
        self.shared
            .spectator_capacity
            .store(u32::from(engine.spectator_capacity), Ordering::Release);
        // Map edits (including the map in play) take effect at the next round start.
        if !engine.maps.is_empty() {
            self.rotation %= engine.maps.len();
            let next = &engine.maps[(self.rotation + 1) % engine.maps.len()];
            self.game.queue_map(&assets.game, next);
        }
        if engine.view_radius != self.assets.engine.view_radius {
            // A new view means new baselines: every v2 client gets a keyframe.
            self.encoder = v2_encoder(&self.schema, engine);
            for m in self.members.by_session.values_mut() {
                if let Some(v2) = m.v2.as_deref_mut() {
                    v2.request_keyframe();
                }
            }
        }
        debug!(version = %assets.version, "assets applied");
        self.assets = assets;
    }

    /// One command from a session, the admin API or the directory.
    pub fn handle_command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::Join(join) => self.join(*join, now),
            Command::Input {
                session,
                seq,
                payload,
            } => self.input(session, seq, &payload),
            Command::Chat { session, text } => {
                let Some(m) = self.members.get(session) else {
                    return;
                };
                let msg = ServerMessage::Chat(ChatRelay {
                    from: m.player.map_or(0, |p| p.0),
                    name: m.name.clone(),
                    text,
                });
                self.broadcast(None, &msg);
            }
            Command::Kick { sub, reply } => {
                let kicked = self.close_account_session(&sub, CloseReason::Kicked);
                let _ = reply.send(kicked);
            }
            Command::Replace { sub } => {
                self.close_account_session(&sub, CloseReason::Replaced);
            }
            Command::Resync { session } => {
                if let Some(v2) = self
                    .members
                    .get_mut(session)
                    .and_then(|m| m.v2.as_deref_mut())
                {
                    v2.request_keyframe();
                    self.metrics.v2_resyncs.inc();
                }
            }
            Command::Describe(reply) => {
                let _ = reply.send(self.describe());
            }
        }
    }

    fn input(&mut self, session: SessionId, seq: u32, payload: &[u8]) {
        let Some(m) = self.members.get(session) else {
            return;
        };
        let Some(pid) = m.player else { return };
        let fields = match decode_checked_fields::<G::Input>(m.encoding, payload, &self.decode) {
            Ok(fields) => fields,
            Err(e) => {
                m.outbox
                    .request_close_because(e.close_reason(), Some(e.to_string()));
                return;
            }
        };
        let Some(p) = self.players.get_mut(&pid) else {
            return;
        };
        if p.session != Some(session) || seq <= p.last_seq {
            self.metrics.inputs_dropped.inc();
            return;
        }
        p.last_seq = seq;
        let context = InputContext {
            latest_sent: p.sent_tick,
        };
        self.game.apply_input(pid, &fields, context);
        self.metrics.inputs_applied.inc();
    }

    /// Asks the account's live session here to close; whether there was one.
    fn close_account_session(&mut self, sub: &str, reason: CloseReason) -> bool {
        let session = self.accounts.get(sub).and_then(|a| a.session);
        match session.and_then(|s| self.members.get(s)) {
            Some(m) => {
                m.outbox.request_close(reason);
                true
            }
            None => false,
        }
    }

    /// One tick: `steps` simulation steps, then expiries, departures and the snapshot.
    fn tick(&mut self, steps: u32, now: Instant) {
        for _ in 0..steps {
            self.step();
        }
        let tick = self.game.tick();
        self.shared.tick.store(tick, Ordering::Release);
        // Departures and expiries first, so this tick's snapshot already reflects them.
        self.expire_away(now);
        self.process_departures(now);
        if self
            .clock
            .last_snapshot_tick
            .is_none_or(|last| tick.wrapping_sub(last) >= self.clock.snap_every)
        {
            self.clock.last_snapshot_tick = Some(tick);
            self.snapshot(tick);
        }
        self.process_departures(now);
        self.metrics.players.set(self.players.len() as i64);
        self.metrics
            .spectators
            .set(self.members.spectators() as i64);
    }

    fn step(&mut self) {
        self.game.step(self.dt);
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.game.drain_events(&mut events);
        for event in &events {
            if G::ends_round(event) {
                self.queue_next_map();
            }
            self.members.broadcast(
                None,
                |enc| encode_event(enc, event),
                &mut self.departed,
                &self.metrics,
            );
        }
        self.events = events;
    }

    fn queue_next_map(&mut self) {
        let rotation = &self.assets.engine.maps;
        if rotation.is_empty() {
            return;
        }
        self.rotation = (self.rotation + 1) % rotation.len();
        self.game
            .queue_map(&self.assets.game, &rotation[self.rotation]);
    }

    fn snapshot(&mut self, tick: u32) {
        self.rows.clear();
        self.game.write_rows(&mut self.rows);
        let mut bodies: [Option<Bytes>; 2] = [None, None];
        for enc in ENCODINGS {
            if self.members.v1_uses(enc) {
                let body = encode_rows(enc, &self.schema, &self.rows);
                self.metrics.snapshot_bytes.inc_by(body.len() as u64);
                bodies[slot(enc)] = Some(body);
            }
        }
        let players = &self.players;
        let ack_of = |m: &Member| {
            m.player
                .and_then(|p| players.get(&p))
                .map_or(0, |p| p.last_seq)
        };
        let mut written =
            self.members
                .snapshot(tick, &bodies, ack_of, &mut self.departed, &self.metrics);
        let (frames, bytes) = self.snapshot_v2(tick);
        written[slot(Encoding::MsgPack)].0 += frames;
        written[slot(Encoding::MsgPack)].1 += bytes;
        for p in self.players.values_mut().filter(|p| p.session.is_some()) {
            p.sent_tick = Some(tick);
        }
        for (traffic, (messages, bytes)) in self.traffic.iter().zip(written) {
            if messages > 0 {
                traffic.messages_out.inc_by(messages);
                traffic.bytes_out.inc_by(bytes);
            }
        }
    }

    /// Every v2 member's frame for this tick (rows already written); frames and bytes
    /// written straight to sockets.
    fn snapshot_v2(&mut self, tick: u32) -> (u64, u64) {
        let Some(encoder) = self.encoder.as_mut().filter(|_| self.members.v2 > 0) else {
            return (0, 0);
        };
        let started = (self.stopwatch)();
        if let Err(e) = encoder.begin_tick(tick, &self.rows) {
            warn!(error = %e, "v2 encoder refused this tick's rows; no v2 frames this tick");
            return (0, 0);
        }
        let before = encoder.stats();
        let players = &self.players;
        let view_of = |m: &Member| match m.player {
            Some(pid) => (
                v2::View::Around(pid.0),
                players.get(&pid).map_or(0, |p| p.last_seq),
            ),
            None => (v2::View::Everything, 0),
        };
        let written = self
            .members
            .snapshot_v2(encoder, view_of, &mut self.departed, &self.metrics);
        let after = encoder.stats();
        self.metrics
            .v2_encode_seconds
            .inc_by(((self.stopwatch)() - started).as_secs_f64());
        self.metrics
            .v2_keyframes
            .inc_by(after.keyframes - before.keyframes);
        self.metrics.v2_deltas.inc_by(after.deltas - before.deltas);
        self.metrics
            .v2_bytes
            .inc_by(after.bytes.total() - before.bytes.total());
        written
    }

    fn broadcast(&mut self, skip: Option<SessionId>, msg: &ServerMessage) {
        self.members.broadcast(
            skip,
            |enc| encode_server(enc, msg),
            &mut self.departed,
            &self.metrics,
        );
    }

    fn join(&mut self, j: Join, now: Instant) {
        if j.outbox.gone().is_some() {
            // The session ended before it got here: its seat and claim go with `j`.
            return;
        }
        if j.subprotocol.is_v2() && self.encoder.is_none() {
            j.outbox.request_close_because(
                CloseReason::Internal,
                Some(format!(
                    "this game's rows cannot be sent as {}",
                    j.subprotocol
                )),
            );
            return;
        }
        let account = self.accounts.get(&j.sub).copied().unwrap_or_default();
        if let Some(old) = account.session {
            self.replace_session(old, now);
        }
        match (j.role, account.player) {
            (Role::Player, Some(pid)) => self.resume(pid, j),
            (Role::Player, None) => self.add_player(j),
            (Role::Spectator, player) => {
                if let Some(pid) = player {
                    // The account's player stops being controlled: it waits for resume.
                    self.set_away(pid, now);
                }
                self.add_spectator(j);
            }
        }
    }

    /// Closes a session replaced by a newer one of the same account (4004).
    fn replace_session(&mut self, old: SessionId, now: Instant) {
        let Some(m) = self.members.remove(old) else {
            return;
        };
        m.outbox.request_close(CloseReason::Replaced);
        if let Some(a) = self.accounts.get_mut(&m.sub) {
            a.session = None;
        }
        if let Some(pid) = m.player {
            self.set_away(pid, now);
        }
    }

    fn add_player(&mut self, j: Join) {
        let pid = self.game.add_player();
        self.members_changed = true;
        let member = Self::member(&j, Some(pid));
        let claim = j
            .claim
            .unwrap_or_else(|| self.directory.claim(&j.sub, &self.name, true));
        self.players.insert(
            pid,
            PlayerSlot {
                sub: Arc::clone(&j.sub),
                name: j.name.clone(),
                session: Some(j.session),
                last_seq: 0,
                sent_tick: None,
                away_until: None,
                _seat: j.seat,
                _claim: Some(claim),
            },
        );
        self.admit(j.session, member);
        self.introduce(j.session, j.subprotocol, Role::Player, false);
        // The newcomer's roster already names it.
        self.broadcast(
            Some(j.session),
            &ServerMessage::Event(Event::Player {
                id: pid.0,
                name: j.name,
            }),
        );
    }

    fn resume(&mut self, pid: PlayerId, j: Join) {
        let member = Self::member(&j, Some(pid));
        let Some(p) = self.players.get_mut(&pid) else {
            return;
        };
        p.session = Some(j.session);
        p.away_until = None;
        // `seq` is per session: the new connection counts from scratch, and has been
        // sent nothing yet.
        p.last_seq = 0;
        p.sent_tick = None;
        p.name = j.name.clone();
        if let Some(claim) = j.claim {
            p._claim = Some(claim);
        }
        self.game.set_away(pid, false);
        // The entity already holds a seat; the one reserved for this connection goes.
        drop(j.seat);
        self.admit(j.session, member);
        self.introduce(j.session, j.subprotocol, Role::Player, true);
        self.broadcast(
            Some(j.session),
            &ServerMessage::Event(Event::Player {
                id: pid.0,
                name: j.name,
            }),
        );
    }

    fn add_spectator(&mut self, j: Join) {
        let mut member = Self::member(&j, None);
        member._seat = Some(j.seat);
        member._claim = j.claim;
        self.admit(j.session, member);
        self.introduce(j.session, j.subprotocol, Role::Spectator, false);
    }

    /// A member for `j`'s session.
    fn member(j: &Join, player: Option<PlayerId>) -> Member {
        Member {
            outbox: Arc::clone(&j.outbox),
            encoding: j.subprotocol.encoding(),
            player,
            name: j.name.clone(),
            sub: Arc::clone(&j.sub),
            _seat: None,
            _claim: None,
            v2: j.subprotocol.is_v2().then(Box::default),
        }
    }

    /// Makes `member` the account's live session here.
    fn admit(&mut self, session: SessionId, member: Member) {
        let account = self.accounts.entry(Arc::clone(&member.sub)).or_default();
        account.session = Some(session);
        if member.player.is_some() {
            account.player = member.player;
        }
        self.members.insert(session, member);
    }

    /// Sends a newcomer `welcome`, the game's introduction and the roster, in that order.
    fn introduce(
        &mut self,
        session: SessionId,
        subprotocol: Subprotocol,
        role: Role,
        resumed: bool,
    ) {
        let encoding = subprotocol.encoding();
        let Some(m) = self.members.get(session) else {
            return;
        };
        let welcome = ServerMessage::Welcome(Welcome {
            you: m.player.map_or(0, |p| p.0),
            room: self.name.to_string(),
            tick: self.game.tick(),
            tick_rate: self.tick_rate,
            map: self.game.map_name().to_owned(),
            protocol: subprotocol.name().to_owned(),
            snap_rate: self.assets.engine.snapshot_rate,
            role: role.as_str().to_owned(),
            resumed,
            game: G::NAME.to_owned(),
            schema: subprotocol.is_v2().then(|| self.schema.clone()),
            info: self.game.welcome_info(),
        });
        let mut intro = Vec::new();
        self.game.intro(&mut intro);
        let roster = self.players.iter().map(|(id, p)| {
            encode_server(
                encoding,
                &ServerMessage::Event(Event::Player {
                    id: id.0,
                    name: p.name.clone(),
                }),
            )
        });
        let messages = std::iter::once(encode_server(encoding, &welcome))
            .chain(intro.iter().map(|e| encode_event(encoding, e)))
            .chain(roster)
            .collect::<Vec<_>>();
        for bytes in messages {
            if !self.members.send_to(session, bytes, &self.metrics) {
                break;
            }
        }
    }

    /// The player's session is gone or replaced: keep it for the grace period, or remove
    /// it at once when there is none.
    fn set_away(&mut self, pid: PlayerId, now: Instant) {
        let grace = self.grace();
        if grace.is_zero() {
            self.remove_player(pid);
            return;
        }
        let Some(p) = self.players.get_mut(&pid) else {
            return;
        };
        p.session = None;
        p.away_until = Some(now + grace);
        self.game.set_away(pid, true);
        debug!(player = pid.0, "player away, awaiting resume");
    }

    /// How long a dropped player is kept for resume.
    fn grace(&self) -> Duration {
        Duration::from_secs_f32(self.assets.engine.resume_grace_s.max(0.0))
    }

    fn process_departures(&mut self, now: Instant) {
        while let Some((session, gone)) = self.departed.pop() {
            let Some(m) = self.members.remove(session) else {
                continue;
            };
            if let Some(a) = self.accounts.get_mut(&m.sub)
                && a.session == Some(session)
            {
                a.session = None;
            }
            let player = m.player.filter(|pid| {
                self.players
                    .get(pid)
                    .is_some_and(|p| p.session == Some(session))
            });
            match (player, gone) {
                (Some(pid), Gone::Dropped) => self.set_away(pid, now),
                (Some(pid), Gone::Left) => self.remove_player(pid),
                (None, _) => {}
            }
            self.forget_if_empty(&m.sub);
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
        self.members_changed = true;
        if let Some(a) = self.accounts.get_mut(&p.sub) {
            a.player = None;
        }
        self.forget_if_empty(&p.sub);
        self.game.remove_player(pid);
        self.broadcast(None, &ServerMessage::Event(Event::Leave { id: pid.0 }));
    }

    fn forget_if_empty(&mut self, sub: &str) {
        if self
            .accounts
            .get(sub)
            .is_some_and(|a| a.player.is_none() && a.session.is_none())
        {
            self.accounts.remove(sub);
        }
    }

    fn should_close(&mut self, now: Instant) -> bool {
        if !self.members.is_empty() || !self.players.is_empty() {
            self.empty_since = None;
            return false;
        }
        let since = *self.empty_since.get_or_insert(now);
        let ttl = Duration::from_secs_f32(self.assets.engine.empty_room_close_s.max(0.0));
        now.duration_since(since) >= ttl && self.directory.close_if_idle(&self.name)
    }

    fn describe(&self) -> serde_json::Value {
        let players: Vec<_> = self
            .players
            .iter()
            .map(|(id, p)| {
                let mut entry = serde_json::json!({
                    "id": id.0,
                    "sub": &*p.sub,
                    "name": p.name,
                    "connected": p.session.is_some(),
                    "ack": p.last_seq,
                });
                if let (Some(entry), serde_json::Value::Object(game)) =
                    (entry.as_object_mut(), self.game.describe_player(*id))
                {
                    entry.extend(game);
                }
                entry
            })
            .collect();
        serde_json::json!({
            "name": &*self.name,
            "game": G::NAME,
            "tick": self.game.tick(),
            "tick_rate": self.tick_rate,
            "map": self.game.map_name(),
            "players": players,
            "spectators": self.members.spectators(),
            "capacity": self.shared.player_capacity.load(Ordering::Acquire),
            "encodings": { "msgpack": self.members.in_use[0], "json": self.members.in_use[1] },
        })
    }

    /// The game (read-only).
    pub fn game(&self) -> &G {
        &self.game
    }

    /// The room's metric handles.
    pub fn metrics(&self) -> &RoomMetrics {
        &self.metrics
    }

    /// The room's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }
}

/// A room's checkpoint, read and checked, its game restored: what
/// [`RoomCore::restore`] reopens a room from. Reading it first lets the caller open a
/// fresh room instead when the bytes cannot be used.
pub struct RoomCheckpoint<G: Game> {
    game: G,
    saved: SavedRoom,
}

impl<G: Game> std::fmt::Debug for RoomCheckpoint<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomCheckpoint")
            .field("game", &G::NAME)
            .field("tick", &self.game.tick())
            .field("players", &self.saved.players.len())
            .finish()
    }
}

impl<G: Game> RoomCheckpoint<G> {
    /// Reads a [`RoomCore::checkpoint`] of game `G` and restores its game over `assets`.
    pub fn read(bytes: &[u8], assets: &Assets<G::Assets>) -> Result<Self, RestoreError> {
        let mut saved = SavedRoom::decode(bytes, G::NAME)?;
        let game = G::restore(&assets.game, &std::mem::take(&mut saved.state))?;
        Ok(RoomCheckpoint { game, saved })
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

/// The v2 encoder for a game's schema and the engine's view settings; `None` (logged) if
/// the schema cannot be encoded.
fn v2_encoder(schema: &RowSchema, engine: &EngineSettings) -> Option<v2::Encoder> {
    let radius = engine.view_radius;
    let config = v2::EncoderConfig {
        interest: v2::Interest {
            radius,
            // Entities stay in view a little past the radius, so one walking along the
            // border does not flicker.
            margin: (radius * VIEW_MARGIN).max(MIN_VIEW_MARGIN),
        },
        ..v2::EncoderConfig::new(engine.tick_rate.max(1))
    };
    v2::Encoder::new(schema, config)
        .inspect_err(|e| warn!(error = %e, "the game's rows cannot be encoded as v2"))
        .ok()
}

/// How far past the view radius a known entity stays in view, as a share of the radius.
const VIEW_MARGIN: f32 = 0.1;
/// ...and at least this many units.
const MIN_VIEW_MARGIN: f32 = 2.0;

/// The rotation's first map, or any map of the game when the rotation names none it has.
fn first_map<A: GameAssets>(assets: &Assets<A>) -> String {
    assets
        .engine
        .maps
        .iter()
        .find(|name| assets.game.has_map(name))
        .cloned()
        .unwrap_or_default()
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
