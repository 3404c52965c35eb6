//! The round cycle: start, score and time limits, results, intermission, next round.

use std::f32::consts::{FRAC_PI_2, PI};

use rallypoint_protocol::message::{Event, MapInfo};

use super::support::*;
use crate::arena::assets::Tuning;
use crate::arena::sim::{Control, PlayerId, World};

/// One-shot kills, short rounds and intermissions.
fn quick_tuning() -> Tuning {
    let mut t = Tuning::default();
    t.weapon.damage = 100;
    t.round.time_limit_s = 10.0;
    t.round.intermission_s = 2.0;
    t
}

fn four_corners() -> std::sync::Arc<crate::arena::assets::MapDef> {
    map(
        "corners",
        (100.0, 100.0),
        &[],
        &[(10.0, 10.0), (90.0, 10.0), (10.0, 90.0), (90.0, 90.0)],
        &[],
    )
}

/// Steps with `controls` until a `RoundEnd` comes out; returns it and the events before.
fn until_round_end(world: &mut World, controls: &[(PlayerId, Control)]) -> Event {
    for _ in 0..100_000 {
        world.step(controls, DT);
        if let Some(end) = events(world)
            .into_iter()
            .find(|e| matches!(e, Event::RoundEnd { .. }))
        {
            return end;
        }
    }
    panic!("the round never ended");
}

#[test]
fn round_one_starts_on_the_first_step() {
    let mut world = World::new(open_map(), Tuning::default(), 1);
    assert_eq!(world.tick(), 0);
    assert!(events(&mut world).is_empty());
    world.step(&[], DT);
    // 180 s at 30 Hz.
    let start = Event::RoundStart {
        round: 1,
        map: "open".into(),
        end_tick: 5400,
        score_limit: 10,
    };
    assert_eq!(events(&mut world), std::slice::from_ref(&start));
    assert_eq!(world.round_start_event(), start);
    assert_eq!(world.tick(), 1);
}

#[test]
fn a_round_ends_at_the_score_limit_with_the_best_first() {
    let mut tuning = quick_tuning();
    tuning.round.score_limit = 2;
    tuning.round.time_limit_s = 600.0;
    tuning.player.respawn_delay_s = 0.0;
    let mut world = started(four_corners(), tuning);
    let homes = [(20.0, 50.0), (30.0, 50.0), (40.0, 50.0)];
    let ids = place(&mut world, &homes);
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let kill = |world: &mut World, shooter: PlayerId, aim: f32| {
        world.step(&[(shooter, firing(aim))], DT);
        steps(world, &[], 12);
        for (&id, &(x, y)) in ids.iter().zip(&homes) {
            world.teleport(id, x, y);
        }
    };
    kill(&mut world, a, 0.0); // a kills b
    kill(&mut world, c, PI); // c kills b
    kill(&mut world, b, 0.0); // b kills c
    let scores: Vec<i32> = ids
        .iter()
        .map(|&id| world.player(id).unwrap().score)
        .collect();
    assert_eq!(scores, [1, 1, 1]);
    events(&mut world);

    // b's second kill ends the round, with a shot of c's still in the air.
    let end = until_round_end(&mut world, &[(b, firing(PI)), (c, firing(FRAC_PI_2))]);
    assert_eq!(
        end,
        Event::RoundEnd {
            round: 1,
            winner: Some(b.0),
            scores: vec![(b.0, 2), (a.0, 1), (c.0, 1)],
            next_tick: world.tick() + 60,
        }
    );
    assert!(
        projectile_rows(&world).is_empty(),
        "cleared at the round's end"
    );
}

#[test]
fn a_round_ends_at_the_time_limit_and_a_tie_has_no_winner() {
    let mut world = World::new(four_corners(), quick_tuning(), 3);
    let ids = [world.add_player(), world.add_player(), world.add_player()];
    world.step(&[], DT);
    let Some(Event::RoundStart { end_tick, .. }) = events(&mut world).pop() else {
        panic!("no RoundStart");
    };
    assert_eq!(end_tick, 300);
    let end = until_round_end(&mut world, &[]);
    assert_eq!(world.tick(), end_tick, "ends at the announced tick");
    assert_eq!(
        end,
        Event::RoundEnd {
            round: 1,
            winner: None,
            scores: ids.iter().map(|id| (id.0, 0)).collect(),
            next_tick: 360,
        }
    );

    // An empty room also ends by time, with nobody winning.
    let mut empty = World::new(four_corners(), quick_tuning(), 3);
    let end = until_round_end(&mut empty, &[]);
    assert!(matches!(end, Event::RoundEnd { winner: None, ref scores, .. } if scores.is_empty()));
}

#[test]
fn the_intermission_freezes_play_and_the_next_round_resets_on_the_queued_map() {
    let mut tuning = quick_tuning();
    tuning.player.respawn_delay_s = 60.0;
    let mut world = started(four_corners(), tuning);
    // Close enough for the shot to land in the step it is fired.
    let ids = place(&mut world, &[(20.0, 50.0), (22.0, 50.0)]);
    let (a, b) = (ids[0], ids[1]);
    world.step(&[(a, firing(0.0))], DT);
    assert!(!world.player(b).unwrap().alive);

    let second = map(
        "second",
        (60.0, 40.0),
        &[(28.0, 0.0, 4.0, 15.0)],
        &[(5.0, 5.0), (55.0, 35.0)],
        &[(30.0, 30.0)],
    );
    world.set_next_map(second.clone());
    assert_eq!(world.map().name, "corners", "queued, not applied mid-round");

    let Event::RoundEnd { next_tick, .. } = until_round_end(&mut world, &[]) else {
        unreachable!()
    };
    assert_eq!(next_tick, world.tick() + 60);

    // Intermission: nobody moves, nobody fires, nothing happens.
    let frozen = pos(&world, a);
    let busy = [(
        a,
        Control {
            mx: 1.0,
            my: 1.0,
            aim: 0.0,
            fire: true,
            view: None,
        },
    )];
    while world.tick() < next_tick {
        world.step(&busy, DT);
        assert_eq!(pos(&world, a), frozen);
        assert!(projectile_rows(&world).is_empty());
        assert!(events(&mut world).is_empty());
    }

    world.step(&[], DT);
    let got = events(&mut world);
    let respawn = |id: PlayerId| Event::Respawn {
        id: id.0,
        x: world.player(id).unwrap().x,
        y: world.player(id).unwrap().y,
    };
    let start = Event::RoundStart {
        round: 2,
        map: "second".into(),
        end_tick: next_tick + 300,
        score_limit: 10,
    };
    let info = MapInfo {
        name: "second".into(),
        w: 60.0,
        h: 40.0,
        walls: vec![[28.0, 0.0, 4.0, 15.0]],
    };
    assert_eq!(
        got,
        [
            Event::Map(info.clone()),
            respawn(a),
            respawn(b),
            start.clone()
        ]
    );
    assert_eq!(world.round_start_event(), start);
    assert_eq!(world.map_info(), info);
    assert_eq!(world.map().name, "second");
    for id in ids {
        let p = world.player(id).unwrap();
        assert!(p.alive && p.hp == 100 && p.score == 0);
        assert!([(5.0, 5.0), (55.0, 35.0)].contains(&(p.x, p.y)));
    }
    assert_ne!(pos(&world, a), pos(&world, b), "each at a free spawn");
    assert_eq!(
        rows(&world).len(),
        3,
        "two players and the new map's pickup"
    );
}
