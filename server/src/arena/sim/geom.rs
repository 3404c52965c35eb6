//! Geometry: circle-against-rectangle contact and the casts that keep moving things out
//! of walls.
//!
//! Pure functions over numbers; nothing here knows about players, projectiles or tuning.
//! The math is done in f64 even though positions are stored as f32: contact points come
//! from `sqrt(r² - d²)` with nearly equal squares, where f32 would lose the "touching, not
//! overlapping" guarantee on a 1000-unit map.

use crate::arena::assets::Rect;

/// Gap left between a stopped circle and what stopped it. Far above f32 rounding on a
/// 1000-unit map (6e-5), far below anything visible; it also lets a circle resting against
/// a wall slide along it without the wall catching it on the next axis.
pub(crate) const CONTACT_SKIN: f64 = 1e-3;

/// A rectangle as edges, in f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Aabb {
    pub(crate) min_x: f64,
    pub(crate) min_y: f64,
    pub(crate) max_x: f64,
    pub(crate) max_y: f64,
}

impl Aabb {
    pub(crate) fn from_rect(r: &Rect) -> Self {
        let (x, y, w, h) = (
            f64::from(r.x),
            f64::from(r.y),
            f64::from(r.w),
            f64::from(r.h),
        );
        Aabb {
            min_x: x,
            min_y: y,
            max_x: x + w,
            max_y: y + h,
        }
    }

    pub(crate) fn inflated(self, by: f64) -> Self {
        Aabb {
            min_x: self.min_x - by,
            min_y: self.min_y - by,
            max_x: self.max_x + by,
            max_y: self.max_y + by,
        }
    }

    /// Squared distance from a point to the rectangle (0 inside).
    pub(crate) fn distance_sq(&self, x: f64, y: f64) -> f64 {
        let dx = gap_to_interval(x, self.min_x, self.max_x);
        let dy = gap_to_interval(y, self.min_y, self.max_y);
        dx * dx + dy * dy
    }

    #[cfg(test)]
    pub(crate) fn overlaps_circle(&self, x: f64, y: f64, radius: f64) -> bool {
        self.distance_sq(x, y) < radius * radius
    }
}

/// `v` limited to `[lo, hi]`. Unlike `f64::clamp` it cannot panic: malformed data (a
/// NaN bound, `lo > hi`) gives a wrong number, not a crashed room.
pub(crate) fn clamp_lenient(v: f64, lo: f64, hi: f64) -> f64 {
    v.max(lo).min(hi)
}

/// Distance from `v` to the interval `[lo, hi]` (0 inside).
fn gap_to_interval(v: f64, lo: f64, hi: f64) -> f64 {
    if v < lo {
        lo - v
    } else if v > hi {
        v - hi
    } else {
        0.0
    }
}

/// Which coordinate a move changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    X,
    Y,
}

/// How much of `delta` a circle may travel along `axis` before touching `wall`, leaving
/// [`CONTACT_SKIN`]. Exact for any distance, so fast movers cannot tunnel.
///
/// A circle that already overlaps the wall (only possible after a tuning change grew the
/// radius) is not held: pinning it would trap it inside forever.
pub(crate) fn limit_axis_move(
    axis: Axis,
    x: f64,
    y: f64,
    delta: f64,
    radius: f64,
    wall: &Aabb,
) -> f64 {
    let (along, across, lo, hi, across_lo, across_hi) = match axis {
        Axis::X => (x, y, wall.min_x, wall.max_x, wall.min_y, wall.max_y),
        Axis::Y => (y, x, wall.min_y, wall.max_y, wall.min_x, wall.max_x),
    };
    let across_gap = gap_to_interval(across, across_lo, across_hi);
    if across_gap >= radius {
        return delta;
    }
    // Centre positions along the axis where the circle would touch the wall: the flat
    // face when `across_gap` is 0, the rounded corner otherwise.
    let reach = (radius * radius - across_gap * across_gap).sqrt();
    let (blocked_lo, blocked_hi) = (lo - reach, hi + reach);
    if delta > 0.0 && along <= blocked_lo {
        delta.min((blocked_lo - CONTACT_SKIN - along).max(0.0))
    } else if delta < 0.0 && along >= blocked_hi {
        delta.max((blocked_hi + CONTACT_SKIN - along).min(0.0))
    } else {
        delta
    }
}

