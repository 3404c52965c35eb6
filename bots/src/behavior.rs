//! What a bot does with its controls: pure decisions from what it has seen.
//!
//! `idle` sends zero-move inputs, `wander` walks in a random direction that changes about
//! every second, and `fight` chases, aims at and shoots the nearest living enemy in the
//! latest snapshot. Time comes in as a parameter and randomness from a seeded [`Rng`],
//! so every decision is reproducible in a unit test. Must not do IO.

use std::f32::consts::TAU;
use std::time::{Duration, Instant};

use rallypoint_protocol::entity::{Entity, PLAYER_AWAY, PLAYER_DEAD};

use rallypoint_protocol::rng::SplitMix64 as Rng;

/// One sample of a bot's controls: exactly the fields of an `input` message.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Control {
    /// Move direction, x.
    pub mx: f32,
    /// Move direction, y (grows downwards).
    pub my: f32,
    /// Aim angle, radians.
    pub aim: f32,
    /// Trigger held.
    pub fire: bool,
}

/// Random walk: a new heading every 0.7–1.3 s (randomised so bots do not turn in step).
#[derive(Debug, Clone)]
pub struct Wander {
    heading: f32,
    next_turn: Option<Instant>,
}

impl Default for Wander {
    fn default() -> Self {
        Wander::new()
    }
}

impl Wander {
    /// A walker that picks its first heading on the first call.
    pub fn new() -> Wander {
        Wander {
            heading: 0.0,
            next_turn: None,
        }
    }

    /// The controls at `now`.
    pub fn control(&mut self, now: Instant, rng: &mut Rng) -> Control {
        if self.next_turn.is_none_or(|t| now >= t) {
            self.heading = rng.range(0.0, f64::from(TAU)) as f32;
            self.next_turn = Some(now + Duration::from_secs_f64(rng.range(0.7, 1.3)));
        }
        Control {
            mx: self.heading.cos(),
            my: self.heading.sin(),
            aim: self.heading,
            fire: false,
        }
    }
}

/// Closer than this, a fighter circles its target instead of running into it.
const KEEP_DISTANCE: f32 = 6.0;
/// A fighter only pulls the trigger within this range (the default projectile flies
/// 30 units/s for 1.5 s: 45 units).
const FIRE_RANGE: f32 = 40.0;

/// The fight decision for player `me` given the latest entities: move towards (or, once
/// close, around) the nearest living enemy, aim at it, fire when in range. `None` when
/// there is nobody to fight or `me` is dead or absent: the caller decides what to do
/// meanwhile (wander).
pub fn fight(me: u32, ents: &[Entity]) -> Option<Control> {
    let alive = |flags: u8| flags & (PLAYER_DEAD | PLAYER_AWAY) == 0;
    let (mx, my) = ents.iter().find_map(|e| match *e {
        Entity::Player {
            id, x, y, flags, ..
        } if id == me && alive(flags) => Some((x, y)),
        _ => None,
    })?;
    let (tx, ty, d2) = ents
        .iter()
        .filter_map(|e| match *e {
            Entity::Player {
                id, x, y, flags, ..
            } if id != me && alive(flags) => {
                let (dx, dy) = (x - mx, y - my);
                Some((x, y, dx * dx + dy * dy))
            }
            _ => None,
        })
        .min_by(|a, b| a.2.total_cmp(&b.2))?;
    let (dx, dy) = (tx - mx, ty - my);
    let dist = d2.sqrt();
    if !dist.is_finite() || dist < 1e-3 {
        return Some(Control {
            fire: true,
            ..Control::default()
        });
    }
    let (ux, uy) = (dx / dist, dy / dist);
    let (move_x, move_y) = if dist > KEEP_DISTANCE {
        (ux, uy)
    } else {
        (-uy, ux)
    };
    Some(Control {
        mx: move_x,
        my: move_y,
        aim: dy.atan2(dx),
        fire: dist <= FIRE_RANGE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(id: u32, x: f32, y: f32, flags: u8) -> Entity {
        Entity::Player {
            id,
            x,
            y,
            aim: 0.0,
            hp: 100,
            score: 0,
            flags,
        }
    }

    #[test]
    fn fighter_chases_and_aims_at_the_nearest_living_enemy() {
        let ents = [
            player(1, 0.0, 0.0, 0),
            player(2, 20.0, 0.0, 0),
            player(3, 0.0, 10.0, PLAYER_DEAD),
            player(4, 0.0, -30.0, 0),
            Entity::Projectile {
                id: 9,
                x: 1.0,
                y: 1.0,
                vx: 0.0,
                vy: 0.0,
                owner: 2,
            },
        ];
        let c = fight(1, &ents).unwrap();
        assert!((c.mx - 1.0).abs() < 1e-6 && c.my.abs() < 1e-6);
        assert!(c.aim.abs() < 1e-6);
        assert!(c.fire);
        // Aim follows +y (downwards) as a positive angle.
        let c = fight(1, &[player(1, 0.0, 0.0, 0), player(2, 0.0, 3.0, 0)]).unwrap();
        assert!((c.aim - std::f32::consts::FRAC_PI_2).abs() < 1e-6);
        // Close: circle instead of ramming.
        assert!((c.mx + 1.0).abs() < 1e-6 && c.my.abs() < 1e-6);
    }

    #[test]
    fn nobody_to_fight() {
        assert_eq!(fight(1, &[player(1, 0.0, 0.0, 0)]), None);
        assert_eq!(
            fight(
                1,
                &[player(1, 0.0, 0.0, PLAYER_DEAD), player(2, 1.0, 0.0, 0)]
            ),
            None
        );
        assert_eq!(fight(5, &[player(1, 0.0, 0.0, 0)]), None);
        assert_eq!(
            fight(
                1,
                &[player(1, 0.0, 0.0, 0), player(2, 1.0, 0.0, PLAYER_AWAY)]
            ),
            None
        );
    }

    #[test]
    fn wander_turns_about_every_second() {
        let mut rng = Rng::new(3);
        let mut w = Wander::new();
        let t0 = Instant::now();
        let a = w.control(t0, &mut rng);
        assert!(((a.mx * a.mx + a.my * a.my) - 1.0).abs() < 1e-5);
        assert_eq!(w.control(t0 + Duration::from_millis(500), &mut rng), a);
        assert_ne!(w.control(t0 + Duration::from_millis(1400), &mut rng), a);
    }
}
