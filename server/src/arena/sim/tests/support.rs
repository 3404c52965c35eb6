//! Scene building and stepping helpers shared by the behaviour tests.

use std::sync::Arc;

use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::Event;

use crate::arena::assets::{MapDef, Point, Rect, Tuning};
use crate::arena::sim::{Control, PlayerId, World};

/// 30 Hz, the default tick rate.
pub(super) const DT: f32 = 1.0 / 30.0;

/// A map from plain tuples: walls as `(x, y, w, h)`, points as `(x, y)`.
pub(super) fn map(
    name: &str,
    size: (f32, f32),
    walls: &[(f32, f32, f32, f32)],
    spawns: &[(f32, f32)],
    pickups: &[(f32, f32)],
) -> Arc<MapDef> {
    let point = |&(x, y): &(f32, f32)| Point { x, y };
    Arc::new(MapDef {
        name: name.to_string(),
        width: size.0,
        height: size.1,
        walls: walls
            .iter()
            .map(|&(x, y, w, h)| Rect { x, y, w, h })
            .collect(),
        spawns: spawns.iter().map(point).collect(),
        pickups: pickups.iter().map(point).collect(),
    })
}

/// A 100×100 map with no walls, one spawn in the middle and no pickups.
pub(super) fn open_map() -> Arc<MapDef> {
    map("open", (100.0, 100.0), &[], &[(50.0, 50.0)], &[])
}

/// A world whose first step (round 1's start) has been taken and its events drained.
pub(super) fn started(map: Arc<MapDef>, tuning: Tuning) -> World {
    let mut world = World::new(map, tuning, 1);
    world.step(&[], DT);
    world.drain_events().for_each(drop);
    world
}

/// `n` players placed at the given positions, standing still.
pub(super) fn place(world: &mut World, positions: &[(f32, f32)]) -> Vec<PlayerId> {
    positions
        .iter()
        .map(|&(x, y)| {
            let id = world.add_player();
            world.teleport(id, x, y);
            id
        })
        .collect()
}

pub(super) fn steps(world: &mut World, controls: &[(PlayerId, Control)], n: usize) {
    for _ in 0..n {
        world.step(controls, DT);
    }
}

pub(super) fn events(world: &mut World) -> Vec<Event> {
    world.drain_events().collect()
}

pub(super) fn moving(mx: f32, my: f32) -> Control {
    Control {
        mx,
        my,
        ..Control::default()
    }
}

pub(super) fn firing(aim: f32) -> Control {
    Control {
        aim,
        fire: true,
        ..Control::default()
    }
}

pub(super) fn pos(world: &World, id: PlayerId) -> (f32, f32) {
    let p = world.player(id).expect("player exists");
    (p.x, p.y)
}

pub(super) fn hp(world: &World, id: PlayerId) -> u16 {
    world.player(id).expect("player exists").hp
}

pub(super) fn rows(world: &World) -> Vec<Entity> {
    let mut out = Vec::new();
    world.write_entities(&mut out);
    out
}

pub(super) fn projectile_rows(world: &World) -> Vec<Entity> {
    rows(world)
        .into_iter()
        .filter(|e| matches!(e, Entity::Projectile { .. }))
        .collect()
}

/// Distance from a point to a wall rectangle (0 inside), in f64 so the checks are
/// stricter than the simulation's own arithmetic.
pub(super) fn distance_to_rect(r: &Rect, x: f32, y: f32) -> f64 {
    let (x, y) = (f64::from(x), f64::from(y));
    let (x0, y0) = (f64::from(r.x), f64::from(r.y));
    let (x1, y1) = (x0 + f64::from(r.w), y0 + f64::from(r.h));
    let dx = (x0 - x).max(0.0).max(x - x1);
    let dy = (y0 - y).max(0.0).max(y - y1);
    dx.hypot(dy)
}

/// Shots until someone with full health dies, for the default tuning (100 / 25).
pub(super) const HITS_TO_KILL: usize = 4;

/// Steps a 30-unit/s shot needs to cross `distance` units, with one to spare.
pub(super) fn flight_steps(distance: f32) -> usize {
    (distance / (30.0 * DT)).ceil() as usize + 1
}