/// Where to put a circle overlapping `wall` so it touches it instead, by the shortest way
/// out; `None` when it does not overlap.
pub(crate) fn push_out(x: f64, y: f64, radius: f64, wall: &Aabb) -> Option<(f64, f64)> {
    let dist_sq = wall.distance_sq(x, y);
    if dist_sq >= radius * radius {
        return None;
    }
    let clear = radius + CONTACT_SKIN;
    if dist_sq > 0.0 {
        let closest_x = clamp_lenient(x, wall.min_x, wall.max_x);
        let closest_y = clamp_lenient(y, wall.min_y, wall.max_y);
        let dist = dist_sq.sqrt();
        let scale = clear / dist;
        return Some((
            closest_x + (x - closest_x) * scale,
            closest_y + (y - closest_y) * scale,
        ));
    }
    // Centre inside the rectangle: leave through the nearest face. Each exit is
    // (depth, new x, new y).
    let exits = [
        (x - wall.min_x, wall.min_x - clear, y),
        (wall.max_x - x, wall.max_x + clear, y),
        (y - wall.min_y, x, wall.min_y - clear),
        (wall.max_y - y, x, wall.max_y + clear),
    ];
    let mut best = exits[0];
    for exit in &exits[1..] {
        if exit.0 < best.0 {
            best = *exit;
        }
    }
    Some((best.1, best.2))
}

/// Fraction `t` in `[0, 1]` of the segment `p + t·d` at which it first touches `rect`
/// (closed), 0 if it starts inside; `None` if it never does.
pub(crate) fn segment_hits_rect(px: f64, py: f64, dx: f64, dy: f64, rect: &Aabb) -> Option<f64> {
    let mut t_enter: f64 = 0.0;
    let mut t_exit: f64 = 1.0;
    for (p, d, lo, hi) in [
        (px, dx, rect.min_x, rect.max_x),
        (py, dy, rect.min_y, rect.max_y),
    ] {
        if d == 0.0 {
            if p < lo || p > hi {
                return None;
            }
        } else {
            let (mut t0, mut t1) = ((lo - p) / d, (hi - p) / d);
            if t0 > t1 {
                std::mem::swap(&mut t0, &mut t1);
            }
            t_enter = t_enter.max(t0);
            t_exit = t_exit.min(t1);
            if t_enter > t_exit {
                return None;
            }
        }
    }
    Some(t_enter)
}

