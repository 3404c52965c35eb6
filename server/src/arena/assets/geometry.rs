//! Map geometry rules: walls inside the map with a positive size, spawn points where a
//! player fits, pickups clear of walls, and (through `reach`) every pickup and spawn point
//! reachable on foot.
//!
//! Must not parse anything: it gets numbers with the spans to blame. Messages name the
//! entry by its 1-based number in the file (`spawn #3`) and quote its values.
//!
//! A spawn point cut off from the other spawn points is an error, not a warning: players
//! starting there could never meet the rest, which breaks every round they spawn into.

use std::ops::Range;

use super::reach;
use super::{Point, Rect, Tuning};
use crate::assets::{Check, Entry};

/// Slack for values that touch exactly (`x + w = width`) but round in `f32`.
const EPS: f32 = 1e-3;

/// A wall and the spans of its size values, blamed when the size is not positive.
#[derive(Debug, Clone)]
pub(crate) struct WallEntry {
    pub rect: Rect,
    pub w_span: Range<usize>,
    pub h_span: Range<usize>,
}

/// A map's contents as read, before validation.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub width: f32,
    pub height: f32,
    pub walls: Vec<Entry<WallEntry>>,
    pub spawns: Vec<Entry<Point>>,
    pub pickups: Vec<Entry<Point>>,
}

/// Reports every geometry rule the map breaks.
pub(crate) fn check(c: &mut Check<'_>, map: &Layout, tuning: &Tuning) {
    let (width, height) = (map.width, map.height);
    let size = format!("{width} × {height}");
    let radius = tuning.player.radius;
    let pickup_radius = tuning.pickup.radius;

    let mut solid: Vec<&Entry<WallEntry>> = Vec::new();
    for wall in &map.walls {
        let r = wall.value.rect;
        if r.w <= 0.0 || r.h <= 0.0 {
            let span = if r.w <= 0.0 {
                &wall.value.w_span
            } else {
                &wall.value.h_span
            };
            c.report(
                span.clone(),
                format!("{} has a non-positive size", describe_wall(wall)),
                Some("`w` (width) and `h` (height) must both be greater than 0".to_string()),
            );
            continue;
        }
        solid.push(wall);
        if r.x < -EPS || r.y < -EPS || r.x + r.w > width + EPS || r.y + r.h > height + EPS {
            c.report(
                wall.span.clone(),
                format!("{} goes outside the {size} map", describe_wall(wall)),
                Some(format!(
                    "a wall must satisfy 0 ≤ x, x + w ≤ {width}, 0 ≤ y and y + h ≤ {height} (x, y is its top-left corner)"
                )),
            );
        }
    }

    let mut open_spawns: Vec<&Entry<Point>> = Vec::new();
    for spawn in &map.spawns {
        let what = format!("spawn #{} at {}", spawn.number, describe_point(spawn.value));
        if place_circle(
            c, &what, spawn, radius, "a player", &size, width, height, &solid,
        ) {
            open_spawns.push(spawn);
        }
    }
    let mut open_pickups: Vec<&Entry<Point>> = Vec::new();
    for pickup in &map.pickups {
        let what = format!(
            "pickup #{} at {}",
            pickup.number,
            describe_point(pickup.value)
        );
        if place_circle(
            c,
            &what,
            pickup,
            pickup_radius,
            "a pickup",
            &size,
            width,
            height,
            &solid,
        ) {
            open_pickups.push(pickup);
        }
    }

    if open_spawns.is_empty() {
        return;
    }
    let rects: Vec<Rect> = solid.iter().map(|w| w.value.rect).collect();
    let spawn_points: Vec<Point> = open_spawns.iter().map(|s| s.value).collect();
    let pickup_points: Vec<Point> = open_pickups.iter().map(|p| p.value).collect();
    let reach = reach::analyse(
        &reach::Arena {
            width,
            height,
            walls: &rects,
            radius,
        },
        &spawn_points,
        &pickup_points,
        pickup_radius,
        reach::MAX_CELLS,
    );
    let gap = 2.0 * radius + reach.cell;
    let gap_help = format!(
        "players (radius {radius}) fit through gaps at least {gap} units wide, between walls or between a wall and the map edge"
    );

    // The area with the most spawn points is "the arena"; ties go to the earliest spawn.
    let mut counts: Vec<(u16, usize)> = Vec::new();
    for c in reach.spawn_component.iter().flatten() {
        match counts.iter_mut().find(|(id, _)| id == c) {
            Some((_, n)) => *n += 1,
            None => counts.push((*c, 1)),
        }
    }
    let main = counts
        .iter()
        .fold(None, |best: Option<(u16, usize)>, &(id, n)| match best {
            Some((_, m)) if m >= n => best,
            _ => Some((id, n)),
        });
    let main_spawn = main.and_then(|(id, _)| {
        reach
            .spawn_component
            .iter()
            .position(|c| *c == Some(id))
            .map(|i| open_spawns[i].number)
    });
    for (spawn, component) in open_spawns.iter().zip(&reach.spawn_component) {
        let what = format!("spawn #{} at {}", spawn.number, describe_point(spawn.value));
        match (component, main, main_spawn) {
            (None, _, _) => c.report(
                spawn.span.clone(),
                format!("{what} is boxed in: a player starting there cannot move"),
                Some(format!("move it into open floor; {gap_help}")),
            ),
            (Some(area), Some((main_id, _)), Some(first)) if *area != main_id => c.report(
                spawn.span.clone(),
                format!(
                    "{what} is cut off from spawn #{first}: players starting there can never reach the others"
                ),
                Some(format!("open a way through to the other spawn points, or move this one; {gap_help}")),
            ),
            _ => {}
        }
    }
    for (pickup, reachable) in open_pickups.iter().zip(&reach.pickup_reachable) {
        if !reachable {
            c.report(
                pickup.span.clone(),
                format!(
                    "pickup #{} at {} is unreachable: no player can get to it from any spawn point",
                    pickup.number,
                    describe_point(pickup.value)
                ),
                Some(format!("open a way to it, or move it; {gap_help}")),
            );
        }
    }
}

