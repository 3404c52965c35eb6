//! Map geometry rules: walls inside the map with a positive size, spawn points where a
//! player fits, pickups clear of walls, and (through `reach`) every pickup and spawn point
//! reachable on foot.
//!
//! Must not parse anything: it gets numbers with the spans to blame. Messages name the
//! entry by its 1-based number in the file (`spawn #3`) and quote its values.
//!
//! A spawn point cut off from the other spawn points is an error, not a warning: players
//! starting there could never meet the rest, which breaks every round they spawn into.

use std::cmp::Reverse;
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
    let solid = check_walls(c, map);
    let (radius, pickup_radius) = (tuning.player.radius, tuning.pickup.radius);
    let spawns = place(c, map, &solid, &map.spawns, ("spawn", "a player", radius));
    let pickups = place(
        c,
        map,
        &solid,
        &map.pickups,
        ("pickup", "a pickup", pickup_radius),
    );
    if spawns.is_empty() {
        return;
    }
    let points = |entries: &[&Entry<Point>]| entries.iter().map(|e| e.value).collect::<Vec<_>>();
    let arena = reach::Arena {
        width: map.width,
        height: map.height,
        walls: &solid.iter().map(|w| w.value.rect).collect::<Vec<_>>(),
        radius,
    };
    let reach = reach::analyse(
        &arena,
        &points(&spawns),
        &points(&pickups),
        pickup_radius,
        reach::MAX_CELLS,
    );
    let gap = 2.0 * radius + reach.cell;
    let gap_help = format!(
        "players (radius {radius}) fit through gaps at least {gap} units wide, between walls or between a wall and the map edge"
    );
    check_spawn_areas(c, &spawns, &reach.spawn_component, &gap_help);
    for (pickup, _) in pickups
        .iter()
        .zip(&reach.pickup_reachable)
        .filter(|(_, r)| !**r)
    {
        let what = describe("pickup", pickup);
        let message =
            format!("{what} is unreachable: no player can get to it from any spawn point");
        let help = format!("open a way to it, or move it; {gap_help}");
        c.report(pickup.span.clone(), message, Some(help));
    }
}

/// Walls of a positive size that stay inside the map; returns those with a size.
fn check_walls<'m>(c: &mut Check<'_>, map: &'m Layout) -> Vec<&'m Entry<WallEntry>> {
    let (width, height) = (map.width, map.height);
    let mut solid = Vec::new();
    for wall in &map.walls {
        let r = wall.value.rect;
        if r.w <= 0.0 || r.h <= 0.0 {
            let span = if r.w <= 0.0 {
                &wall.value.w_span
            } else {
                &wall.value.h_span
            };
            let message = format!("{} has a non-positive size", describe_wall(wall));
            let help = "`w` (width) and `h` (height) must both be greater than 0";
            c.report(span.clone(), message, Some(help.to_string()));
            continue;
        }
        solid.push(wall);
        if r.x < -EPS || r.y < -EPS || r.x + r.w > width + EPS || r.y + r.h > height + EPS {
            let message = format!(
                "{} goes outside the {width} × {height} map",
                describe_wall(wall)
            );
            let help = format!(
                "a wall must satisfy 0 ≤ x, x + w ≤ {width}, 0 ≤ y and y + h ≤ {height} (x, y is its top-left corner)"
            );
            c.report(wall.span.clone(), message, Some(help));
        }
    }
    solid
}

/// Spawn points (or pickups) where a circle of the kind's radius fits in the map and
/// touches no wall; reports the first rule each other one breaks.
fn place<'m>(
    c: &mut Check<'_>,
    map: &Layout,
    walls: &[&Entry<WallEntry>],
    entries: &'m [Entry<Point>],
    (kind, thing, radius): (&str, &str, f32),
) -> Vec<&'m Entry<Point>> {
    let mut placed = Vec::new();
    for entry in entries {
        match misplaced(entry.value, map, walls, thing, radius) {
            Some((message, help)) => {
                let message = format!("{} {message}", describe(kind, entry));
                c.report(entry.span.clone(), message, Some(help));
            }
            None => placed.push(entry),
        }
    }
    placed
}

/// The first placement rule a circle of `radius` around `p` breaks, as what is wrong and
/// how to fix it; `thing` names it in the help ("a player").
fn misplaced(
    p: Point,
    map: &Layout,
    walls: &[&Entry<WallEntry>],
    thing: &str,
    radius: f32,
) -> Option<(String, String)> {
    let (width, height) = (map.width, map.height);
    if p.x < 0.0 || p.y < 0.0 || p.x > width || p.y > height {
        let help = format!(
            "x must be between 0 and {width}, y between 0 and {height} (y grows downwards)"
        );
        return Some((format!("is outside the {width} × {height} map"), help));
    }
    let edge = p.x.min(p.y).min(width - p.x).min(height - p.y);
    if edge < radius - EPS {
        let help = format!(
            "{thing} (radius {radius}) must fit inside the map: keep it at least {radius} units from every edge (it is {} away)",
            round2(edge)
        );
        return Some(("is too close to the edge of the map".to_string(), help));
    }
    if let Some(wall) = walls.iter().find(|w| strictly_inside(p, w.value.rect)) {
        let message = format!("is inside {}", describe_wall(wall));
        return Some((message, "move it into open floor".to_string()));
    }
    let near = walls.iter().map(|w| (w, distance_to_rect(p, w.value.rect)));
    let (wall, d) = near.into_iter().find(|(_, d)| *d < radius - EPS)?;
    let help = format!(
        "{thing} (radius {radius}) would overlap the wall: move it at least {radius} units away from it (it is {} away)",
        round2(d)
    );
    Some((format!("is too close to {}", describe_wall(wall)), help))
}

/// The area with the most spawn points is "the arena" (ties go to the earliest spawn);
/// a spawn point elsewhere is cut off, one in no area boxed in.
fn check_spawn_areas(
    c: &mut Check<'_>,
    spawns: &[&Entry<Point>],
    areas: &[Option<u16>],
    gap_help: &str,
) {
    let size = |a: u16| areas.iter().filter(|b| **b == Some(a)).count();
    let main = (0..areas.len())
        .filter_map(|i| Some((areas[i]?, i)))
        .max_by_key(|&(a, i)| (size(a), Reverse(i)));
    for (spawn, area) in spawns.iter().zip(areas) {
        let what = describe("spawn", spawn);
        let (message, help) = match (area, main) {
            (None, _) => (
                format!("{what} is boxed in: a player starting there cannot move"),
                format!("move it into open floor; {gap_help}"),
            ),
            (Some(area), Some((main, first))) if *area != main => (
                format!(
                    "{what} is cut off from spawn #{}: players starting there can never reach the others",
                    spawns[first].number
                ),
                format!(
                    "open a way through to the other spawn points, or move this one; {gap_help}"
                ),
            ),
            _ => continue,
        };
        c.report(spawn.span.clone(), message, Some(help));
    }
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
    let Rect { x, y, w, h } = wall.value.rect;
    format!("wall #{} (x={x}, y={y}, w={w}, h={h})", wall.number)
}

/// `spawn #3 at (4, 5)`.
fn describe(kind: &str, entry: &Entry<Point>) -> String {
    let Point { x, y } = entry.value;
    format!("{kind} #{} at ({x}, {y})", entry.number)
}

fn round2(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}
