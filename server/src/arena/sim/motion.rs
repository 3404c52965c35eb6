//! Player locomotion: steering towards the input velocity, and moving a circle through the
//! map so it never overlaps a wall or leaves the bounds.
//!
//! Knows circles, walls and bounds only; who may move, and when, is the world's business.

use super::geom::{self, Aabb, Axis, CONTACT_SKIN, clamp_lenient};

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
