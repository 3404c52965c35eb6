//! Shooting: hits, walls, muzzles against walls, damage, kills, respawns.

use std::f32::consts::PI;

use rallypoint_protocol::entity::{Entity, PLAYER_DEAD};
use rallypoint_protocol::message::Event;

use super::support::*;
use crate::arena::assets::Tuning;
use crate::arena::sim::{PlayerId, World};

/// Fires one shot from `shooter` at `aim`, then lets it fly for `flight` steps.
fn shoot(world: &mut World, shooter: PlayerId, aim: f32, flight: usize) {
    world.step(&[(shooter, firing(aim))], DT);
    steps(world, &[], flight);
}

#[test]
fn a_shot_hits_the_player_in_its_path_and_vanishes() {
    let mut world = started(open_map(), Tuning::default());
    let ids = place(&mut world, &[(20.0, 50.0), (30.0, 50.0), (20.0, 60.0)]);
    let (shooter, target, bystander) = (ids[0], ids[1], ids[2]);

    world.step(&[(shooter, firing(0.0))], DT);
    let shots = projectile_rows(&world);
    assert_eq!(shots.len(), 1);
    let Entity::Projectile {
        x, vx, vy, owner, ..
    } = shots[0]
    else {
        unreachable!()
    };
    assert_eq!(owner, shooter.0);
    assert!((vx - 30.0).abs() < 1e-4 && vy.abs() < 1e-4);
    assert!(x > 20.0 + 0.5 + 0.15, "starts outside the shooter: {x}");

    steps(&mut world, &[], flight_steps(10.0));
    assert_eq!(hp(&world, target), 75);
    assert_eq!(hp(&world, shooter), 100, "never hit by its own shot");
    assert_eq!(hp(&world, bystander), 100);
    assert!(
        projectile_rows(&world).is_empty(),
        "the shot stops at the target"
    );
}

#[test]
fn a_wall_between_shooter_and_target_blocks_the_shot() {
    let map = map(
        "cover",
        (100.0, 100.0),
        &[(24.0, 40.0, 2.0, 20.0)],
        &[(50.0, 50.0)],
        &[],
    );
    let mut world = started(map, Tuning::default());
    let ids = place(&mut world, &[(20.0, 50.0), (30.0, 50.0)]);
    world.step(&[(ids[0], firing(0.0))], DT);
    for _ in 0..flight_steps(15.0) {
        for shot in projectile_rows(&world) {
            assert!(shot.pos().0 < 24.0 - 0.15, "never past the wall face");
        }
        world.step(&[], DT);
    }
    assert_eq!(hp(&world, ids[1]), 100);
    assert!(projectile_rows(&world).is_empty());
}

#[test]
fn a_shot_fired_while_hugging_a_wall_is_absorbed() {
    let map = map(
        "hug",
        (100.0, 100.0),
        &[(60.0, 0.0, 1.0, 100.0)],
        &[(50.0, 50.0)],
        &[],
    );
    let mut world = started(map, Tuning::default());
    let ids = place(&mut world, &[(55.0, 50.0), (62.0, 50.0)]);
    let (hugger, behind) = (ids[0], ids[1]);
    steps(&mut world, &[(hugger, moving(1.0, 0.0))], 60);
    assert!(
        60.0 - 0.5 - pos(&world, hugger).0 < 0.01,
        "touching the wall"
    );

    // Straight into the wall and at a glancing angle: nothing comes out either side.
    for aim in [0.0, 0.6, -0.6] {
        world.step(&[(hugger, firing(aim))], DT);
        assert!(projectile_rows(&world).is_empty(), "aim {aim}");
        steps(&mut world, &[], 10);
    }
    assert_eq!(hp(&world, behind), 100);
    // Facing away from the wall the gun works.
    world.step(&[(hugger, firing(PI))], DT);
    assert_eq!(projectile_rows(&world).len(), 1);
}

#[test]
fn holding_the_trigger_fires_once_per_cooldown() {
    let mut world = started(open_map(), Tuning::default());
    let me = place(&mut world, &[(10.0, 50.0)])[0];
    let mut seen = Vec::new();
    for step in 0..30 {
        world.step(&[(me, firing(0.0))], DT);
        for shot in projectile_rows(&world) {
            if !seen.iter().any(|&(id, _)| id == shot.id()) {
                seen.push((shot.id(), step));
            }
        }
    }
    // 0.25 s at 30 Hz is 7.5 steps: a shot every 8 steps, never sooner.
    let fired_at: Vec<i32> = seen.iter().map(|&(_, step)| step).collect();
    assert_eq!(fired_at, [0, 8, 16, 24]);
}

