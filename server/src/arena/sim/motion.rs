//! Player locomotion: steering towards the input velocity, and moving a circle through the
//! map so it never overlaps a wall or leaves the bounds.
//!
//! [`Mover`] offers the same step to clients that predict their own player: the code the
//! world moves players with, fed the same numbers, lands on the same bits.
//!
//! Knows circles, walls and bounds only; who may move, and when, is the world's business.

use rallypoint_protocol::message::{Input, MapInfo};

use super::control::Control;
use super::geom::{self, Aabb, Axis, CONTACT_SKIN, clamp_lenient};
use crate::arena::assets::Rect;

/// Upper bound on sub-steps per move. Sub-steps only make a long diagonal move follow the
/// diagonal instead of an L; collision safety comes from the exact per-axis casts, so
/// hitting this cap costs path fidelity, never correctness.
const MAX_SUB_STEPS: u32 = 64;

/// Moves `velocity` towards `desired` by at most `max_change` (acceleration × dt).
pub(crate) fn steer(velocity: (f64, f64), desired: (f64, f64), max_change: f64) -> (f64, f64) {
    let (dx, dy) = (desired.0 - velocity.0, desired.1 - velocity.1);
    let gap = dx.hypot(dy);
    if gap <= max_change {
        desired
    } else {
        let k = max_change / gap;
        (velocity.0 + dx * k, velocity.1 + dy * k)
    }
}

/// A circle body and the space it moves in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arena<'a> {
    pub(crate) walls: &'a [Aabb],
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) radius: f64,
}

/// Where a player is and how fast it goes: what one movement step reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Body {
    /// Centre, world units.
    pub x: f32,
    /// Centre, world units (y grows downwards).
    pub y: f32,
    /// Velocity, units per second; 0 along an axis the last step was blocked on.
    pub vx: f32,
    /// Velocity, units per second.
    pub vy: f32,
}

/// The arena's movement rules for one player, for a client that predicts its own: built
/// from the `map` event and the movement keys of `welcome`, stepped with the inputs the
/// client sends. Players do not collide with each other, so a prediction from the
/// server's position and velocity with the same inputs is exact until something else
/// moves the player (a respawn, a tuning change).
#[derive(Debug, Clone)]
pub struct Mover {
    walls: Vec<Aabb>,
    width: f64,
    height: f64,
    radius: f64,
    max_speed: f64,
    acceleration: f64,
}

impl Mover {
    /// The rules on `map` for a player of `radius` with the `max_speed` and
    /// `acceleration` of `welcome` (units, units/s, units/s²).
    pub fn new(map: &MapInfo, radius: f32, max_speed: f32, acceleration: f32) -> Mover {
        let walls = map
            .walls
            .iter()
            .map(|&[x, y, w, h]| Aabb::from_rect(&Rect { x, y, w, h }))
            .collect();
        Mover {
            walls,
            width: f64::from(map.w),
            height: f64::from(map.h),
            radius: f64::from(radius),
            max_speed: f64::from(max_speed),
            acceleration: f64::from(acceleration),
        }
    }

    /// One step of `dt` seconds under `input`'s move vector, as the server takes it
    /// (clamped to length 1).
    pub fn step(&self, body: &mut Body, input: &Input, dt: f32) -> Step {
        let (mx, my) = input.clamped_move();
        let c = Control {
            mx,
            my,
            ..Control::default()
        }
        .sanitized();
        let arena = Arena {
            walls: &self.walls,
            width: self.width,
            height: self.height,
            radius: self.radius,
        };
        let dt = f64::from(dt);
        let desired = (c.mx * self.max_speed, c.my * self.max_speed);
        let step;
        (*body, step) = arena.advance(*body, desired, self.acceleration * dt, dt);
        step
    }
}

