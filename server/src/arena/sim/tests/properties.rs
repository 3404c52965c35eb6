//! Randomised invariants: random maps, tunings, controls (hostile ones included), time
//! steps and membership churn, checked after every step. A hand-rolled loop over the
//! world's own seeded generator keeps failures reproducible by seed.

use std::collections::HashMap;
use std::sync::Arc;

use rallypoint_protocol::entity::{Entity, PLAYER_DEAD};
use rallypoint_protocol::message::Event;

use super::support::*;
use crate::arena::assets::{MapDef, Point, Rect, Tuning};
use crate::arena::sim::{Control, PlayerId, World};
use rallypoint_protocol::rng::SplitMix64;

const SEEDS: u64 = 16;
const STEPS: usize = 3000;

/// Non-overlapping walls, spawns and pickups clear of every wall by more than `radius`.
fn random_map(rng: &mut SplitMix64, radius: f32, name: &str) -> Arc<MapDef> {
    let width = rng.range(20.0, 80.0) as f32;
    let height = rng.range(20.0, 80.0) as f32;
    let mut walls: Vec<Rect> = Vec::new();
    for _ in 0..14 {
        let w = rng.range(0.05, 12.0) as f32;
        let h = rng.range(0.05, 12.0) as f32;
        let wall = Rect {
            x: rng.range(0.0, f64::from(width - w)) as f32,
            y: rng.range(0.0, f64::from(height - h)) as f32,
            w,
            h,
        };
        let overlaps = walls.iter().any(|o| {
            wall.x < o.x + o.w
                && o.x < wall.x + wall.w
                && wall.y < o.y + o.h
                && o.y < wall.y + wall.h
        });
        if !overlaps {
            walls.push(wall);
        }
    }
    let clear = |p: &Point| {
        walls
            .iter()
            .all(|w| distance_to_rect(w, p.x, p.y) > f64::from(radius) + 0.01)
    };
    let point = |rng: &mut SplitMix64| Point {
        x: rng.range(f64::from(radius) + 0.01, f64::from(width - radius) - 0.01) as f32,
        y: rng.range(f64::from(radius) + 0.01, f64::from(height - radius) - 0.01) as f32,
    };
    let mut spawns = Vec::new();
    let mut pickups = Vec::new();
    for _ in 0..400 {
        let p = point(rng);
        if !clear(&p) {
            continue;
        }
        if spawns.len() < 6 {
            spawns.push(p);
        } else if pickups.len() < 3 {
            pickups.push(p);
        }
    }
    assert!(!spawns.is_empty(), "map generator found no spawn");
    Arc::new(MapDef {
        name: name.to_string(),
        width,
        height,
        walls,
        spawns,
        pickups,
    })
}

/// Anywhere in the documented ranges, except fire rates and lifetimes kept modest so a
/// debug build checks thousands of steps in a few seconds.
fn random_tuning(rng: &mut SplitMix64, radius: f32) -> Tuning {
    let mut t = Tuning::default();
    t.player.radius = radius;
    t.player.max_speed = rng.range(0.1, 100.0) as f32;
    t.player.acceleration = rng.range(0.1, 1000.0) as f32;
    t.player.max_health = rng.range(1.0, 200.0) as u16;
    t.player.respawn_delay_s = rng.range(0.0, 2.0) as f32;
    t.weapon.cooldown_s = rng.range(0.1, 1.0) as f32;
    t.weapon.projectile_speed = rng.range(1.0, 500.0) as f32;
    t.weapon.projectile_radius = rng.range(0.01, 2.0) as f32;
    t.weapon.projectile_lifetime_s = rng.range(0.05, 2.0) as f32;
    t.weapon.damage = rng.range(1.0, 120.0) as u16;
    t.pickup.radius = rng.range(0.1, 5.0) as f32;
    t.pickup.heal = rng.range(1.0, 100.0) as u16;
    t.pickup.respawn_s = rng.range(0.0, 5.0) as f32;
    t.round.score_limit = rng.range(1.0, 8.0) as u32;
    t.round.time_limit_s = rng.range(10.0, 20.0) as f32;
    t.round.intermission_s = rng.range(0.0, 2.0) as f32;
    t
}

fn random_number(rng: &mut SplitMix64, normal: f64) -> f32 {
    match rng.below(20) {
        0 => f32::NAN,
        1 => f32::INFINITY,
        2 => f32::NEG_INFINITY,
        3 => f32::MAX,
        4 => -f32::MAX,
        5 => 1e30,
        6 => f32::MIN_POSITIVE,
        _ => rng.range(-normal, normal) as f32,
    }
}

fn random_dt(rng: &mut SplitMix64) -> f32 {
    match rng.below(50) {
        0 => f32::NAN,
        1 => 0.0,
        2 => -0.5,
        3 => 5.0,
        4..=10 => rng.range(0.001, 0.2) as f32,
        _ => DT,
    }
}

/// The seconds a step of `dt` actually simulates (documented on `World::step`).
fn effective_dt(dt: f32) -> f64 {
    if dt.is_finite() && dt > 0.0 {
        f64::from(dt).min(1.0)
    } else {
        0.0
    }
}

