//! Weapons and projectiles: firing, swept flight, hits, damage and kills.
//!
//! A projectile is tested along the whole segment it covers in a step (against walls
//! inflated by its radius and players inflated by it), so no speed lets it skip through
//! anything; the earliest contact wins and a wall wins a tie. Must not move players or
//! respawn anyone: death only starts the respawn timer.

use rallypoint_protocol::message::Event;
use slotmap::SlotMap;

use super::geom;
use super::round::TIMER_SLACK_S;
use super::world::{Player, PlayerId, PlayerKey, Projectile, World};

/// Gap between the shooter's circle and a new projectile's circle, so the shot does not
/// start touching its own shooter.
const MUZZLE_GAP: f64 = 1e-3;

impl World {
    /// Every living, present player holding the trigger with its cooldown over fires
    /// once. A shot whose path from the shooter's centre to the muzzle touches a wall, or
    /// whose muzzle is off the map, is absorbed: it costs the cooldown but spawns nothing,
    /// so hugging a wall never shoots through it.
    pub(super) fn fire_weapons(&mut self) {
        let weapon = &self.tuning.weapon;
        let projectile_radius = f64::from(weapon.projectile_radius);
        let speed = f64::from(weapon.projectile_speed);
        let muzzle = f64::from(self.tuning.player.radius) + projectile_radius + MUZZLE_GAP;
        let (width, height) = (f64::from(self.map.width), f64::from(self.map.height));
        for (key, p) in self.players.iter_mut() {
            if !p.is_tangible() || !p.control.fire || p.cooldown_s > TIMER_SLACK_S {
                continue;
            }
            p.cooldown_s = f64::from(weapon.cooldown_s);
            let (sin, cos) = f64::from(p.aim).sin_cos();
            let (x, y) = (f64::from(p.x), f64::from(p.y));
            let (start_x, start_y) = (x + cos * muzzle, y + sin * muzzle);
            if !(0.0..=width).contains(&start_x) || !(0.0..=height).contains(&start_y) {
                continue;
            }
            let blocked = self.walls.iter().any(|wall| {
                let wall = wall.inflated(projectile_radius);
                geom::segment_hits_rect(x, y, start_x - x, start_y - y, &wall).is_some()
            });
            if blocked {
                continue;
            }
            self.projectiles.insert(Projectile {
                id: self.ids.allocate(),
                owner: key,
                owner_id: p.id,
                x: start_x as f32,
                y: start_y as f32,
                vx: (cos * speed) as f32,
                vy: (sin * speed) as f32,
                life_s: f64::from(weapon.projectile_lifetime_s),
            });
        }
    }

    /// Moves every projectile one step (new ones included: a shot travels during the step
    /// it is fired), resolving what it hits first.
    pub(super) fn advance_projectiles(&mut self, dt: f64) {
        let tuning = &self.tuning;
        let projectile_radius = f64::from(tuning.weapon.projectile_radius);
        let hit_radius = f64::from(tuning.player.radius) + projectile_radius;
        let damage = tuning.weapon.damage;
        let respawn_delay = f64::from(tuning.player.respawn_delay_s);
        let (width, height) = (f64::from(self.map.width), f64::from(self.map.height));
        let walls = &self.walls;
        let players = &mut self.players;
        let events = &mut self.events;
        let ids = &mut self.ids;
        self.projectiles.retain(|_, shot| {
            if shot.life_s <= TIMER_SLACK_S {
                ids.release(shot.id);
                return false;
            }
            let (x, y) = (f64::from(shot.x), f64::from(shot.y));
            let (dx, dy) = (f64::from(shot.vx) * dt, f64::from(shot.vy) * dt);
            let mut first_t = f64::INFINITY;
            for wall in walls {
                let wall = wall.inflated(projectile_radius);
                if let Some(t) = geom::segment_hits_rect(x, y, dx, dy, &wall) {
                    first_t = first_t.min(t);
                }
            }
            let mut victim = None;
            for (key, p) in players.iter() {
                if key == shot.owner || !p.is_tangible() {
                    continue;
                }
                let (px, py) = (f64::from(p.x), f64::from(p.y));
                if let Some(t) = geom::segment_hits_circle(x, y, dx, dy, px, py, hit_radius)
                    && t < first_t
                {
                    first_t = t;
                    victim = Some(key);
                }
            }
            if let Some(victim) = victim {
                let hit = Hit {
                    victim,
                    shooter: shot.owner,
                    shooter_id: shot.owner_id,
                    damage,
                    respawn_delay,
                };
                hit.apply(players, events);
            }
            if first_t.is_finite() {
                ids.release(shot.id);
                return false;
            }
            let (new_x, new_y) = (x + dx, y + dy);
            if !(0.0..=width).contains(&new_x) || !(0.0..=height).contains(&new_y) {
                ids.release(shot.id);
                return false;
            }
            shot.x = new_x as f32;
            shot.y = new_y as f32;
            shot.life_s -= dt;
            true
        });
    }
}

/// A projectile reaching a player.
struct Hit {
    victim: PlayerKey,
    shooter: PlayerKey,
    shooter_id: PlayerId,
    damage: u16,
    respawn_delay: f64,
}

impl Hit {
    fn apply(&self, players: &mut SlotMap<PlayerKey, Player>, events: &mut Vec<Event>) {
        let Some(victim) = players.get_mut(self.victim) else {
            return;
        };
        victim.hp = victim.hp.saturating_sub(self.damage);
        if victim.hp > 0 {
            return;
        }
        victim.alive = false;
        victim.vx = 0.0;
        victim.vy = 0.0;
        victim.respawn_in_s = self.respawn_delay;
        let victim_id = victim.id;
        // The shooter may be dead or away by now (the shot was already flying); the kill
        // still counts. It cannot be gone: removing a player removes its projectiles.
        if let Some(shooter) = players.get_mut(self.shooter) {
            shooter.score = shooter.score.saturating_add(1);
        }
        events.push(Event::Kill {
            killer: self.shooter_id.0,
            victim: victim_id.0,
        });
    }
}
