//! Moving around: acceleration, braking, walls, bounds, tunnelling, hot-reloaded speed.

use super::support::*;
use crate::arena::assets::Tuning;
use crate::arena::sim::Control;

#[test]
fn accelerates_to_max_speed_then_brakes_to_a_stop() {
    let mut world = started(open_map(), Tuning::default());
    let ids = place(&mut world, &[(20.0, 50.0)]);
    let me = ids[0];
    let right = [(me, moving(1.0, 0.0))];

    // 60 units/s² at 30 Hz: +2 units/s per step, capped at 8.
    let mut speeds = Vec::new();
    for _ in 0..6 {
        world.step(&right, DT);
        speeds.push(world.player(me).unwrap().vx);
    }
    for (got, want) in speeds.iter().zip([2.0, 4.0, 6.0, 8.0, 8.0, 8.0]) {
        assert!((got - want).abs() < 1e-4, "speeds {speeds:?}");
    }
    let x_before = pos(&world, me).0;
    steps(&mut world, &right, 30);
    let moved = pos(&world, me).0 - x_before;
    assert!(
        (moved - 8.0).abs() < 1e-3,
        "one second at top speed covers 8 units, got {moved}"
    );

    // Letting go brakes at the same rate and then stays put.
    let mut speeds = Vec::new();
    for _ in 0..5 {
        world.step(&[], DT);
        speeds.push(world.player(me).unwrap().vx);
    }
    for (got, want) in speeds.iter().zip([6.0, 4.0, 2.0, 0.0, 0.0]) {
        assert!((got - want).abs() < 1e-4, "speeds {speeds:?}");
    }
    let rest = pos(&world, me);
    steps(&mut world, &[], 10);
    assert_eq!(pos(&world, me), rest);
}

#[test]
fn a_diagonal_is_no_faster_than_a_straight_line() {
    let mut world = started(open_map(), Tuning::default());
    let me = place(&mut world, &[(20.0, 20.0)])[0];
    steps(&mut world, &[(me, moving(1.0, 1.0))], 20);
    let p = world.player(me).unwrap();
    assert!((p.vx.hypot(p.vy) - 8.0).abs() < 1e-3);
    assert!((p.vx - p.vy).abs() < 1e-5);
}

#[test]
fn running_into_a_wall_stops_touching_it_and_slides_along_it() {
    // A tall wall whose left face is at x = 60.
    let map = map(
        "wall",
        (100.0, 100.0),
        &[(60.0, 0.0, 10.0, 100.0)],
        &[(50.0, 50.0)],
        &[],
    );
    let mut world = started(map, Tuning::default());
    let me = place(&mut world, &[(50.0, 20.0)])[0];
    let into_wall_and_down = [(me, moving(1.0, 0.5))];
    steps(&mut world, &into_wall_and_down, 60);

    let (x, y1) = pos(&world, me);
    let gap = 60.0 - 0.5 - x;
    assert!(
        (0.0..0.01).contains(&gap),
        "touching, not overlapping: gap {gap}"
    );
    assert_eq!(
        world.player(me).unwrap().vx,
        0.0,
        "no velocity into the wall"
    );

    steps(&mut world, &into_wall_and_down, 30);
    let (x2, y2) = pos(&world, me);
    assert_eq!(x2, x, "still pinned to the face");
    assert!(y2 - y1 > 3.0, "slides along the wall: {y1} -> {y2}");
}

#[test]
fn corners_and_map_edges_hold_the_player_in() {
    let map = map(
        "box",
        (30.0, 20.0),
        &[(10.0, 8.0, 4.0, 4.0)],
        &[(5.0, 5.0)],
        &[],
    );
    let mut world = started(map.clone(), Tuning::default());
    let me = place(&mut world, &[(5.0, 10.0)])[0];
    for (mx, my) in [
        (-1.0, -1.0),
        (1.0, 1.0),
        (1.0, -0.2),
        (-1.0, 0.1),
        (0.3, 1.0),
    ] {
        for _ in 0..120 {
            world.step(&[(me, moving(mx, my))], DT);
            let (x, y) = pos(&world, me);
            assert!(
                (0.5..=29.5).contains(&x) && (0.5..=19.5).contains(&y),
                "({x}, {y})"
            );
            assert!(distance_to_rect(&map.walls[0], x, y) >= 0.5, "({x}, {y})");
        }
    }
}

#[test]
fn very_fast_players_do_not_tunnel_through_thin_walls() {
    let mut tuning = Tuning::default();
    tuning.player.radius = 0.1;
    tuning.player.max_speed = 100.0;
    tuning.player.acceleration = 1000.0;
    // A wall thinner than a player, with 10 units of travel per step at 10 Hz.
    let map = map(
        "thin",
        (200.0, 20.0),
        &[(100.0, 0.0, 0.05, 20.0)],
        &[(10.0, 10.0)],
        &[],
    );
    let mut world = started(map, tuning);
    let me = place(&mut world, &[(10.0, 10.0)])[0];
    for _ in 0..50 {
        world.step(&[(me, moving(1.0, 0.0))], 0.1);
        assert!(pos(&world, me).0 < 100.0 - 0.1);
    }
    let gap = 100.0 - 0.1 - pos(&world, me).0;
    assert!((0.0..0.01).contains(&gap), "stopped at the wall: gap {gap}");
}

#[test]
fn set_tuning_changes_speed_from_the_next_step() {
    let mut world = started(open_map(), Tuning::default());
    let me = place(&mut world, &[(10.0, 50.0)])[0];
    let right = [(me, moving(1.0, 0.0))];
    steps(&mut world, &right, 10);
    assert!((world.player(me).unwrap().vx - 8.0).abs() < 1e-4);

    let mut faster = world.tuning().clone();
    faster.player.max_speed = 20.0;
    faster.player.acceleration = 1000.0;
    world.set_tuning(faster.clone());
    assert_eq!(world.tuning(), &faster);
    assert!(
        (world.player(me).unwrap().vx - 8.0).abs() < 1e-4,
        "nothing changes between steps"
    );
    let x0 = pos(&world, me).0;
    world.step(&right, DT);
    assert!((world.player(me).unwrap().vx - 20.0).abs() < 1e-4);
    assert!((pos(&world, me).0 - x0 - 20.0 * DT).abs() < 1e-3);
}

#[test]
fn non_finite_controls_do_nothing() {
    let mut world = started(open_map(), Tuning::default());
    let me = place(&mut world, &[(50.0, 50.0)])[0];
    world.step(
        &[(
            me,
            Control {
                aim: 1.0,
                ..Control::default()
            },
        )],
        DT,
    );
    let garbage = Control {
        mx: f32::NAN,
        my: f32::INFINITY,
        aim: f32::NAN,
        fire: false,
        view: None,
    };
    steps(&mut world, &[(me, garbage)], 10);
    let p = world.player(me).unwrap();
    assert_eq!((p.x, p.y, p.vx, p.vy), (50.0, 50.0, 0.0, 0.0));
    assert_eq!(p.aim, 1.0, "a non-finite aim keeps the last one");
    // A non-finite or negative dt is a zero-length step, not a panic.
    world.step(&[(me, moving(1.0, 0.0))], f32::NAN);
    world.step(&[(me, moving(1.0, 0.0))], -1.0);
    assert_eq!(pos(&world, me), (50.0, 50.0));
}
