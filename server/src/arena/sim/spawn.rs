//! Choosing where a player (re)appears, and putting it there.
//!
//! A spawn point is free when it is farther than two radii from every tangible player;
//! the seeded RNG picks among the free ones so spawns are not predictable, and with none
//! free the least crowded one wins. Must draw randomness only from the world's RNG.

use rallypoint_protocol::message::Event;
use slotmap::SlotMap;

use super::world::{Player, PlayerKey, World};
use crate::arena::assets::Point;
use rallypoint_protocol::rng::SplitMix64;

impl World {
    /// A spawn position for a player of the current radius, already settled clear of
    /// walls (spawns are validated for the radius at load time; a hot-reloaded larger
    /// radius must still not put anyone inside a wall).
    pub(super) fn choose_spawn(&mut self) -> (f32, f32) {
        let radius = f64::from(self.tuning.player.radius);
        let point = pick_spawn(&self.map.spawns, &self.players, radius, &mut self.rng);
        let (x, y) = match point {
            Some(p) => (f64::from(p.x), f64::from(p.y)),
            // Validated maps always have a spawn; a broken one must not panic.
            None => (
                f64::from(self.map.width) / 2.0,
                f64::from(self.map.height) / 2.0,
            ),
        };
        let (x, y) = self.arena().settle(x, y);
        (x as f32, y as f32)
    }

    /// Brings `key` back alive at full health at a free spawn point and emits `Respawn`.
    pub(super) fn respawn(&mut self, key: PlayerKey) {
        if !self.players.contains_key(key) {
            return;
        }
        let (x, y) = self.choose_spawn();
        let max_health = self.tuning.player.max_health;
        let Some(p) = self.players.get_mut(key) else {
            return;
        };
        p.x = x;
        p.y = y;
        p.vx = 0.0;
        p.vy = 0.0;
        p.hp = max_health;
        p.alive = true;
        p.respawn_in_s = 0.0;
        p.cooldown_s = 0.0;
        self.events.push(Event::Respawn { id: p.id.0, x, y });
        self.history.forget(key);
    }
}

fn pick_spawn<'a>(
    spawns: &'a [Point],
    players: &SlotMap<PlayerKey, Player>,
    radius: f64,
    rng: &mut SplitMix64,
) -> Option<&'a Point> {
    let nearest_sq = |s: &Point| {
        players
            .values()
            .filter(|p| p.is_tangible())
            .map(|p| {
                let dx = f64::from(p.x) - f64::from(s.x);
                let dy = f64::from(p.y) - f64::from(s.y);
                dx * dx + dy * dy
            })
            .fold(f64::INFINITY, f64::min)
    };
    let clear_sq = (2.0 * radius) * (2.0 * radius);
    let is_free = |s: &&Point| nearest_sq(s) > clear_sq;
    let free = spawns.iter().filter(is_free).count();
    if free > 0 {
        return spawns.iter().filter(is_free).nth(rng.below(free));
    }
    // Nothing free: the spawn whose nearest player is farthest, first one on ties.
    let mut best: Option<(&Point, f64)> = None;
    for s in spawns {
        let d = nearest_sq(s);
        if best.is_none_or(|(_, best_d)| d > best_d) {
            best = Some((s, d));
        }
    }
    best.map(|(s, _)| s)
}
