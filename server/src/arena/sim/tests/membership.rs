//! Joining, leaving, dropping out (away) and the wire ids that name everything.

use std::f32::consts::FRAC_PI_2;

use rallypoint_protocol::entity::{Entity, PLAYER_AWAY};
use rallypoint_protocol::message::Event;

use super::support::*;
use crate::arena::assets::Tuning;
use crate::arena::sim::{Control, PlayerId, World};

#[test]
fn joining_mid_round_spawns_alive_at_a_free_spawn_with_no_score() {
    let spawns = [(10.0, 10.0), (90.0, 90.0)];
    let map = map("duo", (100.0, 100.0), &[], &spawns, &[]);
    for seed in 0..6 {
        let mut world = World::new(map.clone(), Tuning::default(), seed);
        steps(&mut world, &[], 100);
        let first = world.add_player();
        let second = world.add_player();
        let (p1, p2) = (world.player(first).unwrap(), world.player(second).unwrap());
        for p in [p1, p2] {
            assert!(p.alive && p.hp == 100 && p.score == 0 && !p.away);
            assert!(spawns.contains(&(p.x, p.y)));
        }
        assert_ne!(
            (p1.x, p1.y),
            (p2.x, p2.y),
            "the second takes the free spawn"
        );
        assert_eq!(world.player_count(), 2);
    }
}

#[test]
fn away_players_are_frozen_intangible_and_keep_everything() {
    let map = map(
        "lobby",
        (100.0, 100.0),
        &[],
        &[(60.0, 50.0), (90.0, 90.0)],
        &[(40.0, 50.0)],
    );
    let mut tuning = Tuning::default();
    tuning.weapon.damage = 50;
    tuning.player.respawn_delay_s = 60.0;
    let mut world = started(map, tuning);
    let ids = place(&mut world, &[(20.0, 50.0), (30.0, 50.0), (30.0, 56.0)]);
    let (shooter, dropper, victim) = (ids[0], ids[1], ids[2]);
    // The dropper takes a hit, scores a kill, and is running when the connection drops.
    world.step(&[(shooter, firing(0.0))], DT);
    steps(&mut world, &[], 12);
    for _ in 0..2 {
        world.step(&[(dropper, firing(FRAC_PI_2))], DT);
        steps(&mut world, &[], 10);
    }
    assert!(!world.player(victim).unwrap().alive);
    steps(&mut world, &[(dropper, moving(1.0, 0.0))], 5);
    assert!(world.player(dropper).unwrap().vx > 0.0);
    assert!(world.set_away(dropper, true));
    let before = world.player(dropper).unwrap();
    assert_eq!((before.hp, before.score), (50, 1));
    assert_eq!((before.vx, before.vy), (0.0, 0.0), "stops dead");
    assert!(before.away);
    let row = rows(&world)
        .into_iter()
        .find(|e| e.id() == dropper.0)
        .unwrap();
    assert!(matches!(row, Entity::Player { flags, .. } if flags & PLAYER_AWAY != 0));

    // Frozen: its controls are ignored.
    steps(
        &mut world,
        &[(
            dropper,
            Control {
                mx: -1.0,
                my: 0.0,
                aim: 2.0,
                fire: true,
                view: None,
            },
        )],
        20,
    );
    let still = world.player(dropper).unwrap();
    assert_eq!(still, before);
    assert!(projectile_rows(&world).is_empty());

    // Intangible: shots pass through it, and it cannot take the pickup it stands on.
    world.teleport(dropper, 40.0, 50.0);
    world.step(&[(shooter, firing(0.0))], DT);
    let mut passed_through = false;
    for _ in 0..30 {
        world.step(&[], DT);
        passed_through |= projectile_rows(&world).iter().any(|s| s.pos().0 > 41.0);
    }
    assert!(passed_through);
    assert_eq!(hp(&world, dropper), 50);
    assert!(
        !events(&mut world)
            .iter()
            .any(|e| matches!(e, Event::Pickup { .. }))
    );

    // Does not block spawns: a newcomer may be placed right on top of it.
    world.teleport(dropper, 60.0, 50.0);
    world.teleport(shooter, 90.0, 90.0);
    let newcomer = world.add_player();
    assert_eq!(pos(&world, newcomer), (60.0, 50.0));

    // Back: same id, position, health and score, and it moves again.
    assert!(world.set_away(dropper, false));
    let back = world.player(dropper).unwrap();
    assert_eq!(
        (back.id, back.x, back.y, back.hp, back.score),
        (dropper, 60.0, 50.0, 50, 1)
    );
    assert!(!back.away);
    steps(&mut world, &[(dropper, moving(0.0, 1.0))], 5);
    assert!(pos(&world, dropper).1 > 50.0);

    assert!(!world.set_away(PlayerId(999), true), "unknown id");
}

#[test]
fn wire_ids_are_small_unique_and_quarantined_after_removal() {
    let map = map(
        "ids",
        (100.0, 100.0),
        &[],
        &[(50.0, 50.0)],
        &[(10.0, 10.0), (90.0, 90.0)],
    );
    let mut world = started(map, Tuning::default());
    // Pickups take 1 and 2; players follow, smallest first.
    let players: Vec<PlayerId> = (0..4).map(|_| world.add_player()).collect();
    assert_eq!(
        players,
        [PlayerId(3), PlayerId(4), PlayerId(5), PlayerId(6)]
    );

    assert!(world.remove_player(PlayerId(4)));
    assert!(world.player(PlayerId(4)).is_none());
    let newcomer = world.add_player();
    assert_eq!(newcomer, PlayerId(7), "4 is quarantined");
    // A shot takes the next fresh id too.
    world.step(&[(PlayerId(3), firing(0.0))], DT);
    let shot_ids: Vec<u32> = projectile_rows(&world).iter().map(Entity::id).collect();
    assert_eq!(shot_ids, [8]);

    // Just under 2 s after the removal 4 is still out; then it is the smallest free id.
    steps(&mut world, &[], 58);
    assert_eq!(world.add_player(), PlayerId(9));
    world.step(&[], DT);
    assert_eq!(world.add_player(), PlayerId(4));

    let ids: Vec<u32> = rows(&world).iter().map(Entity::id).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "unique across players, pickups and shots: {ids:?}"
    );
}

#[test]
fn controls_for_unknown_ids_are_ignored() {
    let mut world = started(open_map(), Tuning::default());
    let me = place(&mut world, &[(50.0, 50.0)])[0];
    steps(
        &mut world,
        &[(PlayerId(77), moving(1.0, 0.0)), (PlayerId(0), firing(0.0))],
        5,
    );
    assert_eq!(pos(&world, me), (50.0, 50.0));
    assert!(projectile_rows(&world).is_empty());
    assert!(!world.remove_player(PlayerId(77)));
    assert!(world.player(PlayerId(77)).is_none());
}