impl Mover {
    /// Whether a circle of `radius` can travel in a straight line from `from` to `to`
    /// without touching a wall (a clear shot, for a projectile's radius).
    pub fn clear_line(&self, from: (f32, f32), to: (f32, f32), radius: f32) -> bool {
        let (x, y) = (f64::from(from.0), f64::from(from.1));
        let (dx, dy) = (f64::from(to.0) - x, f64::from(to.1) - y);
        let radius = f64::from(radius);
        !self
            .walls
            .iter()
            .any(|w| geom::segment_hits_rect(x, y, dx, dy, &w.inflated(radius)).is_some())
    }
}

/// What one movement step met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// A wall or the map's edge cut the move short (and stopped that axis).
    pub blocked: bool,
    /// The velocity reached the input's desired velocity: it no longer depends on the
    /// velocity before the step.
    pub settled: bool,
}

/// Result of [`Arena::slide`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slide {
    pub(crate) x: f64,
    pub(crate) y: f64,
    /// The move was cut short along x (a wall or the bound): the caller zeroes that
    /// velocity component so the player does not keep pushing into the wall.
    pub(crate) blocked_x: bool,
    pub(crate) blocked_y: bool,
}

impl Arena<'_> {
    /// Lowest and highest centre coordinate along one axis that keeps the circle inside
    /// the map; a map narrower than the circle pins it to the middle.
    fn bounds(&self, extent: f64) -> (f64, f64) {
        let margin = self.radius + CONTACT_SKIN;
        if extent < 2.0 * margin {
            (extent / 2.0, extent / 2.0)
        } else {
            (margin, extent - margin)
        }
    }

    /// Puts a circle that overlaps walls or sticks out of the map back in a legal place.
    /// Only a tuning change that grows the radius (or a map whose spawns do not fit it)
    /// gets a circle there; one pass is enough for walls that are not closer than a
    /// diameter apart, and the bounds always win.
    pub(crate) fn settle(&self, mut x: f64, mut y: f64) -> (f64, f64) {
        for wall in self.walls {
            if let Some((nx, ny)) = geom::push_out(x, y, self.radius, wall) {
                (x, y) = (nx, ny);
            }
        }
        let (lo_x, hi_x) = self.bounds(self.width);
        let (lo_y, hi_y) = self.bounds(self.height);
        (clamp_lenient(x, lo_x, hi_x), clamp_lenient(y, lo_y, hi_y))
    }

    /// One movement step: the velocity steered towards `desired` by at most
    /// `max_change`, then the body settled clear of walls and slid by velocity × `dt`. A
    /// blocked axis loses its velocity.
    pub(crate) fn advance(
        &self,
        body: Body,
        desired: (f64, f64),
        max_change: f64,
        dt: f64,
    ) -> (Body, Step) {
        let (vx, vy) = steer(
            (f64::from(body.vx), f64::from(body.vy)),
            desired,
            max_change,
        );
        let settled = (vx, vy) == desired;
        let (x, y) = self.settle(f64::from(body.x), f64::from(body.y));
        let moved = self.slide(x, y, vx * dt, vy * dt);
        let out = Body {
            x: moved.x as f32,
            y: moved.y as f32,
            vx: if moved.blocked_x { 0.0 } else { vx as f32 },
            vy: if moved.blocked_y { 0.0 } else { vy as f32 },
        };
        let step = Step {
            blocked: moved.blocked_x || moved.blocked_y,
            settled,
        };
        (out, step)
    }

    /// Moves the circle by `(dx, dy)`, x then y in sub-steps of at most half a radius,
    /// stopping at walls and the bounds and sliding along them.
    pub(crate) fn slide(&self, x: f64, y: f64, dx: f64, dy: f64) -> Slide {
        let mut out = Slide {
            x,
            y,
            blocked_x: false,
            blocked_y: false,
        };
        let distance = dx.hypot(dy);
        if distance == 0.0 || !distance.is_finite() {
            return out;
        }
        let max_sub_step = (self.radius * 0.5).max(1e-3);
        let sub_steps = (distance / max_sub_step)
            .ceil()
            .clamp(1.0, f64::from(MAX_SUB_STEPS));
        let (step_x, step_y) = (dx / sub_steps, dy / sub_steps);
        let (lo_x, hi_x) = self.bounds(self.width);
        let (lo_y, hi_y) = self.bounds(self.height);
        for _ in 0..sub_steps as u32 {
            if !out.blocked_x {
                let allowed = self.limit(Axis::X, out.x, out.y, step_x);
                let target = clamp_lenient(out.x + allowed, lo_x, hi_x);
                out.blocked_x = allowed != step_x || target != out.x + allowed;
                out.x = target;
            }
            if !out.blocked_y {
                let allowed = self.limit(Axis::Y, out.x, out.y, step_y);
                let target = clamp_lenient(out.y + allowed, lo_y, hi_y);
                out.blocked_y = allowed != step_y || target != out.y + allowed;
                out.y = target;
            }
            if out.blocked_x && out.blocked_y {
                break;
            }
        }
        out
    }

    fn limit(&self, axis: Axis, x: f64, y: f64, delta: f64) -> f64 {
        if delta == 0.0 {
            return 0.0;
        }
        let mut allowed = delta;
        for wall in self.walls {
            allowed = geom::limit_axis_move(axis, x, y, allowed, self.radius, wall);
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steer_reaches_the_target_without_overshoot() {
        assert_eq!(steer((0.0, 0.0), (8.0, 0.0), 2.0), (2.0, 0.0));
        assert_eq!(steer((7.0, 0.0), (8.0, 0.0), 2.0), (8.0, 0.0));
        let (vx, vy) = steer((3.0, 4.0), (0.0, 0.0), 2.5);
        assert!((vx - 1.5).abs() < 1e-12 && (vy - 2.0).abs() < 1e-12);
    }

    #[test]
    fn a_very_fast_circle_cannot_tunnel_through_a_thin_wall() {
        let walls = [Aabb {
            min_x: 10.0,
            min_y: 0.0,
            max_x: 10.01,
            max_y: 20.0,
        }];
        let arena = Arena {
            walls: &walls,
            width: 100.0,
            height: 20.0,
            radius: 0.1,
        };
        // 1000 sub-steps would be needed; the cap is 64, the casts still hold.
        let s = arena.slide(1.0, 10.0, 80.0, 0.0);
        assert!(s.blocked_x && !s.blocked_y);
        assert!(
            s.x < 10.0 - 0.1 && s.x > 10.0 - 0.1 - 2.0 * CONTACT_SKIN,
            "{}",
            s.x
        );
    }

    #[test]
    fn a_long_diagonal_move_follows_the_diagonal_not_an_l() {
        // Moving x fully then y fully would run into this wall; the diagonal clears it.
        let walls = [Aabb {
            min_x: 8.0,
            min_y: 0.0,
            max_x: 9.0,
            max_y: 4.0,
        }];
        let arena = Arena {
            walls: &walls,
            width: 20.0,
            height: 20.0,
            radius: 0.5,
        };
        let s = arena.slide(2.0, 2.0, 10.0, 10.0);
        assert!(!s.blocked_x && !s.blocked_y);
        assert!((s.x - 12.0).abs() < 1e-9 && (s.y - 12.0).abs() < 1e-9);
    }

    #[test]
    fn settle_pushes_out_of_walls_and_into_bounds() {
        let walls = [Aabb {
            min_x: 4.0,
            min_y: 4.0,
            max_x: 6.0,
            max_y: 6.0,
        }];
        let arena = Arena {
            walls: &walls,
            width: 10.0,
            height: 10.0,
            radius: 1.0,
        };
        let (x, y) = arena.settle(4.5, 5.0);
        assert!(!walls[0].overlaps_circle(x, y, 1.0));
        assert_eq!(
            arena.settle(-3.0, 50.0),
            (1.0 + CONTACT_SKIN, 9.0 - CONTACT_SKIN)
        );
    }
}
