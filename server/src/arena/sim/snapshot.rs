//! What the world shows outward: snapshot rows, map geometry, the current round's start,
//! and the state hash.
//!
//! Read-only over the world; must not change state or allocate anything but the output
//! it is asked for (`write_entities` only pushes rows into the caller's buffer).

use rallypoint_protocol::entity::{Entity, PICKUP_ACTIVE, PLAYER_AWAY, PLAYER_DEAD};
use rallypoint_protocol::message::{Event, MapInfo};
use rallypoint_protocol::rows::Rows;
use slotmap::Key;

use super::hash::StateHasher;
use super::world::{Player, World};
use crate::arena::assets::{MapDef, Tuning};

impl World {
    /// Appends one row per entity: players, then pickups, then projectiles.
    pub fn write_entities(&self, out: &mut Vec<Entity>) {
        out.reserve(self.players.len() + self.pickups.len() + self.projectiles.len());
        self.each_entity(|e, _| out.push(e));
    }

    /// Appends one row of the arena's schema per entity, in the order of
    /// [`World::write_entities`]; players' rows also carry their velocity (v2 only).
    pub fn write_rows(&self, rows: &mut Rows) {
        self.each_entity(|e, velocity| e.push_row(rows, velocity));
    }

    /// Every entity's typed row, with a player's velocity beside it.
    fn each_entity(&self, mut f: impl FnMut(Entity, (f32, f32))) {
        for p in self.players.values() {
            let mut flags = 0;
            if !p.alive {
                flags |= PLAYER_DEAD;
            }
            if p.away {
                flags |= PLAYER_AWAY;
            }
            let row = Entity::Player {
                id: p.id.0,
                x: p.x,
                y: p.y,
                aim: p.aim,
                hp: p.hp,
                score: p.score,
                flags,
            };
            f(row, (p.vx, p.vy));
        }
        for p in self.pickups.values() {
            let row = Entity::Pickup {
                id: p.id,
                x: p.x,
                y: p.y,
                flags: if p.available { PICKUP_ACTIVE } else { 0 },
            };
            f(row, (0.0, 0.0));
        }
        for p in self.projectiles.values() {
            let row = Entity::Projectile {
                id: p.id,
                x: p.x,
                y: p.y,
                vx: p.vx,
                vy: p.vy,
                owner: p.owner_id.0,
            };
            f(row, (0.0, 0.0));
        }
    }

    /// Geometry of the map in play.
    pub fn map_info(&self) -> MapInfo {
        MapInfo {
            name: self.map.name.clone(),
            w: self.map.width,
            h: self.map.height,
            walls: self
                .map
                .walls
                .iter()
                .map(|r| [r.x, r.y, r.w, r.h])
                .collect(),
        }
    }

    /// The current round's `RoundStart`, for late joiners. Before the first step, round 1
    /// has not started and `end_tick` is 0: the tick arithmetic needs a step's `dt`.
    pub fn round_start_event(&self) -> Event {
        Event::RoundStart {
            round: self.round.number,
            map: self.map.name.clone(),
            end_tick: self.round.end_tick,
            score_limit: self.round.score_limit,
        }
    }

    /// FNV-1a over every bit of simulation state, in a fixed order: equal hashes after
    /// the same calls mean the worlds have not diverged. Undrained events are output, not
    /// state, and are left out.
    pub fn state_hash(&self) -> u64 {
        let mut h = StateHasher::new();
        h.u32(self.tick);
        h.u64(self.rng.state());
        self.round.hash_into(&mut h);
        hash_map(&mut h, &self.map);
        h.bool(self.next_map.is_some());
        if let Some(map) = &self.next_map {
            hash_map(&mut h, map);
        }
        hash_tuning(&mut h, &self.tuning);
        // Slot indices too: they fix where the next insert goes, hence future iteration
        // order. (Versions do not, and a restored checkpoint's free slots differ in them.)
        h.usize(self.players.len());
        for (key, p) in &self.players {
            h.u32(key.data().as_ffi() as u32);
            p.hash_into(&mut h);
        }
        h.usize(self.pickups.len());
        for (key, p) in &self.pickups {
            h.u32(key.data().as_ffi() as u32);
            h.u32(p.id);
            h.f32(p.x);
            h.f32(p.y);
            h.bool(p.available);
            h.f64(p.respawn_in_s);
        }
        h.usize(self.projectiles.len());
        for (key, p) in &self.projectiles {
            h.u32(key.data().as_ffi() as u32);
            h.u32(p.id);
            h.u32(p.owner_id.0);
            for v in [p.x, p.y, p.vx, p.vy] {
                h.f32(v);
            }
            h.f64(p.life_s);
        }
        self.ids.hash_into(&mut h);
        self.history.hash_into(&mut h);
        h.finish()
    }
}

impl Player {
    pub(super) fn hash_into(&self, h: &mut StateHasher) {
        h.u32(self.id.0);
        for v in [self.x, self.y, self.vx, self.vy, self.aim] {
            h.f32(v);
        }
        h.u16(self.hp);
        h.i32(self.score);
        h.bool(self.alive);
        h.bool(self.away);
        h.f64(self.respawn_in_s);
        h.f64(self.cooldown_s);
        h.f64(self.control.mx);
        h.f64(self.control.my);
        h.bool(self.control.aim.is_some());
        h.f32(self.control.aim.unwrap_or(0.0));
        h.bool(self.control.fire);
        h.bool(self.control.view.is_some());
        h.u32(self.control.view.unwrap_or(0));
    }
}

fn hash_map(h: &mut StateHasher, map: &MapDef) {
    h.str(&map.name);
    h.f32(map.width);
    h.f32(map.height);
    h.usize(map.walls.len());
    for r in &map.walls {
        for v in [r.x, r.y, r.w, r.h] {
            h.f32(v);
        }
    }
    for points in [&map.spawns, &map.pickups] {
        h.usize(points.len());
        for p in points {
            h.f32(p.x);
            h.f32(p.y);
        }
    }
}

fn hash_tuning(h: &mut StateHasher, t: &Tuning) {
    let p = &t.player;
    for v in [p.radius, p.max_speed, p.acceleration, p.respawn_delay_s] {
        h.f32(v);
    }
    h.u16(p.max_health);
    let w = &t.weapon;
    for v in [
        w.cooldown_s,
        w.projectile_speed,
        w.projectile_radius,
        w.projectile_lifetime_s,
    ] {
        h.f32(v);
    }
    h.u16(w.damage);
    h.f32(w.lag_compensation_s);
    h.f32(t.pickup.radius);
    h.u16(t.pickup.heal);
    h.f32(t.pickup.respawn_s);
    h.u32(t.round.score_limit);
    h.f32(t.round.time_limit_s);
    h.f32(t.round.intermission_s);
}