/// Checks that a circle of `radius` around the entry fits in the map and touches no wall;
/// reports the first rule it breaks. Returns whether it is well placed.
#[allow(clippy::too_many_arguments)]
fn place_circle(
    c: &mut Check<'_>,
    what: &str,
    entry: &Entry<Point>,
    radius: f32,
    thing: &str,
    size: &str,
    width: f32,
    height: f32,
    walls: &[&Entry<WallEntry>],
) -> bool {
    let p = entry.value;
    let mut report = |message: String, help: String| {
        c.report(entry.span.clone(), message, Some(help));
        false
    };
    if p.x < 0.0 || p.y < 0.0 || p.x > width || p.y > height {
        return report(
            format!("{what} is outside the {size} map"),
            format!(
                "x must be between 0 and {width}, y between 0 and {height} (y grows downwards)"
            ),
        );
    }
    let edge = p.x.min(p.y).min(width - p.x).min(height - p.y);
    if edge < radius - EPS {
        return report(
            format!("{what} is too close to the edge of the map"),
            format!(
                "{thing} (radius {radius}) must fit inside the map: keep it at least {radius} units from every edge (it is {} away)",
                round2(edge)
            ),
        );
    }
    if let Some(wall) = walls.iter().find(|w| strictly_inside(p, w.value.rect)) {
        return report(
            format!("{what} is inside {}", describe_wall(wall)),
            "move it into open floor".to_string(),
        );
    }
    if let Some((wall, d)) = walls
        .iter()
        .map(|w| (w, distance_to_rect(p, w.value.rect)))
        .find(|(_, d)| *d < radius - EPS)
    {
        return report(
            format!("{what} is too close to {}", describe_wall(wall)),
            format!(
                "{thing} (radius {radius}) would overlap the wall: move it at least {radius} units away from it (it is {} away)",
                round2(d)
            ),
        );
    }
    true
}

fn strictly_inside(p: Point, r: Rect) -> bool {
    p.x > r.x && p.x < r.x + r.w && p.y > r.y && p.y < r.y + r.h
}

/// Euclidean distance from a point to the nearest point of a rectangle (0 inside).
pub(crate) fn distance_to_rect(p: Point, r: Rect) -> f32 {
    let dx = (r.x - p.x).max(p.x - (r.x + r.w)).max(0.0);
    let dy = (r.y - p.y).max(p.y - (r.y + r.h)).max(0.0);
    (dx * dx + dy * dy).sqrt()
}

fn describe_wall(wall: &Entry<WallEntry>) -> String {
    let r = wall.value.rect;
    format!(
        "wall #{} (x={}, y={}, w={}, h={})",
        wall.number, r.x, r.y, r.w, r.h
    )
}

fn describe_point(p: Point) -> String {
    format!("({}, {})", p.x, p.y)
}

fn round2(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}
