//! The state of one room's game and the API a room drives it through: construction,
//! settings, membership and player views. The step pipeline lives in `step.rs`, the
//! outward views (snapshot rows, map info, state hash) in `snapshot.rs`.
//!
//! Must not do IO or read a clock, and must not let the order of anything observable
//! depend on hashing: players, projectiles and pickups live in slotmaps, whose iteration
//! order is fixed by the sequence of operations.

use std::borrow::Cow;
use std::sync::Arc;

use rallypoint_protocol::message::Event;
use slotmap::{SlotMap, new_key_type};

use super::control::SafeControl;
use super::geom::Aabb;
use super::ids::WireIds;
use super::lag::History;
use super::motion::Arena;
use super::round::Round;
use super::saved::{self, SavedSlots};
use crate::arena::assets::{MapDef, Tuning};
use rallypoint_protocol::rng::SplitMix64;

new_key_type! {
    pub(super) struct PlayerKey;
    pub(super) struct ProjectileKey;
    pub(super) struct PickupKey;
}

pub use crate::game::PlayerId;

/// A read-only copy of one player's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlayerView {
    pub id: PlayerId,
    /// Centre, world units.
    pub x: f32,
    pub y: f32,
    /// Velocity, units per second; 0 along an axis the player is pressed against.
    pub vx: f32,
    pub vy: f32,
    /// Radians, 0 = +x, growing towards +y.
    pub aim: f32,
    pub hp: u16,
    /// Kills this round.
    pub score: i32,
    /// False while waiting to respawn.
    pub alive: bool,
    /// Connection dropped: frozen and intangible until `set_away(id, false)`.
    pub away: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Player {
    pub(super) id: PlayerId,
    pub(super) x: f32,
    pub(super) y: f32,
    pub(super) vx: f32,
    pub(super) vy: f32,
    pub(super) aim: f32,
    pub(super) hp: u16,
    pub(super) score: i32,
    pub(super) alive: bool,
    pub(super) away: bool,
    /// While dead: seconds of play left before respawning.
    pub(super) respawn_in_s: f64,
    /// Seconds before the weapon may fire again.
    pub(super) cooldown_s: f64,
    /// This step's input; zero unless the caller passed one.
    pub(super) control: SafeControl,
}

impl Player {
    /// Can be hit, take pickups and block spawn points: alive and connected.
    pub(super) fn is_tangible(&self) -> bool {
        self.alive && !self.away
    }