/// Fraction `t` in `[0, 1]` of the segment `p + t·d` at which it first comes within
/// `radius` of `(cx, cy)`, 0 if it starts within; `None` if it never does.
pub(crate) fn segment_hits_circle(
    px: f64,
    py: f64,
    dx: f64,
    dy: f64,
    cx: f64,
    cy: f64,
    radius: f64,
) -> Option<f64> {
    let (ox, oy) = (px - cx, py - cy);
    let c = ox * ox + oy * oy - radius * radius;
    if c <= 0.0 {
        return Some(0.0);
    }
    let a = dx * dx + dy * dy;
    let b = ox * dx + oy * dy;
    // Moving away (or not at all) from a circle we start outside of: no hit.
    if a == 0.0 || b >= 0.0 {
        return None;
    }
    let discriminant = b * b - a * c;
    if discriminant < 0.0 {
        return None;
    }
    let t = (-b - discriminant.sqrt()) / a;
    (t <= 1.0).then_some(t.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_box() -> Aabb {
        Aabb {
            min_x: 10.0,
            min_y: 10.0,
            max_x: 12.0,
            max_y: 12.0,
        }
    }

    #[test]
    fn axis_move_stops_at_face_and_rounds_corners() {
        let wall = unit_box();
        // Head-on: stops with the skin left.
        let d = limit_axis_move(Axis::X, 5.0, 11.0, 100.0, 0.5, &wall);
        assert!((5.0 + d - (9.5 - CONTACT_SKIN)).abs() < 1e-12);
        // Passing above the corner, clear by more than the radius: unhindered.
        assert_eq!(limit_axis_move(Axis::X, 5.0, 9.4, 100.0, 0.5, &wall), 100.0);
        // Grazing the corner: stops where the circle touches the corner point.
        let d = limit_axis_move(Axis::X, 5.0, 9.7, 100.0, 0.5, &wall);
        let (x, y): (f64, f64) = (5.0 + d, 9.7);
        let dist = ((10.0 - x).powi(2) + (10.0 - y).powi(2)).sqrt();
        assert!((0.5..0.5 + 2.0 * CONTACT_SKIN).contains(&dist), "{dist}");
        // Moving away is never limited, whichever side.
        assert_eq!(limit_axis_move(Axis::Y, 11.0, 13.0, 1.0, 0.5, &wall), 1.0);
        assert_eq!(limit_axis_move(Axis::Y, 11.0, 9.0, -1.0, 0.5, &wall), -1.0);
        // Negative direction stops at the far face.
        let d = limit_axis_move(Axis::Y, 11.0, 20.0, -100.0, 0.5, &wall);
        assert!((20.0 + d - (12.5 + CONTACT_SKIN)).abs() < 1e-12);
    }

    #[test]
    fn push_out_leaves_by_the_nearest_face() {
        let wall = unit_box();
        let (x, y) = push_out(10.2, 11.0, 0.5, &wall).unwrap();
        assert!((x - (9.5 - CONTACT_SKIN)).abs() < 1e-12 && y == 11.0);
        let (x, y) = push_out(11.0, 11.9, 0.5, &wall).unwrap();
        assert!(x == 11.0 && (y - (12.5 + CONTACT_SKIN)).abs() < 1e-12);
        let (x, y) = push_out(9.8, 11.0, 0.5, &wall).unwrap();
        assert!((x - (9.5 - CONTACT_SKIN)).abs() < 1e-12 && y == 11.0);
        assert_eq!(push_out(9.0, 11.0, 0.5, &wall), None);
    }

    #[test]
    fn segment_casts_find_the_first_contact() {
        let wall = unit_box();
        assert_eq!(segment_hits_rect(0.0, 11.0, 20.0, 0.0, &wall), Some(0.5));
        assert_eq!(segment_hits_rect(0.0, 11.0, 5.0, 0.0, &wall), None);
        assert_eq!(segment_hits_rect(0.0, 13.0, 20.0, 0.0, &wall), None);
        assert_eq!(segment_hits_rect(11.0, 11.0, 20.0, 0.0, &wall), Some(0.0));
        let t = segment_hits_rect(0.0, 0.0, 20.0, 20.0, &wall).unwrap();
        assert!((t - 0.5).abs() < 1e-12);

        assert_eq!(
            segment_hits_circle(0.0, 0.0, 10.0, 0.0, 5.0, 0.0, 1.0),
            Some(0.4)
        );
        assert_eq!(segment_hits_circle(0.0, 0.0, 3.0, 0.0, 5.0, 0.0, 1.0), None);
        assert_eq!(
            segment_hits_circle(0.0, 2.0, 10.0, 0.0, 5.0, 0.0, 1.0),
            None
        );
        assert_eq!(
            segment_hits_circle(5.5, 0.0, 10.0, 0.0, 5.0, 0.0, 1.0),
            Some(0.0)
        );
        assert_eq!(
            segment_hits_circle(7.0, 0.0, 10.0, 0.0, 5.0, 0.0, 1.0),
            None
        );
    }
}
