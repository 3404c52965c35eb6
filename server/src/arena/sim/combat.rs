//! Weapons and projectiles: firing, swept flight, hits, damage and kills.
//!
//! A projectile is tested along the whole segment it covers in a step (against walls
//! inflated by its radius and players inflated by it), so no speed lets it skip through
//! anything; the earliest contact wins and a wall wins a tie. A new shot from a player
//! who was looking at the past flies its first steps through the recorded past
//! ([`super::lag`]), under the same rules. Must not move players or respawn anyone: death
//! only starts the respawn timer.

use rallypoint_protocol::message::Event;
use slotmap::SlotMap;

use super::geom::{self, Aabb};
use super::lag;
use super::round::TIMER_SLACK_S;
use super::world::{Player, PlayerId, PlayerKey, Projectile, World};

/// Gap between the shooter's circle and a new projectile's circle, so the shot does not
/// start touching its own shooter.
const MUZZLE_GAP: f64 = 1e-3;

impl World {
    /// Every living, present player holding the trigger with its cooldown over fires
    /// once. A shot whose path from the shooter's centre to the muzzle touches a wall, or
    /// whose muzzle is off the map, is absorbed: it costs the cooldown but spawns nothing,
    /// so hugging a wall never shoots through it. A shot from a player looking at the
    /// past is fast-forwarded through it (see [`super::lag`]) before it joins the present.
    pub(super) fn fire_weapons(&mut self, dt: f64) {
        let weapon = &self.tuning.weapon;
        let projectile_radius = f64::from(weapon.projectile_radius);
        let speed = f64::from(weapon.projectile_speed);
        let muzzle = f64::from(self.tuning.player.radius) + projectile_radius + MUZZLE_GAP;
        let (width, height) = (f64::from(self.map.width), f64::from(self.map.height));
        let window = lag::window_ticks(weapon.lag_compensation_s, dt);
        let mut shots = std::mem::take(&mut self.scratch_shots);
        shots.clear();
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
            let rewind = lag::rewind(self.tick, p.control.view, window, self.history.len());
            let projectile = Projectile {
                id: 0,
                owner: key,
                owner_id: p.id,
                x: start_x as f32,
                y: start_y as f32,
                vx: (cos * speed) as f32,
                vy: (sin * speed) as f32,
                life_s: f64::from(weapon.projectile_lifetime_s),
            };
            shots.push((projectile, rewind));
        }
        for (projectile, rewind) in shots.drain(..) {
            self.launch(projectile, rewind, dt);
        }
        self.scratch_shots = shots;
    }

    /// Puts a new projectile in flight: first `rewind` steps through the recorded past,
    /// each against the players of its tick, then into the present (unless it hit
    /// something or ran out on the way).
    fn launch(&mut self, mut shot: Projectile, rewind: usize, dt: f64) {
        let (flight, walls) = (self.flight(dt), &self.walls);
        let first_tick = self.tick.wrapping_sub(rewind as u32).wrapping_add(1);
        for i in 0..rewind {
            let Some(frame) = self.history.at(first_tick.wrapping_add(i as u32)) else {
                break;
            };
            let (players, owner) = (&self.players, shot.owner);
            let targets = frame
                .bodies
                .iter()
                .filter(|s| s.key != owner && players.get(s.key).is_some_and(Player::is_tangible))
                .map(|s| (s.key, s.x, s.y));
            match flight.fly(&mut shot, walls, targets) {
                Flew::On => {}
                Flew::Hit(victim) => {
                    flight
                        .hit(victim, &shot)
                        .apply(&mut self.players, &mut self.events);
                    return;
                }
                Flew::Ended => return,
            }
        }
        shot.id = self.ids.allocate();
        self.projectiles.insert(shot);
    }

    /// Moves every projectile one step (new ones included: a shot travels during the step
    /// it is fired), resolving what it hits first.
    pub(super) fn advance_projectiles(&mut self, dt: f64) {
        let flight = self.flight(dt);
        let walls = &self.walls;
        let players = &mut self.players;
        let events = &mut self.events;
        let ids = &mut self.ids;
        self.projectiles.retain(|_, shot| {
            let owner = shot.owner;
            let targets = players
                .iter()
                .filter(|(key, p)| *key != owner && p.is_tangible())
                .map(|(key, p)| (key, p.x, p.y));
            match flight.fly(shot, walls, targets) {
                Flew::On => true,
                Flew::Hit(victim) => {
                    flight.hit(victim, shot).apply(players, events);
                    ids.release(shot.id);
                    false
                }
                Flew::Ended => {
                    ids.release(shot.id);
                    false
                }
            }
        });
    }

    /// This step's flight rules.
    fn flight(&self, dt: f64) -> Flight {
        let tuning = &self.tuning;
        let projectile_radius = f64::from(tuning.weapon.projectile_radius);
        Flight {
            dt,
            projectile_radius,
            hit_radius: f64::from(tuning.player.radius) + projectile_radius,
            width: f64::from(self.map.width),
            height: f64::from(self.map.height),
            damage: tuning.weapon.damage,
            respawn_delay: f64::from(tuning.player.respawn_delay_s),
        }
    }
}

/// How one step of a projectile's flight ended.
enum Flew {
    /// Still flying, one step further on.
    On,
    /// It reached this player first.
    Hit(PlayerKey),
    /// It hit a wall, left the map or ran out of time.
    Ended,
}

/// What a step of flight needs to know, read once per step.
struct Flight {
    dt: f64,
    projectile_radius: f64,
    hit_radius: f64,
    width: f64,
    height: f64,
    damage: u16,
    respawn_delay: f64,
}

impl Flight {
    /// Flies `shot` one step along its whole segment against `walls` and `targets`
    /// (players it may hit, where they are): the earliest contact wins, a wall wins a tie.
    fn fly(
        &self,
        shot: &mut Projectile,
        walls: &[Aabb],
        targets: impl Iterator<Item = (PlayerKey, f32, f32)>,
    ) -> Flew {
        if shot.life_s <= TIMER_SLACK_S {
            return Flew::Ended;
        }
        let (x, y) = (f64::from(shot.x), f64::from(shot.y));
        let (dx, dy) = (f64::from(shot.vx) * self.dt, f64::from(shot.vy) * self.dt);
        let mut first_t = f64::INFINITY;
        for wall in walls {
            let wall = wall.inflated(self.projectile_radius);
            if let Some(t) = geom::segment_hits_rect(x, y, dx, dy, &wall) {
                first_t = first_t.min(t);
            }
        }
        let mut victim = None;
        for (key, px, py) in targets {
            let (px, py) = (f64::from(px), f64::from(py));
            if let Some(t) = geom::segment_hits_circle(x, y, dx, dy, px, py, self.hit_radius)
                && t < first_t
            {
                first_t = t;
                victim = Some(key);
            }
        }
        if let Some(victim) = victim {
            return Flew::Hit(victim);
        }
        if first_t.is_finite() {
            return Flew::Ended;
        }
        let (new_x, new_y) = (x + dx, y + dy);
        if !(0.0..=self.width).contains(&new_x) || !(0.0..=self.height).contains(&new_y) {
            return Flew::Ended;
        }
        shot.x = new_x as f32;
        shot.y = new_y as f32;
        shot.life_s -= self.dt;
        Flew::On
    }

    fn hit(&self, victim: PlayerKey, shot: &Projectile) -> Hit {
        Hit {
            victim,
            shooter: shot.owner,
            shooter_id: shot.owner_id,
            damage: self.damage,
            respawn_delay: self.respawn_delay,
        }
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