    fn view(&self) -> PlayerView {
        PlayerView {
            id: self.id,
            x: self.x,
            y: self.y,
            vx: self.vx,
            vy: self.vy,
            aim: self.aim,
            hp: self.hp,
            score: self.score,
            alive: self.alive,
            away: self.away,
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Projectile {
    pub(super) id: u32,
    pub(super) owner: PlayerKey,
    pub(super) owner_id: PlayerId,
    pub(super) x: f32,
    pub(super) y: f32,
    pub(super) vx: f32,
    pub(super) vy: f32,
    /// Seconds of flight left.
    pub(super) life_s: f64,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Pickup {
    pub(super) id: u32,
    pub(super) x: f32,
    pub(super) y: f32,
    pub(super) available: bool,
    /// While taken: seconds of play left before it is back.
    pub(super) respawn_in_s: f64,
}

/// What a checkpoint holds: every field of [`World`] but the ones derived from others.
/// Borrowed when saving, owned when restoring.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved<'a> {
    map: Cow<'a, Arc<MapDef>>,
    next_map: Cow<'a, Option<Arc<MapDef>>>,
    tuning: Cow<'a, Tuning>,
    rng: Cow<'a, SplitMix64>,
    tick: u32,
    round: Cow<'a, Round>,
    players: SavedSlots<PlayerKey, Player>,
    player_keys: Cow<'a, [Option<PlayerKey>]>,
    projectiles: SavedSlots<ProjectileKey, Projectile>,
    pickups: SavedSlots<PickupKey, Pickup>,
    ids: Cow<'a, WireIds>,
    events: Cow<'a, [Event]>,
    #[serde(default)]
    history: Cow<'a, History>,
}

/// One room's game.
#[derive(Debug)]
pub struct World {
    pub(super) map: Arc<MapDef>,
    /// `map.walls` as f64 boxes, rebuilt only on a map change.
    pub(super) walls: Vec<Aabb>,
    pub(super) next_map: Option<Arc<MapDef>>,
    pub(super) tuning: Tuning,
    pub(super) rng: SplitMix64,
    pub(super) tick: u32,
    pub(super) round: Round,
    pub(super) players: SlotMap<PlayerKey, Player>,
    /// Wire id → key, so a step's controls are found in O(1) each.
    pub(super) player_keys: Vec<Option<PlayerKey>>,
    pub(super) projectiles: SlotMap<ProjectileKey, Projectile>,
    pub(super) pickups: SlotMap<PickupKey, Pickup>,
    pub(super) ids: WireIds,
    pub(super) events: Vec<Event>,
    /// Where the players were over the lag-compensation window.
    pub(super) history: History,
    /// Reused buffer for "act on these players" passes that need the player map
    /// borrowed immutably while choosing (respawns).
    pub(super) scratch_keys: Vec<PlayerKey>,
    /// Reused buffer for the shots of a step, with their rewind.
    pub(super) scratch_shots: Vec<(Projectile, usize)>,
}

impl World {
    /// A world in round 1 at tick 0, with no players. Round 1's `RoundStart` is emitted
    /// by the first [`World::step`]: only a step knows `dt`, which its `end_tick` needs.
    pub fn new(map: Arc<MapDef>, tuning: Tuning, seed: u64) -> World {
        let round = Round::pending(&tuning.round);
        let mut world = World {
            map: Arc::clone(&map),
            walls: Vec::new(),
            next_map: None,
            tuning,
            rng: SplitMix64::new(seed),
            tick: 0,
            round,
            players: SlotMap::with_key(),
            player_keys: Vec::new(),
            projectiles: SlotMap::with_key(),
            pickups: SlotMap::with_key(),
            ids: WireIds::new(),
            events: Vec::new(),
            history: History::default(),
            scratch_keys: Vec::new(),
            scratch_shots: Vec::new(),
        };
        world.install_map(map);
        world
    }

    /// Steps taken so far.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// The map in play.
    pub fn map(&self) -> &Arc<MapDef> {
        &self.map
    }

    /// The tuning the next step will use.
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// Replaces the tuning as a whole; the next step uses it. The current round's score
    /// and time limits stay as announced in its `RoundStart` and change from the next
    /// round on.
    pub fn set_tuning(&mut self, tuning: Tuning) {
        self.tuning = tuning;
    }

    /// Queues the map for the next round start (replacing any map already queued).
    pub fn set_next_map(&mut self, map: Arc<MapDef>) {
        self.next_map = Some(map);
    }

    /// Adds a player, alive at full health at a free spawn point with score 0, even
    /// mid-round or during an intermission.
    pub fn add_player(&mut self) -> PlayerId {
        let id = PlayerId(self.ids.allocate());
        let (x, y) = self.choose_spawn();
        let key = self.players.insert(Player {
            id,
            x,
            y,
            vx: 0.0,
            vy: 0.0,
            aim: 0.0,
            hp: self.tuning.player.max_health,
            score: 0,
            alive: true,
            away: false,
            respawn_in_s: 0.0,
            cooldown_s: 0.0,
            control: SafeControl::default(),
        });
        let index = id.0 as usize;
        if index >= self.player_keys.len() {
            self.player_keys.resize(index + 1, None);
        }
        self.player_keys[index] = Some(key);
        id
    }

    /// Removes a player and its projectiles in flight. False if there is no such player.
    pub fn remove_player(&mut self, id: PlayerId) -> bool {
        let Some(key) = self.key_of(id) else {
            return false;
        };
        self.players.remove(key);
        if let Some(slot) = self.player_keys.get_mut(id.0 as usize) {
            *slot = None;
        }
        let ids = &mut self.ids;
        self.projectiles.retain(|_, p| {
            let keep = p.owner != key;
            if !keep {
                ids.release(p.id);
            }
            keep
        });
        self.ids.release(id.0);
        true
    }

    /// Marks a player away (connection dropped, kept for resume) or back. Away players are
    /// frozen where they are and intangible; health, score and position are kept. False
    /// if there is no such player.
    pub fn set_away(&mut self, id: PlayerId, away: bool) -> bool {
        let Some(player) = self.key_of(id).and_then(|k| self.players.get_mut(k)) else {
            return false;
        };
        player.away = away;
        if away {
            player.vx = 0.0;
            player.vy = 0.0;
            player.control = SafeControl::default();
        }
        true
    }

    /// One player's state, `None` if there is no such player.
    pub fn player(&self, id: PlayerId) -> Option<PlayerView> {
        self.key_of(id)
            .and_then(|k| self.players.get(k))
            .map(Player::view)
    }

    /// Every player (away ones included), in the same order as snapshot rows.
    pub fn players(&self) -> impl Iterator<Item = PlayerView> + '_ {
        self.players.values().map(Player::view)
    }

    /// Players in the world, away ones included.
    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    /// Events produced since the last call, in order.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    pub(super) fn key_of(&self, id: PlayerId) -> Option<PlayerKey> {
        self.player_keys.get(id.0 as usize).copied().flatten()
    }

    /// Where circles of the current player radius may be.
    pub(super) fn arena(&self) -> Arena<'_> {
        Arena {
            walls: &self.walls,
            width: f64::from(self.map.width),
            height: f64::from(self.map.height),
            radius: f64::from(self.tuning.player.radius),
        }
    }