#[test]
fn four_hits_kill_the_killer_scores_and_the_dead_stay_put() {
    let mut tuning = Tuning::default();
    tuning.player.respawn_delay_s = 10.0;
    let mut world = started(open_map(), tuning);
    let ids = place(&mut world, &[(20.0, 50.0), (26.0, 50.0)]);
    let (killer, victim) = (ids[0], ids[1]);
    for hit in 1..HITS_TO_KILL {
        shoot(&mut world, killer, 0.0, 10);
        assert_eq!(hp(&world, victim), 100 - 25 * hit as u16);
        assert!(world.player(victim).unwrap().alive);
    }
    assert!(
        !events(&mut world)
            .iter()
            .any(|e| matches!(e, Event::Kill { .. }))
    );

    shoot(&mut world, killer, 0.0, 10);
    let dead = world.player(victim).unwrap();
    assert!(!dead.alive && dead.hp == 0);
    assert_eq!(world.player(killer).unwrap().score, 1);
    assert_eq!(dead.score, 0);
    let kills: Vec<Event> = events(&mut world)
        .into_iter()
        .filter(|e| matches!(e, Event::Kill { .. }))
        .collect();
    assert_eq!(
        kills,
        [Event::Kill {
            killer: killer.0,
            victim: victim.0
        }]
    );
    let row = rows(&world)
        .into_iter()
        .find(|e| e.id() == victim.0)
        .unwrap();
    assert!(matches!(row, Entity::Player { flags, .. } if flags & PLAYER_DEAD != 0));

    // Dead: cannot move, cannot shoot, cannot be hit again.
    let corpse = pos(&world, victim);
    steps(&mut world, &[(victim, moving(1.0, 1.0))], 10);
    world.step(&[(victim, firing(PI))], DT);
    assert_eq!(pos(&world, victim), corpse);
    assert!(projectile_rows(&world).is_empty());
    shoot(&mut world, killer, 0.0, 10);
    assert_eq!(world.player(killer).unwrap().score, 1);
}

#[test]
fn the_dead_respawn_after_the_delay_at_a_free_spawn_with_full_health() {
    let spawns = [(20.0, 50.0), (80.0, 20.0), (80.0, 80.0), (20.8, 50.0)];
    for seed in 0..8 {
        let mut tuning = Tuning::default();
        tuning.weapon.damage = 100;
        let map = map("spawns", (100.0, 100.0), &[], &spawns, &[]);
        let mut world = World::new(map, tuning, seed);
        world.step(&[], DT);
        // Close enough for the shot to land in the step it is fired.
        let ids = place(&mut world, &[(20.0, 50.0), (22.0, 50.0)]);
        let (killer, victim) = (ids[0], ids[1]);
        world.step(&[(killer, firing(0.0))], DT);
        assert!(!world.player(victim).unwrap().alive);
        events(&mut world);

        // 3 s at 30 Hz: dead for 89 more steps, back on the 90th after the kill.
        steps(&mut world, &[], 89);
        assert!(!world.player(victim).unwrap().alive);
        assert!(events(&mut world).is_empty());
        world.step(&[], DT);
        let back = world.player(victim).unwrap();
        assert!(back.alive && back.hp == 100);
        assert_eq!(
            events(&mut world),
            [Event::Respawn {
                id: victim.0,
                x: back.x,
                y: back.y
            }]
        );
        // The killer stands on the first spawn, and the fourth is within two radii of it.
        assert!(
            [(80.0, 20.0), (80.0, 80.0)].contains(&(back.x, back.y)),
            "seed {seed}: respawned at ({}, {})",
            back.x,
            back.y
        );
    }
}

#[test]
fn with_every_spawn_taken_the_least_crowded_one_is_used() {
    let spawns = [(20.0, 50.0), (60.0, 50.0), (40.0, 50.0)];
    let map = map("crowded", (100.0, 100.0), &[], &spawns, &[]);
    let mut world = started(map, Tuning::default());
    // Spawn points 1 and 2 are occupied; 3 has a player 0.8 units away.
    place(&mut world, &[(20.0, 50.0), (60.0, 50.0), (40.8, 50.0)]);
    let newcomer = world.add_player();
    assert_eq!(pos(&world, newcomer), (40.0, 50.0));
}

#[test]
fn projectiles_vanish_after_their_lifetime_or_off_the_map() {
    let mut world = started(open_map(), Tuning::default());
    let me = place(&mut world, &[(50.0, 50.0)])[0];
    // 1.5 s of flight: 45 steps, covering 45 units; 50 units of room to the right.
    world.step(&[(me, firing(0.0))], DT);
    steps(&mut world, &[], 44);
    assert_eq!(projectile_rows(&world).len(), 1);
    world.step(&[], DT);
    assert!(projectile_rows(&world).is_empty());

    let edge = place(&mut world, &[(95.0, 50.0)])[0];
    world.step(&[(edge, firing(0.0))], DT);
    steps(&mut world, &[], 5);
    assert!(projectile_rows(&world).is_empty(), "left the map");
}

#[test]
fn removing_a_player_removes_its_projectiles() {
    let mut world = started(open_map(), Tuning::default());
    let ids = place(&mut world, &[(20.0, 50.0), (20.0, 20.0)]);
    world.step(&[(ids[0], firing(0.0)), (ids[1], firing(0.0))], DT);
    assert_eq!(projectile_rows(&world).len(), 2);
    assert!(world.remove_player(ids[0]));
    let left = projectile_rows(&world);
    assert_eq!(left.len(), 1);
    assert!(matches!(left[0], Entity::Projectile { owner, .. } if owner == ids[1].0));
    assert!(!world.remove_player(ids[0]), "already gone");
}
