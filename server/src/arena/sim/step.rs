//! One fixed step: the order in which things happen, plus the phases too small for a
//! module of their own (timers, controls, movement, pickups).
//!
//! Order within a playing step: respawn and pickup timers, controls, movement, firing
//! (lag-compensated shots resolve their rewound stretch here), projectiles (which may
//! kill), pickups (so the dead take nothing), the round check, and last the players'
//! positions into the lag-compensation history. Must not allocate in the steady state:
//! every pass walks the slotmaps in place or reuses a buffer owned by the world.

use rallypoint_protocol::message::Event;

use super::control::{Control, SafeControl};
use super::lag;
use super::motion::{Arena, Body};
use super::round::{Phase, TIMER_SLACK_S};
use super::world::{PlayerId, World};

/// Longest step simulated at once. A room runs at 10..=120 Hz; a longer `dt` is a caller
/// bug, and capping it bounds the work of a single step.
const MAX_STEP_S: f64 = 1.0;

impl World {
    /// One fixed step of `dt` seconds. `controls`: the current control of each present
    /// player; players not listed have a zero control (no move, no fire), unknown ids are
    /// ignored, and the last entry wins for a repeated id. A non-finite or negative `dt`
    /// counts as 0 (the tick still advances); one above 1 s counts as 1 s.
    pub fn step(&mut self, controls: &[(PlayerId, Control)], dt: f32) {
        let dt = if dt.is_finite() && dt > 0.0 {
            f64::from(dt).min(MAX_STEP_S)
        } else {
            0.0
        };
        match self.round.phase {
            Phase::Pending => self.begin_round(dt),
            Phase::Intermission if self.round.intermission_left_s <= TIMER_SLACK_S => {
                self.begin_round(dt)
            }
            Phase::Intermission | Phase::Playing => {}
        }
        if self.round.phase == Phase::Playing {
            self.run_timers(dt);
            self.apply_controls(controls);
            self.move_players(dt);
            self.fire_weapons(dt);
            self.advance_projectiles(dt);
            self.collect_pickups();
            self.round.time_left_s -= dt;
            self.end_round_if_over(dt);
        } else {
            self.round.intermission_left_s -= dt;
        }
        self.tick = self.tick.wrapping_add(1);
        self.ids.advance(dt);
        if self.round.phase == Phase::Playing {
            let keep = lag::window_ticks(self.tuning.weapon.lag_compensation_s, dt);
            self.history.record(self.tick, &self.players, keep);
        }
    }

    /// Cooldowns, respawns and pickup returns. Away players' timers are frozen with
    /// them: a player who drops while dead is still dead on resume.
    fn run_timers(&mut self, dt: f64) {
        let mut due = std::mem::take(&mut self.scratch_keys);
        due.clear();
        for (key, p) in self.players.iter_mut() {
            if p.away {
                continue;
            }
            p.cooldown_s = (p.cooldown_s - dt).max(0.0);
            if !p.alive {
                p.respawn_in_s -= dt;
                if p.respawn_in_s <= TIMER_SLACK_S {
                    due.push(key);
                }
            }
        }
        for &key in &due {
            self.respawn(key);
        }
        self.scratch_keys = due;

        for pickup in self.pickups.values_mut() {
            if !pickup.available {
                pickup.respawn_in_s -= dt;
                if pickup.respawn_in_s <= TIMER_SLACK_S {
                    pickup.available = true;
                    pickup.respawn_in_s = 0.0;
                }
            }
        }
    }

    fn apply_controls(&mut self, controls: &[(PlayerId, Control)]) {
        for p in self.players.values_mut() {
            p.control = SafeControl::default();
        }
        for (id, control) in controls {
            let Some(p) = self.key_of(*id).and_then(|k| self.players.get_mut(k)) else {
                continue;
            };
            if p.away {
                continue;
            }
            p.control = control.sanitized();
            if let Some(aim) = p.control.aim {
                p.aim = aim;
            }
        }
    }

    fn move_players(&mut self, dt: f64) {
        let tuning = &self.tuning.player;
        let max_speed = f64::from(tuning.max_speed);
        let max_change = f64::from(tuning.acceleration) * dt;
        // Built from the fields, not `self.arena()`, so the player map stays borrowable.
        let arena = Arena {
            walls: &self.walls,
            width: f64::from(self.map.width),
            height: f64::from(self.map.height),
            radius: f64::from(tuning.radius),
        };
        for p in self.players.values_mut() {
            if !p.is_tangible() {
                continue;
            }
            let desired = (p.control.mx * max_speed, p.control.my * max_speed);
            let body = Body {
                x: p.x,
                y: p.y,
                vx: p.vx,
                vy: p.vy,
            };
            let (moved, _) = arena.advance(body, desired, max_change, dt);
            (p.x, p.y, p.vx, p.vy) = (moved.x, moved.y, moved.vx, moved.vy);
        }
    }

    /// Living, present players below full health take the first available pickup they
    /// overlap; one pickup serves one player, first in player order.
    fn collect_pickups(&mut self) {
        let tuning = &self.tuning;
        let max_health = tuning.player.max_health;
        let reach = f64::from(tuning.player.radius) + f64::from(tuning.pickup.radius);
        for pickup in self.pickups.values_mut() {
            if !pickup.available {
                continue;
            }
            for p in self.players.values_mut() {
                if !p.is_tangible() || p.hp >= max_health {
                    continue;
                }
                let dx = f64::from(p.x) - f64::from(pickup.x);
                let dy = f64::from(p.y) - f64::from(pickup.y);
                if dx * dx + dy * dy >= reach * reach {
                    continue;
                }
                p.hp = p.hp.saturating_add(tuning.pickup.heal).min(max_health);
                pickup.available = false;
                pickup.respawn_in_s = f64::from(tuning.pickup.respawn_s);
                self.events.push(Event::Pickup {
                    id: pickup.id,
                    by: p.id.0,
                });
                break;
            }
        }
    }
}