    /// Puts `map` in play: its walls and a fresh pickup per pickup point (new ids; the
    /// old pickups' ids go into quarantine).
    pub(super) fn install_map(&mut self, map: Arc<MapDef>) {
        self.walls.clear();
        self.walls.extend(map.walls.iter().map(Aabb::from_rect));
        for pickup in self.pickups.values() {
            self.ids.release(pickup.id);
        }
        self.pickups.clear();
        for point in &map.pickups {
            let id = self.ids.allocate();
            self.pickups.insert(Pickup {
                id,
                x: point.x,
                y: point.y,
                available: true,
                respawn_in_s: 0.0,
            });
        }
        self.map = map;
    }

    /// The whole state as bytes (MessagePack): [`World::restore`] gives back a world that
    /// continues exactly as this one would, with the same [`World::state_hash`].
    pub fn checkpoint(&self) -> Vec<u8> {
        let saved = Saved {
            map: Cow::Borrowed(&self.map),
            next_map: Cow::Borrowed(&self.next_map),
            tuning: Cow::Borrowed(&self.tuning),
            rng: Cow::Borrowed(&self.rng),
            tick: self.tick,
            round: Cow::Borrowed(&self.round),
            players: saved::save(&self.players),
            player_keys: Cow::Borrowed(&self.player_keys[..]),
            projectiles: saved::save(&self.projectiles),
            pickups: saved::save(&self.pickups),
            ids: Cow::Borrowed(&self.ids),
            events: Cow::Borrowed(&self.events[..]),
            history: Cow::Borrowed(&self.history),
        };
        rmp_serde::to_vec_named(&saved).expect("a world always serializes")
    }

    /// A world from [`World::checkpoint`]'s bytes.
    pub fn restore(bytes: &[u8]) -> Result<World, String> {
        let s: Saved<'_> = rmp_serde::from_slice(bytes).map_err(|e| e.to_string())?;
        let map = s.map.into_owned();
        Ok(World {
            walls: map.walls.iter().map(Aabb::from_rect).collect(),
            map,
            next_map: s.next_map.into_owned(),
            tuning: s.tuning.into_owned(),
            rng: s.rng.into_owned(),
            tick: s.tick,
            round: s.round.into_owned(),
            players: saved::load(s.players),
            player_keys: s.player_keys.into_owned(),
            projectiles: saved::load(s.projectiles),
            pickups: saved::load(s.pickups),
            ids: s.ids.into_owned(),
            events: s.events.into_owned(),
            history: s.history.into_owned(),
            scratch_keys: Vec::new(),
            scratch_shots: Vec::new(),
        })
    }

    /// Test setup: puts a player somewhere without going through movement.
    #[cfg(test)]
    pub(super) fn teleport(&mut self, id: PlayerId, x: f32, y: f32) {
        if let Some(p) = self.key_of(id).and_then(|k| self.players.get_mut(k)) {
            p.x = x;
            p.y = y;
            p.vx = 0.0;
            p.vy = 0.0;
        }
    }
}
