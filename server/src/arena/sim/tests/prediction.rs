//! A client's copy of the movement rules ([`Mover`]) lands on the world's bits: same
//! start, same inputs, same positions and velocities, walls and edges included.

use rallypoint_protocol::message::Input;
use rallypoint_protocol::rng::SplitMix64;

use super::support::*;
use crate::arena::assets::Tuning;
use crate::arena::sim::{Body, Control, Mover};

#[test]
fn a_mover_steps_exactly_as_the_world_moves_its_player() {
    let map = map(
        "maze",
        (30.0, 20.0),
        &[
            (5.0, 0.0, 1.0, 12.0),
            (12.0, 8.0, 1.0, 12.0),
            (18.0, 4.0, 6.0, 1.0),
        ],
        &[(2.0, 2.0)],
        &[],
    );
    let mut tuning = Tuning::default();
    tuning.player.acceleration = 45.0;
    // One round for the whole walk: a round's end stops everyone.
    tuning.round.time_limit_s = 7200.0;
    let mut world = started(map, tuning.clone());
    let me = world.add_player();
    let mover = Mover::new(
        &world.map_info(),
        tuning.player.radius,
        tuning.player.max_speed,
        tuning.player.acceleration,
    );
    let start = world.player(me).unwrap();
    let mut body = Body {
        x: start.x,
        y: start.y,
        vx: 0.0,
        vy: 0.0,
    };
    let mut rng = SplitMix64::new(9);
    let mut blocked_steps = 0;
    for step in 0..3000 {
        // A new heading now and then, some of them longer than 1 (clamped the same way).
        let scale = if step % 7 == 0 { 3.0 } else { 1.0 };
        let input = Input {
            seq: step,
            mx: (rng.range(-1.0, 1.0) * scale) as f32,
            my: (rng.range(-1.0, 1.0) * scale) as f32,
            aim: 0.0,
            fire: false,
            view: None,
        };
        for _ in 0..rng.below(20) + 1 {
            let (mx, my) = input.clamped_move();
            world.step(
                &[(
                    me,
                    Control {
                        mx,
                        my,
                        ..Control::default()
                    },
                )],
                DT,
            );
            blocked_steps += usize::from(mover.step(&mut body, &input, DT).blocked);
            let p = world.player(me).unwrap();
            assert_eq!((body.x, body.y, body.vx, body.vy), (p.x, p.y, p.vx, p.vy));
        }
    }
    assert!(
        blocked_steps > 100,
        "the walls were in the way: {blocked_steps}"
    );
}

#[test]
fn a_clear_line_is_one_no_wall_touches() {
    let map = map(
        "cover",
        (40.0, 30.0),
        &[(10.0, 10.0, 2.0, 2.0)],
        &[(2.0, 2.0)],
        &[],
    );
    let world = started(map, Tuning::default());
    let mover = Mover::new(&world.map_info(), 0.5, 8.0, 60.0);
    assert!(!mover.clear_line((5.0, 11.0), (15.0, 11.0), 0.15));
    assert!(mover.clear_line((5.0, 9.5), (15.0, 9.5), 0.15));
    assert!(
        !mover.clear_line((5.0, 9.9), (15.0, 9.9), 0.15),
        "grazes the corner"
    );
    assert!(
        mover.clear_line((5.0, 11.0), (9.0, 11.0), 0.15),
        "stops short"
    );
}