fn check_invariants(world: &World, seed: u64, step: usize) {
    let map = world.map();
    let tuning = world.tuning();
    let radius = f64::from(tuning.player.radius);
    let shot_radius = f64::from(tuning.weapon.projectile_radius);
    let (w, h) = (f64::from(map.width), f64::from(map.height));
    for p in world.players() {
        let (x, y) = (f64::from(p.x), f64::from(p.y));
        assert!(
            x - radius >= 0.0 && x + radius <= w && y - radius >= 0.0 && y + radius <= h,
            "seed {seed} step {step}: {p:?} leaves the {w}x{h} map"
        );
        for wall in &map.walls {
            let d = distance_to_rect(wall, p.x, p.y);
            assert!(
                d >= radius,
                "seed {seed} step {step}: {p:?} overlaps {wall:?} ({d})"
            );
        }
        assert_eq!(p.alive, p.hp > 0, "seed {seed} step {step}: {p:?}");
        assert!(p.score >= 0);
    }
    let mut rows = Vec::new();
    world.write_entities(&mut rows);
    for row in &rows {
        match *row {
            Entity::Projectile { x, y, .. } => {
                for wall in &map.walls {
                    let d = distance_to_rect(wall, x, y);
                    assert!(
                        d >= shot_radius - 1e-4,
                        "seed {seed} step {step}: shot at ({x}, {y}) in {wall:?} ({d})"
                    );
                }
            }
            Entity::Player { hp, flags, .. } => assert_eq!(flags & PLAYER_DEAD != 0, hp == 0),
            _ => {}
        }
    }
    let mut ids: Vec<u32> = rows.iter().map(Entity::id).collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "seed {seed} step {step}: duplicate ids");
}

#[test]
fn random_play_never_breaks_the_world() {
    for seed in 0..SEEDS {
        let mut rng = SplitMix64::new(0xA11CE ^ seed.wrapping_mul(0x9E37_79B9));
        let radius = rng.range(0.1, 2.0) as f32;
        let map = random_map(&mut rng, radius, "random");
        let mut world = World::new(map, random_tuning(&mut rng, radius), seed);
        let mut players: Vec<PlayerId> = Vec::new();
        let mut controls: Vec<(PlayerId, Control)> = Vec::new();
        // Wire id → simulated time it was last in a snapshot, and whether it was there
        // in the previous one: an id that comes back must have been gone for 2 s.
        let mut last_seen: HashMap<u32, f64> = HashMap::new();
        let mut previous: Vec<u32> = Vec::new();
        let mut clock = 0.0;
        let mut rows = Vec::new();
        let mut max_id = 0;
        let (mut kills, mut rounds, mut pickups, mut most_shots) = (0, 0, 0, 0);
        for step in 0..STEPS {
            match rng.below(60) {
                0 | 1 if players.len() < 12 => players.push(world.add_player()),
                2 if !players.is_empty() => {
                    let gone = players.swap_remove(rng.below(players.len()));
                    assert!(world.remove_player(gone));
                }
                3 if !players.is_empty() => {
                    let who = players[rng.below(players.len())];
                    assert!(world.set_away(who, rng.below(2) == 0));
                }
                4 => world.set_tuning(random_tuning(&mut rng, radius)),
                5 => world.set_next_map(random_map(&mut rng, radius, "next")),
                _ => {}
            }
            controls.clear();
            for &id in &players {
                if rng.below(8) == 0 {
                    continue;
                }
                controls.push((
                    id,
                    Control {
                        mx: random_number(&mut rng, 1.5),
                        my: random_number(&mut rng, 1.5),
                        aim: random_number(&mut rng, 10.0),
                        fire: rng.below(2) == 0,
                        view: None,
                    },
                ));
            }
            // Now and then a control for someone who is not there.
            if rng.below(10) == 0 {
                controls.push((PlayerId(rng.below(100) as u32), Control::default()));
            }
            let dt = random_dt(&mut rng);
            world.step(&controls, dt);
            clock += effective_dt(dt);
            for event in world.drain_events() {
                match event {
                    Event::Kill { .. } => kills += 1,
                    Event::RoundEnd { .. } => rounds += 1,
                    Event::Pickup { .. } => pickups += 1,
                    _ => {}
                }
            }
            check_invariants(&world, seed, step);

            rows.clear();
            world.write_entities(&mut rows);
            let shots = rows
                .iter()
                .filter(|r| matches!(r, Entity::Projectile { .. }));
            most_shots = most_shots.max(shots.count());
            for row in &rows {
                let id = row.id();
                max_id = max_id.max(id);
                if !previous.contains(&id)
                    && let Some(&seen) = last_seen.get(&id)
                {
                    assert!(
                        clock - seen >= 2.0 - 1e-9,
                        "seed {seed} step {step}: id {id} back after {} s",
                        clock - seen
                    );
                }
                last_seen.insert(id, clock);
            }
            previous.clear();
            previous.extend(rows.iter().map(Entity::id));
        }
        // Small ids: bounded by what can be alive or quarantined at once, not by how many
        // entities ever existed (thousands of shots were fired).
        assert!(max_id < 1000, "seed {seed}: ids reached {max_id}");
        // The run was a game, not an idle room.
        assert!(
            kills > 0 && rounds > 0 && pickups > 0 && most_shots > 3,
            "seed {seed}: {kills} kills, {rounds} rounds, {pickups} pickups, {most_shots} shots"
        );
    }
}
